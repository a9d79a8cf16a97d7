"""The search's reports: `trials.csv`, `best_genotype.json`, `summary.md`, PNGs.

`write_reports(project_dir)` is a pure function of a project's files, so it
works from any process and after any interruption.
"""

from __future__ import annotations

import csv
import io as _io
import os

from keras_tuner.engine import trial as trial_module

from keras_convnets.errors import UserInputError
from keras_convnets.search import state
from keras_convnets.search.genotype import Genotype
from keras_convnets.search.hypermodel import OBJECTIVE
from keras_convnets.training import io


def read_runs(trial_dir: str) -> list:
    path = os.path.join(trial_dir, "runs.json")
    try:
        return io.read_json(path) if os.path.exists(path) else []
    except UserInputError:
        return []


def load_trials(project_dir: str) -> list[dict]:
    """Every trial of a project as a flat record, in trial-id order."""
    rows = []
    for name in sorted(os.listdir(project_dir)):
        path = os.path.join(project_dir, name, "trial.json")
        if not name.startswith("trial_") or not os.path.isfile(path):
            continue
        trial = trial_module.Trial.load(path)
        values = dict(trial.hyperparameters.values)
        try:
            genotype = Genotype.from_hyperparameters(values)
        except UserInputError:
            genotype = None

        def metric(key, trial=trial):
            if trial.metrics.exists(key):
                return trial.metrics.get_last_value(key)
            return None

        runs = read_runs(os.path.join(project_dir, name))
        rows.append(
            {
                "trial_id": trial.trial_id,
                "status": trial.status,
                "val_accuracy": trial.score if trial.score is not None else None,
                "params": metric("params"),
                "flops": metric("flops"),
                "seconds": metric("trial_seconds"),
                "fit_seconds": metric("fit_seconds"),
                "cells": values.get("cells"),
                "filters": values.get("filters"),
                "learning_rate": values.get("learning_rate"),
                "augment": values.get("augment"),
                "epochs": values.get("tuner/epochs"),
                "tuner_ids": [r["tuner_id"] for r in runs],
                "genotype": genotype,
                "hyperparameters": values,
            }
        )
    return rows


_CSV_COLUMNS = (
    "trial_id",
    "status",
    "val_accuracy",
    "params",
    "flops",
    "seconds",
    "fit_seconds",
    "cells",
    "filters",
    "learning_rate",
    "augment",
    "epochs",
    "tuner_ids",
    "genotype",
)


def write_reports(project_dir: str, stacking: dict | None = None) -> dict:
    """Writes `trials.csv`, `best_genotype.json`, `summary.md` and cell PNGs.

    A pure function of the project's files (and `stacking`), so it works from
    any process and after any interruption. `best_genotype.json` records the
    cells' `cell_norm` and `stem_stride`, so `train --genotype` builds the
    searched network, and the final stacking (`stacking`: N, F, the parameter budget).

    Args:
        project_dir: str. The search project.
        stacking: dict or None. `{"cells", "filters", "params_budget",
            "params"}` of the final network (`runner.final_stacking`). None:
            the best trial's N and F.

    Returns:
        `{"project_dir", "trials", "completed", "best", "paths"}`, where
        `best` is None until a trial completes.
    """
    config = io.read_json(os.path.join(project_dir, "search_config.json"))
    rows = load_trials(project_dir)
    buffer = _io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(_CSV_COLUMNS)
    for row in rows:
        out = []
        for key in _CSV_COLUMNS:
            value = row[key]
            if key == "genotype":
                value = value.to_json() if value is not None else ""
            elif key == "tuner_ids":
                value = " ".join(value)
            elif isinstance(value, float) and key in ("params", "flops"):
                value = int(value)
            elif isinstance(value, float):
                value = round(value, 6)
            out.append("" if value is None else value)
        writer.writerow(out)
    paths = {
        "trials_csv": os.path.join(project_dir, "trials.csv"),
        "best_genotype": os.path.join(project_dir, "best_genotype.json"),
        "summary": os.path.join(project_dir, "summary.md"),
        "normal_png": os.path.join(project_dir, "normal_cell.png"),
        "reduce_png": os.path.join(project_dir, "reduce_cell.png"),
    }
    state.write_bytes(paths["trials_csv"], buffer.getvalue().encode("utf-8"))

    completed = [
        r
        for r in rows
        if r["status"] == trial_module.TrialStatus.COMPLETED
        and r["val_accuracy"] is not None
        and r["genotype"] is not None
    ]
    ranked = sorted(completed, key=lambda r: -r["val_accuracy"])
    record = {
        "project_dir": os.path.abspath(project_dir),
        "dataset": config["dataset"],
        "trials": len(rows),
        "completed": len(completed),
        "best": None,
        "stacking": None,
        "paths": paths,
    }
    if not ranked:
        return record
    best = ranked[0]
    if stacking is None:
        stacking = {
            "cells": best["cells"] if best["cells"] is not None else 1,
            "filters": best["filters"] if best["filters"] is not None else 16,
            "params_budget": None,
            "params": None,
        }
    best_record = {
        **best["genotype"].to_dict(),
        # Searches before cell_norm existed had BatchNorm in every cell.
        "cell_norm": config.get("cell_norm", "batch"),
        # ... and a stem of stride 1.
        "stem_stride": config.get("stem_stride", 1),
        "stacking": stacking,
        "search": {
            "trial_id": best["trial_id"],
            "val_accuracy": best["val_accuracy"],
            "params": best["params"],
            "flops": best["flops"],
            "hyperparameters": best["hyperparameters"],
            "dataset": config["dataset"],
            "tuner": config["tuner"],
            "project": os.path.basename(os.path.normpath(project_dir)),
        },
    }
    state.write_json(paths["best_genotype"], best_record)
    from keras_convnets.search.render import plot_cell

    for cell in ("normal", "reduce"):
        plot_cell(best["genotype"], cell, paths[f"{cell}_png"])
    state.write_bytes(
        paths["summary"],
        _summary(project_dir, config, rows, ranked, stacking).encode("utf-8"),
    )
    record["best"] = {
        k: best[k]
        for k in ("trial_id", "val_accuracy", "params", "flops", "cells", "filters")
    }
    record["best"]["genotype"] = best["genotype"].to_dict()
    record["stacking"] = stacking
    return record


def train_command(genotype_path: str, stacking: dict, dataset: str) -> str:
    """The `keras-convnets train` line that trains the final stacking."""
    width = (
        f"--params-budget {stacking['params_budget']}"
        if stacking.get("params_budget")
        else f"--filters {stacking['filters']}"
    )
    return (
        f"keras-convnets train --genotype {genotype_path} "
        f"--cells {stacking['cells']} {width} --dataset {dataset}"
    )


def _summary(project_dir, config, rows, ranked, stacking) -> str:
    best = ranked[0]
    name = os.path.basename(os.path.normpath(project_dir))
    cells = best["cells"] if best["cells"] is not None else 1
    filters = best["filters"] if best["filters"] is not None else 16
    budget = stacking.get("params_budget")
    final = (
        f" With a budget of {budget:,} parameters: N={stacking['cells']}, "
        f"F={stacking['filters']}, {stacking['params']:,} parameters."
        if budget and stacking.get("params")
        else ""
    )
    lines = [
        f"# Architecture search `{name}`",
        "",
        f"Tuner `{config['tuner']}` on `{config['dataset']}` (proxy: "
        f"{config['proxy_fraction']:g} of the training split, "
        f"{config['proxy_epochs']} epochs, B={config['blocks']} blocks per cell). "
        f"{len(rows)} trials, {len(ranked)} completed; objective: {OBJECTIVE} (max).",
        "",
        f"## Best trial: {best['trial_id']}, {OBJECTIVE} {best['val_accuracy']:.4f}",
        "",
        f"N={cells}, F={filters}, {int(best['params'] or 0):,} parameters, "
        f"{(best['flops'] or 0) / 1e6:.1f} MFLOPs per image.",
        "",
        "```",
        best["genotype"].describe(),
        "```",
        "",
        "![normal cell](normal_cell.png) ![reduction cell](reduce_cell.png)",
        "",
        "Train it at full size (the transfer from the proxy to the real task; "
        f"cells: cell_norm {config.get('cell_norm', 'batch')}, "
        f"stem_stride {config.get('stem_stride', 1)}).{final}",
        "",
        "```bash",
        train_command(
            os.path.join(project_dir, "best_genotype.json"),
            stacking,
            config["dataset"],
        ),
        "```",
        "",
        "## Top trials",
        "",
        f"| trial | {OBJECTIVE} | params | MFLOPs | seconds | N | F | genotype |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in ranked[:10]:
        lines.append(
            f"| {r['trial_id']} | {r['val_accuracy']:.4f} | {int(r['params'] or 0):,} | "
            f"{(r['flops'] or 0) / 1e6:.1f} | {r['seconds'] or 0:.1f} | {r['cells']} | "
            f"{r['filters']} | `{r['genotype'].short()}` |"
        )
    lines += [
        "",
        f"TensorBoard (HParams dashboard): `tensorboard --logdir {os.path.join(project_dir, 'logs')}`",
        "",
    ]
    return "\n".join(lines)

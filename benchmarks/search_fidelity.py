"""Proxy fidelity: how well each search proxy ranks cells against a real training.

Samples `cells` genotypes uniformly from the search space, scores each with
every proxy, and trains each with the reference training: the `fast` recipe
(fp32, so the figure means the same on every CPU) on the full training split
for `reference_epochs` epochs, scored on validation accuracy (the test split
is never read for this). Reports, per proxy, Kendall's tau and Spearman's rho
against the reference (with their p-values) and the CPU-seconds of one
evaluation (`time.process_time`: every TensorFlow thread of the process).

Proxies:

- `params`: the parameter count (a baseline every proxy must beat);
- `synflow`, `naswot`: zero-cost scores at initialization
  (`keras_convnets.search.zero_cost`; NASWOT on a batch of training images);
- `train_short` (1 epoch on 5 % of the training split, eager),
  `train_default` (the search's defaults: 2 epochs on 10 %, eager),
  `train_default_graph` (the same in graph mode, `search --no-run-eagerly`),
  `train_long` (3 epochs on 30 %, graph mode): proxy trainings exactly as a
  search trial runs them (`CellHyperModel`), scored on the search's
  validation split.

The network is the search's default trial network: B blocks, N=1 cell per
stage, F filters, stem stride 2, no BatchNorm (the same for proxies and the
reference). The `noise` part trains a few cells' reference again with another
seed: the reference's own noise against its spread over cells bounds the tau
any proxy can reach. Resumable: every finished evaluation is written to the JSON at
once (atomically) and skipped on the next run with the same sizes; a run with
other sizes refuses the file (use another --out).

    python benchmarks/search_fidelity.py --quick       # minutes: checks it runs
    python benchmarks/search_fidelity.py               # hours on 2 CPU cores
    python benchmarks/search_fidelity.py --parts report  # tau/rho of what is done

The default proxy is chosen by the rule in `choose_proxy`: the cheapest proxy
whose tau is within 0.05 of the best proxy's tau.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import math
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._machine import machine_info  # noqa: E402

SIZES = {
    "quick": dict(
        cells=4,
        first_seed=1000,
        blocks=2,
        filters=4,
        stem_stride=2,
        naswot_batch=32,
        train_proxies={
            "train_short": dict(epochs=1, fraction=0.01),
            "train_default": dict(epochs=1, fraction=0.02),
        },
        validation_fraction=0.02,
        reference_epochs=1,
        reference_train_fraction=0.05,
    ),
    "full": dict(
        cells=16,
        first_seed=1000,
        blocks=3,
        filters=16,
        stem_stride=2,
        naswot_batch=128,
        # Computed in this order. Eager unless run_eagerly is False (graph
        # mode: `search --no-run-eagerly`).
        train_proxies={
            "train_short": dict(epochs=1, fraction=0.05),
            "train_default_graph": dict(epochs=2, fraction=0.1, run_eagerly=False),
            "train_long": dict(epochs=3, fraction=0.3, run_eagerly=False),
            "train_default": dict(epochs=2, fraction=0.1),
        },
        validation_fraction=0.1,
        reference_epochs=5,
        reference_train_fraction=1.0,
    ),
}

ZERO_COST = ("params", "synflow", "naswot")


def _genotypes(size):
    from keras_convnets.search.genotype import Genotype

    return [
        Genotype.random(blocks=size["blocks"], seed=size["first_seed"] + i)
        for i in range(size["cells"])
    ]


def _build(genotype, size, info):
    from keras_convnets.models.nas_cell_net import build_from_genotype

    return build_from_genotype(
        genotype,
        info.image_shape,
        info.num_classes,
        cells=1,
        filters=size["filters"],
        stem_stride=size["stem_stride"],
    )


def _data(size, fraction):
    from keras_convnets.data.pipelines import make_datasets

    train, validation, _, info = make_datasets(
        "fashion_mnist",
        validation_fraction=size["validation_fraction"],
        train_fraction=fraction,
        batch_size=128,
        seed=0,
    )
    return train, validation, info


def zero_cost_score(name, genotype, size, info, images):
    import keras

    from keras_convnets.search.zero_cost import naswot_score, synflow_score

    keras.utils.set_random_seed(0)
    model = _build(genotype, size, info)
    if name == "params":
        return float(model.count_params())
    if name == "synflow":
        return synflow_score(model)
    return naswot_score(model, images)


def train_proxy_score(genotype, size, proxy, data):
    """Validation accuracy of one proxy training, as a search trial runs it."""
    import keras

    from keras_convnets.search.hypermodel import CellHyperModel

    train, validation, info = data
    steps = math.ceil(info.sizes["train"] / 128)
    hypermodel = CellHyperModel(
        info.image_shape,
        info.num_classes,
        blocks=size["blocks"],
        filters=(size["filters"],),
        epochs=proxy["epochs"],
        steps_per_epoch=steps,
        stem_stride=size["stem_stride"],
        run_eagerly=proxy.get("run_eagerly", True),
    )
    keras.utils.set_random_seed(0)
    hp = genotype.to_hyperparameters()
    model = hypermodel.build(hp)
    metrics = hypermodel.fit(
        hp, model, train, validation_data=validation, epochs=proxy["epochs"], verbose=0
    )
    keras.backend.clear_session()
    return metrics["val_accuracy"]


def reference_score(
    genotype,
    *,
    filters,
    stem_stride,
    epochs,
    train_fraction,
    workdir,
    run_name,
    seed=0,
):
    """Validation accuracy of the fast recipe (fp32) trained on the split.

    The network: the genotype's cells, N=1, `filters`, `stem_stride`, no
    BatchNorm. The run is `workdir/run_name`; an interrupted one resumes
    (`train_and_evaluate`), a finished one of the same config is read back.
    """
    from dataclasses import replace

    from keras_convnets.training import io
    from keras_convnets.training.config import config_from_dict, get_recipe
    from keras_convnets.training.train import train_and_evaluate

    config = replace(
        get_recipe("fast"),
        model="nas_cell_net",
        model_kwargs={
            "genotype": genotype.to_dict(),
            "cells": 1,
            "filters": filters,
            "stem_stride": stem_stride,
            "cell_norm": "none",
        },
        precision="fp32",
        epochs=epochs,
        train_fraction=train_fraction,
        workdir=workdir,
        run_name=run_name,
        seed=seed,
    ).validate()
    run_dir = os.path.join(workdir, run_name)
    record = None
    if os.path.exists(os.path.join(run_dir, "run.json")):
        done = config_from_dict(io.read_json(os.path.join(run_dir, "config.json")))
        if done.identity() == config.identity():
            record = io.read_json(os.path.join(run_dir, "run.json"))
    if record is None:
        record = train_and_evaluate(config, verbose=0)
    history = record["history"].get("val_accuracy") or []
    return {
        "val_accuracy": record["validation_accuracy"],
        "best_epoch_val_accuracy": max(history) if history else None,
        "params": record["params"],
        "fit_time_s": record["fit_time_s"],
        "run_dir": record["run_dir"],
    }


def reference_noise(report) -> dict:
    """The reference's spread over cells against its seed-to-seed noise.

    `seed_sd`: the standard deviation of one reference score estimated from
    the seed 0 / seed 1 pairs (`|a - b| / sqrt(2)`, averaged in quadrature);
    `cells_sd`: the standard deviation of seed 0's scores over cells.
    """
    import statistics

    scores = [
        c["reference"]["val_accuracy"] for c in report["cells"] if c.get("reference")
    ]
    pairs = [
        (c["reference"]["val_accuracy"], c["reference_repeats"]["1"]["val_accuracy"])
        for c in report["cells"]
        if c.get("reference") and "1" in c.get("reference_repeats", {})
    ]
    seed_sd = (
        math.sqrt(statistics.mean((a - b) ** 2 / 2 for a, b in pairs))
        if pairs
        else None
    )
    return {
        "cells": len(scores),
        "cells_sd": round(statistics.pstdev(scores), 4) if len(scores) > 1 else None,
        "cells_range": [min(scores), max(scores)] if scores else None,
        "seed_pairs": [[round(a, 4), round(b, 4)] for a, b in pairs],
        "seed_sd": None if seed_sd is None else round(seed_sd, 4),
    }


def choose_proxy(summary: dict, slack: float = 0.05):
    """The cheapest proxy whose tau is within `slack` of the best tau."""
    rated = {k: v for k, v in summary.items() if v.get("kendall_tau") is not None}
    if not rated:
        return None
    best = max(v["kendall_tau"] for v in rated.values())
    near = [k for k, v in rated.items() if v["kendall_tau"] >= best - slack]
    return min(near, key=lambda k: rated[k]["cpu_s_per_eval"])


def correlations(report) -> dict:
    """Kendall tau and Spearman rho of each proxy against the reference."""
    from scipy import stats

    cells = [c for c in report["cells"] if c.get("reference")]
    reference = [c["reference"]["val_accuracy"] for c in cells]
    summary = {}
    for name in report["proxies"]:
        pairs = [
            (c["proxies"][name]["score"], r)
            for c, r in zip(cells, reference)
            if name in c["proxies"] and math.isfinite(c["proxies"][name]["score"])
        ]
        cpu = [
            c["proxies"][name]["cpu_s"] for c in report["cells"] if name in c["proxies"]
        ]
        entry = {
            "cells": len(pairs),
            "cpu_s_per_eval": round(sum(cpu) / len(cpu), 3) if cpu else None,
            "kendall_tau": None,
        }
        if len(pairs) >= 3:
            x, y = zip(*pairs)
            tau = stats.kendalltau(x, y)
            rho = stats.spearmanr(x, y)
            entry.update(
                kendall_tau=round(float(tau.statistic), 3),
                kendall_p=round(float(tau.pvalue), 4),
                spearman_rho=round(float(rho.statistic), 3),
                spearman_p=round(float(rho.pvalue), 4),
            )
        summary[name] = entry
    return summary


def merge(report: dict, other: dict) -> None:
    """Adds `other`'s finished evaluations (same sizes) to `report`'s cells."""
    for mine, theirs in zip(report["cells"], other.get("cells", [])):
        for name, value in theirs.get("proxies", {}).items():
            mine["proxies"].setdefault(name, value)
        if theirs.get("reference") and not mine.get("reference"):
            mine["reference"] = theirs["reference"]
        for seed, value in theirs.get("reference_repeats", {}).items():
            mine.setdefault("reference_repeats", {}).setdefault(seed, value)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes: checks it runs"
    )
    parser.add_argument("--out", default="benchmarks/results/search_fidelity.json")
    parser.add_argument(
        "--workdir",
        default="tuning/search_fidelity",
        help="the reference trainings' runs (resumable)",
    )
    parser.add_argument(
        "--parts", default="proxies,reference,noise,report", help="comma-separated"
    )
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--noise-cells",
        default="0,1",
        help="part `noise`: these cells' reference training again with seed 1 "
        "(the reference's own seed-to-seed noise, the ceiling of any tau)",
    )
    args = parser.parse_args(argv)
    size = json.loads(json.dumps(SIZES["quick" if args.quick else "full"]))
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in size:
            parser.error(f"unknown size {key!r}; known: {', '.join(size)}")
        try:
            size[key] = json.loads(value)
        except json.JSONDecodeError:
            parser.error(f"--set {key}: the value must be JSON. Received: {value!r}")

    from keras_convnets.training import io

    proxies = list(ZERO_COST) + list(size["train_proxies"])
    if os.path.exists(args.out):
        report = io.read_json(args.out)
        # Proxies may be added to a run; the cells and the reference may not
        # change, nor a proxy that has scores.
        fixed = [k for k in size if k not in ("train_proxies", "naswot_batch")]
        stored = report.get("sizes", {})
        changed = [k for k in fixed if stored.get(k) != size[k]]
        scored = {n for c in report.get("cells", []) for n in c.get("proxies", {})}
        for name, spec in (stored.get("train_proxies") or {}).items():
            new = size["train_proxies"].get(name, spec)
            if name in scored and spec != new:
                changed.append(f"train_proxies.{name}")
        if changed:
            sys.exit(
                f"error: {args.out} holds a run with other sizes "
                f"({', '.join(changed)}); pass another --out to start afresh."
            )
        report["sizes"] = {
            **size,
            "train_proxies": {
                **stored.get("train_proxies", {}),
                **size["train_proxies"],
            },
        }
        report["proxies"] = list(dict.fromkeys(report.get("proxies", []) + proxies))
    else:
        report = {"sizes": size, "proxies": proxies, "cells": []}
    report.update(
        command=" ".join(sys.argv),
        machine=machine_info(),
        nice=os.nice(0),
        load_average_at_start=os.getloadavg(),
    )
    genotypes = _genotypes(size)
    while len(report["cells"]) < len(genotypes):
        i = len(report["cells"])
        report["cells"].append(
            {"index": i, "genotype": genotypes[i].to_dict(), "proxies": {}}
        )

    def save():
        # Several processes may fill one file (e.g. `--parts proxies` beside
        # `--parts reference`): under a lock, merge what is on disk into this
        # process's report before writing it.
        with open(args.out + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if os.path.exists(args.out):
                merge(report, io.read_json(args.out))
            io.atomic_write_json(args.out, report)

    parts = args.parts.split(",")
    if "proxies" in parts:
        import numpy as np

        data = {}

        def proxy_data(fraction):
            if fraction not in data:
                data.clear()  # one pipeline at a time
                data[fraction] = _data(size, fraction)
            return data[fraction]

        info = proxy_data(size["validation_fraction"])[2]
        images = np.concatenate(
            [
                x.numpy()
                for x, _ in proxy_data(size["validation_fraction"])[0].take(
                    math.ceil(size["naswot_batch"] / 128)
                )
            ]
        )[: size["naswot_batch"]]
        for name in proxies:
            for cell, genotype in zip(report["cells"], genotypes):
                if name in cell["proxies"]:
                    continue
                cpu, wall = time.process_time(), time.perf_counter()
                if name in ZERO_COST:
                    score = zero_cost_score(name, genotype, size, info, images)
                else:
                    proxy = report["sizes"]["train_proxies"][name]
                    score = train_proxy_score(
                        genotype, size, proxy, proxy_data(proxy["fraction"])
                    )
                cell["proxies"][name] = {
                    "score": score,
                    "cpu_s": round(time.process_time() - cpu, 3),
                    "wall_s": round(time.perf_counter() - wall, 3),
                }
                print(f"cell {cell['index']} {name}: {score:.4f}", flush=True)
                save()
    if "reference" in parts:
        for cell, genotype in zip(report["cells"], genotypes):
            if cell.get("reference"):
                continue
            cpu, wall = time.process_time(), time.perf_counter()
            result = reference_score(
                genotype,
                filters=size["filters"],
                stem_stride=size["stem_stride"],
                epochs=size["reference_epochs"],
                train_fraction=size["reference_train_fraction"],
                workdir=args.workdir,
                run_name=f"fidelity-cell{cell['index']}",
            )
            result.update(
                cpu_s=round(time.process_time() - cpu, 1),
                wall_s=round(time.perf_counter() - wall, 1),
            )
            cell["reference"] = result
            print(
                f"cell {cell['index']} reference: {result['val_accuracy']:.4f}",
                flush=True,
            )
            report["summary"] = correlations(report)
            save()
    if "noise" in parts:
        for i in [int(v) for v in args.noise_cells.split(",") if v.strip()]:
            cell = report["cells"][i]
            if "1" in cell.get("reference_repeats", {}):
                continue
            result = reference_score(
                genotypes[i],
                filters=size["filters"],
                stem_stride=size["stem_stride"],
                epochs=size["reference_epochs"],
                train_fraction=size["reference_train_fraction"],
                workdir=args.workdir,
                run_name=f"fidelity-cell{i}-seed1",
                seed=1,
            )
            cell.setdefault("reference_repeats", {})["1"] = result
            print(
                f"cell {i} reference, seed 1: {result['val_accuracy']:.4f}", flush=True
            )
            save()
    if os.path.exists(args.out):
        merge(report, io.read_json(args.out))
    report["reference_noise"] = reference_noise(report)
    report["summary"] = correlations(report)
    report["chosen_proxy"] = choose_proxy(report["summary"])
    report["load_average_at_end"] = os.getloadavg()
    save()
    for name, entry in report["summary"].items():
        print(name, entry)
    print(f"chosen proxy: {report['chosen_proxy']}; wrote {args.out}")


if __name__ == "__main__":
    main()

"""Architecture-search benchmark: evolution vs random, overhead, memory, transfer.

Four parts, one JSON file (default `benchmarks/results/search.json`):

1. `compare`: regularized evolution vs random search at an equal CPU budget
   (process CPU time per search) on the proxy task, several seeds; the best
   proxy validation accuracy against CPU-seconds, and the reference accuracy
   of each search's best cell (`benchmarks/search_fidelity.py`'s reference
   training: the fast recipe, 5 epochs on the full training split, scored on
   validation).
2. `overhead_memory`: one search of many small trials; per-trial time
   outside `fit` (building, FLOP counting, checkpoints, oracle, reports) as a
   share of the trial time, and the process RSS after every trial (memory must
   stay flat: KerasTuner clears the Keras session between trials).
3. `transfer`: an evolution search boxed in process CPU time (all TF
   threads, each trial's own process included, so the budget means the same
   on a loaded machine; wall time is recorded too), its best cell stacked (N=1,
   the widest F within the recipe net's parameters) and trained with the
   fast recipe through `train_and_evaluate` (selected on validation, tested
   once), against the fast recipe's own network.
4. `memory`: RSS after each of 50 tiny trials of a search with the default
   flags (each trial in its own process, graph mode); must grow by at most
   1 MB per trial.
5. `end_to_end` (run with `--parts end_to_end`): `keras-convnets search` with
   the default settings, then the found cell against `simple_cnn` at no more
   parameters, the fast recipe, 3 seeds, every step a fresh process.

    python benchmarks/search.py --quick            # minutes on 2 CPU cores
    python benchmarks/search.py                    # hours: 1 CPU-hour search
    python benchmarks/search.py --parts compare --set compare_cpu_seconds=600

`--set KEY=VALUE` replaces one entry of the size (JSON values); the resolved
sizes and the command are written into the JSON. Run each part in its own
process (`--parts`) when several must share the CPU: the transfer budget is
the CPU time of its process.

The quick form uses tiny proxies, so its accuracies say nothing about which
search is better; it checks that every part runs and measures overhead and
memory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import replace

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._machine import machine_info  # noqa: E402

SIZES = {
    "quick": dict(
        seeds=3,
        trials=6,
        population=3,
        sample=2,
        blocks=2,
        filters=8,
        proxy_fraction=0.02,
        proxy_epochs=1,
        validation_fraction=0.02,
        run_eagerly=True,
        memory_trials=30,
        memory_fraction=0.02,
        memory_run_eagerly=True,
        compare_cpu_seconds=20,
        compare_search_defaults=False,
        compare_reference=dict(filters=4, epochs=1, train_fraction=0.05),
        search_cpu_seconds=90,
        flat_memory_trials=50,
        flat_memory_run_eagerly=None,
        final_recipe="fast",
        final_overrides=dict(epochs=1, train_fraction=0.1),
        final_max_filters=16,
        e2e_search_args=[
            "--max-trials",
            "2",
            "--blocks",
            "1",
            "--filters",
            "4",
            "--proxy-fraction",
            "0.02",
            "--proxy-epochs",
            "1",
        ],  # fmt: skip
        e2e_search_cpu_budget_s=3600,
        e2e_train_args=["--epochs", "1", "--train-fraction", "0.05"],
        e2e_seeds=1,
    ),
    # Sized for 2 shared CPU cores within about two hours: a proxy trial
    # (B=3, F=8, 5% of the training split, one epoch, graph mode) takes about
    # 25 CPU-seconds and scores 0.3-0.7 validation accuracy, so cells differ.
    "full": dict(
        seeds=5,
        trials=12,
        population=4,
        sample=2,
        blocks=3,
        filters=8,
        proxy_fraction=0.05,
        proxy_epochs=1,
        validation_fraction=0.05,
        run_eagerly=False,
        memory_trials=30,
        memory_fraction=0.02,
        # Eager skips tracing; graph mode (False) shows the per-trial graph
        # memory Keras/TF keep (see README "Benchmark").
        memory_run_eagerly=True,
        # The `compare` part: each search's process CPU time, and the
        # reference training of its best cell (search_fidelity's reference).
        compare_cpu_seconds=900,
        # True: the searches as a user runs them (SearchConfig's defaults);
        # False: the size's proxy keys above.
        compare_search_defaults=True,
        compare_reference=dict(filters=16, epochs=5, train_fraction=1.0),
        # The `memory` part: this many trials with the default flags.
        flat_memory_trials=50,
        flat_memory_run_eagerly=None,
        # Process CPU time (every TF thread, trial processes included), not wall.
        search_cpu_seconds=3600,
        # The final training: this recipe (falls back to "default" if absent),
        # with these fields replaced (none: the recipe as it is).
        final_recipe="fast",
        final_overrides=dict(),
        # Widest first-stage filters for the searched net (None: as wide as
        # the recipe net's parameter count allows).
        final_max_filters=None,
        # The `end_to_end` part: the search and the trainings as a user runs
        # them (no extra flags), 3 seeds.
        e2e_search_args=[],
        e2e_search_cpu_budget_s=3600,
        e2e_train_args=[],
        e2e_seeds=3,
    ),
}


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children.

    A search trains each trial in a child process by default
    (`isolate_trials`); the children are waited for after each trial, so
    `RUSAGE_CHILDREN` has counted every trial when a budget is checked.
    """
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _config(size, directory, project, **overrides):
    from keras_convnets.search.runner import SearchConfig

    values = dict(
        max_trials=size["trials"],
        population_size=size["population"],
        sample_size=size["sample"],
        blocks=size["blocks"],
        filters=(size["filters"],),
        proxy_fraction=size["proxy_fraction"],
        proxy_epochs=size["proxy_epochs"],
        validation_fraction=size["validation_fraction"],
        run_eagerly=size["run_eagerly"],
        isolate_trials=size.get("isolate_trials", True),
        directory=directory,
        project=project,
        overwrite=True,
    )
    values.update(overrides)
    return SearchConfig(**values).validate()


def _boxed_search(config, budget, label):
    """Runs `config`'s search until its process CPU time exceeds `budget`.

    Resumable: `benchmark_search_progress.json` (written after every trial)
    holds the CPU and wall time earlier runs spent and the CPU time at the end
    of each trial; a rerun resumes the search and counts them against the
    budget. A finished search (`benchmark_search.json`) is read back.

    Returns:
        dict: the search's CPU and wall time, trials, the proxy validation
        accuracy and cumulative CPU-seconds after each trial, and the best
        trial's genotype.
    """
    from keras_convnets.search.runner import load_trials, run_search, write_reports
    from keras_convnets.training import io

    done_path = os.path.join(config.project_dir, "benchmark_search.json")
    progress_path = os.path.join(config.project_dir, "benchmark_search_progress.json")
    if os.path.exists(done_path):
        print(
            f"{label}: reusing the finished search in {config.project_dir}", flush=True
        )
        return io.read_json(done_path)
    spent = {"cpu_s": 0.0, "wall_s": 0.0, "runs": 0, "trial_cpu_s": []}
    if os.path.exists(progress_path) and os.path.exists(
        os.path.join(config.project_dir, "search_config.json")
    ):
        spent = {**spent, **io.read_json(progress_path)}
        print(
            f"{label}: resuming the search in {config.project_dir} after "
            f"{spent['cpu_s']:.0f} of {budget} CPU-s",
            flush=True,
        )
        config = replace(config, overwrite=False)
    else:
        config = replace(config, overwrite=True)
    cpu0, wall0 = _cpu_s(), time.perf_counter()
    trial_cpu = list(spent["trial_cpu_s"])

    def used():
        return {
            "cpu_s": round(spent["cpu_s"] + _cpu_s() - cpu0, 1),
            "wall_s": round(spent["wall_s"] + time.perf_counter() - wall0, 1),
            "runs": spent.get("runs", 0) + 1,
            "trial_cpu_s": trial_cpu,
        }

    def stop_when_spent(tuner):
        now = used()
        trial_cpu.append(now["cpu_s"])
        io.atomic_write_json(progress_path, now)
        if now["cpu_s"] > budget:
            raise _Budget

    if spent["cpu_s"] <= budget:
        try:
            run_search(config, verbose=0, on_trial_end=stop_when_spent)
        except _Budget:
            pass
    record = write_reports(config.project_dir)
    rows = load_trials(config.project_dir)
    now = used()
    search = {
        "search_cpu_budget_s": budget,
        "search_cpu_s": now["cpu_s"],
        "search_wall_s": now["wall_s"],
        "search_processes": now["runs"],
        "search_trials": record["completed"],
        "val_accuracy_per_trial": [
            None if r["val_accuracy"] is None else round(r["val_accuracy"], 4)
            for r in rows
        ],
        "cpu_s_after_trial": trial_cpu,
        "best_trial": record["best"]["trial_id"],
        "best_proxy_val_accuracy": round(record["best"]["val_accuracy"], 4),
        "best_proxy_params": int(record["best"]["params"]),
        "genotype": record["best"]["genotype"],
        "best_genotype_path": record["paths"]["best_genotype"],
    }
    io.atomic_write_json(done_path, search)
    return search


def best_so_far_on_grid(val_per_trial, cpu_after_trial, grid):
    """The best proxy accuracy reached by each CPU time of `grid` (None before
    the first trial ends)."""
    out = []
    for t in grid:
        seen = [
            v
            for v, c in zip(val_per_trial, cpu_after_trial)
            if c <= t and v is not None
        ]
        out.append(max(seen) if seen else None)
    return out


def _mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return round(statistics.mean(values), 4), round(statistics.pstdev(values), 4)


def compare(size, directory, save=None):
    """Evolution vs random at an equal CPU budget, seeds interleaved.

    Each search runs until its process CPU time passes `compare_cpu_seconds`
    (resumable, `_boxed_search`); then each search's best cell gets the
    reference training (`search_fidelity.reference_score`). With
    `compare_search_defaults`, the searches use `SearchConfig`'s defaults
    (the proxy a user gets); otherwise the size's proxy keys.
    """
    from benchmarks.search_fidelity import reference_score
    from keras_convnets.search.genotype import Genotype
    from keras_convnets.search.runner import SearchConfig

    budget = size["compare_cpu_seconds"]
    tuners = ("random", "evolution")
    result = {t: {"runs": []} for t in tuners}

    def summarize():
        # Up to the latest trial end (a search stops after the first trial
        # that ends past the budget, so every search ends a little past it).
        last = max(
            [budget]
            + [
                r["search"]["cpu_s_after_trial"][-1]
                for t in tuners
                for r in result[t]["runs"]
                if r["search"]["cpu_s_after_trial"]
            ]
        )
        grid = [round(last * k / 10, 1) for k in range(1, 11)]
        for t in tuners:
            runs = result[t]["runs"]
            curves = [
                best_so_far_on_grid(
                    r["search"]["val_accuracy_per_trial"],
                    r["search"]["cpu_s_after_trial"],
                    grid,
                )
                for r in runs
            ]
            result[t]["cpu_grid_s"] = grid
            result[t]["best_so_far_mean_std"] = [
                _mean_std([c[i] for c in curves]) for i in range(len(grid))
            ]
            refs = [r.get("reference", {}).get("val_accuracy") for r in runs]
            mean, std = _mean_std(refs)
            result[t].update(reference_val_mean=mean, reference_val_std=std)
            finals = [r["search"]["best_proxy_val_accuracy"] for r in runs]
            mean, std = _mean_std(finals)
            result[t].update(proxy_best_mean=mean, proxy_best_std=std)
        if save is not None:
            save(result)

    for seed in range(size["seeds"]):
        for tuner in tuners:
            project = f"{tuner}-{seed}"
            if size.get("compare_search_defaults"):
                config = SearchConfig(
                    tuner=tuner,
                    seed=seed,
                    max_trials=10_000,
                    directory=directory,
                    project=project,
                ).validate()
            else:
                config = _config(
                    size, directory, project, tuner=tuner, seed=seed, max_trials=10_000
                )
            search = _boxed_search(config, budget, f"compare {project}")
            result[tuner]["runs"].append({"seed": seed, "search": search})
            print(
                f"compare {project}: {search['search_trials']} trials, best proxy "
                f"{search['best_proxy_val_accuracy']}",
                flush=True,
            )
            summarize()
    ref = size["compare_reference"]
    for seed in range(size["seeds"]):
        for tuner in tuners:
            run = result[tuner]["runs"][seed]
            cpu = _cpu_s()
            reference = reference_score(
                Genotype.from_dict(run["search"]["genotype"]),
                filters=ref["filters"],
                stem_stride=SearchConfig.stem_stride,
                epochs=ref["epochs"],
                train_fraction=ref["train_fraction"],
                workdir=os.path.join(directory, "compare_runs"),
                run_name=f"{tuner}-{seed}",
            )
            reference["cpu_s"] = round(_cpu_s() - cpu, 1)
            run["reference"] = reference
            print(
                f"compare {tuner}-{seed} reference: {reference['val_accuracy']:.4f}",
                flush=True,
            )
            summarize()
    summarize()
    return result


def overhead_memory(size, directory):
    from keras_convnets.search.runner import load_trials, run_search

    config = _config(
        size,
        directory,
        "memory",
        tuner="random",
        max_trials=size["memory_trials"],
        blocks=1,
        filters=(4,),
        proxy_fraction=size["memory_fraction"],
        validation_fraction=0.02,
        run_eagerly=size.get("memory_run_eagerly", True),
    )
    rss = []
    start = time.perf_counter()
    run_search(config, verbose=0, on_trial_end=lambda tuner: rss.append(_rss_mb()))
    wall = time.perf_counter() - start
    rows = load_trials(config.project_dir)
    fit = sum(r["fit_seconds"] for r in rows)
    trial = sum(r["seconds"] for r in rows)
    tail = rss[len(rss) // 3 :]
    slope = _slope(list(range(len(tail))), tail)
    return {
        "trials": len(rows),
        "run_eagerly": config.run_eagerly,
        "search_wall_s": round(wall, 2),
        "fit_s": round(fit, 2),
        "run_trial_s": round(trial, 2),
        "overhead_share_of_run_trial": round(1 - fit / trial, 3),
        "overhead_share_of_wall": round(1 - fit / wall, 3),
        "median_trial_s": round(statistics.median(r["seconds"] for r in rows), 2),
        "rss_mb_after_each_trial": [round(v, 1) for v in rss],
        "rss_growth_mb_per_trial_after_warmup": round(slope, 2),
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory(size, directory, save=None):
    """RSS after each of `flat_memory_trials` tiny trials, default flags.

    The search as a user runs it (no `run_eagerly` or other flag unless
    `flat_memory_run_eagerly` is set): by default each trial's tiny cell net
    is built and trained in a process of its own, in graph mode, and the
    search's process only keeps the oracle and the reports. The growth per
    trial is the least-squares slope of the search process's RSS over trials,
    after the first five (TensorFlow's kernels and caches warm up); each
    trial process's peak RSS is reported beside it.
    """
    from keras_convnets.search.runner import (
        SearchConfig,
        load_trials,
        read_runs,
        run_search,
    )

    overrides = dict(
        # The default tuner: evolution, whose SynFlow screening builds
        # candidate networks in the search's own process.
        tuner=SearchConfig.tuner,
        max_trials=size["flat_memory_trials"],
        blocks=1,
        filters=(4,),
        proxy_fraction=size["memory_fraction"],
        validation_fraction=0.02,
        proxy_epochs=1,
    )
    eager = size.get("flat_memory_run_eagerly")
    config = _config(size, directory, "memory-default", **overrides)
    # `_config` copies the size's run_eagerly; the default flags are wanted.
    config = replace(
        config,
        run_eagerly=SearchConfig.run_eagerly if eager is None else bool(eager),
        isolate_trials=SearchConfig.isolate_trials,
        population_size=SearchConfig.population_size,
        sample_size=SearchConfig.sample_size,
        screen_candidates=SearchConfig.screen_candidates,
    )
    rss = []
    start = time.perf_counter()

    def at_trial_end(tuner):
        rss.append(_rss_mb())
        if save is not None:  # a long run keeps what it measured
            save({"cpu_model": _cpu_model(), "rss_mb_after_each_trial": rss})

    run_search(config, verbose=0, on_trial_end=at_trial_end)
    wall = time.perf_counter() - start
    rows = load_trials(config.project_dir)
    warm = rss[5:] if len(rss) > 7 else rss
    processes = [
        run["trial_process"]
        for name in sorted(os.listdir(config.project_dir))
        if name.startswith("trial_")
        for run in read_runs(os.path.join(config.project_dir, name))
        if run.get("trial_process")
    ]
    return {
        "cpu_model": _cpu_model(),
        "flags": {
            k: v
            for k, v in config.to_dict().items()
            if k not in ("directory", "project", "overwrite")
        },
        "trials": len(rows),
        "search_wall_s": round(wall, 1),
        "median_trial_s": round(statistics.median(r["seconds"] for r in rows), 2),
        "rss_mb_after_each_trial": [round(v, 1) for v in rss],
        "rss_growth_mb_per_trial_after_5": round(
            _slope(list(range(len(warm))), warm), 3
        ),
        "rss_growth_mb_first_to_last_after_5": round(warm[-1] - warm[0], 1)
        if warm
        else None,
        # Each trial's own process (isolate_trials): gone when the trial ends.
        "trial_processes": len(processes),
        "trial_process_peak_rss_mb": [p["peak_rss_mb"] for p in processes],
        "trial_process_median_cpu_s": round(
            statistics.median(p["cpu_s"] for p in processes), 2
        )
        if processes
        else None,
    }


def _slope(x, y):
    if len(x) < 2:
        return 0.0
    mx, my = statistics.mean(x), statistics.mean(y)
    den = sum((a - mx) ** 2 for a in x)
    return sum((a - mx) * (b - my) for a, b in zip(x, y)) / den if den else 0.0


class _Budget(Exception):
    pass


def _final_recipe(size):
    from keras_convnets.training.config import RECIPES, get_recipe

    name = size["final_recipe"] if size["final_recipe"] in RECIPES else "default"
    return replace(get_recipe(name), **size["final_overrides"]), name


def _train_or_reuse(train_config):
    """`train_and_evaluate`, unless the run already finished with this config.

    An unfinished run of the same config resumes (`train_and_evaluate`
    resumes it), so an interrupted benchmark loses no finished training.
    """
    from keras_convnets.training import io
    from keras_convnets.training.config import config_from_dict
    from keras_convnets.training.train import train_and_evaluate

    run_dir = os.path.join(train_config.workdir, train_config.run_name)
    record_path = os.path.join(run_dir, "run.json")
    config_path = os.path.join(run_dir, "config.json")
    if os.path.exists(record_path) and os.path.exists(config_path):
        done = config_from_dict(io.read_json(config_path), where=config_path)
        if done.identity() == train_config.identity():
            print(f"transfer: reusing the finished run {run_dir}", flush=True)
            return io.read_json(record_path), True
    return train_and_evaluate(train_config, verbose=0), False


def transfer(size, directory, save=None):
    """A CPU-time-boxed evolution search; its best cell trained vs the recipe's net.

    Both final trainings go through `train_and_evaluate` with the same recipe:
    model selection on the validation split, test accuracy reported once.
    The search is skipped if `directory/transfer` already holds a finished one
    (the final training can be rerun alone); an interrupted one resumes, with
    the CPU time its earlier runs spent (`benchmark_search_progress.json`,
    written after every trial) counted against the budget.
    """
    from keras_convnets.models.nas_cell_net import filters_for_budget
    from keras_convnets.models.registry import get_model
    from keras_convnets.training.train import make_datasets

    config = _config(
        size,
        directory,
        "transfer",
        tuner="evolution",
        max_trials=10_000,
        overwrite=False,
    )
    search = _boxed_search(config, size["search_cpu_seconds"], "transfer")
    print(f"transfer search: {search}", flush=True)
    if save is not None:
        save(dict(search))

    recipe, recipe_name = _final_recipe(size)
    recipe = replace(
        recipe,
        workdir=os.path.join(directory, "transfer_runs"),
        tensorboard_images=0,
        overwrite=True,
    )
    # The widest stack of the found cell (N=1) within the recipe net's parameters.
    info = make_datasets(recipe)[3]
    budget_params = get_model(
        recipe.model, info.image_shape, info.num_classes, **recipe.model_kwargs
    ).count_params()
    filters = filters_for_budget(
        search["best_genotype_path"],
        info.image_shape,
        info.num_classes,
        cells=1,
        params_budget=budget_params,
    )
    filters = min(filters, size["final_max_filters"] or filters)
    runs = {
        "hand_designed": replace(recipe, run_name="hand_designed"),
        "searched_cell": replace(
            recipe,
            run_name="searched_cell",
            model="nas_cell_net",
            model_kwargs={
                "genotype": search["best_genotype_path"],
                "cells": 1,
                "filters": filters,
            },
        ),
    }
    models = {}
    for name, train_config in runs.items():
        cpu, wall = _cpu_s(), time.perf_counter()
        run, reused = _train_or_reuse(train_config)
        models[name] = {
            "model": train_config.model if name == "hand_designed" else "genotype",
            "params": run["params"],
            "best_epoch": run["best_epoch"],
            "validation_accuracy": round(run["validation_accuracy"], 4),
            "test_accuracy": round(run["test_accuracy"], 4),
            # A reused run's CPU time is not known here; its wall time is.
            "train_cpu_s": None if reused else round(_cpu_s() - cpu, 1),
            "train_wall_s": run.get("wall_time_s")
            if reused
            else round(time.perf_counter() - wall, 1),
            "fit_wall_s": run["fit_time_s"],
            # Reused: a finished run of the same config from an earlier
            # process (its times are in run.json); resumed: this process
            # continued an interrupted run, so the times above cover only the
            # rest (run.json's fit_time_s covers this process's fit).
            "reused_finished_run": reused,
            "resumed": bool(run.get("resumed")),
        }
        print(f"transfer {name}: {models[name]}", flush=True)
        if save is not None:
            save({**search, "models": dict(models)})
    return {
        **search,
        "cells": 1,
        "filters": filters,
        "recipe": recipe_name,
        "recipe_overrides": size["final_overrides"],
        "params_budget": int(budget_params),
        "recipe_config": {
            k: getattr(recipe, k)
            for k in (
                "model",
                "epochs",
                "train_fraction",
                "batch_size",
                "optimizer",
                "schedule",
                "learning_rate",
                "augment",
                "validation_fraction",
            )
        },
        "models": models,
    }


def _cli_cpu_run(args, log_path):
    """Runs `python -m keras_convnets ARGS` in a fresh process; its wall and
    CPU seconds (its own and its children's: a search's trial processes) and
    its stdout. Raises with the log's tail if the command failed."""
    import resource
    import subprocess

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    with open(log_path, "ab") as log:
        process = subprocess.run(
            [sys.executable, "-m", "keras_convnets", *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=log,
        )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if process.returncode != 0:
        with open(log_path, "rb") as f:
            tail = f.read()[-2000:].decode(errors="replace")
        raise RuntimeError(f"{' '.join(map(str, args))} failed:\n{tail}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "wall_s": round(time.perf_counter() - wall, 1),
        "cpu_s": round(cpu, 1),
        "stdout": process.stdout.decode(errors="replace"),
    }


def _json_tail(stdout: str):
    """The last JSON document a `--json` command printed: `json.dumps(indent=2)`
    opens it with a line of its own (`{`); other output may follow it."""
    decoder, found = json.JSONDecoder(), None
    offset = 0
    for line in stdout.splitlines(keepends=True):
        if line.rstrip("\n") == "{":
            try:
                found = decoder.raw_decode(stdout, offset)[0]
            except json.JSONDecodeError:
                pass
        offset += len(line)
    if found is None:
        raise ValueError("the command printed no JSON record")
    return found


def end_to_end(size, directory, save=None):
    """Issue 17's end-to-end claim, as a user runs it, every step a fresh process.

    1. `keras-convnets search` with the default settings (`e2e_search_args`
       add nothing in the full size) and `--params-budget` set to
       `simple_cnn`'s parameter count, so the found cell is stacked at no
       more parameters. Its CPU time (trial processes included) is recorded
       against `e2e_search_cpu_budget_s`.
    2. For each seed: `keras-convnets train` (the fast recipe, `make train`'s)
       of `simple_cnn`, then of the found cell (`--genotype
       best_genotype.json --params-budget P`), each in a fresh process;
       test accuracy (reported once per run), wall and fit time, parameters.
    Resumable: the search CLI resumes its project; a finished training
    (run.json) is read back, an unfinished one resumes.
    """
    from keras_convnets.models.registry import get_model
    from keras_convnets.search.reports import read_runs
    from keras_convnets.training import io
    from keras_convnets.training.config import get_recipe

    root = os.path.join(directory, "end_to_end")
    os.makedirs(root, exist_ok=True)
    log = os.path.join(root, "commands.log")
    progress_path = os.path.join(root, "end_to_end.json")
    result = io.read_json(progress_path) if os.path.exists(progress_path) else {}
    # simple_cnn as `make train` builds it (the fast recipe's model arguments).
    recipe = get_recipe("fast")
    params = get_model(
        "simple_cnn", (28, 28, 1), 10, **recipe.model_kwargs
    ).count_params()
    result.update(
        simple_cnn_params=params,
        search_args=list(size["e2e_search_args"]),
        train_args=list(size["e2e_train_args"]),
        seeds=list(range(size["e2e_seeds"])),
    )

    def keep():
        io.atomic_write_json(progress_path, result)
        if save is not None:
            save(dict(result))

    project = os.path.join(root, "search")
    if "search" not in result:
        args = [
            "search", "--directory", root, "--project", "search",
            "--params-budget", params, "--json", *size["e2e_search_args"],
        ]  # fmt: skip
        # A search interrupted before (its process's CPU time lost with it)
        # resumes: its finished trials' processes are counted from runs.json,
        # and the record says it was resumed.
        resumed = os.path.exists(os.path.join(project, "search_config.json"))
        run = _cli_cpu_run(args, log)
        record = _json_tail(run["stdout"])
        trial_cpu = sum(
            r["trial_process"]["cpu_s"]
            for name in os.listdir(project)
            if name.startswith("trial_")
            for r in read_runs(os.path.join(project, name))
            if r.get("trial_process")
        )
        cpu = run["cpu_s"] if not resumed else max(run["cpu_s"], trial_cpu)
        result["search"] = {
            "command": "keras-convnets " + " ".join(map(str, args)),
            "cpu_s": cpu,
            "last_process_cpu_s": run["cpu_s"],
            "trial_processes_cpu_s": round(trial_cpu, 1),
            "resumed": resumed,
            "wall_s": run["wall_s"],
            "cpu_budget_s": size["e2e_search_cpu_budget_s"],
            "within_budget": cpu <= size["e2e_search_cpu_budget_s"],
            "trials": record["trials"],
            "completed": record["completed"],
            "best_trial": record["best"]["trial_id"],
            "best_proxy_val_accuracy": round(record["best"]["val_accuracy"], 4),
            "stacking": record.get("stacking"),
            "genotype": record["best"]["genotype"],
        }
        print(f"end_to_end search: {result['search']}", flush=True)
        keep()
    genotype = os.path.join(project, "best_genotype.json")
    runs = result.setdefault("runs", {})
    for seed in result["seeds"]:
        for name in ("simple_cnn", "searched_cell"):
            key = f"{name}-seed{seed}"
            if key in runs:
                continue
            model = (
                ["--model", "simple_cnn"]
                if name == "simple_cnn"
                # As the search's "Next:" line says: its N, F filling the budget.
                else [
                    "--genotype",
                    genotype,
                    "--params-budget",
                    params,
                    "--cells",
                    (result["search"].get("stacking") or {}).get("cells", 1),
                ]  # fmt: skip
            )
            args = [
                "train", *model, "--seed", seed, "--workdir", os.path.join(root, "runs"),
                "--run-name", key, "--json", *size["e2e_train_args"],
            ]  # fmt: skip
            run = _cli_cpu_run(args, log)
            record = _json_tail(run["stdout"])
            runs[key] = {
                "command": "keras-convnets " + " ".join(map(str, args)),
                "params": record["params"],
                "test_accuracy": round(record["test_accuracy"], 4),
                "validation_accuracy": round(record["validation_accuracy"], 4),
                "best_epoch": record["best_epoch"],
                "command_wall_s": run["wall_s"],
                "command_cpu_s": run["cpu_s"],
                "fit_time_s": record.get("fit_time_s"),
                "precision": record.get("precision"),
                "resumed": bool(record.get("resumed")),
            }
            print(f"end_to_end {key}: {runs[key]}", flush=True)
            keep()
    summary = {}
    for name in ("simple_cnn", "searched_cell"):
        done = [runs[f"{name}-seed{s}"] for s in result["seeds"]]
        summary[name] = {
            "median_test_accuracy": statistics.median(r["test_accuracy"] for r in done),
            "test_accuracies": [r["test_accuracy"] for r in done],
            "median_command_wall_s": statistics.median(
                r["command_wall_s"] for r in done
            ),
            "params": done[0]["params"],
        }
    a, b = summary["searched_cell"], summary["simple_cnn"]
    summary["test_points_above_simple_cnn"] = round(
        100 * (a["median_test_accuracy"] - b["median_test_accuracy"]), 2
    )
    summary["time_ratio"] = round(
        a["median_command_wall_s"] / b["median_command_wall_s"], 2
    )
    summary["goal_met"] = (
        summary["test_points_above_simple_cnn"] >= 0.2
        and summary["time_ratio"] <= 1.5
        and a["params"] <= b["params"]
        and result["search"]["within_budget"]
    )
    result["summary"] = summary
    keep()
    return result


def _parse_set(items):
    """`--set key=value` (JSON values, bare strings allowed) to a dict."""
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="minutes, tiny proxies")
    parser.add_argument("--out", default="benchmarks/results/search.json")
    parser.add_argument(
        "--parts",
        default="compare,overhead_memory,transfer,memory",
        help="comma-separated",
    )
    parser.add_argument("--directory", help="search projects (default: a temp dir)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a size, e.g. --set trials=8 --set final_overrides='{\"epochs\": 2}'",
    )
    args = parser.parse_args(argv)
    size = dict(SIZES["quick" if args.quick else "full"])
    overrides = _parse_set(args.set)
    unknown = sorted(set(overrides) - set(size))
    if unknown:
        parser.error(f"unknown size {unknown[0]!r}; known: {', '.join(size)}")
    size.update(overrides)

    import keras
    import keras_tuner
    import tensorflow as tf

    from keras_convnets.training import io

    parts = {
        "compare": compare,
        "overhead_memory": overhead_memory,
        "transfer": transfer,
        "memory": memory,
        "end_to_end": end_to_end,
    }
    report = {
        "mode": "quick" if args.quick else "full",
        "sizes": size,
        "overrides": overrides,
        "command": " ".join(sys.argv),
        "versions": {
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "keras_tuner": keras_tuner.__version__,
            "python": platform.python_version(),
        },
        "machine": machine_info(),
        "nice": os.nice(0),
        "load_average_at_start": os.getloadavg(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        directory = args.directory or tmp
        for name in args.parts.split(","):
            t, cpu = time.perf_counter(), _cpu_s()

            def save(partial, name=name):
                report[name] = {**partial, "finished": False}
                io.atomic_write_json(args.out, report)

            fn = parts[name]
            result = (
                fn(size, directory, save)
                if name != "overhead_memory"
                else fn(size, directory)
            )
            report[name] = result
            report[name]["part_wall_s"] = round(time.perf_counter() - t, 1)
            report[name]["part_cpu_s"] = round(_cpu_s() - cpu, 1)
            report[name]["load_average_at_end"] = os.getloadavg()
            io.atomic_write_json(args.out, report)  # keep what finished
    report["load_average_at_end"] = os.getloadavg()
    io.atomic_write_json(args.out, report)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""Architecture-search benchmark: evolution vs random, overhead, memory, transfer.

Three parts, one JSON file (default `benchmarks/results/search.json`):

1. `compare`: regularized evolution vs random search at an equal trial budget
   on a proxy task, several seeds; best validation accuracy after each trial.
2. `overhead_memory`: one search of many small trials; per-trial time
   outside `fit` (building, FLOP counting, checkpoints, oracle, reports) as a
   share of the trial time, and the process RSS after every trial (memory must
   stay flat: KerasTuner clears the Keras session between trials).
3. `transfer`: a time-boxed evolution search, its best cell stacked and
   trained on the full task with the fast recipe, against the hand-designed
   fast-recipe network (`simple_cnn`) at equal or fewer parameters.

    python benchmarks/search.py --quick            # minutes on 2 CPU cores
    python benchmarks/search.py                    # hours: 1 CPU-hour search

The quick form uses tiny proxies, so its accuracies say nothing about which
search is better; it checks that every part runs and measures overhead and
memory.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

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
        memory_trials=30,
        search_seconds=90,
        final_epochs=1,
        final_fraction=0.1,
        run_eagerly=True,
    ),
    "full": dict(
        seeds=3,
        trials=40,
        population=10,
        sample=3,
        blocks=3,
        filters=16,
        proxy_fraction=0.1,
        proxy_epochs=2,
        validation_fraction=0.1,
        memory_trials=40,
        search_seconds=3600,
        final_epochs=12,
        final_fraction=1.0,
        run_eagerly=False,
    ),
}


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
        directory=directory,
        project=project,
        overwrite=True,
    )
    values.update(overrides)
    return SearchConfig(**values).validate()


def _best_so_far(project_dir):
    from keras_convnets.search.runner import load_trials

    best, curve = 0.0, []
    for row in load_trials(project_dir):
        if row["val_accuracy"] is not None:
            best = max(best, row["val_accuracy"])
        curve.append(round(best, 4))
    return curve


def compare(size, directory):
    from keras_convnets.search.runner import run_search

    result = {}
    for tuner in ("random", "evolution"):
        curves = []
        for seed in range(size["seeds"]):
            config = _config(size, directory, f"{tuner}-{seed}", tuner=tuner, seed=seed)
            run_search(config, verbose=0)
            curves.append(_best_so_far(config.project_dir))
            print(f"compare {tuner} seed {seed}: {curves[-1]}", flush=True)
        finals = [c[-1] for c in curves]
        result[tuner] = {
            "best_so_far": curves,
            "final_best_mean": round(statistics.mean(finals), 4),
            "final_best_stdev": round(statistics.pstdev(finals), 4),
        }
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
        "search_wall_s": round(wall, 2),
        "fit_s": round(fit, 2),
        "run_trial_s": round(trial, 2),
        "overhead_share_of_run_trial": round(1 - fit / trial, 3),
        "overhead_share_of_wall": round(1 - fit / wall, 3),
        "median_trial_s": round(statistics.median(r["seconds"] for r in rows), 2),
        "rss_mb_after_each_trial": [round(v, 1) for v in rss],
        "rss_growth_mb_per_trial_after_warmup": round(slope, 2),
    }


def _slope(x, y):
    if len(x) < 2:
        return 0.0
    mx, my = statistics.mean(x), statistics.mean(y)
    den = sum((a - mx) ** 2 for a in x)
    return sum((a - mx) * (b - my) for a, b in zip(x, y)) / den if den else 0.0


class _Budget(Exception):
    pass


def transfer(size, directory):
    import keras

    from keras_convnets.models.registry import get_model
    from keras_convnets.search.genotype import Genotype, build_from_genotype
    from keras_convnets.search.runner import run_search, write_reports
    from keras_convnets.training.config import get_recipe
    from keras_convnets.training.train import (
        build_optimizer,
        evaluate_model,
        make_datasets,
    )

    config = _config(size, directory, "transfer", tuner="evolution", max_trials=10_000)
    deadline = time.time() + size["search_seconds"]

    def stop_when_spent(tuner):
        if time.time() > deadline:
            raise _Budget

    start = time.time()
    try:
        run_search(config, verbose=0, on_trial_end=stop_when_spent)
    except _Budget:
        pass
    search_s = time.time() - start
    record = write_reports(config.project_dir)
    genotype = Genotype.from_dict(record["best"]["genotype"])

    recipe = get_recipe("default")
    from dataclasses import replace

    recipe = replace(
        recipe,
        epochs=size["final_epochs"],
        train_fraction=size["final_fraction"],
        tensorboard_images=0,
    )
    train, val, test, info = make_datasets(recipe)
    steps = -(-info.sizes["train"] // recipe.batch_size)
    baseline = get_model(recipe.model, info.image_shape, info.num_classes)
    budget = baseline.count_params()
    # The widest stack of the found cell (N=1) within the baseline's parameters.
    filters = size["filters"]
    while True:
        bigger = build_from_genotype(
            genotype, info.image_shape, info.num_classes, cells=1, filters=filters + 4
        )
        if bigger.count_params() > budget:
            break
        filters += 4
    results = {}
    for name, build in (
        (
            "simple_cnn",
            lambda: get_model(recipe.model, info.image_shape, info.num_classes),
        ),
        (
            "searched_cell",
            lambda: build_from_genotype(
                genotype, info.image_shape, info.num_classes, cells=1, filters=filters
            ),
        ),
    ):
        keras.backend.clear_session()
        keras.utils.set_random_seed(recipe.seed)
        model = build()
        model.compile(
            optimizer=build_optimizer(recipe, steps),
            loss=keras.losses.CategoricalCrossentropy(),
            metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        )
        t = time.time()
        model.fit(train, validation_data=val, epochs=recipe.epochs, verbose=0)
        results[name] = {
            "params": int(model.count_params()),
            "test_accuracy": round(evaluate_model(model, test)["accuracy"], 4),
            "train_s": round(time.time() - t, 1),
        }
        print(f"transfer {name}: {results[name]}", flush=True)
    return {
        "search_s": round(search_s, 1),
        "search_trials": record["trials"],
        "best_proxy_val_accuracy": round(record["best"]["val_accuracy"], 4),
        "genotype": genotype.to_dict(),
        "cells": 1,
        "filters": filters,
        "recipe": {"epochs": recipe.epochs, "train_fraction": recipe.train_fraction},
        "models": results,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="minutes, tiny proxies")
    parser.add_argument("--out", default="benchmarks/results/search.json")
    parser.add_argument(
        "--parts", default="compare,overhead_memory,transfer", help="comma-separated"
    )
    parser.add_argument("--directory", help="search projects (default: a temp dir)")
    args = parser.parse_args(argv)
    size = SIZES["quick" if args.quick else "full"]

    import keras
    import keras_tuner
    import tensorflow as tf

    from keras_convnets.training import io

    parts = {
        "compare": compare,
        "overhead_memory": overhead_memory,
        "transfer": transfer,
    }
    report = {
        "mode": "quick" if args.quick else "full",
        "sizes": size,
        "versions": {
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "keras_tuner": keras_tuner.__version__,
            "python": platform.python_version(),
        },
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        directory = args.directory or tmp
        for name in args.parts.split(","):
            t = time.time()
            report[name] = parts[name](size, directory)
            report[name]["part_wall_s"] = round(time.time() - t, 1)
            io.atomic_write_json(args.out, report)  # keep what finished
    report["load_average_at_end"] = os.getloadavg()
    io.atomic_write_json(args.out, report)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

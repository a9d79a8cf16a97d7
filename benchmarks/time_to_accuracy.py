"""Time to accuracy: the fast recipe over seeds, and a race to 90% against Keras's example.

Two parts, one JSON file (default `benchmarks/results/time_to_accuracy.json`):

1. `seeds`: `keras-convnets train --recipe fast --seed S` as a real
   subprocess for each seed; the wall time of the whole command (start-up,
   data, training, model selection on validation, saving, test evaluation)
   and the test accuracy of the saved model. Median, min and max.
2. `race`: time to 90.0% test accuracy of our recipe against the Keras
   "simple MNIST convnet" example (keras.io/examples/vision/mnist_convnet:
   two [3x3 conv, 2x2 max-pool] stages of 32 and 64 filters, dropout 0.5,
   Adam, batch 128, 15 epochs, 10% validation split) as the peer, both on
   Fashion-MNIST in the same process, one after the other. The clock runs
   during training only; test accuracy is measured after every epoch (outside
   the clock, as DAWNBench does) and the first epoch at or above the target
   stops the run. Ours runs with the recipe's full-length schedule and no
   test-time augmentation, so the race is conservative for us.

    python benchmarks/time_to_accuracy.py [--seeds 0,1,2] [--parts seeds,race]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def run_seeds(recipe, seeds, workdir, extra, fresh=False):
    rows = []
    for seed in seeds:
        run_dir = os.path.join(workdir, f"{recipe}-seed{seed}")
        run_json = os.path.join(run_dir, "run.json")
        if os.path.exists(run_json) and not fresh:
            # A finished run of an earlier invocation: its own clock (the
            # CLI's wall time from process start) stands in for ours.
            with open(run_json) as f:
                record = json.load(f)
            wall, source = record["wall_time_s"], "run.json (earlier invocation)"
        else:
            command = [
                sys.executable,
                "-m",
                "keras_convnets",
                "train",
                "--recipe",
                recipe,
                "--seed",
                str(seed),
                "--workdir",
                workdir,
                "--run-name",
                f"{recipe}-seed{seed}",
                "--overwrite",
                *extra,
            ]
            start = time.time()
            done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
            wall, source = time.time() - start, "subprocess"
            if done.returncode != 0:
                raise SystemExit(f"seed {seed} failed:\n{done.stderr[-3000:]}")
            with open(run_json) as f:
                record = json.load(f)
        rows.append(
            {
                "seed": seed,
                "wall_s": round(wall, 1),
                "wall_source": source,
                "command_wall_time_s": record["wall_time_s"],
                "fit_s": record["fit_time_s"],
                "test_accuracy": record["test_accuracy"],
                "test_accuracy_without_tta": record.get("test_accuracy_without_tta"),
                "validation_accuracy": record["validation_accuracy"],
                "best_epoch": record["best_epoch"],
                "params": record["params"],
                "precision": record.get("precision"),
                # Issue 19: on_epoch_end to the next epoch's first finished step.
                "epoch_turnover_s": record.get("epoch_timing", {}).get("turnover_s"),
                "load_average_after": os.getloadavg(),
            }
        )
        print(f"seed {seed}: {rows[-1]}", flush=True)

    def stats(key):
        values = [r[key] for r in rows if r[key] is not None]
        if not values:
            return None
        return {
            "median": round(statistics.median(values), 4),
            "min": round(min(values), 4),
            "max": round(max(values), 4),
        }

    turnovers = [t for r in rows for t in (r["epoch_turnover_s"] or [])]
    return {
        "recipe": recipe,
        "runs": rows,
        "epoch_turnover_s": {
            "median": round(statistics.median(turnovers), 3),
            "max": max(turnovers),
            "over_1s": sum(t > 1 for t in turnovers),
            "count": len(turnovers),
        }
        if turnovers
        else None,
        "wall_s": stats("wall_s"),
        "test_accuracy": stats("test_accuracy"),
        "test_accuracy_without_tta": stats("test_accuracy_without_tta"),
    }


def _race_one(name, model, train, epochs, test, target):
    """Fits epoch by epoch; returns the training seconds to reach `target`."""
    import numpy as np

    x_test, y_test = test
    clock, curve = 0.0, []
    for epoch in range(epochs):
        start = time.perf_counter()
        model.fit(**train, initial_epoch=epoch, epochs=epoch + 1, verbose=0)
        clock += time.perf_counter() - start
        probs = model.predict(x_test, batch_size=512, verbose=0)
        accuracy = float(np.mean(probs.argmax(-1) == y_test))
        curve.append(
            {
                "epoch": epoch + 1,
                "train_s": round(clock, 2),
                "test_accuracy": round(accuracy, 4),
            }
        )
        print(
            f"race {name}: epoch {epoch + 1} {clock:.1f} s test {accuracy:.4f}",
            flush=True,
        )
        if accuracy >= target:
            return {
                "seconds_to_target": round(clock, 2),
                "epochs": epoch + 1,
                "curve": curve,
            }
    return {"seconds_to_target": None, "epochs": epochs, "curve": curve}


def race(recipe_name, target, peer_epochs, overrides=None, peer=True):
    import keras
    import numpy as np

    from keras_convnets import load_dataset
    from keras_convnets.training.config import get_recipe
    from keras_convnets.training.train import (
        build_model,
        build_optimizer,
        make_datasets,
        resolve_precision,
    )

    test_ds, info = load_dataset(
        "fashion_mnist", "test", batch_size=1024, shuffle=False
    )
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in test_ds])
    test = (np.concatenate(xs), np.concatenate(ys))

    # Ours: the recipe as `train` builds it (data pipeline, model, optimizer).
    config = replace(get_recipe(recipe_name), tensorboard_images=0, **(overrides or {}))
    keras.utils.set_random_seed(config.seed)
    datasets = make_datasets(config)
    train, val, _, info = datasets
    precision = resolve_precision(config, datasets)  # `auto`: as `train` decides
    keras.utils.set_random_seed(config.seed)
    model = build_model(config, info, precision["precision"])
    steps = -(-info.sizes["train"] // config.batch_size)
    model.compile(
        optimizer=build_optimizer(config, steps),
        loss=keras.losses.CategoricalCrossentropy(
            label_smoothing=config.label_smoothing
        ),
        jit_compile=bool(config.jit_compile),
    )
    ours = _race_one("ours", model, {"x": train}, config.epochs, test, target)
    ours.update(
        recipe=recipe_name,
        overrides=overrides or {},
        params=int(model.count_params()),
        precision=precision,
    )
    if not peer:
        return {"target_test_accuracy": target, "ours": ours}

    keras.backend.clear_session()
    peer, x_train, y_train = keras_example()
    theirs = _race_one(
        "keras_example",
        peer,
        {"x": x_train, "y": y_train, "batch_size": 128, "validation_split": 0.1},
        peer_epochs,
        test,
        target,
    )
    theirs.update(params=int(peer.count_params()))
    ratio = None
    if ours["seconds_to_target"] and theirs["seconds_to_target"]:
        ratio = round(ours["seconds_to_target"] / theirs["seconds_to_target"], 3)
    return {
        "target_test_accuracy": target,
        "ours": ours,
        "keras_example": theirs,
        "ours_over_peer_time": ratio,
        "goal_ratio_at_most": 0.25,
    }


def keras_example(limit=None):
    """keras.io's simple MNIST convnet, verbatim but for the data (Fashion-MNIST).

    Returns `(compiled model, x_train, one-hot y_train)`, seeded with 0;
    `limit` keeps the first images only (smoke runs).
    """
    import keras

    from keras_convnets import load_dataset

    keras.utils.set_random_seed(0)
    full, _ = load_dataset("fashion_mnist", "train", batch_size=60000, shuffle=False)
    x_train, y_train = next(iter(full))
    x_train = x_train.numpy()[:limit]
    y_train = keras.utils.to_categorical(y_train.numpy()[:limit], 10)
    layers = keras.layers
    peer = keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(10, activation="softmax"),
        ]
    )
    peer.compile(
        loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"]
    )
    return peer, x_train, y_train


def command_vs_example(workdir, train_args, peer_epochs, limit=None):
    """`make train`'s whole `keras-convnets train` command against the Keras
    example's `peer_epochs` epochs (its `fit` and `evaluate`), in one run.

    Ours is a subprocess, timed from launch to exit (interpreter and
    TensorFlow start-up, data, training, model selection, saving, test);
    theirs is timed in this process from building the model to the end of its
    test evaluation (its start-up is not counted), so the ratio is
    conservative for us.
    """
    import keras

    from keras_convnets import load_dataset

    command = [
        sys.executable,
        "-m",
        "keras_convnets",
        "train",
        "--workdir",
        workdir,
        "--run-name",
        "make-train",
        "--overwrite",
        *train_args,
    ]
    start = time.time()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    ours_s = time.time() - start
    if done.returncode != 0:
        raise SystemExit(f"keras-convnets train failed:\n{done.stderr[-3000:]}")
    with open(os.path.join(workdir, "make-train", "run.json")) as f:
        record = json.load(f)
    print(f"command: keras-convnets train {ours_s:.1f} s", flush=True)

    keras.backend.clear_session()
    start = time.perf_counter()
    peer, x_train, y_train = keras_example(limit)
    peer.fit(
        x_train,
        y_train,
        batch_size=128,
        epochs=peer_epochs,
        validation_split=0.1,
        verbose=0,
    )
    test_ds, _ = load_dataset("fashion_mnist", "test", batch_size=1024, shuffle=False)
    import numpy as np

    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in test_ds])
    x_test, y_test = np.concatenate(xs), np.concatenate(ys)
    _, peer_accuracy = peer.evaluate(
        x_test, keras.utils.to_categorical(y_test, 10), verbose=0
    )
    peer_s = time.perf_counter() - start
    print(f"command: Keras example {peer_epochs} epochs {peer_s:.1f} s", flush=True)
    return {
        "ours": {
            "command": "keras-convnets train " + " ".join(train_args),
            "wall_s": round(ours_s, 1),
            "fit_s": record["fit_time_s"],
            "test_accuracy": record["test_accuracy"],
            "precision": record.get("precision"),
            "epoch_turnover_s": record.get("epoch_timing", {}).get("turnover_s"),
        },
        "keras_example": {
            "epochs": peer_epochs,
            "train_images": int(len(x_train)),
            "wall_s": round(peer_s, 1),
            "test_accuracy": round(float(peer_accuracy), 4),
        },
        "ours_over_example_wall": round(ours_s / peer_s, 3),
        "load_average_after": list(os.getloadavg()),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="fast")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument(
        "--parts",
        default="seeds,race,command",
        help="seeds, race, command (make train's command / the Keras example)",
    )
    parser.add_argument("--target", type=float, default=0.90)
    parser.add_argument("--peer-epochs", type=int, default=15)
    parser.add_argument(
        "--workdir", help="where the seed runs land (default: a temp dir)"
    )
    parser.add_argument("--out", default="benchmarks/results/time_to_accuracy.json")
    parser.add_argument(
        "--race-overrides",
        default="{}",
        metavar="JSON",
        help="config fields changed for our side of the race, e.g. '{\"epochs\": 3}'",
    )
    parser.add_argument("--no-peer", action="store_true", help="race ours only")
    parser.add_argument(
        "--peer-limit",
        type=int,
        help="command part: train the Keras example on the first N images only "
        "(smoke runs; pass e.g. `-- --train-fraction 0.05` for ours)",
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="rerun seeds whose run already finished in --workdir",
    )
    parser.add_argument(
        "train_args", nargs="*", help="extra `train` flags for the seed runs (after --)"
    )
    args = parser.parse_args(argv)
    from keras_convnets.training.io import atomic_write_json

    result = {
        "benchmark": "time_to_accuracy",
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    if os.path.exists(args.out):  # parts run separately accumulate in one file
        with open(args.out) as f:
            previous = json.load(f)
        result.update(
            {
                k: v
                for k, v in previous.items()
                if k in ("seeds", "command") or k.startswith("race")
            }
        )
    parts = args.parts.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        if "seeds" in parts:
            seeds = [int(s) for s in args.seeds.split(",")]
            result["seeds"] = run_seeds(
                args.recipe, seeds, args.workdir or tmp, args.train_args
            )
        if "race" in parts:
            overrides = json.loads(args.race_overrides)
            key = "race" if not overrides else f"race {args.race_overrides}"
            result[key] = race(
                args.recipe, args.target, args.peer_epochs, overrides, not args.no_peer
            )
        if "command" in parts:
            result["command"] = command_vs_example(
                args.workdir or tmp, args.train_args, args.peer_epochs, args.peer_limit
            )
    from benchmarks._machine import machine_info

    result["machine"] = machine_info()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    atomic_write_json(args.out, result)
    if "seeds" in result:
        s = result["seeds"]
        print(
            f"\n{s['recipe']} over seeds: test accuracy {s['test_accuracy']}, wall s {s['wall_s']}"
        )
    if "race" in result and "keras_example" in result["race"]:
        r = result["race"]
        print(
            f"to {r['target_test_accuracy']:.1%} test: ours {r['ours']['seconds_to_target']} s, "
            f"keras example {r['keras_example']['seconds_to_target']} s, "
            f"ratio {r['ours_over_peer_time']}"
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

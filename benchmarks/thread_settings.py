"""TensorFlow thread settings on a small CPU: intra-/inter-op pools, tf.data's pool.

TensorFlow fixes its intra-op and inter-op thread pools when its runtime
starts, so each setting runs in its own worker process; the workers stay
alive and the rounds are interleaved (setting A, B, C, then A, B, C again),
so a machine shared with other jobs loads every setting alike. Each round
trains the recipe's model (its precision given by `--precision`, default
fp32) with `model.fit` on the real training pipeline (`make_datasets`:
shuffle keyed on the epoch, one-hot, augmentation, prefetch) for `--steps`
steps; the figure is the steady step time, from the first step's end to the
last's, so the epoch's start is not in it. The best round of each setting
counts; ratios are to TensorFlow's defaults.

Settings: `intra`/`inter` are `tf.config.threading`'s
`set_intra_op_parallelism_threads` / `set_inter_op_parallelism_threads` (0:
TensorFlow decides, one thread per usable core); `data_pool` and
`data_intra` are `tf.data.Options().threading.private_threadpool_size` and
`.max_intra_op_parallelism` on the training dataset (0: tf.data's shared pool).

    nice python benchmarks/thread_settings.py [--rounds 3] [--steps 20]
        [--out benchmarks/results/thread_settings.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

# name -> (intra, inter, data_pool, data_intra)
SETTINGS = {
    "default": (0, 0, 0, 0),
    "intra2_inter1": (2, 1, 0, 0),
    "intra1_inter1": (1, 1, 0, 0),
    "intra1_inter2": (1, 2, 0, 0),
    "data_pool1": (0, 0, 1, 0),
    "data_intra1": (0, 0, 0, 1),
}


def worker(setting, recipe, precision, train_fraction, steps):
    """One setting: answers `run` lines on stdin with a JSON line of timings."""
    intra, inter, data_pool, data_intra = setting
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(intra)
    tf.config.threading.set_inter_op_parallelism_threads(inter)
    import keras

    from keras_convnets.training.config import get_recipe
    from keras_convnets.training.train import _compile_model, build_model, make_datasets

    config = get_recipe(recipe)
    from dataclasses import replace

    config = replace(config, precision=precision, train_fraction=train_fraction)
    keras.utils.set_random_seed(0)
    train, _, _, info = make_datasets(config)
    if data_pool or data_intra:
        options = tf.data.Options()
        if data_pool:
            options.threading.private_threadpool_size = data_pool
        if data_intra:
            options.threading.max_intra_op_parallelism = data_intra
        train = train.with_options(options)
    model = build_model(config, info, precision)
    _compile_model(model, config, 100, False, precision)
    model.fit(train.take(3), epochs=1, verbose=0)  # trace, warm up

    class Steps(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.ends = []

        def on_train_batch_end(self, batch, logs=None):
            float(logs["loss"])
            self.ends.append(time.perf_counter())

    probe = Steps()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            break
        start = time.perf_counter()
        model.fit(train.take(steps), epochs=1, verbose=0, callbacks=[probe])
        ends = probe.ends
        print(
            json.dumps(
                {
                    "steady_ms_per_step": 1000 * (ends[-1] - ends[0]) / (len(ends) - 1),
                    "round_s": time.perf_counter() - start,
                    "cpu_s": os.times().user + os.times().system,
                    "threads": len(os.listdir("/proc/self/task"))
                    if os.path.isdir("/proc/self/task")
                    else None,
                }
            ),
            flush=True,
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="fast")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--train-fraction", type=float, default=0.3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--out", default="benchmarks/results/thread_settings.json")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(
            SETTINGS[args.worker],
            args.recipe,
            args.precision,
            args.train_fraction,
            args.steps,
        )
        return

    from benchmarks._machine import machine_info
    from keras_convnets.training.io import atomic_write_json

    names = args.settings.split(",")
    common = [
        "--recipe",
        args.recipe,
        "--precision",
        args.precision,
        "--train-fraction",
        str(args.train_fraction),
        "--steps",
        str(args.steps),
    ]
    workers = {}
    for name in names:  # started one after the other: start-up is CPU-heavy
        proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker", name, *common],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        line = proc.stdout.readline()
        if not line:
            raise SystemExit(f"worker {name} failed to start")
        workers[name] = proc
        print(f"started {name}", flush=True)
    results = {name: [] for name in names}
    try:
        for round_ in range(args.rounds):
            for name in names:
                proc = workers[name]
                proc.stdin.write("run\n")
                proc.stdin.flush()
                result = json.loads(proc.stdout.readline())
                results[name].append(result)
                print(
                    f"round {round_ + 1} {name}: "
                    f"{result['steady_ms_per_step']:.1f} ms/step",
                    flush=True,
                )
    finally:
        for proc in workers.values():
            proc.stdin.close()
            proc.wait()
    rows = []
    for name in names:
        intra, inter, data_pool, data_intra = SETTINGS[name]
        best = min(r["steady_ms_per_step"] for r in results[name])
        rows.append(
            {
                "setting": name,
                "intra_op": intra,
                "inter_op": inter,
                "tf_data_private_threadpool_size": data_pool,
                "tf_data_max_intra_op_parallelism": data_intra,
                "best_ms_per_step": round(best, 1),
                "rounds_ms_per_step": [
                    round(r["steady_ms_per_step"], 1) for r in results[name]
                ],
                "threads": results[name][-1]["threads"],
            }
        )
    base = next((r for r in rows if r["setting"] == "default"), rows[0])
    for row in rows:
        # > 1: faster than TensorFlow's defaults.
        row["speed_vs_default"] = round(
            base["best_ms_per_step"] / row["best_ms_per_step"], 3
        )
    result = {
        "benchmark": "threading",
        "recipe": args.recipe,
        "precision": args.precision,
        "steps_per_round": args.steps,
        "rounds": args.rounds,
        "rows": rows,
        "machine": machine_info(),
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    atomic_write_json(args.out, result)
    for row in rows:
        print(
            f"{row['setting']:16s} {row['best_ms_per_step']:8.1f} ms/step "
            f"{row['speed_vs_default']:.3f}x default"
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""Images/s of our augmentation ops and policies against the Keras peers.

Every case runs in the same process and the same run, on the same batches
(32x32x3 float32 in [0, 1], batch 256, one-hot labels), as a `tf.data` map
after batch with `num_parallel_calls=AUTOTUNE`. Rounds interleave the cases
so that load from other processes hits them all alike; each row reports the
median over rounds, and each ratio is the median of the per-round ratios.

Peers: `keras.layers.*` always; keras-cv when it imports (it is only ever a
benchmark peer, `pip install keras-cv`; never imported by the package).

Usage:

```
python benchmarks/augment.py                 # full run
python benchmarks/augment.py --quick         # a short smoke run
python benchmarks/augment.py --out results.json
```

Writes `{"rows": [...], "ratios": {...}, "machine": {...}}` to `--out`
(default `benchmarks/results/augment.json`) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks._machine import machine_info  # noqa: E402
from keras_convnets.data import augment  # noqa: E402

BATCH = 256
SHAPE = (32, 32, 3)
CLASSES = 10
DEFAULT_OUT = Path(__file__).parent / "results" / "augment.json"


def _base_dataset():
    rng = np.random.default_rng(0)
    images = tf.constant(rng.uniform(size=(BATCH, *SHAPE)), tf.float32)
    labels = tf.one_hot(rng.integers(0, CLASSES, BATCH), CLASSES)
    return tf.data.Dataset.from_tensors((images, labels)).repeat()


def _ours_op(fn, mixes_labels=False):
    """A dataset mapping one of our ops, XLA-compiled, seeded per batch."""
    compiled = tf.function(fn, jit_compile=True)

    def build():
        ds = tf.data.Dataset.zip(_base_dataset(), tf.data.Dataset.counter())

        def apply(element, index):
            images, labels = element
            seed = augment.batch_seed(0, 0, index)
            if mixes_labels:
                return compiled(images, labels, seed)
            return compiled(images, seed), labels

        return ds.map(apply, num_parallel_calls=tf.data.AUTOTUNE)

    return build


def _ours_policy(name):
    def build():
        return augment.augment_dataset(_base_dataset(), name, seed=0)

    return build


def _peer(make_layer, mixes_labels=False):
    """A dataset mapping a Keras / keras-cv layer in training mode."""

    def build():
        layer = make_layer()

        def apply(images, labels):
            if mixes_labels:
                out = layer({"images": images, "labels": labels}, training=True)
                return out["images"], out["labels"]
            return layer(images, training=True), labels

        return _base_dataset().map(apply, num_parallel_calls=tf.data.AUTOTUNE)

    return build


def _cases(include_keras_cv):
    """`(op, impl, build)` for every case; ops line up across impls."""
    kl = keras.layers
    cases = [
        ("randaugment", "keras_convnets", _ours_op(augment.rand_augment)),
        ("randaugment", "keras", _peer(lambda: kl.RandAugment(value_range=(0, 1)))),
        ("translate", "keras_convnets", _ours_op(augment.translate)),
        (
            "translate",
            "keras",
            _peer(lambda: kl.RandomTranslation(0.125, 0.125, fill_mode="constant")),
        ),
        ("flip", "keras_convnets", _ours_op(augment.flip)),
        ("flip", "keras", _peer(lambda: kl.RandomFlip("horizontal"))),
        ("rotate", "keras_convnets", _ours_op(augment.rotate)),
        ("rotate", "keras", _peer(lambda: kl.RandomRotation(15 / 360))),
        ("brightness", "keras_convnets", _ours_op(augment.brightness)),
        (
            "brightness",
            "keras",
            _peer(lambda: kl.RandomBrightness(0.2, value_range=(0, 1))),
        ),
        ("contrast", "keras_convnets", _ours_op(augment.contrast)),
        (
            "contrast",
            "keras",
            _peer(lambda: kl.RandomContrast(0.2, value_range=(0, 1))),
        ),
        ("erasing", "keras_convnets", _ours_op(augment.random_erasing)),
        ("erasing", "keras", _peer(lambda: kl.RandomErasing(value_range=(0, 1)))),
        ("cutout", "keras_convnets", _ours_op(augment.cutout)),
        ("mixup", "keras_convnets", _ours_op(augment.mixup, mixes_labels=True)),
        ("mixup", "keras", _peer(lambda: kl.MixUp(), mixes_labels=True)),
        ("cutmix", "keras_convnets", _ours_op(augment.cutmix, mixes_labels=True)),
        ("cutmix", "keras", _peer(lambda: kl.CutMix(), mixes_labels=True)),
    ]
    if include_keras_cv:
        import keras_cv  # noqa: F401  (benchmark peer only)

        cl = keras_cv.layers
        cases += [
            (
                "randaugment",
                "keras_cv",
                _peer(lambda: cl.RandAugment(value_range=(0, 1), magnitude=0.5)),
            ),
            (
                "translate",
                "keras_cv",
                _peer(lambda: cl.RandomTranslation(0.125, 0.125, fill_mode="constant")),
            ),
            ("flip", "keras_cv", _peer(lambda: cl.RandomFlip("horizontal"))),
            ("rotate", "keras_cv", _peer(lambda: cl.RandomRotation(15 / 360))),
            ("cutout", "keras_cv", _peer(lambda: cl.RandomCutout(0.5, 0.5))),
            ("mixup", "keras_cv", _peer(lambda: cl.MixUp(), mixes_labels=True)),
            ("cutmix", "keras_cv", _peer(lambda: cl.CutMix(), mixes_labels=True)),
        ]
    cases += [
        (f"policy:{name}", "keras_convnets", _ours_policy(name))
        for name in augment.list_policies()
        if name != "none"
    ]
    return cases


def _keras_cv_status():
    try:
        import keras_cv

        return True, getattr(keras_cv, "__version__", "unknown")
    except Exception as error:  # any import failure means "unavailable"
        return False, f"unavailable: {type(error).__name__}: {error}"[:200]


def _throughput(iterator, batches):
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * BATCH / (time.perf_counter() - start)


def _training_throughput(model_name, batches):
    """Images/s of `train_on_batch` for a registered model (XLA, batch 256)."""
    from keras_convnets import get_model

    model = get_model(model_name, input_shape=SHAPE, num_classes=CLASSES)
    model.compile("adam", "categorical_crossentropy", jit_compile=True)
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(BATCH, *SHAPE)).astype("float32")
    labels = np.eye(CLASSES, dtype="float32")[rng.integers(0, CLASSES, BATCH)]
    for _ in range(3):
        model.train_on_batch(images, labels)

    def run(n):
        start = time.perf_counter()
        for _ in range(n):
            model.train_on_batch(images, labels)
        return n * BATCH / (time.perf_counter() - start)

    return run


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Example: python benchmarks/augment.py --quick",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON path.")
    parser.add_argument("--quick", action="store_true", help="Short run.")
    parser.add_argument("--rounds", type=int, help="Interleaved rounds.")
    parser.add_argument("--batches", type=int, help="Timed batches per case.")
    parser.add_argument(
        "--train-model",
        default="simple_cnn",
        help="Registered model whose training speed the input pipeline is "
        "compared to ('' to skip). Defaults to simple_cnn.",
    )
    parser.add_argument(
        "--default-policy",
        default="flip-translate",
        help="Policy of the whole-pipeline comparison. Defaults to flip-translate.",
    )
    args = parser.parse_args(argv)
    rounds = args.rounds or (2 if args.quick else 3)
    batches = args.batches or (8 if args.quick else 24)

    has_keras_cv, keras_cv_version = _keras_cv_status()
    cases = _cases(has_keras_cv)
    # Each measurement builds a fresh pipeline and drops it afterwards: an
    # iterator left alive keeps filling its buffers in the background, which
    # would both flatter it and slow down the case being timed.
    errors = {}
    samples = {(op, impl): [] for op, impl, _ in cases}
    train = None
    if args.train_model:
        try:
            train = _training_throughput(args.train_model, batches)
        except Exception as error:
            errors[("train", args.train_model)] = f"{type(error).__name__}: {error}"
    train_samples = []
    for r in range(rounds):
        for op, impl, build in cases:
            if (op, impl) in errors:
                continue
            try:
                iterator = iter(build().prefetch(2))
                for _ in range(3):  # warm up: tracing, XLA compilation, autotune
                    next(iterator)
                samples[(op, impl)].append(_throughput(iterator, batches))
                del iterator
            except Exception as error:  # a peer that does not run is reported
                errors[(op, impl)] = f"{type(error).__name__}: {error}"[:300]
                samples.pop((op, impl), None)
                print(f"skip {op} [{impl}]: {errors[(op, impl)]}", file=sys.stderr)
        if train:
            train_samples.append(train(max(batches // 2, 2)))
        print(f"round {r + 1}/{rounds} done", file=sys.stderr)

    rows = [
        {
            "op": op,
            "impl": impl,
            "images_per_s": round(statistics.median(values), 1),
            "rounds": [round(v, 1) for v in values],
        }
        for (op, impl), values in samples.items()
    ]
    rows += [
        {"op": op, "impl": impl, "images_per_s": None, "error": message}
        for (op, impl), message in errors.items()
    ]
    if train_samples:
        rows.append(
            {
                "op": f"train:{args.train_model}",
                "impl": "keras_convnets",
                "images_per_s": round(statistics.median(train_samples), 1),
                "rounds": [round(v, 1) for v in train_samples],
            }
        )

    def ratio(numerator, denominator):
        if not denominator or len(numerator) != len(denominator):
            return None
        return round(
            statistics.median(a / b for a, b in zip(numerator, denominator)), 2
        )

    ratios = {}
    for op, impl in samples:
        if impl == "keras_convnets" or (op, "keras_convnets") not in samples:
            continue
        ratios[f"{op}_vs_{impl}"] = ratio(
            samples[(op, "keras_convnets")], samples[(op, impl)]
        )
    pipeline = (f"policy:{args.default_policy}", "keras_convnets")
    if train_samples and pipeline in samples:
        ratios[f"pipeline_{args.default_policy}_vs_train_{args.train_model}"] = ratio(
            samples[pipeline], train_samples
        )
    targets = {
        "randaugment_vs_keras": 10.0,
        "randaugment_vs_keras_cv": 10.0,
        "translate_vs_keras": 4.0,
        f"pipeline_{args.default_policy}_vs_train_{args.train_model}": 3.0,
    }
    met = {
        name: (None if ratios.get(name) is None else ratios[name] >= goal)
        for name, goal in targets.items()
    }
    result = {
        "rows": rows,
        "ratios": ratios,
        "targets": {"goal": targets, "met": met},
        "settings": {
            "batch": BATCH,
            "shape": list(SHAPE),
            "rounds": rounds,
            "batches_per_round": batches,
            "placement": "tf.data map after batch, AUTOTUNE, prefetch 2",
            "ours_compiled_with": "tf.function(jit_compile=True)",
        },
        "machine": {**machine_info(), "keras_cv": keras_cv_version},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    print(f"\n{'op':28s} {'impl':16s} {'images/s':>12s}")
    for row in sorted(rows, key=lambda r: (r["op"], r["impl"])):
        value = row["images_per_s"]
        shown = f"{value:12,.0f}" if value is not None else "         n/a"
        print(f"{row['op']:28s} {row['impl']:16s} {shown}")
    print("\nratios (ours / peer, median of per-round ratios):")
    for name, value in ratios.items():
        goal = targets.get(name)
        mark = (
            ""
            if goal is None
            else f"  (target >= {goal:g}x: {'met' if value and value >= goal else 'NOT met'})"
        )
        print(f"  {name:40s} {value}x{mark}")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()

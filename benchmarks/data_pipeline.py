"""Input-pipeline throughput: our load_dataset order against the usual peers.

Measures images/s of iterating the Fashion-MNIST training split (batch 128, as
fed to `model.fit`), for:

- `keras_convnets`: `load_dataset` (uint8 cache -> shuffle -> batch ->
  map(float conversion) -> prefetch);
- `keras_convnets_epoch_keyed`: the same with the order of each epoch keyed on
  `(seed, epoch)` (what `train` uses, for exact resume);
- `map_before_batch`: the same steps with the per-image map before `batch`
  (what most tutorials write);
- `float_arrays`: float32 numpy arrays converted up front and sliced by tf.data
  (4x the memory, no map);
- `keras_fit_arrays`: Keras's own array adapter, as `model.fit(x, y)` uses it.

All in one process, the peers interleaved over several rounds; the best round
of each is reported with ratios against ours. Writes JSON (`--out`) and prints
a table.

    python benchmarks/data_pipeline.py [--rounds 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_convnets.data import datasets  # noqa: E402
from keras_convnets.data.idx import read_idx_pair  # noqa: E402

BATCH = 128


def _arrays():
    directory = datasets.find_idx_source("fashion_mnist")
    if directory is None:
        sys.exit("Fashion-MNIST IDX files not found: run `make data`.")
    return read_idx_pair(*datasets._find_idx_files(directory, "train"), 10)


def ours():
    ds, _ = datasets.load_dataset("fashion_mnist", "train", batch_size=BATCH, seed=0)
    return ds


def ours_epoch_keyed():
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
    ds, _ = datasets.load_dataset(
        "fashion_mnist", "train", batch_size=BATCH, seed=0, epoch=epoch
    )
    return ds


def map_before_batch():
    images, labels = _arrays()
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).cache()
    ds = ds.shuffle(60_000, seed=0)
    ds = ds.map(lambda x, y: (tf.cast(x, tf.float32) / 255.0, y), tf.data.AUTOTUNE)
    return ds.batch(BATCH).prefetch(tf.data.AUTOTUNE)


def float_arrays():
    images, labels = _arrays()
    x = images.astype(np.float32) / 255.0
    ds = tf.data.Dataset.from_tensor_slices((x, labels)).shuffle(60_000, seed=0)
    return ds.batch(BATCH).prefetch(tf.data.AUTOTUNE)


def keras_fit_arrays():
    from keras.src.trainers.data_adapters import array_data_adapter

    images, labels = _arrays()
    x = images.astype(np.float32) / 255.0
    adapter = array_data_adapter.ArrayDataAdapter(
        x, labels, batch_size=BATCH, shuffle=True
    )
    return adapter.get_tf_dataset()


PEERS = {
    "keras_convnets": ours,
    "keras_convnets_epoch_keyed": ours_epoch_keyed,
    "map_before_batch": map_before_batch,
    "float_arrays": float_arrays,
    "keras_fit_arrays": keras_fit_arrays,
}


def measure(ds, epochs=2):
    for _ in ds.take(5):  # warm-up: tracing, cache fill starts
        pass
    n = 0
    start = time.perf_counter()
    for _ in range(epochs):
        for images, _ in ds:
            n += int(images.shape[0])
    return n / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one round")
    parser.add_argument("--out", default="benchmarks/results/data_pipeline.json")
    args = parser.parse_args(argv)
    rounds = 1 if args.quick else args.rounds

    built = {name: make() for name, make in PEERS.items()}
    for ds in built.values():  # fill caches outside the timed loops
        for _ in ds:
            pass
    best = {name: 0.0 for name in PEERS}
    for _ in range(rounds):
        for name, ds in built.items():
            best[name] = max(best[name], measure(ds))

    rows = [
        {"impl": name, "op": "fashion_mnist_train_epoch", "images_per_s": round(v)}
        for name, v in best.items()
    ]
    ratios = {
        f"keras_convnets/{name}": round(best["keras_convnets"] / v, 2)
        for name, v in best.items()
        if name != "keras_convnets"
    }
    result = {
        "benchmark": "data_pipeline",
        "batch_size": BATCH,
        "rounds": rounds,
        "rows": rows,
        "ratios": ratios,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "tensorflow": tf.__version__,
        },
    }
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"{'pipeline':<20} {'images/s':>10}  ours / it")
    for row in rows:
        ratio = best["keras_convnets"] / row["images_per_s"]
        print(f"{row['impl']:<20} {row['images_per_s']:>10,}  {ratio:.2f}x")
    print(f"JSON: {args.out}")


if __name__ == "__main__":
    main()

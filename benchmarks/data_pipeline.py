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
- `keras_fit_arrays`: Keras's own array adapter, as `model.fit(x, y)` uses it;
- `train_pipeline_flip_translate`: the whole training pipeline of
  `keras-convnets train --augment flip-translate`;

and, in the same run, the training throughput of the default model
(`simple_cnn`, `fit` on in-memory batches), to check that the augmented pipeline
is never the bottleneck (issue #4 asks for >= 3x).

All in one process, the peers interleaved over several rounds; the best round
of each is reported with ratios against ours. Writes JSON (`--out`) and prints
a table.

    python benchmarks/data_pipeline.py [--rounds 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks._machine import machine_info  # noqa: E402
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


def train_pipeline_flip_translate():
    """The training pipeline exactly as `keras-convnets train --augment
    flip-translate` builds it: epoch-keyed order, one-hot labels, XLA
    augmentation after batch."""
    from keras_convnets.training.config import resolve_config
    from keras_convnets.training.train import make_datasets

    config = resolve_config({}, {"augment": "flip-translate", "batch_size": BATCH})
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
    train, _, _, _ = make_datasets(config, epoch)
    return train


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
    "train_pipeline_flip_translate": train_pipeline_flip_translate,
    "map_before_batch": map_before_batch,
    "float_arrays": float_arrays,
    "keras_fit_arrays": keras_fit_arrays,
}


def training_throughput(steps=60):
    """Images/s of `fit` on the default model (simple_cnn), data in memory."""
    import keras

    from keras_convnets import get_model
    from keras_convnets.training.config import resolve_config
    from keras_convnets.training.train import build_optimizer

    config = resolve_config()
    model = get_model(config.model, (28, 28, 1), 10)
    model.compile(
        optimizer=build_optimizer(config, steps_per_epoch=steps),
        loss=keras.losses.CategoricalCrossentropy(),
        jit_compile=False,
    )
    x = tf.random.uniform((BATCH, 28, 28, 1))
    y = tf.one_hot(tf.random.uniform((BATCH,), 0, 10, tf.int32), 10)
    ds = tf.data.Dataset.from_tensors((x, y)).repeat().prefetch(2)
    model.fit(ds, steps_per_epoch=5, epochs=1, verbose=0, shuffle=False)  # warm-up
    start = time.perf_counter()
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
    return steps * BATCH / (time.perf_counter() - start)


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

    training = max(training_throughput() for _ in range(rounds))
    rows = [
        {"impl": name, "op": "fashion_mnist_train_epoch", "images_per_s": round(v)}
        for name, v in best.items()
    ]
    rows.append(
        {
            "impl": "simple_cnn_fit",
            "op": "training_step",
            "images_per_s": round(training),
        }
    )
    ratios = {
        f"keras_convnets/{name}": round(best["keras_convnets"] / v, 2)
        for name, v in best.items()
        if name != "keras_convnets"
    }
    # Issue #4's target: the training pipeline with augmentation feeds >= 3x
    # what the default model trains on.
    ratios["train_pipeline_flip_translate/simple_cnn_fit"] = round(
        best["train_pipeline_flip_translate"] / training, 1
    )
    result = {
        "benchmark": "data_pipeline",
        "batch_size": BATCH,
        "rounds": rounds,
        "rows": rows,
        "ratios": ratios,
        "machine": machine_info(),
    }
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"{'pipeline':<32} {'images/s':>10}  ours / it")
    for row in rows:
        ratio = best["keras_convnets"] / row["images_per_s"]
        print(f"{row['impl']:<32} {row['images_per_s']:>10,}  {ratio:.2f}x")
    print(
        "augmented training pipeline / simple_cnn training: "
        f"{ratios['train_pipeline_flip_translate/simple_cnn_fit']}x"
    )
    print(f"JSON: {args.out}")


if __name__ == "__main__":
    main()

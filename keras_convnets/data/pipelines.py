"""The train / validation / test pipelines of a training job, from plain arguments.

`make_datasets` opens a dataset's three splits the way training reads them:
one-hot labels (so label smoothing, mixup and cutmix apply) and the training
batches through an augmentation policy. `training.train` passes a
`TrainConfig`'s fields; the search and the experiments pass their own.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from keras_convnets.data.datasets import DatasetInfo, load_dataset
from keras_convnets.errors import UserInputError


def make_datasets(
    dataset: str,
    *,
    batch_size: int,
    seed: int = 0,
    validation_fraction: float = 0.1,
    train_fraction: float = 1.0,
    data_dir: str | None = None,
    tfds_data_dir: str | None = None,
    image_size: tuple[int, int] | None = None,
    augment: str = "none",
    epoch: tf.Variable | None = None,
):
    """Returns `(train, validation or None, test, info)` pipelines.

    Labels are one-hot so that label smoothing, mixup and cutmix apply; the
    training batches go through the augmentation policy `augment`.

    Args:
        dataset: str. A name or folder, as `load_dataset` takes it.
        batch_size: int. Batch size of all three splits.
        seed: int. Seed of the validation split, the shuffling and the
            augmentation. Defaults to 0.
        validation_fraction: float. Of the training split, held out.
            Defaults to 0.1; with 0, the validation pipeline is None.
        train_fraction: float. Seeded subset of the rest. Defaults to 1.0.
        data_dir: str. Folder with IDX files, searched first.
        tfds_data_dir: str. TensorFlow Datasets data folder.
        image_size: `(height, width)` to resize to; None keeps the size.
        augment: str. A policy from `list_policies()`. Defaults to `"none"`.
        epoch: integer `tf.Variable` or None. When given, the training order
            and augmentation of each epoch derive from `(seed, epoch)` (see
            `load_dataset`); `train_and_evaluate` keeps it current with
            `callbacks.EpochCounter`.

    Returns:
        `(train, validation, test, info)`: batched `tf.data.Dataset`s of
        `(images, one-hot labels)` and the `DatasetInfo`.

    Raises:
        UserInputError: a split (or the asked-for validation split) is empty.

    Example:

    ```python
    train, val, test, info = make_datasets("fashion_mnist", batch_size=128)
    ```
    """
    common = dict(
        seed=seed,
        validation_fraction=validation_fraction,
        train_fraction=train_fraction,
        data_dir=data_dir,
        tfds_data_dir=tfds_data_dir,
        image_size=image_size,
    )
    _, info = load_dataset(dataset, "test", **common)
    empty = [split for split in ("train", "test") if not info.sizes[split]]
    if validation_fraction and not info.sizes["validation"]:
        empty.append("validation")
    if empty:
        raise UserInputError(
            f"Dataset {info.name!r} gives an empty {' and '.join(empty)} split "
            f"(sizes: {info.sizes}); use more data or other fractions."
        )
    one_hot = one_hot_fn(info.num_classes)
    train, _ = load_dataset(
        dataset,
        "train",
        batch_size=batch_size,
        map_fn=one_hot,
        prefetch=False,
        epoch=epoch,
        **common,
    )
    train = augment_batches(train, augment, seed, epoch).prefetch(tf.data.AUTOTUNE)
    validation = None
    if info.sizes["validation"]:
        validation, _ = load_dataset(
            dataset,
            "validation",
            batch_size=batch_size,
            map_fn=one_hot,
            **common,
        )
    test, _ = load_dataset(
        dataset, "test", batch_size=batch_size, map_fn=one_hot, **common
    )
    return train, validation, test, info


def one_hot_fn(num_classes: int):
    """A `map_fn` for `load_dataset` turning integer labels into float32 one-hot."""

    def one_hot(images, labels):
        return images, tf.one_hot(labels, num_classes, dtype=tf.float32)

    return one_hot


def augment_batches(ds, policy: str, seed: int, epoch=None):
    """`ds` through augmentation `policy` (`"none"`: `ds` itself); see `augment_dataset`."""
    if policy == "none":
        return ds
    from keras_convnets.data.augment import augment_dataset

    return augment_dataset(ds, policy, seed=seed, epoch=epoch)


def sample_images(
    dataset: str,
    info: DatasetInfo,
    *,
    count: int,
    seed: int = 0,
    validation_fraction: float = 0.1,
    train_fraction: float = 1.0,
    data_dir: str | None = None,
    tfds_data_dir: str | None = None,
    image_size: tuple[int, int] | None = None,
    augment: str = "none",
):
    """The first `count` training inputs (after augmentation), e.g. for TensorBoard.

    Args:
        dataset: str. As for `make_datasets`.
        info: DatasetInfo. The dataset's, for the class names.
        count: int. How many images.
        seed, validation_fraction, train_fraction, data_dir, tfds_data_dir,
            image_size, augment: as for `make_datasets`.

    Returns:
        `(images, captions)`: a float32 array `[count, H, W, C]` and the class
        name of each image.
    """
    ds, _ = load_dataset(
        dataset,
        "train",
        batch_size=count,
        shuffle=False,
        map_fn=one_hot_fn(info.num_classes),
        prefetch=False,
        cache=False,
        seed=seed,
        validation_fraction=validation_fraction,
        train_fraction=train_fraction,
        data_dir=data_dir,
        tfds_data_dir=tfds_data_dir,
        image_size=image_size,
    )
    images, labels = next(iter(augment_batches(ds, augment, seed)))
    top = np.argmax(labels.numpy(), axis=-1)
    return images.numpy(), [info.class_names[i] for i in top]

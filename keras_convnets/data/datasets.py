"""Image-classification datasets as `tf.data` pipelines.

`load_dataset(name, split)` is the one entry point. Three kinds of source:

- Fashion-MNIST and MNIST from IDX files found on disk (`data_dir`,
  `$KERAS_CONVNETS_DATA`, Debian's `/usr/share/datasets/`, the Keras cache),
  else from TensorFlow Datasets;
- any TFDS image-classification dataset by name (`cifar10`, `svhn_cropped`, ...);
- a folder with one sub-folder of images per class (a path as the name).

Every source yields `(image, label)` with float32 NHWC images in [0, 1] and int64
labels. The validation split is carved from the training split by a seeded
permutation and never overlaps it; the test split is only for final evaluation.
Pipeline order: cache -> shuffle -> batch -> map -> prefetch, so that the
uint8 -> float conversion (and any augmentation) runs once per batch.
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import os
import socket
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from keras_convnets.data.idx import read_idx_pair
from keras_convnets.errors import DataNotFoundError, UserInputError

SPLITS = ("train", "validation", "test")
ENV_DATA_DIR = "KERAS_CONVNETS_DATA"
DEBIAN_DATA_ROOT = "/usr/share/datasets"

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

# Datasets we can read from IDX files: canonical name -> folder names to look in
# and class names.
_IDX_DATASETS = {
    "fashion_mnist": (("fashion-mnist", "fashion_mnist"), FASHION_MNIST_CLASSES),
    "mnist": (("mnist",), tuple(str(i) for i in range(10))),
}
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is: shapes, classes, split sizes and where it came from.

    Attributes:
        name: str. Canonical dataset name (`fashion_mnist`, `cifar10`, a folder).
        source: str. Where the examples were read from, e.g.
            `idx:/usr/share/datasets/fashion-mnist` or `tfds:cifar10`.
        image_shape: tuple. `(height, width, channels)`.
        num_classes: int. Number of classes.
        class_names: tuple of str. One name per class index.
        sizes: dict. Number of examples in `train`, `validation` and `test`
            (after the validation split and `train_fraction`).
        validation_fraction: float. Fraction of the training split held out.
        train_fraction: float. Fraction of the remaining training examples used.
        seed: int. Seed of the validation split and of shuffling.
        notes: tuple of str. What the loader chose to skip, with counts.
    """

    name: str
    source: str
    image_shape: tuple
    num_classes: int
    class_names: tuple
    sizes: dict
    validation_fraction: float
    train_fraction: float
    seed: int
    notes: tuple = ()

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["image_shape"] = list(self.image_shape)
        d["class_names"] = list(self.class_names)
        d["notes"] = list(self.notes)
        return d


def canonical_name(name: str) -> str:
    """Normalizes a dataset name: `Fashion-MNIST` -> `fashion_mnist`."""
    if os.path.isdir(name) or os.sep in name:
        return name
    return name.strip().lower().replace("-", "_")


def split_indices(
    n: int, validation_fraction: float, train_fraction: float, seed: int
) -> dict[str, np.ndarray]:
    """Seeded, deterministic partition of `range(n)` into train and validation.

    The validation indices depend only on `(n, validation_fraction, seed)`, not on
    `train_fraction`, so quick runs on a fraction are selected on the same
    validation set as full runs.

    Args:
        n: int. Number of examples in the source training split.
        validation_fraction: float in [0, 1). Fraction held out for validation.
        train_fraction: float in (0, 1]. Fraction of the rest used for training.
        seed: int. Seed of the permutation.

    Returns:
        `{"train": sorted indices, "validation": sorted indices}`.
    """
    if not 0.0 <= validation_fraction < 1.0:
        raise UserInputError(
            f"validation_fraction must be in [0, 1). "
            f"Received: validation_fraction={validation_fraction}"
        )
    if not 0.0 < train_fraction <= 1.0:
        raise UserInputError(
            f"train_fraction must be in (0, 1]. Received: train_fraction={train_fraction}"
        )
    permutation = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * validation_fraction))
    rest = permutation[n_val:]
    n_train = max(1, int(round(len(rest) * train_fraction)))
    return {
        "train": np.sort(rest[:n_train]),
        "validation": np.sort(permutation[:n_val]),
    }


# ----------------------------------------------------------------------------
# Sources. Each returns (unbatched uint8 dataset of the requested split, info
# fields, number of examples).


def _candidate_dirs(name: str, data_dir: str | None) -> list[str]:
    folders = _IDX_DATASETS[name][0]
    roots = []
    if data_dir:
        roots.append(data_dir)
    if os.environ.get(ENV_DATA_DIR):
        roots.append(os.environ[ENV_DATA_DIR])
    roots.append(DEBIAN_DATA_ROOT)
    keras_home = os.environ.get("KERAS_HOME", os.path.expanduser("~/.keras"))
    roots.append(os.path.join(keras_home, "datasets"))
    dirs = []
    for root in roots:
        # Accept the files directly in a user-given folder, or in a sub-folder
        # named after the dataset (the Debian and Keras-cache layout).
        if root in (data_dir, os.environ.get(ENV_DATA_DIR)):
            dirs.append(root)
        dirs.extend(os.path.join(root, f) for f in folders)
    return dirs


def _find_idx_files(directory: str, split: str) -> tuple[str, str] | None:
    found = []
    for stem in _IDX_FILES[split]:
        for candidate in (stem + ".gz", stem, stem.replace("-idx", ".idx")):
            path = os.path.join(directory, candidate)
            if os.path.isfile(path):
                found.append(path)
                break
        else:
            return None
    return found[0], found[1]


@functools.lru_cache(maxsize=8)
def _read_idx_cached(images_path, labels_path, num_classes, _mtimes):
    return read_idx_pair(images_path, labels_path, num_classes)


def find_idx_source(name: str, data_dir: str | None = None) -> str | None:
    """Returns the first folder holding both IDX splits of `name`, or None."""
    for directory in _candidate_dirs(name, data_dir):
        if all(_find_idx_files(directory, s) for s in ("train", "test")):
            return directory
    return None


def _load_idx_arrays(name: str, directory: str, split: str):
    images_path, labels_path = _find_idx_files(directory, split)
    mtimes = (os.path.getmtime(images_path), os.path.getmtime(labels_path))
    num_classes = len(_IDX_DATASETS[name][1])
    return _read_idx_cached(images_path, labels_path, num_classes, mtimes)


def _no_data_error(name: str, data_dir: str | None, reason: str) -> DataNotFoundError:
    looked = ", ".join(_candidate_dirs(name, data_dir))
    return DataNotFoundError(
        f"Dataset {name!r} not found ({reason}). Get it one of three ways: "
        f"(1) `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu); "
        f"(2) put the four IDX files in a folder and pass --data-dir DIR or set "
        f"${ENV_DATA_DIR}; (3) go online once so TensorFlow Datasets can download "
        f"it (or pass --tfds-data-dir to a prepared TFDS folder). Looked in: {looked}"
    )


def _tfds_builder(name: str, tfds_data_dir: str | None):
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=tfds_data_dir)
    except Exception as e:  # TFDS raises several types for an unknown name.
        if "not found" in str(e).lower() or isinstance(e, (KeyError, ValueError)):
            raise UserInputError(
                f"Unknown dataset {name!r}: not an IDX dataset "
                f"({', '.join(_IDX_DATASETS)}), not a folder, and TFDS says: "
                f"{str(e).splitlines()[0]}"
            ) from None
        raise
    features = builder.info.features
    if "image" not in features or "label" not in features:
        raise UserInputError(
            f"TFDS dataset {name!r} is not an image-classification dataset "
            f"(features: {', '.join(features.keys())}); it needs 'image' and 'label'."
        )
    return builder


def _online(host: str = "storage.googleapis.com", timeout: float = 3.0) -> bool:
    """Whether TFDS could download: one quick connection, not TFDS's minutes of retries."""
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _is_prepared(builder) -> bool:
    try:
        return bool(builder.is_prepared())
    except Exception:  # older TFDS or mocked builders
        return False


def _prepare_tfds(builder, name: str, data_dir: str | None):
    if not _is_prepared(builder) and not _online():
        reason = "no IDX files, TFDS data not prepared, and offline"
        if name in _IDX_DATASETS:
            raise _no_data_error(name, data_dir, reason)
        raise DataNotFoundError(
            f"TFDS dataset {name!r} is not prepared in {builder.data_dir} and this "
            f"machine is offline. Go online once, or pass --tfds-data-dir to a "
            f"folder where it is prepared."
        )
    try:
        builder.download_and_prepare()
    except Exception as e:
        if name in _IDX_DATASETS:
            raise _no_data_error(
                name, data_dir, f"no IDX files, and TFDS failed: {type(e).__name__}"
            ) from None
        raise DataNotFoundError(
            f"TFDS dataset {name!r} is not prepared and could not be downloaded "
            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). "
            f"Go online once, or pass --tfds-data-dir to a folder where it is "
            f"prepared."
        ) from None


def _folder_splits(root: str) -> dict[str, str]:
    """Maps split -> folder: `root/train` + `root/test` if present, else `root`."""
    subdirs = {
        s: os.path.join(root, s)
        for s in ("train", "test")
        if os.path.isdir(os.path.join(root, s))
    }
    if "train" in subdirs and "test" in subdirs:
        return subdirs
    return {"all": root}


def _list_folder(root: str) -> tuple[list[str], list[int], list[str], list[str]]:
    """Lists `root/<class>/**/*` images; returns paths, labels, classes, skipped.

    `skipped` are the non-hidden files without an image extension.
    """
    classes = sorted(
        d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))
    )
    paths, labels, skipped = [], [], []
    for index, cls in enumerate(classes):
        for path in sorted(
            glob.glob(os.path.join(root, cls, "**", "*"), recursive=True)
        ):
            if os.path.isdir(path):
                continue
            if path.lower().endswith(_IMAGE_EXTENSIONS):
                paths.append(path)
                labels.append(index)
            else:
                skipped.append(path)
    return paths, labels, classes, skipped


def _inspect_image(path: str):
    """(height, width, channels) of an image, decoding it fully, or an error."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()  # a full decode: catches truncated and corrupt files
            channels = 1 if image.mode in ("L", "1", "I", "I;16", "F") else 3
            return (image.height, image.width, channels), None
    except Exception as e:  # PIL raises many types for a bad file
        return None, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"


def _inspect_images(paths: list[str]) -> list:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) * 2)) as pool:
        return list(pool.map(_inspect_image, paths))


def _decode_image(path: str, channels: int, image_size) -> tf.Tensor:
    raw = tf.io.read_file(path)
    image = tf.io.decode_image(raw, channels=channels, expand_animations=False)
    image = tf.image.resize(image, image_size, antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


class _Source:
    """Uniform view of a dataset source: uint8 examples and metadata."""

    def __init__(self, name, data_dir, tfds_data_dir, image_size):
        self.name = name
        self.notes = []
        self.image_size = tuple(image_size) if image_size else None
        if os.path.isdir(name):
            self._init_folder(name)
        elif os.sep in name or name.startswith("."):
            raise UserInputError(f"Dataset folder not found. Received: name={name!r}")
        elif name in _IDX_DATASETS and find_idx_source(name, data_dir):
            self.kind = "idx"
            self.directory = find_idx_source(name, data_dir)
            self.source = f"idx:{self.directory}"
            self.class_names = _IDX_DATASETS[name][1]
            images, _ = _load_idx_arrays(name, self.directory, "test")
            self.image_shape = images.shape[1:]
        else:
            self.kind = "tfds"
            self.builder = _tfds_builder(name, tfds_data_dir)
            _prepare_tfds(self.builder, name, data_dir)
            self.source = f"tfds:{self.builder.info.full_name}"
            label = self.builder.info.features["label"]
            self.class_names = tuple(label.names)
            shape = tuple(self.builder.info.features["image"].shape)
            if None in shape[:2] and not self.image_size:
                raise UserInputError(
                    f"TFDS dataset {name!r} has images of varying size {shape}; "
                    f"pass --image-size H,W."
                )
            self.image_shape = (*(self.image_size or shape[:2]), shape[2] or 3)
        if self.image_size and self.kind != "folder":
            self.image_shape = (*self.image_size, self.image_shape[2])

    def _init_folder(self, root):
        self.kind = "folder"
        self.source = f"folder:{os.path.abspath(root)}"
        self.folders = _folder_splits(root)
        listings = {split: _list_folder(d) for split, d in self.folders.items()}
        paths, _, classes, _ = next(iter(listings.values()))
        if len(classes) < 2 or not paths:
            raise UserInputError(
                f"{root}: expected one sub-folder of images per class (at least 2 "
                f"classes with {'/'.join(_IMAGE_EXTENSIONS)} files); found "
                f"{len(classes)} class folders and {len(paths)} images."
            )
        self.class_names = tuple(classes)
        # Check every image once, up front: a corrupt file is an error naming it
        # here, not a TensorFlow traceback in the middle of an epoch.
        all_paths = [p for listing in listings.values() for p in listing[0]]
        shapes = {}
        corrupt = []
        for path, (shape, error) in zip(all_paths, _inspect_images(all_paths)):
            if error:
                corrupt.append((path, error))
            else:
                shapes[path] = shape
        if corrupt:
            path, error = corrupt[0]
            raise UserInputError(
                f"{len(corrupt)} unreadable image file(s) in {root}; first: {path} "
                f"({error}). Remove or replace them."
            )
        sizes = {shape[:2]: path for path, shape in shapes.items()}
        if len(sizes) > 1 and not self.image_size:
            (size_a, path_a), (size_b, path_b) = list(sizes.items())[:2]
            raise UserInputError(
                f"Images in {root} differ in size ({path_a} is {size_a[0]}x"
                f"{size_a[1]}, {path_b} is {size_b[0]}x{size_b[1]}); pass "
                f"--image-size H,W to resize them all."
            )
        skipped = [p for listing in listings.values() for p in listing[3]]
        if skipped:
            self.notes.append(
                f"skipped {len(skipped)} non-image file(s) in {root} (first: "
                f"{skipped[0]})"
            )
        self.channels = 3 if any(s[2] == 3 for s in shapes.values()) else 1
        size = self.image_size or next(iter(sizes))
        self.image_shape = (*size, self.channels)

    # -- examples ----------------------------------------------------------

    def examples(self, split: str) -> tuple[tf.data.Dataset, int]:
        """Returns the unbatched uint8 `(image, label)` dataset of a source split.

        `split` is `train` or `test` of the source (before carving validation).
        """
        if self.kind == "idx":
            images, labels = _load_idx_arrays(self.name, self.directory, split)
            if self.image_size:
                images = tf.cast(
                    tf.round(tf.image.resize(images, self.image_size, antialias=True)),
                    tf.uint8,
                ).numpy()
            return _ArrayDataset(images, labels), len(labels)
        if self.kind == "folder":
            return self._folder_examples(split)
        return self._tfds_examples(split)

    def _folder_examples(self, split):
        if "all" in self.folders:
            # A single folder: hold out a fixed 10% as the test split, with a
            # seed that never changes, so every run is tested on the same images.
            paths, labels, _, _ = _list_folder(self.folders["all"])
            parts = split_indices(len(paths), 0.1, 1.0, seed=20260101)
            chosen = parts["validation" if split == "test" else "train"]
            paths = [paths[i] for i in chosen]
            labels = [labels[i] for i in chosen]
        else:
            paths, labels, classes, _ = _list_folder(self.folders[split])
            if tuple(classes) != self.class_names:
                raise UserInputError(
                    f"{self.folders[split]}: class folders {classes} differ from "
                    f"the train folder's {list(self.class_names)}."
                )
        size = self.image_shape[:2]
        channels = self.channels

        ds = tf.data.Dataset.from_tensor_slices(
            (tf.constant(paths, tf.string), tf.constant(labels, tf.int64))
        )
        ds = ds.map(
            lambda p, y: (_decode_image(p, channels, size), y),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        return _StreamingExamples(ds, len(paths)), len(paths)

    def _tfds_examples(self, split):
        splits = self.builder.info.splits
        if splits and split not in splits:
            alternative = "validation" if "validation" in splits else None
            if split == "test" and alternative:
                split = alternative
            else:
                raise UserInputError(
                    f"TFDS dataset {self.name!r} has no {split!r} split "
                    f"(it has {', '.join(splits)})."
                )
        ds = self.builder.as_dataset(
            split=split, as_supervised=True, shuffle_files=False
        )
        n = splits[split].num_examples if splits and split in splits else None
        if not n:
            n = int(ds.reduce(0, lambda count, _: count + 1))
        size = self.image_shape[:2]
        channels = self.image_shape[2]

        def standardize(image, label):
            image = tf.convert_to_tensor(image)
            if self.image_size or image.shape[0] is None:
                image = tf.image.resize(image, size, antialias=True)
                image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
            image = tf.ensure_shape(image, (*size, channels))
            return image, tf.cast(label, tf.int64)

        ds = ds.map(
            standardize, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )
        return _StreamingExamples(ds, n), n


class _ArrayDataset:
    """In-memory examples: selection is a numpy gather, no streaming filter."""

    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def select(self, indices) -> tf.data.Dataset:
        if indices is not None:
            images, labels = self.images[indices], self.labels[indices]
        else:
            images, labels = self.images, self.labels
        return tf.data.Dataset.from_tensor_slices((images, labels))


class _StreamingExamples:
    """Streamed examples: selection keeps the elements whose index is chosen."""

    def __init__(self, ds, n):
        self.ds, self.n = ds, n

    def select(self, indices) -> tf.data.Dataset:
        if indices is None:
            return self.ds
        mask = np.zeros(self.n, bool)
        mask[indices] = True
        keep = tf.constant(mask)
        return (
            self.ds.enumerate()
            .filter(lambda i, example: tf.gather(keep, i))
            .map(lambda i, example: example)
        )


@functools.lru_cache(maxsize=16)
def _get_source(name, data_dir, tfds_data_dir, image_size):
    return _Source(name, data_dir, tfds_data_dir, image_size)


def _shuffle_by_epoch(ds, buffer, seed, epoch):
    """Shuffles each pass with a stateless seed from `(seed, epoch)`.

    Windows of `buffer` consecutive examples are each permuted by
    `stateless_shuffle` keyed on (seed, epoch, window); with the buffer as
    large as the split (the default up to 60,000 examples) that is a full
    shuffle. `tf.data.Dataset.shuffle` cannot do this: it takes no per-pass
    seed (a tensor seed breaks when the global seed is 0).
    """
    base = tf.constant(int(seed), tf.int64)

    def permute(window_index, window):
        key = tf.stack(
            [base, tf.cast(epoch.read_value(), tf.int64) * 1_000_003 + window_index]
        )
        size = tf.shape(tf.nest.flatten(window)[0], out_type=tf.int64)[0]
        order = tf.random.experimental.stateless_shuffle(tf.range(size), seed=key)
        return tf.nest.map_structure(lambda t: tf.gather(t, order), window)

    return ds.batch(buffer).enumerate().map(permute).unbatch()


def _to_float(images, labels):
    return tf.cast(images, tf.float32) / 255.0, labels


def load_dataset(
    name: str = "fashion_mnist",
    split: str = "train",
    *,
    batch_size: int | None = None,
    shuffle: bool | None = None,
    seed: int = 0,
    validation_fraction: float = 0.1,
    train_fraction: float = 1.0,
    data_dir: str | None = None,
    tfds_data_dir: str | None = None,
    image_size: tuple[int, int] | None = None,
    cache: bool = True,
    map_fn: Callable | None = None,
    drop_remainder: bool = False,
    prefetch: bool = True,
    shuffle_buffer: int = 60_000,
    epoch: tf.Variable | None = None,
) -> tuple[tf.data.Dataset, DatasetInfo]:
    """Loads one split of an image-classification dataset as a `tf.data.Dataset`.

    Args:
        name: str. `fashion_mnist` (default), `mnist`, any TFDS
            image-classification dataset (`cifar10`, `svhn_cropped`, ...), or the
            path of a folder with one sub-folder of images per class (optionally
            under `train/` and `test/`; else 10% is held out as test).
        split: str. `train`, `validation` (carved from train) or `test`.
        batch_size: int. Batch size; None for single examples.
        shuffle: bool. Shuffle each epoch. Defaults to True for `train` only.
        seed: int. Seed of the validation split and of shuffling.
        validation_fraction: float. Fraction of the training split held out.
            Defaults to 0.1.
        train_fraction: float. Fraction of the (remaining) training examples to
            use, a seeded subset, for quick runs. Defaults to 1.0.
        data_dir: str. Folder with IDX files, searched first.
        tfds_data_dir: str. TFDS data folder.
        image_size: `(height, width)`. Resize images to this size. Defaults to
            the dataset's own size (for folders: the first image's size).
        cache: bool. Cache the uint8 examples in memory. Defaults to True.
        map_fn: callable. Applied to each `(images, labels)` batch after the
            float conversion, in the same `map`.
        drop_remainder: bool. Drop the last partial batch.
        prefetch: bool. End the pipeline with `prefetch(AUTOTUNE)`.
        shuffle_buffer: int. Shuffle buffer size (capped at the split size).
        epoch: `tf.Variable` (integer) or None. If given, each pass over the
            data is shuffled with a seed derived from `(seed, epoch)`, read when
            the pass starts: set it to the epoch number before each epoch
            (`training.callbacks.EpochCounter` does) and the order of epoch `e`
            is the same whether or not a run was interrupted before it. If
            None, the order is reshuffled on each pass from `seed` alone (the
            order of pass k depends on how many passes came before).

    Returns:
        `(dataset, info)`: a dataset of `(float32 image(s) in [0, 1], int64
        label(s))` and a `DatasetInfo`.

    Example:

    ```python
    ds, info = load_dataset("fashion_mnist", "train", batch_size=128)
    images, labels = next(iter(ds))  # (128, 28, 28, 1) float32, (128,) int64
    ```
    """
    if split not in SPLITS:
        raise UserInputError(
            f"split must be one of {', '.join(SPLITS)}. Received: split={split!r}"
        )
    if batch_size is not None and int(batch_size) < 1:
        raise UserInputError(
            f"batch_size must be >= 1. Received: batch_size={batch_size}"
        )
    name = canonical_name(name)
    source = _get_source(
        name, data_dir, tfds_data_dir, tuple(image_size) if image_size else None
    )
    train_examples, n_train_source = source.examples("train")
    parts = split_indices(n_train_source, validation_fraction, train_fraction, seed)
    test_examples, n_test = source.examples("test")
    sizes = {
        "train": len(parts["train"]),
        "validation": len(parts["validation"]),
        "test": n_test,
    }
    if split == "test":
        ds = test_examples.select(None)
    else:
        if split == "validation" and sizes["validation"] == 0:
            raise UserInputError(
                "The validation split is empty: validation_fraction is 0. "
                f"Received: validation_fraction={validation_fraction}"
            )
        ds = train_examples.select(parts[split])

    if cache:
        ds = ds.cache()
    if shuffle if shuffle is not None else split == "train":
        buffer = max(1, min(int(shuffle_buffer), sizes[split]))
        if epoch is None:
            ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
        else:
            ds = _shuffle_by_epoch(ds, buffer, seed, epoch)
            ds = ds.apply(tf.data.experimental.assert_cardinality(sizes[split]))
    if batch_size:
        ds = ds.batch(int(batch_size), drop_remainder=drop_remainder)
    if map_fn is None:
        ds = ds.map(_to_float, num_parallel_calls=tf.data.AUTOTUNE)
    else:
        ds = ds.map(
            lambda x, y: map_fn(*_to_float(x, y)), num_parallel_calls=tf.data.AUTOTUNE
        )
    if prefetch:
        ds = ds.prefetch(tf.data.AUTOTUNE)

    info = DatasetInfo(
        name=name,
        source=source.source,
        image_shape=tuple(int(d) for d in source.image_shape),
        num_classes=len(source.class_names),
        class_names=tuple(source.class_names),
        sizes=sizes,
        validation_fraction=float(validation_fraction),
        train_fraction=float(train_fraction),
        seed=int(seed),
        notes=tuple(source.notes),
    )
    return ds, info

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
uint8 -> float conversion (and any augmentation) runs once per batch; a resize
to `image_size` runs in that map too, so the cache holds images at their own
size (only images of differing sizes are resized one by one, before the cache).

Folders are read defensively: each real folder and each real file is listed
once (symlink loops are not followed, a file linked twice is used once and
never in both splits), and images are decoded by Pillow, limited to the PNG,
JPEG, GIF and BMP formats, both in the up-front check and in the pipeline.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import socket
import stat
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

# The largest image side `load_dataset` accepts (`image_size`, or a dataset's
# own size). The zoo's largest usual input is 299 (Inception v3); 512 leaves
# room. Beyond it a training batch no longer fits in memory: at 512x512 a batch
# of 128 RGB images is 400 MB of float32 before the first layer, and one
# 32-filter feature map at full resolution is 4 GiB.
MAX_IMAGE_SIDE = 512


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


def is_online(host: str = "storage.googleapis.com", timeout: float = 3.0) -> bool:
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
    if not _is_prepared(builder) and not is_online():
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
        for s in ("test", "train")
        if os.path.isdir(os.path.join(root, s))
    }
    if "train" in subdirs and "test" in subdirs:
        return subdirs
    return {"all": root}


def _class_names(folder: str) -> list[str]:
    return sorted(
        d
        for d in os.listdir(folder)
        if not d.startswith(".") and os.path.isdir(os.path.join(folder, d))
    )


def _walk_files(top: str, visited: set, not_followed: list) -> list[str]:
    """The non-hidden files under `top`, following each real folder once.

    Folder symlinks are followed (a class folder may live elsewhere), but a
    folder whose resolved path is in `visited` (the dataset root, any class
    folder, any folder already walked) is not entered again: a symlink loop
    or a link into another class adds nothing. Those links go to `not_followed`.
    """
    files = []
    for dirpath, dirnames, filenames in os.walk(top, followlinks=True):
        keep = []
        for d in dirnames:
            if d.startswith("."):
                continue
            real = os.path.realpath(os.path.join(dirpath, d))
            if real in visited:
                not_followed.append(os.path.join(dirpath, d))
            else:
                visited.add(real)
                keep.append(d)
        dirnames[:] = keep
        files.extend(
            os.path.join(dirpath, f) for f in filenames if not f.startswith(".")
        )
    return sorted(files)


def _is_regular_file(path: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:  # a broken symlink
        return False


# What Pillow may open: the formats the image extensions name. Passed to
# `Image.open(formats=...)`, so a file of any other format (a PPM or TIFF named
# `.png`, or one of Pillow's riskier plugins) is never parsed.
_PIL_FORMATS = ("PNG", "JPEG", "GIF", "BMP")
# How files of those formats start: a file that starts so and still cannot be
# identified is a corrupt image (an error), not some other file (skipped).
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
)
# Pillow modes those formats decode to, and how many channels each keeps.
# Integer modes (16-bit PNG) are grayscale on a 0-65535 scale.
_GRAY_MODES = ("1", "L", "I", "I;16", "I;16B", "I;16L")
_COLOR_MODES = ("P", "PA", "LA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr")


class _NotAnImage(Exception):
    """A file in none of `_PIL_FORMATS`, or in a mode we do not convert."""


def _read_image(path: str, channels: int | None = None) -> np.ndarray:
    """Decodes an image file with Pillow to a uint8 `(height, width, channels)` array.

    The one decoder of folder datasets: the scan calls it on every file and the
    `tf.data` pipeline calls it again (through `tf.numpy_function`), so a file
    the scan accepts is a file the pipeline can decode.

    Args:
        path: str. The image file.
        channels: 1, 3 or None. Convert to gray or RGB; None keeps the
            image's own count (1 for gray modes, else 3).

    Returns:
        A uint8 array of shape `(height, width, channels)`.

    Raises:
        _NotAnImage: the file is in no allowed format or mode.
        Exception: whatever Pillow raises for a corrupt or truncated file, or
            an image over its decompression-bomb limit.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(path, formats=_PIL_FORMATS)
    except UnidentifiedImageError:
        with open(path, "rb") as f:
            head = f.read(8)
        for signature, fmt in _SIGNATURES:
            if head.startswith(signature):  # the right format, but broken
                raise OSError(f"a {fmt} file Pillow cannot read") from None
        raise _NotAnImage(f"not a {', '.join(_PIL_FORMATS)} image") from None
    with image:
        image.load()  # a full decode: catches truncated and corrupt files
        return _to_array(image, channels)


def _to_array(image, channels: int | None = None) -> np.ndarray:
    """A decoded Pillow image as a uint8 `(height, width, channels)` array."""
    mode = image.mode
    if mode not in _GRAY_MODES + _COLOR_MODES:
        raise _NotAnImage(f"{image.format} image in unsupported mode {mode}")
    if channels is None:
        channels = 1 if mode in _GRAY_MODES else 3
    if mode.startswith("I"):
        wide = np.clip(np.asarray(image, np.int64), 0, 65535)
        gray = ((wide * 255 + 32767) // 65535).astype(np.uint8)
        array = gray[..., None].repeat(channels, axis=-1)
    else:
        array = np.asarray(image.convert("L" if channels == 1 else "RGB"))
        if channels == 1:
            array = array[..., None]
    return np.ascontiguousarray(array, np.uint8)


def _inspect_image(path: str):
    """`(shape, None)` for a decodable image, else `(None, (kind, reason))`.

    `kind` is `"not_image"` (skipped and counted) or `"corrupt"` (an error).
    """
    try:
        return _read_image(path).shape, None
    except _NotAnImage as e:
        return None, ("not_image", str(e))
    except Exception as e:  # PIL raises many types for a bad file
        reason = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        return None, ("corrupt", reason)


def _inspect_images(paths: list[str]) -> list:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) * 2)) as pool:
        return list(pool.map(_inspect_image, paths))


def _decode_image(path, channels: int, shape) -> tf.Tensor:
    """The pipeline's decode: `_read_image` inside `tf.data`."""
    image = tf.numpy_function(
        lambda p: _read_image(p.decode(), channels),
        [path],
        tf.uint8,
        stateful=False,
    )
    return tf.ensure_shape(image, shape)


def _resize_uint8(images, size) -> tf.Tensor:
    """Resizes uint8 image(s) (antialiased), rounded back to uint8 values."""
    images = tf.image.resize(images, size, antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(images), 0, 255), tf.uint8)


class _Source:
    """Uniform view of a dataset source: uint8 examples and metadata."""

    def __init__(self, name, data_dir, tfds_data_dir, image_size):
        self.name = name
        self.notes = []
        self.image_size = tuple(image_size) if image_size else None
        # (height, width) shared by all images, or None when they differ.
        self.natural_size = None
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
            self.natural_size = tuple(images.shape[1:3])
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
            if None not in shape[:2]:
                self.natural_size = tuple(shape[:2])
        if self.image_size and self.kind != "folder":
            self.image_shape = (*self.image_size, self.image_shape[2])
        if max(self.image_shape[:2]) > MAX_IMAGE_SIDE:
            raise UserInputError(
                f"Images of {name} are {self.image_shape[0]}x{self.image_shape[1]}, "
                f"larger than {MAX_IMAGE_SIDE} pixels a side; pass --image-size H,W "
                f"to resize them."
            )
        # Images of one size are resized per batch in `load_dataset`, after
        # the cache, so only their own size is ever held in memory.
        self.batch_resize = None
        if (
            self.image_size
            and self.natural_size
            and self.image_size != self.natural_size
        ):
            self.batch_resize = self.image_size

    def _init_folder(self, root):
        self.kind = "folder"
        self.source = f"folder:{os.path.abspath(root)}"
        self.folders = _folder_splits(root)
        classes = {split: _class_names(d) for split, d in self.folders.items()}
        class_names = classes.get("train", classes.get("all"))
        for split, names in classes.items():
            if names != class_names:
                raise UserInputError(
                    f"{self.folders[split]}: class folders {names} differ from "
                    f"the train folder's {class_names}."
                )
        # Every real folder is walked once: the root, the split and class
        # folders are marked before any walk, so a link back to them is not
        # followed. Every real file is listed once, test split first: a file
        # reached again (a symlink, or a link into test/ from train/) is
        # skipped, or, under another class, an error.
        visited = {os.path.realpath(root)}
        for split, folder in self.folders.items():
            visited.add(os.path.realpath(folder))
            visited.update(
                os.path.realpath(os.path.join(folder, c)) for c in classes[split]
            )
        not_followed, skipped, duplicates = [], [], []
        seen = {}  # resolved path -> (path, class)
        candidates = {}
        for split, folder in self.folders.items():
            paths, labels = [], []
            for index, cls in enumerate(class_names):
                for path in _walk_files(
                    os.path.join(folder, cls), visited, not_followed
                ):
                    if not (
                        path.lower().endswith(_IMAGE_EXTENSIONS)
                        and _is_regular_file(path)
                    ):
                        skipped.append(path)
                        continue
                    real = os.path.realpath(path)
                    if real in seen:
                        first, first_cls = seen[real]
                        if first_cls != cls:
                            raise UserInputError(
                                f"{path} (class {cls!r}) and {first} (class "
                                f"{first_cls!r}) are the same file {real}; an image "
                                f"can have only one class."
                            )
                        duplicates.append((path, first))
                        continue
                    seen[real] = (path, cls)
                    paths.append(path)
                    labels.append(index)
            candidates[split] = (paths, labels)
        listed = candidates.get("train", candidates.get("all"))[0]
        if len(class_names) < 2 or not listed:
            raise UserInputError(
                f"{root}: expected one sub-folder of images per class (at least 2 "
                f"classes with {'/'.join(_IMAGE_EXTENSIONS)} files); found "
                f"{len(class_names)} class folders and {len(listed)} images."
            )
        self.class_names = tuple(class_names)
        # Decode every image once, up front, with the decoder the pipeline uses:
        # a corrupt file is an error naming it here, not a traceback in the
        # middle of an epoch; a file in another format is skipped and counted.
        all_paths = [p for paths, _ in candidates.values() for p in paths]
        shapes, corrupt = {}, []
        for path, (shape, error) in zip(all_paths, _inspect_images(all_paths)):
            if error is None:
                shapes[path] = shape
            elif error[0] == "not_image":
                skipped.append(path)
            else:
                corrupt.append((path, error[1]))
        if corrupt:
            path, error = corrupt[0]
            raise UserInputError(
                f"{len(corrupt)} unreadable image file(s) in {root}; first: {path} "
                f"({error}). Remove or replace them."
            )
        files = {}
        for split, (paths, labels) in candidates.items():
            kept = [(p, y) for p, y in zip(paths, labels) if p in shapes]
            files[split] = ([p for p, _ in kept], [y for _, y in kept])
        if "all" in files:
            # A single folder: hold out a fixed 10% as the test split, with a
            # seed that never changes, so every run is tested on the same images.
            paths, labels = files.pop("all")
            parts = split_indices(len(paths), 0.1, 1.0, seed=20260101)
            for split, part in (("train", "train"), ("test", "validation")):
                files[split] = (
                    [paths[i] for i in parts[part]],
                    [labels[i] for i in parts[part]],
                )
        overlap = {os.path.realpath(p) for p in files["train"][0]} & {
            os.path.realpath(p) for p in files["test"][0]
        }
        if overlap:  # cannot happen: every resolved path was listed once
            raise RuntimeError(
                f"Bug: train and test share files: {sorted(overlap)[:3]}"
            )
        self.files = files
        sizes = {shape[:2]: path for path, shape in shapes.items()}
        if len(sizes) > 1 and not self.image_size:
            (size_a, path_a), (size_b, path_b) = list(sizes.items())[:2]
            raise UserInputError(
                f"Images in {root} differ in size ({path_a} is {size_a[0]}x"
                f"{size_a[1]}, {path_b} is {size_b[0]}x{size_b[1]}); pass "
                f"--image-size H,W to resize them all."
            )
        if skipped:
            self.notes.append(
                f"skipped {len(skipped)} non-image file(s) in {root} (first: "
                f"{skipped[0]})"
            )
        if duplicates:
            path, first = duplicates[0]
            self.notes.append(
                f"skipped {len(duplicates)} duplicate file(s) in {root}, each the "
                f"same file as one already listed (first: {path} is {first})"
            )
        if not_followed:
            self.notes.append(
                f"did not follow {len(not_followed)} folder link(s) in {root} to "
                f"folders already listed (first: {not_followed[0]})"
            )
        self.channels = 3 if any(s[2] == 3 for s in shapes.values()) else 1
        self.natural_size = next(iter(sizes)) if len(sizes) == 1 else None
        size = self.image_size or self.natural_size
        self.image_shape = (*size, self.channels)

    # -- examples ----------------------------------------------------------

    def examples(self, split: str) -> tuple[tf.data.Dataset, int]:
        """Returns the unbatched uint8 `(image, label)` dataset of a source split.

        `split` is `train` or `test` of the source (before carving validation).
        Images keep their own size when all share one (`load_dataset` resizes
        them per batch, after the cache); else they are resized here, one by one.
        """
        if self.kind == "idx":
            images, labels = _load_idx_arrays(self.name, self.directory, split)
            return _ArrayDataset(images, labels), len(labels)
        if self.kind == "folder":
            return self._folder_examples(split)
        return self._tfds_examples(split)

    def _folder_examples(self, split):
        paths, labels = self.files[split]
        channels = self.channels
        natural = self.natural_size
        ds = tf.data.Dataset.from_tensor_slices(
            (tf.constant(paths, tf.string), tf.constant(labels, tf.int64))
        )
        if natural:
            decode = lambda p: _decode_image(p, channels, (*natural, channels))  # noqa: E731
        else:
            size = self.image_size
            decode = lambda p: tf.ensure_shape(  # noqa: E731
                _resize_uint8(_decode_image(p, channels, (None, None, channels)), size),
                (*size, channels),
            )
        ds = ds.map(
            lambda p, y: (decode(p), y),
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

        natural = self.natural_size

        def standardize(image, label):
            image = tf.convert_to_tensor(image)
            if natural is None:  # sizes differ: resize one by one
                image = tf.ensure_shape(_resize_uint8(image, size), (*size, channels))
            else:
                image = tf.ensure_shape(image, (*natural, channels))
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


def without_autotune_thread(ds):
    """`ds` without tf.data's autotuning thread; `AUTOTUNE` values stay.

    `fit` opens a new iterator on its training (and validation) pipeline every
    epoch and drops the last one. With autotuning on, that iterator owns a
    model thread (`Model::OptimizeLoop`) that sleeps between optimizations
    for a period that keeps growing, and the iterator's destructor waits
    for it to wake: `fit`'s next epoch then starts after an idle pause of up
    to tens of seconds (seen on 2-core CPUs: 4-40 s at 11 of 20 epoch
    turnovers, every thread asleep; `benchmarks/epoch_turnover.py`). Without
    the model thread, `AUTOTUNE` values get tf.data's fixed defaults; these
    pipelines still run far faster than the training steps they feed
    (`benchmarks/data_pipeline.py`). Options pass down to every later
    transformation, so `make_datasets`' augmented pipelines inherit it.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)


def _to_float(images, labels):
    return tf.cast(images, tf.float32) / 255.0, labels


def check_image_size(image_size) -> tuple[int, int] | None:
    """Validates an `image_size` argument.

    Args:
        image_size: `(height, width)` or None.

    Returns:
        `(height, width)` as Python ints, or None.

    Raises:
        UserInputError: unless both sides are integers in
            `[1, MAX_IMAGE_SIDE]`.
    """
    if image_size is None:
        return None
    try:
        size = tuple(image_size)
    except TypeError:
        size = ()
    if len(size) != 2 or not all(
        isinstance(s, (int, np.integer))
        and not isinstance(s, bool)
        and 1 <= s <= MAX_IMAGE_SIDE
        for s in size
    ):
        raise UserInputError(
            f"image_size must be height,width with each side an integer from 1 to "
            f"{MAX_IMAGE_SIDE} (larger images do not fit a training batch in "
            f"memory). Received: image_size={image_size!r}"
        )
    return int(size[0]), int(size[1])


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
        data_dir: str. Folder with IDX files, searched first. It must exist.
        tfds_data_dir: str. TFDS data folder.
        image_size: `(height, width)`, each side at most `MAX_IMAGE_SIDE`.
            Resize images to this size. Defaults to the dataset's own size.
            Images of one size are resized per batch after the cache, so
            memory holds them at their own size; images of differing sizes
            are resized one by one before it.
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
    if data_dir and not os.path.isdir(data_dir):
        what = "is not a folder" if os.path.exists(data_dir) else "does not exist"
        raise UserInputError(f"data dir {data_dir} {what}.")
    image_size = check_image_size(image_size)
    name = canonical_name(name)
    source = _get_source(name, data_dir, tfds_data_dir, image_size)
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
    resize = source.batch_resize

    def prepare(images, labels):
        if resize:
            images = _resize_uint8(images, resize)
        images, labels = _to_float(images, labels)
        return map_fn(images, labels) if map_fn else (images, labels)

    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
    if prefetch:
        ds = ds.prefetch(tf.data.AUTOTUNE)
    ds = without_autotune_thread(ds)

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

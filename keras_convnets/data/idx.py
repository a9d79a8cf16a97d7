"""A strict reader for the IDX format of MNIST and Fashion-MNIST.

IDX files start with a magic number (two zero bytes, a type code, the number of
dimensions), then one big-endian uint32 per dimension, then the data. The reader
checks each of those against the file and raises a `UserInputError` naming the
file and the problem, so a truncated download never becomes a silent bad run.
"""

from __future__ import annotations

import gzip
import os
import zlib

import numpy as np

from keras_convnets.errors import UserInputError

# IDX type codes -> numpy dtypes (big-endian where it matters).
_IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _read_bytes(path: str) -> bytes:
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                return f.read()
        with open(path, "rb") as f:
            return f.read()
    except EOFError as e:
        raise UserInputError(
            f"{path}: truncated gzip file ({e}); download it again."
        ) from None
    except (gzip.BadGzipFile, zlib.error) as e:
        raise UserInputError(f"{path}: not a valid gzip file ({e}).") from None
    except OSError as e:
        raise UserInputError(f"{path}: cannot read file ({e.strerror or e}).") from None


def read_idx(path: str | os.PathLike, expected_ndim: int | None = None) -> np.ndarray:
    """Reads one IDX file (raw or gzipped) into a numpy array.

    Args:
        path: str. Path to an IDX file, optionally ending in `.gz`.
        expected_ndim: int. If given, the number of dimensions the file must
            have (3 for images, 1 for labels).

    Returns:
        A numpy array with the file's shape and (native-endian) dtype.

    Raises:
        UserInputError: naming the file, when the magic number, type code,
            dimensions or file size do not match the format.

    Example:

    ```python
    labels = read_idx("train-labels-idx1-ubyte.gz", expected_ndim=1)
    ```
    """
    path = os.fspath(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise UserInputError(
            f"{path}: file too short for an IDX header ({len(data)} bytes)."
        )
    if data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise UserInputError(
            f"{path}: bad IDX magic number 0x{data[:4].hex()} (expected 0x0000TTNN "
            f"with type TT in {sorted(hex(t) for t in _IDX_DTYPES)})."
        )
    dtype = _IDX_DTYPES[data[2]]
    ndim = data[3]
    if expected_ndim is not None and ndim != expected_ndim:
        raise UserInputError(
            f"{path}: IDX file has {ndim} dimensions, expected {expected_ndim}."
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise UserInputError(f"{path}: file too short for its {ndim}-D IDX header.")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise UserInputError(
            f"{path}: size {len(data)} bytes does not match its header "
            f"(dimensions {shape} need {expected} bytes); the file is truncated "
            f"or corrupt."
        )
    array = np.frombuffer(data, dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=False)


def read_idx_pair(
    images_path: str, labels_path: str, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Reads matching image and label IDX files and checks them against each other.

    Args:
        images_path: str. IDX file of shape `(n, height, width)`.
        labels_path: str. IDX file of shape `(n,)`.
        num_classes: int. Labels must lie in `[0, num_classes)`.

    Returns:
        `(images, labels)`: uint8 `(n, height, width, 1)` and int64 `(n,)`.
    """
    images = read_idx(images_path, expected_ndim=3)
    labels = read_idx(labels_path, expected_ndim=1)
    if images.dtype != np.uint8:
        raise UserInputError(
            f"{images_path}: expected unsigned-byte images, got type {images.dtype}."
        )
    if labels.shape[0] != images.shape[0]:
        raise UserInputError(
            f"{labels_path}: {labels.shape[0]} labels for {images.shape[0]} images "
            f"in {images_path}."
        )
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)]
        raise UserInputError(
            f"{labels_path}: label {int(bad[0])} outside [0, {num_classes}) "
            f"({bad.size} bad labels)."
        )
    return images[..., None], labels.astype(np.int64)


def write_idx(path: str, array: np.ndarray) -> None:
    """Writes a uint8 array as an IDX file (gzipped if `path` ends in `.gz`).

    Used by tests and to export subsets; the inverse of `read_idx` for uint8.
    """
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    payload = header + array.tobytes()
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(payload)

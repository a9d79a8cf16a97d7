"""A strict reader for the IDX format of MNIST and Fashion-MNIST.

IDX files start with a magic number (two zero bytes, a type code, the number of
dimensions), then one big-endian uint32 per dimension, then the data. The reader
checks each of those against the file and raises a `UserInputError` naming the
file and the problem, so a truncated download never becomes a silent bad run.
The data are streamed: the header is read first, the size it implies is
bounded (`MAX_IDX_BYTES`), and then exactly that many bytes are read (inflated,
for `.gz`) plus one to detect trailing data, so a decompression bomb costs at
most the declared size.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
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

# The most data bytes an IDX file may declare. The reader holds a whole file in
# memory, and the largest IDX dataset in use, EMNIST ByClass (697,932 images of
# 28x28, 547 MB), fits twice; Fashion-MNIST's largest file is 47 MB. A header
# declaring more is corrupt or hostile, and is refused before anything is
# allocated or inflated.
MAX_IDX_BYTES = 1 << 30
# Bytes asked of the (possibly gzipped) file at a time.
_CHUNK = 1 << 20


def _open(path: str):
    """A binary file object for `path`, inflating it on the fly if it ends in `.gz`."""
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


def _read_exactly(f, buffer: memoryview) -> int:
    """Fills `buffer` from `f` in chunks; returns how many bytes were read.

    Never asks `f` for more than the bytes still missing (at most `_CHUNK` at a
    time), so a gzip stream is inflated only as far as the buffer goes.
    """
    filled = 0
    while filled < len(buffer):
        chunk = f.read(min(_CHUNK, len(buffer) - filled))
        if not chunk:
            break
        buffer[filled : filled + len(chunk)] = chunk
        filled += len(chunk)
    return filled


def _read_stream(path: str, f, expected_ndim: int | None) -> np.ndarray:
    magic = f.read(4)
    if len(magic) < 4:
        raise UserInputError(
            f"{path}: file too short for an IDX header ({len(magic)} bytes)."
        )
    if magic[0] != 0 or magic[1] != 0 or magic[2] not in _IDX_DTYPES:
        raise UserInputError(
            f"{path}: bad IDX magic number 0x{magic.hex()} (expected 0x0000TTNN "
            f"with type TT in {sorted(hex(t) for t in _IDX_DTYPES)})."
        )
    dtype = _IDX_DTYPES[magic[2]]
    ndim = magic[3]
    if expected_ndim is not None and ndim != expected_ndim:
        raise UserInputError(
            f"{path}: IDX file has {ndim} dimensions, expected {expected_ndim}."
        )
    dims = f.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise UserInputError(f"{path}: file too short for its {ndim}-D IDX header.")
    shape = struct.unpack(f">{ndim}I", dims)
    if 0 in shape:
        raise UserInputError(
            f"{path}: IDX header has a zero dimension {shape}; the file holds no data."
        )
    # Python integers: a product of uint32 dimensions cannot overflow or wrap.
    size = math.prod(shape) * dtype.itemsize
    if size > MAX_IDX_BYTES:
        raise UserInputError(
            f"{path}: IDX header dimensions {shape} imply {size:,} bytes of data, "
            f"more than the {MAX_IDX_BYTES:,}-byte limit; the header is corrupt "
            f"(or the file is not a dataset this package loads into memory)."
        )
    header = 4 + 4 * ndim
    data = np.empty(size, np.uint8)
    got = _read_exactly(f, memoryview(data))
    if got < size:
        raise UserInputError(
            f"{path}: size {header + got} bytes does not match its header "
            f"(dimensions {shape} need {header + size} bytes); the file is "
            f"truncated or corrupt."
        )
    if f.read(1):
        raise UserInputError(
            f"{path}: size does not match its header (dimensions {shape} need "
            f"{header + size} bytes, the file has more); the file is corrupt."
        )
    array = data.view(dtype).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=False)


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
            dimensions or file size do not match the format, when a dimension
            is 0, or when the header declares more than `MAX_IDX_BYTES` bytes.
            Never more than the declared size plus one byte is read (or
            inflated).

    Example:

    ```python
    labels = read_idx("train-labels-idx1-ubyte.gz", expected_ndim=1)
    ```
    """
    path = os.fspath(path)
    try:
        with _open(path) as f:
            return _read_stream(path, f, expected_ndim)
    except EOFError as e:
        raise UserInputError(
            f"{path}: truncated gzip file ({e}); download it again."
        ) from None
    except (gzip.BadGzipFile, zlib.error) as e:
        raise UserInputError(f"{path}: not a valid gzip file ({e}).") from None
    except OSError as e:
        raise UserInputError(f"{path}: cannot read file ({e.strerror or e}).") from None


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

"""The IDX reader: round trips and every kind of corrupt file."""

import gzip
import struct
import tracemalloc

import numpy as np
import pytest

from keras_convnets.data import idx
from keras_convnets.data.idx import read_idx, read_idx_pair, write_idx
from keras_convnets.errors import UserInputError


@pytest.fixture
def pair(tmp_path, rng):
    images = rng.integers(0, 256, (7, 5, 4), dtype=np.uint8)
    labels = rng.integers(0, 10, 7).astype(np.uint8)
    write_idx(str(tmp_path / "images.gz"), images)
    write_idx(str(tmp_path / "labels"), labels)
    return tmp_path / "images.gz", tmp_path / "labels", images, labels


def test_round_trip_gzipped_and_raw(pair):
    images_path, labels_path, images, labels = pair
    got_images, got_labels = read_idx_pair(str(images_path), str(labels_path), 10)
    assert got_images.shape == (7, 5, 4, 1) and got_images.dtype == np.uint8
    np.testing.assert_array_equal(got_images[..., 0], images)
    np.testing.assert_array_equal(got_labels, labels)
    assert got_labels.dtype == np.int64


def test_real_fashion_mnist_headers(fashion_mnist_dir):
    images = read_idx(f"{fashion_mnist_dir}/t10k-images-idx3-ubyte.gz", expected_ndim=3)
    labels = read_idx(f"{fashion_mnist_dir}/t10k-labels-idx1-ubyte.gz", expected_ndim=1)
    assert images.shape == (10000, 28, 28)
    assert labels.shape == (10000,)
    assert np.bincount(labels).tolist() == [1000] * 10


def test_bad_magic(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(b"\x12\x34\x08\x01" + b"\x00\x00\x00\x01" + b"\x05")
    with pytest.raises(UserInputError, match=r"bad\b.*magic number 0x12340801") as e:
        read_idx(str(path))
    assert str(path) in str(e.value)


def test_unknown_type_code(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(b"\x00\x00\x07\x01" + b"\x00\x00\x00\x01" + b"\x05")
    with pytest.raises(UserInputError, match="magic number"):
        read_idx(str(path))


def test_dimensions_do_not_match_size(tmp_path, rng):
    path = tmp_path / "images"
    write_idx(str(path), rng.integers(0, 255, (3, 4, 4), dtype=np.uint8))
    data = path.read_bytes()
    path.write_bytes(data[:-5])  # truncated payload
    with pytest.raises(UserInputError, match=r"does not match its header.*\(3, 4, 4\)"):
        read_idx(str(path))
    path.write_bytes(data + b"extra")
    with pytest.raises(UserInputError, match="does not match its header"):
        read_idx(str(path))


def test_header_too_short(tmp_path):
    path = tmp_path / "short"
    path.write_bytes(b"\x00\x00\x08\x03\x00\x00")
    with pytest.raises(UserInputError, match="too short"):
        read_idx(str(path))


def test_wrong_number_of_dimensions(pair):
    _, labels_path, _, _ = pair
    with pytest.raises(UserInputError, match="1 dimensions, expected 3"):
        read_idx(str(labels_path), expected_ndim=3)


def test_truncated_gzip(tmp_path, rng):
    path = tmp_path / "images.gz"
    write_idx(str(path), rng.integers(0, 255, (50, 8, 8), dtype=np.uint8))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserInputError, match="truncated gzip") as e:
        read_idx(str(path))
    assert str(path) in str(e.value)


def test_not_gzip(tmp_path):
    path = tmp_path / "images.gz"
    path.write_bytes(b"this is not gzip at all")
    with pytest.raises(UserInputError, match="not a valid gzip"):
        read_idx(str(path))


def test_label_out_of_range(tmp_path, rng):
    write_idx(str(tmp_path / "i"), rng.integers(0, 255, (4, 2, 2), dtype=np.uint8))
    write_idx(str(tmp_path / "l"), np.array([0, 3, 12, 1], np.uint8))
    with pytest.raises(UserInputError, match=r"label 12 outside \[0, 10\)"):
        read_idx_pair(str(tmp_path / "i"), str(tmp_path / "l"), 10)


def test_label_count_differs_from_image_count(tmp_path, rng):
    write_idx(str(tmp_path / "i"), rng.integers(0, 255, (4, 2, 2), dtype=np.uint8))
    write_idx(str(tmp_path / "l"), np.array([0, 1, 2], np.uint8))
    with pytest.raises(UserInputError, match="3 labels for 4 images"):
        read_idx_pair(str(tmp_path / "i"), str(tmp_path / "l"), 10)


def test_gzip_of_valid_data_equals_raw(tmp_path, rng):
    array = rng.integers(0, 255, (2, 3, 3), dtype=np.uint8)
    write_idx(str(tmp_path / "raw"), array)
    (tmp_path / "z.gz").write_bytes(gzip.compress((tmp_path / "raw").read_bytes()))
    np.testing.assert_array_equal(
        read_idx(str(tmp_path / "z.gz")), read_idx(str(tmp_path / "raw"))
    )


def _header(dims, type_code=0x08):
    return bytes([0, 0, type_code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


class _CountingReader:
    """Wraps a file object and counts the bytes it hands out."""

    def __init__(self, f):
        self.f, self.bytes_read = f, 0

    def read(self, n=-1):
        data = self.f.read(n)
        self.bytes_read += len(data)
        return data

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def test_gzip_bomb_stops_at_the_size_its_header_implies(tmp_path, monkeypatch):
    # The header says 2x4x4 = 32 bytes; the stream inflates to 8 MiB more.
    path = tmp_path / "bomb-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(_header((2, 4, 4)) + bytes(8 << 20)))
    readers = []
    original = idx._open
    monkeypatch.setattr(
        idx,
        "_open",
        lambda p: readers.append(_CountingReader(original(p))) or readers[-1],
    )
    tracemalloc.start()
    try:
        with pytest.raises(UserInputError, match="the file has more") as e:
            read_idx(str(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(path) in str(e.value)
    # Header + payload + the one byte that shows there is more.
    assert readers[0].bytes_read == 4 + 3 * 4 + 32 + 1
    assert peak < (1 << 20), peak  # the old reader held all 8 MiB


def test_header_dimensions_that_wrap_past_2_64_are_one_line_errors(tmp_path):
    # 65536^4 = 2^64 wraps to 0 in int64; with no payload the old reader matched
    # the size and then failed in reshape with a traceback.
    path = tmp_path / "wrap"
    path.write_bytes(_header((65536, 65536, 65536, 65536)))
    with pytest.raises(UserInputError, match=r"imply 18,446,744,073,709,551,616 bytes"):
        read_idx(str(path))
    path.write_bytes(_header((2**32 - 1,) * 3) + b"\x00" * 16)
    with pytest.raises(UserInputError, match="more than the 1,073,741,824-byte limit"):
        read_idx(str(path))


def test_huge_dimensions_are_refused_before_reading_the_data(tmp_path):
    path = tmp_path / "huge.gz"
    # 60,000 float64 images of 2000x2000 would be 1.9 TB.
    path.write_bytes(gzip.compress(_header((60000, 2000, 2000), 0x0E) + bytes(64)))
    with pytest.raises(UserInputError, match=r"\(60000, 2000, 2000\) imply") as e:
        read_idx(str(path))
    assert "\n" not in str(e.value)
    # Just over the limit in uint8 is refused; the limit itself is not a cap on
    # real datasets (Fashion-MNIST's train images are 47 MB).
    assert idx.MAX_IDX_BYTES >= 60000 * 28 * 28 * 10


@pytest.mark.parametrize("dims", [(0,), (0, 28, 28), (10, 0, 28), (2**16,) * 3 + (0,)])
def test_zero_dimensions_are_refused(tmp_path, dims):
    path = tmp_path / "zero"
    path.write_bytes(_header(dims))
    with pytest.raises(UserInputError, match="zero dimension"):
        read_idx(str(path))


def test_trailing_data_in_a_raw_file_is_refused(tmp_path, rng):
    path = tmp_path / "images"
    write_idx(str(path), rng.integers(0, 255, (3, 4, 4), dtype=np.uint8))
    path.write_bytes(path.read_bytes() + b"\x00")
    with pytest.raises(UserInputError, match=r"need 64 bytes, the file has more"):
        read_idx(str(path))


def test_multibyte_types_are_native_endian(tmp_path):
    path = tmp_path / "floats"
    values = np.array([[1.5, -2.0], [3.25, 1e30]], ">f4")
    path.write_bytes(_header((2, 2), 0x0D) + values.tobytes())
    got = read_idx(str(path))
    assert got.dtype == np.float32 and got.dtype.isnative
    np.testing.assert_array_equal(got, values.astype(np.float32))

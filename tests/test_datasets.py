"""load_dataset: real Fashion-MNIST, splits, TFDS (mocked), folders, errors."""

import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_convnets import load_dataset
from keras_convnets.data import datasets
from keras_convnets.data.idx import write_idx
from keras_convnets.errors import DataNotFoundError, UserInputError


def _collect(ds):
    images, labels = [], []
    for x, y in ds:
        images.append(x.numpy())
        labels.append(y.numpy())
    return np.concatenate(images), np.concatenate(labels)


def test_real_fashion_mnist_splits(fashion_mnist_dir):
    ds, info = load_dataset("fashion_mnist", "validation", batch_size=1000)
    assert info.sizes == {"train": 54000, "validation": 6000, "test": 10000}
    assert info.image_shape == (28, 28, 1) and info.num_classes == 10
    assert info.class_names[0] == "T-shirt/top" and info.class_names[9] == "Ankle boot"
    assert info.source.startswith("idx:")
    images, labels = _collect(ds)
    assert images.shape == (6000, 28, 28, 1) and images.dtype == np.float32
    assert labels.dtype == np.int64 and set(np.unique(labels)) == set(range(10))
    assert images.min() == 0.0 and images.max() == 1.0
    test_ds, _ = load_dataset("fashion_mnist", "test", batch_size=2500)
    assert sum(int(x.shape[0]) for x, _ in test_ds) == 10000


def test_name_aliases(fashion_mnist_dir):
    _, info = load_dataset("Fashion-MNIST", "test")
    assert info.name == "fashion_mnist"


def test_validation_split_is_seeded_disjoint_and_stable(small_fashion_dir):
    kw = dict(data_dir=small_fashion_dir, batch_size=4096, validation_fraction=0.25)
    val_a, _ = _collect(load_dataset("fashion_mnist", "validation", seed=1, **kw)[0])
    val_b, _ = _collect(load_dataset("fashion_mnist", "validation", seed=1, **kw)[0])
    val_c, _ = _collect(load_dataset("fashion_mnist", "validation", seed=2, **kw)[0])
    train, _ = _collect(
        load_dataset("fashion_mnist", "train", seed=1, shuffle=False, **kw)[0]
    )
    np.testing.assert_array_equal(val_a, val_b)
    assert not np.array_equal(val_a, val_c)
    assert len(val_a) == 300 and len(train) == 900
    flat = lambda a: {row.tobytes() for row in a.reshape(len(a), -1)}  # noqa: E731
    assert not flat(val_a) & flat(train)
    # The validation set does not move when training on a fraction.
    val_d, _ = _collect(
        load_dataset("fashion_mnist", "validation", seed=1, train_fraction=0.1, **kw)[0]
    )
    np.testing.assert_array_equal(val_a, val_d)


def test_train_fraction_is_a_seeded_subset(small_fashion_dir):
    ds, info = load_dataset(
        "fashion_mnist",
        "train",
        data_dir=small_fashion_dir,
        train_fraction=0.1,
        batch_size=64,
    )
    assert info.sizes["train"] == 108  # round(0.1 * (1200 - 120))
    assert sum(int(x.shape[0]) for x, _ in ds) == 108


def test_shuffle_is_seeded_and_reshuffles_each_epoch(small_fashion_dir):
    def epochs(seed):
        ds, _ = load_dataset(
            "fashion_mnist",
            "train",
            data_dir=small_fashion_dir,
            batch_size=1080,
            seed=seed,
        )
        return [y.numpy() for _, y in ds.repeat(2)]

    a, b = epochs(5), epochs(5)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], a[1])  # a new order every epoch
    assert sorted(a[0].tolist()) == sorted(a[1].tolist())


def test_pipeline_order_cache_shuffle_batch_map_prefetch(small_fashion_dir):
    ds, _ = load_dataset(
        "fashion_mnist", "train", data_dir=small_fashion_dir, batch_size=32
    )
    # Walk the dataset graph from the output back to the source.
    kinds = []
    node = ds
    while True:
        kinds.append(type(node).__name__)
        inputs = node._inputs()
        if not inputs:
            break
        node = inputs[0]
    stages = ("Cache", "Shuffle", "Batch", "ParallelMap", "Prefetch")
    order = [k.strip("_") for k in kinds if k.strip("_").startswith(stages)]
    assert order == [
        "PrefetchDataset",
        "ParallelMapDataset",
        "BatchDataset",
        "ShuffleDataset",
        "CacheDataset",
    ], kinds


def test_map_fn_runs_on_float_batches(small_fashion_dir):
    seen = {}

    def map_fn(images, labels):
        seen["dtype"] = images.dtype
        seen["rank"] = images.shape.rank
        return images * 2.0, labels

    ds, _ = load_dataset(
        "fashion_mnist",
        "test",
        data_dir=small_fashion_dir,
        batch_size=10,
        map_fn=map_fn,
    )
    x, _ = next(iter(ds))
    assert seen == {"dtype": tf.float32, "rank": 4}
    assert float(x.numpy().max()) == pytest.approx(2.0)


def test_image_size_resizes(small_fashion_dir):
    ds, info = load_dataset(
        "fashion_mnist",
        "test",
        data_dir=small_fashion_dir,
        batch_size=4,
        image_size=(32, 32),
    )
    assert info.image_shape == (32, 32, 1)
    assert next(iter(ds))[0].shape == (4, 32, 32, 1)


def test_env_var_and_subfolder_layout(tmp_path, small_fashion_dir, monkeypatch):
    target = tmp_path / "fashion-mnist"
    target.mkdir()
    for name in os.listdir(small_fashion_dir):
        (target / name).write_bytes(
            open(os.path.join(small_fashion_dir, name), "rb").read()
        )
    monkeypatch.setenv(datasets.ENV_DATA_DIR, str(tmp_path))
    datasets._get_source.cache_clear()
    _, info = load_dataset("fashion_mnist", "test")
    assert info.source == f"idx:{target}" and info.sizes["test"] == 300


def test_corrupt_file_in_data_dir_names_the_file(tmp_path, small_fashion_dir):
    for name in os.listdir(small_fashion_dir):
        (tmp_path / name).write_bytes(
            open(os.path.join(small_fashion_dir, name), "rb").read()
        )
    labels = tmp_path / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(labels.read_bytes()[:40])
    with pytest.raises(UserInputError, match="t10k-labels-idx1-ubyte.gz"):
        load_dataset("fashion_mnist", "test", data_dir=str(tmp_path))


def test_no_data_and_offline_gives_the_three_ways(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "DEBIAN_DATA_ROOT", str(tmp_path / "none"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.delenv(datasets.ENV_DATA_DIR, raising=False)
    monkeypatch.setattr(datasets, "is_online", lambda *a, **k: False)
    datasets._get_source.cache_clear()
    with pytest.raises(DataNotFoundError) as e:
        load_dataset("fashion_mnist", "train", tfds_data_dir=str(tmp_path / "tfds"))
    message = str(e.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert "--data-dir" in message and datasets.ENV_DATA_DIR in message
    assert "TensorFlow Datasets" in message


def test_unknown_dataset_and_split():
    with pytest.raises(UserInputError, match="Unknown dataset 'no_such_dataset'"):
        load_dataset("no_such_dataset", "train")
    with pytest.raises(UserInputError, match="split must be one of"):
        load_dataset("fashion_mnist", "dev")
    with pytest.raises(UserInputError, match="Dataset folder not found"):
        load_dataset("./missing/folder", "train")


def test_tfds_path_with_mock_data(monkeypatch):
    # mock_data replaces TFDS's download and reading; tell the loader we are online.
    monkeypatch.setattr(datasets, "is_online", lambda *a, **k: True)
    datasets._get_source.cache_clear()
    with tfds.testing.mock_data(num_examples=40):
        train, info = load_dataset(
            "cifar10", "train", batch_size=8, validation_fraction=0.25
        )
        val, _ = load_dataset(
            "cifar10", "validation", batch_size=8, validation_fraction=0.25
        )
        test, _ = load_dataset("cifar10", "test", batch_size=8)
        x, y = next(iter(train))
        assert info.source.startswith("tfds:cifar10")
        assert info.image_shape == (32, 32, 3) and info.num_classes == 10
        assert len(info.class_names) == 10  # mock metadata has no label names
        assert info.sizes == {"train": 30, "validation": 10, "test": 40}
        assert (
            x.dtype == tf.float32 and x.shape == (8, 32, 32, 3) and y.dtype == tf.int64
        )
        assert 0.0 <= float(tf.reduce_min(x)) and float(tf.reduce_max(x)) <= 1.0
        assert sum(int(x.shape[0]) for x, _ in train) == 30
        assert sum(int(x.shape[0]) for x, _ in val) == 10
    datasets._get_source.cache_clear()


def _write_png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tf.io.encode_png(array).numpy())


def test_image_folder(tmp_path, rng):
    for cls in ("cat", "dog", "eel"):
        for i in range(10):
            _write_png(
                tmp_path / cls / f"{i}.png",
                rng.integers(0, 255, (12, 10, 3), dtype=np.uint8),
            )
    ds, info = load_dataset(
        str(tmp_path), "train", batch_size=64, validation_fraction=0.2
    )
    assert info.class_names == ("cat", "dog", "eel")
    assert info.image_shape == (12, 10, 3)
    # 30 images: 3 held out as test, 27 left, of which round(5.4) = 5 validation.
    assert info.sizes == {"train": 22, "validation": 5, "test": 3}
    images, labels = _collect(ds)
    assert images.shape == (22, 12, 10, 3) and images.dtype == np.float32
    assert set(labels) <= {0, 1, 2}
    _, test_labels = _collect(load_dataset(str(tmp_path), "test", batch_size=64)[0])
    assert len(test_labels) == 3


def test_image_folder_with_train_and_test(tmp_path, rng):
    for split, n in (("train", 6), ("test", 2)):
        for cls in ("a", "b"):
            for i in range(n):
                _write_png(
                    tmp_path / split / cls / f"{i}.png",
                    rng.integers(0, 255, (8, 8, 1), dtype=np.uint8),
                )
    _, info = load_dataset(
        str(tmp_path), "test", image_size=(16, 16), validation_fraction=0.25
    )
    assert info.sizes == {"train": 9, "validation": 3, "test": 4}
    assert info.image_shape == (16, 16, 1)


def test_image_folder_without_classes(tmp_path):
    (tmp_path / "x.png").write_bytes(b"")
    with pytest.raises(UserInputError, match="one sub-folder of images per class"):
        load_dataset(str(tmp_path), "train")


def test_split_indices_validation():
    parts = datasets.split_indices(100, 0.1, 0.5, seed=0)
    assert len(parts["validation"]) == 10 and len(parts["train"]) == 45
    with pytest.raises(UserInputError, match="validation_fraction"):
        datasets.split_indices(10, 1.0, 1.0, 0)
    with pytest.raises(UserInputError, match="train_fraction"):
        datasets.split_indices(10, 0.1, 0.0, 0)


def test_write_idx_helper_matches_reader(tmp_path):
    write_idx(str(tmp_path / "x"), np.zeros((2, 2), np.uint8))
    assert (tmp_path / "x").read_bytes()[:4] == b"\x00\x00\x08\x02"


def _folder(tmp_path, rng, n=6, size=(8, 8)):
    for cls in ("a", "b"):
        for i in range(n):
            _write_png(
                tmp_path / cls / f"{i}.png",
                rng.integers(0, 255, (*size, 3), dtype=np.uint8),
            )


def test_image_folder_with_a_corrupt_jpeg_names_it(tmp_path, rng):
    _folder(tmp_path, rng)
    good = tf.io.encode_jpeg(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).numpy()
    (tmp_path / "a" / "broken.jpg").write_bytes(good[: len(good) // 2])
    datasets._get_source.cache_clear()
    with pytest.raises(
        UserInputError, match=r"1 unreadable image file\(s\).*broken\.jpg"
    ):
        load_dataset(str(tmp_path), "train")


def test_image_folder_reports_skipped_non_images(tmp_path, rng):
    _folder(tmp_path, rng)
    (tmp_path / "b" / "README.txt").write_text("notes")
    datasets._get_source.cache_clear()
    _, info = load_dataset(str(tmp_path), "train")
    assert info.notes == (
        f"skipped 1 non-image file(s) in {tmp_path} (first: {tmp_path / 'b' / 'README.txt'})",
    )


def test_image_folder_with_mixed_sizes_needs_image_size(tmp_path, rng):
    _folder(tmp_path, rng)
    _write_png(
        tmp_path / "b" / "big.png", rng.integers(0, 255, (16, 12, 3), dtype=np.uint8)
    )
    datasets._get_source.cache_clear()
    with pytest.raises(UserInputError, match=r"differ in size.*--image-size"):
        load_dataset(str(tmp_path), "train")
    _, info = load_dataset(str(tmp_path), "train", image_size=(10, 10))
    assert info.image_shape == (10, 10, 3)


# -- issue 16: hostile folders, formats TensorFlow cannot decode, image sizes --


def _labelled_folder(root, rng, classes=("a", "b"), n=5):
    """Class folders of distinct random 6x6 RGB PNGs; returns {image bytes: class}."""
    truth = {}
    for index, cls in enumerate(classes):
        for i in range(n):
            array = rng.integers(0, 255, (6, 6, 3), dtype=np.uint8)
            _write_png(root / cls / f"{i}.png", array)
            truth[array.tobytes()] = index
    return truth


def _images_by_split(root, **kw):
    out = {}
    for split in ("train", "validation", "test"):
        images, labels = _collect(
            load_dataset(str(root), split, batch_size=64, shuffle=False, **kw)[0]
        )
        as_bytes = np.round(images * 255).astype(np.uint8)
        out[split] = [(x.tobytes(), int(y)) for x, y in zip(as_bytes, labels)]
    return out


def test_folder_symlink_loop_and_duplicate_file(tmp_path, rng):
    root = tmp_path / "data"
    truth = _labelled_folder(root, rng)
    os.symlink(root, root / "a" / "loop")  # a/loop/a/loop/... and a/loop/b/...
    (root / "b" / "sub").mkdir()
    os.symlink(root / "b", root / "b" / "sub" / "up")  # back to its own class
    os.symlink(root / "b" / "0.png", root / "b" / "sub" / "copy.png")
    datasets._get_source.cache_clear()
    splits = _images_by_split(root, validation_fraction=0.2)
    _, info = load_dataset(str(root), "train")
    assert sum(info.sizes.values()) == len(truth) == 10  # each image once
    seen = [image for examples in splits.values() for image, _ in examples]
    assert sorted(seen) == sorted(truth)  # nothing duplicated, nothing lost
    for examples in splits.values():
        for image, label in examples:
            assert label == truth[image]  # never under the wrong class
    assert any("skipped 1 duplicate file(s)" in n for n in info.notes), info.notes
    assert any("did not follow 2 folder link(s)" in n for n in info.notes), info.notes
    # The splits the model sees are disjoint, by content and by resolved path.
    source = datasets._get_source(str(root), None, None, None)
    train = {os.path.realpath(p) for p in source.files["train"][0]}
    assert not train & {os.path.realpath(p) for p in source.files["test"][0]}


def test_file_linked_from_train_into_test_stays_in_test_only(tmp_path, rng):
    root = tmp_path / "data"
    _labelled_folder(root / "train", rng)
    _labelled_folder(root / "test", rng, n=2)
    os.symlink(root / "test" / "a" / "0.png", root / "train" / "a" / "leak.png")
    os.symlink(root / "test" / "b", root / "train" / "b" / "all_of_test_b")
    datasets._get_source.cache_clear()
    splits = _images_by_split(root, validation_fraction=0.2)
    test = {image for image, _ in splits["test"]}
    assert len(test) == 4
    assert not test & {image for image, _ in splits["train"] + splits["validation"]}
    _, info = load_dataset(str(root), "test")
    assert info.sizes["train"] + info.sizes["validation"] == 10
    assert any("skipped 1 duplicate" in n for n in info.notes), info.notes


def test_one_file_under_two_classes_is_an_error(tmp_path, rng):
    root = tmp_path / "data"
    _labelled_folder(root, rng)
    os.symlink(root / "a" / "3.png", root / "b" / "also_a.png")
    datasets._get_source.cache_clear()
    with pytest.raises(UserInputError, match="only one class") as e:
        load_dataset(str(root), "train")
    assert "\n" not in str(e.value)


def _save(path, image, fmt):
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format=fmt)


def test_grayscale_and_palette_bmp_decode_as_pillow_checks(tmp_path, rng):
    # TensorFlow's decode_image fails on a grayscale BMP asked for 1 channel,
    # and returns palette indices for a colour-palette BMP.
    from PIL import Image

    gray = {}
    for cls, fmt in (("a", "BMP"), ("b", "PNG")):
        for i in range(4):
            array = rng.integers(0, 255, (5, 7), dtype=np.uint8)
            path = tmp_path / "gray" / cls / f"{i}.{fmt.lower()}"
            _save(path, Image.fromarray(array), fmt)
            gray[array.tobytes()] = cls
    datasets._get_source.cache_clear()
    splits = _images_by_split(tmp_path / "gray", validation_fraction=0.25)
    _, info = load_dataset(str(tmp_path / "gray"), "train")
    assert info.image_shape == (5, 7, 1)
    got = {image for examples in splits.values() for image, _ in examples}
    assert got == set(gray)  # exact pixel values, every file

    colours = rng.integers(0, 255, (4, 3), dtype=np.uint8)
    for cls, fmt in (("a", "BMP"), ("b", "GIF")):
        for i in range(3):
            index = rng.integers(0, 4, (6, 6), dtype=np.uint8)
            image = Image.fromarray(index, mode="P")
            image.putpalette(colours.ravel().tolist())
            _save(tmp_path / "pal" / cls / f"{i}.{fmt.lower()}", image, fmt)
    datasets._get_source.cache_clear()
    _, info = load_dataset(str(tmp_path / "pal"), "train")
    images, _ = _collect(load_dataset(str(tmp_path / "pal"), "test", batch_size=8)[0])
    assert info.image_shape == (6, 6, 3)
    pixels = {tuple(p) for p in np.round(images * 255).astype(np.uint8).reshape(-1, 3)}
    assert pixels <= {tuple(c) for c in colours}  # colours, not palette indices


def test_other_formats_named_png_are_skipped_and_counted(tmp_path, rng):
    from PIL import Image

    _folder(tmp_path, rng)
    picture = Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8))
    _save(tmp_path / "a" / "ppm.png", picture, "PPM")
    _save(tmp_path / "b" / "tiff.png", picture, "TIFF")
    (tmp_path / "b" / "empty.jpg").write_bytes(b"")
    os.mkfifo(tmp_path / "b" / "fifo.png")  # never opened: it would block
    datasets._get_source.cache_clear()
    ds, info = load_dataset(str(tmp_path), "train", batch_size=64)
    assert info.notes == (
        f"skipped 4 non-image file(s) in {tmp_path} (first: {tmp_path / 'b' / 'fifo.png'})",
    )
    assert sum(info.sizes.values()) == 12
    assert sum(int(x.shape[0]) for x, _ in ds) == info.sizes["train"]


@pytest.mark.parametrize("mode", datasets._GRAY_MODES + datasets._COLOR_MODES)
def test_every_allowed_mode_converts_to_one_and_three_channels(mode):
    from PIL import Image

    image = Image.new(mode, (4, 5))
    for channels in (1, 3):
        array = datasets._to_array(image, channels)
        assert array.shape == (5, 4, channels) and array.dtype == np.uint8
    assert datasets._to_array(image).shape[-1] == (
        1 if mode in datasets._GRAY_MODES else 3
    )


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path):
    from PIL import Image

    values = np.array([[0, 257, 65535], [32768, 1000, 65280]], np.uint16)
    Image.fromarray(values).save(tmp_path / "x.png")
    array = datasets._read_image(str(tmp_path / "x.png"), 1)
    np.testing.assert_array_equal(array[..., 0], [[0, 1, 255], [128, 4, 254]])


def test_image_size_resizes_per_batch_keeping_the_source_small(small_fashion_dir):
    ds, info = load_dataset(
        "fashion_mnist",
        "test",
        data_dir=small_fashion_dir,
        batch_size=4,
        image_size=(224, 224),
        shuffle=False,
    )
    assert info.image_shape == (224, 224, 1)
    # What is held in memory (the arrays and the cached source) is 28x28.
    source = datasets._get_source("fashion_mnist", small_fashion_dir, None, (224, 224))
    assert source.examples("test")[0].images.shape == (300, 28, 28, 1)
    node = ds
    while node._inputs():
        node = node._inputs()[0]
    assert tuple(node.element_spec[0].shape) == (28, 28, 1)
    x, _ = next(iter(ds))
    assert x.shape == (4, 224, 224, 1)
    # The same values as resizing the uint8 images up front did.
    original = source.examples("test")[0].images[:4]
    expected = tf.round(tf.image.resize(original, (224, 224), antialias=True)) / 255.0
    np.testing.assert_allclose(x.numpy(), expected.numpy(), atol=1e-6)


@pytest.mark.parametrize(
    "image_size", [(1000, 1000), (513, 28), (0, 28), (28, 28, 1), ("28", 28), (True, 2)]
)
def test_image_size_out_of_bounds_is_a_one_line_error(small_fashion_dir, image_size):
    with pytest.raises(UserInputError, match="from 1 to 512") as e:
        load_dataset(
            "fashion_mnist", "test", data_dir=small_fashion_dir, image_size=image_size
        )
    assert "\n" not in str(e.value)


def test_folder_of_images_larger_than_the_bound_needs_image_size(tmp_path, rng):
    _folder(tmp_path, rng, n=2, size=(600, 4))
    datasets._get_source.cache_clear()
    with pytest.raises(UserInputError, match="600x4, larger than 512.*--image-size"):
        load_dataset(str(tmp_path), "train")
    _, info = load_dataset(str(tmp_path), "train", image_size=(60, 4))
    assert info.image_shape == (60, 4, 3)


def test_missing_data_dir_is_an_error(tmp_path):
    with pytest.raises(UserInputError, match=r"^data dir /no/such/dir does not exist"):
        load_dataset("fashion_mnist", "test", data_dir="/no/such/dir")
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserInputError, match="is not a folder"):
        load_dataset("fashion_mnist", "test", data_dir=str(tmp_path / "file"))


@pytest.mark.parametrize(
    "content",
    [
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,
        b"\xff\xd8\xff\xe0" + b"\x00" * 8,
        b"GIF89a!",
    ],
)
def test_broken_file_with_an_image_signature_is_an_error_not_skipped(
    tmp_path, rng, content
):
    _folder(tmp_path, rng)
    (tmp_path / "a" / "broken.png").write_bytes(content)
    datasets._get_source.cache_clear()
    with pytest.raises(UserInputError, match=r"1 unreadable image file.*broken\.png"):
        load_dataset(str(tmp_path), "train")

"""Tests for keras_convnets.data.augment (batched, seeded, XLA-compilable ops)
and the `Augment` layer (keras_convnets.layers)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_convnets.data import augment
from keras_convnets.errors import UserInputError
from keras_convnets.layers import Augment

POLICIES = augment.list_policies()
MIXING = [name for name in POLICIES if augment.get_policy(name).mixes_labels]


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


def _images(batch=4, size=28, channels=1, seed=0):
    rng = np.random.default_rng(seed)
    return tf.constant(rng.uniform(size=(batch, size, size, channels)), tf.float32)


def _one_hot(batch, classes=10):
    return tf.one_hot(tf.range(batch) % classes, classes)


def _run(policy, images, labels, seed, jit_compile):
    spec = augment.get_policy(policy)

    @tf.function(jit_compile=jit_compile)
    def apply(images, labels, seed):
        return augment.augment_batch(
            images, labels if spec.mixes_labels else None, policy, seed
        )

    return apply(images, labels, augment.make_seed(seed))


# Every op, as f(images, seed), for the XLA / shape / determinism tests.
OPS = {
    "translate": lambda x, s: augment.translate(x, s, 4),
    "translate_reflect": lambda x, s: augment.translate(x, s, 0.2, "reflect"),
    "flip": lambda x, s: augment.flip(x, s, vertical=True),
    "rotate": lambda x, s: augment.rotate(x, s, 20),
    "rotate_nearest": lambda x, s: augment.rotate(x, s, 20, "nearest"),
    "shear": lambda x, s: augment.shear(x, s),
    "brightness": lambda x, s: augment.brightness(x, s),
    "contrast": lambda x, s: augment.contrast(x, s),
    "solarize": lambda x, s: augment.solarize(x, 0.6),
    "posterize": lambda x, s: augment.posterize(x, 3),
    "autocontrast": lambda x, s: augment.autocontrast(x),
    "equalize": lambda x, s: augment.equalize(x),
    "cutout": lambda x, s: augment.cutout(x, s, 8),
    "random_erasing": lambda x, s: augment.random_erasing(x, s, rate=1.0),
    "rand_augment": lambda x, s: augment.rand_augment(x, s, num_ops=2),
}


def test_list_policies_has_the_required_names():
    for name in ["none", "flip-translate", "randaugment", "cutout", "mixup", "cutmix"]:
        assert name in POLICIES
    assert POLICIES[0] == "none"


@pytest.mark.parametrize(
    "name",
    # RandAugment is every op above in one graph (14 s to compile on 2 cores);
    # its policy compiles in `make test` (test_policy_compiles_with_xla).
    [
        pytest.param(n, marks=pytest.mark.slow) if n == "rand_augment" else n
        for n in sorted(OPS)
    ],
)
def test_op_compiles_with_xla_and_is_seeded_per_image(name):
    # Sixteen copies of one image: any difference between outputs is a draw.
    images = tf.repeat(_images(batch=1, size=32, channels=3), 16, axis=0)
    xla = tf.function(OPS[name], jit_compile=True)
    out = xla(images, augment.make_seed(1))
    assert out.shape == images.shape and out.dtype == tf.float32
    assert 0.0 <= float(tf.reduce_min(out)) and float(tf.reduce_max(out)) <= 1.0
    # Same seed: the same batch, in either placement (graph mode or XLA).
    np.testing.assert_array_equal(out, xla(images, augment.make_seed(1)))
    graph = tf.function(OPS[name], jit_compile=False)
    np.testing.assert_allclose(out, graph(images, augment.make_seed(1)), atol=1e-5)
    if name in ("solarize", "posterize", "autocontrast", "equalize"):
        return  # deterministic image ops
    assert not np.array_equal(out, xla(images, augment.make_seed(2)))
    distinct = {row.tobytes() for row in out.numpy()}
    assert len(distinct) > 1, "identical images got identical draws"


# Grey 28x28 (the default dataset) in `make test`; RGB 32x32 in `make test-slow`
# (every op is compiled on RGB images above, so the RGB policies only add
# another XLA compilation of the same ops: about 3 s each).
@pytest.mark.parametrize("channels", [1, pytest.param(3, marks=pytest.mark.slow)])
@pytest.mark.parametrize("policy", POLICIES)
def test_policy_compiles_with_xla(policy, channels):
    images = _images(batch=6, size=28 if channels == 1 else 32, channels=channels)
    labels = _one_hot(6)
    out_images, out_labels = _run(policy, images, labels, 3, jit_compile=True)
    assert out_images.shape == images.shape and out_images.dtype == tf.float32
    assert 0.0 <= float(tf.reduce_min(out_images))
    assert float(tf.reduce_max(out_images)) <= 1.0
    if policy in MIXING:
        np.testing.assert_allclose(tf.reduce_sum(out_labels, axis=1), 1.0, atol=1e-5)
    graph_images, _ = _run(policy, images, labels, 3, jit_compile=False)
    np.testing.assert_allclose(out_images, graph_images, atol=1e-5)


@pytest.mark.parametrize("padding", ["zero", "reflect"])
def test_translation_moves_content_by_exactly_the_offset(padding):
    size, max_offset = 16, 5
    batch = 32
    base = np.arange(size * size, dtype=np.float32).reshape(size, size) + 1.0
    base /= base.max()
    images = tf.constant(np.tile(base[None, :, :, None], [batch, 1, 1, 1]))
    out = augment.translate(images, 11, max_offset, padding).numpy()[..., 0]
    padded = np.pad(base, max_offset, mode="constant" if padding == "zero" else padding)
    seen = set()
    for image in out:
        # Find the (unique) offset whose shifted original matches exactly.
        matches = [
            (dy, dx)
            for dy in range(-max_offset, max_offset + 1)
            for dx in range(-max_offset, max_offset + 1)
            if np.array_equal(
                image,
                padded[
                    max_offset - dy : max_offset - dy + size,
                    max_offset - dx : max_offset - dx + size,
                ],
            )
        ]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) > batch // 2  # per-image offsets, spread over the range


def test_shift_matches_numpy():
    images = _images(batch=3, size=10, channels=2)
    dy, dx = tf.constant([2, -3, 0]), tf.constant([-1, 0, 4])
    out = augment.shift(images, dy, dx).numpy()
    for b in range(3):
        expected = np.zeros_like(images[b])
        src = images[b].numpy()
        for y in range(10):
            for x in range(10):
                sy, sx = y - int(dy[b]), x - int(dx[b])
                if 0 <= sy < 10 and 0 <= sx < 10:
                    expected[y, x] = src[sy, sx]
        np.testing.assert_array_equal(out[b], expected)


def test_canvas_place_keeps_the_image_whole():
    images = _images(batch=8, size=28, channels=1)
    centred = augment.canvas_place(images, 40).numpy()
    np.testing.assert_array_equal(centred[:, 6:34, 6:34], images.numpy())
    placed = tf.function(
        lambda x, s: augment.canvas_place(x, (40, 40), s), jit_compile=True
    )(images, augment.make_seed(5)).numpy()
    assert placed.shape == (8, 40, 40, 1)
    positions = set()
    for b in range(8):
        ys, xs = np.nonzero(placed[b, ..., 0])
        y0, x0 = ys.min(), xs.min()
        np.testing.assert_array_equal(placed[b, y0 : y0 + 28, x0 : x0 + 28], images[b])
        assert placed[b].sum() == pytest.approx(float(tf.reduce_sum(images[b])), 1e-5)
        positions.add((y0, x0))
    assert len(positions) > 1
    with pytest.raises(ValueError, match="canvas_size"):
        augment.canvas_place(images, 20)


def _constant_images(batch, size=16):
    values = (np.arange(batch, dtype=np.float32) + 1.0) / (batch + 1.0)
    return tf.constant(np.tile(values[:, None, None, None], [1, size, size, 3])), values


def test_mixup_labels_sum_to_one_and_match_the_blend():
    batch = 10
    images, values = _constant_images(batch)
    labels = tf.eye(batch)
    mixed, mixed_labels = augment.mixup(images, labels, 3, alpha=0.4)
    mixed_labels = mixed_labels.numpy()
    np.testing.assert_allclose(mixed_labels.sum(axis=1), 1.0, atol=1e-6)
    # Image b is sum_j w_bj * image_j, with w its label row.
    np.testing.assert_allclose(
        mixed.numpy()[:, 0, 0, 0], mixed_labels @ values, atol=1e-5
    )
    assert 0.0 < mixed_labels.max(axis=1).min() and (mixed_labels < 1.0).any()


def test_cutmix_labels_match_the_pasted_area():
    batch, size = 12, 16
    images, values = _constant_images(batch, size)
    labels = tf.eye(batch)
    mixed, mixed_labels = tf.function(augment.cutmix, jit_compile=True)(
        images, labels, augment.make_seed(4)
    )
    mixed, mixed_labels = mixed.numpy(), mixed_labels.numpy()
    np.testing.assert_allclose(mixed_labels.sum(axis=1), 1.0, atol=1e-6)
    for b in range(batch):
        pixels = mixed[b, :, :, 0]
        for j in range(batch):
            area = np.mean(np.isclose(pixels, values[j]))
            assert mixed_labels[b, j] == pytest.approx(area, abs=1e-6)
    assert (mixed_labels.max(axis=1) < 1.0).any()


def test_mixing_needs_float_labels():
    images = _images()
    with pytest.raises(UserInputError, match="one-hot"):
        augment.mixup(images, tf.constant([0, 1, 2, 3]), 0)


def test_unknown_policy_and_parameter_raise():
    with pytest.raises(UserInputError, match="Received: policy='rotate-all'") as info:
        augment.get_policy("rotate-all")
    assert "flip-translate" in str(info.value) and isinstance(info.value, ValueError)
    dataset = tf.data.Dataset.from_tensors((_images(), _one_hot(4)))
    with pytest.raises(UserInputError, match="policy="):
        augment.augment_dataset(dataset, "nope", seed=0)
    with pytest.raises(UserInputError, match="magnitude"):
        augment.augment_dataset(dataset, "cutout", seed=0, magnitude=3)
    with pytest.raises(UserInputError, match="mixes labels"):
        augment.augment_dataset(
            tf.data.Dataset.from_tensors((_images(), tf.range(4))), "mixup", seed=0
        )


def _dataset(batches=3, batch=4):
    images = tf.concat([_images(batch, seed=i) for i in range(batches)], axis=0)
    labels = _one_hot(batches * batch)
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch)


def _collect(ds):
    return [(x.numpy(), y.numpy()) for x, y in ds]


@pytest.mark.parametrize(
    "policy", ["erasing", pytest.param("cutmix", marks=pytest.mark.slow)]
)
def test_augment_dataset_seeds_per_batch_and_per_epoch(policy):
    ds = _dataset()
    augmented = augment.augment_dataset(ds, policy, seed=3)
    assert augmented.element_spec == ds.element_spec
    assert int(augmented.cardinality()) == 3
    epoch0, epoch1 = _collect(augmented), _collect(augmented)
    # Same seed, new pipeline: the same batches, epoch by epoch.
    again = augment.augment_dataset(ds, policy, seed=3)
    for (x0, y0), (x1, y1) in zip(epoch0, _collect(again), strict=True):
        np.testing.assert_array_equal(x0, x1)
        np.testing.assert_array_equal(y0, y1)
    # A new epoch draws anew; so does each batch.
    assert not np.array_equal(epoch0[0][0], epoch1[0][0])
    for x, y in epoch0:
        assert x.shape == (4, 28, 28, 1) and 0.0 <= x.min() and x.max() <= 1.0
        np.testing.assert_allclose(y.sum(axis=1), 1.0, atol=1e-5)
    # An explicit epoch: the same draws on every iteration.
    fixed = augment.augment_dataset(ds, policy, seed=3, epoch=2)
    first, second = _collect(fixed), _collect(fixed)
    for (x0, _), (x1, _) in zip(first, second, strict=True):
        np.testing.assert_array_equal(x0, x1)
    other = _collect(augment.augment_dataset(ds, policy, seed=3, epoch=5))
    assert not np.array_equal(first[0][0], other[0][0])


def test_augment_dataset_passes_images_only_and_extra_elements():
    images = _images(8)
    only = tf.data.Dataset.from_tensor_slices(images).batch(4)
    out = list(augment.augment_dataset(only, "flip-translate", seed=0))
    assert out[0].shape == (4, 28, 28, 1)
    weighted = tf.data.Dataset.from_tensor_slices(
        (images, _one_hot(8), tf.ones(8))
    ).batch(4)
    x, y, w = next(iter(augment.augment_dataset(weighted, "cutout", seed=0)))
    np.testing.assert_array_equal(y, _one_hot(4))
    np.testing.assert_array_equal(w, tf.ones(4))
    assert augment.augment_dataset(only, "none", seed=0) is only


def test_augment_layer_is_identity_at_inference_and_augments_in_training():
    layer = Augment("randaugment", seed=1, magnitude=0.7)
    images = _images(batch=8, size=32, channels=3)
    np.testing.assert_array_equal(layer(images, training=False), images)
    trained = layer(images, training=True)
    assert trained.shape == images.shape
    assert not np.array_equal(trained, images)
    assert not np.array_equal(layer(images, training=True), trained)  # new step
    config = layer.get_config()
    assert config["params"] == {"magnitude": 0.7}
    clone = Augment.from_config(config)
    assert clone.policy == "randaugment" and clone.params == {"magnitude": 0.7}


@pytest.mark.parametrize("policy", MIXING)
def test_augment_layer_refuses_label_mixing_policies(policy):
    with pytest.raises(UserInputError, match="augment_dataset"):
        Augment(policy, seed=0)


def test_augment_layer_trains_under_fit_with_xla_and_saves(tmp_path):
    inputs = keras.Input((28, 28, 1))
    x = Augment("randaugment", seed=0, name="augment")(inputs)
    x = keras.layers.Conv2D(4, 3, strides=2)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile("adam", "categorical_crossentropy", jit_compile=True)
    ds = augment.augment_dataset(_dataset(batches=2), "mixup", seed=0)
    history = model.fit(ds, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    images = _images(4)
    expected = model.predict(images, verbose=0)  # inference: no augmentation
    np.testing.assert_allclose(
        expected, model(images, training=False), rtol=1e-5, atol=1e-6
    )
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.get_layer("augment"), Augment)
    np.testing.assert_allclose(loaded.predict(images, verbose=0), expected, atol=1e-6)


def test_rand_augment_balances_operations_and_validates_magnitude():
    with pytest.raises(ValueError, match="magnitude"):
        augment.rand_augment(_images(), 0, magnitude=3)
    # One round on 14 copies: every slot gets a different operation, so
    # (almost all) outputs differ.
    images = tf.repeat(_images(batch=1, size=32, channels=3), 14, axis=0)
    out = augment.rand_augment(images, 0, num_ops=1, magnitude=0.9).numpy()
    assert len({row.tobytes() for row in out}) >= 12


def test_public_names_keep_their_import_paths():
    import keras_convnets.data
    import keras_convnets.layers

    for name in augment.__all__:
        assert getattr(augment, name) is not None, name
    from keras_convnets.data.augment import Augment as alias

    assert alias is Augment is keras_convnets.layers.Augment
    assert keras_convnets.data.Augment is Augment
    with pytest.raises(AttributeError, match="no_such_op"):
        augment.no_such_op  # noqa: B018


def test_augment_modules_import_no_private_names_and_data_not_layers():
    import ast
    from pathlib import Path

    import keras_convnets

    root = Path(keras_convnets.__file__).parent
    files = [*sorted((root / "data").rglob("*.py")), root / "layers" / "augment.py"]
    assert len(files) > 8
    for path in files:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "keras_convnets"
            ):
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{path.name} imports {private}"
        if "data" in path.parts:  # data/ sits below layers/: no top-level import
            for node in tree.body:
                if isinstance(node, ast.ImportFrom | ast.Import):
                    names = [getattr(node, "module", None) or ""]
                    names += [a.name for a in node.names]
                    assert not any("keras_convnets.layers" in n for n in names)

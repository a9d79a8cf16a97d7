"""Tests of the custom layers: shapes, weight counts, equivalences, serialization."""

import keras
import numpy as np
import pytest

from keras_convnets.errors import UserInputError
from keras_convnets.layers import (
    L2Pooling2D,
    LocallyConnected2D,
    LPPooling2D,
    MedianPooling2D,
    OuterProductConv2D,
)


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


def _images(shape=(2, 9, 11, 3)):
    return np.random.default_rng(0).normal(size=shape).astype("float32")


def _window_reference(x, pool, stride, padding, reduce):
    """Applies `reduce` over every window, numpy only; "same" ignores padding."""
    batch, height, width, channels = x.shape
    (ph, pw), (sh, sw) = pool, stride
    if padding == "same":
        out_h, out_w = -(-height // sh), -(-width // sw)
        pad_h = max((out_h - 1) * sh + ph - height, 0)
        pad_w = max((out_w - 1) * sw + pw - width, 0)
        top, left = pad_h // 2, pad_w // 2
    else:
        out_h, out_w = (height - ph) // sh + 1, (width - pw) // sw + 1
        top = left = 0
    out = np.zeros((batch, out_h, out_w, channels), dtype="float64")
    for i in range(out_h):
        for j in range(out_w):
            r0, c0 = i * sh - top, j * sw - left
            rows = slice(max(r0, 0), min(r0 + ph, height))
            cols = slice(max(c0, 0), min(c0 + pw, width))
            window = x[:, rows, cols, :].reshape(batch, -1, channels)
            out[:, i, j, :] = reduce(window)
    return out


def _roundtrip(layer, x, tmp_path):
    """Saves a one-layer model as .keras and reloads it without custom_objects."""
    inputs = keras.Input(x.shape[1:])
    model = keras.Model(inputs, layer(inputs))
    path = tmp_path / "layer.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(
        np.asarray(model(x)), np.asarray(loaded(x)), rtol=1e-6, atol=1e-6
    )
    return loaded


def _one_train_step(layer, x):
    """One SGD step on a sum-of-squares loss; returns the gradients."""
    import tensorflow as tf

    layer(x)
    with tf.GradientTape() as tape:
        loss = keras.ops.sum(keras.ops.square(layer(x)))
    grads = tape.gradient(loss, layer.trainable_variables)
    before = [np.asarray(v) for v in layer.trainable_variables]
    keras.optimizers.SGD(1e-3).apply(grads, layer.trainable_variables)
    for old, new in zip(before, layer.trainable_variables):
        assert not np.allclose(old, np.asarray(new))
    return grads


def _config_roundtrip(layer):
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


# OuterProductConv2D


@pytest.mark.parametrize(
    "kernel, strides, padding",
    [
        (3, 1, "valid"),
        (3, 2, "same"),
        ((5, 3), 1, "same"),
        (1, 1, "valid"),
        (4, 3, "valid"),
    ],
)
def test_outer_product_equals_conv2d_with_explicit_kernel(kernel, strides, padding):
    x = _images()
    layer = OuterProductConv2D(
        6, kernel, strides=strides, padding=padding, bias_initializer="random_normal"
    )
    y = np.asarray(layer(x))
    conv = keras.layers.Conv2D(6, kernel, strides=strides, padding=padding)
    conv.build(x.shape)
    conv.set_weights([np.asarray(layer.full_kernel()), np.asarray(layer.bias)])
    np.testing.assert_allclose(y, np.asarray(conv(x)), rtol=1e-4, atol=1e-5)
    assert y.shape == conv.compute_output_shape(x.shape)
    assert layer.compute_output_shape(x.shape) == y.shape


def test_outer_product_kernel_is_rank_one_per_filter():
    layer = OuterProductConv2D(4, 3)
    layer(_images())
    kernel = np.asarray(layer.full_kernel())
    for k in range(4):
        matrix = kernel[..., k].reshape(9, 3)  # space x depth
        assert np.linalg.matrix_rank(matrix, tol=1e-6) == 1


def test_outer_product_weight_count():
    # Lecture part 6: a 5x5x100 filter becomes 5*5 + 100 weights.
    layer = OuterProductConv2D(7, 5)
    layer.build((None, 12, 12, 100))
    assert layer.count_params() == 7 * (5 * 5 + 100) + 7
    no_bias = OuterProductConv2D(7, 5, use_bias=False)
    no_bias.build((None, 12, 12, 100))
    assert no_bias.count_params() == 7 * (5 * 5 + 100)


def test_outer_product_config_training_and_saving(tmp_path):
    layer = OuterProductConv2D(4, 3, strides=2, padding="same", activation="relu")
    x = _images()
    _config_roundtrip(layer)
    grads = _one_train_step(layer, x)
    assert all(np.any(np.asarray(g) != 0) for g in grads)
    loaded = _roundtrip(OuterProductConv2D(4, 3, padding="same"), x, tmp_path)
    assert isinstance(loaded.layers[-1], OuterProductConv2D)


def test_outer_product_bad_arguments():
    with pytest.raises(UserInputError, match="padding='full'"):
        OuterProductConv2D(4, 3, padding="full")
    with pytest.raises(UserInputError, match="filters=0"):
        OuterProductConv2D(0, 3)


# LocallyConnected2D


@pytest.mark.parametrize(
    "kernel, strides, padding",
    [(3, 1, "valid"), (3, 2, "valid"), ((2, 3), 1, "same"), (3, 2, "same")],
)
def test_locally_connected_equals_conv2d_with_shared_weights(kernel, strides, padding):
    x = _images()
    conv = keras.layers.Conv2D(
        5, kernel, strides=strides, padding=padding, bias_initializer="random_normal"
    )
    expected = np.asarray(conv(x))
    layer = LocallyConnected2D(5, kernel, strides=strides, padding=padding)
    layer.build(x.shape)
    kernel_weights, bias = conv.get_weights()
    positions = expected.shape[1] * expected.shape[2]
    shared_kernel = np.tile(kernel_weights.reshape(1, -1, 5), (positions, 1, 1))
    shared_bias = np.broadcast_to(bias, expected.shape[1:]).copy()
    layer.set_weights([shared_kernel, shared_bias])
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=1e-4, atol=1e-5)


def test_locally_connected_weight_count_and_unshared_weights():
    layer = LocallyConnected2D(16, 3)
    x = _images((2, 8, 8, 4))
    y = layer(x)
    assert y.shape == (2, 6, 6, 16)
    assert layer.count_params() == 36 * (3 * 3 * 4 * 16 + 16)
    # Without sharing, a pattern and its shifted copy give non-shifted outputs.
    pattern = np.zeros((1, 8, 8, 4), "float32")
    pattern[0, 1:3, 1:3] = 1.0
    shifted = np.roll(pattern, 2, axis=2)
    a, b = np.asarray(layer(pattern)), np.asarray(layer(shifted))
    assert not np.allclose(a[:, :, :-2], b[:, :, 2:])


def test_locally_connected_config_training_and_saving(tmp_path):
    x = _images()
    layer = LocallyConnected2D(3, 3, strides=2, activation="tanh")
    _config_roundtrip(layer)
    grads = _one_train_step(layer, x)
    assert all(np.any(np.asarray(g) != 0) for g in grads)
    _roundtrip(LocallyConnected2D(3, 3, padding="same"), x, tmp_path)


def test_locally_connected_needs_known_size():
    with pytest.raises(UserInputError, match="Received: input_shape"):
        LocallyConnected2D(3, 3)(keras.Input((None, None, 3)))
    with pytest.raises(UserInputError, match="does not fit"):
        LocallyConnected2D(3, 5)(keras.Input((4, 4, 3)))


# LP / L2 and median pooling


@pytest.mark.parametrize(
    "pool, strides, padding",
    [(2, None, "valid"), (3, 2, "valid"), (3, 2, "same"), ((2, 3), 1, "same")],
)
def test_lp_pooling_matches_numpy(pool, strides, padding):
    x = _images()
    pair = pool if isinstance(pool, tuple) else (pool, pool)
    stride = pair if strides is None else (strides, strides)
    for p in (1.0, 2.0, 3.0):
        reference = _window_reference(
            x,
            pair,
            stride,
            padding,
            lambda w, p=p: np.sum(np.abs(w) ** p, 1) ** (1 / p),
        )
        y = LPPooling2D(p=p, pool_size=pool, strides=strides, padding=padding)(x)
        np.testing.assert_allclose(np.asarray(y), reference, rtol=1e-4, atol=1e-5)
    y = L2Pooling2D(pool_size=pool, strides=strides, padding=padding)(x)
    reference = _window_reference(
        x, pair, stride, padding, lambda w: np.sqrt(np.sum(w**2, 1))
    )
    np.testing.assert_allclose(np.asarray(y), reference, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "pool, strides, padding",
    [
        (2, None, "valid"),
        (3, 1, "valid"),
        (3, 2, "same"),
        (2, 1, "same"),
        ((2, 3), 2, "same"),
    ],
)
def test_median_pooling_matches_numpy(pool, strides, padding):
    x = _images()
    pair = pool if isinstance(pool, tuple) else (pool, pool)
    stride = pair if strides is None else (strides, strides)
    y = MedianPooling2D(pool_size=pool, strides=strides, padding=padding)(x)
    reference = _window_reference(x, pair, stride, padding, lambda w: np.median(w, 1))
    np.testing.assert_allclose(np.asarray(y), reference, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "layer_cls, keras_cls",
    [
        (L2Pooling2D, keras.layers.MaxPooling2D),
        (MedianPooling2D, keras.layers.MaxPooling2D),
    ],
)
def test_pooling_shapes_match_max_pooling(layer_cls, keras_cls):
    x = _images((2, 10, 7, 3))
    for kwargs in ({"pool_size": 2}, {"pool_size": 3, "strides": 2, "padding": "same"}):
        assert layer_cls(**kwargs)(x).shape == keras_cls(**kwargs)(x).shape


def test_pooling_gradients_flow_and_are_finite():
    import tensorflow as tf

    x = tf.constant(np.maximum(_images(), 0.0))  # many all-zero windows
    for layer in (L2Pooling2D(2), MedianPooling2D(3, strides=1, padding="same")):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x))
        grad = tape.gradient(loss, x).numpy()
        assert np.all(np.isfinite(grad)) and np.any(grad != 0)


def test_pooling_configs_and_saving(tmp_path):
    x = _images()
    for layer in (
        LPPooling2D(p=3, pool_size=3, strides=2, padding="same"),
        L2Pooling2D(2),
        MedianPooling2D(3, strides=1, padding="same"),
    ):
        _config_roundtrip(layer)
    assert "p" not in L2Pooling2D().get_config()
    inputs = keras.Input(x.shape[1:])
    y = LPPooling2D(p=3, pool_size=2)(inputs)
    y = MedianPooling2D(2, strides=1, padding="same")(y)
    model = keras.Model(inputs, y)
    path = tmp_path / "pools.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(loaded(x)), atol=1e-6)


def test_pooling_bad_arguments():
    with pytest.raises(UserInputError, match="p=0.5"):
        LPPooling2D(p=0.5)
    with pytest.raises(UserInputError, match="padding='causal'"):
        MedianPooling2D(2, padding="causal")

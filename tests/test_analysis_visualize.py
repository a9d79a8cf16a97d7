"""Filters, feature maps, top patches, max-pool focus, and their figures."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from keras_convnets import get_model
from keras_convnets.analysis import (
    feature_maps,
    layer_filters,
    max_pool_focus,
    plot_feature_maps,
    plot_filters,
    plot_max_pool_focus,
    plot_top_patches,
    top_patches,
)
from keras_convnets.analysis._common import figure_png
from keras_convnets.errors import UserInputError


@pytest.fixture(scope="module")
def tiny():
    keras.utils.set_random_seed(0)
    return get_model("simple_cnn_tiny", input_shape=(28, 28, 1), num_classes=10)


def _png_shape(png: bytes):
    return tuple(tf.io.decode_png(png).shape)


def test_filters_and_feature_maps(tiny, rng):
    assert layer_filters(tiny).shape == (3, 3, 1, 8)
    assert layer_filters(tiny, "stage2_conv1").shape == (3, 3, 8, 16)
    images = rng.random((2, 28, 28, 1), dtype=np.float32)
    maps = feature_maps(tiny, "stage1_pool", images)
    assert maps.shape == (2, 14, 14, 8) and np.isfinite(maps).all()
    with pytest.raises(UserInputError, match="no layer 'conv9'.*stage1_conv1"):
        feature_maps(tiny, "conv9", images)
    with pytest.raises(UserInputError, match="feature map"):
        feature_maps(tiny, "dense", images)
    for fig in (
        plot_filters(tiny),
        plot_filters(tiny, "stage2_conv1"),
        plot_feature_maps(tiny, "stage1_conv1_relu", images),
    ):
        height, width, _ = _png_shape(figure_png(fig))
        assert height > 200 and width > 200


def test_rgb_filters():
    model = get_model("vgg_tiny", input_shape=(32, 32, 3), num_classes=10)
    height, width, _ = _png_shape(figure_png(plot_filters(model)))
    assert height > 200 and width > 200


def _pattern_model():
    """One unit built to detect a 3x3 diagonal, behind a pool and a 1x1 conv."""
    inputs = keras.Input((16, 16, 1))
    x = layers.Conv2D(1, 3, activation="relu", name="detect")(inputs)
    x = layers.MaxPooling2D(2, name="pool")(x)
    x = layers.Conv2D(2, 1, name="mix")(x)
    model = keras.Model(inputs, x)
    diagonal = np.eye(3, dtype="float32") * 2 - 1 / 3  # zero-mean matched filter
    model.get_layer("detect").set_weights([diagonal[:, :, None, None], np.zeros(1)])
    model.get_layer("mix").set_weights(
        [np.array([[[[0.0, 1.0]]]], "float32"), np.zeros(2, "float32")]
    )
    return model, diagonal


def test_top_patches_find_the_pattern(rng):
    model, _ = _pattern_model()
    images = 0.2 * rng.random((40, 16, 16, 1), dtype=np.float32)
    planted = {3: (2, 9), 11: (10, 4), 17: (6, 6), 25: (12, 12), 38: (0, 0)}
    for index, (row, col) in planted.items():
        images[index, row : row + 3, col : col + 3, 0] = np.eye(3)
    dataset = tf.data.Dataset.from_tensor_slices((images, np.arange(40))).batch(16)
    patches = top_patches(model, "mix", unit=1, data=dataset, k=5)
    assert {p["image_index"] for p in patches} == set(planted)
    assert [p["activation"] for p in patches] == sorted(
        (p["activation"] for p in patches), reverse=True
    )
    for p in patches:
        row, col = planted[p["image_index"]]
        top, left, bottom, right = p["box"]
        # The 4x4 field (3x3 conv + 2x2 pool) contains the planted diagonal.
        assert top <= row and left <= col and bottom >= row + 3 and right >= col + 3
        assert p["padded"].shape == (4, 4, 1)
        assert p["label"] == p["image_index"]
    # Arrays work too, and `max_images` stops the scan.
    again = top_patches(model, "mix", 1, images, k=2, batch_size=7, max_images=12)
    assert {p["image_index"] for p in again} == {3, 11}
    height, width, _ = _png_shape(figure_png(plot_top_patches(patches, "top")))
    assert height > 200 and width > 200
    with pytest.raises(UserInputError, match="2 units"):
        top_patches(model, "mix", 2, images)


def _argmax_mask(x, pool, stride):
    """Numpy reference: the positions that win some pooling window."""
    n, h, w, c = x.shape
    mask = np.zeros_like(x, dtype=bool)
    for b in range(n):
        for ch in range(c):
            for i in range(0, h - pool + 1, stride):
                for j in range(0, w - pool + 1, stride):
                    window = x[b, i : i + pool, j : j + pool, ch]
                    di, dj = np.unravel_index(window.argmax(), window.shape)
                    mask[b, i + di, j + dj, ch] = True
    return mask


@pytest.mark.parametrize("pool, stride", [(2, 2), (2, 1), (3, 1), (3, 2)])
def test_gradient_flows_only_to_the_argmax(pool, stride, rng):
    inputs = keras.Input((9, 9, 1))
    x = layers.Conv2D(3, 3, padding="same", name="conv")(inputs)  # linear: no ties
    x = layers.MaxPooling2D(pool, strides=stride, name="pool")(x)
    outputs = layers.Dense(2, activation="softmax")(layers.Flatten()(x))
    model = keras.Model(inputs, outputs)
    images = rng.random((2, 9, 9, 1), dtype=np.float32)
    pool_input, grad = max_pool_focus(model, "pool", images)
    expected = _argmax_mask(pool_input, pool, stride)
    np.testing.assert_array_equal(grad != 0, expected)
    # With overlapping windows (stride 1) a position can win several windows.
    if stride < pool:
        assert grad.max() > 1
    _, one = max_pool_focus(model, "pool", images, unit=1)
    np.testing.assert_array_equal(one[..., 1] != 0, expected[..., 1])
    assert not one[..., 0].any()
    with pytest.raises(UserInputError, match="not a max-pooling"):
        max_pool_focus(model, "conv", images)
    height, width, _ = _png_shape(
        figure_png(plot_max_pool_focus(model, "pool", images))
    )
    assert height > 200 and width > 200

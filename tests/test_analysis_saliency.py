"""Saliency maps, Grad-CAM and activation maximization."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_convnets import get_model
from keras_convnets.analysis import (
    activation_maximization,
    grad_cam,
    plot_activation_max,
    plot_attribution,
    saliency_map,
)
from keras_convnets.analysis._common import figure_png, logits_model
from keras_convnets.errors import UserInputError


@pytest.fixture(scope="module")
def tiny():
    keras.utils.set_random_seed(0)
    return get_model("simple_cnn_tiny", input_shape=(28, 28, 1), num_classes=10)


def test_logits_model_is_the_pre_softmax_score(tiny, rng):
    images = rng.random((3, 28, 28, 1), dtype=np.float32)
    logits = np.asarray(logits_model(tiny)(images))
    probs = np.asarray(tiny(images))
    np.testing.assert_allclose(keras.ops.softmax(logits), probs, rtol=1e-5, atol=1e-6)


def test_saliency_and_grad_cam(tiny, rng):
    images = rng.random((3, 28, 28, 1), dtype=np.float32)
    maps, classes = saliency_map(tiny, images)
    assert maps.shape == (3, 28, 28) and np.isfinite(maps).all() and maps.max() > 0
    np.testing.assert_array_equal(classes, np.asarray(tiny(images)).argmax(-1))
    maps, classes = saliency_map(tiny, images[0], class_index=4)
    assert maps.shape == (1, 28, 28) and list(classes) == [4]
    heat, classes = grad_cam(tiny, "stage2_conv1_relu", images, class_index=2)
    assert heat.shape == (3, 28, 28) and np.isfinite(heat).all()
    assert heat.min() >= 0 and heat.max() <= 1 and list(classes) == [2, 2, 2]
    with pytest.raises(UserInputError, match="10 classes"):
        saliency_map(tiny, images, class_index=10)
    with pytest.raises(UserInputError, match="feature map"):
        grad_cam(tiny, "predictions", images)
    fig = plot_attribution(images, heat, classes, "t", class_names=list("abcdefghij"))
    assert len(figure_png(fig)) > 1000


def test_activation_maximization(tiny):
    images, values = activation_maximization(
        tiny, "stage2_conv1", units=[0, 3], steps=30
    )
    assert images.shape == (2, 28, 28, 1)
    assert images.min() >= 0 and images.max() <= 1
    # The ascent beats the gray starting image.
    start = np.full((2, 28, 28, 1), 0.5, "float32")
    sub = keras.Model(tiny.inputs[0], tiny.get_layer("stage2_conv1").output)
    before = np.asarray(sub(start)).mean(axis=(1, 2))[[0, 1], [0, 3]]
    assert (values > before).all()
    # Seeded: the same seed gives the same images.
    again, _ = activation_maximization(tiny, "stage2_conv1", units=[0, 3], steps=30)
    np.testing.assert_allclose(images, again, atol=1e-5)
    classes, scores = activation_maximization(tiny, class_index=7, steps=10)
    assert classes.shape == (1, 28, 28, 1) and scores.shape == (1,)
    with pytest.raises(UserInputError, match="no layer"):
        activation_maximization(tiny, "nope", units=0)
    with pytest.raises(UserInputError, match="8 "):
        activation_maximization(tiny, "stage1_conv1", units=8)
    fig = plot_activation_max(images, values, ["u0", "u3"], "t")
    assert len(figure_png(fig)) > 1000

"""Neural style transfer on a small network trained here (offline)."""

from __future__ import annotations

import time

import numpy as np
import pytest
import tensorflow as tf

from keras_convnets import load_dataset
from keras_convnets.analysis import (
    StyleLoss,
    gram_matrix,
    load_backbone,
    style_transfer,
    total_variation,
)
from keras_convnets.analysis.style_transfer import feature_model, prepare_images
from keras_convnets.errors import UserInputError


@pytest.fixture(scope="module")
def pair(small_fashion_dir):
    ds, _ = load_dataset(
        "fashion_mnist", "test", batch_size=8, data_dir=small_fashion_dir
    )
    images, _ = next(iter(ds))
    return images.numpy()[0], images.numpy()[1]  # an ankle boot, a pullover


def test_gram_and_tv():
    features = tf.constant(np.arange(24, dtype="float32").reshape(1, 2, 3, 4))
    flat = features.numpy().reshape(6, 4)
    np.testing.assert_allclose(gram_matrix(features)[0], flat.T @ flat / 6)
    flat_image = tf.ones((1, 5, 5, 1))
    assert float(total_variation(flat_image)) == 0.0


def test_backbone_defaults(run_dir):
    backbone = load_backbone(run_dir)
    assert backbone.style_layers == ("stage1_conv1", "stage2_conv1")
    assert backbone.content_layer == "stage2_conv1"
    assert backbone.channels == 1 and backbone.image_size == (28, 28)


def test_loss_decreases_and_grams_move_to_style(run_dir, pair):
    content, style = pair
    backbone = load_backbone(run_dir)
    image, history = style_transfer(backbone, content, style, steps=40)
    assert image.shape == (28, 28, 1) and image.dtype == np.float32
    assert image.min() >= 0 and image.max() <= 1
    assert len(history["total"]) == 41
    assert history["total"][-1] < 0.5 * history["total"][0]
    assert history["style"][-1] < history["style"][0]
    # The output's Gram matrices are closer to the style's than the content's were.
    features = feature_model(backbone.model, backbone.style_layers)

    def grams(x):
        return [gram_matrix(m).numpy() for m in features(x[None])]

    target = grams(style)
    for before, after, wanted in zip(grams(content), grams(image), target):
        assert np.abs(after - wanted).mean() < np.abs(before - wanted).mean()


def test_zero_style_weight_stays_near_content(run_dir, pair):
    content, style = pair
    image, history = style_transfer(
        run_dir, content, style, steps=30, style_weight=0.0, tv_weight=0.0
    )
    assert np.abs(image - content).mean() < 0.02
    assert history["content"][-1] < 0.05


def test_any_size_and_channels(run_dir, pair, tmp_path):
    content, style = pair
    rgb = np.repeat(style, 3, axis=-1)[:20]  # a 20x28 RGB style image
    path = tmp_path / "content.png"
    tf.io.write_file(str(path), tf.io.encode_png((content * 255).astype("uint8")))
    calls = []
    image, _ = style_transfer(
        run_dir,
        str(path),
        rgb,
        steps=3,
        size=(40, 36),
        callback=lambda step, losses, img: calls.append((step, img.shape)),
    )
    assert image.shape == (40, 36, 1)
    assert calls == [(i, (40, 36, 1)) for i in range(4)]
    backbone = load_backbone(run_dir)
    c, s = prepare_images(backbone, content, rgb, size=56)
    assert c.shape == (1, 56, 56, 1) and s.shape == (1, 56, 56, 1)
    # Explicit layers; a dense layer has no feature map.
    loss = StyleLoss(
        backbone, c, s, "stage1_conv1", ["stage1_conv1_relu"], image_size=(56, 56)
    )
    assert set(loss(c)) == {"total", "content", "style", "tv"}
    with pytest.raises(UserInputError, match="feature map"):
        style_transfer(backbone, content, style, steps=1, style_layers=["dense"])


def test_vgg19_offline_is_one_quick_error(monkeypatch, tmp_path):
    from keras_convnets.data import datasets

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # no cached weights
    monkeypatch.setattr(datasets, "is_online", lambda *a, **k: False)
    start = time.perf_counter()
    with pytest.raises(UserInputError, match="VGG19 weights.*offline") as info:
        load_backbone("vgg19")
    assert "\n" not in str(info.value)
    assert time.perf_counter() - start < 5

"""Reference tests of keras_convnets.data.augment against other implementations.

Colour ops against PIL (`ImageOps`, `ImageFilter`, `ImageEnhance`) on the same
8-bit images, each op run under XLA as the pipelines run it; rotation by
multiples of 90 degrees against `np.rot90`; flips against `np.flip`.
"""

import math

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from keras_convnets.data import augment
from keras_convnets.data.augment import colour

HEIGHT, WIDTH = 16, 32


def _uint8_batch(channels):
    """8-bit images with the histograms that matter to PIL's LUT-based ops."""
    rng = np.random.default_rng(7)
    shape = (HEIGHT, WIDTH, channels)
    images = [
        rng.integers(0, 256, shape),  # every level
        rng.integers(40, 200, shape),  # a narrow range (autocontrast stretches)
        rng.integers(0, 4, shape) * 60 + 10,  # four levels
        np.full(shape, 77),  # constant (equalize, autocontrast: unchanged)
        np.where(rng.uniform(size=shape) < 0.3, 200, 3),  # two levels
        rng.binomial(255, 0.2, shape),  # skewed, many empty bins
    ]
    # Equalize's last LUT entry would be 256 (PIL clips it to 255): 511
    # pixels below 200 and one at 255, so step = 2 and the count before 255
    # is 511.
    edge = np.arange(HEIGHT * WIDTH) % 200
    edge[-1] = 255
    images.append(np.repeat(edge.reshape(HEIGHT, WIDTH, 1), channels, axis=2))
    return np.stack(images).astype(np.uint8)


def _float(images):
    return tf.constant(images.astype(np.float32) / 255.0)


def _pil(op, image):
    """`op` on one `[H, W, C]` uint8 image as a PIL image ("L" or "RGB")."""
    pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    out = np.asarray(op(pil))
    return out.reshape(image.shape)


def _ours(op, images):
    """`255 * op(images / 255)` under XLA, in float64."""
    out = tf.function(op, jit_compile=True)(_float(images))
    return out.numpy().astype(np.float64) * 255.0


@pytest.mark.parametrize("channels", [1, 3])
def test_equalize_matches_pil(channels):
    images = _uint8_batch(channels)
    ours = _ours(augment.equalize, images)
    np.testing.assert_allclose(ours, np.round(ours), atol=1e-3)  # whole levels
    for image, out in zip(images, ours):
        np.testing.assert_array_equal(np.round(out), _pil(ImageOps.equalize, image))


@pytest.mark.parametrize("channels", [1, 3])
def test_posterize_matches_pil(channels):
    images = _uint8_batch(channels)
    for bits in range(1, 9):
        ours = np.round(_ours(lambda x, bits=bits: augment.posterize(x, bits), images))
        for image, out in zip(images, ours):
            expected = _pil(lambda im, bits=bits: ImageOps.posterize(im, bits), image)
            np.testing.assert_array_equal(out, expected, err_msg=f"bits={bits}")


@pytest.mark.parametrize("channels", [1, 3])
def test_solarize_matches_pil(channels):
    images = _uint8_batch(channels)
    for threshold in (0, 1, 77, 128, 200, 255, 256):
        ours = _ours(lambda x, t=threshold: augment.solarize(x, t / 255.0), images)
        for image, out in zip(images, np.round(ours)):
            expected = _pil(lambda im, t=threshold: ImageOps.solarize(im, t), image)
            np.testing.assert_array_equal(out, expected, err_msg=f"t={threshold}")


@pytest.mark.parametrize("channels", [1, 3])
def test_autocontrast_is_pils_stretch_without_truncation(channels):
    # Not PIL-identical by design (the docstring says so): PIL truncates the
    # stretch to whole levels, ours keeps it exact, which RandAugment's float
    # images need. Both are the same stretch, so PIL <= 255 * ours <= PIL + 1.
    images = _uint8_batch(channels)
    ours = _ours(augment.autocontrast, images)
    x = images.astype(np.float64)
    low = x.min(axis=(1, 2), keepdims=True)
    high = x.max(axis=(1, 2), keepdims=True)
    spread = high - low
    exact = np.where(spread > 0, (x - low) * 255.0 / np.maximum(spread, 1), x)
    np.testing.assert_allclose(ours, exact, atol=2e-3)
    for image, out in zip(images, ours):
        difference = out - _pil(ImageOps.autocontrast, image)
        assert difference.min() >= -1e-3 and difference.max() <= 1.0 + 1e-3
    constant = np.all(spread == 0, axis=(1, 2, 3))
    assert constant.any() and (~constant).any()
    np.testing.assert_array_equal(np.round(ours[constant]), images[constant])


@pytest.mark.parametrize("channels", [1, 3])
def test_smooth_matches_pils_smooth_filter(channels):
    images = _uint8_batch(channels)
    ours = _ours(colour.smooth, images)
    for image, out in zip(images, np.round(ours)):
        expected = _pil(lambda im: im.filter(ImageFilter.SMOOTH), image)
        np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("factor", [0.0, 0.3, 1.0, 1.7])
def test_blend_is_pils_enhance_without_truncation(factor):
    # ImageEnhance.Brightness blends with a black image: PIL truncates the
    # blend to whole levels (and clips), ours keeps it in float.
    images = _uint8_batch(3)
    ours = _ours(lambda x: colour.blend(tf.zeros_like(x), x, factor), images)
    for image, out in zip(images, ours):
        expected = _pil(lambda im: ImageEnhance.Brightness(im).enhance(factor), image)
        difference = out - expected
        assert difference.min() >= -1e-3 and difference.max() < 1.0
        np.testing.assert_array_equal(np.floor(out + 1e-3), expected)


def _rotation(degrees, batch):
    angle = math.radians(degrees)
    row = [math.cos(angle), math.sin(angle), 0.0, -math.sin(angle), math.cos(angle)]
    return tf.constant([[*row, 0.0]] * batch, tf.float32)


@pytest.mark.parametrize("size", [7, 8])
@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_rotation_by_multiples_of_90_degrees_matches_rot90(size, interpolation):
    # A positive angle turns the image clockwise as displayed (rows down):
    # np.rot90 with k=-1.
    rng = np.random.default_rng(3)
    images = rng.uniform(size=(3, size, size, 2)).astype(np.float32)
    warp = tf.function(augment.affine_transform, jit_compile=True)
    for degrees, k in ((90, -1), (-90, 1), (180, 2), (270, 1), (0, 0)):
        out = warp(images, _rotation(degrees, 3), interpolation).numpy()
        expected = np.rot90(images, k=k, axes=(1, 2))
        np.testing.assert_allclose(out, expected, atol=1e-5, err_msg=f"{degrees}")


def test_flips_match_np_flip():
    rng = np.random.default_rng(4)
    images = tf.constant(rng.uniform(size=(16, 6, 9, 3)).astype(np.float32))
    seed = augment.make_seed(2)
    flip = tf.function(augment.flip, jit_compile=True)
    x = images.numpy()
    np.testing.assert_array_equal(flip(images, seed, rate=1.0), np.flip(x, axis=2))
    np.testing.assert_array_equal(
        flip(images, seed, horizontal=False, vertical=True, rate=1.0),
        np.flip(x, axis=1),
    )
    np.testing.assert_array_equal(
        flip(images, seed, vertical=True, rate=1.0), np.flip(x, axis=(1, 2))
    )
    np.testing.assert_array_equal(flip(images, seed, rate=0.0), x)
    # Rate 1/2: every image is either itself or its mirror image, both occur.
    out = flip(images, seed).numpy()
    same = [np.array_equal(o, i) for o, i in zip(out, x)]
    mirrored = [np.array_equal(o, np.flip(i, axis=1)) for o, i in zip(out, x)]
    assert all(s != m for s, m in zip(same, mirrored))
    assert any(same) and any(mirrored)

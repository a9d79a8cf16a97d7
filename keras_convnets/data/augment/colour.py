"""Colour: brightness, contrast, solarize, posterize, autocontrast, equalize.

Elementwise ops and one segment sum (equalize), batched over the whole
`[B, H, W, C]` tensor; images are float in `[0, 1]` and stay there. `blend`,
`grayscale` and `smooth` are the building blocks of PIL's `ImageEnhance`
operations that RandAugment uses.
"""

from __future__ import annotations

import tensorflow as tf

from keras_convnets.data.augment.random import make_seed, uniform_per_image
from keras_convnets.data.augment.utils import per_image, static_hwc

__all__ = [
    "autocontrast",
    "blend",
    "brightness",
    "contrast",
    "equalize",
    "grayscale",
    "posterize",
    "smooth",
    "solarize",
]


def grayscale(images):
    """Luma `0.299 R + 0.587 G + 0.114 B` as `[B, H, W, 1]` (1 channel: as is)."""
    if images.shape[-1] == 1:
        return images
    weights = tf.constant([0.299, 0.587, 0.114], dtype=images.dtype)
    return tf.reduce_sum(images * weights, axis=-1, keepdims=True)


def blend(degenerate, images, factor):
    """`degenerate + factor * (images - degenerate)`, clipped to `[0, 1]`.

    The formula of PIL's `ImageEnhance` (`Image.blend(degenerate, image,
    factor)`), in float: PIL truncates the result to whole 8-bit levels, this
    does not, so on 8-bit images `255 * blend` lies in `[PIL, PIL + 1)`.
    """
    return tf.clip_by_value(degenerate + factor * (images - degenerate), 0.0, 1.0)


def brightness(images, seed, max_delta=0.2):
    """Adds a random brightness offset in `[-max_delta, max_delta]` per image.

    Args:
        images: float tensor `[B, H, W, C]` in `[0, 1]`.
        seed: int or `[2]` tensor. Stateless RNG seed.
        max_delta: float. Largest offset. Defaults to 0.2.

    Returns:
        The images, clipped to `[0, 1]`.
    """
    delta = uniform_per_image(
        make_seed(seed), tf.shape(images)[0], -max_delta, max_delta
    )
    return tf.clip_by_value(images + per_image(delta), 0.0, 1.0)


def contrast(images, seed, max_delta=0.2):
    """Scales each image's deviation from its mean by `1 +- max_delta`.

    Args:
        images: float tensor `[B, H, W, C]` in `[0, 1]`.
        seed: int or `[2]` tensor. Stateless RNG seed.
        max_delta: float. Largest change of the contrast factor. Defaults to
            0.2.

    Returns:
        The images, clipped to `[0, 1]`.
    """
    factor = uniform_per_image(
        make_seed(seed), tf.shape(images)[0], 1.0 - max_delta, 1.0 + max_delta
    )
    mean = tf.reduce_mean(images, axis=[1, 2], keepdims=True)
    return blend(mean, images, per_image(factor))


def solarize(images, threshold=0.5):
    """Inverts the pixels at or above `threshold`.

    On 8-bit images (`x / 255`, `threshold=t / 255`) the result is PIL's
    `ImageOps.solarize(image, t)`, exactly.

    Args:
        images: float tensor `[B, H, W, C]` in `[0, 1]`.
        threshold: float or tensor broadcastable to the images. Defaults to
            0.5.

    Returns:
        The solarized images.
    """
    return tf.where(images >= threshold, 1.0 - images, images)


def posterize(images, bits=4):
    """Keeps the top `bits` bits of each 8-bit intensity.

    Intensities are first rounded to 8-bit levels; on 8-bit images (`x / 255`)
    the result is PIL's `ImageOps.posterize(image, bits)`, exactly.

    Args:
        images: float tensor `[B, H, W, C]` in `[0, 1]`.
        bits: int in `[1, 8]`. Defaults to 4.

    Returns:
        The posterized images.
    """
    if not 1 <= int(bits) <= 8:
        raise ValueError(f"`bits` must be in [1, 8]. Received: bits={bits}")
    step = float(2 ** (8 - int(bits)))
    levels = tf.floor(images * 255.0 + 0.5)
    return tf.floor(levels / step) * step / 255.0


def autocontrast(images):
    """Stretches each image and channel to span `[0, 1]`.

    The linear stretch of PIL's `ImageOps.autocontrast` (with `cutoff=0`),
    `(x - min) / (max - min)` per image and channel, but in float: PIL
    truncates to whole 8-bit levels, this does not, so on 8-bit images
    `255 * autocontrast` lies in `[PIL, PIL + 1]` (and is 0 and 1 exactly at
    the minimum and maximum).

    Args:
        images: float tensor `[B, H, W, C]` in `[0, 1]`.

    Returns:
        The stretched images; constant channels are left unchanged.
    """
    low = tf.reduce_min(images, axis=[1, 2], keepdims=True)
    high = tf.reduce_max(images, axis=[1, 2], keepdims=True)
    spread = high - low
    stretched = (images - low) / tf.maximum(spread, 1e-6)
    return tf.where(spread > 0, tf.clip_by_value(stretched, 0.0, 1.0), images)


def equalize(images):
    """Histogram equalization per image and channel, as PIL computes it.

    Intensities are first rounded to 8-bit levels; on 8-bit images (`x / 255`)
    the result is PIL's `ImageOps.equalize(image)`, exactly. All histograms of the batch come from one `unsorted_segment_sum` over
    `B * C * 256` bins, so the op is batched and compiles under XLA.

    Args:
        images: float tensor `[B, H, W, C]` in `[0, 1]`.

    Returns:
        The equalized images (multiples of 1/255).
    """
    height, width, channels = static_hwc(images)
    batch = tf.shape(images)[0]
    levels = tf.cast(tf.clip_by_value(tf.floor(images * 255.0 + 0.5), 0, 255), tf.int32)
    image_ids = tf.reshape(tf.range(batch), [-1, 1, 1, 1])
    channel_ids = tf.reshape(tf.range(channels), [1, 1, 1, -1])
    bins = (image_ids * channels + channel_ids) * 256 + levels
    hist = tf.math.unsorted_segment_sum(
        tf.ones_like(bins), bins, batch * channels * 256
    )
    hist = tf.reshape(hist, [batch * channels, 256])
    # PIL: step = (pixels - count of the last non-empty bin) // 255.
    top = tf.reduce_max(tf.where(hist > 0, tf.range(256)[None, :], 0), axis=1)
    last = tf.gather(hist, top[:, None], batch_dims=1)[:, 0]
    step = (height * width - last) // 255
    safe = tf.maximum(step, 1)[:, None]
    before = tf.cumsum(hist, axis=1, exclusive=True)
    lut = tf.minimum((before + safe // 2) // safe, 255)
    lut = tf.where(step[:, None] > 0, lut, tf.range(256)[None, :])
    out = tf.gather(tf.reshape(lut, [-1]), bins)
    equalized = tf.cast(out, images.dtype) / 255.0
    keep = tf.reshape(step > 0, [-1, 1, 1, channels])
    return tf.where(keep, equalized, images)


def smooth(images):
    """PIL's SMOOTH filter (3x3, centre weight 5) on the interior pixels.

    Border pixels are kept, as PIL does. In float: on 8-bit images, rounding
    `255 * smooth` to whole levels gives PIL's `image.filter(ImageFilter.SMOOTH)`
    exactly.

    Nine shifted slices rather than a depthwise convolution: XLA fuses them
    into the surrounding elementwise pass, which it does not do for a conv.
    """
    height, width, _ = static_hwc(images)
    total = 4.0 * images[:, 1:-1, 1:-1, :]
    for dy in range(3):
        for dx in range(3):
            total += images[:, dy : height - 2 + dy, dx : width - 2 + dx, :]
    inner = tf.pad(total / 13.0, [[0, 0], [1, 1], [1, 1], [0, 0]])
    border = tf.pad(
        tf.zeros([height - 2, width - 2], tf.bool),
        [[1, 1], [1, 1]],
        constant_values=True,
    )
    return tf.where(border[None, :, :, None], images, inner)

"""Batched, seeded image augmentation that compiles under XLA.

Data augmentation is one of the three routes to an inductive bias (lecture
part 1): it tells the model which changes of the input leave the label alone.
Here it must be cheap enough never to be the bottleneck, so every operation is
a batched TensorFlow op on a whole `[batch, height, width, channels]` tensor:

- per-image randomness comes from `tf.random.stateless_*` with an explicit
  seed (a `[2]` integer tensor), so the same seed always gives the same batch;
- geometry is built from gathers (no `ImageProjectiveTransformV3`, which has no
  XLA kernel), colour from elementwise ops and one segment sum (equalize), so
  every op and policy compiles with `tf.function(jit_compile=True)`;
- images are float in `[0, 1]` (1 or 3 channels) and stay in `[0, 1]`.

The same code runs in two placements:

1. `augment_dataset(ds, policy, seed=...)`: in `tf.data`, mapped after
   `batch`, one XLA-compiled call per batch. All policies, including `mixup`
   and `cutmix`, which also mix the (one-hot) labels.
2. `Augment(policy, seed)`: a training-only layer at the model input, so
   `model.fit(..., jit_compile=True)` fuses augmentation into the train step on
   the accelerator. Identity at inference. Image-only policies (a layer never
   sees the labels, so `mixup` and `cutmix` are refused there).

Policies are named (`list_policies()`) so that `keras-convnets train --augment
NAME` and the tuner (`hp.Choice("augment", list_policies())`) can pick them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import keras
import tensorflow as tf

from keras_convnets.errors import UserInputError

__all__ = [
    "Augment",
    "Policy",
    "affine_transform",
    "augment_batch",
    "augment_dataset",
    "autocontrast",
    "batch_seed",
    "brightness",
    "canvas_place",
    "contrast",
    "cutmix",
    "cutout",
    "equalize",
    "flip",
    "get_policy",
    "list_policies",
    "make_seed",
    "mixup",
    "posterize",
    "rand_augment",
    "random_erasing",
    "rotate",
    "shear",
    "shift",
    "solarize",
    "translate",
]

_PADDINGS = ("zero", "reflect")
# One RNG algorithm everywhere: "auto_select" may pick a different generator
# under XLA than in graph mode (different draws, and on CPU a slow one).
_ALG = "philox"
_INTERPOLATIONS = ("nearest", "bilinear")


# --------------------------------------------------------------------- seeds


def make_seed(seed) -> tf.Tensor:
    """Turns an int or a `[2]` integer tensor into a stateless RNG seed.

    Args:
        seed: int, or a shape `[2]` integer tensor (returned as int32).

    Returns:
        A shape `[2]` int32 tensor, usable by `tf.random.stateless_*`.
    """
    if isinstance(seed, bool) or seed is None:
        raise ValueError(
            f"`seed` must be an int or a [2] integer tensor. Received: seed={seed!r}"
        )
    if isinstance(seed, int):
        # Keep 32 bits, reinterpreted as signed, so any Python int is usable.
        seed = ((seed & 0xFFFFFFFF) ^ 0x80000000) - 0x80000000
        return tf.constant([seed, 0], dtype=tf.int32)
    seed = tf.convert_to_tensor(seed)
    if seed.shape.rank != 1 or (seed.shape[0] is not None and seed.shape[0] != 2):
        raise ValueError(f"`seed` must have shape [2]. Received: shape={seed.shape}")
    return tf.cast(seed, tf.int32)


def batch_seed(seed, epoch, index) -> tf.Tensor:
    """The seed of one batch: a pure function of `(seed, epoch, index)`.

    Args:
        seed: int or `[2]` tensor. The run's augmentation seed.
        epoch: int or scalar integer tensor. The epoch (or any other counter
            that should change the draws).
        index: int or scalar integer tensor. The batch's index in its epoch.

    Returns:
        A shape `[2]` int32 tensor.

    Example:

    ```python
    images = translate(images, batch_seed(0, epoch=3, index=17), max_offset=4)
    ```
    """
    key = tf.random.experimental.stateless_fold_in(
        make_seed(seed), tf.cast(epoch, tf.int32), alg=_ALG
    )
    key = tf.random.experimental.stateless_fold_in(
        key, tf.cast(index, tf.int32), alg=_ALG
    )
    return tf.cast(key, tf.int32)


def _split(seed, num):
    return tf.unstack(
        tf.cast(tf.random.experimental.stateless_split(seed, num, alg=_ALG), tf.int32)
    )


def _random(shape, seed, minval=0.0, maxval=1.0):
    """Uniform floats in `[minval, maxval)`, identical in graph mode and XLA.

    `tf.random.stateless_uniform` turns the same random bits into different
    floats under XLA than in graph mode; bounded integers agree, so floats are
    made from 24-bit integers here.
    """
    bits = tf.random.stateless_uniform(
        shape, seed, minval=0, maxval=1 << 24, dtype=tf.int32, alg=_ALG
    )
    unit = tf.cast(bits, tf.float32) * (1.0 / (1 << 24))
    return minval + (maxval - minval) * unit


def _permutation(seed, size):
    """A random permutation of `range(size)` (sorting random 31-bit keys)."""
    keys = tf.random.stateless_uniform(
        [size], seed, minval=0, maxval=(1 << 31) - 1, dtype=tf.int32, alg=_ALG
    )
    return tf.argsort(keys, stable=True)


def _uniform(seed, batch, minval=0.0, maxval=1.0):
    return _random([batch], seed, minval, maxval)


def _randint(seed, batch, minval, maxval):
    """Per-image integers in `[minval, maxval]` (both inclusive)."""
    return tf.random.stateless_uniform(
        [batch], seed, minval=minval, maxval=maxval + 1, dtype=tf.int32, alg=_ALG
    )


def _bernoulli(seed, batch, rate):
    return _uniform(seed, batch) < rate


def _beta(seed, shape, alpha):
    """Beta(alpha, alpha) samples from two XLA-friendly gamma draws."""
    seed_a, seed_b = _split(seed, 2)
    ga = _gamma(seed_a, shape, alpha)
    gb = _gamma(seed_b, shape, alpha)
    return ga / tf.maximum(ga + gb, 1e-12)


def _gamma(seed, shape, alpha, trials=8):
    """Gamma(alpha, 1) by Marsaglia-Tsang with a fixed number of trials.

    `tf.random.stateless_gamma` has no XLA kernel. Marsaglia-Tsang accepts a
    proposal with probability > 0.95 for the shape `alpha + 1` used here, so
    eight proposals all fail with probability < 1e-10; such a draw falls back
    to the mode. `alpha < 1` uses Gamma(a) = Gamma(a + 1) * U^(1/a).

    Reference:
        Marsaglia and Tsang, "A simple method for generating gamma
        variables", ACM TOMS 2000.
    """
    alpha = float(alpha)
    boosted = alpha + 1.0
    d = boosted - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    seed_r, seed_t, seed_u, seed_boost = _split(seed, 4)
    # Box-Muller, from the portable uniform draws.
    radius = tf.sqrt(-2.0 * tf.math.log(1.0 - _random([trials, *shape], seed_r)))
    normal = radius * tf.cos(2.0 * math.pi * _random([trials, *shape], seed_t))
    uniform = _random([trials, *shape], seed_u)
    v = (1.0 + c * normal) ** 3
    log_v = tf.math.log(tf.maximum(v, 1e-30))
    accept = (v > 0.0) & (
        tf.math.log(tf.maximum(uniform, 1e-30))
        < 0.5 * normal**2 + d - d * v + d * log_v
    )
    first = tf.argmax(tf.cast(accept, tf.int32), axis=0)
    chosen = tf.gather(tf.transpose(d * v), first[..., None], batch_dims=1)[..., 0]
    fallback = tf.fill(tf.shape(chosen), d)
    sample = tf.where(tf.reduce_any(accept, axis=0), chosen, fallback)
    boost = 1.0 - _random(shape, seed_boost)
    return sample * boost ** (1.0 / alpha)


# ----------------------------------------------------------------- utilities


def _static_hwc(images):
    shape = images.shape
    if shape.rank != 4 or None in shape[1:]:
        raise ValueError(
            "Augmentation expects a batch of images with static "
            f"[batch, height, width, channels] shape. Received: shape={shape}"
        )
    return int(shape[1]), int(shape[2]), int(shape[3])


def _per_image(values):
    return tf.reshape(values, [-1, 1, 1, 1])


def _pixels(size, extent):
    """An int, or a float fraction of `extent`, as a whole number of pixels."""
    if isinstance(size, float):
        return int(round(size * extent))
    return int(size)


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(
            f"`{name}` must be one of {list(choices)}. Received: {name}={value!r}"
        )


def _grayscale(images):
    if images.shape[-1] == 1:
        return images
    weights = tf.constant([0.299, 0.587, 0.114], dtype=images.dtype)
    return tf.reduce_sum(images * weights, axis=-1, keepdims=True)


def _blend(degenerate, images, factor):
    """`degenerate + factor * (images - degenerate)`, clipped (PIL's enhance)."""
    return tf.clip_by_value(degenerate + factor * (images - degenerate), 0.0, 1.0)


def _box_mask(height, width, y0, y1, x0, x1):
    """`[B, H, W, 1]` boolean mask of the per-image boxes `[y0, y1) x [x0, x1)`."""
    rows = tf.range(height)[None, :]
    cols = tf.range(width)[None, :]
    inside_r = (rows >= y0[:, None]) & (rows < y1[:, None])
    inside_c = (cols >= x0[:, None]) & (cols < x1[:, None])
    return (inside_r[:, :, None] & inside_c[:, None, :])[..., None]


def _reflect(index, extent):
    """Reflect indices into `[0, extent)` without repeating the edge."""
    if extent == 1:
        return tf.zeros_like(index)
    period = 2 * (extent - 1)
    index = tf.math.floormod(tf.abs(index), period)
    return tf.where(index >= extent, period - index, index)


def _gather_rows_cols(images, rows, cols):
    out = tf.gather(images, rows, axis=1, batch_dims=1)
    return tf.gather(out, cols, axis=2, batch_dims=1)


# ----------------------------------------------------------------- geometry


def shift(images, dy, dx, padding="zero", output_size=None, fill_value=0.0):
    """Moves every image by its own whole-pixel offset.

    `output[b, y, x] = images[b, y - dy[b], x - dx[b]]`, with pixels from
    outside the image filled (`"zero"`: `fill_value`) or mirrored
    (`"reflect"`). Two gathers, exact (no interpolation).

    Args:
        images: float tensor `[B, H, W, C]`.
        dy: int tensor `[B]`. Rows to move down (negative: up).
        dx: int tensor `[B]`. Columns to move right (negative: left).
        padding: str. `"zero"` or `"reflect"`. Defaults to `"zero"`.
        output_size: tuple `(height, width)`. Output canvas size, for placing
            images on a larger canvas. Defaults to the input size.
        fill_value: float. Value of pixels from outside the image with
            `padding="zero"`. Defaults to 0.

    Returns:
        A float tensor `[B, out_height, out_width, C]`.

    Example:

    ```python
    moved = shift(images, dy=tf.constant([2, -1]), dx=tf.constant([0, 3]))
    ```
    """
    _check_choice("padding", padding, _PADDINGS)
    height, width, _ = _static_hwc(images)
    out_h, out_w = output_size or (height, width)
    rows = tf.range(out_h)[None, :] - tf.cast(dy, tf.int32)[:, None]
    cols = tf.range(out_w)[None, :] - tf.cast(dx, tf.int32)[:, None]
    if padding == "reflect":
        return _gather_rows_cols(images, _reflect(rows, height), _reflect(cols, width))
    valid_r = (rows >= 0) & (rows < height)
    valid_c = (cols >= 0) & (cols < width)
    out = _gather_rows_cols(
        images,
        tf.clip_by_value(rows, 0, height - 1),
        tf.clip_by_value(cols, 0, width - 1),
    )
    mask = valid_r[:, :, None, None] & valid_c[:, None, :, None]
    return tf.where(mask, out, tf.cast(fill_value, images.dtype))


def _translate_offsets(seed, batch, height, width, max_offset):
    max_dy = _pixels(max_offset, height)
    max_dx = _pixels(max_offset, width)
    seed_y, seed_x = _split(seed, 2)
    return _randint(seed_y, batch, -max_dy, max_dy), _randint(
        seed_x, batch, -max_dx, max_dx
    )


def translate(images, seed, max_offset=0.125, padding="zero"):
    """Random translation: pad, then crop at a random position, per image.

    Offsets are whole pixels drawn uniformly from `[-max_offset, max_offset]`
    independently for rows and columns (the CIFAR "pad 4, random crop").

    Args:
        images: float tensor `[B, H, W, C]` in `[0, 1]`.
        seed: int or `[2]` tensor. Stateless RNG seed.
        max_offset: int (pixels) or float (fraction of the side). Defaults to
            0.125 (4 pixels at 32x32).
        padding: str. `"zero"` or `"reflect"`. Defaults to `"zero"`.

    Returns:
        The translated images, same shape and dtype.

    Example:

    ```python
    images = translate(images, seed=0, max_offset=4, padding="reflect")
    ```
    """
    height, width, _ = _static_hwc(images)
    dy, dx = _translate_offsets(
        make_seed(seed), tf.shape(images)[0], height, width, max_offset
    )
    return shift(images, dy, dx, padding=padding)


def canvas_place(images, canvas_size, seed=None, fill_value=0.0):
    """Places each image at a random position on a larger blank canvas.

    For the translation experiments of the lecture: train on 28x28 digits
    placed at random on a 40x40 canvas, test on centred ones (or vice versa)
    to see how much translation invariance a convnet really has.

    Args:
        images: float tensor `[B, H, W, C]`.
        canvas_size: int or tuple `(height, width)`, at least the image size.
        seed: int or `[2]` tensor, or None to centre every image (the
            deterministic test-time placement). Defaults to None.
        fill_value: float. Canvas colour. Defaults to 0.

    Returns:
        A float tensor `[B, canvas_height, canvas_width, C]`.

    Example:

    ```python
    train_x = canvas_place(x, 40, seed=0)  # random position
    test_x = canvas_place(x, 40)  # centred
    ```
    """
    height, width, _ = _static_hwc(images)
    if isinstance(canvas_size, int):
        canvas_size = (canvas_size, canvas_size)
    canvas_h, canvas_w = (int(s) for s in canvas_size)
    if canvas_h < height or canvas_w < width:
        raise ValueError(
            f"`canvas_size` must be at least the image size {(height, width)}. "
            f"Received: canvas_size={canvas_size}"
        )
    batch = tf.shape(images)[0]
    if seed is None:
        oy = tf.fill([batch], (canvas_h - height) // 2)
        ox = tf.fill([batch], (canvas_w - width) // 2)
    else:
        seed_y, seed_x = _split(make_seed(seed), 2)
        oy = _randint(seed_y, batch, 0, canvas_h - height)
        ox = _randint(seed_x, batch, 0, canvas_w - width)
    return shift(
        images, oy, ox, output_size=(canvas_h, canvas_w), fill_value=fill_value
    )


def flip(images, seed, horizontal=True, vertical=False, rate=0.5):
    """Random horizontal and/or vertical flips, each image its own coin.

    Args:
        images: float tensor `[B, H, W, C]`.
        seed: int or `[2]` tensor. Stateless RNG seed.
        horizontal: bool. Flip left-right. Defaults to True.
        vertical: bool. Flip upside down. Defaults to False.
        rate: float. Probability of each flip. Defaults to 0.5.

    Returns:
        The flipped images, same shape and dtype.
    """
    batch = tf.shape(images)[0]
    seed_h, seed_v = _split(make_seed(seed), 2)
    if horizontal:
        coin = _per_image(_bernoulli(seed_h, batch, rate))
        images = tf.where(coin, tf.reverse(images, axis=[2]), images)
    if vertical:
        coin = _per_image(_bernoulli(seed_v, batch, rate))
        images = tf.where(coin, tf.reverse(images, axis=[1]), images)
    return images


def affine_transform(images, transforms, interpolation="nearest", fill_value=0.0):
    """Per-image affine warp built from gathers (compiles under XLA).

    Each output pixel at `(x, y)`, measured from the image centre, samples the
    input at `(a0 x + a1 y + a2, b0 x + b1 y + b2)` (also from the centre).

    Args:
        images: float tensor `[B, H, W, C]`.
        transforms: float tensor `[B, 6]`: `(a0, a1, a2, b0, b1, b2)` per image.
        interpolation: str. `"nearest"` (one gather) or `"bilinear"` (four).
            Defaults to `"nearest"`, as torchvision's RandAugment.
        fill_value: float. Value of pixels sampled from outside. Defaults to 0.

    Returns:
        The warped images, same shape and dtype.
    """
    _check_choice("interpolation", interpolation, _INTERPOLATIONS)
    height, width, channels = _static_hwc(images)
    batch = tf.shape(images)[0]
    cy, cx = (height - 1) / 2.0, (width - 1) / 2.0
    ys, xs = tf.meshgrid(
        tf.range(height, dtype=tf.float32) - cy,
        tf.range(width, dtype=tf.float32) - cx,
        indexing="ij",
    )
    xs = tf.reshape(xs, [1, -1])
    ys = tf.reshape(ys, [1, -1])
    t = tf.cast(transforms, tf.float32)
    src_x = t[:, 0:1] * xs + t[:, 1:2] * ys + t[:, 2:3] + cx
    src_y = t[:, 3:4] * xs + t[:, 4:5] * ys + t[:, 5:6] + cy
    flat = tf.reshape(images, [batch, height * width, channels])
    fill = tf.cast(fill_value, images.dtype)

    def sample(xi, yi):
        valid = (xi >= 0) & (xi < width) & (yi >= 0) & (yi < height)
        index = tf.clip_by_value(yi, 0, height - 1) * width + tf.clip_by_value(
            xi, 0, width - 1
        )
        return tf.where(valid[..., None], tf.gather(flat, index, batch_dims=1), fill)

    if interpolation == "nearest":
        out = sample(
            tf.cast(tf.floor(src_x + 0.5), tf.int32),
            tf.cast(tf.floor(src_y + 0.5), tf.int32),
        )
    else:
        x0, y0 = tf.floor(src_x), tf.floor(src_y)
        wx = tf.cast(src_x - x0, images.dtype)[..., None]
        wy = tf.cast(src_y - y0, images.dtype)[..., None]
        x0, y0 = tf.cast(x0, tf.int32), tf.cast(y0, tf.int32)
        top = (1 - wx) * sample(x0, y0) + wx * sample(x0 + 1, y0)
        bottom = (1 - wx) * sample(x0, y0 + 1) + wx * sample(x0 + 1, y0 + 1)
        out = (1 - wy) * top + wy * bottom
    return tf.reshape(out, [batch, height, width, channels])


def _rotation(angle):
    cos, sin = tf.cos(angle), tf.sin(angle)
    zero = tf.zeros_like(angle)
    return tf.stack([cos, sin, zero, -sin, cos, zero], axis=1)


def rotate(images, seed, max_degrees=15.0, interpolation="bilinear", fill_value=0.0):
    """Random rotation by up to `max_degrees` either way, about the centre.

    Args:
        images: float tensor `[B, H, W, C]`.
        seed: int or `[2]` tensor. Stateless RNG seed.
        max_degrees: float. Largest rotation. Defaults to 15.
        interpolation: str. `"nearest"` or `"bilinear"`. Defaults to
            `"bilinear"`.
        fill_value: float. Value of the uncovered corners. Defaults to 0.

    Returns:
        The rotated images, same shape and dtype.
    """
    limit = math.radians(max_degrees)
    angle = _uniform(make_seed(seed), tf.shape(images)[0], -limit, limit)
    return affine_transform(images, _rotation(angle), interpolation, fill_value)


def shear(images, seed, max_shear=0.2, interpolation="bilinear", fill_value=0.0):
    """Random shear along x and y, each factor uniform in `[-max, max]`.

    Args:
        images: float tensor `[B, H, W, C]`.
        seed: int or `[2]` tensor. Stateless RNG seed.
        max_shear: float. Largest shear factor (0.2 is about 11 degrees).
            Defaults to 0.2.
        interpolation: str. `"nearest"` or `"bilinear"`. Defaults to
            `"bilinear"`.
        fill_value: float. Value of the uncovered corners. Defaults to 0.

    Returns:
        The sheared images, same shape and dtype.
    """
    batch = tf.shape(images)[0]
    seed_x, seed_y = _split(make_seed(seed), 2)
    sx = _uniform(seed_x, batch, -max_shear, max_shear)
    sy = _uniform(seed_y, batch, -max_shear, max_shear)
    one, zero = tf.ones_like(sx), tf.zeros_like(sx)
    transforms = tf.stack([one, sx, zero, sy, one, zero], axis=1)
    return affine_transform(images, transforms, interpolation, fill_value)


# --------------------------------------------------------------------- colour


def brightness(images, seed, max_delta=0.2):
    """Adds a random brightness offset in `[-max_delta, max_delta]` per image.

    Args:
        images: float tensor `[B, H, W, C]` in `[0, 1]`.
        seed: int or `[2]` tensor. Stateless RNG seed.
        max_delta: float. Largest offset. Defaults to 0.2.

    Returns:
        The images, clipped to `[0, 1]`.
    """
    delta = _uniform(make_seed(seed), tf.shape(images)[0], -max_delta, max_delta)
    return tf.clip_by_value(images + _per_image(delta), 0.0, 1.0)


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
    factor = _uniform(
        make_seed(seed), tf.shape(images)[0], 1.0 - max_delta, 1.0 + max_delta
    )
    mean = tf.reduce_mean(images, axis=[1, 2], keepdims=True)
    return _blend(mean, images, _per_image(factor))


def solarize(images, threshold=0.5):
    """Inverts the pixels at or above `threshold`.

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
    """Stretches each image and channel to span `[0, 1]` (PIL's autocontrast).

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

    All histograms of the batch come from one `unsorted_segment_sum` over
    `B * C * 256` bins, so the op is batched and compiles under XLA.

    Args:
        images: float tensor `[B, H, W, C]` in `[0, 1]`.

    Returns:
        The equalized images (multiples of 1/255).
    """
    height, width, channels = _static_hwc(images)
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


def _smooth(images):
    """PIL's SMOOTH filter (3x3, centre weight 5) on the interior pixels.

    Nine shifted slices rather than a depthwise convolution: XLA fuses them
    into the surrounding elementwise pass, which it does not do for a conv.
    """
    height, width, _ = _static_hwc(images)
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


# ---------------------------------------------------------- erasing and mixing


def cutout(images, seed, size=0.5, fill_value=0.5):
    """Cutout: one square of side `size` per image set to `fill_value`.

    The square's centre is uniform over the image, so it may be partly
    outside (as in the paper).

    Args:
        images: float tensor `[B, H, W, C]`.
        seed: int or `[2]` tensor. Stateless RNG seed.
        size: int (pixels) or float (fraction of the side). Defaults to 0.5
            (16 pixels at 32x32, the paper's CIFAR-10 setting).
        fill_value: float. Defaults to 0.5 (mid-grey).

    Returns:
        The images with one square erased each.

    Reference:
        DeVries and Taylor, "Improved regularization of convolutional neural
        networks with Cutout", arXiv 2017.
    """
    height, width, _ = _static_hwc(images)
    batch = tf.shape(images)[0]
    size_h, size_w = _pixels(size, height), _pixels(size, width)
    seed_y, seed_x = _split(make_seed(seed), 2)
    cy = _randint(seed_y, batch, 0, height - 1)
    cx = _randint(seed_x, batch, 0, width - 1)
    y0, x0 = cy - size_h // 2, cx - size_w // 2
    mask = _box_mask(height, width, y0, y0 + size_h, x0, x0 + size_w)
    return tf.where(mask, tf.cast(fill_value, images.dtype), images)


def random_erasing(
    images, seed, rate=0.5, area=(0.02, 0.4), aspect=(0.3, 3.3), fill_value=None
):
    """Random erasing: a box of random area and aspect, inside the image.

    Args:
        images: float tensor `[B, H, W, C]` in `[0, 1]`.
        seed: int or `[2]` tensor. Stateless RNG seed.
        rate: float. Probability that an image is erased. Defaults to 0.5.
        area: tuple. Range of the box area as a fraction of the image.
            Defaults to `(0.02, 0.4)`.
        aspect: tuple. Range of the box's height/width ratio (sampled
            log-uniformly). Defaults to `(0.3, 3.3)`.
        fill_value: float, or None for uniform noise in `[0, 1]`. Defaults to
            None.

    Returns:
        The images with (at most) one box erased each.

    Reference:
        Zhong et al., "Random erasing data augmentation", AAAI 2020.
    """
    height, width, channels = _static_hwc(images)
    batch = tf.shape(images)[0]
    seeds = _split(make_seed(seed), 6)
    frac = _uniform(seeds[0], batch, area[0], area[1])
    ratio = tf.exp(_uniform(seeds[1], batch, math.log(aspect[0]), math.log(aspect[1])))
    box_h = tf.sqrt(frac * ratio * height * width)
    box_w = tf.sqrt(frac / ratio * height * width)
    box_h = tf.clip_by_value(tf.cast(tf.round(box_h), tf.int32), 1, height)
    box_w = tf.clip_by_value(tf.cast(tf.round(box_w), tf.int32), 1, width)
    y0 = tf.cast(
        tf.floor(_uniform(seeds[2], batch) * tf.cast(height - box_h + 1, tf.float32)),
        tf.int32,
    )
    x0 = tf.cast(
        tf.floor(_uniform(seeds[3], batch) * tf.cast(width - box_w + 1, tf.float32)),
        tf.int32,
    )
    mask = _box_mask(height, width, y0, y0 + box_h, x0, x0 + box_w)
    mask &= _per_image(_bernoulli(seeds[4], batch, rate))
    if fill_value is None:
        fill = _random([batch, height, width, channels], seeds[5])
    else:
        fill = tf.cast(fill_value, images.dtype)
    return tf.where(mask, fill, images)


def _partners(seed, batch):
    """A random permutation of the batch: image i is mixed with image p[i]."""
    return _permutation(seed, batch)


def _check_labels(labels, policy):
    if labels is None or not labels.dtype.is_floating:
        dtype = None if labels is None else labels.dtype.name
        raise UserInputError(
            f"Augmentation {policy!r} mixes labels, so it needs one-hot float "
            f"labels [batch, num_classes]. Received: labels dtype={dtype}"
        )


def mixup(images, labels, seed, alpha=0.2):
    """Mixup: each image blended with a random partner from the batch.

    Each image draws its own weight `lam ~ Beta(alpha, alpha)`; the one-hot
    labels are mixed with the same weight, so they still sum to 1.

    Args:
        images: float tensor `[B, H, W, C]`.
        labels: float tensor `[B, num_classes]` (one-hot or soft).
        seed: int or `[2]` tensor. Stateless RNG seed.
        alpha: float > 0. Beta parameter. Defaults to 0.2.

    Returns:
        `(images, labels)`, mixed.

    Reference:
        Zhang et al., "mixup: Beyond empirical risk minimization", ICLR 2018.
    """
    _check_labels(labels, "mixup")
    batch = tf.shape(images)[0]
    seed_perm, seed_lam = _split(make_seed(seed), 2)
    partner = _partners(seed_perm, batch)
    lam = _beta(seed_lam, [batch], alpha)
    mixed = _per_image(lam) * images + _per_image(1.0 - lam) * tf.gather(
        images, partner
    )
    lam = tf.cast(lam[:, None], labels.dtype)
    return mixed, lam * labels + (1.0 - lam) * tf.gather(labels, partner)


def cutmix(images, labels, seed, alpha=1.0):
    """CutMix: a box from a random partner pasted into each image.

    Each image draws `lam ~ Beta(alpha, alpha)`; the box has sides
    `sqrt(1 - lam)` of the image's, a uniform centre, and is clipped to the
    image. Labels are mixed by the exact fraction of pasted pixels.

    Args:
        images: float tensor `[B, H, W, C]`.
        labels: float tensor `[B, num_classes]` (one-hot or soft).
        seed: int or `[2]` tensor. Stateless RNG seed.
        alpha: float > 0. Beta parameter. Defaults to 1.0.

    Returns:
        `(images, labels)`, mixed.

    Reference:
        Yun et al., "CutMix: Regularization strategy to train strong
        classifiers with localizable features", ICCV 2019.
    """
    _check_labels(labels, "cutmix")
    height, width, _ = _static_hwc(images)
    batch = tf.shape(images)[0]
    seed_perm, seed_lam, seed_y, seed_x = _split(make_seed(seed), 4)
    partner = _partners(seed_perm, batch)
    cut = tf.sqrt(1.0 - _beta(seed_lam, [batch], alpha))
    box_h = tf.cast(tf.round(cut * height), tf.int32)
    box_w = tf.cast(tf.round(cut * width), tf.int32)
    cy = _randint(seed_y, batch, 0, height - 1)
    cx = _randint(seed_x, batch, 0, width - 1)
    y0 = tf.clip_by_value(cy - box_h // 2, 0, height)
    y1 = tf.clip_by_value(cy - box_h // 2 + box_h, 0, height)
    x0 = tf.clip_by_value(cx - box_w // 2, 0, width)
    x1 = tf.clip_by_value(cx - box_w // 2 + box_w, 0, width)
    mask = _box_mask(height, width, y0, y1, x0, x1)
    mixed = tf.where(mask, tf.gather(images, partner), images)
    pasted = tf.cast((y1 - y0) * (x1 - x0), labels.dtype) / float(height * width)
    pasted = pasted[:, None]
    return mixed, (1.0 - pasted) * labels + pasted * tf.gather(labels, partner)


# --------------------------------------------------------------- RandAugment

_RA_OPS = (
    "identity",
    "autocontrast",
    "equalize",
    "rotate",
    "solarize",
    "color",
    "posterize",
    "contrast",
    "brightness",
    "sharpness",
    "shear_x",
    "shear_y",
    "translate_x",
    "translate_y",
)
_RA = {name: i for i, name in enumerate(_RA_OPS)}


def _ra_round(images, seed, m, bits, fill_value):
    """One RandAugment round: every image applies its own operation.

    Images are dealt to the 14 operations by a random permutation of
    `14 * ceil(B / 14)` slots (the extra slots are padding), so slot `j`
    applies operation `j % 14`: each image's operation is uniform, and each
    operation runs on only its own ~B/14 images instead of the whole batch.
    """
    height, width, channels = _static_hwc(images)
    batch = tf.shape(images)[0]
    count = len(_RA_OPS)
    group = (batch + count - 1) // count
    slots = group * count
    seed_perm, seed_sign = _split(seed, 2)
    source = _permutation(seed_perm, slots)
    dealt = tf.gather(images, tf.minimum(source, batch - 1))
    dealt = tf.reshape(dealt, [group, count, height, width, channels])
    sign = tf.where(_bernoulli(seed_sign, slots, 0.5), -1.0, 1.0)
    sign = tf.reshape(sign, [group, count])

    def column(name):
        return dealt[:, _RA[name]], sign[:, _RA[name]]

    def enhance(name, degenerate):
        x, s = column(name)
        return _blend(degenerate(x), x, _per_image(1.0 + s * 0.9 * m))

    def warp(name, transform):
        x, s = column(name)
        one, zero = tf.ones_like(s), tf.zeros_like(s)
        rows = transform(s, one, zero)
        return affine_transform(x, tf.stack(rows, axis=1), "nearest", fill_value)

    def rotation(s, one, zero):
        angle = s * math.radians(30.0) * m
        return [tf.cos(angle), tf.sin(angle), zero, -tf.sin(angle), tf.cos(angle), zero]

    shear_x = lambda s, one, zero: [one, 0.3 * m * s, zero, zero, one, zero]  # noqa: E731
    shear_y = lambda s, one, zero: [one, zero, zero, 0.3 * m * s, one, zero]  # noqa: E731
    shift_x = lambda s, one, zero: [one, zero, -0.45 * m * width * s, zero, one, zero]  # noqa: E731
    shift_y = lambda s, one, zero: [one, zero, zero, zero, one, -0.45 * m * height * s]  # noqa: E731

    def mean_gray(x):
        return tf.reduce_mean(_grayscale(x), axis=[1, 2, 3], keepdims=True)

    outputs = {
        "identity": column("identity")[0],
        "autocontrast": autocontrast(column("autocontrast")[0]),
        "equalize": equalize(column("equalize")[0]),
        "rotate": warp("rotate", rotation),
        "solarize": solarize(column("solarize")[0], 1.0 - m),
        "color": enhance("color", _grayscale),
        "posterize": posterize(column("posterize")[0], bits),
        "contrast": enhance("contrast", mean_gray),
        "brightness": enhance("brightness", tf.zeros_like),
        "sharpness": enhance("sharpness", _smooth),
        "shear_x": warp("shear_x", shear_x),
        "shear_y": warp("shear_y", shear_y),
        "translate_x": warp("translate_x", shift_x),
        "translate_y": warp("translate_y", shift_y),
    }
    out = tf.stack([outputs[name] for name in _RA_OPS], axis=1)
    out = tf.reshape(out, [slots, height, width, channels])
    return tf.gather(out, tf.argsort(source)[:batch])


def rand_augment(images, seed, num_ops=2, magnitude=0.5, fill_value=0.0):
    """RandAugment, batched: every image gets its own `num_ops` operations.

    The 14 operations of the paper (identity, autocontrast, equalize, rotate,
    solarize, color, posterize, contrast, brightness, sharpness, shear x/y,
    translate x/y) at one shared magnitude, with a random sign per image for
    the signed ones. Ranges at `magnitude=1` follow torchvision at its top
    bin: rotate 30 degrees, shear 0.3, translate 0.45 of the side, enhance
    factors 1 +- 0.9, posterize to 4 bits, solarize threshold 0.

    Batched without per-image branches or wasted work: in each round a
    random permutation deals the images to the 14 operations, about B/14
    each, so every operation runs once on its own sub-batch (geometry as one
    nearest-neighbour gather, as torchvision's default) and the results are
    gathered back into place. Each image's operation is uniform over the 14
    and independent of its content; across a batch the counts are balanced
    (sampling without replacement) rather than independent. Computing every
    operation on the whole batch and selecting per image costs ~14x more and
    makes XLA on CPU re-compute the warp inside each consumer (~20x slower,
    measured).

    Args:
        images: float tensor `[B, H, W, C]` in `[0, 1]`, 1 or 3 channels.
        seed: int or `[2]` tensor. Stateless RNG seed.
        num_ops: int. Operations applied to each image (N). Defaults to 2.
        magnitude: float in `[0, 1]`. Strength of every operation (M, as
            the fraction of its range, like keras and keras-cv's
            `RandAugment`). Defaults to 0.5.
        fill_value: float. Value of pixels uncovered by geometry. Defaults to
            0.

    Returns:
        The augmented images, same shape, in `[0, 1]`.

    Example:

    ```python
    images = rand_augment(images, seed=batch_seed(0, epoch, step), num_ops=2)
    ```

    Reference:
        Cubuk et al., "RandAugment: Practical automated data augmentation with
        a reduced search space", NeurIPS workshops 2020.
    """
    if not 0.0 <= float(magnitude) <= 1.0:
        raise ValueError(
            f"`magnitude` must be in [0, 1]. Received: magnitude={magnitude}"
        )
    _static_hwc(images)
    m = float(magnitude)
    bits = 8 - int(round(4 * m))
    seed = make_seed(seed)
    for i in range(int(num_ops)):
        key = tf.random.experimental.stateless_fold_in(seed, i, alg=_ALG)
        images = _ra_round(images, tf.cast(key, tf.int32), m, bits, fill_value)
    return tf.clip_by_value(images, 0.0, 1.0)


# ------------------------------------------------------------------ policies


@dataclasses.dataclass(frozen=True)
class Policy:
    """A named augmentation policy: a batched function and its parameters.

    `fn(images, labels, seed, **params) -> (images, labels)`; policies that do
    not mix labels pass them through untouched (they may be None).
    """

    name: str
    fn: Callable
    defaults: dict
    description: str
    mixes_labels: bool = False

    def resolve(self, params: dict) -> dict:
        """Defaults overridden by `params`; unknown names raise."""
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise UserInputError(
                f"Unknown parameter(s) {unknown} for augmentation policy "
                f"{self.name!r}; valid parameters: {sorted(self.defaults)}. "
                f"Received: {params}"
            )
        return {**self.defaults, **params}


def _base(images, seed, use_flip, max_offset, padding):
    seed_flip, seed_shift = _split(seed, 2)
    if use_flip:
        images = flip(images, seed_flip)
    if max_offset:
        images = translate(images, seed_shift, max_offset, padding)
    return images


_BASE = {"flip": True, "max_offset": 0.125, "padding": "zero"}


def _none(images, labels, seed):
    return images, labels


def _flip_policy(images, labels, seed, vertical):
    return flip(images, seed, horizontal=True, vertical=vertical), labels


def _translate_policy(images, labels, seed, max_offset, padding):
    return translate(images, seed, max_offset, padding), labels


def _flip_translate(images, labels, seed, flip, max_offset, padding):
    return _base(images, seed, flip, max_offset, padding), labels


def _randaugment(images, labels, seed, flip, max_offset, padding, num_ops, magnitude):
    seed_base, seed_ra = _split(seed, 2)
    images = _base(images, seed_base, flip, max_offset, padding)
    return rand_augment(images, seed_ra, num_ops, magnitude), labels


def _cutout(images, labels, seed, flip, max_offset, padding, size, fill_value):
    seed_base, seed_cut = _split(seed, 2)
    images = _base(images, seed_base, flip, max_offset, padding)
    return cutout(images, seed_cut, size, fill_value), labels


def _erasing(images, labels, seed, flip, max_offset, padding, rate):
    seed_base, seed_erase = _split(seed, 2)
    images = _base(images, seed_base, flip, max_offset, padding)
    return random_erasing(images, seed_erase, rate=rate), labels


def _mixup(images, labels, seed, flip, max_offset, padding, alpha):
    seed_base, seed_mix = _split(seed, 2)
    images = _base(images, seed_base, flip, max_offset, padding)
    return mixup(images, labels, seed_mix, alpha)


def _cutmix(images, labels, seed, flip, max_offset, padding, alpha):
    seed_base, seed_mix = _split(seed, 2)
    images = _base(images, seed_base, flip, max_offset, padding)
    return cutmix(images, labels, seed_mix, alpha)


_POLICIES: dict[str, Policy] = {
    p.name: p
    for p in (
        Policy("none", _none, {}, "No augmentation."),
        Policy("flip", _flip_policy, {"vertical": False}, "Random horizontal flip."),
        Policy(
            "translate",
            _translate_policy,
            {"max_offset": 0.125, "padding": "zero"},
            "Random translation (pad, random crop).",
        ),
        Policy(
            "flip-translate",
            _flip_translate,
            dict(_BASE),
            "Horizontal flip + translation by up to 1/8 (the CIFAR baseline).",
        ),
        Policy(
            "flip-crop",
            _flip_translate,
            {**_BASE, "max_offset": 1 / 14},
            "Horizontal flip + translation by up to 1/14 (2 px at 28x28).",
        ),
        Policy(
            "randaugment",
            _randaugment,
            {**_BASE, "num_ops": 2, "magnitude": 0.5},
            "flip-translate, then RandAugment (N=2, M=0.5).",
        ),
        Policy(
            "cutout",
            _cutout,
            {**_BASE, "size": 0.5, "fill_value": 0.5},
            "flip-translate, then Cutout of half the side.",
        ),
        Policy(
            "erasing",
            _erasing,
            {**_BASE, "rate": 0.5},
            "flip-translate, then random erasing with noise.",
        ),
        Policy(
            "mixup",
            _mixup,
            {**_BASE, "alpha": 0.2},
            "flip-translate, then mixup (alpha 0.2); tf.data only.",
            mixes_labels=True,
        ),
        Policy(
            "cutmix",
            _cutmix,
            {**_BASE, "alpha": 1.0},
            "flip-translate, then CutMix (alpha 1.0); tf.data only.",
            mixes_labels=True,
        ),
    )
}


def list_policies() -> list[str]:
    """Names of the augmentation policies, e.g. for `--augment` or a tuner.

    Returns:
        A list of str, `"none"` first.
    """
    return list(_POLICIES)


def get_policy(name: str) -> Policy:
    """The `Policy` registered under `name`.

    Raises:
        UserInputError: for an unknown name, listing the valid ones.
    """
    if name not in _POLICIES:
        raise UserInputError(
            f"Unknown augmentation policy {name!r}; choose one of "
            f"{list_policies()}. Received: policy={name!r}"
        )
    return _POLICIES[name]


def augment_batch(images, labels, policy, seed, **params):
    """Applies a named policy to one batch: the code both placements share.

    Args:
        images: float tensor `[B, H, W, C]` in `[0, 1]`.
        labels: float one-hot tensor `[B, num_classes]`, or None for policies
            that do not mix labels.
        policy: str. A name from `list_policies()`.
        seed: int or `[2]` tensor. Stateless RNG seed of this batch.
        **params: overrides of the policy's parameters (e.g. `magnitude=0.7`).

    Returns:
        `(images, labels)`, augmented.

    Example:

    ```python
    x, y = augment_batch(x, y, "cutmix", seed=batch_seed(0, 0, 0), alpha=0.5)
    ```
    """
    spec = get_policy(policy)
    arguments = spec.resolve(params)
    if not images.dtype.is_floating:
        raise UserInputError(
            "Augmentation expects float images in [0, 1]. "
            f"Received: images dtype={images.dtype.name}"
        )
    return spec.fn(images, labels, make_seed(seed), **arguments)


_COMPILED: dict = {}


def _compiled(policy, arguments, jit_compile):
    """One `tf.function` per (policy, parameters), so XLA compiles it once.

    Pipelines rebuilt every epoch (`epoch=e`) or for validation reuse it
    instead of paying the compilation again.
    """
    key = (policy, repr(sorted(arguments.items())), bool(jit_compile))
    if key not in _COMPILED:
        fn = _POLICIES[policy].fn

        @tf.function(jit_compile=jit_compile)
        def apply(images, labels, seed):
            return fn(images, labels, seed, **arguments)

        _COMPILED[key] = apply
    return _COMPILED[key]


def augment_dataset(ds, policy, *, seed, epoch=None, jit_compile=True, **params):
    """Augments a batched `tf.data.Dataset` of `(images, labels)`.

    Maps one (XLA-compiled) call per batch, after `batch`, with
    `num_parallel_calls=AUTOTUNE`. Each batch gets its own stateless seed,
    `batch_seed(seed, epoch, index)`:

    - `epoch=None` (default): the epoch is how many times this dataset has
      been iterated, so `model.fit(ds, epochs=E)` sees different draws every
      epoch while two runs with the same `seed` see the same ones. (The count
      comes from `tf.data.Dataset.random(rerandomize_each_iteration=True)`,
      which also depends on TensorFlow's global seed, as set by
      `keras.utils.set_random_seed`.)
    - `epoch=e` (an int): draws are a pure function of `(seed, e, index)`,
      identical on every iteration; for pipelines rebuilt per epoch.

    Args:
        ds: `tf.data.Dataset` of batches `(images, labels, ...)`: float32
            images `[B, H, W, C]` in `[0, 1]` and float one-hot labels
            `[B, num_classes]`; further elements (sample weights) pass
            through. A dataset of images alone works for policies that do not
            mix labels.
        policy: str. A name from `list_policies()`.
        seed: int. Augmentation seed.
        epoch: int or None. See above. Defaults to None.
        jit_compile: bool. Compile the per-batch function with XLA. Defaults
            to True.
        **params: overrides of the policy's parameters.

    Returns:
        A `tf.data.Dataset` with the same structure and cardinality.

    Raises:
        UserInputError: unknown policy or parameter, non-float images, or a
            label-mixing policy without float labels.

    Example:

    ```python
    train = ds.shuffle(10_000).batch(256)
    train = augment_dataset(train, "randaugment", seed=0, magnitude=0.3)
    train = train.prefetch(tf.data.AUTOTUNE)
    ```
    """
    spec = get_policy(policy)
    arguments = spec.resolve(params)
    if policy == "none":
        return ds
    element = ds.element_spec
    has_labels = isinstance(element, tuple)
    images_spec = element[0] if has_labels else element
    if not images_spec.dtype.is_floating:
        raise UserInputError(
            "Augmentation expects float images in [0, 1]. "
            f"Received: images dtype={images_spec.dtype.name}"
        )
    if spec.mixes_labels and (
        not has_labels or len(element) < 2 or not element[1].dtype.is_floating
    ):
        raise UserInputError(
            f"Augmentation {policy!r} mixes labels, so the dataset must yield "
            "(images, one-hot float labels). "
            f"Received: element_spec={element}"
        )

    apply = _compiled(policy, arguments, jit_compile)
    base = make_seed(seed)

    if epoch is None:
        counters = tf.data.Dataset.zip(
            tf.data.Dataset.counter(),
            tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True),
        )

        def key_of(index, draw):
            return batch_seed(base, tf.cast(draw, tf.int32), index)

    else:
        counters = tf.data.Dataset.counter()

        def key_of(index):
            return batch_seed(base, epoch, index)

    def augment(element, counter):
        key = key_of(*counter) if isinstance(counter, tuple) else key_of(counter)
        if not has_labels:
            images, _ = apply(element, None, key)
            return images
        labels = element[1] if spec.mixes_labels else None
        images, mixed = apply(element[0], labels, key)
        if spec.mixes_labels:
            return (images, mixed, *element[2:])
        return (images, *element[1:])

    zipped = tf.data.Dataset.zip(ds, counters)
    return zipped.map(augment, num_parallel_calls=tf.data.AUTOTUNE)


# --------------------------------------------------------------------- layer


@keras.saving.register_keras_serializable(package="keras_convnets")
class Augment(keras.layers.Layer):
    """Training-only augmentation layer for the model input.

    Applies an image-only policy when `training=True` (as in `model.fit`) and
    passes images through untouched at inference (`predict`, `evaluate`).
    Place it first so that `model.fit(..., jit_compile=True)` fuses the
    augmentation into the train step on the accelerator. A fresh seed per
    step comes from a `keras.random.SeedGenerator` (its state is a
    non-trainable variable, so it is saved with the model).

    `mixup` and `cutmix` also mix the labels, which a layer never sees; they
    raise here: use `augment_dataset` for them.

    Args:
        policy: str. A name from `list_policies()`. Defaults to
            `"flip-translate"`.
        seed: int or None. Seed of the layer's generator. Defaults to None.
        params: dict. Overrides of the policy's parameters. Keyword arguments
            that are parameters of the policy are folded into it, so
            `Augment("randaugment", 0, magnitude=0.3)` works.
        **kwargs: other `keras.layers.Layer` arguments (`name`, ...).

    Example:

    ```python
    inputs = keras.Input((32, 32, 3))
    x = Augment("randaugment", seed=0, num_ops=2)(inputs)
    ```
    """

    def __init__(self, policy="flip-translate", seed=None, params=None, **kwargs):
        spec = get_policy(policy)
        params = dict(params or {})
        for key in list(kwargs):
            if key in spec.defaults:
                params[key] = kwargs.pop(key)
        if spec.mixes_labels:
            raise UserInputError(
                f"Augmentation {policy!r} mixes labels, so it cannot run as a "
                "model layer (a layer never sees the labels); use "
                f"augment_dataset(ds, {policy!r}, seed=...) in the tf.data "
                f"pipeline instead. Received: policy={policy!r}"
            )
        super().__init__(**kwargs)
        self.policy = policy
        self.seed = seed
        self.params = params
        self._arguments = spec.resolve(params)
        self._fn = spec.fn
        self.seed_generator = keras.random.SeedGenerator(seed, name="seed_generator")

    def call(self, inputs, training=True):
        if not training or self.policy == "none":
            return inputs
        key = tf.cast(self.seed_generator.next(), tf.int32)
        images = tf.cast(inputs, tf.float32)
        images, _ = self._fn(images, None, key, **self._arguments)
        return tf.cast(images, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"policy": self.policy, "seed": self.seed, "params": self.params})
        return config

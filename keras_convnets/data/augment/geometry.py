"""Geometry: shifts, translation, canvas placement, flips, affine warps.

All built from gathers (no `ImageProjectiveTransformV3`, which has no XLA
kernel), so every op compiles with `tf.function(jit_compile=True)`.
"""

from __future__ import annotations

import math

import tensorflow as tf

from keras_convnets.data.augment.random import (
    bernoulli_per_image,
    make_seed,
    randint_per_image,
    split,
    uniform_per_image,
)
from keras_convnets.data.augment.utils import per_image, pixels, static_hwc

__all__ = [
    "affine_transform",
    "canvas_place",
    "flip",
    "rotate",
    "shear",
    "shift",
    "translate",
]

_PADDINGS = ("zero", "reflect")
_INTERPOLATIONS = ("nearest", "bilinear")


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(
            f"`{name}` must be one of {list(choices)}. Received: {name}={value!r}"
        )


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
    height, width, _ = static_hwc(images)
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
    max_dy = pixels(max_offset, height)
    max_dx = pixels(max_offset, width)
    seed_y, seed_x = split(seed, 2)
    return randint_per_image(seed_y, batch, -max_dy, max_dy), randint_per_image(
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
    height, width, _ = static_hwc(images)
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
    height, width, _ = static_hwc(images)
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
        seed_y, seed_x = split(make_seed(seed), 2)
        oy = randint_per_image(seed_y, batch, 0, canvas_h - height)
        ox = randint_per_image(seed_x, batch, 0, canvas_w - width)
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
    seed_h, seed_v = split(make_seed(seed), 2)
    if horizontal:
        coin = per_image(bernoulli_per_image(seed_h, batch, rate))
        images = tf.where(coin, tf.reverse(images, axis=[2]), images)
    if vertical:
        coin = per_image(bernoulli_per_image(seed_v, batch, rate))
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
    height, width, channels = static_hwc(images)
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
    angle = uniform_per_image(make_seed(seed), tf.shape(images)[0], -limit, limit)
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
    seed_x, seed_y = split(make_seed(seed), 2)
    sx = uniform_per_image(seed_x, batch, -max_shear, max_shear)
    sy = uniform_per_image(seed_y, batch, -max_shear, max_shear)
    one, zero = tf.ones_like(sx), tf.zeros_like(sx)
    transforms = tf.stack([one, sx, zero, sy, one, zero], axis=1)
    return affine_transform(images, transforms, interpolation, fill_value)

"""Shape and broadcasting helpers shared by the augmentation modules."""

from __future__ import annotations

import tensorflow as tf

__all__ = ["per_image", "pixels", "static_hwc"]


def static_hwc(images):
    """`(height, width, channels)` of a `[B, H, W, C]` batch; they must be static."""
    shape = images.shape
    if shape.rank != 4 or None in shape[1:]:
        raise ValueError(
            "Augmentation expects a batch of images with static "
            f"[batch, height, width, channels] shape. Received: shape={shape}"
        )
    return int(shape[1]), int(shape[2]), int(shape[3])


def per_image(values):
    """Per-image values `[B]` as `[B, 1, 1, 1]`, to broadcast over images."""
    return tf.reshape(values, [-1, 1, 1, 1])


def pixels(size, extent):
    """An int, or a float fraction of `extent`, as a whole number of pixels."""
    if isinstance(size, float):
        return int(round(size * extent))
    return int(size)

"""Erasing and mixing: Cutout, random erasing, mixup and CutMix.

mixup and CutMix also mix the (one-hot, float) labels, so they run in
`tf.data` only (`augment_dataset`), never in a model layer.
"""

from __future__ import annotations

import math

import tensorflow as tf

from keras_convnets.data.augment.random import (
    bernoulli_per_image,
    beta,
    make_seed,
    permutation,
    randint_per_image,
    split,
    uniform,
    uniform_per_image,
)
from keras_convnets.data.augment.utils import per_image, pixels, static_hwc
from keras_convnets.errors import UserInputError

__all__ = ["cutmix", "cutout", "mixup", "random_erasing"]


def _box_mask(height, width, y0, y1, x0, x1):
    """`[B, H, W, 1]` boolean mask of the per-image boxes `[y0, y1) x [x0, x1)`."""
    rows = tf.range(height)[None, :]
    cols = tf.range(width)[None, :]
    inside_r = (rows >= y0[:, None]) & (rows < y1[:, None])
    inside_c = (cols >= x0[:, None]) & (cols < x1[:, None])
    return (inside_r[:, :, None] & inside_c[:, None, :])[..., None]


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
    height, width, _ = static_hwc(images)
    batch = tf.shape(images)[0]
    size_h, size_w = pixels(size, height), pixels(size, width)
    seed_y, seed_x = split(make_seed(seed), 2)
    cy = randint_per_image(seed_y, batch, 0, height - 1)
    cx = randint_per_image(seed_x, batch, 0, width - 1)
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
    height, width, channels = static_hwc(images)
    batch = tf.shape(images)[0]
    seeds = split(make_seed(seed), 6)
    frac = uniform_per_image(seeds[0], batch, area[0], area[1])
    ratio = tf.exp(
        uniform_per_image(seeds[1], batch, math.log(aspect[0]), math.log(aspect[1]))
    )
    box_h = tf.sqrt(frac * ratio * height * width)
    box_w = tf.sqrt(frac / ratio * height * width)
    box_h = tf.clip_by_value(tf.cast(tf.round(box_h), tf.int32), 1, height)
    box_w = tf.clip_by_value(tf.cast(tf.round(box_w), tf.int32), 1, width)
    y0 = tf.cast(
        tf.floor(
            uniform_per_image(seeds[2], batch) * tf.cast(height - box_h + 1, tf.float32)
        ),
        tf.int32,
    )
    x0 = tf.cast(
        tf.floor(
            uniform_per_image(seeds[3], batch) * tf.cast(width - box_w + 1, tf.float32)
        ),
        tf.int32,
    )
    mask = _box_mask(height, width, y0, y0 + box_h, x0, x0 + box_w)
    mask &= per_image(bernoulli_per_image(seeds[4], batch, rate))
    if fill_value is None:
        fill = uniform([batch, height, width, channels], seeds[5])
    else:
        fill = tf.cast(fill_value, images.dtype)
    return tf.where(mask, fill, images)


def _partners(seed, batch):
    """A random permutation of the batch: image i is mixed with image p[i]."""
    return permutation(seed, batch)


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
    seed_perm, seed_lam = split(make_seed(seed), 2)
    partner = _partners(seed_perm, batch)
    lam = beta(seed_lam, [batch], alpha)
    mixed = per_image(lam) * images + per_image(1.0 - lam) * tf.gather(images, partner)
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
    height, width, _ = static_hwc(images)
    batch = tf.shape(images)[0]
    seed_perm, seed_lam, seed_y, seed_x = split(make_seed(seed), 4)
    partner = _partners(seed_perm, batch)
    cut = tf.sqrt(1.0 - beta(seed_lam, [batch], alpha))
    box_h = tf.cast(tf.round(cut * height), tf.int32)
    box_w = tf.cast(tf.round(cut * width), tf.int32)
    cy = randint_per_image(seed_y, batch, 0, height - 1)
    cx = randint_per_image(seed_x, batch, 0, width - 1)
    y0 = tf.clip_by_value(cy - box_h // 2, 0, height)
    y1 = tf.clip_by_value(cy - box_h // 2 + box_h, 0, height)
    x0 = tf.clip_by_value(cx - box_w // 2, 0, width)
    x1 = tf.clip_by_value(cx - box_w // 2 + box_w, 0, width)
    mask = _box_mask(height, width, y0, y1, x0, x1)
    mixed = tf.where(mask, tf.gather(images, partner), images)
    pasted = tf.cast((y1 - y0) * (x1 - x0), labels.dtype) / float(height * width)
    pasted = pasted[:, None]
    return mixed, (1.0 - pasted) * labels + pasted * tf.gather(labels, partner)

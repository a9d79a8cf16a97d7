"""Stateless, per-image randomness that draws the same in graph mode and XLA.

Every augmentation op takes a seed (an int or a `[2]` integer tensor) and
derives its draws from it with the helpers here, one RNG algorithm (`ALG`)
everywhere, so the same seed always gives the same batch in either placement.
"""

from __future__ import annotations

import math

import tensorflow as tf

__all__ = [
    "ALG",
    "batch_seed",
    "bernoulli_per_image",
    "beta",
    "gamma",
    "make_seed",
    "permutation",
    "randint_per_image",
    "split",
    "uniform",
    "uniform_per_image",
]


# One RNG algorithm everywhere: "auto_select" may pick a different generator
# under XLA than in graph mode (different draws, and on CPU a slow one).
ALG = "philox"


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
        make_seed(seed), tf.cast(epoch, tf.int32), alg=ALG
    )
    key = tf.random.experimental.stateless_fold_in(
        key, tf.cast(index, tf.int32), alg=ALG
    )
    return tf.cast(key, tf.int32)


def split(seed, num):
    """`num` independent `[2]` int32 seeds derived from `seed`."""
    return tf.unstack(
        tf.cast(tf.random.experimental.stateless_split(seed, num, alg=ALG), tf.int32)
    )


def uniform(shape, seed, minval=0.0, maxval=1.0):
    """Uniform floats in `[minval, maxval)`, identical in graph mode and XLA.

    `tf.random.stateless_uniform` turns the same random bits into different
    floats under XLA than in graph mode; bounded integers agree, so floats are
    made from 24-bit integers here.
    """
    bits = tf.random.stateless_uniform(
        shape, seed, minval=0, maxval=1 << 24, dtype=tf.int32, alg=ALG
    )
    unit = tf.cast(bits, tf.float32) * (1.0 / (1 << 24))
    return minval + (maxval - minval) * unit


def permutation(seed, size):
    """A random permutation of `range(size)` (sorting random 31-bit keys)."""
    keys = tf.random.stateless_uniform(
        [size], seed, minval=0, maxval=(1 << 31) - 1, dtype=tf.int32, alg=ALG
    )
    return tf.argsort(keys, stable=True)


def uniform_per_image(seed, batch, minval=0.0, maxval=1.0):
    """One uniform float in `[minval, maxval)` per image: shape `[batch]`."""
    return uniform([batch], seed, minval, maxval)


def randint_per_image(seed, batch, minval, maxval):
    """Per-image integers in `[minval, maxval]` (both inclusive)."""
    return tf.random.stateless_uniform(
        [batch], seed, minval=minval, maxval=maxval + 1, dtype=tf.int32, alg=ALG
    )


def bernoulli_per_image(seed, batch, rate):
    """One boolean per image, True with probability `rate`: shape `[batch]`."""
    return uniform_per_image(seed, batch) < rate


def beta(seed, shape, alpha):
    """Beta(alpha, alpha) samples from two XLA-friendly gamma draws."""
    seed_a, seed_b = split(seed, 2)
    ga = gamma(seed_a, shape, alpha)
    gb = gamma(seed_b, shape, alpha)
    return ga / tf.maximum(ga + gb, 1e-12)


def gamma(seed, shape, alpha, trials=8):
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
    seed_r, seed_t, seed_u, seed_boost = split(seed, 4)
    # Box-Muller, from the portable uniform draws.
    radius = tf.sqrt(-2.0 * tf.math.log(1.0 - uniform([trials, *shape], seed_r)))
    normal = radius * tf.cos(2.0 * math.pi * uniform([trials, *shape], seed_t))
    acceptance = uniform([trials, *shape], seed_u)
    v = (1.0 + c * normal) ** 3
    log_v = tf.math.log(tf.maximum(v, 1e-30))
    accept = (v > 0.0) & (
        tf.math.log(tf.maximum(acceptance, 1e-30))
        < 0.5 * normal**2 + d - d * v + d * log_v
    )
    first = tf.argmax(tf.cast(accept, tf.int32), axis=0)
    chosen = tf.gather(tf.transpose(d * v), first[..., None], batch_dims=1)[..., 0]
    fallback = tf.fill(tf.shape(chosen), d)
    sample = tf.where(tf.reduce_any(accept, axis=0), chosen, fallback)
    boost = 1.0 - uniform(shape, seed_boost)
    return sample * boost ** (1.0 / alpha)

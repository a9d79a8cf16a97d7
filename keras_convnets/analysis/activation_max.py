"""Activation maximization: the input a unit or a class likes best.

Gradient ascent on the image, from gray plus a little seeded noise. Plain
ascent finds high-frequency patterns; jitter (a random shift each step) and
an occasional Gaussian blur regularize towards images a person can read.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from keras_convnets.analysis import _common
from keras_convnets.errors import UserInputError


def _gaussian_kernel(sigma: float, channels: int):
    radius = max(1, int(np.ceil(2 * sigma)))
    x = np.arange(-radius, radius + 1, dtype="float32")
    g = np.exp(-(x**2) / (2 * sigma**2))
    g /= g.sum()
    kernel = np.outer(g, g)[:, :, None, None]
    return tf.constant(np.tile(kernel, (1, 1, channels, 1)))


def activation_maximization(
    model,
    layer_name: str | None = None,
    units=None,
    class_index=None,
    steps: int = 150,
    learning_rate: float = 0.05,
    jitter: int = 2,
    blur_every: int = 4,
    blur_sigma: float = 0.5,
    l2_decay: float = 1e-4,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Images that maximize units of a layer, or class scores, by gradient ascent.

    All requested units are optimized together as one batch, one image each.
    The objective for a conv unit is the channel's mean activation over
    positions; for a class, its pre-softmax score. Each step normalizes the
    gradient, jitters the image by up to `jitter` pixels, and every
    `blur_every` steps blurs it; pixels stay in [0, 1].

    Args:
        model: a `keras.Model` taking images in [0, 1].
        layer_name: str. The layer of the units; None for class scores.
        units: int or sequence of int. Channels of `layer_name`.
        class_index: int or sequence of int. Classes (with `layer_name=None`).
        steps: int. Gradient-ascent steps. Defaults to 150.
        learning_rate: float. Step size on the normalized gradient.
        jitter: int. Maximum random shift in pixels per step (0 for none).
        blur_every: int. Blur every this many steps (0 for never).
        blur_sigma: float. Gaussian blur width in pixels.
        l2_decay: float. Pulls pixels towards gray each step.
        seed: int. Seed of the initial noise and the jitter.

    Returns:
        `(images, activations)`: float32 `(n, H, W, C)` in [0, 1]; the final
        objective value of each.

    Example:

    ```python
    images, values = activation_maximization(model, "stage2_conv1", units=range(8))
    classes, _ = activation_maximization(model, class_index=range(10))
    ```

    Reference:
        Erhan et al., "Visualizing Higher-Layer Features of a Deep Network",
        2009; Yosinski et al., "Understanding Neural Networks Through Deep
        Visualization", ICML 2015 workshop.
    """
    if steps < 1:
        raise UserInputError(f"steps must be >= 1. Received: steps={steps}")
    model = _common.float32_model(model)
    if layer_name is None:
        targets = class_index if class_index is not None else units
        scorer = _common.logits_model(model)
        count = scorer.outputs[-1].shape[-1]
        what = "class"
    else:
        targets = units
        layer = _common.get_layer(model, layer_name)
        scorer = _common.submodel(model, layer.output)
        count = layer.output.shape[-1]
        what = f"unit of {layer_name!r}"
    if targets is None:
        targets = range(count)
    targets = [int(t) for t in np.ravel(np.asarray(targets))]
    bad = [t for t in targets if not 0 <= t < count]
    if bad or not targets:
        raise UserInputError(
            f"No such {what}: there are {count} (0..{count - 1}). Received: {bad or targets}"
        )
    height, width, channels = model.input_shape[1:]
    if height is None or width is None:
        raise UserInputError("activation_maximization needs a fixed input size.")
    rng = np.random.default_rng(seed)
    x = tf.Variable(
        0.5 + 0.05 * rng.standard_normal((len(targets), height, width, channels)),
        dtype=tf.float32,
    )
    select = tf.one_hot(targets, count)  # (n, count)
    kernel = _gaussian_kernel(blur_sigma, channels)
    radius = kernel.shape[0] // 2

    def objective(images):
        out = scorer(images, training=False)
        if len(out.shape) == 4:
            out = tf.reduce_mean(out, axis=(1, 2))
        return tf.reduce_sum(out * select, axis=-1)

    @tf.function
    def step(shift, blur):
        with tf.GradientTape() as tape:
            shifted = tf.roll(x, shift, axis=(1, 2))
            values = objective(shifted)
            total = tf.reduce_sum(values)
        grad = tape.gradient(total, x)
        std = tf.math.reduce_std(grad, axis=(1, 2, 3), keepdims=True)
        grad = grad / (std + 1e-8)
        new = x + learning_rate * grad - l2_decay * (x - 0.5)
        if blur:
            r = radius
            padded = tf.pad(new, [[0, 0], [r, r], [r, r], [0, 0]], mode="REFLECT")
            new = tf.nn.depthwise_conv2d(padded, kernel, [1, 1, 1, 1], "VALID")
        x.assign(tf.clip_by_value(new, 0.0, 1.0))
        return values

    for i in range(steps):
        shift = rng.integers(-jitter, jitter + 1, size=2) if jitter else (0, 0)
        blur = bool(blur_every) and (i + 1) % blur_every == 0
        step(tf.constant(shift, tf.int32), blur)
    final = objective(x).numpy()
    return x.numpy(), final


def plot_activation_max(images, values, labels, title):
    """A grid of optimized images, each titled with its label and value."""
    fig, axes = _common.grid_axes(len(images), title=title, cell=1.5)
    for ax, image, value, label in zip(axes, images, values, labels):
        _common.show_image(ax, image, f"{label}: {value:.3g}")
    return fig

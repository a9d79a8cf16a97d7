"""Zero-cost proxies: score an untrained network in one forward (and backward) pass.

A training proxy (a few epochs on a fraction of the data) costs tens of
CPU-seconds per cell; these cost well under one. `benchmarks/search_fidelity.py`
measures how well each ranks cells against a real training.

- `naswot_score` (Mellor, Turner, Storkey and Crowley, "Neural architecture
  search without training", ICML 2021): the binary ReLU activation codes of a
  batch of real images; a network that separates the images into more distinct
  linear regions at initialization scores higher. Score: `log |det K|` with
  `K[i, j]` the number of ReLUs on which images `i` and `j` agree.
- `synflow_score` (Tanaka, Kunin, Yamins and Ganguli, "Pruning neural networks
  without any data by iteratively conserving synaptic flow", NeurIPS 2020;
  as a NAS proxy: Abdelfattah et al., "Zero-cost proxies for lightweight NAS",
  ICLR 2021): with every weight replaced by its absolute value and an all-ones
  input, `R` is the sum of the logits and the score is
  `sum over parameters |theta * dR/dtheta|`. Data-free. Returned as a log.

Both read the network as built; neither trains it. Weights are restored after
`synflow_score`.
"""

from __future__ import annotations

import math

import keras
import numpy as np

from keras_convnets.errors import UserInputError


def _is_relu(layer) -> bool:
    if isinstance(layer, keras.layers.ReLU):
        return True
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", None) == "relu"


def relu_layers(model: keras.Model) -> list:
    """The layers of `model` whose output is a ReLU (`Activation("relu")`,
    `ReLU`, or a layer built with `activation="relu"`), in order."""
    return [layer for layer in model.layers if _is_relu(layer)]


def activation_kernel(model: keras.Model, images) -> np.ndarray:
    """NASWOT's `K`: `K[i, j]` = ReLUs on which images `i` and `j` agree.

    Args:
        model: a functional `keras.Model` with ReLU layers.
        images: array `(n, height, width, channels)`, n >= 2.

    Returns:
        `(n, n)` float64 array.
    """
    layers = relu_layers(model)
    if not layers:
        raise UserInputError(
            f"naswot needs ReLU activations; model {model.name!r} has none."
        )
    images = np.asarray(images, dtype="float32")
    if images.ndim != 4 or len(images) < 2:
        raise UserInputError(
            "naswot needs a batch of at least 2 images (n, height, width, "
            f"channels). Received: shape={images.shape}"
        )
    probe = keras.Model(model.inputs, [layer.output for layer in layers])
    outputs = probe(images, training=False)
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    n = len(images)
    kernel = np.zeros((n, n), dtype=np.float64)
    for output in outputs:
        codes = (np.asarray(output).reshape(n, -1) > 0).astype(np.float64)
        kernel += codes @ codes.T + (1.0 - codes) @ (1.0 - codes).T
    return kernel


def naswot_score(model: keras.Model, images) -> float:
    """`log |det K|` of the activation kernel (`activation_kernel`).

    Higher is better. `-inf` if two images share every activation code (K is
    then singular: the network cannot tell them apart).

    Example:

    ```python
    model = get_model("nas_cell_net", (28, 28, 1), 10, genotype=g, cells=1)
    score = naswot_score(model, x_train[:64])
    ```
    """
    sign, logdet = np.linalg.slogdet(activation_kernel(model, images))
    return float(logdet) if sign > 0 else -math.inf


def _logits_head(model):
    """`(features model, dense)` if the model ends in a softmax Dense, else None."""
    last = model.layers[-1]
    if (
        isinstance(last, keras.layers.Dense)
        and getattr(last.activation, "__name__", None) == "softmax"
    ):
        return keras.Model(model.inputs, last.input), last
    return None


def synflow_score(model: keras.Model) -> float:
    """`log` of SynFlow's saliency summed over every trainable weight.

    The network is linearized as SynFlow prescribes: every trainable variable
    is replaced by its absolute value, the input is all ones, and `R` is the
    sum of the logits (the pre-softmax output of a softmax Dense head, else
    the outputs). The score `sum |theta * dR/dtheta|` grows with the number of
    layers and the width the signal flows through. Weights are restored.

    Returns:
        float. `log(score)`; higher is better.
    """
    import tensorflow as tf

    variables = list(model.trainable_variables)
    if not variables:
        raise UserInputError(
            f"synflow needs trainable weights; {model.name!r} has none."
        )
    saved = [v.numpy() for v in variables]
    head = _logits_head(model)
    ones = tf.ones((1,) + tuple(model.inputs[0].shape[1:]), dtype="float32")
    try:
        for v, value in zip(variables, saved):
            v.assign(np.abs(value))
        with tf.GradientTape() as tape:
            if head is None:
                r = tf.reduce_sum(tf.cast(model(ones, training=False), tf.float64))
            else:
                features, dense = head
                logits = tf.matmul(features(ones, training=False), dense.kernel)
                if dense.bias is not None:
                    logits = logits + dense.bias
                r = tf.reduce_sum(tf.cast(logits, tf.float64))
        grads = tape.gradient(r, [v.value for v in variables])
        total = 0.0
        for v, g in zip(variables, grads):
            if g is not None:
                total += float(
                    np.sum(np.abs(np.asarray(v.numpy(), np.float64) * np.asarray(g)))
                )
    finally:
        for v, value in zip(variables, saved):
            v.assign(value)
    return math.log(total) if total > 0 else -math.inf

"""LeNet-5: alternating convolution and subsampling, as in the Neocognitron."""

from __future__ import annotations

import keras
from keras import layers

from keras_convnets.errors import UserInputError
from keras_convnets.models._common import (
    check_input_size,
    register_variant,
    valid_min_size,
)


def lenet5(
    input_shape,
    num_classes,
    stackwise_num_filters=(6, 16),
    kernel_size=5,
    dense_units=(120, 84),
    activation="tanh",
    pooling="avg",
    name="lenet5",
):
    """Builds LeNet-5: [5x5 conv, 2x2 subsampling] twice, then dense layers.

    Fukushima's Neocognitron alternates feature-extracting "S" layers and
    shift-tolerant "C" layers; LeNet-5 trains that layout by gradient descent.
    At `(32, 32, 1)` with 10 classes it has the paper's 61,706 weights (C5
    is a 5x5 convolution over a 5x5 map, i.e. the dense layer of 120 units
    here; the RBF output layer is a softmax).

    Args:
        input_shape: tuple. `(height, width, channels)`; at least 16x16
            with the default kernel size.
        num_classes: int. Number of classes.
        stackwise_num_filters: sequence of int. Filters of each conv stage.
            Defaults to `(6, 16)`.
        kernel_size: int. Convolution size (valid padding). Defaults to 5.
        dense_units: sequence of int. Hidden dense layers. Defaults to
            `(120, 84)`.
        activation: str. Hidden activation. Defaults to `"tanh"`.
        pooling: str. `"avg"` (the paper's subsampling) or `"max"`.
            Defaults to `"avg"`.
        name: str. Model name.

    Returns:
        A `keras.Model`.

    Example:

    ```python
    model = lenet5((32, 32, 1), 10)  # 61,706 weights
    ```

    Reference:
        LeCun et al., "Gradient-based learning applied to document
        recognition", Proc. IEEE 1998; Fukushima, "Neocognitron", Biological
        Cybernetics 1980.
    """
    if pooling not in ("avg", "max"):
        raise UserInputError(
            f'pooling must be "avg" or "max". Received: pooling={pooling!r}'
        )
    steps = [(kernel_size, 1, "valid"), (2, 2, "valid")] * len(stackwise_num_filters)
    check_input_size(input_shape, valid_min_size(steps), name)
    pool = layers.AveragePooling2D if pooling == "avg" else layers.MaxPooling2D
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for stage, filters in enumerate(stackwise_num_filters, start=1):
        x = layers.Conv2D(
            filters, kernel_size, activation=activation, name=f"conv{stage}"
        )(x)
        x = pool(2, name=f"pool{stage}")(x)
    x = layers.Flatten(name="flatten")(x)
    for i, units in enumerate(dense_units, start=1):
        x = layers.Dense(units, activation=activation, name=f"fc{i}")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


register_variant(
    lenet5,
    "lenet5",
    description="LeNet-5: two [5x5 conv, 2x2 subsampling] stages, 120-84 dense "
    "(LeCun et al. 1998).",
    default_input_shape=(32, 32, 1),
)

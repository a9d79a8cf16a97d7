"""Baselines: a dense multilayer perceptron and a small two-stage convnet."""

from __future__ import annotations

import keras
from keras import layers

from keras_convnets.errors import UserInputError
from keras_convnets.models._common import check_input_size
from keras_convnets.models.registry import register_model


@register_model(description="Dense baseline: flatten, hidden ReLU layers, softmax.")
def mlp(input_shape, num_classes, units=(512, 256), dropout=0.2, name="mlp"):
    """A multilayer perceptron: every pixel connected to every hidden unit.

    The lecture's starting point (part 1): no locality, no weight sharing, so the
    net must learn translation structure from data alone.

    Args:
        input_shape: tuple. `(height, width, channels)`.
        num_classes: int. Number of classes.
        units: sequence of int. Width of each hidden layer. Defaults to
            `(512, 256)`.
        dropout: float. Dropout rate after each hidden layer. Defaults to 0.2.
        name: str. Model name.

    Returns:
        A `keras.Model`.

    Example:

    ```python
    model = mlp((28, 28, 1), 10, units=(128,))
    ```
    """
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Flatten(name="flatten")(inputs)
    for i, width in enumerate(units):
        x = layers.Dense(width, activation="relu", name=f"dense{i + 1}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"dropout{i + 1}")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


@register_model(
    description="Two [conv-conv-maxpool] stages with BatchNorm, then a dense head."
)
def simple_cnn(
    input_shape,
    num_classes,
    stackwise_num_filters=(32, 64),
    convs_per_stage=2,
    kernel_size=3,
    dense_units=128,
    dropout=0.3,
    batch_norm=True,
    name="simple_cnn",
):
    """A small convnet: two stages of 3x3 convolutions and 2x2 max-pooling.

    Locality and weight sharing (lecture part 2) in their simplest form; the
    default model of `keras-convnets train`.

    Args:
        input_shape: tuple. `(height, width, channels)`.
        num_classes: int. Number of classes.
        stackwise_num_filters: sequence of int. Filters of each stage. Defaults
            to `(32, 64)`.
        convs_per_stage: int, or a sequence of int (one per stage).
            Convolutions before each pooling. Defaults to 2.
        kernel_size: int. Convolution kernel size. Defaults to 3.
        dense_units: int. Width of the hidden dense layer (0 for none).
            Defaults to 128.
        dropout: float. Dropout rate before the classifier. Defaults to 0.3.
        batch_norm: bool. BatchNorm after each convolution. Defaults to True.
        name: str. Model name.

    Returns:
        A `keras.Model`.

    Example:

    ```python
    model = simple_cnn((28, 28, 1), 10, stackwise_num_filters=(16, 32))
    ```

    Reference:
        LeCun et al., "Gradient-based learning applied to document
        recognition", Proc. IEEE 1998.
    """
    # Each stage halves the size with a 2x2 max-pool; the last must see >= 2x2.
    check_input_size(input_shape, 2 ** len(stackwise_num_filters), name)
    if isinstance(convs_per_stage, int):
        convs_per_stage = (convs_per_stage,) * len(stackwise_num_filters)
    if len(convs_per_stage) != len(stackwise_num_filters):
        raise UserInputError(
            "convs_per_stage needs one count per stage of stackwise_num_filters. "
            f"Received: convs_per_stage={tuple(convs_per_stage)}, "
            f"stackwise_num_filters={tuple(stackwise_num_filters)}"
        )
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for stage, (filters, convs) in enumerate(
        zip(stackwise_num_filters, convs_per_stage), start=1
    ):
        for i in range(1, convs + 1):
            prefix = f"stage{stage}_conv{i}"
            x = layers.Conv2D(
                filters,
                kernel_size,
                padding="same",
                use_bias=not batch_norm,
                name=prefix,
            )(x)
            if batch_norm:
                x = layers.BatchNormalization(name=f"{prefix}_bn")(x)
            x = layers.ReLU(name=f"{prefix}_relu")(x)
        x = layers.MaxPooling2D(2, name=f"stage{stage}_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    if dense_units:
        x = layers.Dense(dense_units, activation="relu", name="dense")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


register_model(
    simple_cnn,
    name="simple_cnn_tiny",
    description="Tiny simple_cnn (8/16 filters) for tests and smoke runs.",
    stackwise_num_filters=(8, 16),
    convs_per_stage=1,
    dense_units=32,
)

"""AlexNet: the ImageNet 2012 winner, as one stream."""

from __future__ import annotations

import keras
from keras import layers

from keras_convnets.models._common import (
    check_input_size,
    register_variant,
    valid_min_size,
)

_STEPS = [
    (11, 4, "valid"),
    (3, 2, "valid"),
    (5, 1, "same"),
    (3, 2, "valid"),
    (3, 1, "same"),
    (3, 1, "same"),
    (3, 1, "same"),
    (3, 2, "valid"),
]


def alexnet(
    input_shape,
    num_classes,
    dense_units=(4096, 4096),
    dropout=0.5,
    batch_norm=False,
    name="alexnet",
):
    """Builds AlexNet: five convolutions (11x11/4 to 3x3), three max-pools, three dense layers.

    The single-stream form of the two-GPU network (no grouped convolutions):
    at `(227, 227, 3)` with 1000 classes it has 62,378,344 weights. Local
    response normalization is left out (Keras has none, and later work found
    it of little use); `batch_norm=True` puts batch norm in its place.

    Args:
        input_shape: tuple. `(height, width, channels)`; at least 51x51.
        num_classes: int. Number of classes.
        dense_units: sequence of int. Hidden dense layers. Defaults to
            `(4096, 4096)`.
        dropout: float. Dropout before each hidden dense layer. Defaults to
            0.5.
        batch_norm: bool. Batch norm after each convolution. Defaults to
            False.
        name: str. Model name.

    Returns:
        A `keras.Model`.

    Example:

    ```python
    model = alexnet((227, 227, 3), 1000)
    ```

    Reference:
        Krizhevsky, Sutskever and Hinton, "ImageNet classification with deep
        convolutional neural networks", NeurIPS 2012.
    """
    check_input_size(input_shape, valid_min_size(_STEPS), name)
    inputs = keras.Input(shape=input_shape, name="image")

    def conv(x, filters, kernel, stride, padding, label):
        x = layers.Conv2D(
            filters,
            kernel,
            strides=stride,
            padding=padding,
            use_bias=not batch_norm,
            name=label,
        )(x)
        if batch_norm:
            x = layers.BatchNormalization(name=f"{label}_bn")(x)
        return layers.Activation("relu", name=f"{label}_relu")(x)

    x = conv(inputs, 96, 11, 4, "valid", "conv1")
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    x = conv(x, 256, 5, 1, "same", "conv2")
    x = layers.MaxPooling2D(3, strides=2, name="pool2")(x)
    x = conv(x, 384, 3, 1, "same", "conv3")
    x = conv(x, 384, 3, 1, "same", "conv4")
    x = conv(x, 256, 3, 1, "same", "conv5")
    x = layers.MaxPooling2D(3, strides=2, name="pool5")(x)
    x = layers.Flatten(name="flatten")(x)
    for i, units in enumerate(dense_units, start=6):
        if dropout:
            x = layers.Dropout(dropout, name=f"fc{i}_dropout")(x)
        x = layers.Dense(units, activation="relu", name=f"fc{i}")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


register_variant(
    alexnet,
    "alexnet",
    description="AlexNet: 5 convs (11x11/4 first), 3 max-pools, 4096-4096 dense "
    "(Krizhevsky et al. 2012).",
    default_input_shape=(227, 227, 3),
)

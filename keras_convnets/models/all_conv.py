"""All-CNN: strided convolutions instead of max-pooling (Springenberg et al.)."""

from __future__ import annotations

import keras
from keras import layers

from keras_convnets.models._common import (
    check_input_size,
    register_variant,
    valid_min_size,
)


def all_conv(
    input_shape,
    num_classes,
    stackwise_num_filters=(96, 192),
    top_filters=192,
    input_dropout=0.2,
    dropout=0.5,
    batch_norm=False,
    name="all_conv",
):
    """Builds All-CNN-C: every max-pool replaced by a 3x3 convolution with stride 2.

    Per stage: two 3x3 convolutions and a third with stride 2 where a
    max-pool would be. Then a 3x3 (valid), two 1x1 convolutions (the last
    with one filter per class) and global average pooling: no dense layer.
    At `(32, 32, 3)` with 10 classes it has 1,369,738 weights (the paper's
    "1.3 M").

    Args:
        input_shape: tuple. `(height, width, channels)`; at least
            `2 ** stages * 2 + 1` pixels (9 for two stages).
        num_classes: int. Number of classes.
        stackwise_num_filters: sequence of int. Filters per stage. Defaults
            to `(96, 192)`.
        top_filters: int. Filters of the 3x3 and first 1x1 top convolutions.
            Defaults to 192.
        input_dropout: float. Dropout on the input image. Defaults to 0.2.
        dropout: float. Dropout after each strided convolution. Defaults to
            0.5.
        batch_norm: bool. Batch norm after each convolution (not in the
            paper). Defaults to False.
        name: str. Model name.

    Returns:
        A `keras.Model`.

    Example:

    ```python
    model = all_conv((32, 32, 3), 10)
    ```

    Reference:
        Springenberg et al., "Striving for simplicity: The all convolutional
        net", ICLR workshop 2015.
    """
    steps = [(3, 2, "same")] * len(stackwise_num_filters) + [(3, 1, "valid")]
    check_input_size(input_shape, valid_min_size(steps), name)

    def conv(x, filters, kernel, stride, padding, label, relu=True):
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
        return layers.Activation("relu", name=f"{label}_relu")(x) if relu else x

    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    if input_dropout:
        x = layers.Dropout(input_dropout, name="input_dropout")(x)
    for stage, filters in enumerate(stackwise_num_filters, start=1):
        x = conv(x, filters, 3, 1, "same", f"stage{stage}_conv1")
        x = conv(x, filters, 3, 1, "same", f"stage{stage}_conv2")
        x = conv(x, filters, 3, 2, "same", f"stage{stage}_strided")
        if dropout:
            x = layers.Dropout(dropout, name=f"stage{stage}_dropout")(x)
    x = conv(x, top_filters, 3, 1, "valid", "top_conv3x3")
    x = conv(x, top_filters, 1, 1, "valid", "top_conv1x1")
    x = conv(x, num_classes, 1, 1, "valid", "class_conv", relu=False)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = layers.Activation("softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


register_variant(
    all_conv,
    "all_conv",
    description="All-CNN-C: strided 3x3 convs instead of max-pooling, no dense "
    "layer (Springenberg et al. 2015).",
    default_input_shape=(32, 32, 3),
)
register_variant(
    all_conv,
    "all_conv_tiny",
    description="Tiny All-CNN-C (8/16 filters) for tests.",
    default_input_shape=(32, 32, 3),
    stackwise_num_filters=(8, 16),
    top_filters=16,
)

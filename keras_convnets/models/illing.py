"""Illing's net: conv stride 2, max-pool stride 1 (lecture part 3)."""

from __future__ import annotations

import keras
from keras import layers

from keras_convnets.errors import UserInputError
from keras_convnets.models._common import (
    check_input_size,
    register_variant,
    valid_min_size,
)


def illing(
    input_shape,
    num_classes,
    stackwise_num_filters=(32, 64, 128),
    pad_to=None,
    name="illing",
):
    """Builds Illing's net: stages of [3x3 conv stride 2, ReLU, 2x2 max-pool stride 1].

    No padding anywhere. On a 40x40 input (e.g. MNIST digits zero-padded to
    40x40): 19x19x32, 18x18x32, 8x8x64, 7x7x64, 3x3x128, then a 2x2x128 = 512
    representation that barely changes when the digit shifts by a pixel or
    two: the strided convolution plus the stride-one pooling give local
    translation invariance. A softmax layer reads the representation.

    Args:
        input_shape: tuple. `(height, width, channels)`; at least 29x29 for
            three stages (or anything up to `pad_to`).
        num_classes: int. Number of classes.
        stackwise_num_filters: sequence of int. Filters per stage. Defaults
            to `(32, 64, 128)`.
        pad_to: int or None. Zero-pad the input symmetrically to
            `pad_to x pad_to` first (28 -> 40 as in the lecture). Defaults to
            None.
        name: str. Model name.

    Returns:
        A `keras.Model`; its layer `"representation"` is the flattened last
        stage.

    Example:

    ```python
    model = illing((28, 28, 1), 10, pad_to=40)
    model.get_layer("stage3_pool").output.shape  # (None, 2, 2, 128)
    ```

    Reference:
        Lecture part 3 (B. Illing's network, EPFL); Springenberg et al.,
        "Striving for simplicity: The all convolutional net", 2015.
    """
    steps = [(3, 2, "valid"), (2, 1, "valid")] * len(stackwise_num_filters)
    min_size = valid_min_size(steps)
    height, width = int(input_shape[0]), int(input_shape[1])
    if pad_to is not None:
        if height > pad_to or width > pad_to:
            raise UserInputError(
                f"{name} pads inputs to {pad_to}x{pad_to}; the input is larger. "
                f"Received: input_shape={tuple(input_shape)}, pad_to={pad_to}"
            )
        if pad_to < min_size:
            raise UserInputError(
                f"{name} needs pad_to >= {min_size}. Received: pad_to={pad_to}"
            )
        check_input_size(input_shape, 1, name)
    else:
        check_input_size(input_shape, min_size, name)
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    if pad_to is not None and (height, width) != (pad_to, pad_to):
        top, left = (pad_to - height) // 2, (pad_to - width) // 2
        x = layers.ZeroPadding2D(
            ((top, pad_to - height - top), (left, pad_to - width - left)),
            name="pad",
        )(x)
    for stage, filters in enumerate(stackwise_num_filters, start=1):
        x = layers.Conv2D(
            filters, 3, strides=2, activation="relu", name=f"stage{stage}_conv"
        )(x)
        x = layers.MaxPooling2D(2, strides=1, name=f"stage{stage}_pool")(x)
    x = layers.Flatten(name="representation")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


register_variant(
    illing,
    "illing",
    description="Lecture part 3: 3 x [3x3 conv stride 2, 2x2 max-pool stride 1], "
    "40x40 -> 2x2x128.",
    default_input_shape=(40, 40, 1),
)
register_variant(
    illing,
    "illing_28",
    description="illing for 28x28 inputs, zero-padded to 40x40 as in the lecture.",
    default_input_shape=(28, 28, 1),
    pad_to=40,
)

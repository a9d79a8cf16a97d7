"""DeepFace: convolutions at the bottom, locally connected layers near the top."""

from __future__ import annotations

import keras
from keras import layers

from keras_convnets.errors import UserInputError
from keras_convnets.layers.locally_connected import LocallyConnected2D
from keras_convnets.models._common import (
    check_input_size,
    register_variant,
    valid_min_size,
)


def deepface(
    input_shape,
    num_classes,
    stackwise_num_filters=(32, 16, 16, 16, 16),
    stackwise_kernel_sizes=(11, 9, 9, 7, 5),
    dense_units=4096,
    dropout=0.5,
    name="deepface",
):
    """Builds DeepFace: C1, max-pool M2, C3, locally connected L4-L6, dense F7, F8.

    On aligned faces each region has its own statistics (eyes above mouth),
    so the upper layers drop weight sharing: `LocallyConnected2D` keeps the
    patchy connectivity of a convolution but learns separate filters for
    every position. With `(152, 152, 3)` inputs most weights sit in L4-L6
    and F7. L5 has stride 2; everything is valid padding.

    Args:
        input_shape: tuple. `(height, width, channels)`; at least 71x71 with
            the default kernel sizes.
        num_classes: int. Number of identities (classes).
        stackwise_num_filters: 5 ints. Filters of C1, C3, L4, L5, L6.
        stackwise_kernel_sizes: 5 ints. Kernel sizes of C1, C3, L4, L5, L6.
            Defaults to `(11, 9, 9, 7, 5)`.
        dense_units: int. Width of F7, the face representation. Defaults to
            4096.
        dropout: float. Dropout on F7. Defaults to 0.5.
        name: str. Model name.

    Returns:
        A `keras.Model`.

    Example:

    ```python
    model = deepface((152, 152, 3), 4030)
    ```

    Reference:
        Taigman et al., "DeepFace: Closing the gap to human-level performance
        in face verification", CVPR 2014.
    """
    if len(stackwise_num_filters) != 5 or len(stackwise_kernel_sizes) != 5:
        raise UserInputError(
            "stackwise_num_filters and stackwise_kernel_sizes need 5 entries "
            "(C1, C3, L4, L5, L6). Received: "
            f"stackwise_num_filters={stackwise_num_filters}, "
            f"stackwise_kernel_sizes={stackwise_kernel_sizes}"
        )
    k1, k3, k4, k5, k6 = stackwise_kernel_sizes
    f1, f3, f4, f5, f6 = stackwise_num_filters
    steps = [
        (k1, 1, "valid"),
        (3, 2, "valid"),
        (k3, 1, "valid"),
        (k4, 1, "valid"),
        (k5, 2, "valid"),
        (k6, 1, "valid"),
    ]
    check_input_size(input_shape, valid_min_size(steps), name)
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Conv2D(f1, k1, activation="relu", name="c1")(inputs)
    x = layers.MaxPooling2D(3, strides=2, name="m2")(x)
    x = layers.Conv2D(f3, k3, activation="relu", name="c3")(x)
    x = LocallyConnected2D(f4, k4, activation="relu", name="l4")(x)
    x = LocallyConnected2D(f5, k5, strides=2, activation="relu", name="l5")(x)
    x = LocallyConnected2D(f6, k6, activation="relu", name="l6")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(dense_units, activation="relu", name="f7")(x)
    if dropout:
        x = layers.Dropout(dropout, name="f7_dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


register_variant(
    deepface,
    "deepface",
    description="DeepFace: 2 convs, 3 locally connected layers, 4096-d F7 "
    "(Taigman et al. 2014).",
    default_input_shape=(152, 152, 3),
)
register_variant(
    deepface,
    "deepface_small",
    description="DeepFace layout with 5x5/3x3 kernels and a 256-d F7, for 32x32 "
    "inputs.",
    default_input_shape=(32, 32, 3),
    stackwise_kernel_sizes=(5, 3, 3, 3, 3),
    dense_units=256,
)

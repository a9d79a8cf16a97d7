"""VGG: stacks of 3x3 convolutions and 2x2 max-pooling, then dense layers."""

from __future__ import annotations

import keras
from keras import layers

from keras_convnets.errors import UserInputError
from keras_convnets.models._common import check_input_size, register_variant


def vgg(
    input_shape,
    num_classes,
    stackwise_num_filters=(64, 128, 256, 512, 512),
    stackwise_num_convs=(2, 2, 3, 3, 3),
    dense_units=(4096, 4096),
    dropout=0.5,
    batch_norm=False,
    name="vgg",
):
    """Builds a VGG net: stages of 3x3 "same" convolutions, each ended by a 2x2 max-pool.

    Two stacked 3x3 convolutions see a 5x5 patch with fewer weights than one
    5x5 filter, and add a nonlinearity. With the defaults and `(224, 224, 3)`
    inputs this is VGG-16 exactly as `keras.applications.VGG16` (138,357,544
    weights for 1000 classes). The classifier flattens the last feature map,
    so the dense layers grow with the input size.

    Args:
        input_shape: tuple. `(height, width, channels)`; height and width at
            least `2 ** len(stackwise_num_filters)`.
        num_classes: int. Number of classes.
        stackwise_num_filters: sequence of int. Filters per stage.
        stackwise_num_convs: sequence of int. 3x3 convolutions per stage
            (VGG-11: 1,1,2,2,2; VGG-13: 2,2,2,2,2; VGG-16: 2,2,3,3,3;
            VGG-19: 2,2,4,4,4).
        dense_units: sequence of int. Hidden dense layers. Defaults to
            `(4096, 4096)`.
        dropout: float. Dropout after each hidden dense layer (0 for none).
            Defaults to 0.5 (the paper; Keras applications has none, which
            does not change the weights).
        batch_norm: bool. Batch norm after each convolution (not in the
            paper). Defaults to False.
        name: str. Model name.

    Returns:
        A `keras.Model`.

    Example:

    ```python
    model = vgg((32, 32, 3), 10, stackwise_num_filters=(32, 64, 128),
                stackwise_num_convs=(2, 2, 2), dense_units=(256,))
    ```

    Reference:
        Simonyan and Zisserman, "Very deep convolutional networks for
        large-scale image recognition", ICLR 2015.
    """
    if len(stackwise_num_filters) != len(stackwise_num_convs):
        raise UserInputError(
            "stackwise_num_filters and stackwise_num_convs must have equal length. "
            f"Received: stackwise_num_filters={stackwise_num_filters}, "
            f"stackwise_num_convs={stackwise_num_convs}"
        )
    check_input_size(input_shape, 2 ** len(stackwise_num_filters), name)
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    stages = zip(stackwise_num_filters, stackwise_num_convs)
    for stage, (filters, convs) in enumerate(stages, start=1):
        for i in range(1, convs + 1):
            prefix = f"block{stage}_conv{i}"
            x = layers.Conv2D(
                filters,
                3,
                padding="same",
                use_bias=not batch_norm,
                activation=None if batch_norm else "relu",
                name=prefix,
            )(x)
            if batch_norm:
                x = layers.BatchNormalization(name=f"{prefix}_bn")(x)
                x = layers.Activation("relu", name=f"{prefix}_relu")(x)
        x = layers.MaxPooling2D(2, name=f"block{stage}_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    for i, units in enumerate(dense_units, start=1):
        x = layers.Dense(units, activation="relu", name=f"fc{i}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"fc{i}_dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


_CONVS = {
    11: (1, 1, 2, 2, 2),
    13: (2, 2, 2, 2, 2),
    16: (2, 2, 3, 3, 3),
    19: (2, 2, 4, 4, 4),
}
for _depth, _convs in _CONVS.items():
    register_variant(
        vgg,
        f"vgg{_depth}",
        description=(
            f"VGG-{_depth}: {sum(_convs)} 3x3 convs in 5 stages, 3 dense layers "
            "(Simonyan & Zisserman 2015)."
        ),
        default_input_shape=(224, 224, 3),
        stackwise_num_convs=_convs,
    )

register_variant(
    vgg,
    "vgg_small",
    description="VGG for 28x28/32x32 inputs: 3 stages of 2 convs (32-64-128), BN.",
    default_input_shape=(32, 32, 3),
    stackwise_num_filters=(32, 64, 128),
    stackwise_num_convs=(2, 2, 2),
    dense_units=(256,),
    batch_norm=True,
)
register_variant(
    vgg,
    "vgg_tiny",
    description="Tiny VGG (2 stages of one 8/16-filter conv) for tests.",
    default_input_shape=(32, 32, 3),
    stackwise_num_filters=(8, 16),
    stackwise_num_convs=(1, 1),
    dense_units=(32,),
)

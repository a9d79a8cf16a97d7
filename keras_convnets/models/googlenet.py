"""GoogLeNet (Inception-v1) and a small net of naive inception modules."""

from __future__ import annotations

import keras
from keras import layers

from keras_convnets.blocks.inception import (
    conv_relu,
    inception_module,
    naive_inception_module,
)
from keras_convnets.errors import UserInputError
from keras_convnets.models._common import check_input_size, register_variant

# Table 1 of the paper: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
GOOGLENET_MODULES = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}


def googlenet(
    input_shape,
    num_classes,
    width=1.0,
    stem="imagenet",
    batch_norm=False,
    dropout=0.4,
    name="googlenet",
):
    """Builds GoogLeNet: a conv stem, nine inception modules, global pooling.

    Inception modules 3a-3b, 4a-4e and 5a-5b of the paper's table 1, with
    3x3/2 max-pools between the groups. The auxiliary classifiers (a
    training aid) and local response normalization are left out. At
    `(224, 224, 3)` with 1000 classes it has about 7.0 M weights.

    Args:
        input_shape: tuple. `(height, width, channels)`; any size >= 1.
        num_classes: int. Number of classes.
        width: float. Multiplier of every filter count. Defaults to 1.0.
        stem: str. `"imagenet"` (7x7/2 conv, max-pool, 1x1 and 3x3 convs,
            max-pool: size / 8) or `"cifar"` (one 3x3 conv, for 28x28 and
            32x32 inputs). Defaults to `"imagenet"`.
        batch_norm: bool. Batch norm after every convolution. Defaults to
            False, as in the paper.
        dropout: float. Dropout before the classifier. Defaults to 0.4.
        name: str. Model name.

    Returns:
        A `keras.Model`.

    Example:

    ```python
    model = googlenet((32, 32, 3), 10, width=0.5, stem="cifar", batch_norm=True)
    ```

    Reference:
        Szegedy et al., "Going deeper with convolutions", CVPR 2015.
    """
    if stem not in ("imagenet", "cifar"):
        raise UserInputError(
            f'stem must be "imagenet" or "cifar". Received: stem={stem!r}'
        )
    if width <= 0:
        raise UserInputError(f"width must be > 0. Received: width={width}")
    check_input_size(input_shape, 1, name)

    def w(filters):
        return max(1, int(round(filters * width)))

    bn = batch_norm
    inputs = keras.Input(shape=input_shape, name="image")
    if stem == "imagenet":
        x = conv_relu(inputs, w(64), 7, strides=2, batch_norm=bn, name="conv1")
        x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
        x = conv_relu(x, w(64), 1, batch_norm=bn, name="conv2_reduce")
        x = conv_relu(x, w(192), 3, batch_norm=bn, name="conv2")
        x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool2")(x)
    else:
        x = conv_relu(inputs, w(192), 3, batch_norm=bn, name="conv1")
    for key, filters in GOOGLENET_MODULES.items():
        if key in ("4a", "5a"):
            x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"pool{key[0]}")(
                x
            )
        x = inception_module(
            x, *(w(f) for f in filters), batch_norm=bn, name=f"inception_{key}"
        )
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


def naive_inception_net(
    input_shape,
    num_classes,
    stem_filters=16,
    stackwise_filters=((16, 32, 8), (32, 64, 16)),
    name="naive_inception_net",
):
    """Builds a small net of naive inception modules, for comparison with GoogLeNet's.

    A 3x3 conv stem, then naive modules (parallel 1x1, 3x3, 5x5 conv and
    3x3 max-pool, concatenated) separated by 2x2 max-pools, global average
    pooling and softmax. Without 1x1 reductions the width grows with every
    module and the 5x5 branch dominates the cost (lecture part 7).

    Args:
        input_shape: tuple. `(height, width, channels)`; any size >= 1.
        num_classes: int. Number of classes.
        stem_filters: int. Filters of the stem conv. Defaults to 16.
        stackwise_filters: sequence of `(1x1, 3x3, 5x5)` filter triples, one
            per module.
        name: str. Model name.

    Returns:
        A `keras.Model`.

    Example:

    ```python
    model = naive_inception_net((32, 32, 3), 10)
    ```

    Reference:
        Szegedy et al., "Going deeper with convolutions", CVPR 2015, fig. 2a.
    """
    check_input_size(input_shape, 1, name)
    inputs = keras.Input(shape=input_shape, name="image")
    x = conv_relu(inputs, stem_filters, 3, name="conv1")
    for i, filters in enumerate(stackwise_filters, start=1):
        if i > 1:
            x = layers.MaxPooling2D(2, padding="same", name=f"pool{i}")(x)
        x = naive_inception_module(x, *filters, name=f"naive_inception_{i}")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


register_variant(
    googlenet,
    "googlenet",
    description="GoogLeNet / Inception-v1: 9 inception modules with 1x1 reductions "
    "(Szegedy et al. 2015).",
    default_input_shape=(224, 224, 3),
)
register_variant(
    googlenet,
    "googlenet_small",
    description="GoogLeNet at half width with a 3x3 stem and batch norm, for 32x32 "
    "inputs.",
    default_input_shape=(32, 32, 3),
    width=0.5,
    stem="cifar",
    batch_norm=True,
)
register_variant(
    googlenet,
    "googlenet_tiny",
    description="Tiny GoogLeNet (1/16 width, 3x3 stem) for tests.",
    default_input_shape=(32, 32, 3),
    width=1 / 16,
    stem="cifar",
    batch_norm=True,
)
register_variant(
    naive_inception_net,
    "naive_inception_small",
    description="Two naive inception modules (1x1/3x3/5x5/pool, no reductions), "
    "for 32x32 inputs.",
    default_input_shape=(32, 32, 3),
)

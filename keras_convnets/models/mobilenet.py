"""MobileNet: a stack of depthwise-separable convolution blocks."""

from __future__ import annotations

import keras
from keras import layers

from keras_convnets.blocks.separable import depthwise_separable_block
from keras_convnets.errors import UserInputError
from keras_convnets.models._common import check_input_size, register_variant

# (filters, stride) of the 13 depthwise-separable blocks of MobileNet v1.
MOBILENET_V1_BLOCKS = (
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
)


def mobilenet(
    input_shape,
    num_classes,
    alpha=1.0,
    stackwise_num_filters=tuple(f for f, _ in MOBILENET_V1_BLOCKS),
    stackwise_strides=tuple(s for _, s in MOBILENET_V1_BLOCKS),
    stem_filters=32,
    stem_stride=2,
    depth_multiplier=1,
    dropout=1e-3,
    name="mobilenet",
):
    """Builds MobileNet v1: a 3x3 conv stem, depthwise-separable blocks, softmax.

    Each block filters every channel on its own (3x3 depthwise) and then mixes
    channels (1x1 pointwise), about 8-9 times fewer multiplies than full 3x3
    convolutions. With the defaults it computes the function of
    `keras.applications.MobileNet` (4,253,864 weights at 1000 classes),
    including its padding: a strided block pads one row and column at the
    bottom and right and convolves without padding (on odd sizes this
    differs from "same" padding).

    Args:
        input_shape: tuple. `(height, width, channels)`; large enough that
            every strided block sees at least 2x2.
        num_classes: int. Number of classes.
        alpha: float. Width multiplier of every layer. Defaults to 1.0.
        stackwise_num_filters: sequence of int. Pointwise filters per block.
        stackwise_strides: sequence of int. Depthwise stride per block.
        stem_filters: int. Filters of the stem conv (times `alpha`).
            Defaults to 32.
        stem_stride: int. Stride of the stem conv (1 for small images).
            Defaults to 2.
        depth_multiplier: int. Depthwise outputs per channel. Defaults to 1.
        dropout: float. Dropout before the classifier. Defaults to 1e-3.
        name: str. Model name.

    Returns:
        A `keras.Model`.

    Example:

    ```python
    model = mobilenet((32, 32, 3), 10, alpha=0.5, stem_stride=1)
    ```

    Reference:
        Howard et al., "MobileNets: Efficient convolutional neural networks
        for mobile vision applications", arXiv:1704.04861, 2017.
    """
    if alpha <= 0:
        raise UserInputError(f"alpha must be > 0. Received: alpha={alpha}")
    if len(stackwise_num_filters) != len(stackwise_strides):
        raise UserInputError(
            "stackwise_num_filters and stackwise_strides must have equal length. "
            f"Received: stackwise_num_filters={stackwise_num_filters}, "
            f"stackwise_strides={stackwise_strides}"
        )
    check_input_size(input_shape, _min_size(stem_stride, stackwise_strides), name)
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Conv2D(
        int(stem_filters * alpha),
        3,
        strides=stem_stride,
        padding="same",
        use_bias=False,
        name="conv1",
    )(inputs)
    x = layers.BatchNormalization(name="conv1_bn")(x)
    x = layers.ReLU(6.0, name="conv1_relu")(x)
    blocks = zip(stackwise_num_filters, stackwise_strides)
    for i, (filters, stride) in enumerate(blocks, start=1):
        if stride != 1:
            x = layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"conv_pad_{i}")(x)
        x = depthwise_separable_block(
            x,
            int(filters * alpha),
            stride=stride,
            depth_multiplier=depth_multiplier,
            padding="same" if stride == 1 else "valid",
            name=f"conv_dw_{i}",
        )
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


def _min_size(stem_stride, strides):
    """Smallest input size: every strided block needs at least 2x2."""
    size = 1
    while True:
        current, ok = -(-size // stem_stride), True
        for stride in strides:
            if stride != 1:
                ok = ok and current >= 2
                current = (current + 1 - 3) // stride + 1
        if ok:
            return size
        size += 1


register_variant(
    mobilenet,
    "mobilenet",
    description="MobileNet v1: 13 depthwise-separable blocks (Howard et al. 2017).",
    default_input_shape=(224, 224, 3),
)
register_variant(
    mobilenet,
    "mobilenet_small",
    description="MobileNet v1 at alpha=0.5 with a stride-1 stem, for 32x32 inputs.",
    default_input_shape=(32, 32, 3),
    alpha=0.5,
    stem_stride=1,
)
register_variant(
    mobilenet,
    "mobilenet_tiny",
    description="Tiny MobileNet (3 blocks, 8-32 filters) for tests.",
    default_input_shape=(32, 32, 3),
    stackwise_num_filters=(16, 32, 32),
    stackwise_strides=(1, 2, 1),
    stem_filters=8,
)

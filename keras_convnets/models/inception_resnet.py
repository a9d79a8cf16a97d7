"""Inception-ResNet-v2: inception modules with scaled residual connections."""

from __future__ import annotations

import keras
from keras import layers

from keras_convnets.blocks.inception_resnet import (
    conv2d_bn,
    inception_resnet_a,
    inception_resnet_b,
    inception_resnet_c,
    inception_resnet_stem,
    reduction_a,
    reduction_b,
    scaled_filters,
)
from keras_convnets.errors import UserInputError
from keras_convnets.models._common import (
    check_input_size,
    register_variant,
    valid_min_size,
)

# Valid-padded steps of the stem and the two reductions (kernel, stride, pad).
_VALID_STEPS = [
    (3, 2, "valid"),
    (3, 1, "valid"),
    (3, 2, "valid"),
    (3, 1, "valid"),
    (3, 2, "valid"),
    (3, 2, "valid"),
    (3, 2, "valid"),
]


def inception_resnet_v2(
    input_shape,
    num_classes,
    stackwise_num_blocks=(10, 20, 10),
    stackwise_scales=(0.17, 0.1, 0.2),
    width=1.0,
    top_filters=1536,
    dropout=0.0,
    name="inception_resnet_v2",
):
    """Builds Inception-ResNet-v2: stem, A blocks, Reduction-A, B blocks, Reduction-B, C blocks.

    Laid out as `keras.applications.InceptionResNetV2` (55,873,736 weights
    at `(299, 299, 3)` with 1000 classes): 10 x A (35x35), 20 x B (17x17),
    10 x C (8x8, the last without ReLU), a 1x1 conv to 1536 channels, global
    average pooling, softmax.

    Args:
        input_shape: tuple. `(height, width, channels)`; height and width at
            least 75 (valid padding in the stem and reductions).
        num_classes: int. Number of classes.
        stackwise_num_blocks: triple of int. Blocks A, B and C. Defaults to
            `(10, 20, 10)`.
        stackwise_scales: triple of float. Residual scaling of blocks A, B,
            C. Defaults to `(0.17, 0.1, 0.2)`.
        width: float. Multiplier of all filter counts (for small variants).
            Defaults to 1.0.
        top_filters: int. Filters of the last 1x1 conv (times `width`).
            Defaults to 1536.
        dropout: float. Dropout before the classifier (the paper keeps 0.8,
            i.e. rate 0.2; Keras uses none). Defaults to 0.
        name: str. Model name.

    Returns:
        A `keras.Model`.

    Example:

    ```python
    model = inception_resnet_v2((299, 299, 3), 1000)
    ```

    Reference:
        Szegedy et al., "Inception-v4, Inception-ResNet and the impact of
        residual connections on learning", AAAI 2017.
    """
    if len(stackwise_num_blocks) != 3 or len(stackwise_scales) != 3:
        raise UserInputError(
            "stackwise_num_blocks and stackwise_scales need 3 entries (A, B, C). "
            f"Received: stackwise_num_blocks={stackwise_num_blocks}, "
            f"stackwise_scales={stackwise_scales}"
        )
    if any(int(n) < 1 for n in stackwise_num_blocks):
        raise UserInputError(
            "Each stage needs at least one block. "
            f"Received: stackwise_num_blocks={stackwise_num_blocks}"
        )
    check_input_size(input_shape, valid_min_size(_VALID_STEPS), name)
    num_a, num_b, num_c = stackwise_num_blocks
    scale_a, scale_b, scale_c = stackwise_scales
    inputs = keras.Input(shape=input_shape, name="image")
    x = inception_resnet_stem(inputs, width=width)
    for i in range(1, num_a + 1):
        x = inception_resnet_a(x, scale=scale_a, width=width, name=f"block35_{i}")
    x = reduction_a(x, width=width, name="mixed_6a")
    for i in range(1, num_b + 1):
        x = inception_resnet_b(x, scale=scale_b, width=width, name=f"block17_{i}")
    x = reduction_b(x, width=width, name="mixed_7a")
    for i in range(1, num_c + 1):
        last = i == num_c
        x = inception_resnet_c(
            x,
            scale=1.0 if last else scale_c,
            activation=None if last else "relu",
            width=width,
            name=f"block8_{i}",
        )
    x = conv2d_bn(x, scaled_filters(top_filters, width), 1, name="conv_7b")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


register_variant(
    inception_resnet_v2,
    "inception_resnet_v2",
    description="Inception-ResNet-v2: 10/20/10 scaled residual inception blocks "
    "(Szegedy et al. 2017).",
    default_input_shape=(299, 299, 3),
)
register_variant(
    inception_resnet_v2,
    "inception_resnet_tiny",
    description="Tiny Inception-ResNet-v2 (1 block per stage, 1/16 width) for tests.",
    default_input_shape=(75, 75, 3),
    stackwise_num_blocks=(1, 1, 1),
    width=1 / 16,
)

"""ResNets: stacks of residual blocks, post-activation (v1) and pre-activation (v2)."""

from __future__ import annotations

import keras
from keras import layers

from keras_convnets.blocks.residual import BN_EPSILON, basic_block, bottleneck_block
from keras_convnets.errors import UserInputError
from keras_convnets.models._common import check_input_size, register_variant
from keras_convnets.models.registry import register_model

_BLOCKS = {"basic": basic_block, "bottleneck": bottleneck_block}


def resnet(
    input_shape,
    num_classes,
    block_type="bottleneck",
    stackwise_num_blocks=(3, 4, 6, 3),
    stackwise_num_filters=(64, 128, 256, 512),
    stackwise_strides=(1, 2, 2, 2),
    preact=False,
    stride_block="first",
    stem="imagenet",
    stem_filters=64,
    use_bias=True,
    dropout=0.0,
    name="resnet",
):
    """Builds a ResNet: a stem, stages of residual blocks, global pooling, softmax.

    With the defaults it is ResNet-50, layer for layer and function for
    function `keras.applications.ResNet50` (25,636,712 weights for 1000
    classes). The `resnet*_v2` variants (`preact=True`,
    `stride_block="last"`, `stackwise_strides=(2, 2, 2, 1)`) compute
    `keras.applications.ResNet50V2`'s function: there the last block of each
    stage strides, with a 1x1 max-pool as its shortcut. A stage's first
    block has a projection shortcut when the shape changes. The ImageNet
    stem (7x7/2 conv, 3x3/2 max-pool) divides the size by 4; the CIFAR stem
    (one 3x3 conv) keeps it, for 28x28 and 32x32 inputs.

    Args:
        input_shape: tuple. `(height, width, channels)`; any size >= 1.
        num_classes: int. Number of classes.
        block_type: str. `"basic"` (two 3x3 convs, ResNet-18/34) or
            `"bottleneck"` (1x1-3x3-1x1, ResNet-50+). Defaults to
            `"bottleneck"`.
        stackwise_num_blocks: sequence of int. Blocks per stage.
        stackwise_num_filters: sequence of int. Filters per stage (the
            bottleneck width for bottleneck blocks, which output 4x as many).
        stackwise_strides: sequence of int. Stride of each stage (applied by
            its first or last block, see `stride_block`).
        preact: bool. Pre-activation (v2) blocks, with batch norm and ReLU
            after the last stage. Defaults to False.
        stride_block: str. `"first"` (the paper, ResNet50) or `"last"`
            (keras.applications' ResNet50V2): which block of a stage
            strides. The other blocks of a stage have identity shortcuts.
            Defaults to `"first"`.
        stem: str. `"imagenet"` or `"cifar"`. Defaults to `"imagenet"`.
        stem_filters: int. Filters of the stem convolution. Defaults to 64.
        use_bias: bool. Biases on the convolutions (`keras.applications` has
            them for ResNet-50/101/152). Defaults to True.
        dropout: float. Dropout before the classifier. Defaults to 0.
        name: str. Model name.

    Returns:
        A `keras.Model`.

    Example:

    ```python
    model = resnet((32, 32, 3), 10, block_type="basic", stem="cifar",
                   stackwise_num_blocks=(3, 3, 3),
                   stackwise_num_filters=(16, 32, 64),
                   stackwise_strides=(1, 2, 2))  # ResNet-20
    ```

    Reference:
        He et al., "Deep residual learning for image recognition", CVPR 2016;
        He et al., "Identity mappings in deep residual networks", ECCV 2016.
    """
    if block_type not in _BLOCKS:
        raise UserInputError(
            f'block_type must be "basic" or "bottleneck". Received: '
            f"block_type={block_type!r}"
        )
    if stride_block not in ("first", "last"):
        raise UserInputError(
            f'stride_block must be "first" or "last". Received: '
            f"stride_block={stride_block!r}"
        )
    if stem not in ("imagenet", "cifar"):
        raise UserInputError(
            f'stem must be "imagenet" or "cifar". Received: stem={stem!r}'
        )
    stages = (stackwise_num_blocks, stackwise_num_filters, stackwise_strides)
    if len({len(s) for s in stages}) != 1 or not stackwise_num_blocks:
        raise UserInputError(
            "stackwise_num_blocks, stackwise_num_filters and stackwise_strides must "
            "be non-empty and of equal length. Received: "
            f"stackwise_num_blocks={stackwise_num_blocks}, "
            f"stackwise_num_filters={stackwise_num_filters}, "
            f"stackwise_strides={stackwise_strides}"
        )
    check_input_size(input_shape, 1, name)
    block = _BLOCKS[block_type]
    inputs = keras.Input(shape=input_shape, name="image")
    if stem == "imagenet":
        x = layers.ZeroPadding2D(3, name="conv1_pad")(inputs)
        x = layers.Conv2D(
            stem_filters, 7, strides=2, use_bias=use_bias, name="conv1_conv"
        )(x)
    else:
        x = layers.Conv2D(
            stem_filters, 3, padding="same", use_bias=use_bias, name="conv1_conv"
        )(inputs)
    if not preact:
        x = layers.BatchNormalization(epsilon=BN_EPSILON, name="conv1_bn")(x)
        x = layers.Activation("relu", name="conv1_relu")(x)
    if stem == "imagenet":
        x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
        x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    for stage, (blocks, filters, stride) in enumerate(zip(*stages), start=2):
        strided = 1 if stride_block == "first" else blocks
        for i in range(1, blocks + 1):
            x = block(
                x,
                filters,
                stride=stride if i == strided else 1,
                preact=preact,
                # The first block projects when the shape changes; the others
                # keep the identity (max-pooled when strided).
                conv_shortcut=None if i == 1 else False,
                use_bias=use_bias,
                name=f"conv{stage}_block{i}",
            )
    if preact:
        x = layers.BatchNormalization(epsilon=BN_EPSILON, name="post_bn")(x)
        x = layers.Activation("relu", name="post_relu")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


_IMAGENET = (224, 224, 3)
_DEPTHS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
for _depth, (_block, _blocks) in _DEPTHS.items():
    for _preact, _suffix, _kind in (
        (False, "", "post-activation (v1)"),
        (True, "_v2", "pre-activation (v2)"),
    ):
        register_variant(
            resnet,
            f"resnet{_depth}{_suffix}",
            description=(
                f"ResNet-{_depth}, {_kind} {_block} blocks "
                f"{'-'.join(map(str, _blocks))} (He et al. 2016)."
            ),
            default_input_shape=_IMAGENET,
            block_type=_block,
            stackwise_num_blocks=_blocks,
            preact=_preact,
            # v2 as keras.applications' ResNetV2: each stage strides in its
            # last block (conv2-4 by 2, conv5 not).
            **(
                {"stride_block": "last", "stackwise_strides": (2, 2, 2, 1)}
                if _preact
                else {}
            ),
            # Basic-block ResNets have no conv biases (as in the paper and
            # torchvision); keras.applications' bottleneck ones do.
            use_bias=_block == "bottleneck",
        )

_CIFAR = {
    "block_type": "basic",
    "stem": "cifar",
    "stem_filters": 16,
    "stackwise_num_blocks": (3, 3, 3),
    "stackwise_num_filters": (16, 32, 64),
    "stackwise_strides": (1, 2, 2),
    "use_bias": False,
}
register_variant(
    resnet,
    name="resnet_small",
    description="ResNet-20 for 28x28/32x32 inputs: 3x3 stem, 3 stages of 3 basic blocks.",
    default_input_shape=(32, 32, 3),
    **_CIFAR,
)
register_variant(
    resnet,
    name="resnet_small_v2",
    description="Pre-activation ResNet-20 for 28x28/32x32 inputs.",
    default_input_shape=(32, 32, 3),
    preact=True,
    **_CIFAR,
)
register_variant(
    resnet,
    name="resnet_tiny",
    description="Tiny ResNet (2 stages of 1 basic block, 8/16 filters) for tests.",
    default_input_shape=(32, 32, 3),
    block_type="basic",
    stem="cifar",
    stem_filters=8,
    stackwise_num_blocks=(1, 1),
    stackwise_num_filters=(8, 16),
    stackwise_strides=(1, 2),
    use_bias=False,
)
register_variant(
    resnet,
    name="resnet_tiny_v2",
    description="Tiny pre-activation bottleneck ResNet for tests.",
    default_input_shape=(32, 32, 3),
    block_type="bottleneck",
    stem="cifar",
    stem_filters=8,
    stackwise_num_blocks=(1, 1),
    stackwise_num_filters=(4, 8),
    stackwise_strides=(1, 2),
    preact=True,
)


def _conv_bn_relu(x, filters, pool, name):
    """3x3 conv (no bias), optional 2x2 max-pool, BatchNorm, ReLU (Myrtle's order)."""
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(
        x
    )
    if pool:
        x = layers.MaxPooling2D(2, name=f"{name}_pool")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


@register_model(
    description="ResNet-9 (Myrtle.ai DAWNBench): 8 convs, 2 residual pairs, pooled early.",
    default_input_shape=(32, 32, 3),
)
def resnet9(input_shape, num_classes, width=64, dropout=0.0, name="resnet9"):
    """The ResNet-9 of Myrtle.ai's fast CIFAR-10 training (DAWNBench 2018).

    prep conv (w) -> conv (2w) + pool + residual pair -> conv (4w) + pool ->
    conv (8w) + pool + residual pair -> global max-pool -> softmax. Each
    conv is 3x3 without bias, then BatchNorm and ReLU; the max-pools come
    *before* the BatchNorm, so three of the eight BatchNorms run at a quarter
    of the resolution: on CPUs, where BatchNorm dominates the step of a
    small net, this keeps it cheap. With `width=64` it has 6.57M weights
    (the original); `width=32` has 1.64M.

    Args:
        input_shape: tuple. `(height, width, channels)`, at least 8x8.
        num_classes: int. Number of classes.
        width: int. Filters of the prep conv; the stages have 2x, 4x and 8x.
            Defaults to 64.
        dropout: float. Dropout before the classifier. Defaults to 0.
        name: str. Model name.

    Returns:
        A `keras.Model`.

    Example:

    ```python
    model = resnet9((28, 28, 1), 10, width=32)
    ```

    Reference:
        Page, "How to train your ResNet" (Myrtle.ai blog, 2018); the DAWNBench
        CIFAR-10 entry.
    """
    if int(width) < 1:
        raise UserInputError(f"width must be >= 1. Received: width={width!r}")
    check_input_size(input_shape, 8, name)
    inputs = keras.Input(shape=input_shape, name="image")
    x = _conv_bn_relu(inputs, width, False, "prep")
    for stage, (factor, residual) in enumerate(((2, True), (4, False), (8, True)), 1):
        x = _conv_bn_relu(x, factor * width, True, f"layer{stage}")
        if residual:
            r = _conv_bn_relu(x, factor * width, False, f"layer{stage}_res1")
            r = _conv_bn_relu(r, factor * width, False, f"layer{stage}_res2")
            x = layers.Add(name=f"layer{stage}_add")([x, r])
    x = layers.GlobalMaxPooling2D(name="max_pool")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)

"""Blocks: pure tensor -> tensor functions built from Keras layers.

Every sub-layer is named from the block's `name` prefix, so visualization and
style transfer can pick layers by name.
"""

from keras_convnets.blocks.inception import (
    conv_relu,
    inception_module,
    naive_inception_module,
)
from keras_convnets.blocks.inception_resnet import (
    conv2d_bn,
    inception_resnet_a,
    inception_resnet_b,
    inception_resnet_c,
    inception_resnet_stem,
    reduction_a,
    reduction_b,
)
from keras_convnets.blocks.residual import basic_block, bottleneck_block
from keras_convnets.blocks.separable import (
    depthwise_separable_block,
    outer_product_block,
    separable_conv_block,
)

__all__ = [
    "basic_block",
    "bottleneck_block",
    "conv2d_bn",
    "conv_relu",
    "depthwise_separable_block",
    "inception_module",
    "inception_resnet_a",
    "inception_resnet_b",
    "inception_resnet_c",
    "inception_resnet_stem",
    "naive_inception_module",
    "outer_product_block",
    "reduction_a",
    "reduction_b",
    "separable_conv_block",
]

"""Separable convolution blocks: split space from depth (lecture part 6).

A full `f x f x C` filter mixes space and channels at once. Separable blocks
factor the work: MobileNet filters each channel spatially (depthwise) and
then mixes channels (1x1 pointwise); the outer-product block of the lecture
mixes channels first and then filters each mixture spatially, with one
spatial filter per output channel. Xception uses Keras's fused
`SeparableConv2D`.
"""

from __future__ import annotations

from keras import layers

from keras_convnets.errors import UserInputError
from keras_convnets.layers.outer_product import OuterProductConv2D


def _check(filters, stride):
    if int(filters) < 1:
        raise UserInputError(f"filters must be >= 1. Received: filters={filters}")
    if int(stride) < 1:
        raise UserInputError(f"stride must be >= 1. Received: stride={stride}")


def depthwise_separable_block(
    x,
    filters,
    stride=1,
    kernel_size=3,
    depth_multiplier=1,
    relu_max=6.0,
    padding="same",
    name=None,
):
    """MobileNet block: depthwise conv, BN, ReLU6, pointwise 1x1 conv, BN, ReLU6.

    `C * f * f + C * filters` weights instead of `f * f * C * filters`, and
    as many fewer multiplies per position.

    Args:
        x: tensor. Input, `(batch, height, width, channels)`.
        filters: int. Output channels of the pointwise convolution.
        stride: int. Stride of the depthwise convolution. Defaults to 1.
        kernel_size: int. Depthwise filter size. Defaults to 3.
        depth_multiplier: int. Depthwise outputs per input channel.
            Defaults to 1.
        relu_max: float or None. Cap of the ReLU (6 in MobileNet); None for a
            plain ReLU. Defaults to 6.0.
        padding: str. Padding of the depthwise convolution, `"same"` or
            `"valid"` (after explicit padding, as `keras.applications`
            MobileNet pads strided blocks). Defaults to `"same"`.
        name: str. Prefix of every sub-layer name.

    Returns:
        Tensor with `filters` channels, spatial size divided by `stride`.

    Example:

    ```python
    x = depthwise_separable_block(x, 128, stride=2, name="conv_dw_2")
    ```

    Reference:
        Howard et al., "MobileNets: Efficient convolutional neural networks
        for mobile vision applications", arXiv:1704.04861, 2017.
    """
    _check(filters, stride)
    name = name or "dw_block"
    x = layers.DepthwiseConv2D(
        kernel_size,
        strides=stride,
        padding=padding,
        depth_multiplier=depth_multiplier,
        use_bias=False,
        name=f"{name}_dw",
    )(x)
    x = layers.BatchNormalization(name=f"{name}_dw_bn")(x)
    x = layers.ReLU(relu_max, name=f"{name}_dw_relu")(x)
    x = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_pw")(x)
    x = layers.BatchNormalization(name=f"{name}_pw_bn")(x)
    return layers.ReLU(relu_max, name=f"{name}_pw_relu")(x)


def separable_conv_block(x, filters, stride=1, kernel_size=3, name=None):
    """Xception unit: ReLU, `SeparableConv2D` (depthwise then pointwise), BN.

    Args:
        x: tensor. Input.
        filters: int. Output channels.
        stride: int. Defaults to 1.
        kernel_size: int. Depthwise filter size. Defaults to 3.
        name: str. Prefix of every sub-layer name.

    Returns:
        Tensor with `filters` channels.

    Example:

    ```python
    x = separable_conv_block(x, 256, name="block3_sepconv1")
    ```

    Reference:
        Chollet, "Xception: Deep learning with depthwise separable
        convolutions", CVPR 2017.
    """
    _check(filters, stride)
    name = name or "sepconv"
    x = layers.Activation("relu", name=f"{name}_relu")(x)
    x = layers.SeparableConv2D(
        filters,
        kernel_size,
        strides=stride,
        padding="same",
        use_bias=False,
        name=f"{name}_sepconv",
    )(x)
    return layers.BatchNormalization(name=f"{name}_bn")(x)


def outer_product_block(x, filters, stride=1, kernel_size=3, name=None):
    """Outer-product convolution, BN, ReLU: the lecture's separable filter.

    Each of the `filters` output channels is a 1x1 weighted average of the
    input channels followed by its own `f x f` spatial filter
    (`OuterProductConv2D`): `filters * (f * f + C)` weights.

    Args:
        x: tensor. Input.
        filters: int. Output channels.
        stride: int. Stride of the spatial filter. Defaults to 1.
        kernel_size: int. Spatial filter size. Defaults to 3.
        name: str. Prefix of every sub-layer name.

    Returns:
        Tensor with `filters` channels, spatial size divided by `stride`.

    Example:

    ```python
    x = outer_product_block(x, 64, kernel_size=5, name="op1")
    ```

    Reference:
        Lecture part 6; Jaderberg, Vedaldi and Zisserman, "Speeding up
        convolutional neural networks with low rank expansions", BMVC 2014.
    """
    _check(filters, stride)
    name = name or "outer_product_block"
    x = OuterProductConv2D(
        filters,
        kernel_size,
        strides=stride,
        padding="same",
        use_bias=False,
        name=f"{name}_opconv",
    )(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)

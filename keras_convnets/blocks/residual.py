"""Residual blocks: basic and bottleneck, post- (v1) and pre-activation (v2).

A residual block computes `x + F(x)`: the layers only learn the residual `F`,
and the identity path carries the signal and its gradient (slope one) past
them, so very deep nets train (lecture part 7). When the block changes the
shape (a stride or a new width), the shortcut is a strided 1x1 projection.

Layer names follow `keras.applications.resnet`: `{name}_0_conv` is the
projection, `{name}_1_conv`, `{name}_2_conv`, ... the residual branch and
`{name}_add` the sum.
"""

from __future__ import annotations

from keras import layers

from keras_convnets.errors import UserInputError

# keras.applications' ResNets use this epsilon; kept for weight compatibility.
BN_EPSILON = 1.001e-5


def _check(filters, stride):
    if int(filters) < 1:
        raise UserInputError(f"filters must be >= 1. Received: filters={filters}")
    if int(stride) < 1:
        raise UserInputError(f"stride must be >= 1. Received: stride={stride}")


def _bn(x, name):
    return layers.BatchNormalization(epsilon=BN_EPSILON, name=name)(x)


def _needs_projection(x, out_channels, stride, conv_shortcut):
    if conv_shortcut is None:
        return stride != 1 or x.shape[-1] != out_channels
    return bool(conv_shortcut)


def _identity(x, stride, name):
    """The identity shortcut, subsampled by a 1x1 max-pool when strided
    (`keras.applications.ResNet50V2`'s shortcut of a stage's last block)."""
    if stride == 1:
        return x
    return layers.MaxPooling2D(1, strides=stride, name=f"{name}_0_pool")(x)


def basic_block(
    x, filters, stride=1, preact=False, conv_shortcut=None, use_bias=False, name=None
):
    """Two 3x3 convolutions with a skip connection (ResNet-18/34).

    v1 (`preact=False`): `relu(x + BN(conv(relu(BN(conv(x))))))`.
    v2 (`preact=True`): `x + conv(relu(BN(conv(relu(BN(x))))))`, with the
    projection shortcut taken from the pre-activated input.

    Args:
        x: tensor. Input, `(batch, height, width, channels)`.
        filters: int. Filters of both convolutions (= output channels).
        stride: int. Stride of the first convolution and of the projection.
            Defaults to 1.
        preact: bool. Pre-activation (v2) ordering. Defaults to False.
        conv_shortcut: bool or None. Force (True) or forbid (False) a 1x1
            projection shortcut; None projects exactly when the shape
            changes. Without projection a strided block subsamples the
            identity with a 1x1 max-pool. Defaults to None.
        use_bias: bool. Biases on the convolutions. Defaults to False (the
            batch norm that follows has its own shift).
        name: str. Prefix of every sub-layer name.

    Returns:
        The output tensor, `filters` channels, spatial size divided by
        `stride`.

    Example:

    ```python
    x = basic_block(x, filters=128, stride=2, name="conv3_block1")
    ```

    Reference:
        He et al., "Deep residual learning for image recognition", CVPR 2016;
        He et al., "Identity mappings in deep residual networks", ECCV 2016.
    """
    _check(filters, stride)
    name = name or "basic_block"
    project = _needs_projection(x, filters, stride, conv_shortcut)
    if preact:
        pre = _bn(x, f"{name}_preact_bn")
        pre = layers.Activation("relu", name=f"{name}_preact_relu")(pre)
        shortcut = (
            layers.Conv2D(
                filters, 1, strides=stride, use_bias=use_bias, name=f"{name}_0_conv"
            )(pre)
            if project
            else _identity(x, stride, name)
        )
        y = pre
    else:
        if project:
            shortcut = layers.Conv2D(
                filters, 1, strides=stride, use_bias=use_bias, name=f"{name}_0_conv"
            )(x)
            shortcut = _bn(shortcut, f"{name}_0_bn")
        else:
            shortcut = _identity(x, stride, name)
        y = x
    y = layers.Conv2D(
        filters,
        3,
        strides=stride,
        padding="same",
        use_bias=use_bias,
        name=f"{name}_1_conv",
    )(y)
    y = _bn(y, f"{name}_1_bn")
    y = layers.Activation("relu", name=f"{name}_1_relu")(y)
    y = layers.Conv2D(
        filters, 3, padding="same", use_bias=use_bias, name=f"{name}_2_conv"
    )(y)
    if not preact:
        y = _bn(y, f"{name}_2_bn")
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    if not preact:
        y = layers.Activation("relu", name=f"{name}_out")(y)
    return y


def bottleneck_block(
    x,
    filters,
    stride=1,
    preact=False,
    conv_shortcut=None,
    expansion=4,
    use_bias=True,
    name=None,
):
    """1x1 reduce, 3x3, 1x1 expand, with a skip connection (ResNet-50/101/152).

    v1 (`preact=False`) follows `keras.applications.ResNet50`: biased
    convolutions, each followed by batch norm, the stride on the first 1x1
    convolution (as in the paper), ReLU after the sum.
    v2 (`preact=True`) follows `keras.applications.ResNet50V2`: batch norm and
    ReLU before the block, unbiased inner convolutions, biased last
    convolution and projection, no activation after the sum; the stride is
    on the 3x3 convolution (symmetrically zero-padded).
    An unprojected shortcut of a strided block is a 1x1 max-pool with that
    stride (how ResNet50V2 strides the last block of a stage).

    Args:
        x: tensor. Input, `(batch, height, width, channels)`.
        filters: int. Bottleneck width; the block outputs
            `expansion * filters` channels.
        stride: int. Spatial stride of the block. Defaults to 1.
        preact: bool. Pre-activation (v2) ordering. Defaults to False.
        conv_shortcut: bool or None. Force or forbid the 1x1 projection
            shortcut; None projects exactly when the shape changes. Without
            projection a strided block subsamples the identity with a 1x1
            max-pool.
        expansion: int. Output width over bottleneck width. Defaults to 4.
        use_bias: bool. Biases on the v1 convolutions. Defaults to True, as
            in `keras.applications`.
        name: str. Prefix of every sub-layer name.

    Returns:
        The output tensor with `expansion * filters` channels.

    Example:

    ```python
    x = bottleneck_block(x, filters=64, name="conv2_block1")  # 256 channels
    ```

    Reference:
        He et al., "Deep residual learning for image recognition", CVPR 2016;
        He et al., "Identity mappings in deep residual networks", ECCV 2016.
    """
    _check(filters, stride)
    name = name or "bottleneck_block"
    out_channels = expansion * filters
    project = _needs_projection(x, out_channels, stride, conv_shortcut)
    if preact:
        pre = _bn(x, f"{name}_preact_bn")
        pre = layers.Activation("relu", name=f"{name}_preact_relu")(pre)
        if project:
            shortcut = layers.Conv2D(
                out_channels, 1, strides=stride, name=f"{name}_0_conv"
            )(pre)
        else:
            shortcut = _identity(x, stride, name)
        y = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_1_conv")(pre)
        y = _bn(y, f"{name}_1_bn")
        y = layers.Activation("relu", name=f"{name}_1_relu")(y)
        # Symmetric padding, as keras.applications: with a stride of 2 on an
        # even size, "same" would pad only the bottom and right.
        y = layers.ZeroPadding2D(1, name=f"{name}_2_pad")(y)
        y = layers.Conv2D(
            filters,
            3,
            strides=stride,
            use_bias=False,
            name=f"{name}_2_conv",
        )(y)
        y = _bn(y, f"{name}_2_bn")
        y = layers.Activation("relu", name=f"{name}_2_relu")(y)
        y = layers.Conv2D(out_channels, 1, name=f"{name}_3_conv")(y)
        return layers.Add(name=f"{name}_add")([shortcut, y])

    if project:
        shortcut = layers.Conv2D(
            out_channels, 1, strides=stride, use_bias=use_bias, name=f"{name}_0_conv"
        )(x)
        shortcut = _bn(shortcut, f"{name}_0_bn")
    else:
        shortcut = _identity(x, stride, name)
    y = layers.Conv2D(
        filters, 1, strides=stride, use_bias=use_bias, name=f"{name}_1_conv"
    )(x)
    y = _bn(y, f"{name}_1_bn")
    y = layers.Activation("relu", name=f"{name}_1_relu")(y)
    y = layers.Conv2D(
        filters, 3, padding="same", use_bias=use_bias, name=f"{name}_2_conv"
    )(y)
    y = _bn(y, f"{name}_2_bn")
    y = layers.Activation("relu", name=f"{name}_2_relu")(y)
    y = layers.Conv2D(out_channels, 1, use_bias=use_bias, name=f"{name}_3_conv")(y)
    y = _bn(y, f"{name}_3_bn")
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.Activation("relu", name=f"{name}_out")(y)

"""Inception modules: parallel 1x1, 3x3, 5x5 convolutions and max-pooling.

Is a 3x3 or a 5x5 filter better, and is pooling needed? "Let the data
decide" (lecture part 7): the module runs them in parallel and concatenates
their feature maps. The naive module is expensive; GoogLeNet puts 1x1
convolutions (the outer-product depth filters of part 6) before the big
filters and after the pooling to cut parameters and multiplies.
"""

from __future__ import annotations

from keras import layers

from keras_convnets.errors import UserInputError


def conv_relu(x, filters, kernel_size, strides=1, batch_norm=False, name=None):
    """Convolution ("same" padding), optional batch norm, ReLU.

    Args:
        x: tensor. Input.
        filters: int. Number of filters.
        kernel_size: int or pair of ints. Filter size.
        strides: int. Defaults to 1.
        batch_norm: bool. Batch norm (and no conv bias) before the ReLU.
            Defaults to False.
        name: str. Name of the convolution; `_bn` and `_relu` are appended
            for the others.

    Returns:
        The activated tensor.
    """
    x = layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=not batch_norm,
        name=name,
    )(x)
    if batch_norm:
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def _check_filters(**filters):
    for key, value in filters.items():
        if int(value) < 1:
            raise UserInputError(f"{key} must be >= 1. Received: {key}={value}")


def naive_inception_module(
    x, filters_1x1, filters_3x3, filters_5x5, batch_norm=False, name=None
):
    """The naive inception module: 1x1, 3x3, 5x5 conv and 3x3 max-pool in parallel.

    All branches keep the spatial size ("same" padding, stride 1) and are
    concatenated along channels; the pooling branch passes all input
    channels through, so the width only grows.

    Args:
        x: tensor. Input, `(batch, height, width, channels)`.
        filters_1x1: int. Filters of the 1x1 branch.
        filters_3x3: int. Filters of the 3x3 branch.
        filters_5x5: int. Filters of the 5x5 branch.
        batch_norm: bool. Batch norm after each convolution. Defaults to False.
        name: str. Prefix of every sub-layer name.

    Returns:
        Tensor with `filters_1x1 + filters_3x3 + filters_5x5 + channels`
        channels.

    Example:

    ```python
    x = naive_inception_module(x, 64, 128, 32, name="naive1")
    ```

    Reference:
        Szegedy et al., "Going deeper with convolutions", CVPR 2015, fig. 2a.
    """
    _check_filters(
        filters_1x1=filters_1x1, filters_3x3=filters_3x3, filters_5x5=filters_5x5
    )
    name = name or "naive_inception"
    b1 = conv_relu(x, filters_1x1, 1, batch_norm=batch_norm, name=f"{name}_1x1")
    b3 = conv_relu(x, filters_3x3, 3, batch_norm=batch_norm, name=f"{name}_3x3")
    b5 = conv_relu(x, filters_5x5, 5, batch_norm=batch_norm, name=f"{name}_5x5")
    bp = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    return layers.Concatenate(name=f"{name}_concat")([b1, b3, b5, bp])


def inception_module(
    x,
    filters_1x1,
    filters_3x3_reduce,
    filters_3x3,
    filters_5x5_reduce,
    filters_5x5,
    filters_pool_proj,
    batch_norm=False,
    name=None,
):
    """The GoogLeNet inception module, with 1x1 dimension reductions.

    Branches: 1x1; 1x1 reduce then 3x3; 1x1 reduce then 5x5; 3x3 max-pool
    (stride 1) then 1x1 projection. The arguments are the columns of table 1
    of the paper.

    Args:
        x: tensor. Input, `(batch, height, width, channels)`.
        filters_1x1: int. Filters of the 1x1 branch.
        filters_3x3_reduce: int. 1x1 filters before the 3x3 convolution.
        filters_3x3: int. Filters of the 3x3 convolution.
        filters_5x5_reduce: int. 1x1 filters before the 5x5 convolution.
        filters_5x5: int. Filters of the 5x5 convolution.
        filters_pool_proj: int. 1x1 filters after the max-pooling.
        batch_norm: bool. Batch norm after each convolution (Inception-v2
            style). Defaults to False, as in GoogLeNet.
        name: str. Prefix of every sub-layer name.

    Returns:
        Tensor with `filters_1x1 + filters_3x3 + filters_5x5 +
        filters_pool_proj` channels, same spatial size.

    Example:

    ```python
    x = inception_module(x, 64, 96, 128, 16, 32, 32, name="inception_3a")  # 256
    ```

    Reference:
        Szegedy et al., "Going deeper with convolutions", CVPR 2015, fig. 2b.
    """
    _check_filters(
        filters_1x1=filters_1x1,
        filters_3x3_reduce=filters_3x3_reduce,
        filters_3x3=filters_3x3,
        filters_5x5_reduce=filters_5x5_reduce,
        filters_5x5=filters_5x5,
        filters_pool_proj=filters_pool_proj,
    )
    name = name or "inception"
    bn = batch_norm
    b1 = conv_relu(x, filters_1x1, 1, batch_norm=bn, name=f"{name}_1x1")
    b3 = conv_relu(x, filters_3x3_reduce, 1, batch_norm=bn, name=f"{name}_3x3_reduce")
    b3 = conv_relu(b3, filters_3x3, 3, batch_norm=bn, name=f"{name}_3x3")
    b5 = conv_relu(x, filters_5x5_reduce, 1, batch_norm=bn, name=f"{name}_5x5_reduce")
    b5 = conv_relu(b5, filters_5x5, 5, batch_norm=bn, name=f"{name}_5x5")
    bp = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    bp = conv_relu(bp, filters_pool_proj, 1, batch_norm=bn, name=f"{name}_pool_proj")
    return layers.Concatenate(name=f"{name}_concat")([b1, b3, b5, bp])

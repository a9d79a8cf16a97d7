"""Inception-ResNet-v2 parts: stem, blocks A/B/C with residual scaling, reductions.

Inception modules whose concatenated branches are projected back to the
input width by a linear 1x1 convolution, scaled down (0.1-0.3) and added to
the input: the residual connections of ResNet make the very deep inception
network train faster, and the scaling keeps it stable (lecture part 7).

Widths and layer layout follow `keras.applications.InceptionResNetV2`
(whose stem is the Inception-v3 stem plus the `mixed_5b` module, not the
paper's figure 3), so a full network has exactly its 55,873,736 weights.
Every function takes `width`, a multiplier of all internal filter counts,
for small variants; `width=1.0` is the paper.
"""

from __future__ import annotations

from keras import layers

from keras_convnets.errors import UserInputError


def scaled_filters(filters: int, width: float) -> int:
    """`filters * width`, rounded, at least 1: a block's channels at a width multiplier."""
    return max(1, int(round(filters * width)))


_w = scaled_filters  # short, for the many branch definitions below


def conv2d_bn(
    x,
    filters,
    kernel_size,
    strides=1,
    padding="same",
    activation="relu",
    name=None,
):
    """Convolution without bias, batch norm without scale, then activation.

    The unit of every Inception-ResNet branch (the scale is redundant before
    a ReLU that feeds a convolution).

    Args:
        x: tensor. Input.
        filters: int. Number of filters.
        kernel_size: int or pair of ints. Filter size, e.g. `(1, 7)`.
        strides: int. Defaults to 1.
        padding: str. `"same"` or `"valid"`. Defaults to `"same"`.
        activation: str or None. Defaults to `"relu"`.
        name: str. Name of the convolution (`_bn`, `_ac` appended).

    Returns:
        The output tensor.
    """
    x = layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=False,
        name=name,
    )(x)
    x = layers.BatchNormalization(scale=False, name=name and f"{name}_bn")(x)
    if activation is not None:
        x = layers.Activation(activation, name=name and f"{name}_ac")(x)
    return x


def inception_resnet_stem(x, width=1.0, name="stem"):
    """The stem: 299x299x3 -> 35x35x320 (`keras.applications` layout).

    Three 3x3 convolutions (the first with stride 2), max-pool, 1x1 and 3x3
    convolutions, max-pool, then an inception module (`mixed_5b`: 1x1, 5x5,
    double 3x3 and average-pool branches). Valid padding: the input must be
    at least 75x75.

    Args:
        x: tensor. Input image batch.
        width: float. Filter multiplier. Defaults to 1.0.
        name: str. Prefix of every sub-layer name.

    Returns:
        Tensor with `320 * width` channels (35x35 for a 299x299 input).

    Example:

    ```python
    x = inception_resnet_stem(keras.Input((299, 299, 3)))  # (None, 35, 35, 320)
    ```

    Reference:
        Szegedy et al., "Inception-v4, Inception-ResNet and the impact of
        residual connections on learning", AAAI 2017.
    """
    x = conv2d_bn(x, _w(32, width), 3, strides=2, padding="valid", name=f"{name}_1")
    x = conv2d_bn(x, _w(32, width), 3, padding="valid", name=f"{name}_2")
    x = conv2d_bn(x, _w(64, width), 3, name=f"{name}_3")
    x = layers.MaxPooling2D(3, strides=2, name=f"{name}_pool1")(x)
    x = conv2d_bn(x, _w(80, width), 1, padding="valid", name=f"{name}_4")
    x = conv2d_bn(x, _w(192, width), 3, padding="valid", name=f"{name}_5")
    x = layers.MaxPooling2D(3, strides=2, name=f"{name}_pool2")(x)
    b0 = conv2d_bn(x, _w(96, width), 1, name=f"{name}_mixed_b0")
    b1 = conv2d_bn(x, _w(48, width), 1, name=f"{name}_mixed_b1_1")
    b1 = conv2d_bn(b1, _w(64, width), 5, name=f"{name}_mixed_b1_2")
    b2 = conv2d_bn(x, _w(64, width), 1, name=f"{name}_mixed_b2_1")
    b2 = conv2d_bn(b2, _w(96, width), 3, name=f"{name}_mixed_b2_2")
    b2 = conv2d_bn(b2, _w(96, width), 3, name=f"{name}_mixed_b2_3")
    bp = layers.AveragePooling2D(3, strides=1, padding="same", name=f"{name}_avg")(x)
    bp = conv2d_bn(bp, _w(64, width), 1, name=f"{name}_mixed_bp")
    return layers.Concatenate(name=f"{name}_mixed")([b0, b1, b2, bp])


def _residual(x, branches, scale, activation, name):
    mixed = layers.Concatenate(name=f"{name}_mixed")(branches)
    up = layers.Conv2D(x.shape[-1], 1, use_bias=True, name=f"{name}_conv")(mixed)
    # Residual scaling (paper section 3.3): x + scale * F(x).
    up = layers.Rescaling(scale, name=f"{name}_scale")(up)
    x = layers.Add(name=f"{name}_add")([x, up])
    if activation is not None:
        x = layers.Activation(activation, name=f"{name}_ac")(x)
    return x


def _check_scale(scale):
    if not 0.0 < float(scale) <= 1.0:
        raise UserInputError(f"scale must be in (0, 1]. Received: scale={scale}")


def inception_resnet_a(x, scale=0.17, activation="relu", width=1.0, name=None):
    """Inception-ResNet-A (35x35 grid): 1x1, 1x1-3x3, 1x1-3x3-3x3 branches.

    Args:
        x: tensor. Input; the output has the same shape.
        scale: float. Residual scaling. Defaults to 0.17.
        activation: str or None. After the sum. Defaults to `"relu"`.
        width: float. Filter multiplier of the branches. Defaults to 1.0.
        name: str. Prefix of every sub-layer name.

    Returns:
        Tensor, same shape as `x`.

    Example:

    ```python
    x = inception_resnet_a(x, scale=0.17, name="block35_1")
    ```

    Reference:
        Szegedy et al., "Inception-v4, Inception-ResNet and the impact of
        residual connections on learning", AAAI 2017, figure 16.
    """
    _check_scale(scale)
    name = name or "block35"
    b0 = conv2d_bn(x, _w(32, width), 1, name=f"{name}_b0")
    b1 = conv2d_bn(x, _w(32, width), 1, name=f"{name}_b1_1")
    b1 = conv2d_bn(b1, _w(32, width), 3, name=f"{name}_b1_2")
    b2 = conv2d_bn(x, _w(32, width), 1, name=f"{name}_b2_1")
    b2 = conv2d_bn(b2, _w(48, width), 3, name=f"{name}_b2_2")
    b2 = conv2d_bn(b2, _w(64, width), 3, name=f"{name}_b2_3")
    return _residual(x, [b0, b1, b2], scale, activation, name)


def inception_resnet_b(x, scale=0.1, activation="relu", width=1.0, name=None):
    """Inception-ResNet-B (17x17 grid): 1x1 and 1x1-1x7-7x1 branches.

    Args:
        x: tensor. Input; the output has the same shape.
        scale: float. Residual scaling. Defaults to 0.1.
        activation: str or None. After the sum. Defaults to `"relu"`.
        width: float. Filter multiplier of the branches. Defaults to 1.0.
        name: str. Prefix of every sub-layer name.

    Returns:
        Tensor, same shape as `x`.

    Example:

    ```python
    x = inception_resnet_b(x, scale=0.1, name="block17_1")
    ```

    Reference:
        Szegedy et al., AAAI 2017, figure 17.
    """
    _check_scale(scale)
    name = name or "block17"
    b0 = conv2d_bn(x, _w(192, width), 1, name=f"{name}_b0")
    b1 = conv2d_bn(x, _w(128, width), 1, name=f"{name}_b1_1")
    b1 = conv2d_bn(b1, _w(160, width), (1, 7), name=f"{name}_b1_2")
    b1 = conv2d_bn(b1, _w(192, width), (7, 1), name=f"{name}_b1_3")
    return _residual(x, [b0, b1], scale, activation, name)


def inception_resnet_c(x, scale=0.2, activation="relu", width=1.0, name=None):
    """Inception-ResNet-C (8x8 grid): 1x1 and 1x1-1x3-3x1 branches.

    Args:
        x: tensor. Input; the output has the same shape.
        scale: float. Residual scaling. Defaults to 0.2.
        activation: str or None. After the sum (the last block of the
            network has none). Defaults to `"relu"`.
        width: float. Filter multiplier of the branches. Defaults to 1.0.
        name: str. Prefix of every sub-layer name.

    Returns:
        Tensor, same shape as `x`.

    Example:

    ```python
    x = inception_resnet_c(x, scale=0.2, name="block8_1")
    ```

    Reference:
        Szegedy et al., AAAI 2017, figure 19.
    """
    _check_scale(scale)
    name = name or "block8"
    b0 = conv2d_bn(x, _w(192, width), 1, name=f"{name}_b0")
    b1 = conv2d_bn(x, _w(192, width), 1, name=f"{name}_b1_1")
    b1 = conv2d_bn(b1, _w(224, width), (1, 3), name=f"{name}_b1_2")
    b1 = conv2d_bn(b1, _w(256, width), (3, 1), name=f"{name}_b1_3")
    return _residual(x, [b0, b1], scale, activation, name)


def reduction_a(x, k=256, l=256, m=384, n=384, width=1.0, name="reduction_a"):  # noqa: E741
    """Reduction-A (35x35 -> 17x17): 3x3/2 conv, 1x1-3x3-3x3/2 convs, 3x3/2 max-pool.

    `k, l, m, n` are the filter counts of the paper's table 1 (Inception-
    ResNet-v2: 256, 256, 384, 384).

    Args:
        x: tensor. Input.
        k: int. 1x1 filters of the second branch. Defaults to 256.
        l: int. 3x3 filters of the second branch. Defaults to 256.
        m: int. Strided 3x3 filters of the second branch. Defaults to 384.
        n: int. Strided 3x3 filters of the first branch. Defaults to 384.
        width: float. Filter multiplier. Defaults to 1.0.
        name: str. Prefix of every sub-layer name.

    Returns:
        Tensor with `n + m + channels` channels, spatial size
        `floor((s - 3) / 2) + 1`.

    Example:

    ```python
    x = reduction_a(x)  # 35x35x320 -> 17x17x1088
    ```

    Reference:
        Szegedy et al., AAAI 2017, figure 7 and table 1.
    """
    b0 = conv2d_bn(x, _w(n, width), 3, strides=2, padding="valid", name=f"{name}_b0")
    b1 = conv2d_bn(x, _w(k, width), 1, name=f"{name}_b1_1")
    b1 = conv2d_bn(b1, _w(l, width), 3, name=f"{name}_b1_2")
    b1 = conv2d_bn(b1, _w(m, width), 3, strides=2, padding="valid", name=f"{name}_b1_3")
    bp = layers.MaxPooling2D(3, strides=2, name=f"{name}_pool")(x)
    return layers.Concatenate(name=f"{name}_concat")([b0, b1, bp])


def reduction_b(x, width=1.0, name="reduction_b"):
    """Reduction-B (17x17 -> 8x8): three 1x1-then-strided-3x3 branches and max-pool.

    Args:
        x: tensor. Input.
        width: float. Filter multiplier. Defaults to 1.0.
        name: str. Prefix of every sub-layer name.

    Returns:
        Tensor with `(384 + 288 + 320) * width + channels` channels.

    Example:

    ```python
    x = reduction_b(x)  # 17x17x1088 -> 8x8x2080
    ```

    Reference:
        Szegedy et al., AAAI 2017, figure 18.
    """
    b0 = conv2d_bn(x, _w(256, width), 1, name=f"{name}_b0_1")
    b0 = conv2d_bn(
        b0, _w(384, width), 3, strides=2, padding="valid", name=f"{name}_b0_2"
    )
    b1 = conv2d_bn(x, _w(256, width), 1, name=f"{name}_b1_1")
    b1 = conv2d_bn(
        b1, _w(288, width), 3, strides=2, padding="valid", name=f"{name}_b1_2"
    )
    b2 = conv2d_bn(x, _w(256, width), 1, name=f"{name}_b2_1")
    b2 = conv2d_bn(b2, _w(288, width), 3, name=f"{name}_b2_2")
    b2 = conv2d_bn(
        b2, _w(320, width), 3, strides=2, padding="valid", name=f"{name}_b2_3"
    )
    bp = layers.MaxPooling2D(3, strides=2, name=f"{name}_pool")(x)
    return layers.Concatenate(name=f"{name}_concat")([b0, b1, b2, bp])

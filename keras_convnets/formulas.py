"""Sizes and parameter counts of convolutional layers (lecture parts 2 and 6).

The lecture's volume formula: an `n x n x c` input, `k` filters of size
`f x f x c`, padding `p` and stride `s` give an output of

    (floor((n + 2p - f) / s) + 1) x (floor((n + 2p - f) / s) + 1) x k

and the layer holds `f * f * c * k` weights plus `k` biases, whatever `n` is.
When `(n + 2p - f)` is not divisible by `s` the filter never reaches the far
border; `conv_output_size` warns about it, as the lecture advises avoiding it.

Padding is an int (`p` zeros on each side) or a Keras padding string:
`"valid"` is `p = 0`; `"same"` is Keras/TensorFlow "same", which pads just
enough (asymmetrically if need be) that the output is `ceil(n / s)`.
"""

from __future__ import annotations

import warnings

from keras_convnets.errors import UserInputError


def _positive_int(value, what, minimum=1):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UserInputError(
            f"{what} must be an integer >= {minimum}. Received: {what}={value!r}"
        )
    return value


def _pair(value, what):
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise UserInputError(
                f"{what} must be an int or a pair of ints. Received: {what}={value!r}"
            )
        return tuple(value)
    return (value, value)


def conv_output_size(n, f, padding=0, stride=1):
    """Returns the output length of a convolution or pooling along one axis.

    Computes `floor((n + 2p - f) / s) + 1` (lecture part 2). Warns when
    `(n + 2p - f)` is not divisible by `s`: the last rows or columns of the
    input are then never covered by the filter.

    Args:
        n: int. Input length (height or width).
        f: int. Filter (kernel or pool) length.
        padding: int or str. Zeros added on each side (`p`), or `"valid"`
            (`p = 0`) or `"same"` (output `ceil(n / s)`, as Keras pads).
            Defaults to 0.
        stride: int. Step between filter positions. Defaults to 1.

    Returns:
        int. The output length.

    Raises:
        UserInputError: if a size is not a positive integer, the padding is
            unknown, or the filter is larger than the padded input.

    Example:

    ```python
    conv_output_size(32, 5, padding=2, stride=1)  # 32
    conv_output_size(32, 5, padding=0, stride=1)  # 28
    conv_output_size(40, 3, padding=0, stride=2)  # 19
    ```

    Reference:
        Dumoulin and Visin, "A guide to convolution arithmetic for deep
        learning", arXiv:1603.07285, 2016.
    """
    n = _positive_int(n, "n")
    f = _positive_int(f, "f")
    stride = _positive_int(stride, "stride")
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "same":
            return -(-n // stride)
        if mode != "valid":
            raise UserInputError(
                f'padding must be an int, "valid" or "same". Received: '
                f"padding={padding!r}"
            )
        padding = 0
    p = _positive_int(padding, "padding", minimum=0)
    span = n + 2 * p - f
    if span < 0:
        raise UserInputError(
            f"The filter is larger than the padded input: n + 2p - f = {span} < 0. "
            f"Received: n={n}, f={f}, padding={p}, stride={stride}"
        )
    if span % stride:
        warnings.warn(
            f"(n + 2p - f) = {span} is not divisible by stride={stride}: the last "
            f"{span % stride} row(s)/column(s) are never reached by the filter "
            f"(n={n}, f={f}, padding={p}).",
            stacklevel=2,
        )
    return span // stride + 1


def conv_output_shape(input_shape, filters, kernel_size, padding="valid", stride=1):
    """Returns the `(height, width, filters)` output volume of a convolution.

    Args:
        input_shape: tuple. `(height, width, channels)` of the input volume.
        filters: int. Number of filters `k` (output channels).
        kernel_size: int or pair of ints. Filter size `f` (or `(fh, fw)`).
        padding: int, pair of ints or str. Zeros on each side, `"valid"` or
            `"same"`. Defaults to `"valid"`.
        stride: int or pair of ints. Defaults to 1.

    Returns:
        tuple. `(out_height, out_width, filters)`.

    Example:

    ```python
    conv_output_shape((32, 32, 3), 10, 5, padding=2, stride=2)  # (16, 16, 10)
    ```
    """
    if len(tuple(input_shape)) != 3:
        raise UserInputError(
            "input_shape must be (height, width, channels). "
            f"Received: input_shape={tuple(input_shape)}"
        )
    filters = _positive_int(filters, "filters")
    _positive_int(input_shape[2], "channels")
    kh, kw = _pair(kernel_size, "kernel_size")
    sh, sw = _pair(stride, "stride")
    if isinstance(padding, str):
        ph = pw = padding
    else:
        ph, pw = _pair(padding, "padding")
    return (
        conv_output_size(input_shape[0], kh, ph, sh),
        conv_output_size(input_shape[1], kw, pw, sw),
        filters,
    )


def conv_params(kernel_size, in_channels, filters, use_bias=True):
    """Returns the number of weights of a convolutional layer.

    `f * f * c * k` kernel weights plus `k` biases (lecture part 2); it does
    not depend on the height or width of the input.

    Args:
        kernel_size: int or pair of ints. Filter size `f` (or `(fh, fw)`).
        in_channels: int. Input channels `c`.
        filters: int. Number of filters `k`.
        use_bias: bool. Count one bias per filter. Defaults to True.

    Returns:
        int. The number of parameters.

    Example:

    ```python
    conv_params(5, 3, 10, use_bias=False)  # 750, the lecture's quiz
    ```
    """
    kh, kw = _pair(kernel_size, "kernel_size")
    kh = _positive_int(kh, "kernel_size")
    kw = _positive_int(kw, "kernel_size")
    in_channels = _positive_int(in_channels, "in_channels")
    filters = _positive_int(filters, "filters")
    return kh * kw * in_channels * filters + (filters if use_bias else 0)


__all__ = ["conv_output_shape", "conv_output_size", "conv_params"]

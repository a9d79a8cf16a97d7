"""Pooling layers Keras lacks: LP-norm (L2) pooling and median pooling."""

from __future__ import annotations

import keras
from keras import ops

from keras_convnets.errors import UserInputError
from keras_convnets.layers.utils import normalize_padding, normalize_pair


class _Pooling2D(keras.layers.Layer):
    """Shared arguments and shapes, as in `keras.layers.MaxPooling2D`."""

    def __init__(self, pool_size=2, strides=None, padding="valid", **kwargs):
        super().__init__(**kwargs)
        self.pool_size = normalize_pair(pool_size, "pool_size")
        self.strides = (
            self.pool_size if strides is None else normalize_pair(strides, "strides")
        )
        self.padding = normalize_padding(padding)
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def compute_output_shape(self, input_shape):
        sizes = []
        for n, f, s in zip(input_shape[1:3], self.pool_size, self.strides):
            if n is None:
                sizes.append(None)
            elif self.padding == "same":
                sizes.append(-(-n // s))
            else:
                sizes.append((n - f) // s + 1)
        if any(size is not None and size < 1 for size in sizes):
            raise UserInputError(
                f"{type(self).__name__} with pool_size={self.pool_size} does not fit "
                f"the input. Received: input_shape={input_shape}"
            )
        return (input_shape[0], *sizes, input_shape[3])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "pool_size": self.pool_size,
                "strides": self.strides,
                "padding": self.padding,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_convnets")
class LPPooling2D(_Pooling2D):
    """LP-norm pooling: `(sum over the window of |x|^p) ** (1/p)` per channel.

    `p = 2` is L2 pooling, one of the "other popular pooling functions" of
    Goodfellow et al. quoted in lecture part 3; `p -> inf` tends to max
    pooling (of `|x|`) and `p = 1` is sum pooling. Zero padding (`"same"`)
    adds nothing to the sum, so padded positions are ignored.

    Args:
        p: float. The norm, >= 1. Defaults to 2.
        pool_size: int or pair of ints. Window size. Defaults to 2.
        strides: int or pair of ints. Defaults to `pool_size`.
        padding: str. `"valid"` or `"same"`. Defaults to `"valid"`.
        epsilon: float. Added to the sum before the root, so the gradient is
            finite for an all-zero window. Defaults to 1e-12.
        **kwargs: base `Layer` arguments.

    Example:

    ```python
    y = LPPooling2D(p=2, pool_size=2)(keras.ops.ones((1, 4, 4, 3)))  # all 2.0
    ```

    Reference:
        Sermanet, Chintala and LeCun, "Convolutional neural networks applied
        to house numbers digit classification", ICPR 2012; Goodfellow,
        Bengio and Courville, "Deep Learning", section 9.3, 2016.
    """

    def __init__(
        self, p=2.0, pool_size=2, strides=None, padding="valid", epsilon=1e-12, **kwargs
    ):
        super().__init__(
            pool_size=pool_size, strides=strides, padding=padding, **kwargs
        )
        if float(p) < 1.0:
            raise UserInputError(f"p must be >= 1. Received: p={p}")
        self.p = float(p)
        self.epsilon = float(epsilon)

    def call(self, inputs):
        channels = inputs.shape[-1]
        powered = ops.power(ops.abs(inputs), self.p)
        # A depthwise convolution with a ones kernel sums each window; unlike
        # average pooling it counts "same" zero padding as zeros.
        ones = ops.ones((*self.pool_size, channels, 1), dtype=inputs.dtype)
        summed = ops.depthwise_conv(
            powered, ones, strides=self.strides, padding=self.padding
        )
        return ops.power(summed + self.epsilon, 1.0 / self.p)

    def get_config(self):
        config = super().get_config()
        config.update({"p": self.p, "epsilon": self.epsilon})
        return config


@keras.saving.register_keras_serializable(package="keras_convnets")
class L2Pooling2D(LPPooling2D):
    """L2 pooling: the Euclidean norm of each window, `LPPooling2D(p=2)`.

    Args:
        pool_size: int or pair of ints. Window size. Defaults to 2.
        strides: int or pair of ints. Defaults to `pool_size`.
        padding: str. `"valid"` or `"same"`. Defaults to `"valid"`.
        **kwargs: base `Layer` arguments.

    Example:

    ```python
    y = L2Pooling2D(2)(keras.ops.ones((1, 4, 4, 3)))  # all 2.0
    ```

    Reference:
        Goodfellow, Bengio and Courville, "Deep Learning", section 9.3, 2016.
    """

    def __init__(self, pool_size=2, strides=None, padding="valid", **kwargs):
        kwargs.pop("p", None)
        super().__init__(
            p=2.0, pool_size=pool_size, strides=strides, padding=padding, **kwargs
        )

    def get_config(self):
        config = super().get_config()
        config.pop("p")
        return config


@keras.saving.register_keras_serializable(package="keras_convnets")
class MedianPooling2D(_Pooling2D):
    """Median pooling: the median of each window, per channel.

    The lecture (part 3) notes that "instead of the maximum, people sometimes
    use also the median or the mean". Even windows average the two middle
    values, as `numpy.median` does. With `"same"` padding the padded
    positions are ignored (the median is over the real pixels of the
    window), as `MaxPooling2D` ignores them. The gradient flows to the one
    or two middle values of each window.

    Args:
        pool_size: int or pair of ints. Window size. Defaults to 2.
        strides: int or pair of ints. Defaults to `pool_size`.
        padding: str. `"valid"` or `"same"`. Defaults to `"valid"`.
        **kwargs: base `Layer` arguments.

    Example:

    ```python
    y = MedianPooling2D(3, strides=1, padding="same")(images)  # denoising
    ```

    Reference:
        Tukey, "Exploratory Data Analysis", 1977 (running medians); lecture
        part 3.
    """

    def call(self, inputs):
        window = self.pool_size[0] * self.pool_size[1]

        def windows(x):
            patches = ops.image.extract_patches(
                x, size=self.pool_size, strides=self.strides, padding=self.padding
            )
            shape = ops.shape(patches)
            return ops.reshape(patches, (shape[0], shape[1], shape[2], window, -1))

        values = windows(inputs)  # (batch, out_h, out_w, window, channels)
        if self.padding == "valid":
            values = ops.sort(ops.moveaxis(values, 3, -1), axis=-1)
            lower = values[..., (window - 1) // 2]
            upper = values[..., window // 2]
            return 0.5 * (lower + upper)
        # Padded entries become +inf, so they sort last; the median of the
        # `count` real entries sits at (count - 1) // 2 and count // 2.
        mask = windows(ops.ones_like(inputs[..., :1]))  # 1 real, 0 padding
        big = ops.cast(float("inf"), inputs.dtype)
        values = ops.where(mask > 0, values, big)
        values = ops.sort(ops.moveaxis(values, 3, -1), axis=-1)
        count = ops.cast(ops.sum(mask, axis=3), "int32")  # (batch, oh, ow, 1)
        lower_index = ops.broadcast_to((count - 1) // 2, ops.shape(values)[:-1])
        upper_index = ops.broadcast_to(count // 2, ops.shape(values)[:-1])
        lower = ops.take_along_axis(values, lower_index[..., None], axis=-1)
        upper = ops.take_along_axis(values, upper_index[..., None], axis=-1)
        return 0.5 * (lower[..., 0] + upper[..., 0])

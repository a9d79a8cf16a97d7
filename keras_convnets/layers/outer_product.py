"""Outer-product convolution: a depth filter times a spatial filter (lecture part 6)."""

from __future__ import annotations

import keras
from keras import ops

from keras_convnets.errors import UserInputError
from keras_convnets.layers.utils import normalize_padding, normalize_pair


@keras.saving.register_keras_serializable(package="keras_convnets")
class OuterProductConv2D(keras.layers.Layer):
    """2D convolution whose filters are outer products of depth and space.

    Every filter `k` factorizes as `W[x, y, c, k] = S[x, y, k] * D[c, k]`: a
    `1 x 1 x C` depth filter `D` (a weighted average over channels, e.g. a
    tinted grey value for RGB) followed by an `f x f` spatial filter `S`. The
    layer holds `K * (f * f + C)` weights (plus `K` biases) instead of
    `K * f * f * C`, and is computed as a 1x1 convolution followed by a
    depthwise convolution, which gives exactly the same output as `Conv2D`
    with the explicit kernel `full_kernel()`.

    Args:
        filters: int. Number of filters `K`.
        kernel_size: int or pair of ints. Spatial filter size `f`.
        strides: int or pair of ints. Stride of the spatial filter. Defaults
            to 1.
        padding: str. `"valid"` or `"same"`, as in `Conv2D`. Defaults to
            `"valid"`.
        activation: activation name or callable. Defaults to None (linear).
        use_bias: bool. Add one bias per filter. Defaults to True.
        depth_initializer: initializer of `D`, shape `(1, 1, C, K)`.
            Defaults to `"lecun_normal"` (variance `1 / C`).
        spatial_initializer: initializer of `S`, shape `(f, f, 1, K)`.
            Defaults to `"he_normal"` (variance `2 / f^2`), so the product
            has the He variance `2 / (f^2 C)` of a `Conv2D` kernel.
        bias_initializer: initializer of the biases. Defaults to `"zeros"`.
        **kwargs: base `Layer` arguments (`name`, `dtype`, ...).

    Example:

    ```python
    layer = OuterProductConv2D(64, 5, padding="same")
    y = layer(keras.ops.ones((2, 32, 32, 100)))  # 64 * (25 + 100) + 64 weights
    ```

    Reference:
        Jaderberg, Vedaldi and Zisserman, "Speeding up convolutional neural
        networks with low rank expansions", BMVC 2014; lecture part 6.
    """

    def __init__(
        self,
        filters,
        kernel_size,
        strides=1,
        padding="valid",
        activation=None,
        use_bias=True,
        depth_initializer="lecun_normal",
        spatial_initializer="he_normal",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(filters) < 1:
            raise UserInputError(f"filters must be >= 1. Received: filters={filters}")
        self.filters = int(filters)
        self.kernel_size = normalize_pair(kernel_size, "kernel_size")
        self.strides = normalize_pair(strides, "strides")
        self.padding = normalize_padding(padding)
        self.activation = keras.activations.get(activation)
        self.use_bias = bool(use_bias)
        self.depth_initializer = keras.initializers.get(depth_initializer)
        self.spatial_initializer = keras.initializers.get(spatial_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise UserInputError(
                "OuterProductConv2D needs a known number of input channels. "
                f"Received: input_shape={input_shape}"
            )
        self.depth_kernel = self.add_weight(
            name="depth_kernel",
            shape=(1, 1, channels, self.filters),
            initializer=self.depth_initializer,
        )
        self.spatial_kernel = self.add_weight(
            name="spatial_kernel",
            shape=(*self.kernel_size, 1, self.filters),
            initializer=self.spatial_initializer,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias", shape=(self.filters,), initializer=self.bias_initializer
            )
        else:
            self.bias = None

    def full_kernel(self):
        """Returns the explicit `(f, f, C, K)` kernel `S[x, y, k] * D[c, k]`."""
        spatial = self.spatial_kernel[:, :, 0, :]  # (fh, fw, K)
        depth = self.depth_kernel[0, 0]  # (C, K)
        return spatial[:, :, None, :] * depth[None, None, :, :]

    def call(self, inputs):
        # Integrate out depth first (a 1x1 conv), then filter each of the K
        # grey-like maps spatially (a depthwise conv): K*(C + f*f) multiplies
        # per position instead of K*C*f*f.
        x = ops.conv(inputs, self.depth_kernel, strides=1, padding="valid")
        spatial = ops.reshape(self.spatial_kernel, (*self.kernel_size, self.filters, 1))
        x = ops.depthwise_conv(x, spatial, strides=self.strides, padding=self.padding)
        if self.use_bias:
            x = x + self.bias
        return self.activation(x)

    def compute_output_shape(self, input_shape):
        sizes = []
        for n, f, s in zip(input_shape[1:3], self.kernel_size, self.strides):
            if n is None:
                sizes.append(None)
            elif self.padding == "same":
                sizes.append(-(-n // s))
            else:
                sizes.append((n - f) // s + 1)
        return (input_shape[0], *sizes, self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "strides": self.strides,
                "padding": self.padding,
                "activation": keras.activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "depth_initializer": keras.initializers.serialize(
                    self.depth_initializer
                ),
                "spatial_initializer": keras.initializers.serialize(
                    self.spatial_initializer
                ),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config

"""Locally connected 2D layer: patchy connectivity without weight sharing."""

from __future__ import annotations

import keras
from keras import ops

from keras_convnets.errors import UserInputError
from keras_convnets.layers.utils import normalize_padding, normalize_pair


def _output_length(n, f, s, padding):
    if padding == "same":
        return -(-n // s)
    return (n - f) // s + 1


@keras.saving.register_keras_serializable(package="keras_convnets")
class LocallyConnected2D(keras.layers.Layer):
    """Like `Conv2D`, but every output position has its own filters.

    The lecture's "patchy connectivity" (part 2): each output unit sees only
    an `f x f` patch of the input, as in a convolution, but the weights are
    not shared across positions. Kernel and bias are both unshared, as in the
    Keras 2 layer: the kernel has shape `(out_h * out_w, f * f * C, K)` and
    the bias `(out_h, out_w, K)`. If all positions carry the same weights,
    the layer computes exactly `Conv2D`. DeepFace uses such layers near the
    top, where faces are aligned and each region has its own statistics.

    The input height and width must be known when the layer is built.

    Args:
        filters: int. Number of filters `K` per position.
        kernel_size: int or pair of ints. Patch size `f`.
        strides: int or pair of ints. Defaults to 1.
        padding: str. `"valid"` or `"same"` (zero padding as in `Conv2D`).
            Defaults to `"valid"`.
        activation: activation name or callable. Defaults to None (linear).
        use_bias: bool. Add an (unshared) bias. Defaults to True.
        kernel_initializer: initializer of the kernel. Defaults to None:
            Glorot uniform computed per position (fan-in `f * f * C`,
            fan-out `K`), as a `Conv2D` kernel would get; Keras's own
            initializers would count every position into the fans.
        bias_initializer: Defaults to `"zeros"`.
        **kwargs: base `Layer` arguments.

    Example:

    ```python
    layer = LocallyConnected2D(16, 3)
    y = layer(keras.ops.ones((2, 8, 8, 4)))  # (2, 6, 6, 16)
    # 36 positions * (3*3*4*16 kernel + 16 bias) = 21,312 weights
    ```

    Reference:
        Taigman et al., "DeepFace: Closing the gap to human-level performance
        in face verification", CVPR 2014.
    """

    def __init__(
        self,
        filters,
        kernel_size,
        strides=1,
        padding="valid",
        activation=None,
        use_bias=True,
        kernel_initializer=None,
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
        self.kernel_initializer = (
            None
            if kernel_initializer is None
            else keras.initializers.get(kernel_initializer)
        )
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def _output_hw(self, input_shape):
        height, width = input_shape[1], input_shape[2]
        if height is None or width is None or input_shape[3] is None:
            raise UserInputError(
                "LocallyConnected2D needs a known input height, width and channels. "
                f"Received: input_shape={input_shape}"
            )
        out = tuple(
            _output_length(n, f, s, self.padding)
            for n, f, s in zip((height, width), self.kernel_size, self.strides)
        )
        if min(out) < 1:
            raise UserInputError(
                f"LocallyConnected2D with kernel_size={self.kernel_size} does not fit "
                f"the input. Received: input_shape={input_shape}"
            )
        return out

    def build(self, input_shape):
        self.output_hw = self._output_hw(input_shape)
        positions = self.output_hw[0] * self.output_hw[1]
        patch = self.kernel_size[0] * self.kernel_size[1] * input_shape[3]
        initializer = self.kernel_initializer
        if initializer is None:
            limit = (6.0 / (patch + self.filters)) ** 0.5
            initializer = keras.initializers.RandomUniform(-limit, limit)
        self.kernel = self.add_weight(
            name="kernel",
            shape=(positions, patch, self.filters),
            initializer=initializer,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(*self.output_hw, self.filters),
                initializer=self.bias_initializer,
            )
        else:
            self.bias = None

    def call(self, inputs):
        # Patches come out flattened in (row, column, channel) order, the same
        # order as a Conv2D kernel reshaped to (f * f * C, K).
        patches = ops.image.extract_patches(
            inputs,
            size=self.kernel_size,
            strides=self.strides,
            padding=self.padding,
        )
        batch = ops.shape(inputs)[0]
        positions = self.output_hw[0] * self.output_hw[1]
        patches = ops.reshape(patches, (batch, positions, -1))
        x = ops.einsum("bpi,pio->bpo", patches, self.kernel)
        x = ops.reshape(x, (batch, *self.output_hw, self.filters))
        if self.use_bias:
            x = x + self.bias
        return self.activation(x)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self._output_hw(input_shape), self.filters)

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
                "kernel_initializer": (
                    None
                    if self.kernel_initializer is None
                    else keras.initializers.serialize(self.kernel_initializer)
                ),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config

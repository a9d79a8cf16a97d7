"""A deterministic image flip, for test-time augmentation inside a model."""

from __future__ import annotations

import keras
from keras import ops

from keras_convnets.errors import UserInputError

_AXES = {"horizontal": (2,), "vertical": (1,), "horizontal_and_vertical": (1, 2)}


@keras.saving.register_keras_serializable(package="keras_convnets")
class Flip(keras.layers.Layer):
    """Mirrors every image of a `(batch, height, width, channels)` tensor.

    Unlike `keras.layers.RandomFlip`, it always flips, in training and in
    inference, which is what a test-time-augmentation branch needs (see
    `keras_convnets.models.tta.with_tta`).

    Args:
        mode: str. `"horizontal"` (left-right, the default), `"vertical"`, or
            `"horizontal_and_vertical"`.

    Example:

    ```python
    flipped = Flip()(keras.ops.ones((2, 28, 28, 1)))
    ```
    """

    def __init__(self, mode="horizontal", **kwargs):
        super().__init__(**kwargs)
        if mode not in _AXES:
            raise UserInputError(
                f"Flip mode must be one of {', '.join(_AXES)}. Received: mode={mode!r}"
            )
        self.mode = mode
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def call(self, inputs):
        for axis in _AXES[self.mode]:
            inputs = ops.flip(inputs, axis=axis)
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"mode": self.mode})
        return config

"""Helpers shared by the model builders: input checks and the classifier head."""

from __future__ import annotations

import functools

from keras import layers

from keras_convnets.errors import UserInputError
from keras_convnets.models.registry import register_model


class InputTooSmallError(UserInputError):
    """The input image is smaller than the architecture's downsampling allows.

    `min_size` holds the smallest height and width the builder accepts with
    the arguments it was given.
    """

    def __init__(self, message, min_size):
        super().__init__(message)
        self.min_size = min_size


def check_input_size(input_shape, min_size, model_name):
    """Raises `InputTooSmallError` if height or width is below `min_size`.

    Args:
        input_shape: tuple. `(height, width, channels)`.
        min_size: int. The smallest height and width the builder accepts.
        model_name: str. Used in the message.
    """
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or any(d is None or int(d) < 1 for d in input_shape):
        raise UserInputError(
            f"{model_name} needs input_shape=(height, width, channels) with "
            f"positive sizes. Received: input_shape={input_shape}"
        )
    if min(input_shape[0], input_shape[1]) < min_size:
        raise InputTooSmallError(
            f"{model_name} needs inputs of at least {min_size}x{min_size} pixels "
            f"with these arguments. Received: input_shape={input_shape}",
            min_size,
        )


def classifier(x, num_classes, dropout=0.0, name="predictions"):
    """Global average pooling, optional dropout, softmax dense layer."""
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    return layers.Dense(num_classes, activation="softmax", name=name)(x)


def valid_min_size(steps, final=1):
    """Smallest input size that survives a chain of valid convs/pools.

    Args:
        steps: list of `(kernel, stride, padding)` from input to output, with
            padding `"valid"` or `"same"`.
        final: int. The size the last step must produce. Defaults to 1.

    Returns:
        int. The smallest input size.
    """
    size = final
    for kernel, stride, padding in reversed(steps):
        if padding == "same":
            size = (size - 1) * stride + 1
        else:
            size = (size - 1) * stride + kernel
    return size


def register_variant(builder, name, description, default_input_shape, **defaults):
    """Registers `builder` with fixed arguments under `name`, also its model name.

    `register_model` takes `name` as the registry key, so the model's own
    `name` argument is bound here with `functools.partial`; a caller can
    still override it through `get_model(..., name=...)`.
    """
    return register_model(
        functools.partial(builder, name=name),
        name=name,
        description=description,
        default_input_shape=tuple(default_input_shape),
        **defaults,
    )

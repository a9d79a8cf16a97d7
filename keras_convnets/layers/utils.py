"""Argument checks shared by the package's layers (Keras-style messages)."""

from __future__ import annotations

from keras_convnets.errors import UserInputError


def normalize_pair(value, what: str) -> tuple[int, int]:
    """A positive int or a pair of them, as a `(height, width)` tuple.

    Args:
        value: int or pair of ints. E.g. a `kernel_size` or `strides`.
        what: str. The argument's name, for the error message.

    Returns:
        A tuple of two ints >= 1.

    Example:

    >>> normalize_pair(3, "kernel_size")
    (3, 3)
    """
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    value = tuple(value)
    if len(value) != 2 or any(int(v) < 1 for v in value):
        raise UserInputError(
            f"{what} must be a positive int or a pair of them. Received: {what}={value}"
        )
    return tuple(int(v) for v in value)


def normalize_padding(padding) -> str:
    """`"valid"` or `"same"` (any case), lower-cased; anything else raises."""
    mode = str(padding).lower()
    if mode not in ("valid", "same"):
        raise UserInputError(
            f'padding must be "valid" or "same". Received: padding={padding!r}'
        )
    return mode

"""keras-convnets: build, train, search and look inside convolutional networks."""

__version__ = "0.1.0"

import os as _os

# Quiet TensorFlow's C++ start-up chatter (set before TensorFlow is imported);
# a value the user set wins.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras as _keras

# Older Keras 3 releases load malicious .keras files (safe_mode bypasses).
_KERAS_FLOOR = (3, 15, 1)


def _version_tuple(text):
    parts = []
    for piece in text.split(".")[:3]:
        digits = "".join(c for c in piece if c.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


if _version_tuple(_keras.__version__) < _KERAS_FLOOR:
    raise ImportError(
        f"keras_convnets needs keras >= {'.'.join(map(str, _KERAS_FLOOR))} (older "
        f"releases load malicious .keras files); found {_keras.__version__}. "
        f"Run: pip install -U 'keras>=3.15.1'"
    )

from keras_convnets.data.datasets import DatasetInfo, load_dataset  # noqa: E402
from keras_convnets.errors import UserInputError  # noqa: E402
from keras_convnets.formulas import conv_output_shape, conv_output_size, conv_params  # noqa: E402
from keras_convnets.models.registry import get_model, list_models, register_model  # noqa: E402

__all__ = [
    "DatasetInfo",
    "load_dataset",
    "UserInputError",
    "__version__",
    "conv_output_shape",
    "conv_output_size",
    "conv_params",
    "get_model",
    "list_models",
    "register_model",
]

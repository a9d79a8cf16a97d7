"""keras-convnets: build, train, search and look inside convolutional networks."""

__version__ = "0.1.0"

import os as _os

# Quiet TensorFlow's C++ start-up chatter (set before TensorFlow is imported);
# a value the user set wins.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_convnets.data.datasets import DatasetInfo, load_dataset
from keras_convnets.errors import UserInputError
from keras_convnets.formulas import conv_output_shape, conv_output_size, conv_params
from keras_convnets.models.registry import get_model, list_models, register_model

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

"""keras-convnets: build, train, search and look inside convolutional networks."""

__version__ = "0.1.0"

# (data imports added below once written)
from keras_convnets.errors import UserInputError
from keras_convnets.models.registry import get_model, list_models, register_model

__all__ = [
    "UserInputError",
    "__version__",
    "get_model",
    "list_models",
    "register_model",
]

"""The architecture zoo: one module per family; importing it registers builders."""

from keras_convnets.models import basic  # noqa: F401
from keras_convnets.models.registry import (
    get_model,
    get_model_entry,
    list_models,
    register_model,
)

__all__ = ["get_model", "get_model_entry", "list_models", "register_model"]

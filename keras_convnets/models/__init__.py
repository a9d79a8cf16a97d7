"""The architecture zoo: one module per family; importing it registers builders."""

from keras_convnets.models import (
    alexnet,  # noqa: F401
    all_conv,  # noqa: F401
    basic,  # noqa: F401
    deepface,  # noqa: F401
    googlenet,  # noqa: F401
    illing,  # noqa: F401
    inception_resnet,  # noqa: F401
    lenet,  # noqa: F401
    mobilenet,  # noqa: F401
    nas_cell_net,  # noqa: F401
    pretrained,  # noqa: F401
    resnet,  # noqa: F401
    vgg,  # noqa: F401
)
from keras_convnets.models.registry import (
    get_model,
    get_model_entry,
    list_models,
    register_model,
)

__all__ = ["get_model", "get_model_entry", "list_models", "register_model"]

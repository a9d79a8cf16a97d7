"""Looking inside trained convnets (lecture parts 4 and 8).

Filters, feature maps, receptive fields and top patches, the gradient's focus
through max-pooling, saliency maps and Grad-CAM, activation maximization, and
neural style transfer. Every function takes the model and layer names as
arguments; `plot_*` functions return labelled matplotlib figures. A model
trained in mixed bf16/fp16 is analysed through its float32 copy
(`float32_model`), so every tool computes in float32 whatever the precision.
"""

from keras_convnets.analysis._common import float32_model
from keras_convnets.analysis.activation_max import (
    activation_maximization,
    plot_activation_max,
)
from keras_convnets.analysis.receptive_field import (
    ReceptiveField,
    receptive_field,
    stack_receptive_field,
)
from keras_convnets.analysis.report import visualize
from keras_convnets.analysis.saliency import grad_cam, plot_attribution, saliency_map
from keras_convnets.analysis.style_transfer import (
    Backbone,
    StyleLoss,
    gram_matrix,
    load_backbone,
    style_transfer,
    total_variation,
)
from keras_convnets.analysis.visualize import (
    feature_maps,
    layer_filters,
    max_pool_focus,
    plot_feature_maps,
    plot_filters,
    plot_max_pool_focus,
    plot_top_patches,
    top_patches,
)

__all__ = [
    "Backbone",
    "ReceptiveField",
    "StyleLoss",
    "activation_maximization",
    "feature_maps",
    "float32_model",
    "grad_cam",
    "gram_matrix",
    "layer_filters",
    "load_backbone",
    "max_pool_focus",
    "plot_activation_max",
    "plot_attribution",
    "plot_feature_maps",
    "plot_filters",
    "plot_max_pool_focus",
    "plot_top_patches",
    "receptive_field",
    "saliency_map",
    "stack_receptive_field",
    "style_transfer",
    "top_patches",
    "total_variation",
    "visualize",
]

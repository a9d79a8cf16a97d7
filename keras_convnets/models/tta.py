"""Test-time augmentation built into a model, so a saved `.keras` file carries it.

`with_tta(model, "flip")` returns a model that averages the class
probabilities of an image and of its mirror image. It holds the same weights
(the original model is nested inside, shared by both branches), saves and
loads like any model of the package, and is what `keras-convnets train
--tta flip` saves as `model.keras`, so `keras-convnets evaluate` measures the
number the run reported.
"""

from __future__ import annotations

import keras

from keras_convnets.errors import UserInputError
from keras_convnets.layers.flip import Flip

# Policy -> the flips whose predictions are averaged with the original's.
TTA_POLICIES = {"none": (), "flip": ("horizontal",)}


def with_tta(model: keras.Model, policy: str = "flip") -> keras.Model:
    """Wraps a softmax classifier with test-time augmentation.

    Args:
        model: keras.Model. Maps images to class probabilities.
        policy: str. A key of `TTA_POLICIES`: `"none"` returns `model`
            itself; `"flip"` averages the predictions for the image and its
            left-right mirror.

    Returns:
        A `keras.Model` named `<model.name>_tta` with the same weights.

    Example:

    ```python
    model = with_tta(get_model("simple_cnn", (28, 28, 1), 10), "flip")
    ```
    """
    if policy not in TTA_POLICIES:
        raise UserInputError(
            f"Unknown test-time augmentation; choose one of "
            f"{', '.join(TTA_POLICIES)}. Received: tta={policy!r}"
        )
    modes = TTA_POLICIES[policy]
    if not modes:
        return model
    inputs = keras.Input(shape=model.input_shape[1:], name="image")
    outputs = [model(inputs)]
    for mode in modes:
        outputs.append(model(Flip(mode, name=f"tta_{mode}_flip")(inputs)))
    averaged = keras.layers.Average(name="tta_average", dtype="float32")(outputs)
    return keras.Model(inputs, averaged, name=f"{model.name}_tta")


def unwrap_tta(model: keras.Model) -> keras.Model:
    """The classifier inside a `with_tta` model (the model itself otherwise).

    Analysis tools (feature maps, Grad-CAM, style transfer) look layers up by
    name in the classifier, not in the averaging wrapper.
    """
    if model.name.endswith("_tta") and any(
        isinstance(layer, Flip) for layer in model.layers
    ):
        inner = [layer for layer in model.layers if isinstance(layer, keras.Model)]
        if len(inner) == 1:
            return inner[0]
    return model

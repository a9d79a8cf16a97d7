"""Forward FLOPs per image, and a listing of the registered architectures.

How `count_flops` counts, per image (batch size 1), at inference:

- Convolutions and dense layers: a multiply-add is 2 FLOPs; a bias adds 1
  FLOP per output value. `Conv2D`: `2 * kh * kw * (C_in / groups) * C_out`
  per output position; `DepthwiseConv2D`: `2 * kh * kw` per output value;
  `SeparableConv2D`: depthwise plus pointwise; `OuterProductConv2D`: its
  1x1 depth convolution over the input grid plus its depthwise spatial
  convolution; `LocallyConnected2D`: as `Conv2D` (no sharing saves no
  work); `Dense`: `2 * in * out` (per position if the input is not flat).
- Pooling: 1 FLOP per window element per output value (a comparison or an
  add) for max, average, L2/LP and median pooling; global pooling: 1 FLOP
  per input value.
- Batch normalization: 2 FLOPs per value (a multiply and an add, once the
  statistics are frozen); `Add`: 1 FLOP per value per extra input;
  `Rescaling`: 1 FLOP per value.
- Not counted: activations (ReLU, softmax), dropout, padding, reshaping,
  flattening and concatenation.

So `count_flops` is twice the "multiply-accumulates" (MACs) most papers
quote, plus the small terms above: VGG-16 at 224x224 is 15.5 GMACs and
31.0 GFLOPs here; ResNet-50 (stride on the first 1x1 conv, as in the paper and
`keras.applications`) is 3.8 GMACs and 7.8 GFLOPs here.
"""

from __future__ import annotations

import math

import keras

from keras_convnets.errors import UserInputError
from keras_convnets.layers import (
    LocallyConnected2D,
    LPPooling2D,
    MedianPooling2D,
    OuterProductConv2D,
)
from keras_convnets.models.registry import get_model, get_model_entry, list_models

_POOLS = (
    keras.layers.MaxPooling2D,
    keras.layers.AveragePooling2D,
    LPPooling2D,
    MedianPooling2D,
)
_GLOBAL_POOLS = (
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalMaxPooling2D,
)


def _size(shape):
    dims = tuple(shape)[1:]
    if any(d is None for d in dims):
        raise UserInputError(
            "count_flops needs a model built for a fixed input size. "
            f"Received: a tensor of shape {tuple(shape)}"
        )
    return math.prod(dims)


def _layer_flops(layer, inputs, outputs):
    """FLOPs of one call of `layer` on `inputs` giving `outputs` (shapes)."""
    out = outputs[0]
    n_out = _size(out)
    bias = n_out if getattr(layer, "use_bias", False) else 0
    if isinstance(layer, keras.layers.SeparableConv2D):
        kh, kw = layer.kernel_size
        c_in = inputs[0][-1]
        positions = n_out // out[-1]
        mid = c_in * layer.depth_multiplier
        return 2 * positions * (kh * kw * mid + mid * out[-1]) + bias
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kh, kw = layer.kernel_size
        return 2 * kh * kw * n_out + bias
    if isinstance(layer, keras.layers.Conv2D):
        kh, kw = layer.kernel_size
        c_in = inputs[0][-1] // layer.groups
        return 2 * kh * kw * c_in * n_out + bias
    if isinstance(layer, OuterProductConv2D):
        kh, kw = layer.kernel_size
        depth = 2 * _size(inputs[0]) * layer.filters
        return depth + 2 * kh * kw * n_out + bias
    if isinstance(layer, LocallyConnected2D):
        kh, kw = layer.kernel_size
        return 2 * kh * kw * inputs[0][-1] * n_out + bias
    if isinstance(layer, keras.layers.Dense):
        return 2 * inputs[0][-1] * n_out + bias
    if isinstance(layer, _POOLS):
        return layer.pool_size[0] * layer.pool_size[1] * n_out
    if isinstance(layer, _GLOBAL_POOLS):
        return _size(inputs[0])
    if isinstance(layer, keras.layers.BatchNormalization):
        return 2 * n_out
    if isinstance(layer, keras.layers.Add):
        return (len(inputs) - 1) * n_out
    if isinstance(layer, keras.layers.Rescaling):
        return n_out
    return 0


def count_flops(model) -> int:
    """Returns the forward FLOPs of `model` for one image.

    See the module docstring for what is counted: a multiply-add is 2 FLOPs;
    convolutions, dense layers, pooling, batch norm, `Add` and `Rescaling`
    are counted; activations, dropout and reshapes are not. Nested models
    are counted through; a layer called several times is counted each time.

    Args:
        model: a built `keras.Model` with a fixed input height and width.

    Returns:
        int. FLOPs per image.

    Raises:
        UserInputError: if a layer's spatial size is not fixed.

    Example:

    ```python
    model = keras_convnets.get_model("lenet5", (32, 32, 1), 10)
    count_flops(model)  # 845,862 (416,520 multiply-adds)
    ```
    """
    total = 0
    for layer in model.layers:
        for node in layer._inbound_nodes:
            inputs = [t.shape for t in node.input_tensors]
            outputs = [t.shape for t in node.output_tensors]
            if isinstance(layer, keras.Model):
                total += count_flops(layer)
            elif inputs and outputs:
                total += _layer_flops(layer, inputs, outputs)
    return int(total)


def _usual_num_classes(entry):
    shape = entry.default_input_shape
    return 1000 if shape is not None and shape[0] >= 128 else 10


def describe_models(input_shape=None, num_classes=None, names=None) -> list[dict]:
    """Builds registered models and returns their size and cost.

    Args:
        input_shape: tuple or None. `(height, width, channels)` to build every
            model at. None builds each at its usual input shape (models
            without one at `(28, 28, 1)`). Defaults to None.
        num_classes: int or None. Classes of the softmax layer. None uses
            1000 for ImageNet-sized models (usual input >= 128 px) and 10
            for the others. Defaults to None.
        names: sequence of str or None. Only these registered models (in
            `list_models()` order); an unknown name raises `UserInputError`.
            None: every model. Defaults to None.

    Returns:
        A list of dicts, one per model in `list_models()` order, with keys
        `name`, `params` (all weights, as `model.count_params()`), `flops`
        (`count_flops`, per image), `input_shape`, `num_classes` and
        `description`. A model that cannot be built at `input_shape` has
        `params` and `flops` None and the reason under `error`.

    Example:

    ```python
    for row in describe_models((32, 32, 3)):
        print(row["name"], row["params"], row["flops"])
    ```
    """
    selected = list_models()
    if names is not None:
        wanted = set(names)
        for name in wanted:
            get_model_entry(name)  # an unknown name: UserInputError
        selected = [name for name in selected if name in wanted]
    rows = []
    for name in selected:
        entry = get_model_entry(name)
        shape = tuple(input_shape or entry.default_input_shape or (28, 28, 1))
        classes = num_classes or _usual_num_classes(entry)
        row = {
            "name": name,
            "params": None,
            "flops": None,
            "input_shape": shape,
            "num_classes": classes,
            "description": entry.description,
        }
        try:
            model = get_model(name, shape, classes)
        except ValueError as error:
            row["error"] = str(error).splitlines()[0]
        else:
            row["params"] = int(model.count_params())
            row["flops"] = count_flops(model)
            del model
            keras.backend.clear_session()
        rows.append(row)
    return rows

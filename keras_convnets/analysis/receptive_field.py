"""Receptive fields: which input pixels a unit of a layer can see.

For a stack of convolutions and poolings, unit `i` of a layer sees the input
rows `start + i * jump ... start + i * jump + size - 1` (and likewise for
columns): `size` grows by `(kernel - 1) * jump` at each layer, `jump` is the
product of the strides so far, and padding moves `start` (lecture part 2:
"computing the volumes"). `top_patches` uses this to crop the image patch that
drove a unit.
"""

from __future__ import annotations

import dataclasses
import math

_POINTWISE_HINT = (
    "it changes the spatial size and is not a convolution, pooling, padding, "
    "cropping, flatten or global layer"
)


@dataclasses.dataclass(frozen=True)
class ReceptiveField:
    """The receptive field of a layer's units, in input pixels, per axis.

    Attributes:
        size: `(rows, cols)`. Height and width of one unit's receptive field.
        jump: `(rows, cols)`. Input pixels between neighbouring units (the
            product of strides).
        start: `(rows, cols)`. Input coordinate of the top-left pixel of unit
            `(0, 0)`'s field; negative where padding reaches outside the image.
        input_size: `(rows, cols)`. The model's input height and width.
        spatial: bool. False after flatten, dense or global pooling: the layer
            has no spatial positions and each unit sees the whole field.
    """

    size: tuple
    jump: tuple
    start: tuple
    input_size: tuple
    spatial: bool = True

    def box(self, row: int = 0, col: int = 0, clip: bool = True) -> tuple:
        """The input box `(top, left, bottom, right)` (bottom/right exclusive)
        seen by the unit at `(row, col)`, clipped to the image when `clip`."""
        if not self.spatial:
            row = col = 0
        top = self.start[0] + row * self.jump[0]
        left = self.start[1] + col * self.jump[1]
        bottom, right = top + self.size[0], left + self.size[1]
        if clip:
            top, left = max(top, 0), max(left, 0)
            bottom = min(bottom, self.input_size[0])
            right = min(right, self.input_size[1])
        return top, left, bottom, right


def _pair(value):
    if isinstance(value, int):
        return value, value
    return tuple(int(v) for v in value)


def _same_padding_before(n, kernel, stride):
    """Padding TensorFlow adds before the first pixel for `padding="same"`."""
    out = math.ceil(n / stride)
    return max((out - 1) * stride + kernel - n, 0) // 2


def _window(field, kernel, stride, padding, n, dilation=(1, 1)):
    """Receptive field after one sliding-window layer (conv or pool)."""
    size, jump, start = [], [], []
    for axis in range(2):
        k = (kernel[axis] - 1) * dilation[axis] + 1
        pad = _same_padding_before(n[axis], k, stride[axis]) if padding == "same" else 0
        size.append(field.size[axis] + (k - 1) * field.jump[axis])
        start.append(field.start[axis] - pad * field.jump[axis])
        jump.append(field.jump[axis] * stride[axis])
    return dataclasses.replace(
        field, size=tuple(size), jump=tuple(jump), start=tuple(start)
    )


def _everything(field, n):
    """The union of all units' fields of an `n`-sized map (flatten, global)."""
    size = tuple(field.size[a] + (n[a] - 1) * field.jump[a] for a in range(2))
    return dataclasses.replace(field, size=size, spatial=False)


def _union(fields, layer_name):
    """Fields merged by add/concatenate: the box that covers them all."""
    if len({f.jump for f in fields}) > 1 or len({f.spatial for f in fields}) > 1:
        raise ValueError(
            f"Layer {layer_name!r} merges inputs with different strides; no single "
            f"receptive field. Received: jumps={[f.jump for f in fields]}"
        )
    start = tuple(min(f.start[a] for f in fields) for a in range(2))
    end = tuple(max(f.start[a] + f.size[a] for f in fields) for a in range(2))
    size = tuple(end[a] - start[a] for a in range(2))
    return dataclasses.replace(fields[0], size=size, start=start)


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _layer_field(layer, inputs, fields):
    """The receptive field at `layer`'s output, from its inputs' fields."""
    parents = [t._keras_history.operation.name for t in inputs]
    field = _union([fields[p] for p in parents], layer.name)
    shape_in = tuple(inputs[0].shape)
    output = _as_list(layer.output)[0]
    if not field.spatial:
        return field
    n = shape_in[1:3]
    kind = type(layer).__name__
    if kind in ("Flatten", "Dense") or kind.startswith("Global"):
        return _everything(field, n)
    if hasattr(layer, "kernel_size") and hasattr(layer, "strides"):
        if "Transpose" in kind:
            raise ValueError(
                f"Receptive fields through transposed convolutions are not "
                f"supported. Received: layer={layer.name!r} ({kind})"
            )
        dilation = _pair(getattr(layer, "dilation_rate", 1))
        return _window(
            field,
            _pair(layer.kernel_size),
            _pair(layer.strides),
            layer.padding,
            n,
            dilation,
        )
    if hasattr(layer, "pool_size"):
        strides = layer.strides if layer.strides is not None else layer.pool_size
        return _window(field, _pair(layer.pool_size), _pair(strides), layer.padding, n)
    if kind == "ZeroPadding2D":
        (top, _), (left, _) = layer.padding
        return dataclasses.replace(
            field,
            start=(
                field.start[0] - top * field.jump[0],
                field.start[1] - left * field.jump[1],
            ),
        )
    if kind == "Cropping2D":
        (top, _), (left, _) = layer.cropping
        return dataclasses.replace(
            field,
            start=(
                field.start[0] + top * field.jump[0],
                field.start[1] + left * field.jump[1],
            ),
        )
    if len(output.shape) == 4 and tuple(output.shape[1:3]) == tuple(n):
        return field  # pointwise: activation, normalization, dropout, add, concat
    raise ValueError(
        f"Cannot follow the receptive field through layer {layer.name!r} ({kind}): "
        f"{_POINTWISE_HINT}."
    )


def receptive_field(model, layer_name: str) -> ReceptiveField:
    """Receptive field of the units of a layer of a functional model.

    Walks the layer graph from the input to `layer_name`, reading each layer's
    kernel size, stride, dilation and padding (`"same"` padding as TensorFlow
    computes it, which depends on the input size). Layers that keep the spatial
    size (activations, normalization, add, concatenate) leave it unchanged;
    merges take the box covering all branches.

    Args:
        model: a functional `keras.Model` with one image input.
        layer_name: str. The layer whose units' field is wanted.

    Returns:
        A `ReceptiveField`.

    Example:

    ```python
    model = get_model("simple_cnn", input_shape=(28, 28, 1), num_classes=10)
    rf = receptive_field(model, "stage2_conv1")
    rf.size, rf.jump  # (10, 10), (2, 2)
    rf.box(3, 4)      # input (top, left, bottom, right) seen by unit (3, 4)
    ```

    Reference:
        Araujo, Norris and Sim, "Computing Receptive Fields of Convolutional
        Neural Networks", Distill 2019.
    """
    try:
        target = model.get_layer(layer_name)
    except ValueError:
        raise ValueError(
            f"Model {model.name!r} has no layer {layer_name!r}. "
            f"Received: layer_name={layer_name!r}"
        ) from None
    if len(model.inputs) != 1:
        raise ValueError(
            f"receptive_field needs a model with one input. "
            f"Received: {len(model.inputs)} inputs"
        )
    input_tensor = model.inputs[0]
    input_size = tuple(input_tensor.shape[1:3])
    if None in input_size:
        raise ValueError(
            f"receptive_field needs a fixed input size. Received: "
            f"input shape={tuple(input_tensor.shape)}"
        )
    fields = {
        input_tensor._keras_history.operation.name: ReceptiveField(
            size=(1, 1), jump=(1, 1), start=(0, 0), input_size=input_size
        )
    }
    for layer in model.layers:
        if layer.name in fields:
            continue
        if len(layer._inbound_nodes) != 1:
            raise ValueError(
                f"Layer {layer.name!r} is used {len(layer._inbound_nodes)} times; "
                f"receptive fields need each layer called once."
            )
        fields[layer.name] = _layer_field(layer, _as_list(layer.input), fields)
        if layer.name == target.name:
            break
    return fields[target.name]


def stack_receptive_field(layers, input_size) -> ReceptiveField:
    """Receptive field of a plain stack of sliding-window layers.

    Args:
        layers: sequence of `(kernel, stride, padding)` with `padding` one of
            `"valid"`, `"same"` or an int (explicit zero-padding on each side).
        input_size: int or `(rows, cols)`. Input size (for `"same"` padding).

    Returns:
        A `ReceptiveField`.

    Example:

    ```python
    stack_receptive_field([(3, 1, "same"), (2, 2, "valid")], 28).size  # (4, 4)
    ```
    """
    n = _pair(input_size)
    field = ReceptiveField(size=(1, 1), jump=(1, 1), start=(0, 0), input_size=n)
    for kernel, stride, padding in layers:
        kernel, stride = _pair(kernel), _pair(stride)
        if isinstance(padding, int):
            field = dataclasses.replace(
                field,
                start=tuple(field.start[a] - padding * field.jump[a] for a in range(2)),
            )
            n = tuple(x + 2 * padding for x in n)
            padding = "valid"
        field = _window(field, kernel, stride, padding, n)
        if padding == "same":
            n = tuple(math.ceil(n[a] / stride[a]) for a in range(2))
        else:
            n = tuple((n[a] - kernel[a]) // stride[a] + 1 for a in range(2))
    return field

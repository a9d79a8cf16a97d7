"""The searched cell stacked into a classifier: `nas_cell_net` (lecture part 7).

    stem -> N normal -> reduction -> N normal -> reduction -> N normal
         -> global average pooling -> softmax classifier

with `F` filters in the first stage, doubled at each reduction. The cells are
a genotype's (`keras_convnets.blocks.nas_cell`), e.g. the `best_genotype.json`
that `keras-convnets search` writes:

```python
model = get_model(
    "nas_cell_net", (28, 28, 1), 10,
    genotype="tuning/evolution-fashion_mnist/best_genotype.json",
    params_budget=470_000,
)
```

A parameter budget picks `F` for the given `N`: the largest `F` whose network
has at most that many parameters (`filters_for_budget`).
"""

from __future__ import annotations

import math
import os

import keras
from keras import layers

from keras_convnets.blocks.nas_cell import (
    Block,
    Genotype,
    check_cell_norm,
    nas_cell,
    read_genotype_file,
)
from keras_convnets.errors import UserInputError
from keras_convnets.models.registry import register_model

# What `nas_cell_net` builds without a genotype: the search space's default
# choices (every block: a 3x3 separable conv of h[-1] plus h[-2]), 3 blocks.
DEFAULT_GENOTYPE = Genotype(
    normal=(Block(1, "sep_conv_3x3", 0, "identity"),) * 3,
    reduce=(Block(1, "sep_conv_3x3", 0, "identity"),) * 3,
)
DEFAULT_FILTERS = 32
# The widest first stage `filters_for_budget` considers.
MAX_BUDGET_FILTERS = 8192


def resolve_genotype(genotype, cell_norm=None) -> tuple[Genotype, str]:
    """A genotype and its normalization from a `Genotype`, a dict or a file.

    Args:
        genotype: `Genotype`, a dict of `Genotype.to_dict()` form, or the path
            of a genotype JSON file (a search's `best_genotype.json`). None:
            `DEFAULT_GENOTYPE`.
        cell_norm: str or None. `"none"` or `"batch"`. None: what the dict or
            file records under `cell_norm` (a search records the one it
            searched with), else `"none"`.

    Returns:
        `(genotype, cell_norm)`.
    """
    recorded = None
    if genotype is None:
        genotype = DEFAULT_GENOTYPE
    elif isinstance(genotype, (str, os.PathLike)):
        data = read_genotype_file(genotype)
        recorded = data.get("cell_norm")
        genotype = Genotype.from_dict(data)
    elif isinstance(genotype, dict):
        recorded = genotype.get("cell_norm")
        genotype = Genotype.from_dict(genotype)
    elif not isinstance(genotype, Genotype):
        raise UserInputError(
            "genotype must be a Genotype, a dict or the path of a genotype file. "
            f"Received: genotype={type(genotype).__name__}"
        )
    if cell_norm is None:
        cell_norm = recorded if recorded is not None else "none"
    return genotype, check_cell_norm(cell_norm)


# Stem strides `nas_cell_net` builds: 1 (the first stage at the input's
# resolution, as NASNet's CIFAR networks) or 2 (at half of it, as its ImageNet
# stems: every cell then costs a quarter of the work).
STEM_STRIDES = (1, 2)


def resolve_stem_stride(genotype, stem_stride=None) -> int:
    """The stem stride: `stem_stride`, else what the genotype records, else 1.

    Args:
        genotype: `Genotype`, dict or path (see `resolve_genotype`).
        stem_stride: int or None. 1 or 2. None: the dict's or file's
            `stem_stride` (a search records the one it searched with), else 1
            (genotypes from before the option existed).

    Returns:
        int. 1 or 2.
    """
    if stem_stride is None:
        data = genotype
        if isinstance(genotype, (str, os.PathLike)):
            data = read_genotype_file(genotype)
        stem_stride = data.get("stem_stride", 1) if isinstance(data, dict) else 1
        if stem_stride is None:
            stem_stride = 1
    if isinstance(stem_stride, bool) or stem_stride not in STEM_STRIDES:
        raise UserInputError(
            f"stem_stride must be one of {', '.join(map(str, STEM_STRIDES))}. "
            f"Received: stem_stride={stem_stride!r}"
        )
    return int(stem_stride)


def _check_int(label, value, low):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserInputError(
            f"{label} must be an int >= {low}. Received: {label}={value!r}"
        )
    if int(value) != value or value < low:
        raise UserInputError(
            f"{label} must be an int >= {low}. Received: {label}={value!r}"
        )
    return int(value)


def build_from_genotype(
    genotype,
    input_shape,
    num_classes: int,
    cells: int = 1,
    filters: int = 16,
    name: str = "nas_cell_net",
    cell_norm: str | None = None,
    stem_stride: int | None = None,
) -> keras.Model:
    """Stacks a genotype's cells into a classifier.

    `stem -> N normal -> reduction -> N normal -> reduction -> N normal ->
    global average pooling -> softmax`, with `filters` channels in the first
    stage, doubled at each reduction. Layers are named `stem_*`,
    `stage{s}_cell{i}_*`, `reduce{s}_*`, `head_*` and `predictions`.

    Args:
        genotype: `Genotype`, dict or path (see `resolve_genotype`).
        input_shape: tuple. `(height, width, channels)`.
        num_classes: int. Classes of the softmax output.
        cells: int. Normal cells per stage, `N` (0 allowed). Defaults to 1.
        filters: int. Filters of the first stage, `F`. Defaults to 16.
        name: str. Model name. Defaults to `"nas_cell_net"`.
        cell_norm: str or None. `"none"` or `"batch"` (BatchNorm after every
            convolution, the stem's too). None: what the genotype file
            records, else `"none"`.
        stem_stride: int or None. Stride of the stem convolution: 1 (the
            first stage at the input's resolution) or 2 (at half of it, a
            quarter of the work per cell). None: what the genotype file
            records, else 1. The parameter count does not depend on it.

    Returns:
        A `keras.Model` mapping images to class probabilities.

    Example:

    ```python
    genotype = load_genotype("tuning/evolution-fashion_mnist/best_genotype.json")
    model = build_from_genotype(genotype, (28, 28, 1), 10, cells=2, filters=32)
    ```

    Reference:
        Zoph et al., "Learning transferable architectures for scalable image
        recognition", CVPR 2018; Real et al., "Regularized evolution for image
        classifier architecture search", AAAI 2019.
    """
    stem_stride = resolve_stem_stride(genotype, stem_stride)
    genotype, cell_norm = resolve_genotype(genotype, cell_norm)
    cells = _check_int("cells", cells, 0)
    filters = _check_int("filters", filters, 1)
    num_classes = _check_int("num_classes", num_classes, 1)
    input_shape = tuple(int(d) for d in input_shape)
    if len(input_shape) != 3 or min(input_shape) < 1:
        raise UserInputError(
            f"input_shape must be (height, width, channels). "
            f"Received: input_shape={input_shape}"
        )
    batch_norm = cell_norm == "batch"
    inputs = keras.Input(input_shape, name="images")
    x = layers.Conv2D(
        filters,
        3,
        strides=stem_stride,
        padding="same",
        use_bias=not batch_norm,
        name="stem_conv",
    )(inputs)
    if batch_norm:
        x = layers.BatchNormalization(name="stem_bn")(x)
    prev_prev, prev = x, x
    width = filters
    for stage in range(1, 4):
        if stage > 1:
            width *= 2
            out = nas_cell(
                prev_prev,
                prev,
                genotype.reduce,
                width,
                reduction=True,
                name=f"reduce{stage - 1}",
                cell_norm=cell_norm,
            )
            prev_prev, prev = prev, out
        for i in range(1, cells + 1):
            out = nas_cell(
                prev_prev,
                prev,
                genotype.normal,
                width,
                name=f"stage{stage}_cell{i}",
                cell_norm=cell_norm,
            )
            prev_prev, prev = prev, out
    x = layers.Activation("relu", name="head_relu")(prev)
    x = layers.GlobalAveragePooling2D(name="head_pool")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


def count_params(genotype, input_shape, num_classes, cells, filters, cell_norm=None):
    """Parameters of `build_from_genotype(...)`, counted without building it.

    A network's parameter count is a quadratic polynomial in `F` (every
    weight tensor is a constant, `F`-proportional or `F^2`-proportional:
    widths are `F`, `2F`, `4F`), so three builds at `F = 1, 2, 3` give it
    exactly for every `F`.
    """
    a, b, c = _params_polynomial(genotype, input_shape, num_classes, cells, cell_norm)
    return a * filters * filters + b * filters + c


def _params_polynomial(genotype, input_shape, num_classes, cells, cell_norm):
    genotype, cell_norm = resolve_genotype(genotype, cell_norm)

    def built(f):
        return build_from_genotype(
            genotype, input_shape, num_classes, cells, f, cell_norm=cell_norm
        ).count_params()

    p1, p2, p3 = built(1), built(2), built(3)
    # p(f) = a f^2 + b f + c through (1, p1), (2, p2), (3, p3).
    a, remainder = divmod(p3 - 2 * p2 + p1, 2)
    b = p2 - p1 - 3 * a
    c = p1 - a - b
    if remainder or a < 0 or 16 * a + 4 * b + c != built(4):
        raise RuntimeError(
            f"The parameter count of nas_cell_net is not quadratic in filters "
            f"(a bug). Received: p(1..3)={p1}, {p2}, {p3}"
        )
    return a, b, c


def filters_for_budget(
    genotype, input_shape, num_classes, cells, params_budget, cell_norm=None
) -> int:
    """The largest first-stage `F` whose network fits a parameter budget.

    The rule: `N` (`cells`) is given; `F` is the largest integer with
    `count_params(..., cells=N, filters=F) <= params_budget` (at most
    `MAX_BUDGET_FILTERS`). The count is quadratic in `F`, so this solves the
    quadratic and checks the neighbours exactly.

    Args:
        genotype: `Genotype`, dict or path.
        input_shape: tuple. `(height, width, channels)`.
        num_classes: int.
        cells: int. Normal cells per stage, `N`.
        params_budget: int. Most parameters allowed.
        cell_norm: str or None. See `build_from_genotype`.

    Returns:
        int. `F`.

    Raises:
        UserInputError: if even `F = 1` exceeds the budget.

    Example:

    ```python
    f = filters_for_budget(genotype, (28, 28, 1), 10, cells=2, params_budget=470_000)
    ```
    """
    params_budget = _check_int("params_budget", params_budget, 1)
    cells = _check_int("cells", cells, 0)
    a, b, c = _params_polynomial(genotype, input_shape, num_classes, cells, cell_norm)

    def params(f):
        return a * f * f + b * f + c

    if params(1) > params_budget:
        raise UserInputError(
            f"params_budget={params_budget} is below the smallest network of this "
            f"genotype with cells={cells} ({params(1)} parameters at filters=1)."
        )
    if a:
        root = (-b + math.sqrt(b * b - 4 * a * (c - params_budget))) / (2 * a)
    else:
        root = (params_budget - c) / max(b, 1)
    f = max(1, min(MAX_BUDGET_FILTERS, int(root)))
    while f > 1 and params(f) > params_budget:
        f -= 1
    while f < MAX_BUDGET_FILTERS and params(f + 1) <= params_budget:
        f += 1
    return f


@register_model(default_input_shape=(28, 28, 1))
def nas_cell_net(
    input_shape,
    num_classes,
    genotype=None,
    cells=2,
    filters=None,
    cell_norm=None,
    params_budget=None,
    stem_stride=None,
    name="nas_cell_net",
):
    """A searched NASNet-style cell (a genotype) stacked into a classifier.

    Args:
        input_shape: tuple. `(height, width, channels)`.
        num_classes: int. Classes.
        genotype: `Genotype`, dict, or the path of a genotype JSON file (a
            search's `best_genotype.json`). Defaults to `DEFAULT_GENOTYPE`.
        cells: int. Normal cells per stage, `N`. Defaults to 2.
        filters: int. First-stage filters, `F`. Defaults to 32, or what
            `params_budget` allows.
        cell_norm: str or None. `"none"` or `"batch"`. None: what the genotype
            file records, else `"none"`.
        params_budget: int or None. Pick `filters` as the largest that keeps
            the network within this many parameters (`filters_for_budget`);
            not together with `filters`.
        stem_stride: int or None. 1 or 2 (see `build_from_genotype`). None:
            what the genotype file records, else 1.
        name: str. Model name.

    Returns:
        A `keras.Model`.

    Example:

    ```python
    model = get_model("nas_cell_net", (28, 28, 1), 10,
                      genotype="best_genotype.json", cells=1, filters=16)
    ```

    Reference:
        Zoph et al., "Learning transferable architectures for scalable image
        recognition", CVPR 2018.
    """
    stem_stride = resolve_stem_stride(genotype, stem_stride)
    genotype, cell_norm = resolve_genotype(genotype, cell_norm)
    if params_budget is not None:
        if filters is not None:
            raise UserInputError(
                "Give filters or params_budget, not both. "
                f"Received: filters={filters!r}, params_budget={params_budget!r}"
            )
        filters = filters_for_budget(
            genotype, input_shape, num_classes, cells, params_budget, cell_norm
        )
    elif filters is None:
        filters = DEFAULT_FILTERS
    return build_from_genotype(
        genotype,
        input_shape,
        num_classes,
        cells=cells,
        filters=filters,
        name=name,
        cell_norm=cell_norm,
        stem_stride=stem_stride,
    )


register_model(
    nas_cell_net,
    name="nas_cell_net_tiny",
    description="nas_cell_net with N=1, F=8: for tests.",
    cells=1,
    filters=8,
)

"""A NASNet-style cell: its genotype, its operations, the cell itself.

A *cell* has `B` blocks. Block `j` picks two inputs among the cell's inputs
(`h[-2]`, the output of the cell before the previous one, and `h[-1]`, the
previous cell's output) and the outputs of blocks `0 .. j-1`, applies one
operation to each, and adds the two results. The outputs of blocks that no
other block consumed are concatenated and projected to the cell's filters with
a 1x1 convolution (with the projected `h[-1]` too if no block read it, so that
no cell is cut out of the network). A *normal* cell keeps the spatial size; a
*reduction* cell applies its operations with stride 2 to the cell inputs,
halving it. The two cell types are searched separately (Zoph et al. 2018).

A `Genotype` holds the choices of both cells. It is plain data: it converts to
and from JSON; `keras_convnets.models.nas_cell_net` stacks it into a network,
and `keras_convnets.search` declares it as KerasTuner hyperparameters.

Input indices in a block: 0 is `h[-2]`, 1 is `h[-1]`, `2 + j` is block `j`.

Normalization (`cell_norm`): `"none"` (the default) builds every operation
without BatchNorm, with biases on its convolutions, as the `fast` training
recipe does for simple_cnn: BatchNorm costs most of a small convnet's CPU
step. `"batch"` puts BatchNorm after every convolution, as NASNet does (and
as every cell did before `cell_norm` existed: the layers and their names are
the same as then, so runs and weights of that time load and resume).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os

from keras import layers

from keras_convnets.errors import UserInputError
from keras_convnets.layers.outer_product import OuterProductConv2D

# The operations a block may apply to each of its two inputs.
OPERATIONS = (
    "identity",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "op_conv_3x3",
    "op_conv_5x5",
    "dil_sep_conv_3x3",
    "conv_1x7_7x1",
    "max_pool_3x3",
    "avg_pool_3x3",
)

CELL_TYPES = ("normal", "reduce")

# Normalization after the convolutions of a cell: see the module docstring.
CELL_NORMS = ("none", "batch")

# Short names for the text rendering and diagrams.
_SHORT = {
    "identity": "id",
    "sep_conv_3x3": "sep3",
    "sep_conv_5x5": "sep5",
    "op_conv_3x3": "op3",
    "op_conv_5x5": "op5",
    "dil_sep_conv_3x3": "dil3",
    "conv_1x7_7x1": "1x7-7x1",
    "max_pool_3x3": "max3",
    "avg_pool_3x3": "avg3",
}


def input_name(index: int) -> str:
    """`h[-2]`, `h[-1]`, `b0`, `b1`, ... for input indices 0, 1, 2, 3, ..."""
    return ("h[-2]", "h[-1]")[index] if index < 2 else f"b{index - 2}"


@dataclasses.dataclass(frozen=True)
class Block:
    """One block: `op_a(input_a) + op_b(input_b)`."""

    input_a: int
    op_a: str
    input_b: int
    op_b: str

    def to_dict(self) -> dict:
        return {"inputs": [self.input_a, self.input_b], "ops": [self.op_a, self.op_b]}


@dataclasses.dataclass(frozen=True)
class Genotype:
    """The searched structure of a normal and a reduction cell.

    Args:
        normal: tuple of `Block`. The normal cell's blocks, in order.
        reduce: tuple of `Block`. The reduction cell's blocks, in order (the
            same number of blocks as `normal`).

    Example:

    ```python
    g = Genotype.random(blocks=3, seed=0)
    g2 = Genotype.from_json(g.to_json())
    model = keras_convnets.get_model(
        "nas_cell_net", (28, 28, 1), 10, genotype=g, cells=1, filters=16
    )
    ```

    Reference:
        Zoph, Vasudevan, Shlens and Le, "Learning transferable architectures
        for scalable image recognition", CVPR 2018.
    """

    normal: tuple
    reduce: tuple

    def __post_init__(self):
        for cell in CELL_TYPES:
            blocks = tuple(
                b if isinstance(b, Block) else _block_from(b, cell)
                for b in getattr(self, cell)
            )
            object.__setattr__(self, cell, blocks)
            if not blocks:
                raise UserInputError(
                    f"A genotype's {cell} cell needs at least one block. "
                    f"Received: {cell}=[]"
                )
            for j, b in enumerate(blocks):
                for field in ("input_a", "input_b"):
                    value = getattr(b, field)
                    if (
                        isinstance(value, bool)
                        or not isinstance(value, int)
                        or not 0 <= value < 2 + j
                    ):
                        raise UserInputError(
                            f"Block {j} of the {cell} cell may only read inputs "
                            f"0..{j + 1} (h[-2], h[-1], earlier blocks). "
                            f"Received: {field}={value!r}"
                        )
                for field in ("op_a", "op_b"):
                    if getattr(b, field) not in OPERATIONS:
                        raise UserInputError(
                            f"Unknown operation in block {j} of the {cell} cell; "
                            f"choose one of {', '.join(OPERATIONS)}. "
                            f"Received: {field}={getattr(b, field)!r}"
                        )
        if len(self.normal) != len(self.reduce):
            raise UserInputError(
                f"The normal and reduction cells need the same number of blocks. "
                f"Received: {len(self.normal)} and {len(self.reduce)}"
            )

    @property
    def blocks(self) -> int:
        """Blocks per cell, `B`."""
        return len(self.normal)

    # -- JSON ---------------------------------------------------------------

    def to_dict(self) -> dict:
        return {
            "normal": [b.to_dict() for b in self.normal],
            "reduce": [b.to_dict() for b in self.reduce],
        }

    def to_json(self, indent=None) -> str:
        """The genotype as JSON text; `from_json` reads it back."""
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: dict) -> Genotype:
        """Reads `to_dict()` output; other keys (search metadata) are ignored."""
        if not isinstance(data, dict) or not all(c in data for c in CELL_TYPES):
            raise UserInputError(
                "A genotype needs 'normal' and 'reduce' lists of blocks. "
                f"Received: {str(data)[:80]}"
            )
        if not all(isinstance(data[c], list) for c in CELL_TYPES):
            raise UserInputError(
                "A genotype's 'normal' and 'reduce' must be lists of blocks. "
                f"Received: {str(data)[:80]}"
            )
        return cls(normal=tuple(data["normal"]), reduce=tuple(data["reduce"]))

    @classmethod
    def from_json(cls, text: str) -> Genotype:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise UserInputError(
                f"Not a genotype: corrupt JSON ({e.msg} at line {e.lineno})."
            ) from None
        return cls.from_dict(data)

    # -- Sampling and rendering ----------------------------------------------

    @classmethod
    def random(cls, blocks: int = 3, seed: int | None = None) -> Genotype:
        """A uniformly random genotype with `blocks` blocks per cell."""
        import random

        rng = random.Random(seed)
        cells = {
            cell: tuple(
                Block(
                    rng.randrange(2 + j),
                    rng.choice(OPERATIONS),
                    rng.randrange(2 + j),
                    rng.choice(OPERATIONS),
                )
                for j in range(blocks)
            )
            for cell in CELL_TYPES
        }
        return cls(**cells)

    def unused_blocks(self, cell: str) -> list[int]:
        """Indices of the blocks of `cell` whose outputs no other block reads."""
        blocks = getattr(self, cell)
        used = {i - 2 for b in blocks for i in (b.input_a, b.input_b) if i >= 2}
        return [j for j in range(len(blocks)) if j not in used]

    def describe(self) -> str:
        """A readable multi-line rendering of both cells.

        Example output:

            normal cell (3 blocks):
              b0 = sep_conv_3x3(h[-1]) + identity(h[-2])
              ...
              out = conv1x1(concat(b1, b2))
        """
        lines = []
        for cell in CELL_TYPES:
            stride = " (stride 2 on h[-2], h[-1])" if cell == "reduce" else ""
            lines.append(f"{cell} cell ({self.blocks} blocks){stride}:")
            for j, b in enumerate(getattr(self, cell)):
                lines.append(
                    f"  b{j} = {b.op_a}({input_name(b.input_a)}) + "
                    f"{b.op_b}({input_name(b.input_b)})"
                )
            outs = [f"b{j}" for j in self.unused_blocks(cell)]
            if not any(1 in (b.input_a, b.input_b) for b in getattr(self, cell)):
                outs.insert(0, "h[-1]")
            outs = ", ".join(outs)
            lines.append(f"  out = conv1x1(concat({outs}))")
        return "\n".join(lines)

    def short(self) -> str:
        """One compact line, e.g. `N[sep3:1+id:0|...] R[...]`."""
        parts = []
        for cell, tag in zip(CELL_TYPES, "NR"):
            blocks = "|".join(
                f"{_SHORT[b.op_a]}:{b.input_a}+{_SHORT[b.op_b]}:{b.input_b}"
                for b in getattr(self, cell)
            )
            parts.append(f"{tag}[{blocks}]")
        return " ".join(parts)


def _block_from(value, cell) -> Block:
    """A `Block` from `{"inputs": [a, b], "ops": [x, y]}` or `[a, x, b, y]`."""
    try:
        if isinstance(value, dict):
            (a, b), (x, y) = value["inputs"], value["ops"]
            return Block(a, x, b, y)
        a, x, b, y = value
        return Block(a, x, b, y)
    except (KeyError, TypeError, ValueError):
        raise UserInputError(
            f"A block of the {cell} cell must be "
            '{"inputs": [i, j], "ops": [op_i, op_j]}. '
            f"Received: {str(value)[:80]}"
        ) from None


def read_genotype_file(path: str) -> dict:
    """The JSON object of a genotype file, checked to hold a valid genotype.

    Besides `normal` and `reduce`, a search's `best_genotype.json` holds
    `cell_norm` (the operations' normalization) and a `search` record.

    Raises:
        UserInputError: naming the file, if it is missing, not JSON or not a
            valid genotype.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise UserInputError(
            f"A genotype file must be a path. Received: {type(path).__name__}"
        )
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserInputError(f"Genotype file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read(_MAX_GENOTYPE_BYTES + 1)
    except (OSError, UnicodeDecodeError) as e:
        raise UserInputError(f"{path}: cannot read the genotype ({e}).") from None
    if len(text) > _MAX_GENOTYPE_BYTES:
        raise UserInputError(
            f"{path}: not a genotype (larger than {_MAX_GENOTYPE_BYTES} bytes)."
        )
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        where = f" ({e.msg} at line {e.lineno})" if hasattr(e, "msg") else ""
        raise UserInputError(f"{path}: not a genotype: corrupt JSON{where}.") from None
    try:
        Genotype.from_dict(data)
    except UserInputError as e:
        raise UserInputError(f"{path}: {e}") from None
    return data


# A genotype of 64 blocks with its search record is about 20 KB.
_MAX_GENOTYPE_BYTES = 1024 * 1024


def load_genotype(path: str) -> Genotype:
    """Reads a genotype JSON file (e.g. a search's `best_genotype.json`).

    Args:
        path: str. The file.

    Returns:
        A `Genotype`.

    Raises:
        UserInputError: naming the file, if it is missing, not JSON or not a
            valid genotype.

    Example:

    ```python
    genotype = load_genotype("tuning/evolution-fashion_mnist/best_genotype.json")
    print(genotype.describe())
    ```
    """
    return Genotype.from_dict(read_genotype_file(path))


def check_cell_norm(cell_norm: str) -> str:
    """Returns `cell_norm` if it is one of `CELL_NORMS`, else raises."""
    if cell_norm not in CELL_NORMS:
        raise UserInputError(
            f"cell_norm must be one of {', '.join(CELL_NORMS)}. "
            f"Received: cell_norm={cell_norm!r}"
        )
    return cell_norm


# ----------------------------------------------------------------------------
# Operations and the cell.


def _conv_norm(x, conv, cell_norm, name):
    """`conv` (a Keras conv layer class with its arguments bound) then BN.

    Without BatchNorm the convolution gets a bias instead, which BN would
    cancel (its mean subtraction) and replace with its own offset.
    """
    x = conv(use_bias=cell_norm == "none")(x)
    if cell_norm == "batch":
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return x


def apply_operation(
    x, op: str, filters: int, stride: int = 1, name: str = "op", cell_norm="none"
):
    """Applies one search-space operation; `filters` channels out.

    Args:
        x: tensor with `filters` channels (cell inputs are projected first).
        op: str. One of `OPERATIONS`.
        filters: int. Output channels.
        stride: int. 1, or 2 on the inputs of a reduction cell. Defaults to 1.
        name: str. Prefix of every sub-layer name.
        cell_norm: str. `"none"` or `"batch"` (BatchNorm after every
            convolution). Defaults to `"none"`.

    Returns:
        Tensor with `filters` channels, spatial size divided by `stride`.

    Example:

    ```python
    y = apply_operation(x, "sep_conv_3x3", 32, stride=2, name="reduce1_b0_a")
    ```
    """
    check_cell_norm(cell_norm)
    relu = functools.partial(layers.Activation, "relu")
    if op == "identity":
        if stride == 1:
            return x
        # A strided identity cannot keep all of its input: a strided 1x1 conv
        # (NASNet's "factorized reduction" without the second, shifted path).
        x = relu(name=f"{name}_relu")(x)
        conv = functools.partial(
            layers.Conv2D, filters, 1, strides=stride, name=f"{name}_conv"
        )
        return _conv_norm(x, conv, cell_norm, name)
    if op in ("sep_conv_3x3", "sep_conv_5x5"):
        # Applied twice, as in NASNet-A; each is ReLU, SeparableConv2D, BN
        # (`blocks.separable.separable_conv_block`, BN optional here).
        k = int(op[-1])
        for i, s in ((1, stride), (2, 1)):
            prefix = f"{name}_{i}"
            x = relu(name=f"{prefix}_relu")(x)
            conv = functools.partial(
                layers.SeparableConv2D,
                filters,
                k,
                strides=s,
                padding="same",
                name=f"{prefix}_sepconv",
            )
            x = _conv_norm(x, conv, cell_norm, prefix)
        return x
    if op in ("op_conv_3x3", "op_conv_5x5"):
        # `blocks.separable.outer_product_block`, BN optional here.
        conv = functools.partial(
            OuterProductConv2D,
            filters,
            int(op[-1]),
            strides=stride,
            padding="same",
            name=f"{name}_opconv",
        )
        x = _conv_norm(x, conv, cell_norm, name)
        return relu(name=f"{name}_relu")(x)
    if op == "dil_sep_conv_3x3":
        x = relu(name=f"{name}_relu")(x)
        # Keras convolutions refuse stride > 1 with dilation > 1: convolve at
        # stride 1, then keep every second position (a 1x1 pool with stride 2).
        conv = functools.partial(
            layers.SeparableConv2D,
            filters,
            3,
            padding="same",
            dilation_rate=2,
            name=f"{name}_sepconv",
        )
        x = _conv_norm(x, conv, cell_norm, name)
        if stride > 1:
            x = layers.MaxPooling2D(1, strides=stride, name=f"{name}_subsample")(x)
        return x
    if op == "conv_1x7_7x1":
        x = relu(name=f"{name}_relu")(x)
        x = layers.Conv2D(
            filters,
            (1, 7),
            strides=(1, stride),
            padding="same",
            use_bias=False,
            name=f"{name}_1x7",
        )(x)
        conv = functools.partial(
            layers.Conv2D,
            filters,
            (7, 1),
            strides=(stride, 1),
            padding="same",
            name=f"{name}_7x1",
        )
        return _conv_norm(x, conv, cell_norm, name)
    if op == "max_pool_3x3":
        return layers.MaxPooling2D(3, strides=stride, padding="same", name=name)(x)
    if op == "avg_pool_3x3":
        return layers.AveragePooling2D(3, strides=stride, padding="same", name=name)(x)
    raise UserInputError(
        f"Unknown operation; choose one of {', '.join(OPERATIONS)}. Received: op={op!r}"
    )


def project(x, filters, stride=1, name="project", cell_norm="none"):
    """ReLU, 1x1 conv (strided if the input is larger), BN: fits a cell input.

    Args:
        x: tensor. A cell input.
        filters: int. Output channels.
        stride: int. 2 when `x` has twice the cell's spatial size.
        name: str. Prefix of every sub-layer name.
        cell_norm: str. `"none"` or `"batch"`. Defaults to `"none"`.

    Returns:
        Tensor with `filters` channels.
    """
    x = layers.Activation("relu", name=f"{name}_relu")(x)
    conv = functools.partial(
        layers.Conv2D, filters, 1, strides=stride, name=f"{name}_conv"
    )
    return _conv_norm(x, conv, check_cell_norm(cell_norm), name)


_project = project  # the name it had in `search.genotype`


def nas_cell(
    h_prev_prev,
    h_prev,
    blocks,
    filters,
    reduction=False,
    name="cell",
    cell_norm="none",
):
    """One searched cell: `B` blocks over two inputs, concat, 1x1 projection.

    Args:
        h_prev_prev: tensor. Output of the cell before the previous one (may
            have twice the spatial size of `h_prev`, after a reduction).
        h_prev: tensor. Output of the previous cell.
        blocks: sequence of `Block`. The cell's genotype.
        filters: int. Channels of every block and of the output.
        reduction: bool. Stride 2 on the operations reading the cell inputs.
            Defaults to False.
        name: str. Prefix of every sub-layer name.
        cell_norm: str. `"none"` or `"batch"` (BatchNorm after every
            convolution). Defaults to `"none"`.

    Returns:
        Tensor with `filters` channels (spatial size halved if `reduction`).

    Example:

    ```python
    out = nas_cell(h0, h1, genotype.normal, 32, name="stage1_cell1")
    ```

    Reference:
        Zoph, Vasudevan, Shlens and Le, "Learning transferable architectures
        for scalable image recognition", CVPR 2018.
    """
    check_cell_norm(cell_norm)
    stride_pp = 2 if h_prev_prev.shape[1] > h_prev.shape[1] else 1
    states = [
        project(h_prev_prev, filters, stride_pp, f"{name}_in0", cell_norm),
        project(h_prev, filters, 1, f"{name}_in1", cell_norm),
    ]
    for j, b in enumerate(blocks):
        branches = []
        for side, index, op in (("a", b.input_a, b.op_a), ("b", b.input_b, b.op_b)):
            stride = 2 if reduction and index < 2 else 1
            branches.append(
                apply_operation(
                    states[index],
                    op,
                    filters,
                    stride,
                    name=f"{name}_b{j}_{side}_{op}",
                    cell_norm=cell_norm,
                )
            )
        states.append(layers.Add(name=f"{name}_b{j}_add")(branches))
    used = {i for b in blocks for i in (b.input_a, b.input_b)}
    outputs = [states[i] for i in range(2, len(states)) if i not in used]
    if 1 not in used:
        # Keep every cell connected: a cell that never reads h[-1] would cut
        # the previous cell out of the network.
        outputs.insert(0, states[1])
        if reduction:
            outputs[0] = layers.MaxPooling2D(
                1, strides=2, name=f"{name}_in1_subsample"
            )(outputs[0])
    x = (
        layers.Concatenate(name=f"{name}_concat")(outputs)
        if len(outputs) > 1
        else outputs[0]
    )
    conv = functools.partial(layers.Conv2D, filters, 1, name=f"{name}_project")
    return _conv_norm(x, conv, cell_norm, f"{name}_project")

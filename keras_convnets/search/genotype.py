"""A NASNet-style cell search space: genotypes, cells and the network they build.

A *cell* has `B` blocks. Block `j` picks two inputs among the cell's inputs
(`h[-2]`, the output of the cell before the previous one, and `h[-1]`, the
previous cell's output) and the outputs of blocks `0 .. j-1`, applies one
operation to each, and adds the two results. The outputs of blocks that no
other block consumed are concatenated and projected to the cell's filters with
a 1x1 convolution (with the projected `h[-1]` too if no block read it, so that
no cell is cut out of the network). A *normal* cell keeps the spatial size; a *reduction* cell
applies its operations with stride 2 to the cell inputs, halving it. The two
cell types are searched separately (Zoph et al. 2018).

A `Genotype` holds the choices of both cells. It is plain data: it converts to
and from JSON and KerasTuner `HyperParameters` (`normal_0_input_a`,
`normal_0_op_a`, ..., `reduce_2_op_b`), and `build_from_genotype` stacks it
into a network:

    stem -> N normal -> reduction -> N normal -> reduction -> N normal
         -> global average pooling -> softmax classifier

with `F` filters in the first stage, doubled at each reduction.

Input indices in a block: 0 is `h[-2]`, 1 is `h[-1]`, `2 + j` is block `j`.
"""

from __future__ import annotations

import dataclasses
import json
import os

import keras
from keras import layers

from keras_convnets.blocks.separable import outer_product_block, separable_conv_block
from keras_convnets.errors import UserInputError

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


def hyperparameter_name(cell: str, block: int, field: str) -> str:
    """The KerasTuner name of one choice, e.g. `normal_0_op_a`.

    Args:
        cell: str. `"normal"` or `"reduce"`.
        block: int. Block index.
        field: str. `"input_a"`, `"op_a"`, `"input_b"` or `"op_b"`.
    """
    return f"{cell}_{block}_{field}"


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
    model = build_from_genotype(g, (28, 28, 1), 10, cells=1, filters=16)
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

    # -- KerasTuner -----------------------------------------------------------

    def to_hyperparameters(self, hp=None):
        """The genotype as KerasTuner `HyperParameters` (declared and set).

        Args:
            hp: `keras_tuner.HyperParameters` to add to. Defaults to a new one.

        Returns:
            `HyperParameters` whose values are this genotype's choices.
        """
        import keras_tuner

        hp = hp if hp is not None else keras_tuner.HyperParameters()
        declare_search_space(hp, self.blocks)
        for cell in CELL_TYPES:
            for j, b in enumerate(getattr(self, cell)):
                for field in ("input_a", "op_a", "input_b", "op_b"):
                    hp.values[hyperparameter_name(cell, j, field)] = getattr(b, field)
        return hp

    @classmethod
    def from_hyperparameters(cls, hp, blocks: int | None = None) -> Genotype:
        """Reads a genotype from `HyperParameters` (or a dict of values).

        With a `HyperParameters` and `blocks`, the choices are declared first
        (`hp.Choice`), so a hypermodel's `build(hp)` can call this directly.

        Args:
            hp: `keras_tuner.HyperParameters` or a dict of values.
            blocks: int. Blocks per cell. Defaults to what the values hold.

        Returns:
            A `Genotype`.
        """
        values = hp if isinstance(hp, dict) else hp.values
        if blocks is None:
            blocks = 0
            while hyperparameter_name("normal", blocks, "op_a") in values:
                blocks += 1
        elif not isinstance(hp, dict):
            declare_search_space(hp, blocks)
            values = hp.values
        if blocks < 1:
            raise UserInputError(
                "No cell choices (normal_0_op_a, ...) in these hyperparameters. "
                f"Received: {sorted(values)[:8]}"
            )
        cells = {}
        for cell in CELL_TYPES:
            try:
                cells[cell] = tuple(
                    Block(
                        *(
                            values[hyperparameter_name(cell, j, field)]
                            for field in ("input_a", "op_a", "input_b", "op_b")
                        )
                    )
                    for j in range(blocks)
                )
            except KeyError as e:
                raise UserInputError(
                    f"Missing cell choice {e.args[0]} in the hyperparameters."
                ) from None
        return cls(**cells)

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


def declare_search_space(hp, blocks: int) -> None:
    """Declares the cell choices of a `blocks`-block search space on `hp`.

    Args:
        hp: `keras_tuner.HyperParameters`.
        blocks: int. Blocks per cell, `B`. `4 * B` choices per cell type.
    """
    if isinstance(blocks, bool) or not isinstance(blocks, int) or blocks < 1:
        raise UserInputError(f"blocks must be an int >= 1. Received: blocks={blocks!r}")
    for cell in CELL_TYPES:
        for j in range(blocks):
            for side in ("a", "b"):
                hp.Choice(
                    hyperparameter_name(cell, j, f"input_{side}"),
                    list(range(2 + j)),
                    default=1 if side == "a" else 0,
                )
                hp.Choice(
                    hyperparameter_name(cell, j, f"op_{side}"),
                    list(OPERATIONS),
                    default="sep_conv_3x3" if side == "a" else "identity",
                )


def load_genotype(path: str) -> Genotype:
    """Reads a genotype JSON file (e.g. a search's `best_genotype.json`).

    Args:
        path: str. The file.

    Returns:
        A `Genotype`.

    Raises:
        UserInputError: naming the file, if it is missing, not JSON or not a
            valid genotype.
    """
    if not os.path.isfile(path):
        raise UserInputError(f"Genotype file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise UserInputError(f"{path}: cannot read the genotype ({e}).") from None
    try:
        return Genotype.from_json(text)
    except UserInputError as e:
        raise UserInputError(f"{path}: {e}") from None


# ----------------------------------------------------------------------------
# Operations, cells, the network.


def apply_operation(x, op: str, filters: int, stride: int = 1, name: str = "op"):
    """Applies one search-space operation; `filters` channels out.

    Args:
        x: tensor with `filters` channels (cell inputs are projected first).
        op: str. One of `OPERATIONS`.
        filters: int. Output channels.
        stride: int. 1, or 2 on the inputs of a reduction cell. Defaults to 1.
        name: str. Prefix of every sub-layer name.

    Returns:
        Tensor with `filters` channels, spatial size divided by `stride`.
    """
    if op == "identity":
        if stride == 1:
            return x
        # A strided identity cannot keep all of its input: a strided 1x1 conv
        # (NASNet's "factorized reduction" without the second, shifted path).
        x = layers.Activation("relu", name=f"{name}_relu")(x)
        x = layers.Conv2D(
            filters, 1, strides=stride, use_bias=False, name=f"{name}_conv"
        )(x)
        return layers.BatchNormalization(name=f"{name}_bn")(x)
    if op in ("sep_conv_3x3", "sep_conv_5x5"):
        # Applied twice, as in NASNet-A.
        k = int(op[-1])
        x = separable_conv_block(x, filters, stride, k, name=f"{name}_1")
        return separable_conv_block(x, filters, 1, k, name=f"{name}_2")
    if op in ("op_conv_3x3", "op_conv_5x5"):
        return outer_product_block(x, filters, stride, int(op[-1]), name=name)
    if op == "dil_sep_conv_3x3":
        x = layers.Activation("relu", name=f"{name}_relu")(x)
        # Keras convolutions refuse stride > 1 with dilation > 1: convolve at
        # stride 1, then keep every second position (a 1x1 pool with stride 2).
        x = layers.SeparableConv2D(
            filters,
            3,
            padding="same",
            dilation_rate=2,
            use_bias=False,
            name=f"{name}_sepconv",
        )(x)
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
        if stride > 1:
            x = layers.MaxPooling2D(1, strides=stride, name=f"{name}_subsample")(x)
        return x
    if op == "conv_1x7_7x1":
        x = layers.Activation("relu", name=f"{name}_relu")(x)
        x = layers.Conv2D(
            filters,
            (1, 7),
            strides=(1, stride),
            padding="same",
            use_bias=False,
            name=f"{name}_1x7",
        )(x)
        x = layers.Conv2D(
            filters,
            (7, 1),
            strides=(stride, 1),
            padding="same",
            use_bias=False,
            name=f"{name}_7x1",
        )(x)
        return layers.BatchNormalization(name=f"{name}_bn")(x)
    if op == "max_pool_3x3":
        return layers.MaxPooling2D(3, strides=stride, padding="same", name=name)(x)
    if op == "avg_pool_3x3":
        return layers.AveragePooling2D(3, strides=stride, padding="same", name=name)(x)
    raise UserInputError(
        f"Unknown operation; choose one of {', '.join(OPERATIONS)}. Received: op={op!r}"
    )


def _project(x, filters, stride, name):
    """ReLU, 1x1 conv (strided if the input is larger), BN: fits a cell input."""
    x = layers.Activation("relu", name=f"{name}_relu")(x)
    x = layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}_conv")(
        x
    )
    return layers.BatchNormalization(name=f"{name}_bn")(x)


def nas_cell(h_prev_prev, h_prev, blocks, filters, reduction=False, name="cell"):
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

    Returns:
        Tensor with `filters` channels (spatial size halved if `reduction`).

    Example:

    ```python
    out = nas_cell(h0, h1, genotype.normal, 32, name="stage1_cell1")
    ```
    """
    stride_pp = 2 if h_prev_prev.shape[1] > h_prev.shape[1] else 1
    states = [
        _project(h_prev_prev, filters, stride_pp, f"{name}_in0"),
        _project(h_prev, filters, 1, f"{name}_in1"),
    ]
    for j, b in enumerate(blocks):
        branches = []
        for side, index, op in (("a", b.input_a, b.op_a), ("b", b.input_b, b.op_b)):
            stride = 2 if reduction and index < 2 else 1
            branches.append(
                apply_operation(
                    states[index], op, filters, stride, name=f"{name}_b{j}_{side}_{op}"
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
    x = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_project")(x)
    return layers.BatchNormalization(name=f"{name}_project_bn")(x)


def build_from_genotype(
    genotype: Genotype,
    input_shape,
    num_classes: int,
    cells: int = 1,
    filters: int = 16,
    name: str = "nas_cell_net",
) -> keras.Model:
    """Stacks a genotype's cells into a classifier.

    `stem -> N normal -> reduction -> N normal -> reduction -> N normal ->
    global average pooling -> softmax`, with `filters` channels in the first
    stage, doubled at each reduction. Layers are named `stem_*`,
    `stage{s}_cell{i}_*`, `reduce{s}_*`, `head_*` and `predictions`.

    Args:
        genotype: `Genotype`. The normal and reduction cells.
        input_shape: tuple. `(height, width, channels)`.
        num_classes: int. Classes of the softmax output.
        cells: int. Normal cells per stage, `N` (0 allowed). Defaults to 1.
        filters: int. Filters of the first stage, `F`. Defaults to 16.
        name: str. Model name. Defaults to `"nas_cell_net"`.

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
    if not isinstance(genotype, Genotype):
        raise UserInputError(
            f"genotype must be a Genotype. Received: genotype={type(genotype).__name__}"
        )
    for label, value, low in (
        ("cells", cells, 0),
        ("filters", filters, 1),
        ("num_classes", num_classes, 1),
    ):
        if isinstance(value, bool) or int(value) != value or value < low:
            raise UserInputError(
                f"{label} must be an int >= {low}. Received: {label}={value!r}"
            )
    input_shape = tuple(int(d) for d in input_shape)
    if len(input_shape) != 3 or min(input_shape) < 1:
        raise UserInputError(
            f"input_shape must be (height, width, channels). "
            f"Received: input_shape={input_shape}"
        )
    cells, filters = int(cells), int(filters)
    inputs = keras.Input(input_shape, name="images")
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name="stem_conv")(
        inputs
    )
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
            )
            prev_prev, prev = prev, out
        for i in range(1, cells + 1):
            out = nas_cell(
                prev_prev, prev, genotype.normal, width, name=f"stage{stage}_cell{i}"
            )
            prev_prev, prev = prev, out
    x = layers.Activation("relu", name="head_relu")(prev)
    x = layers.GlobalAveragePooling2D(name="head_pool")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)

"""The cell search space as KerasTuner hyperparameters.

The cell, its `Genotype` and its operations live in
`keras_convnets.blocks.nas_cell`; the network they stack into is the
registered model `nas_cell_net` (`keras_convnets.models.nas_cell_net`). This
module declares the space for KerasTuner: one `hp.Choice` per choice of a
block (`normal_0_input_a`, `normal_0_op_a`, ..., `reduce_2_op_b`), and a
`Genotype` that converts to and from `HyperParameters`.

The names that lived here before the move (`build_from_genotype`,
`apply_operation`, `nas_cell`, `Block`, `OPERATIONS`, ...) are re-exported, so
old imports keep working.
"""

from __future__ import annotations

from keras_convnets.blocks import nas_cell as _cell
from keras_convnets.blocks.nas_cell import (  # noqa: F401 (re-exported)
    CELL_NORMS,
    CELL_TYPES,
    OPERATIONS,
    Block,
    apply_operation,
    input_name,
    nas_cell,
    project,
    read_genotype_file,
)
from keras_convnets.errors import UserInputError
from keras_convnets.models.nas_cell_net import (  # noqa: F401 (re-exported)
    build_from_genotype,
    filters_for_budget,
)


def hyperparameter_name(cell: str, block: int, field: str) -> str:
    """The KerasTuner name of one choice, e.g. `normal_0_op_a`.

    Args:
        cell: str. `"normal"` or `"reduce"`.
        block: int. Block index.
        field: str. `"input_a"`, `"op_a"`, `"input_b"` or `"op_b"`.
    """
    return f"{cell}_{block}_{field}"


class Genotype(_cell.Genotype):
    """A `blocks.nas_cell.Genotype` that converts to and from KerasTuner.

    Every `Genotype` method and constructor works as in
    `keras_convnets.blocks.nas_cell`; this class adds `to_hyperparameters`
    and `from_hyperparameters`.

    Example:

    ```python
    hp = Genotype.random(blocks=3, seed=0).to_hyperparameters()
    g = Genotype.from_hyperparameters(hp)
    ```
    """

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
        A `Genotype` (this module's, with the KerasTuner conversions).

    Raises:
        UserInputError: naming the file, if it is missing, not JSON or not a
            valid genotype.
    """
    return Genotype.from_dict(read_genotype_file(path))

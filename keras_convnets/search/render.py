"""PNG diagrams of a searched cell (matplotlib, no graphviz needed)."""

from __future__ import annotations

import io as _io

from keras_convnets.search import state
from keras_convnets.search.genotype import Genotype, input_name


def plot_cell(genotype: Genotype, cell: str = "normal", path: str | None = None):
    """Draws one cell of a genotype as a left-to-right graph.

    The cell inputs `h[-2]` and `h[-1]` are on the left, then the blocks in
    order, each with its two incoming edges labelled by their operations, then
    the concatenation of the unused block outputs and the 1x1 projection.

    Args:
        genotype: `Genotype`.
        cell: str. `"normal"` or `"reduce"`. Defaults to `"normal"`.
        path: str. Where to write the PNG (atomically); None to only return it.

    Returns:
        The PNG bytes.

    Example:

    ```python
    plot_cell(genotype, "reduce", "tuning/evolution-fashion_mnist/reduce_cell.png")
    ```
    """
    # A bare Figure (no pyplot): no global state, no GUI backend.
    from matplotlib.figure import Figure

    blocks = getattr(genotype, cell)
    n = len(blocks)
    positions = {0: (0.0, 1.0), 1: (0.0, -1.0)}
    for j in range(n):
        positions[2 + j] = (2.0 + 2.0 * j, 1.2 if j % 2 == 0 else -1.2)
    out_x = 2.0 + 2.0 * n
    positions["out"] = (out_x, 0.0)

    fig = Figure(figsize=(2.2 + 1.6 * n, 3.4), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    ax.set_axis_off()
    title = "normal cell" if cell == "normal" else "reduction cell (stride 2 on inputs)"
    ax.set_title(title, fontsize=10)

    def node(key, label, color):
        x, y = positions[key]
        ax.text(
            x,
            y,
            label,
            ha="center",
            va="center",
            fontsize=9,
            bbox=dict(boxstyle="round,pad=0.35", fc=color, ec="0.3"),
            zorder=3,
        )

    def edge(src, dst, label=None, rad=0.0):
        (x0, y0), (x1, y1) = positions[src], positions[dst]
        ax.annotate(
            "",
            xy=(x1 - 0.35, y1),
            xytext=(x0 + 0.35, y0),
            arrowprops=dict(
                arrowstyle="->", color="0.35", connectionstyle=f"arc3,rad={rad}"
            ),
            zorder=1,
        )
        if label:
            ax.text(
                (x0 + x1) / 2,
                (y0 + y1) / 2 + rad * 1.5,
                label,
                ha="center",
                va="center",
                fontsize=7,
                color="tab:blue",
                bbox=dict(boxstyle="square,pad=0.1", fc="white", ec="none", alpha=0.8),
                zorder=2,
            )

    node(0, input_name(0), "#dde8f5")
    node(1, input_name(1), "#dde8f5")
    for j, b in enumerate(blocks):
        node(2 + j, f"b{j} (+)", "#fbe3c4")
        same = b.input_a == b.input_b
        edge(b.input_a, 2 + j, b.op_a, rad=0.25 if same else 0.0)
        edge(b.input_b, 2 + j, b.op_b, rad=-0.25 if same else 0.0)
    node("out", "concat\n1x1 conv", "#d6f0d2")
    for j in genotype.unused_blocks(cell):
        edge(2 + j, "out")
    if not any(1 in (b.input_a, b.input_b) for b in blocks):
        edge(1, "out", rad=-0.3)  # an unread h[-1] joins the output
    ax.set_xlim(-0.8, out_x + 0.8)
    ax.set_ylim(-2.0, 2.0)
    fig.tight_layout()
    buffer = _io.BytesIO()
    fig.savefig(buffer, format="png")
    data = buffer.getvalue()
    if path is not None:
        state.write_bytes(path, data)
    return data

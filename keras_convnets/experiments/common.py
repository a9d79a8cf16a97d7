"""Output helpers shared by the experiments: folder, results, figures, summary."""

from __future__ import annotations

import os

from keras_convnets.training.io import atomic_path, atomic_write_json


def experiment_dir(out_dir: str, name: str) -> str:
    """Creates and returns OUT_DIR/NAME."""
    path = os.path.join(out_dir, name)
    os.makedirs(path, exist_ok=True)
    return path


def write_results(directory: str, results: dict) -> None:
    """Writes results.json atomically."""
    atomic_write_json(os.path.join(directory, "results.json"), results)


def save_figure(fig, path: str) -> None:
    """Saves a matplotlib figure as PNG atomically and closes it."""
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def write_summary(directory: str, text: str) -> None:
    """Writes summary.md atomically."""
    with atomic_path(os.path.join(directory, "summary.md")) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text.rstrip() + "\n")


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A GitHub markdown table; floats get 4 decimals."""

    def cell(v):
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)

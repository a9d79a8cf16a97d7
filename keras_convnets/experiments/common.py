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


def train_config(
    quick: bool, seed: int, data_dir: str | None, full: dict | None = None, **flags
):
    """A TrainConfig for an experiment: the package's defaults, no validation split.

    Quick runs take 2 epochs in batches of 64 (for tests on a small subset given
    by `data_dir`); full runs 10 epochs in batches of 128, then `full` (the
    experiment's sizing, e.g. `{"train_fraction": 0.25}`, so that a full run
    fits in about ten minutes on 2 CPU cores). `flags` apply to both.
    """
    from keras_convnets.training.config import resolve_config

    values = {
        "dataset": "fashion_mnist",
        "validation_fraction": 0.0,
        "epochs": 2 if quick else 10,
        "batch_size": 64 if quick else 128,
        "warmup_epochs": 0.0 if quick else 1.0,
        "seed": seed,
    }
    if data_dir:
        values["data_dir"] = data_dir
    if not quick:
        values.update(full or {})
    values.update(flags)
    return resolve_config({}, values)


def fit_curves(model, config, train=None, test=None) -> dict:
    """Trains `model` with the package's optimizer; returns per-epoch curves.

    Args:
        model: keras.Model with a softmax output.
        config: TrainConfig (epochs, optimizer, schedule, augmentation, data).
        train, test: datasets with one-hot labels; `make_datasets(config)`
            when None.

    Returns:
        `{"train_accuracy": [...], "test_accuracy": [...], "params": int}` with
        one entry per epoch (training accuracy on the augmented batches).
    """
    import keras

    from keras_convnets.training.train import build_optimizer, make_datasets

    if train is None or test is None:
        train, _, test, _ = make_datasets(config)
    steps = int(train.cardinality().numpy())
    keras.utils.set_random_seed(config.seed)
    model.compile(
        optimizer=build_optimizer(config, max(1, steps)),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    history = model.fit(
        train, validation_data=test, epochs=config.epochs, verbose=0, shuffle=False
    )
    return {
        "train_accuracy": [float(v) for v in history.history["accuracy"]],
        "test_accuracy": [float(v) for v in history.history["val_accuracy"]],
        "params": int(model.count_params()),
    }

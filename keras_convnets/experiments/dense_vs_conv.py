"""`dense-vs-conv`: MLP vs locally connected vs convolution (lecture parts 1-2).

Three networks with comparable parameter budgets (about 80-100k) on
Fashion-MNIST, each trained with and without random translations:

- `mlp`: the zoo's MLP, one hidden layer of 128 units (no locality),
- `locally_connected`: 16 5x5 filters at stride 2 *per position*
  (`keras_convnets.layers.LocallyConnected2D`: patchy connectivity, no weight
  sharing), then a linear readout,
- `conv`: the same layout with one shared set of 64 5x5 filters (`Conv2D`).

The lecture's claim: patchy connectivity plus augmentation approaches
convolution, because augmentation teaches each position what weight sharing
gives for free. Learning curves (train and test accuracy per epoch) land in
`curves.png`.
"""

from __future__ import annotations

from keras_convnets.experiments.common import (
    experiment_dir,
    fit_curves,
    markdown_table,
    pyplot,
    save_figure,
    train_config,
    write_results,
    write_summary,
)

NAME = "dense-vs-conv"
MODELS = ("mlp", "locally_connected", "conv")
AUGMENTATIONS = ("none", "translate")
# Full-run sizing: 10 epochs on half the training set (30,000 images), about
# ten minutes on 2 CPU cores for the six trainings.
FULL = {"train_fraction": 0.5}


def build(kind: str, input_shape=(28, 28, 1), num_classes=10, quick=False):
    """One of the three networks (`kind` in MODELS)."""
    import keras

    from keras_convnets import get_model
    from keras_convnets.layers import LocallyConnected2D

    scale = 2 if quick else 1  # quick: half the width, for tests
    if kind == "mlp":
        return get_model(
            "mlp", input_shape, num_classes, units=(128 // scale,), dropout=0.0
        )
    if kind not in MODELS:
        raise ValueError(f"Unknown model. Expected one of {MODELS}. Received: {kind!r}")
    inputs = keras.Input(input_shape)
    if kind == "locally_connected":
        x = LocallyConnected2D(
            16 // scale, 5, strides=2, activation="relu", name="lc1"
        )(inputs)
    else:
        x = keras.layers.Conv2D(
            64 // scale, 5, strides=2, activation="relu", name="conv1"
        )(inputs)
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="predictions")(
        x
    )
    return keras.Model(inputs, outputs, name=kind)


def run(out_dir, quick=False, seed=0, data_dir=None) -> dict:
    """Trains the three networks with and without translation augmentation.

    Args:
        out_dir: str. Results land in OUT_DIR/dense-vs-conv.
        quick: bool. 2 epochs, half-width models (for tests; use a small
            `data_dir`).
        seed: int. Seeds data order, augmentation and initialization.
        data_dir: str or None. Folder with Fashion-MNIST IDX files.

    Returns:
        The results dict: `runs[model][augmentation]` with per-epoch
        `train_accuracy`, `test_accuracy`, `params`, and `final_test_accuracy`.
    """
    from keras_convnets.training.train import make_datasets

    directory = experiment_dir(out_dir, NAME)
    runs = {m: {} for m in MODELS}
    for augment in AUGMENTATIONS:
        config = train_config(quick, seed, data_dir, FULL, augment=augment)
        train, _, test, info = make_datasets(config)
        for kind in MODELS:
            model = build(kind, info.image_shape, info.num_classes, quick=quick)
            curves = fit_curves(model, config, train, test)
            curves["final_test_accuracy"] = curves["test_accuracy"][-1]
            runs[kind][augment] = curves
    results = {
        "experiment": NAME,
        "quick": quick,
        "seed": seed,
        "dataset": info.name,
        "train_examples": int(info.sizes["train"]),
        "test_examples": int(info.sizes["test"]),
        "epochs": config.epochs,
        "runs": runs,
        "params": {m: runs[m]["none"]["params"] for m in MODELS},
    }
    write_results(directory, results)
    _plot(directory, runs)
    _summary(directory, results)
    return results


def _plot(directory, runs):
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for ax, augment in zip(axes, AUGMENTATIONS):
        for i, kind in enumerate(MODELS):
            c = runs[kind][augment]
            epochs = range(1, len(c["test_accuracy"]) + 1)
            ax.plot(epochs, c["test_accuracy"], f"C{i}-", label=f"{kind} test")
            ax.plot(epochs, c["train_accuracy"], f"C{i}:", label=f"{kind} train")
        ax.set_title(f"augmentation: {augment}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy")
        ax.legend(fontsize=7)
    save_figure(fig, f"{directory}/curves.png")


def _summary(directory, r):
    rows = [
        [kind, f"{r['params'][kind]:,}"]
        + [r["runs"][kind][a]["final_test_accuracy"] for a in AUGMENTATIONS]
        + [r["runs"][kind][a]["train_accuracy"][-1] for a in AUGMENTATIONS]
        for kind in MODELS
    ]
    header = ["model", "params", "test (none)", "test (translate)"]
    header += ["train (none)", "train (translate)"]
    text = f"""# dense-vs-conv: MLP vs locally connected vs convolution

{r["dataset"]}, {r["train_examples"]} training and {r["test_examples"]} test
images, {r["epochs"]} epochs{" (quick run)" if r["quick"] else ""}; with and
without random translations of the training batches.

{markdown_table(header, rows)}

The lecture's claim: patchy connectivity (locally connected) plus augmentation
approaches convolution. Compare the locally connected row's gain from
translation with the conv row. Learning curves: `curves.png`.
"""
    write_summary(directory, text)

"""`pooling`: max vs mean vs L2 vs median vs no pooling (lecture part 3).

The zoo's `illing` net (40x40 canvas, three stages of [3x3 conv stride 2,
2x2 pool stride 1]) with its pooling layers swapped, everything else equal:

- `max`: `MaxPooling2D` (Illing's net as in the lecture),
- `mean`: `AveragePooling2D`,
- `l2`: `keras_convnets.layers.L2Pooling2D` (the Euclidean norm of the window),
- `median`: `keras_convnets.layers.MedianPooling2D`,
- `none`: no pooling stage, only the strided convolutions (all-conv); the last
  stage is then 4x4 instead of 2x2, so only the readout grows.

Each is trained on centred Fashion-MNIST images and measured with the
`translation-invariance` experiment's code: the cosine similarity and the
fraction of unchanged activations of the representation when the input shifts
by 0..k pixels, and test accuracy on shifted test sets. The lecture's claims
(part 3, summary): max pooling can be replaced in practice by mean pooling,
and a pooling stage may not be needed at all; pooling with stride one helps
local translation invariance.
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

NAME = "pooling"
POOLS = ("max", "mean", "l2", "median", "none")
# Full-run sizing: 5 epochs on a tenth of the training set (6,000 images);
# shifts measured on the first 2,000 test images. About ten minutes for the
# five trainings on 2 CPU cores shared with other jobs.
FULL = {"train_fraction": 0.1, "epochs": 5}
FULL_SHIFT_IMAGES = 2000


def _pool_layer(pool: str, name: str):
    import keras

    from keras_convnets.layers import L2Pooling2D, MedianPooling2D

    layers = {
        "max": lambda: keras.layers.MaxPooling2D(2, strides=1, name=name),
        "mean": lambda: keras.layers.AveragePooling2D(2, strides=1, name=name),
        "l2": lambda: L2Pooling2D(2, strides=1, name=name),
        "median": lambda: MedianPooling2D(2, strides=1, name=name),
        "none": lambda: keras.layers.Identity(name=name),
    }
    if pool not in layers:
        raise ValueError(f"Unknown pool. Expected one of {POOLS}. Received: {pool!r}")
    return layers[pool]()


def build(pool: str, num_classes=10, filters=(32, 64, 128)):
    """The zoo's `illing` net on a 40x40x1 canvas with its pooling replaced.

    Args:
        pool: str. One of `POOLS`; `"none"` puts an identity where the pools were.
        num_classes: int. Defaults to 10.
        filters: tuple of int. Filters per stage. Defaults to `(32, 64, 128)`.

    Returns:
        A `keras.Model` named `illing_<pool>` whose layer `"representation"`
        is the flattened last stage.
    """
    import keras

    from keras_convnets import get_model
    from keras_convnets.experiments.translation_invariance import CANVAS

    base = get_model(
        "illing", (CANVAS, CANVAS, 1), num_classes, stackwise_num_filters=filters
    )

    def swap(layer):
        if isinstance(layer, keras.layers.MaxPooling2D):
            return _pool_layer(pool, layer.name)
        return layer.__class__.from_config(layer.get_config())

    model = keras.models.clone_model(base, clone_function=swap)
    return keras.Model(model.inputs, model.outputs, name=f"illing_{pool}")


def run(out_dir, quick=False, seed=0, data_dir=None) -> dict:
    """Trains Illing's net with each pooling and measures accuracy and invariance.

    Args:
        out_dir: str. Results land in OUT_DIR/pooling.
        quick: bool. 2 epochs, a quarter of the filters, shifts up to 3 (for
            tests on a small `data_dir`).
        seed: int. Seeds data order and initialization.
        data_dir: str or None. Folder with Fashion-MNIST IDX files.

    Returns:
        The results dict: `pools[pool]` with `params`, `flops`,
        `representation_shape`, per-epoch `test_accuracy_curve`, final
        `test_accuracy`, and per shift s = 0..max_shift `cosine[s]`,
        `unchanged[s]`, `shifted_accuracy[s]`.
    """
    import numpy as np

    from keras_convnets.experiments.translation_invariance import (
        CANVAS,
        on_canvas,
        representation_change,
        shifted_accuracy,
    )
    from keras_convnets.models.flops import count_flops
    from keras_convnets.training.train import make_datasets

    directory = experiment_dir(out_dir, NAME)
    config = train_config(quick, seed, data_dir, FULL)
    train, _, test, info = make_datasets(config)
    train_c, test_c = on_canvas(train), on_canvas(test)
    images = np.concatenate([x.numpy() for x, _ in test_c])
    labels = np.concatenate([y.numpy().argmax(-1) for _, y in test_c])
    if not quick:
        images, labels = images[:FULL_SHIFT_IMAGES], labels[:FULL_SHIFT_IMAGES]
    max_shift = 3 if quick else 6
    filters = (8, 16, 32) if quick else (32, 64, 128)
    pools = {}
    for pool in POOLS:
        model = build(pool, info.num_classes, filters)
        curves = fit_curves(model, config, train_c, test_c)
        cosine, unchanged, shape = representation_change(model, images, max_shift)
        pools[pool] = {
            "params": curves["params"],
            "flops": int(count_flops(model)),
            "representation_shape": shape,
            "test_accuracy_curve": curves["test_accuracy"],
            "test_accuracy": curves["test_accuracy"][-1],
            "cosine": cosine,
            "unchanged": unchanged,
            "shifted_accuracy": shifted_accuracy(model, images, labels, max_shift),
        }
    results = {
        "experiment": NAME,
        "quick": quick,
        "seed": seed,
        "dataset": info.name,
        "train_examples": int(info.sizes["train"]),
        "test_examples": int(info.sizes["test"]),
        "shift_examples": int(len(images)),
        "canvas": CANVAS,
        "filters": list(filters),
        "epochs": config.epochs,
        "shifts": list(range(max_shift + 1)),
        "shift_direction": "diagonal (dy = dx = s)",
        "pools": pools,
    }
    write_results(directory, results)
    _plot(directory, results)
    _summary(directory, results)
    return results


def _plot(directory, r):
    plt = pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(20, 4.2))
    for i, (pool, v) in enumerate(r["pools"].items()):
        epochs = range(1, len(v["test_accuracy_curve"]) + 1)
        axes[0].plot(epochs, v["test_accuracy_curve"], f"C{i}o-", label=pool)
        axes[1].plot(r["shifts"], v["cosine"], f"C{i}o-", label=pool)
        axes[2].plot(r["shifts"], v["unchanged"], f"C{i}o-", label=pool)
        axes[3].plot(r["shifts"], v["shifted_accuracy"], f"C{i}o-", label=pool)
    axes[0].set_xlabel("epoch")
    axes[0].set_title("test accuracy (centred)")
    titles = ("cosine similarity to unshifted", "fraction unchanged", "test accuracy")
    for ax, title in zip(axes[1:], titles):
        ax.set_title(title)
        ax.set_xlabel("diagonal shift (pixels)")
    for ax in axes:
        ax.legend(fontsize=7)
    save_figure(fig, f"{directory}/pooling.png")


def _summary(directory, r):
    last = r["shifts"][-1]
    rows = [
        [
            pool,
            f"{v['params']:,}",
            f"{v['flops']:,}",
            "x".join(map(str, v["representation_shape"])),
            v["test_accuracy"],
            v["cosine"][1],
            v["unchanged"][1],
            v["shifted_accuracy"][2] if last >= 2 else v["shifted_accuracy"][-1],
            v["shifted_accuracy"][-1],
        ]
        for pool, v in r["pools"].items()
    ]
    header = ["pooling (2x2, stride 1)", "params", "FLOPs", "representation"]
    header += ["test acc", "cosine @1px", "unchanged @1px"]
    header += [f"test acc @{min(2, last)}px", f"test acc @{last}px"]
    text = f"""# pooling: max vs mean vs L2 vs median vs none

Illing's net ({r["filters"]} filters, 3x3 convolutions at stride 2, 2x2
pooling at stride 1) on {r["dataset"]} ({r["train_examples"]} training,
{r["test_examples"]} test images) centred on a {r["canvas"]}x{r["canvas"]}
canvas, {r["epochs"]} epochs{" (quick run)" if r["quick"] else ""}. Shifts are
diagonal, measured on the first {r["shift_examples"]} test images; accuracy
under shifts is on those images shifted, after training on centred images
only.

{markdown_table(header, rows)}

Pooling layers have no weights: the parameter counts differ only in the
readout (`none` keeps a 4x4 instead of a 2x2 last stage). The lecture's
claims: max pooling can be replaced by mean pooling, and a pooling stage may
not be necessary. Curves: `pooling.png`.
"""
    write_summary(directory, text)

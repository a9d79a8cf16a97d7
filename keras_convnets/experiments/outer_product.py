"""`outer-product`: full vs outer-product vs depthwise-separable filters (part 6).

A `f x f x C` filter has `f * f * C` weights; written as the outer product of
a `1 x 1 x C` depth filter and an `f x f` spatial filter it has `f * f + C`
(the lecture: a 5x5x100 filter needs 2,500 weights in full, 125 in
outer-product form). A depthwise-separable convolution (MobileNet) factors
the other way round: one `f x f` filter per input channel, then a 1x1 mix.

The experiment counts this for the lecture's example with real layers, then
trains three versions of the zoo's `simple_cnn` (5x5 kernels, BatchNorm,
2x2 max-pool after each stage, no hidden dense layer) on Fashion-MNIST that
differ only in the convolutions after the first:

- `full`: `Conv2D`,
- `outer_product`: `keras_convnets.layers.OuterProductConv2D`,
- `separable`: `SeparableConv2D` (depthwise then pointwise).

The first convolution sees a single grey channel, where no factorization
saves anything, so it stays a full `Conv2D` in all three (as in MobileNet).
Reported: parameters (all and in the convolutions), forward FLOPs per image
(`keras_convnets.models.flops.count_flops`), test accuracy per epoch and
training time.
"""

from __future__ import annotations

import time

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

NAME = "outer-product"
KINDS = ("full", "outer_product", "separable")
# Full-run sizing: 10 epochs on a fifth of the training set (12,000 images)
# with filters (16, 32), about ten minutes on 2 busy CPU cores for the three
# trainings.
FULL = {"train_fraction": 0.2}
FULL_FILTERS = (16, 32)


def conv_layer(kind: str, filters: int, kernel_size, name: str, **kwargs):
    """A convolution of `kind` (in `KINDS`) with `padding="same"`."""
    import keras

    from keras_convnets.layers import OuterProductConv2D

    classes = {
        "full": keras.layers.Conv2D,
        "outer_product": OuterProductConv2D,
        "separable": keras.layers.SeparableConv2D,
    }
    if kind not in classes:
        raise ValueError(f"Unknown kind. Expected one of {KINDS}. Received: {kind!r}")
    return classes[kind](filters, kernel_size, padding="same", name=name, **kwargs)


def build(kind: str, input_shape=(28, 28, 1), num_classes=10, filters=(32, 64)):
    """The zoo's `simple_cnn` (5x5 kernels, no hidden dense layer), its
    convolutions after the first replaced by `kind`.

    Args:
        kind: str. One of `KINDS`.
        input_shape: tuple. Defaults to `(28, 28, 1)`.
        num_classes: int. Defaults to 10.
        filters: tuple of int. Filters per stage (two convolutions each).
            Defaults to `(32, 64)`.

    Returns:
        A `keras.Model` named `simple_cnn_<kind>`.
    """
    import keras

    from keras_convnets import get_model

    base = get_model(
        "simple_cnn",
        input_shape,
        num_classes,
        stackwise_num_filters=filters,
        kernel_size=5,
        dense_units=0,
    )
    first = "stage1_conv1"

    def swap(layer):
        if type(layer) is keras.layers.Conv2D and layer.name != first:
            return conv_layer(
                kind,
                layer.filters,
                layer.kernel_size,
                layer.name,
                use_bias=layer.use_bias,
            )
        return layer.__class__.from_config(layer.get_config())

    model = keras.models.clone_model(base, clone_function=swap)
    return keras.Model(model.inputs, model.outputs, name=f"simple_cnn_{kind}")


def conv_params(model) -> int:
    """Weights in the model's convolutions (any of the three kinds)."""
    import keras

    from keras_convnets.layers import OuterProductConv2D

    kinds = (keras.layers.Conv2D, keras.layers.SeparableConv2D, OuterProductConv2D)
    return int(
        sum(layer.count_params() for layer in model.layers if isinstance(layer, kinds))
    )


def lecture_example(size=28, channels=100, kernel=5, filters=(1, 64)) -> list[dict]:
    """Weights and FLOPs of one convolution on a `size x size x channels` input,
    per kind and number of filters, counted from real layers without biases."""
    import keras

    from keras_convnets.models.flops import count_flops

    rows = []
    for k in filters:
        for kind in KINDS:
            inputs = keras.Input((size, size, channels))
            layer = conv_layer(kind, k, kernel, "conv", use_bias=False)
            model = keras.Model(inputs, layer(inputs))
            rows.append(
                {
                    "kind": kind,
                    "filters": k,
                    "filter_shape": f"{kernel}x{kernel}x{channels}",
                    "weights": int(model.count_params()),
                    "flops": int(count_flops(model)),
                }
            )
    return rows


def run(out_dir, quick=False, seed=0, data_dir=None) -> dict:
    """Counts the lecture's example and trains the three kinds of filters.

    Args:
        out_dir: str. Results land in OUT_DIR/outer-product.
        quick: bool. 2 epochs, filters (8, 16) (for tests on a small
            `data_dir`).
        seed: int. Seeds data order and initialization.
        data_dir: str or None. Folder with Fashion-MNIST IDX files.

    Returns:
        The results dict: `lecture_example` (rows of kind, filters, weights,
        FLOPs) and `models[kind]` with `params`, `conv_params`, `flops`,
        per-epoch `train_accuracy` and `test_accuracy`, final
        `final_test_accuracy` and `train_seconds`.
    """
    from keras_convnets.models.flops import count_flops
    from keras_convnets.training.train import make_datasets

    directory = experiment_dir(out_dir, NAME)
    config = train_config(quick, seed, data_dir, FULL)
    train, _, test, info = make_datasets(config)
    filters = (8, 16) if quick else FULL_FILTERS
    models = {}
    for kind in KINDS:
        model = build(kind, info.image_shape, info.num_classes, filters)
        start = time.perf_counter()
        curves = fit_curves(model, config, train, test)
        curves["train_seconds"] = round(time.perf_counter() - start, 1)
        curves["conv_params"] = conv_params(model)
        curves["flops"] = int(count_flops(model))
        curves["final_test_accuracy"] = curves["test_accuracy"][-1]
        models[kind] = curves
    results = {
        "experiment": NAME,
        "quick": quick,
        "seed": seed,
        "dataset": info.name,
        "train_examples": int(info.sizes["train"]),
        "test_examples": int(info.sizes["test"]),
        "filters": list(filters),
        "kernel_size": 5,
        "epochs": config.epochs,
        "lecture_example": lecture_example(),
        "models": models,
    }
    write_results(directory, results)
    _plot(directory, results)
    _summary(directory, results)
    return results


def _plot(directory, r):
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for i, (kind, c) in enumerate(r["models"].items()):
        epochs = range(1, len(c["test_accuracy"]) + 1)
        label = f"{kind} ({c['conv_params']:,} conv weights)"
        axes[0].plot(epochs, c["test_accuracy"], f"C{i}o-", label=f"{label} test")
        axes[0].plot(epochs, c["train_accuracy"], f"C{i}:", label=f"{kind} train")
        axes[1].scatter(c["flops"] / 1e6, c["final_test_accuracy"], color=f"C{i}")
        axes[1].annotate(kind, (c["flops"] / 1e6, c["final_test_accuracy"]))
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("accuracy")
    axes[0].legend(fontsize=7)
    axes[1].set_xlabel("forward MFLOPs per image")
    axes[1].set_ylabel("final test accuracy")
    save_figure(fig, f"{directory}/outer_product.png")


def _summary(directory, r):
    example = [
        [
            e["filters"],
            e["filter_shape"],
            e["kind"],
            f"{e['weights']:,}",
            f"{e['flops']:,}",
        ]
        for e in r["lecture_example"]
    ]
    rows = [
        [
            kind,
            f"{c['params']:,}",
            f"{c['conv_params']:,}",
            f"{c['flops']:,}",
            c["final_test_accuracy"],
            c["train_accuracy"][-1],
            f"{c['train_seconds']:.0f}",
        ]
        for kind, c in r["models"].items()
    ]
    header = ["convolutions", "params", "conv params", "FLOPs/image"]
    header += ["test acc", "train acc", "train s"]
    text = f"""# outer-product: full vs outer-product vs depthwise-separable filters

## The lecture's example, counted from real layers (no biases, 28x28 input)

{markdown_table(["filters", "filter", "kind", "weights", "FLOPs"], example)}

## Training

`simple_cnn` with filters {r["filters"]}, {r["kernel_size"]}x{r["kernel_size"]}
kernels, on {r["dataset"]} ({r["train_examples"]} training, {r["test_examples"]}
test images), {r["epochs"]} epochs{" (quick run)" if r["quick"] else ""}; every
convolution but the first is of the given kind.

{markdown_table(header, rows)}

Training seconds are wall time on a shared machine: a rough guide only.
Curves: `outer_product.png`.
"""
    write_summary(directory, text)

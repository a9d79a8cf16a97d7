"""`translation-invariance`: how much a pooling choice buys (lecture part 3).

Fashion-MNIST images (28x28) centred on a 40x40 canvas train four networks of
Illing's layout, three stages of 3x3 convolutions with filters (32, 64, 128):

- `max_stride1`: the zoo's `illing` (conv stride 2, 2x2 max-pool stride 1),
- `max_stride2`: conv stride 1, 2x2 max-pool stride 2 (the same downsampling),
- `avg_stride1`: conv stride 2, 2x2 average pool stride 1,
- `no_pool`: conv stride 2 only (all-conv).

For each, the representation (the flattened last stage; 2x2x128 for Illing's
net) of centred test images is compared with that of the same images shifted
by 1..k pixels: cosine similarity and the fraction of unchanged activations.
Test accuracy on shifted test sets is measured after training on centred
images, and for Illing's net also after training on randomly placed ones
(translation augmentation).
"""

from __future__ import annotations

import numpy as np

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

NAME = "translation-invariance"
CANVAS = 40
VARIANTS = ("max_stride1", "max_stride2", "avg_stride1", "no_pool")
# Full-run sizing: 10 epochs on a quarter of the training set (15,000 images),
# about ten minutes on 2 CPU cores for the five trainings.
FULL = {"train_fraction": 0.25}


def build(variant: str, num_classes=10, filters=(32, 64, 128)):
    """One of the four variants (see the module docstring) on 40x40x1 inputs."""
    import keras

    from keras_convnets import get_model

    if variant == "max_stride1":
        return get_model(
            "illing", (CANVAS, CANVAS, 1), num_classes, stackwise_num_filters=filters
        )
    if variant not in VARIANTS:
        raise ValueError(
            f"Unknown variant. Expected one of {VARIANTS}. Received: {variant!r}"
        )
    layers = keras.layers
    inputs = keras.Input((CANVAS, CANVAS, 1), name="image")
    x = inputs
    for stage, f in enumerate(filters, start=1):
        stride = 1 if variant == "max_stride2" else 2
        x = layers.Conv2D(
            f, 3, strides=stride, activation="relu", name=f"stage{stage}_conv"
        )(x)
        if variant == "max_stride2":
            x = layers.MaxPooling2D(2, strides=2, name=f"stage{stage}_pool")(x)
        elif variant == "avg_stride1":
            x = layers.AveragePooling2D(2, strides=1, name=f"stage{stage}_pool")(x)
    x = layers.Flatten(name="representation")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=variant)


def on_canvas(ds, seed=None):
    """Maps batches of 28x28 images onto the 40x40 canvas (centred or random)."""
    import tensorflow as tf

    from keras_convnets.data.augment import canvas_place

    if seed is None:
        return ds.map(lambda x, y: (canvas_place(x, CANVAS), y))
    return ds.enumerate().map(
        lambda i, b: (
            canvas_place(b[0], CANVAS, seed=tf.stack([tf.cast(seed, tf.int64), i])),
            b[1],
        )
    )


def _shifted(images, pixels):
    import tensorflow as tf

    from keras_convnets.data.augment import shift

    offset = tf.fill([images.shape[0]], pixels)
    return shift(tf.constant(images), offset, offset).numpy()  # diagonal shift


def representation_change(model, images, max_shift):
    """Cosine similarity and unchanged fraction of the representation per shift."""
    import keras

    rep = keras.Model(model.inputs, model.get_layer("representation").output)
    base = rep.predict(images, verbose=0)
    cosine, unchanged = [], []
    for s in range(max_shift + 1):
        moved = rep.predict(_shifted(images, s), verbose=0)
        num = np.sum(base * moved, axis=1)
        den = np.linalg.norm(base, axis=1) * np.linalg.norm(moved, axis=1) + 1e-12
        cosine.append(float(np.mean(num / den)))
        unchanged.append(float(np.mean(np.abs(moved - base) <= 1e-5)))
    return cosine, unchanged, list(rep.output.shape[1:])


def shifted_accuracy(model, images, labels, max_shift):
    """Test accuracy on the test set shifted diagonally by 0..max_shift pixels."""
    accs = []
    for s in range(max_shift + 1):
        probs = model.predict(_shifted(images, s), verbose=0)
        accs.append(float(np.mean(probs.argmax(-1) == labels)))
    return accs


def run(out_dir, quick=False, seed=0, data_dir=None) -> dict:
    """Trains the variants on centred images and measures invariance.

    Args:
        out_dir: str. Results land in OUT_DIR/translation-invariance.
        quick: bool. 2 epochs, a quarter of the filters, shifts up to 3.
        seed: int. Seeds data, placement and initialization.
        data_dir: str or None. Folder with Fashion-MNIST IDX files.

    Returns:
        The results dict: per variant `cosine[s]`, `unchanged[s]`,
        `shifted_accuracy[s]` for s = 0..max_shift, `params`,
        `representation_shape`; and `augmented` (Illing's net trained on
        randomly placed images).
    """
    from keras_convnets.training.train import make_datasets

    directory = experiment_dir(out_dir, NAME)
    config = train_config(quick, seed, data_dir, FULL)
    train, _, test, info = make_datasets(config)
    train_c, test_c = on_canvas(train), on_canvas(test)
    images = np.concatenate([x.numpy() for x, _ in test_c])
    labels = np.concatenate([y.numpy().argmax(-1) for _, y in test_c])
    max_shift = 3 if quick else 6
    filters = (8, 16, 32) if quick else (32, 64, 128)
    variants = {}
    for variant in VARIANTS:
        model = build(variant, info.num_classes, filters)
        curves = fit_curves(model, config, train_c, test_c)
        cosine, unchanged, shape = representation_change(model, images, max_shift)
        variants[variant] = {
            "params": curves["params"],
            "representation_shape": shape,
            "test_accuracy": curves["test_accuracy"][-1],
            "cosine": cosine,
            "unchanged": unchanged,
            "shifted_accuracy": shifted_accuracy(model, images, labels, max_shift),
        }
    model = build("max_stride1", info.num_classes, filters)
    curves = fit_curves(model, config, on_canvas(train, seed=seed), test_c)
    augmented = {
        "variant": "max_stride1",
        "test_accuracy": curves["test_accuracy"][-1],
        "shifted_accuracy": shifted_accuracy(model, images, labels, max_shift),
    }
    results = {
        "experiment": NAME,
        "quick": quick,
        "seed": seed,
        "dataset": info.name,
        "train_examples": int(info.sizes["train"]),
        "test_examples": int(info.sizes["test"]),
        "canvas": CANVAS,
        "filters": list(filters),
        "epochs": config.epochs,
        "shifts": list(range(max_shift + 1)),
        "shift_direction": "diagonal (dy = dx = s)",
        "variants": variants,
        "augmented": augmented,
    }
    write_results(directory, results)
    _plot(directory, results)
    _summary(directory, results)
    return results


def _plot(directory, r):
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for i, (variant, v) in enumerate(r["variants"].items()):
        axes[0].plot(r["shifts"], v["cosine"], f"C{i}o-", label=variant)
        axes[1].plot(r["shifts"], v["unchanged"], f"C{i}o-", label=variant)
        axes[2].plot(r["shifts"], v["shifted_accuracy"], f"C{i}o-", label=variant)
    axes[2].plot(
        r["shifts"],
        r["augmented"]["shifted_accuracy"],
        "k^--",
        label="max_stride1 + random placement",
    )
    titles = ("cosine similarity to unshifted", "fraction unchanged", "test accuracy")
    for ax, title in zip(axes, titles):
        ax.set_title(title)
        ax.set_xlabel("diagonal shift (pixels)")
        ax.legend(fontsize=7)
    save_figure(fig, f"{directory}/invariance.png")


def _summary(directory, r):
    rows = [
        [
            name,
            f"{v['params']:,}",
            "x".join(map(str, v["representation_shape"])),
            v["test_accuracy"],
            v["cosine"][1],
            v["unchanged"][1],
            v["shifted_accuracy"][-1],
        ]
        for name, v in r["variants"].items()
    ]
    last = r["shifts"][-1]
    aug = r["augmented"]
    text = f"""# translation-invariance: pooling and shifts

{r["dataset"]} ({r["train_examples"]} training, {r["test_examples"]} test images)
on a {r["canvas"]}x{r["canvas"]} canvas, filters {r["filters"]},
{r["epochs"]} epochs{" (quick run)" if r["quick"] else ""}, trained on centred
images. Shifts are diagonal.

{markdown_table(["variant", "params", "representation", "test acc", "cosine @1px", "unchanged @1px", f"test acc @{last}px"], rows)}

Illing's net trained on randomly placed images: test accuracy
{aug["test_accuracy"]:.4f} centred, {aug["shifted_accuracy"][-1]:.4f} at a
{last}-pixel shift. The lecture recommends stride-1 pooling as more compatible
with local translation invariance; compare the cosine columns. Curves:
`invariance.png`.
"""
    write_summary(directory, text)

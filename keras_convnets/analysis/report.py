"""Figures of a saved model as PNG files (and TensorBoard images): what the
`keras-convnets visualize` command calls."""

from __future__ import annotations

import os

import numpy as np

from keras_convnets.analysis import _common
from keras_convnets.errors import UserInputError

WHATS = (
    "filters",
    "feature-maps",
    "top-patches",
    "activation-max",
    "saliency",
    "grad-cam",
    "pool-focus",
)
_NEEDS_IMAGES = ("feature-maps", "saliency", "grad-cam", "pool-focus")


def default_layer(model, what: str) -> str | None:
    """The layer a figure uses when none is named.

    filters and feature-maps: the first convolution; top-patches and grad-cam:
    the last convolution's output after its normalization and activation (the
    last layer of that size); pool-focus: the first max-pool; activation-max and
    saliency: None (the class scores).
    """
    names = _common.conv_layer_names(model)
    if what in ("activation-max", "saliency"):
        return None
    if what == "pool-focus":
        for layer in model.layers:
            if "MaxPool" in type(layer).__name__:
                return layer.name
        raise UserInputError(f"Model {model.name!r} has no max-pooling layer.")
    if not names:
        raise UserInputError(f"Model {model.name!r} has no convolution layer.")
    if what in ("filters", "feature-maps"):
        return names[0]
    layers = model.layers
    index = [layer.name for layer in layers].index(names[-1])
    size = tuple(layers[index].output.shape[1:3])
    for layer in layers[index + 1 :]:
        shape = layer.output.shape
        if len(shape) != 4 or tuple(shape[1:3]) != size:
            break
        index = layers.index(layer)
    return layers[index].name


def class_index(name_or_index, class_names, num_classes) -> int | None:
    """A class given as an index or a name (case-insensitive)."""
    if name_or_index is None:
        return None
    text = str(name_or_index)
    if text.lstrip("-").isdigit():
        index = int(text)
    else:
        lowered = [c.lower() for c in class_names or ()]
        if text.lower() not in lowered:
            raise UserInputError(
                f"Unknown class {text!r}; classes: {', '.join(class_names or ())}. "
                f"Received: class={text!r}"
            )
        index = lowered.index(text.lower())
    if not 0 <= index < num_classes:
        raise UserInputError(
            f"The model has {num_classes} classes (0..{num_classes - 1}). "
            f"Received: class={text!r}"
        )
    return index


def _dataset(record, dataset, split, data_dir, tfds_data_dir, batch_size):
    from keras_convnets.inference import run_dataset

    return run_dataset(
        record,
        dataset,
        split,
        batch_size=batch_size,
        data_dir=data_dir,
        tfds_data_dir=tfds_data_dir,
        hint="--images or --dataset",
    )


def _check_images(model, shape, source):
    expected = tuple(_common.model_input(model).shape[1:])
    if any(e is not None and e != s for e, s in zip(expected, shape)):
        raise UserInputError(
            f"Model expects {expected} images; {source} has {tuple(shape)} images."
        )


def tensorboard_dir(path: str) -> str:
    """`RUN/logs/analysis` for a run directory or a model file inside one."""
    run_dir = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    if not os.path.isfile(os.path.join(run_dir, "run.json")):
        raise UserInputError(
            f"--tensorboard writes into a run's logs; {path} is not a run directory "
            f"(no run.json)."
        )
    return os.path.join(run_dir, "logs", "analysis")


def write_tensorboard(logdir: str, tag: str, png: bytes, step: int = 0) -> None:
    """Logs a rendered PNG as a TensorBoard image."""
    import tensorflow as tf

    image = tf.io.decode_png(png, channels=4)[None]
    writer = tf.summary.create_file_writer(logdir)
    with writer.as_default():
        tf.summary.image(tag, image, step=step)
    writer.close()


def visualize(
    path: str,
    what: str,
    out_dir: str,
    layer: str | None = None,
    units=None,
    class_=None,
    images=None,
    dataset: str | None = None,
    split: str = "test",
    data_dir: str | None = None,
    tfds_data_dir: str | None = None,
    num_images: int = 4,
    k: int = 9,
    max_images: int | None = None,
    steps: int = 150,
    seed: int = 0,
    tensorboard: bool = False,
    unsafe: bool = False,
) -> dict:
    """Draws one kind of figure of a saved model and writes it as a PNG.

    Args:
        path: str. A run directory or a `.keras` file.
        what: str. One of `WHATS`.
        out_dir: str. Folder of the PNG.
        layer: str. Layer name; defaults per figure (see `default_layer`).
        units: sequence of int. Units/channels (top-patches: the first; 0 by
            default; activation-max: all given, else the first 16).
        class_: int or str. A class index or name (saliency, grad-cam:
            defaults to the prediction; activation-max without a layer:
            defaults to all classes).
        images: list of image files; else the first `num_images` of the split.
        dataset, split, data_dir, tfds_data_dir: where dataset images come from
            (defaults: the run's dataset, test split).
        num_images: int. Dataset images shown. Defaults to 4.
        k: int. Top patches. Defaults to 9.
        max_images: int. Images scanned for top patches. Defaults to the split.
        steps: int. Activation-maximization steps.
        seed: int. Activation-maximization seed.
        tensorboard: bool. Also log the figure to `RUN/logs/analysis`.
        unsafe: bool. Load the model without the safety checks
            (`inference.load_model`), for a file you trust. Defaults to False.

    Returns:
        `{"png": path, "what", "layer", "tensorboard": logdir or None,
        "summary": list of text lines}`.
    """
    from keras_convnets.analysis import activation_max, saliency
    from keras_convnets.analysis import visualize as vis
    from keras_convnets.inference import load_model
    from keras_convnets.training.io import atomic_write_bytes

    if what not in WHATS:
        raise UserInputError(
            f"what must be one of {', '.join(WHATS)}. Received: what={what!r}"
        )
    logdir = tensorboard_dir(path) if tensorboard else None
    from keras_convnets.models.tta import unwrap_tta

    model, record = load_model(path, unsafe=unsafe)
    # Look inside the classifier, not the TTA average, in float32 whatever the
    # training precision (one copy here; the tools below then reuse it).
    model = _common.float32_model(unwrap_tta(model))
    class_names = record["dataset"]["class_names"] if record else None
    num_classes = model.output_shape[-1]
    layer = layer or default_layer(model, what)
    if layer is not None:
        _common.get_layer(model, layer)
    target_class = class_index(class_, class_names, num_classes)
    units = list(units) if units else None
    summary = []

    batch, labels = None, None
    if what in _NEEDS_IMAGES:
        height, width, channels = _common.model_input(model).shape[1:]
        if images:
            batch = np.stack(
                [_common.read_image(p, channels, (height, width)) for p in images]
            )
            labels = [os.path.basename(p) for p in images]
        else:
            ds, info = _dataset(
                record, dataset, split, data_dir, tfds_data_dir, num_images
            )
            _check_images(model, info.image_shape, f"dataset {info.name!r}")
            batch, y = next(iter(ds))
            batch = batch.numpy()
            names = class_names or info.class_names
            labels = [f"{split} {i}: {names[int(c)]}" for i, c in enumerate(y)]

    if what == "filters":
        fig = vis.plot_filters(model, layer)
    elif what == "feature-maps":
        fig = vis.plot_feature_maps(model, layer, batch, labels=labels)
    elif what == "pool-focus":
        fig = vis.plot_max_pool_focus(model, layer, batch, channel=(units or [0])[0])
    elif what == "top-patches":
        unit = (units or [0])[0]
        ds, info = _dataset(record, dataset, split, data_dir, tfds_data_dir, 256)
        _check_images(model, info.image_shape, f"dataset {info.name!r}")
        patches = vis.top_patches(model, layer, unit, ds, k=k, max_images=max_images)
        names = class_names or info.class_names
        fig = vis.plot_top_patches(
            patches,
            f"{model.name} / {layer} unit {unit}: top {len(patches)} patches of "
            f"{info.name} {split}",
            class_names=names,
        )
        summary = [
            f"#{i + 1} {split} image {p['image_index']} ({names[p['label']]}): "
            f"activation {p['activation']:.4g} at {p['position']}, box {p['box']}"
            for i, p in enumerate(patches)
        ]
    elif what in ("saliency", "grad-cam"):
        if what == "saliency":
            maps, classes = saliency.saliency_map(model, batch, target_class)
            title = f"{model.name}: saliency |d score / d pixel|"
        else:
            maps, classes = saliency.grad_cam(model, layer, batch, target_class)
            title = f"{model.name} / {layer}: Grad-CAM"
        probs = np.asarray(model(batch, training=False))
        probs = probs[np.arange(len(batch)), classes]
        title += " (predicted class)" if target_class is None else ""
        fig = saliency.plot_attribution(
            batch,
            maps,
            classes,
            title,
            class_names=class_names,
            probs=probs,
            labels=labels,
        )
        for label, c, p in zip(labels, classes, probs):
            name = class_names[c] if class_names else str(c)
            summary.append(f"{label}: class {name} p={p:.3f}")
    else:  # activation-max
        if layer is None:
            targets = [target_class] if target_class is not None else units
            optimized, values = activation_max.activation_maximization(
                model, class_index=targets, steps=steps, seed=seed
            )
            chosen = targets if targets is not None else range(num_classes)
            names = [class_names[c] if class_names else f"class {c}" for c in chosen]
            title = f"{model.name}: images maximizing class scores"
        else:
            count = model.get_layer(layer).output.shape[-1]
            chosen = units or list(range(min(16, count)))
            optimized, values = activation_max.activation_maximization(
                model, layer, units=chosen, steps=steps, seed=seed
            )
            names = [f"unit {u}" for u in chosen]
            title = f"{model.name} / {layer}: images maximizing units"
        fig = activation_max.plot_activation_max(
            optimized, values, names, f"{title} ({steps} steps, seed {seed})"
        )
    png = _common.figure_png(fig)
    parts = [what] + ([layer] if layer else [])
    if what in ("top-patches", "pool-focus") or (what == "activation-max" and units):
        parts.append("unit" + "-".join(str(u) for u in (units or [0])))
    if target_class is not None and what != "filters":
        parts.append(f"class{target_class}")
    out = os.path.join(out_dir, "_".join(parts).replace("/", "-") + ".png")
    atomic_write_bytes(out, png)
    if logdir:
        write_tensorboard(logdir, "/".join(parts), png)
    return dict(png=out, what=what, layer=layer, tensorboard=logdir, summary=summary)

"""`transfer`: reuse features learned on other classes (lecture part 7, DeepFace).

The classes of a dataset are split in two halves: the *source* task (classes
0-4 of Fashion-MNIST: T-shirt, trouser, pullover, dress, coat) and the
*target* task (classes 5-9: sandal, shirt, sneaker, bag, ankle boot). The
zoo's `simple_cnn` is pretrained on the source task; then, with only 10, 100
or 1,000 labelled target images per class:

- `frozen`: the pretrained convolutional layers are frozen and only the top
  layers (a fresh hidden dense layer and classifier) are trained,
- `scratch`: the same network, randomly initialized, trained on the same
  labels,
- `finetune`: the `frozen` result with every layer unfrozen, trained further
  at a tenth of the learning rate.

`--backbone NAME` replaces the zoo net by a `keras.applications` model (e.g.
`MobileNetV2`) or a zoo model with a `keras.applications` twin (e.g.
`resnet50_v2`, `mobilenet`; `keras_convnets.models.pretrained`) with ImageNet
weights as the pretrained features (images are resized, made RGB and
preprocessed inside the model, features average-pooled); `scratch` is the
same architecture randomly initialized. ImageNet weights must be downloadable (or
already in `~/.keras/models`): offline the run stops with a one-line error,
unless `--backbone-weights random` asks for a randomly initialized backbone
instead (results then say `"backbone_weights": "random"`). `--dataset` takes
any dataset `load_dataset` reads (`mnist`, a TFDS name, a folder).

Every training keeps the weights of the epoch with the best accuracy on a
validation split (held out from the training split, target classes only);
test accuracy is measured once, with those weights. Each labelled subset is
drawn `repeats` times (different images and initializations); the tables
give the mean and standard deviation.
"""

from __future__ import annotations

import math
import os
import tempfile

import numpy as np

from keras_convnets.errors import UserInputError
from keras_convnets.experiments.common import (
    experiment_dir,
    markdown_table,
    pyplot,
    save_figure,
    train_config,
    write_results,
    write_summary,
)

NAME = "transfer"
METHODS = ("frozen", "scratch", "finetune")
BACKBONE_WEIGHTS = ("imagenet", "random")
# Full-run sizing (about ten minutes on 2 CPU cores shared with other jobs):
# `simple_cnn` with filters (8, 16), pretrained 3 epochs on the source half of
# the training split; each target training 8 epochs of at least 20 steps of 64
# images; 3 draws of each labelled subset.
FULL = {
    "filters": (8, 16),
    "labels_per_class": (10, 100, 1000),
    "repeats": 3,
    "pretrain_epochs": 3,
    "epochs": 8,
    "min_steps": 20,
    "batch_size": 64,
    "validation_size": 1000,
    "backbone_image_size": 96,
}
QUICK = {
    "filters": (8, 16),
    "labels_per_class": (10, 50),
    "repeats": 1,
    "pretrain_epochs": 2,
    "epochs": 4,
    "min_steps": 5,
    "batch_size": 32,
    "validation_size": 500,
    "backbone_image_size": 32,
}


def _arrays(dataset, split, seed, data_dir):
    """All of one split as `(images float32 in [0, 1], int labels)`, and info."""
    from keras_convnets.data import load_dataset

    ds, info = load_dataset(
        dataset,
        split,
        batch_size=1024,
        shuffle=False,
        seed=seed,
        validation_fraction=0.1,
        data_dir=data_dir,
    )
    images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(images), np.concatenate(labels).astype(np.int64), info


def _select(images, labels, classes, limit=None, rng=None):
    """The examples of `classes`, labels renumbered 0..len(classes)-1."""
    keep = np.flatnonzero(np.isin(labels, classes))
    if limit is not None and len(keep) > limit:
        keep = np.sort(rng.choice(keep, limit, replace=False))
    remap = {c: i for i, c in enumerate(classes)}
    return images[keep], np.array([remap[c] for c in labels[keep]], np.int64)


def labelled_subset(labels, per_class, rng):
    """Indices of `per_class` random examples of each class (all if fewer)."""
    picks = []
    for c in np.unique(labels):
        where = np.flatnonzero(labels == c)
        picks.append(rng.choice(where, min(per_class, len(where)), replace=False))
    return np.sort(np.concatenate(picks))


def _dataset(images, labels, num_classes, batch_size, seed=None):
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices(
        (images, tf.one_hot(labels, num_classes, dtype=tf.float32))
    )
    if seed is not None:
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
        ds = ds.repeat()
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _fit(model, config, images, labels, validation, steps_per_epoch):
    """Trains with the package's optimizer; keeps the best validation epoch.

    Returns `(best validation accuracy, best epoch (1-based))`; the model ends
    with the weights of that epoch.
    """
    import keras

    from keras_convnets.training.callbacks import BestCheckpoint
    from keras_convnets.training.train import build_optimizer

    classes = model.output.shape[-1]
    train = _dataset(images, labels, classes, config.batch_size, seed=config.seed)
    val = _dataset(*validation, classes, 256)
    keras.utils.set_random_seed(config.seed)
    model.compile(
        optimizer=build_optimizer(config, steps_per_epoch),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    with tempfile.TemporaryDirectory() as tmp:
        best = BestCheckpoint(os.path.join(tmp, "best.weights.h5"))
        model.fit(
            train,
            validation_data=val,
            epochs=config.epochs,
            steps_per_epoch=steps_per_epoch,
            callbacks=[best],
            shuffle=False,
            verbose=0,
        )
        model.load_weights(best.weights_path)
    return best.best, best.best_epoch + 1


def _accuracy(model, images, labels):
    probs = model.predict(images, batch_size=256, verbose=0)
    return float(np.mean(probs.argmax(-1) == labels))


def _zoo_backbones():
    from keras_convnets.models.pretrained import pretrained_models

    return pretrained_models()


def applications_model(name):
    """The `keras.applications` constructor called `name` (e.g. `MobileNetV2`)."""
    import keras

    constructor = getattr(keras.applications, str(name), None)
    if not callable(constructor) or not str(name)[:1].isupper():
        raise UserInputError(
            "Unknown backbone: neither a keras.applications model (e.g. "
            "MobileNetV2, ResNet50, EfficientNetB0) nor a zoo model with "
            f"ImageNet weights ({', '.join(_zoo_backbones())}). "
            f"Received: backbone={name!r}"
        )
    return constructor


def check_backbone(name):
    """Raises `UserInputError` unless `name` is a zoo model with ImageNet
    weights or a `keras.applications` model."""
    if name not in _zoo_backbones():
        applications_model(name)


def _zoo_backbone(name, weights, input_shape, image_size):
    """A zoo model's pooled features (`pretrained_features`) behind a resize."""
    import keras

    from keras_convnets.models.pretrained import pretrained_features

    try:
        net = pretrained_features(
            name,
            (image_size, image_size, input_shape[-1]),
            weights="imagenet" if weights == "imagenet" else None,
        )
    except UserInputError as e:
        if weights != "imagenet" or "could not download" not in str(e):
            raise
        raise UserInputError(
            f"{e} Or pass --backbone-weights random to use a randomly "
            "initialized backbone instead."
        ) from None
    inputs = keras.Input(input_shape, name="image")
    x = keras.layers.Resizing(image_size, image_size, name="resize")(inputs)
    return keras.Model(inputs, net(x), name=f"{name}_features")


def _applications_backbone(name, weights, input_shape, image_size):
    """A `keras.applications` feature extractor (global average pooled) that
    takes the dataset's images in [0, 1]: resized, RGB, preprocessed."""
    import importlib

    import keras

    if name in _zoo_backbones():
        return _zoo_backbone(name, weights, input_shape, image_size)
    constructor = applications_model(name)
    try:
        net = constructor(
            include_top=False,
            weights="imagenet" if weights == "imagenet" else None,
            input_shape=(image_size, image_size, 3),
            pooling="avg",
        )
    except ValueError as e:  # e.g. an input size the architecture rejects
        raise UserInputError(f"{name} cannot be built: {e}") from None
    except Exception as e:  # the download of the weights failed
        raise UserInputError(
            f"Could not get the ImageNet weights of {name} (offline?): "
            f"{type(e).__name__}: {e}. Pass --backbone-weights random to use a "
            "randomly initialized backbone instead, or put the weights file in "
            "~/.keras/models."
        ) from None
    preprocess = importlib.import_module(constructor.__module__).preprocess_input
    inputs = keras.Input(input_shape, name="image")
    x = keras.layers.Resizing(image_size, image_size, name="resize")(inputs)
    if input_shape[-1] == 1:
        x = keras.layers.Concatenate(name="rgb")([x, x, x])
    x = keras.layers.Rescaling(255.0, name="to_255")(x)
    x = keras.layers.Lambda(preprocess, name="preprocess")(x)
    x = net(x)
    return keras.Model(inputs, x, name=f"{name}_features")


def _zoo_features(model):
    """The zoo net's convolutional part: its input up to `flatten`."""
    import keras

    return keras.Model(model.inputs, model.get_layer("flatten").output, name="features")


def _with_head(features, num_classes, frozen):
    """`features` (frozen, in inference mode, or trainable) + a fresh dense head."""
    import keras

    features.trainable = not frozen
    inputs = keras.Input(features.inputs[0].shape[1:], name="image")
    x = features(inputs, training=False) if frozen else features(inputs)
    x = keras.layers.Dense(128, activation="relu", name="top_dense")(x)
    x = keras.layers.Dropout(0.3, name="top_dropout")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="predictions")(
        x
    )
    return keras.Model(inputs, outputs)


def _finetune(model):
    """Unfreezes every layer but batch normalization.

    Keras 3 runs a nested model in the outer call's training mode (the
    `training=False` of `_with_head` does not hold once the outer model
    trains), so batch normalization is kept in inference mode the Keras way:
    `trainable=False` on the BN layers. Otherwise a few small target batches
    would overwrite the pretrained statistics.
    """
    import keras

    stack = [model]
    while stack:  # parents before their layers
        layer = stack.pop()
        layer.trainable = not isinstance(layer, keras.layers.BatchNormalization)
        stack.extend(getattr(layer, "layers", []))
    return model


def run(
    out_dir,
    quick=False,
    seed=0,
    data_dir=None,
    dataset="fashion_mnist",
    backbone=None,
    backbone_weights=None,
) -> dict:
    """Pretrains on half the classes and transfers to the other half.

    Args:
        out_dir: str. Results land in OUT_DIR/transfer.
        quick: bool. Small and fast (2 pretraining epochs; 10 and 50 labels
            per class, one draw), for tests on a small `data_dir`.
        seed: int. Seeds the subsets, data order and initialization.
        data_dir: str or None. Folder with IDX files.
        dataset: str. Any dataset `load_dataset` reads. Defaults to
            `fashion_mnist`.
        backbone: str or None. A `keras.applications` model name or a zoo
            model with a twin (`keras_convnets.models.pretrained`) to use
            (with ImageNet weights) instead of pretraining the zoo's
            `simple_cnn` on the source classes.
        backbone_weights: str or None. `imagenet` (the default, None) or
            `random`; only with `backbone`.

    Returns:
        The results dict: `pretrain` (source-task accuracies; None with a
        backbone), and `runs[n][method]` for n labels per class with
        per-draw `test_accuracy`, `validation_accuracy`, `best_epoch`, and
        `mean` and `std` of the test accuracy.

    Raises:
        UserInputError: unknown backbone or weights, ImageNet weights not
            available, a dataset that cannot be read.
    """
    import keras

    from keras_convnets import get_model

    if backbone_weights is not None and backbone is None:
        raise UserInputError(
            "backbone_weights needs a backbone (--backbone NAME). "
            f"Received: backbone_weights={backbone_weights!r}"
        )
    backbone_weights = backbone_weights or "imagenet"
    if backbone_weights not in BACKBONE_WEIGHTS:
        raise UserInputError(
            f"backbone_weights must be one of {BACKBONE_WEIGHTS}. "
            f"Received: backbone_weights={backbone_weights!r}"
        )
    if backbone is not None:
        check_backbone(backbone)
    sizes = QUICK if quick else FULL
    directory = experiment_dir(out_dir, NAME)
    x_train, y_train, info = _arrays(dataset, "train", seed, data_dir)
    x_val, y_val, _ = _arrays(dataset, "validation", seed, data_dir)
    x_test, y_test, _ = _arrays(dataset, "test", seed, data_dir)
    half = info.num_classes // 2
    source = list(range(half))
    target = list(range(half, info.num_classes))
    rng = np.random.default_rng(seed)
    val_target = _select(x_val, y_val, target, sizes["validation_size"], rng)
    test_target = _select(x_test, y_test, target)
    src_train = _select(x_train, y_train, source)
    tgt_train = _select(x_train, y_train, target)

    def config(epochs, seed=seed, **flags):
        return train_config(
            quick,
            seed,
            data_dir,
            dataset=dataset,
            epochs=epochs,
            batch_size=sizes["batch_size"],
            warmup_epochs=0.0 if quick else 1.0,
            **flags,
        )

    def zoo_net(num_classes):
        return get_model(
            "simple_cnn",
            info.image_shape,
            num_classes,
            stackwise_num_filters=sizes["filters"],
        )

    pretrain = None
    if backbone is None:
        model = zoo_net(len(source))
        cfg = config(sizes["pretrain_epochs"])
        steps = math.ceil(len(src_train[0]) / cfg.batch_size)
        val_source = _select(x_val, y_val, source, sizes["validation_size"], rng)
        val_acc, epoch = _fit(model, cfg, *src_train, val_source, steps)
        pretrain = {
            "model": "simple_cnn",
            "filters": list(sizes["filters"]),
            "train_examples": int(len(src_train[0])),
            "epochs": cfg.epochs,
            "best_epoch": epoch,
            "validation_accuracy": float(val_acc),
            "test_accuracy": _accuracy(model, *_select(x_test, y_test, source)),
        }
        pretrained_weights = model.get_weights()

        def features(pretrained):
            net = zoo_net(len(source))
            if pretrained:
                net.set_weights(pretrained_weights)
            return _zoo_features(net)

    else:
        size = sizes["backbone_image_size"]
        _applications_backbone(backbone, backbone_weights, info.image_shape, size)

        def features(pretrained):
            weights = backbone_weights if pretrained else "random"
            return _applications_backbone(backbone, weights, info.image_shape, size)

    runs = {}
    for per_class in sizes["labels_per_class"]:
        cell = {
            m: {"test_accuracy": [], "validation_accuracy": [], "best_epoch": []}
            for m in METHODS
        }
        for repeat in range(sizes["repeats"]):
            draw = np.random.default_rng([seed, per_class, repeat])
            pick = labelled_subset(tgt_train[1], per_class, draw)
            images, labels = tgt_train[0][pick], tgt_train[1][pick]
            steps = max(
                math.ceil(len(images) / sizes["batch_size"]), sizes["min_steps"]
            )
            run_seed = seed + 1000 * repeat
            models = {}
            keras.utils.set_random_seed(run_seed)
            models["scratch"] = _with_head(features(False), len(target), frozen=False)
            keras.utils.set_random_seed(run_seed)
            models["frozen"] = _with_head(features(True), len(target), frozen=True)
            for method in METHODS:
                if method == "finetune":
                    model = _finetune(models["frozen"])
                    lr = config(1).learning_rate / 10
                    cfg = config(sizes["epochs"], seed=run_seed, learning_rate=lr)
                else:
                    model = models[method]
                    cfg = config(sizes["epochs"], seed=run_seed)
                val_acc, epoch = _fit(model, cfg, images, labels, val_target, steps)
                cell[method]["test_accuracy"].append(_accuracy(model, *test_target))
                cell[method]["validation_accuracy"].append(float(val_acc))
                cell[method]["best_epoch"].append(epoch)
        for values in cell.values():
            values["mean"] = float(np.mean(values["test_accuracy"]))
            values["std"] = float(np.std(values["test_accuracy"]))
        cell["labelled_examples"] = int(len(pick))
        runs[str(per_class)] = cell
    results = {
        "experiment": NAME,
        "quick": quick,
        "seed": seed,
        "dataset": info.name,
        "source_classes": [info.class_names[c] for c in source],
        "target_classes": [info.class_names[c] for c in target],
        "backbone": backbone or "simple_cnn",
        "backbone_weights": (
            backbone_weights if backbone else "pretrained on the source classes"
        ),
        "labels_per_class": list(sizes["labels_per_class"]),
        "repeats": sizes["repeats"],
        "epochs": sizes["epochs"],
        "min_steps_per_epoch": sizes["min_steps"],
        "batch_size": sizes["batch_size"],
        "validation_examples": int(len(val_target[0])),
        "test_examples": int(len(test_target[0])),
        "pretrain": pretrain,
        "runs": runs,
    }
    write_results(directory, results)
    _plot(directory, results)
    _summary(directory, results)
    return results


def _plot(directory, r):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    n = r["labels_per_class"]
    for i, method in enumerate(METHODS):
        means = [r["runs"][str(k)][method]["mean"] for k in n]
        stds = [r["runs"][str(k)][method]["std"] for k in n]
        ax.errorbar(n, means, yerr=stds, fmt=f"C{i}o-", capsize=3, label=method)
    ax.set_xscale("log")
    ax.set_xlabel("labelled target images per class")
    ax.set_ylabel("target test accuracy")
    ax.set_title(f"transfer: {r['backbone']} ({r['backbone_weights']})", fontsize=9)
    ax.legend()
    save_figure(fig, f"{directory}/transfer.png")


def _summary(directory, r):
    def cell(k, m):
        c = r["runs"][str(k)][m]
        return f"{c['mean']:.4f} ± {c['std']:.4f}"

    rows = [[k] + [cell(k, m) for m in METHODS] for k in r["labels_per_class"]]
    p = r["pretrain"]
    pretrain = (
        f"Pretraining: `simple_cnn` (filters {p['filters']}) on "
        f"{p['train_examples']} source images, best "
        f"of {p['epochs']} epochs on validation (epoch {p['best_epoch']}): "
        f"source test accuracy {p['test_accuracy']:.4f}."
        if p
        else f"Pretrained features: `{r['backbone']}` ({r['backbone_weights']} "
        "weights)."
    )
    text = f"""# transfer: features from other classes (DeepFace, part 7)

{r["dataset"]}: source classes {", ".join(r["source_classes"])}; target
classes {", ".join(r["target_classes"])}{" (quick run)" if r["quick"] else ""}.
{pretrain}

Target test accuracy ({r["test_examples"]} test images; mean ± std over
{r["repeats"]} draws of the labelled images), each training {r["epochs"]}
epochs of at least {r["min_steps_per_epoch"]} steps of {r["batch_size"]},
weights of the best epoch on {r["validation_examples"]} validation images:

{markdown_table(["labels per class", *METHODS], rows)}

`frozen`: pretrained convolutions frozen, fresh top layers trained;
`scratch`: the same network from random initialization; `finetune`: `frozen`
then every layer trained at a tenth of the learning rate. Plot: `transfer.png`.
"""
    write_summary(directory, text)

"""Loading, evaluating and predicting with saved models.

What `evaluate`, `predict`, `visualize`, `stylize` and the experiments use to
open a run: `load_model` checks the archive as data first
(`training.safety.check_model_archive`), then loads it with Keras's
`safe_mode=True`; `run_dataset` carves a split of a run's dataset the way the
run carved it.
"""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

from keras_convnets.data.datasets import load_dataset
from keras_convnets.errors import UserInputError
from keras_convnets.training import io
from keras_convnets.training.safety import check_model_archive


def evaluate_model(model: keras.Model, dataset: tf.data.Dataset) -> dict:
    """Accuracy and mean cross-entropy of a softmax model over a dataset.

    Computed from the model's predictions, independent of how (or whether) the
    model was compiled; labels may be integers or one-hot.

    Returns:
        `{"accuracy": float, "loss": float, "examples": int}`.
    """
    correct, total, loss = 0, 0, 0.0
    predict = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    for images, labels in dataset:
        probs = predict(images).numpy().astype(np.float64)
        labels = labels.numpy()
        if labels.ndim == 2:
            labels = labels.argmax(-1)
        correct += int((probs.argmax(-1) == labels).sum())
        picked = probs[np.arange(len(labels)), labels]
        loss += float(-np.log(np.clip(picked, 1e-7, 1.0)).sum())
        total += len(labels)
    if total == 0:
        raise UserInputError("Cannot evaluate on an empty dataset.")
    return {"accuracy": correct / total, "loss": loss / total, "examples": total}


def _custom_objects_loaded():
    # Importing registers every serializable layer and schedule of the package.
    import keras_convnets.data.augment  # noqa: F401
    import keras_convnets.layers  # noqa: F401
    import keras_convnets.models  # noqa: F401
    import keras_convnets.training.schedules  # noqa: F401


def resolve_model_path(path: str) -> tuple[str, dict | None]:
    """`path` is a run directory or a `.keras` file; returns (file, run record)."""
    if os.path.isdir(path):
        model_path = os.path.join(path, "model.keras")
        run_json = os.path.join(path, "run.json")
    else:
        model_path = path
        run_json = os.path.join(os.path.dirname(os.path.abspath(path)), "run.json")
    if not os.path.isfile(model_path):
        where = (
            f"{path} has no model.keras (unfinished run?)"
            if os.path.isdir(path)
            else f"{path} not found"
        )
        raise UserInputError(f"Model file missing: {where}.")
    record = io.read_json(run_json) if os.path.isfile(run_json) else None
    return model_path, record


def load_model(path: str, unsafe: bool = False) -> tuple[keras.Model, dict | None]:
    """Loads a model (run directory or `.keras` file), safely by default.

    The archive is first checked as data (`safety.check_model_archive`: no
    path traversal, no code from outside keras and keras_convnets), then
    loaded with Keras's `safe_mode=True`.

    Args:
        path: str. A run directory or a `.keras` file.
        unsafe: bool. Skip both checks, for a file you trust. Defaults to False.

    Returns:
        `(model, run record or None)`.
    """
    model_path, record = resolve_model_path(path)
    _custom_objects_loaded()
    if not unsafe:
        check_model_archive(model_path)
    try:
        model = keras.saving.load_model(model_path, compile=False, safe_mode=not unsafe)
    except (OSError, ValueError, KeyError, TypeError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserInputError(
            f"{model_path}: cannot load model ({first[:300]})."
        ) from None
    return model, record


def evaluate(
    path: str,
    dataset: str | None = None,
    split: str = "test",
    batch_size: int = 256,
    data_dir: str | None = None,
    tfds_data_dir: str | None = None,
    unsafe: bool = False,
) -> dict:
    """Evaluates a saved model on a dataset split.

    Args:
        path: str. A run directory or a `.keras` file.
        dataset: str. Dataset name; defaults to the run's own dataset.
        split: str. `test` (default), `validation` or `train` (the validation
            split is carved with the run's seed and fraction when known).
        batch_size: int. Evaluation batch size.
        unsafe: bool. Load without the safety checks (see `load_model`).

    Returns:
        `{"accuracy", "loss", "examples", "dataset", "split", "model_path"}`.
    """
    model, record = load_model(path, unsafe=unsafe)
    ds, info = run_dataset(
        record,
        dataset,
        split,
        batch_size=batch_size,
        data_dir=data_dir,
        tfds_data_dir=tfds_data_dir,
        where=path,
    )
    _check_compatible(model, info)
    result = evaluate_model(model, ds)
    result.update(
        dataset=info.name, split=split, model_path=resolve_model_path(path)[0]
    )
    return result


def run_dataset(
    record: dict | None,
    dataset: str | None,
    split: str,
    batch_size: int = 256,
    data_dir: str | None = None,
    tfds_data_dir: str | None = None,
    where: str = "the model",
    hint: str = "--dataset",
):
    """A split of a saved run's dataset, carved as the run carved it.

    Args:
        record: dict or None. The run's `run.json` (None for a bare file).
        dataset: str or None. Overrides the run's dataset.
        split: str. `train`, `validation` or `test`.
        batch_size: int. Batch size. The order is not shuffled.
        data_dir, tfds_data_dir: str. Override the run's data folders.
        where: str. The model, named in the error when no dataset is known.
        hint: str. The flags the error suggests.

    Returns:
        `(dataset, info)` as `load_dataset` returns them.
    """
    options = {}
    if record:
        cfg = record["config"]
        dataset = dataset or cfg["dataset"]
        options = dict(
            seed=cfg["seed"],
            validation_fraction=cfg["validation_fraction"],
            image_size=cfg.get("image_size"),
        )
        data_dir = data_dir or cfg.get("data_dir")
        tfds_data_dir = tfds_data_dir or cfg.get("tfds_data_dir")
    if not dataset:
        raise UserInputError(
            f"No run.json beside {where}, so no dataset is known; pass {hint}."
        )
    return load_dataset(
        dataset,
        split,
        batch_size=batch_size,
        shuffle=False,
        data_dir=data_dir,
        tfds_data_dir=tfds_data_dir,
        **options,
    )


def _check_compatible(model, info):
    model_shape = tuple(model.input_shape[1:])
    outputs = model.output_shape[-1]
    if any(m is not None and m != d for m, d in zip(model_shape, info.image_shape)) or (
        outputs != info.num_classes
    ):
        raise UserInputError(
            f"Model expects {model_shape} images and {outputs} classes; dataset "
            f"{info.name!r} has {info.image_shape} images and {info.num_classes} classes."
        )


def predict(
    path: str, image_paths: list[str], top_k: int = 3, unsafe: bool = False
) -> list[dict]:
    """Top-k classes for image files (PNG, JPEG, BMP, GIF).

    Images are converted to the model's channels, resized to its input size
    and scaled to [0, 1], as in training.

    Returns:
        One `{"image": path, "top": [{"class", "index", "probability"}, ...]}`
        per image.
    """
    if top_k < 1:
        raise UserInputError(f"top_k must be >= 1. Received: top_k={top_k}")
    model, record = load_model(path, unsafe=unsafe)
    height, width, channels = model.input_shape[1:]
    class_names = record["dataset"]["class_names"] if record else None
    batch = []
    for image_path in image_paths:
        if not os.path.isfile(image_path):
            raise UserInputError(f"Image not found: {image_path}")
        try:
            image = tf.io.decode_image(
                tf.io.read_file(image_path), channels=channels, expand_animations=False
            )
        except tf.errors.OpError:
            raise UserInputError(
                f"{image_path}: not a PNG, JPEG, BMP or GIF image."
            ) from None
        image = tf.image.resize(
            tf.cast(image, tf.float32), (height, width), antialias=True
        )
        batch.append(tf.clip_by_value(image / 255.0, 0.0, 1.0))
    probs = model.predict(tf.stack(batch), verbose=0)
    results = []
    for image_path, p in zip(image_paths, probs):
        order = np.argsort(-p)[:top_k]
        results.append(
            {
                "image": image_path,
                "top": [
                    {
                        "class": class_names[i] if class_names else str(i),
                        "index": int(i),
                        "probability": float(p[i]),
                    }
                    for i in order
                ],
            }
        )
    return results

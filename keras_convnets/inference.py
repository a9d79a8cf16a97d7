"""Loading, evaluating and predicting with saved models.

What `evaluate`, `predict`, `visualize`, `stylize` and the experiments use to
open a run: `load_model` checks the archive as data first
(`training.safety.check_model_archive`), then loads it with Keras's
`safe_mode=True`; `run_dataset` carves a split of a run's dataset the way the
run carved it.
"""

from __future__ import annotations

import os
import re
import zipfile
import zlib

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from keras_convnets.data.datasets import load_dataset
from keras_convnets.errors import UserInputError
from keras_convnets.training import io
from keras_convnets.training.safety import (
    check_model_archive,
    check_weights_size,
    drop_compile_configs,
)


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
    import keras_convnets.layers  # noqa: F401
    import keras_convnets.models  # noqa: F401
    import keras_convnets.training.schedules  # noqa: F401


def _bad_record(run_json, field, why):
    return UserInputError(f"{run_json}: malformed run.json: {field} {why}.")


def _check_record(record, run_json: str) -> dict:
    """The fields of a run record that loading and evaluating read, checked.

    Returns the record itself when `config` and `dataset` hold what consumers
    read (`config.dataset`, `config.seed`, `config.validation_fraction`,
    `config.image_size`, `config.data_dir`, `config.tfds_data_dir`,
    `dataset.class_names`); raises a one-line `UserInputError` naming
    run.json and the field otherwise.
    """
    if not isinstance(record, dict):
        raise _bad_record(run_json, "the record", "is not a JSON object")
    for section in ("config", "dataset"):
        if not isinstance(record.get(section), dict):
            raise _bad_record(run_json, section, "is missing or not an object")
    cfg, data = record["config"], record["dataset"]

    def field(section, name, ok, what, required=True):
        if name not in section:
            if required:
                raise _bad_record(run_json, name, "is missing")
            return
        if not ok(section[name]):
            raise _bad_record(
                run_json, name, f"must be {what}. Received: {section[name]!r}"[:300]
            )

    def is_int(v):
        return isinstance(v, int) and not isinstance(v, bool)

    field(cfg, "dataset", lambda v: isinstance(v, str) and v, "a dataset name")
    field(cfg, "seed", lambda v: is_int(v) and 0 <= v < 2**32, "an int in [0, 2**32)")
    field(
        cfg,
        "validation_fraction",
        lambda v: (
            isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1
        ),
        "a number in [0, 1)",
    )
    field(
        cfg,
        "image_size",
        lambda v: (
            v is None
            or (
                isinstance(v, list)
                and len(v) == 2
                and all(is_int(d) and 1 <= d <= 65536 for d in v)
            )
        ),
        "null or [height, width]",
        required=False,
    )
    for name in ("data_dir", "tfds_data_dir"):
        field(
            cfg,
            name,
            lambda v: v is None or isinstance(v, str),
            "null or a path",
            False,
        )
    field(
        data,
        "class_names",
        lambda v: isinstance(v, list) and v and all(isinstance(c, str) for c in v),
        "a list of class names",
    )
    return record


def resolve_model_path(path: str) -> tuple[str, dict | None]:
    """`path` is a run directory or a `.keras` file; returns (file, run record).

    The run record (`run.json` beside the file) is checked here, once, so that
    every consumer gets either the fields it reads or a one-line error.

    Args:
        path: str. A run directory or a `.keras` file.

    Returns:
        `(model file, checked run record or None)`.
    """
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
    record = None
    if os.path.isfile(run_json):
        record = _check_record(io.read_json(run_json), run_json)
    return model_path, record


_SHAPES = re.compile(
    r"variable\.shape=(\([^)]*\)).*?value\.shape=(\([^)]*\))", re.DOTALL
)
_VARIABLE = re.compile(r"Target variable: <Variable path=([^,>]+)")
_OBJECT = re.compile(r"Example error message for object <(\w+) name=([^,>]+)")


def _load_error(error: Exception) -> str:
    """One line saying why Keras could not load a model."""
    texts = []
    while error is not None and len(texts) < 8:
        texts.append(str(error))
        error = error.__cause__ or error.__context__
    text = "\n".join(texts)
    shapes = _SHAPES.search(text)
    if shapes:
        variable = _VARIABLE.search(text)
        owner = _OBJECT.search(text)
        name = (
            variable.group(1)
            if variable
            else f"layer {owner.group(2)}"
            if owner
            else "a variable"
        )
        return (
            f"its weights do not match its architecture: {name} has shape "
            f"{shapes.group(1)} in the model but {shapes.group(2)} in the file"
        )
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines and lines[0].startswith("A total of") and len(lines) > 1:
        lines = [" ".join(lines[:3])]
    first = lines[0] if lines else type(error).__name__
    if "safe_mode" in first or "unsafe_deserialization" in first:
        first = first.split(" This carries")[0].split(" If you trust")[0]
        first += " If you trust this file, pass --unsafe"
    return first[:400]


def load_model(path: str, unsafe: bool = False) -> tuple[keras.Model, dict | None]:
    """Loads a model (run directory or `.keras` file), safely by default.

    Safe loading (the default) checks the archive as data first
    (`safety.check_model_archive`: no path traversal, no bombs, nothing
    outside the allowlist of what the package's models are made of), builds
    the architecture from the checked config with Keras's `safe_mode=True`,
    checks the declared size of the weights against the parameters it needs
    (`safety.check_weights_size`), and only then reads the weights.

    Args:
        path: str. A run directory or a `.keras` file.
        unsafe: bool. Skip the checks and load with `keras.saving.load_model(...,
            safe_mode=False)`, for a file you trust. Defaults to False.

    Returns:
        `(model, run record or None)`.

    Example:

    ```python
    model, record = load_model("saved_models/fast")
    ```
    """
    model_path, record = resolve_model_path(path)
    _custom_objects_loaded()
    try:
        if unsafe:
            model = keras.saving.load_model(model_path, compile=False, safe_mode=False)
        else:
            config = check_model_archive(model_path)
            # As `load_model(compile=False)` does, at every level: no
            # optimizer, loss or metric is rebuilt.
            drop_compile_configs(config)
            model = keras.saving.deserialize_keras_object(config, safe_mode=True)
            if not isinstance(model, keras.Model):
                raise UserInputError(f"{model_path}: the file holds no Keras model.")
            check_weights_size(model_path, model)
            model.load_weights(model_path)
    except UserInputError:
        raise
    except (
        OSError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        EOFError,
        zipfile.BadZipFile,
        zlib.error,
    ) as e:
        raise UserInputError(
            f"{model_path}: cannot load model ({_load_error(e)})."
        ) from None
    if record is not None:
        outputs = model.output_shape[-1]
        names = record["dataset"]["class_names"]
        if len(names) != outputs:
            raise UserInputError(
                f"{os.path.join(os.path.dirname(model_path), 'run.json')}: malformed "
                f"run.json: dataset.class_names has {len(names)} names, the model "
                f"{outputs} outputs."
            )
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
        # The run's own folders, where they still exist: a folder the run was
        # trained from may be gone since, and the data found elsewhere.
        recorded = cfg.get("data_dir")
        data_dir = data_dir or (
            recorded if recorded and os.path.isdir(recorded) else None
        )
        recorded = cfg.get("tfds_data_dir")
        tfds_data_dir = tfds_data_dir or (
            recorded if recorded and os.path.isdir(recorded) else None
        )
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


# 8192x8192: far above any image a classifier of this package is fed, small
# enough to decode (256 MB of RGBA) before it is resized.
MAX_IMAGE_PIXELS = 8192 * 8192


def check_image_size(image_path: str, max_pixels: int = MAX_IMAGE_PIXELS) -> None:
    """Raises `UserInputError` if an image's header declares too many pixels.

    Pillow reads only the header here, so a decompression bomb (a PNG of a
    few KB declaring 100000x100000 pixels) is refused before it is decoded.

    Args:
        image_path: str. An image file.
        max_pixels: int. The most pixels allowed. Defaults to
            `MAX_IMAGE_PIXELS`.
    """
    # Pillow's own bomb check would raise before the size can be named; the
    # bound below replaces it for this header-only read.
    pillow_limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        with Image.open(image_path) as image:
            width, height = image.size
    except (OSError, SyntaxError, ValueError):
        raise UserInputError(
            f"{image_path}: not a PNG, JPEG, BMP or GIF image."
        ) from None
    finally:
        Image.MAX_IMAGE_PIXELS = pillow_limit
    if width * height > max_pixels:
        raise UserInputError(
            f"{image_path}: image too large: {width}x{height} pixels, limit "
            f"{max_pixels} pixels."
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
    # Checked by `load_model`: one name per model output.
    class_names = record["dataset"]["class_names"] if record else None
    batch = []
    for image_path in image_paths:
        if not os.path.isfile(image_path):
            raise UserInputError(f"Image not found: {image_path}")
        check_image_size(image_path)
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

"""Pretrained weights for the zoo models that have a `keras.applications` twin.

ResNet50/101/152 and their V2s, VGG16/19, MobileNet and InceptionResNetV2 are
built here to compute exactly the function of their `keras.applications`
twin, so the twin's published ImageNet weights fit them. The weights file is
fetched with Keras's own download-and-cache (`keras.utils.get_file` into
`~/.keras/models`, with the URL and MD5 hash `keras.applications` uses), loaded
into a twin built with `weights=None`, and copied layer by layer, in order,
into the zoo model, every weight's shape checked.

The head: ImageNet weights have a 1000-class classifier. A model with another
number of classes gets the backbone's weights and keeps its freshly
initialized classifier (for VGG also its freshly initialized dense layers
when the input is not 224x224, since their size follows the input's); a log
line says so. A local weights file saved from a twin (`.h5` or
`.weights.h5`) is loaded the same way; the twin is built to match the file
(with or without top, its number of classes).

The twins expect the images their `preprocess_input` makes (`"caffe"`: BGR,
0-255 less the ImageNet mean; `"tf"`: scaled to [-1, 1]).
`ImageNetPreprocessing` does that inside a model for images in [0, 1], the
package's convention; `with_imagenet_preprocessing` puts it in front of a
model (what `train --weights` does).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import warnings

import keras
from keras import ops

from keras_convnets.errors import UserInputError

logger = logging.getLogger(__name__)

_STORAGE = "https://storage.googleapis.com/tensorflow/keras-applications/"
# The keras.applications layer names of the classifier; VGG's dense layers.
_HEAD = {"predictions", "conv_preds"}
_TOP = _HEAD | {"fc1", "fc2"}
# ImageNet channel means, BGR, of the "caffe" preprocessing.
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


@dataclasses.dataclass(frozen=True)
class Twin:
    """The `keras.applications` twin of a zoo model and its weights files."""

    application: str  # constructor name in keras.applications
    preprocessing: str  # "caffe" or "tf" (the twin's preprocess_input mode)
    default_size: int  # the input size its ImageNet weights were trained at
    top: tuple  # (file name, MD5 or None) with the classifier
    notop: tuple  # (file name, MD5 or None) without it
    folder: str  # under keras-applications/

    def url(self, file_name):
        return f"{_STORAGE}{self.folder}/{file_name}"


def _resnet(name, application, top_hash, notop_hash, preprocessing):
    stem = f"{name}_weights_tf_dim_ordering_tf_kernels"
    return Twin(
        application,
        preprocessing,
        224,
        (f"{stem}.h5", top_hash),
        (f"{stem}_notop.h5", notop_hash),
        "resnet",
    )


# URLs and hashes as in keras/src/applications/{resnet,vgg16,vgg19,
# inception_resnet_v2,mobilenet}.py.
TWINS = {
    "resnet50": _resnet(
        "resnet50",
        "ResNet50",
        "2cb95161c43110f7111970584f804107",
        "4d473c1dd8becc155b73f8504c6f6626",
        "caffe",
    ),
    "resnet101": _resnet(
        "resnet101",
        "ResNet101",
        "f1aeb4b969a6efcfb50fad2f0c20cfc5",
        "88cf7a10940856eca736dc7b7e228a21",
        "caffe",
    ),
    "resnet152": _resnet(
        "resnet152",
        "ResNet152",
        "100835be76be38e30d865e96f2aaae62",
        "ee4c566cf9a93f14d82f913c2dc6dd0c",
        "caffe",
    ),
    "resnet50_v2": _resnet(
        "resnet50v2",
        "ResNet50V2",
        "3ef43a0b657b3be2300d5770ece849e0",
        "fac2f116257151a9d068a22e544a4917",
        "tf",
    ),
    "resnet101_v2": _resnet(
        "resnet101v2",
        "ResNet101V2",
        "6343647c601c52e1368623803854d971",
        "c0ed64b8031c3730f411d2eb4eea35b5",
        "tf",
    ),
    "resnet152_v2": _resnet(
        "resnet152v2",
        "ResNet152V2",
        "a49b44d1979771252814e80f8ec446f9",
        "ed17cf2e0169df9d443503ef94b23b33",
        "tf",
    ),
    "vgg16": Twin(
        "VGG16",
        "caffe",
        224,
        (
            "vgg16_weights_tf_dim_ordering_tf_kernels.h5",
            "64373286793e3c8b2b4e3219cbf3544b",
        ),
        (
            "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
            "6d6bbae143d832006294945121d1f1fc",
        ),
        "vgg16",
    ),
    "vgg19": Twin(
        "VGG19",
        "caffe",
        224,
        (
            "vgg19_weights_tf_dim_ordering_tf_kernels.h5",
            "cbe5617147190e668d6c5d5026f83318",
        ),
        (
            "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
            "253f8cb515780f3b799900260a226db6",
        ),
        "vgg19",
    ),
    "inception_resnet_v2": Twin(
        "InceptionResNetV2",
        "tf",
        299,
        (
            "inception_resnet_v2_weights_tf_dim_ordering_tf_kernels.h5",
            "e693bd0210a403b3192acc6073ad2e96",
        ),
        (
            "inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
            "d19885ff4a710c122648d3b5c3b684e4",
        ),
        "inception_resnet_v2",
    ),
    # keras.applications publishes no hash for MobileNet; the file also
    # depends on the training resolution (see `_mobilenet_files`).
    "mobilenet": Twin(
        "MobileNet",
        "tf",
        224,
        ("mobilenet_1_0_224_tf.h5", None),
        ("mobilenet_1_0_224_tf_no_top.h5", None),
        "mobilenet",
    ),
}


def pretrained_models() -> list[str]:
    """The zoo names that can load ImageNet weights (`weights="imagenet"`)."""
    return sorted(TWINS)


def get_twin(name: str) -> Twin:
    """The `Twin` record of zoo model `name`, or a `UserInputError`."""
    if name not in TWINS:
        raise UserInputError(
            f"{name!r} has no pretrained weights; models with ImageNet weights "
            f"(keras.applications twins): {', '.join(pretrained_models())}. "
            f"Received: model={name!r}"
        )
    return TWINS[name]


def build_twin(name, input_shape, include_top=True, classes=1000, **kwargs):
    """The `keras.applications` twin of `name`, randomly initialized.

    Args:
        name: str. A zoo name from `pretrained_models()`.
        input_shape: tuple. `(height, width, 3)`.
        include_top: bool. With the classifier. Defaults to True.
        classes: int. Classes of the classifier. Defaults to 1000.
        **kwargs: more twin arguments (e.g. `alpha` for MobileNet).

    Returns:
        A `keras.Model` built with `weights=None`.
    """
    twin = get_twin(name)
    constructor = getattr(keras.applications, twin.application)
    top = {"classes": int(classes)} if include_top else {}
    return constructor(
        weights=None,
        include_top=include_top,
        input_shape=tuple(input_shape),
        **top,
        **kwargs,
    )


def _mobilenet_files(twin, input_shape, alpha):
    """MobileNet's files are per width and training resolution (keras's rule:
    the input size if it is one of 128/160/192/224, else 224)."""
    rows = input_shape[0] if input_shape[0] in (128, 160, 192, 224) else 224
    text = {1.0: "1_0", 0.75: "7_5", 0.5: "5_0", 0.25: "2_5"}.get(float(alpha))
    if text is None or input_shape[0] != input_shape[1]:
        raise UserInputError(
            "MobileNet ImageNet weights exist for alpha 0.25, 0.5, 0.75 and 1.0 "
            f"and square inputs. Received: alpha={alpha}, "
            f"input_shape={tuple(input_shape)}"
        )
    base = f"mobilenet_{text}_{rows}_tf"
    return dataclasses.replace(
        twin, top=(f"{base}.h5", None), notop=(f"{base}_no_top.h5", None)
    )


def download_imagenet_weights(name, include_top=True, input_shape=None, alpha=1.0):
    """The local path of the ImageNet weights file of `name` (downloaded once).

    Keras's `keras.utils.get_file` caches the file in `~/.keras/models` and
    checks its MD5 hash where `keras.applications` has one.

    Args:
        name: str. A zoo name from `pretrained_models()`.
        include_top: bool. The file with the 1000-class classifier (else the
            backbone only, a smaller file). Defaults to True.
        input_shape: tuple or None. MobileNet only: picks the file of the
            training resolution.
        alpha: float. MobileNet only: the width multiplier.

    Returns:
        str. The path of the weights file.

    Raises:
        UserInputError: the download failed and no cached copy exists.
    """
    twin = get_twin(name)
    if name == "mobilenet":
        twin = _mobilenet_files(twin, input_shape or (224, 224, 3), alpha)
    file_name, file_hash = twin.top if include_top else twin.notop
    try:
        return keras.utils.get_file(
            file_name,
            twin.url(file_name),
            cache_subdir="models",
            file_hash=file_hash,
        )
    except Exception as e:  # noqa: BLE001 - get_file raises bare Exceptions
        first = (str(e).splitlines() or [type(e).__name__])[0][:200]
        raise UserInputError(
            f"{name}: could not download the ImageNet weights {file_name} and "
            f"there is no cached copy in ~/.keras/models (offline?): {first}. "
            "Put the file there, or pass weights=<path to a weights file>."
        ) from None


def _weighted(model):
    return [layer for layer in model.layers if layer.weights]


def _read_file_head(path, mobilenet):
    """`(has_top, classes)` of a weights file saved from a twin.

    Legacy `.h5` files (the published ones) name their layers; Keras 3
    `.weights.h5` files number them by class (`dense`, `dense_1`, ...), so
    the classifier is the last `dense` (or, for MobileNet's 1x1-conv
    classifier, the 15th `conv2d`).
    """
    import h5py

    def number(key):
        match = re.search(r"_(\d+)$", key)
        return int(match.group(1)) if match else 0

    try:
        with h5py.File(path, "r") as f:
            root = f["model_weights"] if "model_weights" in f else f
            if "layer_names" in root.attrs:  # legacy h5
                names = [
                    n.decode() if isinstance(n, bytes) else n
                    for n in root.attrs["layer_names"]
                ]
                head = "conv_preds" if mobilenet else "predictions"
                if head not in names:
                    return False, None
                weight_names = root[head].attrs["weight_names"]
                kernel = weight_names[0]
                kernel = kernel.decode() if isinstance(kernel, bytes) else kernel
                return True, int(root[head][kernel].shape[-1])
            if "layers" not in f:
                raise UserInputError(
                    f"{path} is not a Keras weights file (no layers in it)."
                )
            keys = list(f["layers"].keys())
            if mobilenet:
                convs = sorted(
                    (k for k in keys if re.fullmatch(r"conv2d(_\d+)?", k)), key=number
                )
                if len(convs) < 15:
                    return False, None
                return True, int(f["layers"][convs[-1]]["vars"]["0"].shape[-1])
            dense = sorted(
                (k for k in keys if re.fullmatch(r"dense(_\d+)?", k)), key=number
            )
            if not dense:
                return False, None
            return True, int(f["layers"][dense[-1]]["vars"]["0"].shape[-1])
    except UserInputError:
        raise
    except (OSError, KeyError, IndexError) as e:
        raise UserInputError(
            f"Cannot read weights file {path}: {type(e).__name__}: "
            f"{str(e).splitlines()[0][:200] if str(e) else ''}"
        ) from None


def copy_twin_weights(twin_model, model, name="model"):
    """Copies a `keras.applications` twin's weights into a zoo model, in order.

    Weighted layers are paired in order and every weight's shape is checked.
    The classifier (`predictions`; MobileNet's 1x1 `conv_preds` is reshaped
    into the zoo's dense layer) and VGG's `fc1` and `fc2` are each copied
    when the twin has it with as many weights; otherwise the zoo model keeps
    its own (freshly initialized) one.

    Args:
        twin_model: keras.Model. The twin, with weights.
        model: keras.Model. The zoo model (same architecture).
        name: str. For messages.

    Returns:
        list of str. The names of the zoo layers left as they were (empty
        when everything was copied).

    Raises:
        UserInputError: the architectures or shapes do not match.
    """
    source, target = _weighted(twin_model), _weighted(model)
    body_source = [layer for layer in source if layer.name not in _TOP]
    body_target = [layer for layer in target if layer.name not in _TOP]
    if len(body_source) != len(body_target):
        raise UserInputError(
            f"{name}: the weights are for a different architecture "
            f"({len(body_source)} weighted layers before the classifier in the "
            f"file, {len(body_target)} in the model)."
        )
    pairs = list(zip(body_source, body_target))

    def key(layer):
        return "classifier" if layer.name in _HEAD else layer.name

    top_source = {key(layer): layer for layer in source if layer.name in _TOP}
    kept = []
    for layer in target:
        if layer.name not in _TOP:
            continue
        match = top_source.get(key(layer))
        if match is not None and _sizes(match) == _sizes(layer):
            pairs.append((match, layer))
        else:
            kept.append(layer.name)
    for src, dst in pairs:
        values = src.get_weights()
        shapes = [tuple(w.shape) for w in dst.weights]
        if len(values) != len(shapes) or any(
            v.size != int(_prod(s)) for v, s in zip(values, shapes)
        ):
            raise UserInputError(
                f"{name}: weights of layer {src.name!r} "
                f"{[tuple(v.shape) for v in values]} do not fit layer "
                f"{dst.name!r} {shapes}."
            )
        if any(tuple(v.shape) != s for v, s in zip(values, shapes)):
            if src.name not in _HEAD:  # only the 1x1-conv classifier reshapes
                raise UserInputError(
                    f"{name}: weights of layer {src.name!r} "
                    f"{[tuple(v.shape) for v in values]} do not fit layer "
                    f"{dst.name!r} {shapes}."
                )
            values = [v.reshape(s) for v, s in zip(values, shapes)]
        dst.set_weights(values)
    return kept


def _prod(shape):
    result = 1
    for d in shape:
        result *= int(d)
    return result


def _sizes(layer):
    return [_prod(w.shape) for w in layer.weights]


def load_pretrained(model, name, weights, backbone_only=False, **twin_kwargs):
    """Loads ImageNet (or a twin's local) weights into zoo model `name`.

    Args:
        model: keras.Model. Built by `get_model(name, ...)` with 3 channels.
        name: str. A zoo name from `pretrained_models()`.
        weights: str. `"imagenet"` or the path of a `.h5`/`.weights.h5` file
            saved from the `keras.applications` twin.
        backbone_only: bool. The caller drops the classifier: take the
            ImageNet file without it and say nothing about a fresh head.
            Defaults to False.
        **twin_kwargs: twin arguments (MobileNet's `alpha`).

    Returns:
        The model, with the weights.

    Raises:
        UserInputError: no twin, not 3 channels, download failed, file
            missing or of another architecture.
    """
    twin = get_twin(name)
    input_shape = tuple(int(d) for d in model.input_shape[1:])
    if input_shape[-1] != 3:
        raise UserInputError(
            f"{name}: pretrained weights need RGB inputs (3 channels). Received: "
            f"input_shape={input_shape}"
        )
    num_classes = int(model.output_shape[-1])
    if weights == "imagenet":
        # VGG's dense layers fit only 224x224 inputs (then fc1 and fc2 are
        # worth loading whatever the classes); the other classifiers fit any
        # input but only 1000 classes.
        if backbone_only:
            top = False
        elif name.startswith("vgg"):
            top = input_shape[:2] == (224, 224)
        else:
            top = num_classes == 1000
        path = download_imagenet_weights(
            name, top, input_shape, twin_kwargs.get("alpha", 1.0)
        )
        classes = 1000
    else:
        path = os.fspath(weights)
        if not os.path.isfile(path) or not path.endswith(".h5"):
            raise UserInputError(
                f"{name}: weights must be 'imagenet' or the path of a .h5 or "
                f".weights.h5 file. Received: weights={weights!r}"
            )
        top, classes = _read_file_head(path, mobilenet=name == "mobilenet")
    # Only VGG's classifier depends on the input size; the others are built
    # at the size the twin accepts without complaint.
    shape = input_shape if (top and name.startswith("vgg")) else None
    shape = shape or (twin.default_size, twin.default_size, 3)
    reference = build_twin(
        name, shape, include_top=top, classes=classes or 1000, **twin_kwargs
    )
    try:
        with warnings.catch_warnings():
            # Keras warns about every layer a mismatched file lacks; the
            # error below says it in one line.
            warnings.simplefilter("ignore", UserWarning)
            reference.load_weights(path)
    except Exception as e:  # noqa: BLE001 - Keras raises many kinds here
        first = (str(e).splitlines() or [type(e).__name__])[0][:200]
        raise UserInputError(
            f"{name}: cannot load {path} into keras.applications."
            f"{twin.application}: {type(e).__name__}: {first}"
        ) from None
    kept = copy_twin_weights(reference, model, name)
    if kept and not backbone_only:
        logger.warning(
            "%s: loaded the pretrained backbone; %s freshly initialized "
            "(the file has %s, the model %d classes at %s).",
            name,
            ", ".join(kept),
            f"{classes} classes" if top else "no classifier",
            num_classes,
            input_shape,
        )
    return model


@keras.saving.register_keras_serializable(package="keras_convnets")
class ImageNetPreprocessing(keras.layers.Layer):
    """Maps images in [0, 1] to the input a `keras.applications` twin expects.

    `mode="caffe"` (ResNet v1, VGG): RGB to BGR, times 255, less the
    ImageNet channel means. `mode="tf"` (ResNet v2, MobileNet,
    Inception-ResNet-v2): scaled to [-1, 1]. Grey images (1 channel) are
    repeated into 3 channels first.

    Args:
        mode: str. `"caffe"` or `"tf"`.
        **kwargs: base layer arguments.

    Example:

    ```python
    x = ImageNetPreprocessing("tf")(keras.Input((28, 28, 1)))  # (None, 28, 28, 3)
    ```
    """

    def __init__(self, mode="tf", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("caffe", "tf"):
            raise ValueError(f'mode must be "caffe" or "tf". Received: mode={mode!r}')
        self.mode = mode

    def call(self, images):
        if images.shape[-1] == 1:
            images = ops.repeat(images, 3, axis=-1)
        if self.mode == "tf":
            return images * 2.0 - 1.0
        bgr = ops.flip(images, axis=-1) * 255.0
        mean = ops.convert_to_tensor(_CAFFE_MEAN_BGR, dtype=bgr.dtype)
        return bgr - mean

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 3)

    def get_config(self):
        config = super().get_config()
        config.update({"mode": self.mode})
        return config


def with_imagenet_preprocessing(model, name, input_shape):
    """`model` (an RGB twin-layout zoo model) behind `ImageNetPreprocessing`.

    The result takes images in [0, 1] of `input_shape` (1 or 3 channels); its
    layers are the model's own (weights shared), in one flat graph.

    Args:
        model: keras.Model. A zoo model built for `(height, width, 3)`.
        name: str. Its zoo name (picks the preprocessing).
        input_shape: tuple. `(height, width, channels)` of the images.

    Returns:
        A `keras.Model` named like `model`.
    """
    input_shape = tuple(int(d) for d in input_shape)
    inputs = keras.Input(input_shape, name="image")
    x = ImageNetPreprocessing(get_twin(name).preprocessing, name="imagenet_input")(
        inputs
    )
    # Each of the model's layers called on `x` in graph order: one flat graph
    # of the same layers (calling the model would nest it as one layer, and
    # `Functional.call` would add a ConvertToTensor op, which the safe
    # loader's allowlist refuses).
    outputs = model._run_through_graph(x, operation_fn=lambda layer: layer)
    return keras.Model(inputs, outputs, name=model.name)


def _grey_or_rgb(name: str, input_shape) -> tuple[int, int]:
    """(height, width) of grey or RGB `input_shape` for a model with a twin, or raises."""
    get_twin(name)
    height, width, channels = (int(d) for d in input_shape)
    if channels not in (1, 3):
        raise UserInputError(
            f"{name}: pretrained weights need grey or RGB images (1 or 3 "
            f"channels). Received: input_shape={tuple(input_shape)}"
        )
    return height, width


def pretrained_model(name, input_shape, num_classes, weights, **kwargs):
    """Zoo model `name` with pretrained weights, taking images in [0, 1].

    The model is built for RGB at the images' height and width, loaded with
    `weights` (see `get_model`), and put behind `ImageNetPreprocessing`, so
    it takes the package's images (grey or RGB, in [0, 1]) and trains and
    saves like any zoo model. What `train --weights` builds.

    Args:
        name: str. A zoo name from `pretrained_models()`.
        input_shape: tuple. `(height, width, channels)`, 1 or 3 channels.
        num_classes: int. Classes; with 1000 the ImageNet classifier is kept.
        weights: str. `"imagenet"` or a weights file of the twin.
        **kwargs: builder arguments.

    Returns:
        A `keras.Model`.

    Example:

    ```python
    model = pretrained_model("resnet50_v2", (28, 28, 1), 10, "imagenet")
    ```
    """
    from keras_convnets.models.registry import get_model

    height, width = _grey_or_rgb(name, input_shape)
    model = get_model(name, (height, width, 3), num_classes, weights=weights, **kwargs)
    return with_imagenet_preprocessing(model, name, input_shape)


def pretrained_features(name, input_shape, weights="imagenet", **kwargs):
    """The pooled features of zoo model `name`, for images in [0, 1].

    The model without its classifier (for VGG also without `fc1`/`fc2`):
    `ImageNetPreprocessing`, the convolutional part with `weights`, global
    average pooling (as `keras.applications` models with `pooling="avg"`).

    Args:
        name: str. A zoo name from `pretrained_models()`.
        input_shape: tuple. `(height, width, channels)`, 1 or 3 channels.
        weights: str or None. `"imagenet"`, a twin's weights file, or None
            (random initialization). Defaults to `"imagenet"`.
        **kwargs: builder arguments.

    Returns:
        A `keras.Model` from images to `(batch, features)`, named
        `{name}_features`.

    Example:

    ```python
    features = pretrained_features("resnet50_v2", (96, 96, 1))  # (None, 2048)
    ```
    """
    from keras_convnets.models.registry import get_model

    height, width = _grey_or_rgb(name, input_shape)
    model = get_model(name, (height, width, 3), 2, **kwargs)
    if weights is not None:
        twin_kwargs = {k: kwargs[k] for k in ("alpha",) if k in kwargs}
        load_pretrained(model, name, weights, backbone_only=True, **twin_kwargs)
    names = {layer.name for layer in model.layers}
    if "avg_pool" in names:
        pooled = model.get_layer("avg_pool").output
    else:  # VGG: pool the last feature map instead of flattening it
        maps = model.get_layer("flatten").input
        pooled = keras.layers.GlobalAveragePooling2D(name="avg_pool")(maps)
    features = keras.Model(model.inputs, pooled, name=f"{name}_features")
    return with_imagenet_preprocessing(features, name, input_shape)

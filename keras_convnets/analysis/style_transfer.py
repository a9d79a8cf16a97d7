"""Neural style transfer (Gatys, Ecker and Bethge 2016; lecture part 8).

A trained convnet's feature maps `F` at a deep layer keep an image's content;
the Gram matrices `G = F^T F` of its maps (which features occur together,
wherever they are) keep its style. Starting from the content image, gradient
descent on the pixels makes the content features match the content image and
the Gram matrices match the style image.

The backbone is `keras.applications.VGG19` with ImageNet weights (as in the
paper), or any convnet saved by this package, which works offline.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from keras_convnets.analysis import _common
from keras_convnets.errors import UserInputError

# The layers of the paper for VGG19.
VGG19_CONTENT_LAYER = "block5_conv2"
VGG19_STYLE_LAYERS = (
    "block1_conv1",
    "block2_conv1",
    "block3_conv1",
    "block4_conv1",
    "block5_conv1",
)
_VGG19_WEIGHTS = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"


@dataclasses.dataclass
class Backbone:
    """A feature network for style transfer.

    Attributes:
        model: `keras.Model`. Takes images as `preprocess` returns them.
        preprocess: callable. Maps float images in [0, 1] to the model's input.
        channels: int. Input channels (1 for a grayscale network).
        image_size: `(H, W)` or None. The model's fixed input size, if any.
        content_layer: str. Default content layer.
        style_layers: tuple of str. Default style layers.
    """

    model: keras.Model
    preprocess: Callable
    channels: int
    image_size: tuple | None
    content_layer: str
    style_layers: tuple


def _vgg19_backbone() -> Backbone:
    cached = os.path.join(
        os.environ.get("KERAS_HOME", os.path.expanduser("~/.keras")),
        "models",
        _VGG19_WEIGHTS,
    )
    offline = (
        "--backbone vgg19 needs the ImageNet VGG19 weights ({}), which are not "
        f"in {os.path.dirname(cached)}; use a model saved by this package "
        "instead (a run directory or .keras file), which works offline."
    )
    if not os.path.isfile(cached):
        from keras_convnets.data.datasets import is_online

        if not is_online():
            raise UserInputError(offline.format("no network to download them"))
    try:
        model = keras.applications.VGG19(include_top=False, weights="imagenet")
    except Exception as e:  # urllib/HTTP/OS errors of the download
        raise UserInputError(
            offline.format(f"download failed: {str(e).splitlines()[0][:200]}")
        ) from None

    def preprocess(images):
        return keras.applications.vgg19.preprocess_input(images * 255.0)

    return Backbone(
        _common.float32_model(model),
        preprocess,
        3,
        None,
        VGG19_CONTENT_LAYER,
        VGG19_STYLE_LAYERS,
    )


def load_backbone(spec, unsafe: bool = False) -> Backbone:
    """A style-transfer backbone: `"vgg19"`, a saved run/`.keras` path, or a
    `keras.Model` taking images in [0, 1]. `unsafe` loads a saved file without
    the safety checks (`inference.load_model`), for a file you trust.

    For the package's models the content layer defaults to the last
    convolution and the style layers to all convolutions, in order.
    """
    if isinstance(spec, str) and spec.lower() == "vgg19":
        return _vgg19_backbone()
    if isinstance(spec, str):
        from keras_convnets.inference import load_model

        model, _ = load_model(spec, unsafe=unsafe)
    else:
        model = spec
    from keras_convnets.models.tta import unwrap_tta

    model = _common.float32_model(unwrap_tta(model))
    convs = _common.conv_layer_names(model)
    if not convs:
        raise UserInputError(
            f"Backbone {model.name!r} has no convolution layer to take features from."
        )
    height, width, channels = _common.model_input(model).shape[1:]
    size = None if height is None or width is None else (height, width)
    return Backbone(model, lambda x: x, channels, size, convs[-1], tuple(convs))


def feature_model(model, layer_names, image_size=None) -> keras.Model:
    """A model returning the named layers' maps, at `image_size` if given.

    A network trained at a fixed size (e.g. 28x28) is rebuilt on an input of
    any size by re-applying its layers up to the named ones (convolutions and
    pools do not care about the size; a flatten or dense layer would).
    """
    model = _common.float32_model(model)
    outputs = [_common.spatial_layer(model, n).output for n in layer_names]
    features = _common.submodel(model, outputs)
    fixed = tuple(_common.model_input(model).shape[1:3])
    if image_size is None or tuple(image_size) == fixed:
        return features
    channels = _common.model_input(model).shape[-1]
    try:
        resized = keras.models.clone_model(
            features,
            input_tensors=keras.Input((None, None, channels)),
            clone_function=lambda layer: layer,  # share the trained layers
        )
        resized(np.zeros((1, *image_size, channels), "float32"))
    except Exception as e:
        raise UserInputError(
            f"Backbone {model.name!r} cannot run at size {tuple(image_size)} up to "
            f"layers {', '.join(dict.fromkeys(layer_names))} ({str(e).splitlines()[0][:160]}); "
            f"use --size {fixed[0]},{fixed[1]}."
        ) from None
    return resized


def gram_matrix(features):
    """Gram matrices `F^T F / (H W)` of a batch of maps `(N, H, W, C)`."""
    shape = tf.shape(features)
    flat = tf.reshape(features, (shape[0], shape[1] * shape[2], shape[3]))
    positions = tf.cast(shape[1] * shape[2], features.dtype)
    return tf.matmul(flat, flat, transpose_a=True) / positions


def total_variation(images):
    """Mean squared difference of neighbouring pixels (smoothness)."""
    dy = images[:, 1:, :, :] - images[:, :-1, :, :]
    dx = images[:, :, 1:, :] - images[:, :, :-1, :]
    return tf.reduce_mean(tf.square(dy)) + tf.reduce_mean(tf.square(dx))


class StyleLoss:
    """The total loss of Gatys et al., each term relative to its target.

    `content = mean((F - P)^2) / mean(P^2)` at the content layer; `style` =
    the mean over style layers of `mean((G - A)^2) / mean(A^2)` (Gram matrices
    of the image and of the style image); `tv` = total variation of the image.
    Dividing by the target's mean square makes the terms unit-free, so the
    same weights work for VGG19 and for a small network trained here.

    Call it on images in [0, 1] `(N, H, W, C)`; returns a dict of scalar
    tensors `total`, `content`, `style`, `tv`.
    """

    def __init__(
        self,
        backbone: Backbone,
        content_image,
        style_image,
        content_layer: str | None = None,
        style_layers=None,
        content_weight: float = 1.0,
        style_weight: float = 10.0,
        tv_weight: float = 1.0,
        image_size=None,
    ):
        self.backbone = backbone
        self.content_layer = content_layer or backbone.content_layer
        self.style_layers = tuple(style_layers or backbone.style_layers)
        if not self.style_layers:
            raise UserInputError("style_layers is empty.")
        self.weights = dict(content=content_weight, style=style_weight, tv=tv_weight)
        for key, value in self.weights.items():
            if value < 0:
                raise UserInputError(
                    f"{key}_weight must be >= 0. Received: {key}_weight={value}"
                )
        self.features = feature_model(
            backbone.model, (self.content_layer, *self.style_layers), image_size
        )
        content_maps = self._maps(content_image)
        style_maps = self._maps(style_image)
        self.content_target = content_maps[0]
        self.style_targets = [gram_matrix(m) for m in style_maps[1:]]
        self._content_scale = tf.reduce_mean(tf.square(self.content_target)) + 1e-8
        self._style_scales = [
            tf.reduce_mean(tf.square(a)) + 1e-8 for a in self.style_targets
        ]

    def _maps(self, images):
        maps = self.features(self.backbone.preprocess(images), training=False)
        return maps if isinstance(maps, (list, tuple)) else [maps]

    def __call__(self, images):
        maps = self._maps(images)
        content = (
            tf.reduce_mean(tf.square(maps[0] - self.content_target))
            / self._content_scale
        )
        style = tf.add_n(
            [
                tf.reduce_mean(tf.square(gram_matrix(m) - a)) / s
                for m, a, s in zip(maps[1:], self.style_targets, self._style_scales)
            ]
        ) / len(self.style_targets)
        tv = total_variation(images)
        total = (
            self.weights["content"] * content
            + self.weights["style"] * style
            + self.weights["tv"] * tv
        )
        return dict(total=total, content=content, style=style, tv=tv)


def prepare_images(backbone: Backbone, content, style, size=None):
    """Content and style as `(1, H, W, channels)` in [0, 1] for the backbone.

    Args:
        backbone: a `Backbone`.
        content: a file path or an array `(H, W, C)` in [0, 1].
        style: a file path or an array `(H, W, C)` in [0, 1].
        size: int (longest side, the content's aspect kept) or `(H, W)`.
            Defaults to the backbone's fixed input size, else the content's
            size with its longest side capped at 512.

    Returns:
        `(content, style)`, both at the output size.
    """

    def load(image, target):
        if isinstance(image, (str, os.PathLike)):
            image = _common.read_image(os.fspath(image), backbone.channels)
        image = tf.convert_to_tensor(np.asarray(image, "float32"))
        if image.shape.rank == 2:
            image = image[..., None]
        if image.shape[-1] != backbone.channels:
            if backbone.channels == 1:
                image = tf.image.rgb_to_grayscale(image[..., :3])
            else:
                image = tf.image.grayscale_to_rgb(image[..., :1])
        if target is not None and tuple(image.shape[:2]) != tuple(target):
            image = tf.image.resize(image, target, antialias=True)
        return tf.clip_by_value(image, 0.0, 1.0)[None]

    content = load(content, None)
    height, width = content.shape[1:3]
    if size is None:
        if backbone.image_size is not None:
            target = tuple(backbone.image_size)
        else:
            scale = min(1.0, 512 / max(height, width))
            target = (round(height * scale), round(width * scale))
    elif isinstance(size, int) or np.ndim(size) == 0:
        scale = int(size) / max(height, width)
        target = (max(1, round(height * scale)), max(1, round(width * scale)))
    else:
        target = tuple(int(s) for s in size)
    if min(target) < 1:
        raise UserInputError(f"size must be positive. Received: size={size}")
    return load(content[0], target), load(style, target)


def style_transfer(
    backbone,
    content,
    style,
    content_layer: str | None = None,
    style_layers=None,
    content_weight: float = 1.0,
    style_weight: float = 10.0,
    tv_weight: float = 1.0,
    steps: int = 200,
    learning_rate: float = 0.02,
    size=None,
    init: str = "content",
    seed: int = 0,
    callback: Callable | None = None,
    unsafe: bool = False,
):
    """Renders `content` in the style of `style` by gradient descent on pixels.

    Args:
        backbone: `"vgg19"`, a saved run directory or `.keras` file, a
            `keras.Model` taking images in [0, 1], or a `Backbone`.
        content: a file path or an `(H, W, C)` array in [0, 1], any size and
            channels (converted to the backbone's channels).
        style: the same, for the style image.
        content_layer: str. Layer matched to the content. Defaults to the
            backbone's (`block5_conv2` for VGG19, else the last convolution).
        style_layers: sequence of str. Layers whose Gram matrices are matched.
            Defaults to the backbone's (the paper's five for VGG19, else all
            convolutions in order).
        content_weight: float. alpha, weight of the content term.
        style_weight: float. beta, weight of the style term.
        tv_weight: float. Weight of the total-variation term.
        steps: int. Adam steps. Defaults to 200.
        learning_rate: float. Adam step size on [0, 1] pixels.
        size: int or `(H, W)`. Output size (see `prepare_images`).
        init: str. `content` (default), `style` or `noise`.
        seed: int. Seed of the noise initialization.
        callback: callable `(step, losses, image)`, called for steps 0 to
            `steps` with the `(H, W, C)` image after that many steps and its
            float losses.
        unsafe: bool. Load a saved backbone without the safety checks.
            Defaults to False.

    Returns:
        `(image, history)`: float32 `(H, W, channels)` in [0, 1]; a dict of
        lists `total`, `content`, `style`, `tv`, entry `i` after `i` steps.

    Example:

    ```python
    image, history = style_transfer("saved_models/RUN", "cat.png", "waves.png",
                                    steps=100, size=64)
    ```

    Reference:
        Gatys, Ecker and Bethge, "Image Style Transfer Using Convolutional
        Neural Networks", CVPR 2016.
    """
    if steps < 0:
        raise UserInputError(f"steps must be >= 0. Received: steps={steps}")
    if init not in ("content", "style", "noise"):
        raise UserInputError(
            f"init must be content, style or noise. Received: init={init!r}"
        )
    if not isinstance(backbone, Backbone):
        backbone = load_backbone(backbone, unsafe=unsafe)
    content_image, style_image = prepare_images(backbone, content, style, size)
    loss_fn = StyleLoss(
        backbone,
        content_image,
        style_image,
        content_layer,
        style_layers,
        content_weight,
        style_weight,
        tv_weight,
        image_size=tuple(content_image.shape[1:3]),
    )
    if init == "content":
        start = content_image
    elif init == "style":
        start = style_image
    else:
        rng = np.random.default_rng(seed)
        start = rng.uniform(0, 1, content_image.shape).astype("float32")
    image = tf.Variable(start, dtype=tf.float32)
    optimizer = keras.optimizers.Adam(learning_rate)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            losses = loss_fn(image)
        grad = tape.gradient(losses["total"], image)
        optimizer.apply_gradients([(grad, image)])
        image.assign(tf.clip_by_value(image, 0.0, 1.0))
        return losses

    history = {key: [] for key in ("total", "content", "style", "tv")}

    def record(losses):
        for key in history:
            history[key].append(float(losses[key]))

    for i in range(steps):
        before = image.numpy()[0] if callback is not None else None
        losses = step()  # of the image after i steps, before this update
        record(losses)
        if callback is not None:
            callback(i, {k: v[-1] for k, v in history.items()}, before)
    record(loss_fn(image))
    if callback is not None:
        callback(steps, {k: v[-1] for k, v in history.items()}, image.numpy()[0])
    return image.numpy()[0], history

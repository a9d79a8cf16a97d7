"""Helpers shared by the analysis modules: layers by name, logits, images, PNGs."""

from __future__ import annotations

import io
import os

import keras
import numpy as np
import tensorflow as tf

from keras_convnets.errors import UserInputError


def get_layer(model, name: str):
    """`model.get_layer(name)` with an error that lists the layer names."""
    try:
        return model.get_layer(name)
    except ValueError:
        names = [layer.name for layer in model.layers]
        shown = ", ".join(names[:40]) + (" ..." if len(names) > 40 else "")
        raise UserInputError(
            f"Model {model.name!r} has no layer {name!r}; its layers are: {shown}. "
            f"Received: layer={name!r}"
        ) from None


def is_conv(layer) -> bool:
    """A sliding-window layer with a spatial kernel (Conv2D and friends)."""
    return hasattr(layer, "kernel_size") and len(getattr(layer, "kernel_size", ())) == 2


def conv_layer_names(model) -> list[str]:
    """Names of the model's 2-D convolution layers, in graph order."""
    return [layer.name for layer in model.layers if is_conv(layer)]


def first_conv_layer(model):
    for layer in model.layers:
        if is_conv(layer):
            return layer
    raise UserInputError(f"Model {model.name!r} has no convolution layer.")


def spatial_layer(model, name: str):
    """A layer whose output is a 4-D feature map (N, H, W, C)."""
    layer = get_layer(model, name)
    shape = layer.output.shape
    if len(shape) != 4:
        raise UserInputError(
            f"Layer {name!r} has output shape {tuple(shape)}; a feature map "
            f"(N, H, W, C) is needed, e.g. a convolution layer: "
            f"{', '.join(conv_layer_names(model)[:10])}."
        )
    return layer


def model_input(model):
    """The model's one input tensor (a bare tensor, so calls take an array)."""
    if len(model.inputs) != 1:
        raise UserInputError(
            f"Model {model.name!r} has {len(model.inputs)} inputs; one image input "
            f"is needed."
        )
    return model.inputs[0]


def submodel(model, outputs) -> keras.Model:
    """A model from the model's image input to `outputs` (tensors of its graph)."""
    return keras.Model(model_input(model), outputs)


def logits_model(model, layer_names=()) -> keras.Model:
    """A model returning `[layer outputs..., class scores]`.

    The class score is the pre-softmax logit when the model ends in a softmax
    (a softmax output saturates and couples the classes, so its gradient is a
    poor saliency signal). The final layer is re-applied with a linear
    activation and the same weights; the original model is untouched.
    """
    last = model.layers[-1]
    activation = getattr(last, "activation", None)
    name = getattr(activation, "__name__", "")
    if type(last).__name__ == "Softmax" or (
        type(last).__name__ == "Activation" and name == "softmax"
    ):
        scores = last.input
    elif name == "softmax":
        config = last.get_config()
        config["activation"] = "linear"
        config["name"] = f"{last.name}_logits"
        linear = type(last).from_config(config)
        scores = linear(last.input)
        linear.set_weights(last.get_weights())
    else:
        scores = model.outputs[0]
    outputs = [get_layer(model, n).output for n in layer_names] + [scores]
    return keras.Model(model_input(model), outputs, name=f"{model.name}_scores")


def as_batch(images) -> np.ndarray:
    """float32 NHWC array from an image, a batch or a tensor."""
    images = np.asarray(images, dtype="float32")
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4:
        raise ValueError(
            f"Expected images of shape (N, H, W, C) or (H, W, C). "
            f"Received: shape={images.shape}"
        )
    return images


def read_image(path: str, channels: int, size=None) -> np.ndarray:
    """A PNG/JPEG/BMP/GIF as float32 (H, W, channels) in [0, 1], resized to
    `size` `(H, W)` if given (antialiased, as `predict` does)."""
    if not os.path.isfile(path):
        raise UserInputError(f"Image not found: {path}")
    try:
        image = tf.io.decode_image(
            tf.io.read_file(path), channels=channels, expand_animations=False
        )
    except tf.errors.OpError:
        raise UserInputError(f"{path}: not a PNG, JPEG, BMP or GIF image.") from None
    image = tf.cast(image, tf.float32) / 255.0
    if size is not None and tuple(image.shape[:2]) != tuple(size):
        image = tf.image.resize(image, size, antialias=True)
    return np.clip(image.numpy(), 0.0, 1.0)


def write_image(path: str, image) -> None:
    """Writes an (H, W, C) image in [0, 1] as an 8-bit PNG, atomically."""
    from keras_convnets.training.io import atomic_write_bytes

    image = np.clip(np.asarray(image, dtype="float32"), 0.0, 1.0)
    if image.ndim == 2:
        image = image[..., None]
    data = tf.io.encode_png(tf.constant(np.round(image * 255).astype("uint8")))
    atomic_write_bytes(path, data.numpy())


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend (no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_png(fig) -> bytes:
    """The figure as PNG bytes (then closed)."""
    plt = pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.dpi, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def show_image(ax, image, title=None, cmap="gray", vmin=0.0, vmax=1.0, **kwargs):
    """Draws an (H, W, 1|3) or (H, W) image without axes ticks."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 3:
        ax.imshow(np.clip(image, 0, 1), **kwargs)
    else:
        ax.imshow(image, cmap=cmap, vmin=vmin, vmax=vmax, **kwargs)
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title, fontsize=7)


def grid_axes(n: int, ncols: int | None = None, cell: float = 1.4, title=None):
    """A figure with `n` axes in a grid (unused cells hidden)."""
    plt = pyplot()
    ncols = ncols or int(np.ceil(np.sqrt(n)))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(cell * ncols, cell * nrows + 0.5), squeeze=False
    )
    for ax in axes.flat[n:]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.set_layout_engine("constrained")
    return fig, list(axes.flat[:n])

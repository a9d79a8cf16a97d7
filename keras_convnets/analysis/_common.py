"""Helpers shared by the analysis modules: layers by name, logits, images, PNGs."""

from __future__ import annotations

import io
import os

import keras
import numpy as np
import tensorflow as tf

from keras_convnets.errors import UserInputError

_LOW_PRECISION = ("float16", "bfloat16")


def _low_precision(layer) -> bool:
    return layer.dtype_policy.compute_dtype in _LOW_PRECISION


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def float32_model(model: keras.Model) -> keras.Model:
    """The model computing in float32 everywhere: what analysis runs on.

    A model trained with `--precision bf16|fp16` computes in bfloat16/float16
    (Keras's mixed policies), with float32 variables and a float32 output.
    Analysis code mixes its own float32 tensors (images being optimized, loss
    targets, one-hot selections, gradients) with the model's intermediate
    outputs, and wants float32 numerics: a bfloat16 gradient or activation
    keeps 8 bits of mantissa, which ties top-patch rankings and blurs saliency
    maps, and float16 overflows during gradient ascent. So the model is
    cloned layer by layer from the configs, every layer that computes in low
    precision switched to the float32 policy, and each copy given the
    original's weights (exactly: the variables were float32 already). Every
    layer is copied, not shared, so `layer.input`/`layer.output` of the copy
    belong to the copy's graph. Nested Functional and Sequential models
    (e.g. the TTA wrapper's classifier) are copied the same way. The
    original model is untouched.

    Casting at the analysis code's end instead (inputs to the compute dtype,
    outputs to float32) would need a cast at every place a tool touches a
    tensor, and would keep low-precision gradients; one float32 copy fixes
    every present and future tool at once.

    Args:
        model: a Functional or Sequential `keras.Model`, any dtype policy
            (a subclassed model in low precision raises Keras's `ValueError`).

    Returns:
        `model` itself when no layer computes in float16/bfloat16, else a
        float32 copy with the same name, layer names and weights.

    Example:

    ```python
    model = float32_model(keras.saving.load_model("saved_models/RUN/model.keras"))
    ```
    """
    if not any(_low_precision(layer) for layer in _all_layers(model)):
        return model
    rebuilt = []  # (original, copy)

    def clone(layer):
        if isinstance(layer, keras.layers.Lambda):
            # Shared, not rebuilt: rebuilding would deserialize its function
            # again, which safe mode refuses. It casts its input to its own
            # compute dtype; only its own `.output` stays in the old graph.
            return layer
        config = layer.get_config()
        if _low_precision(layer):
            config["dtype"] = "float32"
        copy = type(layer).from_config(config)
        rebuilt.append((layer, copy))
        return copy

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")  # for sub-layers built in __init__
    try:
        copy = keras.models.clone_model(model, clone_function=clone, recursive=True)
    finally:
        keras.config.set_dtype_policy(previous)
    for layer, new in rebuilt:
        new.set_weights(layer.get_weights())
    return copy


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
    from keras_convnets.inference import check_image_size

    check_image_size(path)  # a decompression bomb is refused before decoding
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

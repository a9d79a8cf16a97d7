"""What a trained convnet computes: filters, feature maps, top patches, and the
max-pooling "attentional focus" of the gradient (lecture parts 4 and 8).

Each quantity is a function returning arrays; each `plot_*` function draws it
as a labelled matplotlib figure. Layers are chosen by name.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from keras_convnets.analysis import _common
from keras_convnets.analysis.receptive_field import receptive_field
from keras_convnets.errors import UserInputError


def layer_filters(model, layer_name: str | None = None) -> np.ndarray:
    """The kernels of a convolution layer, `(kh, kw, in_channels, filters)`.

    Args:
        model: a `keras.Model`.
        layer_name: str. A convolution layer; defaults to the first one.

    Returns:
        float32 array `(kh, kw, in_channels, filters)`.

    Example:

    ```python
    kernels = layer_filters(model)  # e.g. (3, 3, 1, 32) for simple_cnn on MNIST
    ```
    """
    layer = (
        _common.first_conv_layer(model)
        if layer_name is None
        else _common.get_layer(model, layer_name)
    )
    kernels = [w for w in layer.weights if len(w.shape) == 4]
    if not kernels:
        raise UserInputError(
            f"Layer {layer.name!r} has no 4-D convolution kernel; choose one of "
            f"{', '.join(_common.conv_layer_names(model)[:10])}."
        )
    kernel = np.asarray(kernels[0].numpy(), dtype="float32")
    if type(layer).__name__ == "DepthwiseConv2D":  # (kh, kw, in, multiplier)
        kernel = kernel.reshape(kernel.shape[0], kernel.shape[1], 1, -1)
    return kernel


def plot_filters(model, layer_name: str | None = None, max_filters: int = 64):
    """A grid of a convolution layer's kernels.

    Three-channel kernels are drawn as RGB images (each scaled to [0, 1]); any
    other kernel is drawn channel by channel on a blue-white-red scale centred
    on 0 (with several input channels: one row per filter, at most 8 rows
    of 8 channels).

    Returns:
        A matplotlib figure.
    """
    layer = (
        _common.first_conv_layer(model)
        if layer_name is None
        else _common.get_layer(model, layer_name)
    )
    kernel = layer_filters(model, layer.name)
    kh, kw, cin, cout = kernel.shape
    n = min(cout, max_filters)
    title = f"{model.name} / {layer.name}: {n} of {cout} filters, {kh}x{kw}x{cin}"
    if cin == 3:
        fig, axes = _common.grid_axes(n, title=title + " (RGB)")
        for k, ax in enumerate(axes):
            w = kernel[..., k]
            w = (w - w.min()) / (np.ptp(w) + 1e-12)
            _common.show_image(ax, w, f"f{k}")
        return fig
    limit = float(np.abs(kernel[..., :n]).max()) or 1.0
    if cin == 1:
        fig, axes = _common.grid_axes(n, title=title)
        for k, ax in enumerate(axes):
            _common.show_image(
                ax, kernel[:, :, 0, k], f"f{k}", cmap="bwr", vmin=-limit, vmax=limit
            )
    else:
        shown = min(cin, 8)
        n = min(n, 8)
        fig, axes = _common.grid_axes(
            n * shown, ncols=shown, cell=1.0, title=title + " (rows: filters)"
        )
        for k in range(n):
            for c in range(shown):
                _common.show_image(
                    axes[k * shown + c],
                    kernel[:, :, c, k],
                    f"f{k} in{c}",
                    cmap="bwr",
                    vmin=-limit,
                    vmax=limit,
                )
    _colorbar(fig, "bwr", -limit, limit, "weight")
    return fig


def _colorbar(fig, cmap, vmin, vmax, label):
    import matplotlib as mpl

    mappable = mpl.cm.ScalarMappable(mpl.colors.Normalize(vmin, vmax), cmap=cmap)
    fig.colorbar(mappable, ax=fig.axes, shrink=0.6, label=label)


def feature_maps(model, layer_name: str, images) -> np.ndarray:
    """The activations of a layer for a batch of images.

    Args:
        model: a `keras.Model`.
        layer_name: str. A layer with a 4-D output.
        images: array `(N, H, W, C)` (or one `(H, W, C)` image) as the model
            takes them.

    Returns:
        float32 array `(N, h, w, channels)`.

    Example:

    ```python
    maps = feature_maps(model, "stage1_conv1_relu", images[:4])
    ```
    """
    model = _common.float32_model(model)
    layer = _common.spatial_layer(model, layer_name)
    sub = _common.submodel(model, layer.output)
    return np.asarray(sub(_common.as_batch(images), training=False))


def plot_feature_maps(
    model, layer_name: str, images, max_channels: int = 16, labels=None
):
    """One row per image: the image, then its first `max_channels` maps.

    Each map is scaled to its own range (the colour bar is per map, so maps
    are compared by pattern, not by magnitude; the title gives the maximum).
    """
    images = _common.as_batch(images)
    maps = feature_maps(model, layer_name, images)
    n_images, channels = len(images), min(maps.shape[-1], max_channels)
    cols = channels + 1
    fig, axes = _common.grid_axes(
        n_images * cols,
        ncols=cols,
        cell=1.2,
        title=f"{model.name} / {layer_name}: feature maps "
        f"({maps.shape[1]}x{maps.shape[2]}, {channels} of {maps.shape[-1]} channels)",
    )
    for i in range(n_images):
        label = f"image {i}" if labels is None else str(labels[i]).replace(": ", "\n")
        _common.show_image(axes[i * cols], images[i], label)
        for c in range(channels):
            m = maps[i, :, :, c]
            _common.show_image(
                axes[i * cols + c + 1],
                m,
                f"ch{c}\nmax {m.max():.2g}",
                cmap="viridis",
                vmin=float(m.min()),
                vmax=float(m.max()) if m.max() > m.min() else float(m.min()) + 1,
            )
    return fig


def _batches(data, batch_size):
    """(images, labels or None) numpy batches from a dataset or an array."""
    if isinstance(data, tf.data.Dataset):
        for batch in data.as_numpy_iterator():
            if isinstance(batch, tuple):
                yield batch[0], batch[1]
            else:
                yield batch, None
        return
    data = _common.as_batch(data)
    for start in range(0, len(data), batch_size):
        yield data[start : start + batch_size], None


def top_patches(
    model,
    layer_name: str,
    unit: int,
    data,
    k: int = 9,
    batch_size: int = 256,
    max_images: int | None = None,
) -> list[dict]:
    """The `k` image patches that most activate one unit of a layer.

    Runs the images through the model, takes the strongest position of channel
    `unit` in each image (one patch per image, so one image cannot fill the
    grid) and crops the unit's receptive field there (Zeiler and Fergus's
    "top 9 patches", lecture part 8). Patches at the border are clipped to the
    image; `padded` holds them at the full field size, with NaN outside.

    Args:
        model: a functional `keras.Model`.
        layer_name: str. A convolution (or later spatial) layer; a dense layer
            also works, its field being the whole image.
        unit: int. Channel (or dense unit) index.
        data: a `tf.data.Dataset` of images or `(images, labels)` batches, or
            an array `(N, H, W, C)`.
        k: int. Number of patches. Defaults to 9.
        batch_size: int. Batch size for arrays. Defaults to 256.
        max_images: int. Stop after this many images. Defaults to all.

    Returns:
        A list of `k` dicts, strongest first: `activation`, `image_index`,
        `label` (or None), `position` `(row, col)` in the layer's map, `box`
        `(top, left, bottom, right)` in the image, `patch` (clipped), `padded`
        and `image`.

    Example:

    ```python
    ds, info = load_dataset("fashion_mnist", "test", batch_size=256)
    best = top_patches(model, "stage2_conv1", unit=5, data=ds, k=9)
    ```

    Reference:
        Zeiler and Fergus, "Visualizing and Understanding Convolutional
        Networks", ECCV 2014.
    """
    if k < 1:
        raise UserInputError(f"k must be >= 1. Received: k={k}")
    model = _common.float32_model(model)
    layer = _common.get_layer(model, layer_name)
    channels = layer.output.shape[-1]
    if not 0 <= unit < channels:
        raise UserInputError(
            f"Layer {layer_name!r} has {channels} units (0..{channels - 1}). "
            f"Received: unit={unit}"
        )
    field = receptive_field(model, layer_name)
    sub = _common.submodel(model, layer.output)
    best = []  # (activation, index, position, image, label)
    seen = 0
    for images, labels in _batches(data, batch_size):
        if max_images is not None and seen >= max_images:
            break
        if max_images is not None:
            images = images[: max_images - seen]
        acts = np.asarray(sub(images, training=False))[..., unit]
        flat = acts.reshape(len(images), -1)
        where = flat.argmax(axis=1)
        values = flat[np.arange(len(images)), where]
        for i in np.argsort(-values)[:k]:
            position = (
                np.unravel_index(where[i], acts.shape[1:3])
                if acts.ndim == 3
                else (0, 0)
            )
            label = None if labels is None else int(labels[i])
            best.append((float(values[i]), seen + int(i), position, images[i], label))
        best = sorted(best, key=lambda item: -item[0])[:k]
        seen += len(images)
    if not best:
        raise UserInputError("top_patches got no images.")
    results = []
    for activation, index, (row, col), image, label in best:
        box = field.box(int(row), int(col))
        full = field.box(int(row), int(col), clip=False)
        top, left, bottom, right = box
        patch = image[top:bottom, left:right]
        padded = np.full(
            (full[2] - full[0], full[3] - full[1], image.shape[-1]), np.nan, "float32"
        )
        padded[top - full[0] : bottom - full[0], left - full[1] : right - full[1]] = (
            patch
        )
        results.append(
            dict(
                activation=activation,
                image_index=index,
                label=label,
                position=(int(row), int(col)),
                box=box,
                patch=patch,
                padded=padded,
                image=image,
            )
        )
    return results


def plot_top_patches(patches, title: str, class_names=None, context: bool = True):
    """Top patches in a grid; with `context`, each beside its image and box."""
    import matplotlib.patches as mpatches

    cols_per = 2 if context else 1
    n = len(patches)
    per_row = 3 if n >= 3 else n
    fig, axes = _common.grid_axes(
        n * cols_per, ncols=per_row * cols_per, cell=1.3, title=title
    )
    for i, p in enumerate(patches):
        label = ""
        if p["label"] is not None:
            label = class_names[p["label"]] if class_names else str(p["label"])
        padded = np.asarray(p["padded"])
        shown = np.where(np.isnan(padded), 0.5, padded)  # gray outside the image
        ax = axes[i * cols_per]
        _common.show_image(ax, shown, f"#{i + 1} act {p['activation']:.3g}")
        if context:
            ax = axes[i * cols_per + 1]
            _common.show_image(ax, p["image"], f"img {p['image_index']} {label}")
            top, left, bottom, right = p["box"]
            ax.add_patch(
                mpatches.Rectangle(
                    (left - 0.5, top - 0.5),
                    right - left,
                    bottom - top,
                    fill=False,
                    edgecolor="red",
                    linewidth=1.2,
                )
            )
    return fig


def max_pool_focus(model, layer_name: str, images, unit: int | None = None):
    """Where the gradient goes through a max-pooling layer: the arg-max inputs.

    The gradient of the pool's output (summed, or channel `unit`) with respect
    to the pool's input is non-zero only at each window's winning position
    (lecture part 4, "BackProp for max-pooling: attentional focus").

    Args:
        model: a `keras.Model`.
        layer_name: str. A max-pooling layer.
        images: array `(N, H, W, C)` as the model takes them.
        unit: int. Only this output channel; defaults to all.

    Returns:
        `(pool_input, gradient)`: two arrays `(N, h, w, c)`, the feature map
        entering the pool and the gradient there (zero off the arg-maxes).

    Example:

    ```python
    x, g = max_pool_focus(model, "stage1_pool", images[:1])
    winners = g != 0
    ```
    """
    model = _common.float32_model(model)
    layer = _common.get_layer(model, layer_name)
    if "MaxPool" not in type(layer).__name__:
        raise UserInputError(
            f"Layer {layer_name!r} is a {type(layer).__name__}, not a max-pooling "
            f"layer."
        )
    feed = _common.submodel(model, layer.input)
    x = tf.convert_to_tensor(feed(_common.as_batch(images), training=False))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        if unit is not None:
            y = y[..., unit]
        total = tf.reduce_sum(y)
    return x.numpy(), tape.gradient(total, x).numpy()


def plot_max_pool_focus(model, layer_name: str, images, channel: int = 0):
    """Per image: the image, the pool's input channel, and the arg-max mask."""
    images = _common.as_batch(images)
    x, g = max_pool_focus(model, layer_name, images)
    fig, axes = _common.grid_axes(
        3 * len(images),
        ncols=3,
        cell=1.8,
        title=f"{model.name} / {layer_name}: gradient through max-pooling, "
        f"channel {channel}",
    )
    for i in range(len(images)):
        _common.show_image(axes[3 * i], images[i], f"image {i}")
        m = x[i, :, :, channel]
        _common.show_image(
            axes[3 * i + 1], m, "pool input", cmap="viridis", vmin=m.min(), vmax=m.max()
        )
        focus = (g[i, :, :, channel] != 0).astype("float32")
        _common.show_image(
            axes[3 * i + 2], focus, f"gradient != 0 ({int(focus.sum())})"
        )
    return fig

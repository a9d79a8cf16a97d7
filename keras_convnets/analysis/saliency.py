"""Which pixels decide a class: gradient saliency maps and Grad-CAM.

Both follow the gradient of a class score back through the network; through
each max-pool it flows only to the window's winner, so it concentrates on the
regions that decided the output (lecture part 4, "attentional focus").
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from keras_convnets.analysis import _common
from keras_convnets.errors import UserInputError


def _class_indices(scores, class_index, num_classes):
    if class_index is None:
        return np.asarray(tf.argmax(scores, axis=-1))
    if not 0 <= int(class_index) < num_classes:
        raise UserInputError(
            f"The model has {num_classes} classes (0..{num_classes - 1}). "
            f"Received: class_index={class_index}"
        )
    return np.full(scores.shape[0], int(class_index))


def saliency_map(model, images, class_index: int | None = None):
    """Gradient of a class score with respect to the input pixels.

    Args:
        model: a `keras.Model` classifier (softmax output or logits).
        images: array `(N, H, W, C)` (or one image) as the model takes them.
        class_index: int. The class; defaults to each image's predicted class.

    Returns:
        `(saliency, classes)`: float32 `(N, H, W)`, the largest absolute
        gradient over channels; int array `(N,)` of the classes used. The
        score is the pre-softmax logit when the model ends in a softmax.

    Example:

    ```python
    maps, classes = saliency_map(model, images[:4])
    ```

    Reference:
        Simonyan, Vedaldi and Zisserman, "Deep Inside Convolutional Networks:
        Visualising Image Classification Models and Saliency Maps", ICLR 2014
        workshop.
    """
    scorer = _common.logits_model(_common.float32_model(model))
    x = tf.convert_to_tensor(_common.as_batch(images))
    with tf.GradientTape() as tape:
        tape.watch(x)
        scores = scorer(x, training=False)
        classes = _class_indices(scores, class_index, scores.shape[-1])
        picked = tf.gather(scores, classes, axis=1, batch_dims=1)
    grads = tape.gradient(picked, x)
    return tf.reduce_max(tf.abs(grads), axis=-1).numpy(), classes


def grad_cam(model, layer_name: str, images, class_index: int | None = None):
    """Grad-CAM: a conv layer's maps weighted by the class score's gradient.

    The channel weights are the spatially averaged gradients of the score with
    respect to the layer's output; the map is the ReLU of the weighted sum,
    upsampled (bilinear) to the input size and scaled to [0, 1] per image.

    Args:
        model: a `keras.Model` classifier.
        layer_name: str. A layer with a 4-D output, usually the last conv.
        images: array `(N, H, W, C)` as the model takes them.
        class_index: int. The class; defaults to each image's prediction.

    Returns:
        `(heatmaps, classes)`: float32 `(N, H, W)` in [0, 1]; int `(N,)`.

    Example:

    ```python
    heat, classes = grad_cam(model, "stage2_conv1_relu", images[:4])
    ```

    Reference:
        Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks
        via Gradient-based Localization", ICCV 2017.
    """
    model = _common.float32_model(model)
    _common.spatial_layer(model, layer_name)
    scorer = _common.logits_model(model, [layer_name])
    x = _common.as_batch(images)
    with tf.GradientTape() as tape:
        maps, scores = scorer(x, training=False)
        classes = _class_indices(scores, class_index, scores.shape[-1])
        picked = tf.gather(scores, classes, axis=1, batch_dims=1)
    grads = tape.gradient(picked, maps)
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * maps, axis=-1, keepdims=True))
    cam = tf.image.resize(cam, x.shape[1:3], method="bilinear")[..., 0]
    peak = tf.reduce_max(cam, axis=(1, 2), keepdims=True)
    cam = tf.math.divide_no_nan(cam, peak)
    return cam.numpy(), classes


def plot_attribution(
    images, maps, classes, title, class_names=None, probs=None, labels=None
):
    """Per image: the image (titled with `labels[i]`), the map, and the map
    over the image."""
    images = _common.as_batch(images)
    fig, axes = _common.grid_axes(3 * len(images), ncols=3, cell=1.9, title=title)
    for i in range(len(images)):
        name = class_names[classes[i]] if class_names else str(classes[i])
        if probs is not None:
            name += f" ({probs[i]:.2f})"
        m = maps[i] / (maps[i].max() + 1e-12)
        label = f"image {i}" if labels is None else str(labels[i])
        _common.show_image(axes[3 * i], images[i], label)
        _common.show_image(axes[3 * i + 1], m, f"class {name}", cmap="hot")
        _common.show_image(axes[3 * i + 2], images[i], "overlay")
        axes[3 * i + 2].imshow(m, cmap="jet", alpha=0.45, vmin=0, vmax=1)
    return fig

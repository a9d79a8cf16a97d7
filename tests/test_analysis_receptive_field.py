"""Receptive fields against hand-computed values and against the gradient."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from keras_convnets import get_model
from keras_convnets.analysis import receptive_field, stack_receptive_field


@pytest.mark.parametrize(
    "stack, input_size, size, jump, start",
    [
        # Two valid 3x3 convolutions see 5x5.
        ([(3, 1, "valid"), (3, 1, "valid")], 28, 5, 1, 0),
        # simple_cnn up to stage2_conv1: 3 -> 5 -> 6 (pool) -> 6 + 2 * 2 = 10;
        # each "same" 3x3 pads 1 unit of the current jump.
        (
            [(3, 1, "same"), (3, 1, "same"), (2, 2, "valid"), (3, 1, "same")],
            28,
            10,
            2,
            -4,
        ),
        # AlexNet conv1 (11, s4), pool (3, s2), conv2 (5, pad 2): the textbook 51.
        ([(11, 4, "valid"), (3, 2, "valid"), (5, 1, 2)], 227, 51, 8, -16),
        # LeNet-5: conv5, pool2, conv5 -> 5, 6, 14.
        ([(5, 1, "valid"), (2, 2, "valid"), (5, 1, "valid")], 32, 14, 2, 0),
        # "same" with stride 2 on an even size pads only after: start stays 0.
        ([(3, 2, "same")], 28, 3, 2, 0),
        # ... and on an odd size pads one on each side.
        ([(3, 2, "same")], 27, 3, 2, -1),
    ],
)
def test_stack_by_hand(stack, input_size, size, jump, start):
    field = stack_receptive_field(stack, input_size)
    assert field.size == (size, size)
    assert field.jump == (jump, jump)
    assert field.start == (start, start)


def _functional(stack, input_size=28):
    inputs = keras.Input((input_size, input_size, 1))
    x = inputs
    for i, (kernel, stride, padding) in enumerate(stack):
        x = layers.Conv2D(2, kernel, strides=stride, padding=padding, name=f"c{i}")(x)
    return keras.Model(inputs, x)


def test_model_matches_stack():
    stack = [(3, 1, "same"), (5, 2, "valid"), (3, 2, "same"), (2, 1, "valid")]
    model = _functional(stack, 31)
    assert receptive_field(model, "c3") == stack_receptive_field(stack, 31)


def test_registered_models_by_hand():
    model = get_model("simple_cnn", input_shape=(28, 28, 1), num_classes=10)
    expected = {
        "stage1_conv1": (3, 1, -1),
        "stage1_conv2_relu": (5, 1, -2),
        "stage1_pool": (6, 2, -2),
        "stage2_conv1": (10, 2, -4),
        "stage2_pool": (16, 4, -6),
    }
    for name, (size, jump, start) in expected.items():
        field = receptive_field(model, name)
        assert (field.size[0], field.jump[0], field.start[0]) == (size, jump, start)
    dense = receptive_field(model, "dense")
    assert not dense.spatial and dense.box(5, 5) == (0, 0, 28, 28)
    lenet = get_model("lenet5", input_shape=(32, 32, 1), num_classes=10)
    names = [layer.name for layer in lenet.layers if hasattr(layer, "kernel_size")]
    assert receptive_field(lenet, names[1]).size == (14, 14)


def test_dilation_padding_layers_and_merges():
    inputs = keras.Input((20, 20, 1))
    x = layers.ZeroPadding2D(1, name="pad")(inputs)
    x = layers.Conv2D(2, 3, name="c")(x)  # == a "same" 3x3
    a = layers.Conv2D(2, 3, dilation_rate=2, padding="same", name="dil")(x)
    b = layers.Conv2D(2, 1, name="one")(x)
    merged = layers.Add(name="add")([a, b])
    crop = layers.Cropping2D(2, name="crop")(merged)
    model = keras.Model(inputs, crop)
    assert receptive_field(model, "c").start == (-1, -1)
    assert receptive_field(model, "dil").size == (7, 7)  # 3 + (5 - 1)
    assert receptive_field(model, "add").size == (7, 7)  # the wider branch
    assert receptive_field(model, "crop").start == (-3 + 2, -3 + 2)
    with pytest.raises(ValueError, match="no layer 'nope'"):
        receptive_field(model, "nope")


def test_box_matches_gradient_support():
    """The gradient of one unit w.r.t. the input fills exactly its box."""
    inputs = keras.Input((24, 24, 1))
    x = layers.Conv2D(3, 3, padding="same", name="c1")(inputs)
    x = layers.AveragePooling2D(2, name="p1")(x)
    x = layers.Conv2D(3, 5, strides=2, padding="same", name="c2")(x)
    x = layers.Conv2D(3, 3, name="c3")(x)
    model = keras.Model(inputs, x)
    field = receptive_field(model, "c3")
    image = tf.constant(np.random.default_rng(0).random((1, 24, 24, 1)), tf.float32)
    for row, col in [(0, 0), (1, 2), (3, 3)]:
        with tf.GradientTape() as tape:
            tape.watch(image)
            unit = model(image)[0, row, col, 0]
        support = np.argwhere(np.abs(tape.gradient(unit, image)[0, :, :, 0]) > 0)
        top, left = support.min(axis=0)
        bottom, right = support.max(axis=0) + 1
        assert (int(top), int(left), int(bottom), int(right)) == field.box(row, col)


def test_keras_applications_textbook_values():
    # VGG16: 40 at conv3_3 and 212 at pool5; ResNet50 (zero-padding, merges): 19
    # after the first block (7x7/2 conv, 3x3/2 pool, then a 3x3 conv at jump 4).
    vgg = keras.applications.VGG16(
        weights=None, include_top=False, input_shape=(32, 32, 3)
    )
    assert receptive_field(vgg, "block3_conv3").size == (40, 40)
    assert receptive_field(vgg, "block5_pool").size == (212, 212)
    resnet = keras.applications.ResNet50(
        weights=None, include_top=False, input_shape=(64, 64, 3)
    )
    field = receptive_field(resnet, "conv2_block1_out")
    assert (field.size, field.jump) == ((19, 19), (4, 4))

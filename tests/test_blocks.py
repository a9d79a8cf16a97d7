"""Tests of the tensor -> tensor blocks: shapes, shortcuts, weight counts, names."""

import keras
import numpy as np
import pytest

from keras_convnets.blocks import (
    basic_block,
    bottleneck_block,
    depthwise_separable_block,
    inception_module,
    inception_resnet_a,
    inception_resnet_b,
    inception_resnet_c,
    inception_resnet_stem,
    naive_inception_module,
    outer_product_block,
    reduction_a,
    reduction_b,
    separable_conv_block,
)
from keras_convnets.errors import UserInputError
from keras_convnets.formulas import conv_params
from keras_convnets.layers import OuterProductConv2D


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


def _model(block, input_shape, **kwargs):
    inputs = keras.Input(input_shape)
    return keras.Model(inputs, block(inputs, **kwargs))


def _bn(channels, scale=True):
    return (4 if scale else 3) * channels  # gamma, beta, moving mean/var


def _names(model):
    return {layer.name for layer in model.layers[1:]}


# Residual blocks


@pytest.mark.parametrize("preact", [False, True])
def test_basic_block_identity_and_projection(preact):
    same = _model(basic_block, (8, 8, 16), filters=16, preact=preact, name="b")
    assert same.output.shape == (None, 8, 8, 16)
    assert "b_0_conv" not in _names(same)
    assert all(name.startswith("b_") for name in _names(same))
    down = _model(
        basic_block, (8, 8, 16), filters=32, stride=2, preact=preact, name="d"
    )
    assert down.output.shape == (None, 4, 4, 32)
    assert "d_0_conv" in _names(down)
    convs = conv_params(3, 16, 32, False) + conv_params(3, 32, 32, False)
    projection = conv_params(1, 16, 32, False)
    bns = _bn(16) + _bn(32) if preact else 3 * _bn(32)
    assert down.count_params() == convs + projection + bns


@pytest.mark.parametrize("preact", [False, True])
def test_bottleneck_block_shapes_and_weights(preact):
    model = _model(
        bottleneck_block, (8, 8, 64), filters=64, preact=preact, name="conv2_block1"
    )
    assert model.output.shape == (None, 8, 8, 256)
    assert "conv2_block1_0_conv" in _names(model)
    if preact:
        convs = (
            conv_params(1, 64, 64, False)
            + conv_params(3, 64, 64, False)
            + conv_params(1, 64, 256)
            + conv_params(1, 64, 256)
        )
        bns = _bn(64) * 3
    else:
        convs = (
            conv_params(1, 64, 64)
            + conv_params(3, 64, 64)
            + conv_params(1, 64, 256)
            + conv_params(1, 64, 256)
        )
        bns = 2 * _bn(64) + 2 * _bn(256)
    assert model.count_params() == convs + bns
    identity = _model(
        bottleneck_block, (4, 4, 256), filters=64, preact=preact, name="i"
    )
    assert "i_0_conv" not in _names(identity)
    strided = _model(bottleneck_block, (8, 8, 256), filters=128, stride=2, name="s")
    assert strided.output.shape == (None, 4, 4, 512)


def test_residual_block_is_identity_when_branch_is_zero():
    model = _model(basic_block, (6, 6, 8), filters=8, preact=True, name="r")
    model.get_layer("r_2_conv").set_weights(
        [np.zeros_like(w) for w in model.get_layer("r_2_conv").get_weights()]
    )
    x = np.random.default_rng(1).normal(size=(2, 6, 6, 8)).astype("float32")
    np.testing.assert_allclose(np.asarray(model(x)), x, atol=1e-6)


def test_residual_bad_arguments():
    with pytest.raises(UserInputError, match="stride=0"):
        _model(basic_block, (8, 8, 4), filters=4, stride=0)
    with pytest.raises(UserInputError, match="filters=0"):
        _model(bottleneck_block, (8, 8, 4), filters=0)


# Inception modules


def test_naive_inception_module():
    model = _model(
        naive_inception_module,
        (16, 16, 10),
        filters_1x1=4,
        filters_3x3=6,
        filters_5x5=2,
        name="n",
    )
    assert model.output.shape == (None, 16, 16, 4 + 6 + 2 + 10)
    expected = conv_params(1, 10, 4) + conv_params(3, 10, 6) + conv_params(5, 10, 2)
    assert model.count_params() == expected


def test_googlenet_inception_3a_weights_and_reduction_saving():
    model = _model(
        inception_module,
        (28, 28, 192),
        filters_1x1=64,
        filters_3x3_reduce=96,
        filters_3x3=128,
        filters_5x5_reduce=16,
        filters_5x5=32,
        filters_pool_proj=32,
        name="inception_3a",
    )
    assert model.output.shape == (None, 28, 28, 256)
    expected = (
        conv_params(1, 192, 64)
        + conv_params(1, 192, 96)
        + conv_params(3, 96, 128)
        + conv_params(1, 192, 16)
        + conv_params(5, 16, 32)
        + conv_params(1, 192, 32)
    )
    assert model.count_params() == expected == 163_696
    # The lecture's point: 1x1 reductions make the module far cheaper than the
    # naive module with the same output widths.
    naive = _model(
        naive_inception_module,
        (28, 28, 192),
        filters_1x1=64,
        filters_3x3=128,
        filters_5x5=32,
    )
    assert naive.count_params() > 2 * model.count_params()
    assert all(name.startswith("inception_3a_") for name in _names(model))


def test_inception_bad_arguments():
    with pytest.raises(UserInputError, match="filters_5x5=0"):
        _model(
            naive_inception_module,
            (8, 8, 3),
            filters_1x1=1,
            filters_3x3=1,
            filters_5x5=0,
        )


# Inception-ResNet-v2 parts


def test_inception_resnet_shapes_at_full_width():
    inputs = keras.Input((299, 299, 3))
    x = inception_resnet_stem(inputs)
    assert x.shape == (None, 35, 35, 320)
    x = inception_resnet_a(x, name="a")
    assert x.shape == (None, 35, 35, 320)
    x = reduction_a(x)
    assert x.shape == (None, 17, 17, 1088)
    x = inception_resnet_b(x, name="b")
    assert x.shape == (None, 17, 17, 1088)
    x = reduction_b(x)
    assert x.shape == (None, 8, 8, 2080)
    x = inception_resnet_c(x, name="c")
    assert x.shape == (None, 8, 8, 2080)


@pytest.mark.parametrize(
    "block, scale",
    [(inception_resnet_a, 0.17), (inception_resnet_b, 0.1), (inception_resnet_c, 0.2)],
)
def test_inception_resnet_residual_scaling(block, scale):
    inputs = keras.Input((5, 5, 12))
    model = keras.Model(
        inputs, block(inputs, scale=scale, activation=None, width=0.125, name="blk")
    )
    x = np.random.default_rng(2).normal(size=(2, 5, 5, 12)).astype("float32")
    branch = keras.Model(inputs, model.get_layer("blk_conv").output)
    np.testing.assert_allclose(
        np.asarray(model(x)), x + scale * np.asarray(branch(x)), rtol=1e-5, atol=1e-5
    )
    with pytest.raises(UserInputError, match="scale=0"):
        block(inputs, scale=0)


# Separable blocks


def test_depthwise_separable_block_weights():
    model = _model(
        depthwise_separable_block, (8, 8, 32), filters=64, stride=2, name="dw"
    )
    assert model.output.shape == (None, 4, 4, 64)
    assert model.count_params() == 9 * 32 + _bn(32) + 32 * 64 + _bn(64)
    assert model.count_params() - _bn(32) - _bn(64) < conv_params(3, 32, 64) / 7


def test_separable_conv_block_and_outer_product_block():
    model = _model(separable_conv_block, (8, 8, 16), filters=24, name="sep")
    assert model.output.shape == (None, 8, 8, 24)
    assert model.count_params() == 9 * 16 + 16 * 24 + _bn(24)
    model = _model(outer_product_block, (8, 8, 16), filters=24, stride=2, name="op")
    assert model.output.shape == (None, 4, 4, 24)
    assert isinstance(model.get_layer("op_opconv"), OuterProductConv2D)
    assert model.count_params() == 24 * (9 + 16) + _bn(24)
    with pytest.raises(UserInputError, match="filters=0"):
        _model(outer_product_block, (8, 8, 16), filters=0)

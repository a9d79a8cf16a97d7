"""Zero-cost proxies (search/zero_cost.py): NASWOT's activation kernel and
SynFlow's saliency, checked against their definitions on small networks."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from keras_convnets.blocks.nas_cell import Genotype
from keras_convnets.errors import UserInputError
from keras_convnets.models.nas_cell_net import build_from_genotype
from keras_convnets.search.zero_cost import (
    activation_kernel,
    naswot_score,
    relu_layers,
    synflow_score,
)


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)
    yield
    keras.backend.clear_session()


def _identity_relu_net():
    # Input 2x1x1 -> Dense(2, relu) with the identity kernel: the codes are
    # the signs of the two input values.
    inputs = keras.Input((2, 1, 1))
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(2, activation="relu", use_bias=False, name="d")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="head")(x)
    model = keras.Model(inputs, outputs)
    model.get_layer("d").set_weights([np.eye(2, dtype="float32")])
    return model


def test_naswot_kernel_counts_agreeing_relus_by_hand():
    model = _identity_relu_net()
    images = np.array([[1, 1], [1, -1], [-1, -1]], "float32").reshape(3, 2, 1, 1)
    # Codes: (1,1), (1,0), (0,0). Agreements: K = [[2,1,0],[1,2,1],[0,1,2]].
    expected = np.array([[2, 1, 0], [1, 2, 1], [0, 1, 2]], float)
    np.testing.assert_array_equal(activation_kernel(model, images), expected)
    assert naswot_score(model, images) == pytest.approx(math.log(4.0))  # det = 4


def test_naswot_is_minus_infinity_when_two_images_share_every_code():
    model = _identity_relu_net()
    images = np.array([[1, 2], [3, 4], [-1, 1]], "float32").reshape(3, 2, 1, 1)
    assert naswot_score(model, images) == -math.inf  # images 0, 1: codes (1,1)


def test_naswot_scores_a_cell_network_and_refuses_bad_input():
    g = Genotype.random(blocks=2, seed=1)
    model = build_from_genotype(g, (12, 12, 1), 3, cells=1, filters=4, stem_stride=2)
    assert relu_layers(model)  # the cells' ReLU activations
    images = np.random.default_rng(0).random((8, 12, 12, 1), dtype=np.float32)
    assert math.isfinite(naswot_score(model, images))
    with pytest.raises(UserInputError, match="at least 2 images"):
        naswot_score(model, images[:1])
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(UserInputError, match="has none"):
        naswot_score(plain, np.zeros((2, 4)))


def test_synflow_of_a_linear_net_is_depth_times_the_flow():
    # For a bias-free linear net, R = 1^T |W2| |W1| 1 is homogeneous of
    # degree 1 in each layer's weights, so sum |theta dR/dtheta| = layers * R.
    inputs = keras.Input((3, 1, 1))
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(4, use_bias=False, name="d1")(x)
    outputs = keras.layers.Dense(2, use_bias=False, activation="softmax", name="d2")(x)
    model = keras.Model(inputs, outputs)
    w1, w2 = (model.get_layer(n).get_weights()[0] for n in ("d1", "d2"))
    flow = np.ones(3) @ np.abs(w1) @ np.abs(w2) @ np.ones(2)
    assert synflow_score(model) == pytest.approx(math.log(2 * flow), rel=1e-5)
    # The weights are restored (signs included).
    np.testing.assert_array_equal(model.get_layer("d1").get_weights()[0], w1)
    np.testing.assert_array_equal(model.get_layer("d2").get_weights()[0], w2)


def test_synflow_grows_with_width_on_cell_networks():
    g = Genotype.random(blocks=2, seed=2)
    narrow = build_from_genotype(g, (12, 12, 1), 3, cells=1, filters=4)
    wide = build_from_genotype(g, (12, 12, 1), 3, cells=1, filters=8)
    assert math.isfinite(synflow_score(narrow))
    assert synflow_score(wide) > synflow_score(narrow)

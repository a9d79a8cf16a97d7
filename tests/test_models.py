"""Tests of the architecture zoo: published parameter counts, every model
trains and round-trips, input checks, and the FLOP counter."""

import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_convnets.errors import UserInputError
from keras_convnets.layers import L2Pooling2D, LocallyConnected2D, OuterProductConv2D
from keras_convnets.models import flops as flops_module
from keras_convnets.models import get_model, get_model_entry, list_models
from keras_convnets.models._common import InputTooSmallError
from keras_convnets.models.flops import count_flops, describe_models


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)
    yield
    keras.backend.clear_session()


# Function parity with keras.applications (weights copied from the twin,
# outputs compared) is tested in tests/test_zoo_twins.py.


@pytest.mark.parametrize(
    "name, shape, classes, expected",
    [
        ("lenet5", (32, 32, 1), 10, 61_706),  # LeCun et al. 1998
        ("alexnet", (227, 227, 3), 1000, 62_378_344),  # one-stream AlexNet
        ("all_conv", (32, 32, 3), 10, 1_369_738),  # "1.3 M", Springenberg 2015
        ("illing", (40, 40, 1), 10, 320 + 18_496 + 73_856 + 5_130),
    ],
)
def test_published_parameter_counts(name, shape, classes, expected):
    assert get_model(name, shape, classes).count_params() == expected


def test_resnet9_has_myrtles_layout():
    # Myrtle's ResNet-9 (no conv biases): 3x3 convs 3-64-128-(128,128)-256-512-
    # (512,512) = 6,563,520 weights, 8 BatchNorms of 2,240 channels = 4,480
    # trainable, 512x10 dense + 10 = 5,130: 6,573,130 trainable weights.
    model = get_model("resnet9", (32, 32, 3), 10)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == 6_573_130
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 8 and not any(c.use_bias for c in convs)
    # The pools come before their BatchNorms: three BNs at reduced resolution.
    shapes = {layer.name: layer.output.shape[1] for layer in model.layers}
    assert (shapes["layer1_bn"], shapes["layer2_bn"], shapes["layer3_bn"]) == (16, 8, 4)
    half = get_model("resnet9", (28, 28, 1), 10, width=32)
    assert half.output.shape == (None, 10) and half.count_params() == 1_647_786
    with pytest.raises(UserInputError, match="width must be >= 1"):
        get_model("resnet9", (28, 28, 1), 10, width=0)


@pytest.mark.parametrize(
    "name, expected", [("resnet18", 11_689_512), ("resnet34", 21_797_672)]
)
def test_basic_resnets_match_torchvision_trainable_counts(name, expected):
    # torchvision counts trainable weights only (BN statistics are buffers).
    model = get_model(name, (224, 224, 3), 1000)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == expected


# Input sizes


def _smallest_input(name):
    """The smallest square input a model builds at (its own check, else probing)."""
    entry = get_model_entry(name)
    channels = (entry.default_input_shape or (28, 28, 1))[2]
    for size in (1, 2, 4, 8, 16, 32):
        try:
            get_model(name, (size, size, channels), 3)
        except InputTooSmallError as error:
            return (error.min_size, error.min_size, channels)
        except ValueError:
            continue
        return (size, size, channels)
    raise AssertionError(f"{name} does not build at 32x32")


MIN_SIZES = {
    "alexnet": 67,
    "all_conv": 9,
    "all_conv_tiny": 9,
    "deepface": 73,
    "deepface_small": 27,
    "illing": 29,
    "inception_resnet_tiny": 75,
    "inception_resnet_v2": 75,
    "lenet5": 16,
}


@pytest.mark.parametrize("name, size", sorted(MIN_SIZES.items()))
def test_too_small_inputs_raise_a_clear_error(name, size):
    assert _smallest_input(name)[0] == size
    get_model(name, (size, size + 3, 2), 3)  # any channels, non-square
    shape = (size - 1, size + 3, 2)
    with pytest.raises(
        UserInputError, match=re.escape(f"Received: input_shape={shape}")
    ):
        get_model(name, shape, 3)


def test_illing_representation_is_2x2x128_on_40x40():
    model = get_model("illing", (40, 40, 1), 10)
    assert model.get_layer("stage1_conv").output.shape == (None, 19, 19, 32)
    assert model.get_layer("stage1_pool").output.shape == (None, 18, 18, 32)
    assert model.get_layer("stage2_pool").output.shape == (None, 7, 7, 64)
    assert model.get_layer("stage3_pool").output.shape == (None, 2, 2, 128)
    assert model.get_layer("representation").output.shape == (None, 512)
    padded = get_model("illing_28", (28, 28, 1), 10)
    assert padded.get_layer("stage3_pool").output.shape == (None, 2, 2, 128)
    with pytest.raises(UserInputError, match="pad_to=40"):
        get_model("illing_28", (48, 48, 1), 10)


@pytest.mark.parametrize(
    "name",
    [
        "resnet_small",
        "vgg_small",
        "mobilenet_small",
        "googlenet_small",
        "all_conv",
        "lenet5",
        "deepface_small",
    ],
)
def test_small_variants_build_at_28_and_32(name):
    for shape in ((28, 28, 1), (32, 32, 3), (37, 45, 2)):
        model = get_model(name, shape, 10)
        assert model.output.shape == (None, 10)


def test_deepface_uses_locally_connected_layers():
    model = get_model("deepface_small", (32, 32, 3), 10)
    assert sum(isinstance(layer, LocallyConnected2D) for layer in model.layers) == 3


def test_builder_argument_errors_repeat_what_they_got():
    with pytest.raises(UserInputError, match="block_type='dense'"):
        get_model("resnet_tiny", (32, 32, 3), 10, block_type="dense")
    with pytest.raises(UserInputError, match="stackwise_num_convs"):
        get_model("vgg_tiny", (32, 32, 3), 10, stackwise_num_convs=(1,))
    with pytest.raises(UserInputError, match=r"convs_per_stage=\(1, 2, 1\)"):
        get_model("simple_cnn", (28, 28, 1), 10, convs_per_stage=(1, 2, 1))


def test_simple_cnn_convolutions_per_stage():
    model = get_model(
        "simple_cnn", (28, 28, 1), 10, batch_norm=False, convs_per_stage=[1, 2]
    )
    convs = [x.name for x in model.layers if isinstance(x, keras.layers.Conv2D)]
    assert convs == ["stage1_conv1", "stage2_conv1", "stage2_conv2"]
    # 3x3 kernels with biases: 1->32, 32->64, 64->64; dense 7*7*64->128->10.
    convs_weights = (9 * 1 + 1) * 32 + (9 * 32 + 1) * 64 + (9 * 64 + 1) * 64
    assert model.count_params() == convs_weights + (3136 + 1) * 128 + (128 + 1) * 10


# Every registered model: forward, one train step, gradients, .keras round trip.

# Heavy at their smallest input (many weights or big valid-padded inputs):
# run with `-m slow`.
HEAVY = {
    "alexnet",
    "deepface",
    "googlenet",
    "inception_resnet_v2",
    "mobilenet",
    *(f"resnet{d}{v}" for d in (18, 34, 50, 101, 152) for v in ("", "_v2")),
    *(f"vgg{d}" for d in (11, 13, 16, 19)),
    # Wider variants of builders whose tiny variant trains in `make test`.
    "googlenet_small",
    "mobilenet_small",
    "nas_cell_net",
    "resnet_small",
    "resnet_small_v2",
}


def _test_input(name):
    """Smallest valid input, but large enough that batch norm does not see
    1x1 maps: with a batch of 2 it would normalize 2 values per channel,
    whose gradients explode (up to 1e9 for ResNet-18 at 1x1)."""
    height, width, channels = _smallest_input(name)
    floor = {"inception_resnet_v2": 107}.get(name, 64 if name in HEAVY else 32)
    size = max(height, floor)
    return (size, size, channels)


def _exempt_biases(model):
    """Conv/dense biases feeding straight into batch norm: their gradient is
    exactly zero in training mode (BN subtracts the batch mean), as in
    keras.applications' ResNet-50. Their kernels must still get gradients."""
    exempt = set()
    for layer in model.layers:
        bias = getattr(layer, "bias", None)
        consumers = [node.operation for node in layer._outbound_nodes]
        if (
            bias is not None
            and consumers
            and all(isinstance(c, keras.layers.BatchNormalization) for c in consumers)
        ):
            exempt.add(id(bias))
    return exempt


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n
        for n in list_models()
    ],
)
def test_every_model_trains_and_round_trips(name, tmp_path):
    shape = _test_input(name)
    model = get_model(name, shape, 3)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(2, *shape)).astype("float32")
    y = np.array([0, 2])
    probabilities = np.asarray(model(x, training=False))
    assert probabilities.shape == (2, 3)
    assert np.all(np.isfinite(probabilities))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)

    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    with tf.GradientTape() as tape:
        loss = loss_fn(y, model(x, training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    assert np.isfinite(float(loss))
    exempt = _exempt_biases(model)
    no_gradient = [
        v.path
        for v, g in zip(model.trainable_variables, grads)
        if id(v) not in exempt and (g is None or not np.any(np.asarray(g) != 0))
    ]
    assert not no_gradient, f"weights without gradient: {no_gradient}"
    keras.optimizers.SGD(0.01).apply(grads, model.trainable_variables)
    after = np.asarray(model(x, training=False))
    assert np.all(np.isfinite(after))

    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)  # no custom_objects
    np.testing.assert_allclose(np.asarray(loaded(x, training=False)), after, atol=1e-6)


# FLOPs


def test_count_flops_lenet5_by_hand():
    model = get_model("lenet5", (32, 32, 1), 10)
    conv1 = 2 * 5 * 5 * 1 * (28 * 28 * 6) + 28 * 28 * 6
    pool1 = 4 * 14 * 14 * 6
    conv2 = 2 * 5 * 5 * 6 * (10 * 10 * 16) + 10 * 10 * 16
    pool2 = 4 * 5 * 5 * 16
    dense = (2 * 400 * 120 + 120) + (2 * 120 * 84 + 84) + (2 * 84 * 10 + 10)
    assert count_flops(model) == conv1 + pool1 + conv2 + pool2 + dense == 845_862


def test_count_flops_other_layers_by_hand():
    inputs = keras.Input((8, 8, 4))
    a = keras.layers.Conv2D(6, 3, padding="same", use_bias=False)(inputs)
    a = keras.layers.BatchNormalization()(a)
    b = keras.layers.DepthwiseConv2D(3, padding="same")(inputs)
    b = keras.layers.Conv2D(6, 1)(b)
    x = keras.layers.Add()([a, b])
    x = keras.layers.ReLU()(x)
    x = L2Pooling2D(2)(x)
    x = OuterProductConv2D(5, 3)(x)  # 4x4x6 -> 2x2x5
    x = LocallyConnected2D(2, 2, use_bias=False)(x)  # -> 1x1x2
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(3)(x)
    expected = (
        2 * 9 * 4 * 8 * 8 * 6  # conv, no bias
        + 2 * 8 * 8 * 6  # batch norm
        + 2 * 9 * 8 * 8 * 4
        + 8 * 8 * 4  # depthwise + bias
        + 2 * 4 * 8 * 8 * 6
        + 8 * 8 * 6  # pointwise + bias
        + 8 * 8 * 6  # add
        + 4 * 4 * 4 * 6  # L2 pool: window 4 per output
        + 2 * (4 * 4 * 6) * 5
        + 2 * 9 * (2 * 2 * 5)
        + 2 * 2 * 5  # outer product
        + 2 * 2 * 2 * 5 * 2  # locally connected
        + 2  # global pool
        + 2 * 2 * 3
        + 3  # dense
    )
    assert count_flops(keras.Model(inputs, outputs)) == expected


def test_count_flops_reference_points():
    # VGG-16: 15.5 G multiply-adds at 224x224 (Simonyan & Zisserman).
    vgg = count_flops(get_model("vgg16", (224, 224, 3), 1000))
    assert 30.9e9 < vgg < 31.1e9
    # The outer-product factorization saves work as well as weights.
    inputs = keras.Input((16, 16, 64))
    full = keras.Model(inputs, keras.layers.Conv2D(64, 5)(inputs))
    factored = keras.Model(inputs, OuterProductConv2D(64, 5)(inputs))
    assert count_flops(factored) < count_flops(full) / 10


def test_count_flops_needs_fixed_input_size():
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(2, 3)(inputs))
    with pytest.raises(UserInputError, match="fixed input size"):
        count_flops(model)


def test_describe_models(monkeypatch):
    monkeypatch.setattr(
        flops_module, "list_models", lambda: ["lenet5", "resnet_tiny", "illing"]
    )
    rows = describe_models()
    assert [row["name"] for row in rows] == ["lenet5", "resnet_tiny", "illing"]
    for row in rows:
        assert {"name", "params", "flops", "input_shape", "description"} <= set(row)
    assert rows[0]["params"] == 61_706 and rows[0]["flops"] == 845_862
    assert rows[0]["input_shape"] == (32, 32, 1)
    rows = describe_models(input_shape=(20, 20, 1))
    assert rows[1]["input_shape"] == (20, 20, 1) and rows[1]["params"] > 0
    assert rows[2]["params"] is None and "Received: input_shape" in rows[2]["error"]


def test_describe_models_of_named_models_only():
    rows = describe_models(names=["simple_cnn_tiny", "lenet5"])
    assert [row["name"] for row in rows] == ["lenet5", "simple_cnn_tiny"]  # sorted
    with pytest.raises(UserInputError, match="Unknown model 'lenet'"):
        describe_models(names=["lenet"])

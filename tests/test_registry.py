"""The model registry and the two baseline models."""

import numpy as np
import pytest

import keras_convnets
from keras_convnets import get_model, list_models, register_model
from keras_convnets.errors import UserInputError


def test_baselines_are_registered():
    names = list_models()
    assert {"mlp", "simple_cnn", "simple_cnn_tiny"} <= set(names)
    assert names == sorted(names)


@pytest.mark.parametrize("name", ["mlp", "simple_cnn", "simple_cnn_tiny"])
def test_baselines_build_and_run(name):
    model = get_model(name, (28, 28, 1), 10)
    out = model(np.random.rand(2, 28, 28, 1).astype("float32"))
    assert out.shape == (2, 10)
    np.testing.assert_allclose(np.sum(out, axis=-1), 1.0, rtol=1e-5)


def test_variant_overrides_and_kwargs():
    small = get_model(
        "simple_cnn", (32, 32, 3), 5, stackwise_num_filters=(4, 8), dense_units=0
    )
    assert small.get_layer("stage2_conv1").filters == 8
    assert small.output_shape == (None, 5)
    tiny = get_model("simple_cnn_tiny", (28, 28, 1), 10)
    assert tiny.get_layer("stage1_conv1").filters == 8


def test_unknown_model_suggests_close_names():
    with pytest.raises(UserInputError, match=r"Unknown model 'simple'.*simple_cnn"):
        get_model("simple", (28, 28, 1), 10)


def test_bad_shapes():
    with pytest.raises(UserInputError, match=r"Received: input_shape=\(28, 28\)"):
        get_model("mlp", (28, 28), 10)
    with pytest.raises(UserInputError, match="num_classes must be at least 2"):
        get_model("mlp", (28, 28, 1), 1)


def test_duplicate_registration_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        register_model(lambda s, n: None, name="mlp")


def test_public_api():
    for name in ("get_model", "list_models", "register_model", "load_dataset"):
        assert name in keras_convnets.__all__ and hasattr(keras_convnets, name)


def test_simple_cnn_too_small_input_is_a_clear_error():
    get_model("simple_cnn", (4, 4, 1), 10)  # two 2x2 pools: 4x4 is the minimum
    with pytest.raises(
        UserInputError, match=r"at least 4x4 pixels.*Received: input_shape=\(3, 3, 1\)"
    ):
        get_model("simple_cnn", (3, 3, 1), 10)


def test_model_kwargs_are_checked_against_the_builder():
    from keras_convnets.models.registry import check_model_kwargs

    with pytest.raises(
        UserInputError, match=r"no argument 'dropot' \(did you mean 'dropout'\?\)"
    ):
        check_model_kwargs("simple_cnn", {"dropot": 0.5})
    with pytest.raises(UserInputError, match="no argument 'dropot'"):
        get_model("simple_cnn", (28, 28, 1), 10, dropot=0.5)
    with pytest.raises(
        UserInputError,
        match=r"Cannot build 'simple_cnn' with model arguments \{'dropout': 'x'\}",
    ):
        get_model("simple_cnn", (28, 28, 1), 10, dropout="x")
    check_model_kwargs("simple_cnn", {"dropout": 0.5, "batch_norm": False})

"""Flip test-time augmentation saved inside the model, and weight EMA."""

import keras
import numpy as np
import pytest

from conftest import quick_config
from keras_convnets.errors import UserInputError
from keras_convnets.inference import evaluate, load_model
from keras_convnets.layers import Flip
from keras_convnets.models import get_model
from keras_convnets.models.tta import TTA_POLICIES, unwrap_tta, with_tta
from keras_convnets.training import config as config_module
from keras_convnets.training.config import resolve_config
from keras_convnets.training.train import build_optimizer, train_and_evaluate


def test_flip_layer_mirrors_and_round_trips(rng):
    x = rng.random((2, 4, 5, 3)).astype("float32")
    np.testing.assert_array_equal(Flip()(x), x[:, :, ::-1, :])
    np.testing.assert_array_equal(Flip("vertical")(x), x[:, ::-1, :, :])
    np.testing.assert_array_equal(
        Flip("horizontal_and_vertical")(x), x[:, ::-1, ::-1, :]
    )
    clone = Flip.from_config(Flip("vertical").get_config())
    assert clone.mode == "vertical"
    with pytest.raises(UserInputError, match="mode='diagonal'"):
        Flip("diagonal")


def test_config_and_module_agree_on_policies():
    assert set(config_module.TTA_POLICIES) == set(TTA_POLICIES)


def test_flip_tta_averages_the_mirror_prediction(rng, tmp_path):
    model = get_model("simple_cnn_tiny", (28, 28, 1), 10)
    tta = with_tta(model, "flip")
    assert with_tta(model, "none") is model
    assert tta.count_params() == model.count_params()  # same weights, shared
    x = rng.random((3, 28, 28, 1)).astype("float32")
    expected = (
        model.predict(x, verbose=0) + model.predict(x[:, :, ::-1], verbose=0)
    ) / 2
    np.testing.assert_allclose(tta.predict(x, verbose=0), expected, atol=1e-6)
    # The asymmetric input makes the two branches differ: the check has teeth.
    assert not np.allclose(model.predict(x, verbose=0), expected, atol=1e-4)

    path = str(tmp_path / "tta.keras")
    tta.save(path)
    loaded, _ = load_model(path)  # the safe loader accepts our Flip layer
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, atol=1e-6)
    assert unwrap_tta(loaded).name == model.name
    assert unwrap_tta(model) is model
    with pytest.raises(UserInputError, match="tta='rotate'"):
        with_tta(model, "rotate")


def _fit_three_steps(ema):
    config = resolve_config({}, {"recipe": "quick", "ema": ema, "weight_decay": 0.0})
    optimizer = build_optimizer(config, steps_per_epoch=3)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(optimizer=optimizer, loss="mse")
    x = np.random.default_rng(0).random((6, 4)).astype("float32")
    y = np.ones((6, 2), "float32")
    model.fit(x, y, batch_size=2, epochs=1, verbose=0, shuffle=False)  # 3 steps
    return model, optimizer


def test_ema_weights_replace_the_model_weights_at_epoch_end():
    model, optimizer = _fit_three_steps(ema=0.5)
    assert optimizer.use_ema and optimizer.ema_overwrite_frequency == 3
    averages = optimizer._model_variables_moving_average
    for variable, average in zip(model.trainable_variables, averages):
        np.testing.assert_allclose(variable.numpy(), average.numpy(), atol=1e-7)
    # The average is not the last iterate: training without EMA ends elsewhere.
    plain, plain_optimizer = _fit_three_steps(ema=0.0)
    assert not plain_optimizer.use_ema
    assert not np.allclose(model.get_weights()[0], plain.get_weights()[0])


def test_ema_out_of_range_is_refused():
    with pytest.raises(UserInputError, match="ema must be in"):
        resolve_config({}, {"ema": 1.0})


def test_training_with_tta_and_ema_saves_what_it_reports(tmp_path, small_fashion_dir):
    config = quick_config(tmp_path, small_fashion_dir, tta="flip", ema=0.9)
    record = train_and_evaluate(config, verbose=0)
    assert record["test_accuracy_without_tta"] is not None
    model, _ = load_model(str(tmp_path / "run"))
    assert model.name.endswith("_tta")
    # Evaluating the saved file reproduces the reported number exactly.
    result = evaluate(str(tmp_path / "run"), data_dir=small_fashion_dir)
    assert result["accuracy"] == pytest.approx(record["test_accuracy"], abs=1e-9)
    assert record["test_accuracy"] > 0.3  # well above chance (0.1)

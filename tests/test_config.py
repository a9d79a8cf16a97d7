"""TrainConfig: recipes < config file < flags, and clear errors for bad values."""

import json

import pytest

from keras_convnets.errors import UserInputError
from keras_convnets.training.config import (
    CLI_DEFAULT_RECIPE,
    RECIPES,
    TrainConfig,
    config_from_dict,
    get_recipe,
    read_config_file,
    resolve_config,
)


def test_defaults_are_the_default_recipe():
    config = resolve_config()
    assert config == TrainConfig()
    assert config.model == "simple_cnn" and config.dataset == "fashion_mnist"
    assert config.workdir == "saved_models" and config.run_name is None


def test_the_cli_runs_the_fast_recipe_unless_told_otherwise(tmp_path):
    assert CLI_DEFAULT_RECIPE == "fast"
    config = resolve_config({}, {}, default_recipe=CLI_DEFAULT_RECIPE)
    assert config.recipe == "fast" and config.precision == "bf16"
    assert config.tta == "flip" and config.model_kwargs == {"batch_norm": False}
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"recipe": "quick"}))
    from_file = resolve_config(read_config_file(str(path)), {}, CLI_DEFAULT_RECIPE)
    assert from_file.recipe == "quick"  # a file naming a recipe wins


def test_the_long_recipe_is_the_fast_recipe_on_resnet9_for_longer():
    fast, long = get_recipe("fast"), get_recipe("long")
    assert (long.model, long.model_kwargs) == ("resnet9", {"width": 32})
    assert long.epochs > fast.epochs and long.augment == "erasing"
    assert (long.precision, long.tta, long.optimizer) == ("bf16", "flip", "adamw")
    assert resolve_config({}, {"recipe": "long", "epochs": 2}).epochs == 2


def test_precedence_recipe_then_file_then_flags(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("recipe: quick\nepochs: 5\nbatch_size: 64\nlearning_rate: 0.01\n")
    file_values = read_config_file(str(path))
    config = resolve_config(file_values, {"epochs": 7})
    assert config.recipe == "quick"
    assert config.model == RECIPES["quick"]().model  # from the recipe
    assert config.batch_size == 64 and config.learning_rate == 0.01  # from the file
    assert config.epochs == 7  # the flag wins


def test_flag_recipe_overrides_file_recipe(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"recipe": "quick", "batch_size": 32}))
    config = resolve_config(read_config_file(str(path)), {"recipe": "default"})
    assert config.recipe == "default" and config.model == "simple_cnn"
    assert config.batch_size == 32


def test_file_values_are_coerced_and_checked(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "image-size: 32,32\njit_compile: auto\nmodel_kwargs: {dropout: 0.5}\n"
    )
    values = read_config_file(str(path))
    assert values == {
        "image_size": (32, 32),
        "jit_compile": None,
        "model_kwargs": {"dropout": 0.5},
    }


@pytest.mark.parametrize(
    "text, match",
    [
        ("epoch: 3\n", r"unknown config key 'epoch' \(did you mean 'epochs'\?\)"),
        ("epochs: three\n", "epochs must be an int"),
        ("learning_rate: [1]\n", "learning_rate must be a float"),
        ("- a\n- b\n", "must hold a mapping"),
        ("epochs: [\n", "cannot parse config"),
    ],
)
def test_bad_config_files(tmp_path, text, match):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(UserInputError, match=match) as e:
        read_config_file(str(path))
    assert str(path) in str(e.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(UserInputError, match="Config file not found"):
        read_config_file(str(tmp_path / "nope.yaml"))


@pytest.mark.parametrize(
    "flags, match",
    [
        ({"epochs": 0}, r"Received: epochs=0"),
        ({"learning_rate": -1.0}, r"Received: learning_rate=-1.0"),
        ({"validation_fraction": 1.0}, "validation_fraction must be in"),
        ({"optimizer": "lbfgs"}, "optimizer must be one of"),
        ({"schedule": "step"}, "schedule must be one of"),
        ({"recipe": "slow"}, "Unknown recipe 'slow'"),
        (
            {"augment": "jitter"},
            r"Unknown augmentation policy.*flip-translate.*Received: augment='jitter'",
        ),
        ({"run_name": "a/b"}, "run_name must be a plain folder name"),
    ],
)
def test_bad_values(flags, match):
    with pytest.raises(UserInputError, match=match):
        resolve_config({}, flags)


def test_round_trip_through_dict():
    config = resolve_config(
        {}, {"image_size": (40, 40), "model_kwargs": {"dropout": 0.1}}
    )
    assert config_from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_identity_ignores_where_the_run_lands():
    a = resolve_config({}, {"run_name": "a", "workdir": "x"})
    b = resolve_config({}, {"run_name": "b", "workdir": "y", "overwrite": True})
    assert a.identity() == b.identity()
    assert a.identity() != resolve_config({}, {"epochs": 3}).identity()

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
    assert config.recipe == "fast" and config.precision == "auto"
    assert config.tta == "flip" and config.model_kwargs == {"batch_norm": False}
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"recipe": "quick"}))
    from_file = resolve_config(read_config_file(str(path)), {}, CLI_DEFAULT_RECIPE)
    assert from_file.recipe == "quick"  # a file naming a recipe wins


def test_the_long_recipe_is_the_fast_recipe_on_resnet9_for_longer():
    fast, long = get_recipe("fast"), get_recipe("long")
    assert (long.model, long.model_kwargs) == ("resnet9", {"width": 32})
    assert long.epochs > fast.epochs and long.augment == "erasing"
    assert (long.precision, long.tta, long.optimizer) == ("auto", "flip", "adamw")
    # The preferred precision is a default: a flag forces another.
    forced = resolve_config({}, {"recipe": "long", "precision": "bf16"})
    assert forced.precision == "bf16"
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
        (
            {"precision": "fp64"},
            r"precision must be one of auto, fp32, bf16, fp16.*precision='fp64'",
        ),
        ({"recipe": "slow"}, "Unknown recipe 'slow'"),
        (
            {"augment": "jitter"},
            r"Unknown augmentation policy.*flip-translate.*Received: augment='jitter'",
        ),
        ({"run_name": "a/b"}, "run_name must be a folder name"),
        ({"run_name": ".hidden"}, "not starting with a dot"),
        ({"run_name": "x" * 300}, r"at most 200 bytes.*Received: run_name='xxx"),
        ({"run_name": "a\x00b"}, "run_name must be a folder name"),
        # Numbers: finite and inside what TensorFlow can take.
        ({"seed": -1}, r"seed must be in \[0, 2\*\*32 - 1\].*Received: seed=-1"),
        ({"seed": 2**36}, r"Received: seed=68719476736"),
        ({"warmup_epochs": float("inf")}, "warmup_epochs must be a finite number"),
        ({"warmup_epochs": 13.0}, r"warmup_epochs must be in \[0, epochs\]"),
        ({"batch_size": 10**20}, r"batch_size must be in \[1, 65536\]"),
        ({"epochs": 10**9}, r"epochs must be in \[1, 100000\]"),
        ({"learning_rate": float("inf")}, "learning_rate must be a finite number"),
        ({"learning_rate": float("nan")}, "learning_rate must be a finite number"),
        ({"weight_decay": float("inf")}, "weight_decay must be a finite number"),
        ({"momentum": float("nan")}, "momentum must be a finite number"),
        (
            {"genotype": "g.json", "filters": 10**6},
            r"filters must be an int in \[1, 8192\]",
        ),
        ({"filters": 8}, r"--filters apply to a searched cell; pass --genotype"),
        ({"tensorboard_images": 10**9}, r"tensorboard_images must be in \[0, 256\]"),
    ],
)
def test_bad_values(flags, match):
    with pytest.raises(UserInputError, match=match):
        resolve_config({}, flags)


def test_bad_values_in_a_file_are_checked_like_flags(tmp_path):
    path = tmp_path / "c.json"
    path.write_text('{"batch_size": 1e20, "seed": 0}')
    with pytest.raises(UserInputError, match=r"batch_size must be in \[1, 65536\]"):
        resolve_config(read_config_file(str(path)), {})


def test_a_billion_laughs_yaml_is_refused_while_parsing(tmp_path):
    """Nine levels of nine aliases: 9**9 (387 million) strings if expanded."""
    lines = ['a0: &a0 "lol"']
    for i in range(1, 10):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    lines.append("model_kwargs: {x: *a9}")
    path = tmp_path / "laughs.yaml"
    path.write_text("\n".join(lines) + "\n")
    assert path.stat().st_size < 1000
    with pytest.raises(UserInputError, match="anchors and aliases are not allowed"):
        read_config_file(str(path))


def test_error_messages_are_bounded_for_huge_values(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("epochs: [" + ", ".join(["1"] * 100_000) + "]\n")
    with pytest.raises(UserInputError) as e:
        read_config_file(str(path))
    assert "epochs must be an int" in str(e.value) and len(str(e.value)) < 400


@pytest.mark.parametrize(
    "data, match",
    [
        (b"epochs: 3\nrun_name: caf\xe9\n", r"not UTF-8 text \(byte 23\)"),
        (b"[" * 200_000, "cannot parse config"),
    ],
)
def test_unreadable_config_bytes(tmp_path, data, match):
    for name in ("c.yaml", "c.json"):
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(UserInputError, match=match):
            read_config_file(str(path))


def test_config_files_are_bounded_before_reading(tmp_path, monkeypatch):
    from keras_convnets.training import config as config_module

    monkeypatch.setattr(config_module, "MAX_CONFIG_FILE_BYTES", 100)
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 3\n" * 20)
    with pytest.raises(
        UserInputError, match="200 bytes, more than the 100 a config file can be"
    ):
        read_config_file(str(path))


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

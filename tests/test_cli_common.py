"""Shared argument types and `train`'s config flags derived from `TrainConfig`."""

from __future__ import annotations

import argparse
import dataclasses
import signal

import pytest

from keras_convnets import cli_common
from keras_convnets.cli import build_parser
from keras_convnets.training import commands
from keras_convnets.training.config import (
    CLI_DEFAULT_RECIPE,
    NAS_CELL_ARGUMENTS,
    TrainConfig,
    get_recipe,
    resolve_config,
)


@pytest.mark.parametrize(
    "parse, text, expected",
    [
        (cli_common.integer, "-3", -3),
        (cli_common.number, "2e-3", 2e-3),
        (cli_common.int_at_least(0), "0", 0),
        (cli_common.positive_int, "7", 7),
        (cli_common.non_negative_float, "0", 0.0),
        (cli_common.comma_list(int), "8, 16,", [8, 16]),
        (cli_common.comma_list(str), " , ", None),
        (cli_common.input_shape, "28x28x1", (28, 28, 1)),
        (cli_common.image_size, "64,48", (64, 48)),
    ],
)
def test_argument_types_parse(parse, text, expected):
    assert parse(text) == expected


@pytest.mark.parametrize(
    "parse, text, message",
    [
        (cli_common.integer, "1.5", "expected an integer, got '1.5'"),
        (cli_common.number, "fast", "expected a number, got 'fast'"),
        (cli_common.int_at_least(1), "0", "expected an integer >= 1, got '0'"),
        (cli_common.int_at_least(1), "x", "expected an integer, got 'x'"),
        (cli_common.non_negative_float, "nan", "expected a number >= 0"),
        (cli_common.comma_list(float), "1,x", "comma-separated list of floats"),
        (cli_common.image_size, "28,28,3", "expected H,W with positive sizes"),
        (cli_common.input_shape, "0,28", "H,W or H,W,C with positive sizes"),
    ],
)
def test_argument_types_refuse(parse, text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message.replace(".", r"\.")):
        parse(text)


def test_sigterm_raises_keyboard_interrupt():
    previous = signal.getsignal(signal.SIGTERM)
    try:
        cli_common.stop_on_sigterm()
        with pytest.raises(KeyboardInterrupt, match="signal 15"):
            signal.raise_signal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _train_parser():
    parser = build_parser()
    subparsers = next(
        a for a in parser._actions if isinstance(a, argparse._SubParsersAction)
    )
    return parser, subparsers.choices["train"]


def test_every_config_field_is_a_flag_and_nothing_else_is_config():
    parser, train = _train_parser()
    flags = {o for a in train._actions for o in a.option_strings}
    for field in dataclasses.fields(TrainConfig):
        assert "--" + field.name.replace("_", "-") in flags, field.name
    # Not given: not in the flags; the run-only flags never reach the config.
    args = parser.parse_args(["train", "--json", "--strategy", "mirrored"])
    assert commands.config_flag_values(args) == {}
    # The table only names real fields, or the searched cell's shortcut flags
    # (`--genotype`, `--cells`, ...), which fill in model and model_kwargs.
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    assert set(commands.config_flags()) <= names | set(NAS_CELL_ARGUMENTS)
    assert not set(NAS_CELL_ARGUMENTS) & names


def test_config_flags_are_typed_by_the_field():
    parser, _ = _train_parser()
    args = parser.parse_args(
        ["train", "--epochs", "3", "--lr", "0.01", "--image-size", "32x32",
         "--jit-compile", "false", "--overwrite", "--model-kwargs", '{"dropout": 0.5}',
         "--config", "c.yaml", "--worker-index", "1"]
    )  # fmt: skip
    values = commands.config_flag_values(args)
    assert values == {
        "epochs": 3,
        "learning_rate": 0.01,
        "image_size": (32, 32),
        "jit_compile": "false",
        "overwrite": True,
        "model_kwargs": '{"dropout": 0.5}',
    }
    config = resolve_config({}, values)
    assert config.jit_compile is False and config.model_kwargs == {"dropout": 0.5}
    with pytest.raises(SystemExit) as e:
        parser.parse_args(["train", "--warmup-epochs", "one"])
    assert e.value.code == cli_common.EXIT_USER_ERROR


def test_help_shows_the_default_recipes_values(capsys):
    parser, _ = _train_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    recipe = get_recipe(CLI_DEFAULT_RECIPE)
    assert f"(default {recipe.epochs})" in out
    assert f"(default {recipe.precision})" in out
    assert "--learning-rate LEARNING_RATE, --lr LEARNING_RATE" in out
    assert "other config fields" not in out  # every field has its group


def test_a_field_without_presentation_still_gets_a_flag(monkeypatch):
    parser = argparse.ArgumentParser()
    groups = {
        title: parser.add_argument_group(title) for title in commands.TRAIN_GROUPS
    }
    flags = commands.config_flags()
    del flags["momentum"]
    monkeypatch.setattr(commands, "config_flags", lambda: flags)
    commands.add_config_arguments(parser, groups)
    assert parser.parse_args(["--momentum", "0.5"]).momentum == 0.5
    assert commands.OTHER_GROUP in groups

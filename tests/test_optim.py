"""training/optim.py: the optimizer from plain arguments, as train builds it."""

from __future__ import annotations

import dataclasses
import inspect

import keras
import pytest

from keras_convnets.training import optim
from keras_convnets.training.config import TrainConfig, resolve_config
from keras_convnets.training.train import build_optimizer


def test_defaults_are_train_configs():
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    parameters = inspect.signature(optim.build_optimizer).parameters.values()
    given = {p.name: p.default for p in parameters if p.default is not p.empty}
    assert given and {k: defaults[k] for k in given} == given


def _rates(optimizer, steps=(0, 5, 10, 25, 49)):
    rate = optimizer._learning_rate
    return [float(rate(s)) if callable(rate) else float(rate) for s in steps]


@pytest.mark.parametrize(
    "flags",
    [
        {"optimizer": "adam", "schedule": "constant", "weight_decay": 0.0},
        {"optimizer": "adamw", "schedule": "cosine", "warmup_epochs": 1.0},
        {"optimizer": "adamw", "schedule": "cosine", "warmup_epochs": 0.0, "ema": 0.9},
        {"optimizer": "sgd", "schedule": "one-cycle", "momentum": 0.8},
        {"optimizer": "nesterov", "schedule": "cosine", "epochs": 5},
    ],
)
def test_same_optimizer_as_from_a_config(flags):
    flags = {"learning_rate": 0.1, "epochs": 5, **flags}
    from_config = build_optimizer(resolve_config({}, flags), steps_per_epoch=10)
    plain = optim.build_optimizer(steps_per_epoch=10, **flags)
    assert type(plain) is type(from_config)
    assert _rates(plain) == pytest.approx(_rates(from_config))
    for attribute in (
        "weight_decay",
        "use_ema",
        "ema_momentum",
        "momentum",
        "nesterov",
    ):
        assert getattr(plain, attribute, None) == getattr(from_config, attribute, None)


def test_warmup_then_cosine_decay():
    opt = optim.build_optimizer(learning_rate=1.0, epochs=5, steps_per_epoch=10)
    # Starts at lr / 25, reaches lr after the 1-epoch warmup, ends near 0.
    assert _rates(opt, (0, 10, 50)) == pytest.approx([0.04, 1.0, 0.0], abs=1e-6)
    assert isinstance(opt, keras.optimizers.AdamW) and opt.weight_decay == 5e-4

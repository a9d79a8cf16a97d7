"""data/pipelines.py: the training job's pipelines from plain arguments."""

from __future__ import annotations

import dataclasses
import inspect

import numpy as np
import pytest

from keras_convnets.data import pipelines
from keras_convnets.errors import UserInputError
from keras_convnets.training.config import TrainConfig, resolve_config
from keras_convnets.training.train import make_datasets


def test_defaults_are_train_configs():
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    for function in (pipelines.make_datasets, pipelines.sample_images):
        parameters = inspect.signature(function).parameters.values()
        given = {
            p.name: p.default
            for p in parameters
            if p.default is not p.empty and p.name in defaults
        }
        assert given and {k: defaults[k] for k in given} == given


def test_same_batches_as_from_a_config(small_fashion_dir):
    flags = {
        "data_dir": small_fashion_dir,
        "batch_size": 50,
        "train_fraction": 0.5,
        "augment": "flip",
        "seed": 3,
    }
    config = resolve_config({}, flags)
    train, val, test, info = pipelines.make_datasets("fashion_mnist", **flags)
    expected = make_datasets(config)
    assert (
        info.sizes
        == expected[3].sizes
        == {"train": 540, "validation": 120, "test": 300}
    )
    for ours, theirs in zip((train, val, test), expected[:3], strict=True):
        # No autotuning thread: `fit` would wait for it at every epoch turnover
        # (datasets.without_autotune_thread, benchmarks/epoch_turnover.py).
        assert ours.options().autotune.enabled is False
        assert theirs.options().autotune.enabled is False
        images, labels = next(iter(ours))
        want_images, want_labels = next(iter(theirs))
        assert images.shape == (50, 28, 28, 1) and labels.shape == (50, 10)
        np.testing.assert_array_equal(labels.numpy().sum(-1), 1.0)  # one-hot
        np.testing.assert_array_equal(images.numpy(), want_images.numpy())
        np.testing.assert_array_equal(labels.numpy(), want_labels.numpy())


def test_no_validation_split_and_an_empty_one(small_fashion_dir):
    _, val, _, info = pipelines.make_datasets(
        "fashion_mnist",
        batch_size=64,
        validation_fraction=0.0,
        data_dir=small_fashion_dir,
    )
    assert val is None and info.sizes["train"] == 1200
    with pytest.raises(UserInputError, match="empty validation split"):
        pipelines.make_datasets(
            "fashion_mnist",
            batch_size=64,
            validation_fraction=1e-6,
            data_dir=small_fashion_dir,
        )


def test_sample_images(small_fashion_dir):
    _, _, _, info = pipelines.make_datasets(
        "fashion_mnist", batch_size=64, data_dir=small_fashion_dir
    )
    images, captions = pipelines.sample_images(
        "fashion_mnist", info, count=3, data_dir=small_fashion_dir
    )
    assert images.shape == (3, 28, 28, 1) and len(captions) == 3
    assert set(captions) <= set(info.class_names)

"""The searched cell as an ordinary model: `nas_cell_net`, its parameter
budget, BatchNorm-free cells, configs that name it, and old files."""

from __future__ import annotations

import json
import os
import shutil

import keras
import numpy as np
import pytest

from keras_convnets.blocks.nas_cell import OPERATIONS, Block, Genotype
from keras_convnets.errors import UserInputError
from keras_convnets.models import get_model
from keras_convnets.models.nas_cell_net import (
    build_from_genotype,
    count_params,
    filters_for_budget,
    resolve_genotype,
)
from keras_convnets.training.config import (
    config_from_dict,
    read_config_file,
    resolve_config,
)

DATA = os.path.join(os.path.dirname(__file__), "data")
SHAPE = (16, 16, 1)


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)
    yield
    keras.backend.clear_session()


def _every_op_genotype():
    ops = list(OPERATIONS)
    return Genotype(
        normal=[Block(1, ops[0], 0, ops[1]), Block(2, ops[2], 1, ops[3])],
        reduce=[Block(0, ops[4], 1, ops[5]), Block(2, ops[6], 0, ops[7])],
    )


def _convolutions(model):
    kinds = (keras.layers.Conv2D, keras.layers.SeparableConv2D)
    return [
        layer
        for layer in model.layers
        if isinstance(layer, kinds) or type(layer).__name__ == "OuterProductConv2D"
    ]


def test_cell_norm_none_has_no_batchnorm_and_biases_instead():
    g = _every_op_genotype()
    plain = build_from_genotype(g, SHAPE, 3, cells=1, filters=4)
    batch = build_from_genotype(g, SHAPE, 3, cells=1, filters=4, cell_norm="batch")
    bn = [
        layer for layer in batch.layers if "BatchNormalization" in type(layer).__name__
    ]
    assert not [
        layer for layer in plain.layers if "BatchNormalization" in type(layer).__name__
    ]
    # Every convolution of the BN net feeds a BN, except the 1x7 half of
    # conv_1x7_7x1 (it feeds the 7x1 conv).
    fed = {
        layer._inbound_nodes[0].input_tensors[0]._keras_history.operation.name
        for layer in bn
    }
    for conv in _convolutions(batch):
        assert not conv.use_bias, conv.name
    assert {c.name for c in _convolutions(batch)} - fed == {
        c.name for c in _convolutions(batch) if c.name.endswith("_1x7")
    }
    biased = {c.name for c in _convolutions(plain) if c.use_bias}
    assert biased == {
        c.name for c in _convolutions(plain) if not c.name.endswith("_1x7")
    }
    # Same layers otherwise, under the same names.
    names = {layer.name for layer in batch.layers} - {layer.name for layer in bn}
    assert names == {layer.name for layer in plain.layers}


def test_a_model_saved_before_the_move_loads_through_the_safe_loader(tmp_path):
    # tests/data/nas_cell_net_v0.keras: a BatchNorm cell net saved by the
    # code in search/genotype.py before the move (moving statistics set to
    # 0.1 / 2.0), with its input and output.
    from keras_convnets.inference import load_model

    record = json.load(open(os.path.join(DATA, "nas_cell_net_v0.json")))
    path = tmp_path / "model.keras"
    shutil.copy(os.path.join(DATA, "nas_cell_net_v0.keras"), path)
    model, _ = load_model(str(path))  # the allowlist, then safe_mode
    x = np.asarray(record["input"], dtype="float32")
    np.testing.assert_allclose(
        np.asarray(model(x, training=False)), record["output"], atol=1e-5
    )
    # The same genotype with cell_norm="batch" builds the same network: the
    # old file's weights load into it (a resumed run's checkpoints do).
    rebuilt = get_model(
        "nas_cell_net",
        (12, 12, 1),
        3,
        genotype=record["genotype"],
        cells=1,
        filters=2,
        cell_norm="batch",
    )
    assert rebuilt.count_params() == record["params"]
    rebuilt.set_weights(model.get_weights())
    assert [w.path for w in rebuilt.weights] == [w.path for w in model.weights]


def test_a_new_cell_model_round_trips_through_the_safe_loader(tmp_path):
    from keras_convnets.inference import load_model

    for norm in ("none", "batch"):
        model = get_model(
            "nas_cell_net",
            SHAPE,
            3,
            genotype=_every_op_genotype(),
            cells=1,
            filters=4,
            cell_norm=norm,
        )
        path = tmp_path / f"{norm}.keras"
        model.save(path)
        loaded, _ = load_model(str(path))
        x = np.random.default_rng(1).random((2, *SHAPE), dtype=np.float32)
        np.testing.assert_allclose(
            np.asarray(loaded(x, training=False)),
            np.asarray(model(x, training=False)),
            atol=1e-6,
        )


def test_genotype_from_a_genotype_a_dict_or_a_file(tmp_path):
    g = Genotype.random(blocks=2, seed=4)
    path = tmp_path / "best_genotype.json"
    path.write_text(json.dumps({**g.to_dict(), "cell_norm": "batch"}))
    assert resolve_genotype(g) == (g, "none")
    assert resolve_genotype(g.to_dict()) == (g, "none")
    assert resolve_genotype(str(path)) == (g, "batch")  # recorded by the search
    assert resolve_genotype(str(path), "none") == (g, "none")  # the argument wins
    with pytest.raises(UserInputError, match="cell_norm must be one of"):
        resolve_genotype(g, "layer")
    with pytest.raises(UserInputError, match="genotype must be a Genotype"):
        resolve_genotype(42)
    with pytest.raises(UserInputError, match="nope.json"):
        get_model("nas_cell_net", SHAPE, 3, genotype=str(tmp_path / "nope.json"))


@pytest.mark.parametrize(
    "cells, budget",
    [(1, 20_000), (0, 3_000), pytest.param(2, 150_000, marks=pytest.mark.slow)],
)
def test_params_budget_picks_the_widest_filters_that_fit(cells, budget):
    g = Genotype.random(blocks=2, seed=cells)

    def built(f):
        return build_from_genotype(g, SHAPE, 10, cells=cells, filters=f).count_params()

    f = filters_for_budget(g, SHAPE, 10, cells, budget)
    assert built(f) <= budget < built(f + 1)
    assert count_params(g, SHAPE, 10, cells, 7) == built(7)
    model = get_model(
        "nas_cell_net", SHAPE, 10, genotype=g, cells=cells, params_budget=budget
    )
    assert model.count_params() == built(f)


def test_params_budget_errors():
    g = Genotype.random(blocks=2, seed=0)
    with pytest.raises(UserInputError, match="below the smallest network"):
        filters_for_budget(g, SHAPE, 10, 1, 10)
    with pytest.raises(UserInputError, match="filters or params_budget, not both"):
        get_model("nas_cell_net", SHAPE, 10, filters=8, params_budget=10_000)


@pytest.mark.slow  # a 467,818-weight budget: three builds of full-width cell nets
def test_simple_cnn_sized_budget_matches_the_readme():
    # The budget the README suggests: simple_cnn's size on Fashion-MNIST.
    simple = get_model("simple_cnn", (28, 28, 1), 10).count_params()
    f = filters_for_budget(None, (28, 28, 1), 10, 2, simple)
    assert count_params(None, (28, 28, 1), 10, 2, f) <= simple
    assert count_params(None, (28, 28, 1), 10, 2, f + 1) > simple


# Configs.


def test_genotype_flags_become_model_arguments():
    config = resolve_config(
        {}, {"genotype": "best.json", "cells": 1, "params_budget": 470_000}
    )
    assert config.model == "nas_cell_net"
    assert config.model_kwargs == {
        "genotype": "best.json",
        "cells": 1,
        "params_budget": 470_000,
    }
    # The fast recipe's simple_cnn arguments do not leak into the cell net.
    assert "batch_norm" not in config.model_kwargs


def test_flags_refine_a_files_cell_net(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(
        "model: nas_cell_net\n"
        "model_kwargs: {genotype: best.json, cells: 2, filters: 32}\n"
    )
    config = resolve_config(read_config_file(str(path)), {"params_budget": 100_000})
    assert config.model_kwargs == {
        "genotype": "best.json",
        "cells": 2,
        "params_budget": 100_000,
    }


def test_a_config_json_from_before_the_move_resumes_the_same_network():
    # What `train --genotype g.json --cells 1 --filters 8` wrote then: every
    # TrainConfig field, the genotype in its own fields, BatchNorm cells.
    old = {**resolve_config({}, {}).to_dict(), "model_kwargs": {}}
    old.update(model="simple_cnn", genotype="g.json", cells=1, filters=8)
    config = config_from_dict(old)
    assert config.model == "nas_cell_net"
    assert config.model_kwargs == {
        "genotype": "g.json",
        "cells": 1,
        "filters": 8,
        "cell_norm": "batch",
    }
    # A registry model's config.json of that time: the fields go away.
    old.update(model="simple_cnn", genotype=None, cells=2, filters=32)
    config = config_from_dict(old)
    assert config.model == "simple_cnn" and "genotype" not in config.model_kwargs


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"genotype": "g.json", "cells": -1}, r"cells must be an int in \[0, 64\]"),
        ({"genotype": "g.json", "cell_norm": "layer"}, "cell_norm must be none or"),
        ({"genotype": 3}, "genotype must be a file path"),
    ],
)
def test_bad_cell_net_arguments_fail_before_any_data(kwargs, match):
    with pytest.raises(UserInputError, match=match):
        resolve_config(
            {}, {"model": "nas_cell_net", "model_kwargs": json.dumps(kwargs)}
        )


def test_stem_stride_two_halves_every_stage_and_keeps_the_parameters():
    g = _every_op_genotype()
    full = build_from_genotype(g, SHAPE, 3, cells=1, filters=4)
    half = build_from_genotype(g, SHAPE, 3, cells=1, filters=4, stem_stride=2)
    assert full.get_layer("stem_conv").output.shape[1:3] == (16, 16)
    assert half.get_layer("stem_conv").output.shape[1:3] == (8, 8)
    # The last stage: 16 -> 8 -> 4 at stride 1; 8 -> 4 -> 2 at stride 2.
    assert full.get_layer("head_relu").output.shape[1:3] == (4, 4)
    assert half.get_layer("head_relu").output.shape[1:3] == (2, 2)
    assert half.count_params() == full.count_params()
    assert count_params(g, SHAPE, 3, 1, 4) == half.count_params()
    x = np.random.default_rng(0).random((2, 28, 28, 1), dtype=np.float32)
    odd = build_from_genotype(g, (28, 28, 1), 3, cells=1, filters=4, stem_stride=2)
    assert odd.get_layer("head_relu").output.shape[1:3] == (4, 4)  # 14 -> 7 -> 4
    assert odd(x).shape == (2, 3)


def test_stem_stride_comes_from_the_genotype_file_unless_given(tmp_path):
    g = _every_op_genotype()
    path = tmp_path / "best_genotype.json"
    path.write_text(json.dumps({**g.to_dict(), "stem_stride": 2}))
    strides = lambda m: m.get_layer("stem_conv").strides  # noqa: E731
    model = get_model("nas_cell_net", SHAPE, 3, genotype=str(path), cells=1, filters=4)
    assert strides(model) == (2, 2)
    model = get_model(
        "nas_cell_net", SHAPE, 3, genotype=str(path), cells=1, filters=4, stem_stride=1
    )
    assert strides(model) == (1, 1)
    # A file from before the option: stride 1.
    path.write_text(json.dumps(g.to_dict()))
    model = get_model("nas_cell_net", SHAPE, 3, genotype=str(path), cells=1, filters=4)
    assert strides(model) == (1, 1)
    for bad in (3, 0, True, "2"):
        with pytest.raises(UserInputError, match="stem_stride must be one of 1, 2"):
            build_from_genotype(g, SHAPE, 3, cells=1, filters=4, stem_stride=bad)


def test_train_flag_stem_stride_reaches_the_model(tmp_path):
    path = tmp_path / "g.json"
    path.write_text(json.dumps(_every_op_genotype().to_dict()))
    config = resolve_config(
        {}, {"genotype": str(path), "stem_stride": 2, "cells": 1, "filters": 4}
    )
    assert config.model == "nas_cell_net"
    assert config.model_kwargs["stem_stride"] == 2
    with pytest.raises(UserInputError, match="stem_stride must be 1 or 2"):
        resolve_config({}, {"genotype": str(path), "stem_stride": 4})

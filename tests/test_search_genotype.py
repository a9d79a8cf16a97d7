"""Genotype: JSON and hyperparameter round trips, every operation, random builds."""

from __future__ import annotations

import json

import keras
import keras_tuner
import numpy as np
import pytest

from keras_convnets.models.flops import count_flops
from keras_convnets.search.genotype import (
    OPERATIONS,
    Block,
    Genotype,
    build_from_genotype,
    declare_search_space,
    load_genotype,
)
from keras_convnets.search.render import plot_cell

SHAPE = (28, 28, 1)


def _forward(model, batch=2):
    x = np.random.default_rng(0).random((batch, *SHAPE), dtype=np.float32)
    return keras.ops.convert_to_numpy(model(x, training=False))


@pytest.mark.parametrize("seed", range(5))
def test_json_and_hyperparameter_round_trips(seed):
    g = Genotype.random(blocks=3, seed=seed)
    assert Genotype.from_json(g.to_json()) == g
    assert Genotype.from_dict(json.loads(json.dumps(g.to_dict()))) == g
    hp = g.to_hyperparameters()
    assert isinstance(hp, keras_tuner.HyperParameters)
    assert Genotype.from_hyperparameters(hp) == g
    assert Genotype.from_hyperparameters(dict(hp.values)) == g
    # 4 choices per block, per cell type
    assert len(hp.space) == 2 * 3 * 4


def test_declared_space_defaults_and_pinned_values():
    hp = keras_tuner.HyperParameters()
    declare_search_space(hp, blocks=2)
    default = Genotype.from_hyperparameters(hp, blocks=2)
    assert default.normal[0] == Block(1, "sep_conv_3x3", 0, "identity")
    assert hp.get("normal_1_input_a") == 1
    hp2 = keras_tuner.HyperParameters()
    hp2.Fixed("reduce_1_op_b", "max_pool_3x3")
    pinned = Genotype.from_hyperparameters(hp2, blocks=2)
    assert pinned.reduce[1].op_b == "max_pool_3x3"


@pytest.mark.parametrize("op", OPERATIONS)
def test_every_operation_builds_in_both_cell_types(op):
    block = Block(0, op, 1, op)
    g = Genotype(normal=[block, Block(2, op, 0, "identity")], reduce=[block, block])
    model = build_from_genotype(g, SHAPE, 10, cells=1, filters=4)
    names = [layer.name for layer in model.layers]
    assert (
        any(n.startswith(f"stage1_cell1_b0_a_{op}") for n in names) or op == "identity"
    )
    assert any(n.startswith(f"reduce1_b0_a_{op}") for n in names)
    assert model.get_layer("reduce2_project").output.shape[1:3] == (7, 7)
    y = _forward(model)
    assert y.shape == (2, 10)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("seed", range(6))
def test_random_genotypes_build_valid_models(seed):
    g = Genotype.random(blocks=1 + seed % 3, seed=seed)
    cells = seed % 2
    model = build_from_genotype(g, SHAPE, 7, cells=cells, filters=4, name="net")
    y = _forward(model)
    assert y.shape == (2, 7) and np.all(np.isfinite(y))
    assert model.name == "net"
    # filters double at each reduction
    assert model.get_layer("reduce1_project").filters == 8
    assert model.get_layer("reduce2_project").filters == 16
    assert count_flops(model) > 0


def test_keras_round_trip_without_custom_objects(tmp_path):
    op_block = Block(1, "op_conv_3x3", 0, "dil_sep_conv_3x3")
    g = Genotype(normal=[op_block], reduce=[Block(0, "conv_1x7_7x1", 1, "op_conv_5x5")])
    model = build_from_genotype(g, SHAPE, 10, cells=1, filters=4)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = np.random.default_rng(1).random((2, *SHAPE), dtype=np.float32)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(x)),
        keras.ops.convert_to_numpy(model(x)),
        atol=1e-6,
    )


@pytest.mark.parametrize(
    "data, fragment",
    [
        ({"normal": [], "reduce": []}, "at least one block"),
        (
            {
                "normal": [[0, "conv9x9", 1, "identity"]],
                "reduce": [[0, "identity", 1, "identity"]],
            },
            "conv9x9",
        ),
        (
            {
                "normal": [[2, "identity", 1, "identity"]],
                "reduce": [[0, "identity", 1, "identity"]],
            },
            "input_a=2",
        ),
        ({"normal": [[0, "identity", 1, "identity"]]}, "'normal' and 'reduce'"),
        (
            {
                "normal": [[0, "identity", 1, "identity"]],
                "reduce": [[0, "identity", 1, "identity"]] * 2,
            },
            "same number of blocks",
        ),
        ({"normal": [{"inputs": [0]}], "reduce": []}, "must be"),
    ],
)
def test_invalid_genotypes_raise_value_error(data, fragment):
    with pytest.raises(ValueError, match=None) as info:
        Genotype.from_dict(data)
    assert fragment in str(info.value)


def test_load_genotype_names_the_file(tmp_path):
    missing = tmp_path / "missing.json"
    with pytest.raises(ValueError, match="missing.json"):
        load_genotype(str(missing))
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"normal": [')
    with pytest.raises(ValueError, match="corrupt.json.*corrupt JSON"):
        load_genotype(str(corrupt))
    invalid = tmp_path / "invalid.json"
    invalid.write_text(
        '{"normal": [[0, "nope", 0, "identity"]], "reduce": [[0, "identity", 0, "identity"]]}'
    )
    with pytest.raises(ValueError, match="invalid.json.*nope"):
        load_genotype(str(invalid))
    good = tmp_path / "best_genotype.json"
    g = Genotype.random(2, seed=0)
    good.write_text(json.dumps({**g.to_dict(), "search": {"val_accuracy": 0.5}}))
    assert load_genotype(str(good)) == g


def test_text_and_png_rendering(tmp_path):
    g = Genotype(
        normal=[
            Block(1, "sep_conv_3x3", 0, "identity"),
            Block(2, "max_pool_3x3", 1, "op_conv_5x5"),
        ],
        reduce=[
            Block(0, "avg_pool_3x3", 1, "conv_1x7_7x1"),
            Block(0, "identity", 1, "identity"),
        ],
    )
    text = g.describe()
    assert "b0 = sep_conv_3x3(h[-1]) + identity(h[-2])" in text
    assert "b1 = max_pool_3x3(b0) + op_conv_5x5(h[-1])" in text
    assert "out = conv1x1(concat(b1))" in text
    assert "out = conv1x1(concat(b0, b1))" in text
    assert g.unused_blocks("normal") == [1]
    assert g.short().startswith("N[sep3:1+id:0|max3:2+op5:1]")
    path = tmp_path / "normal.png"
    data = plot_cell(g, "normal", str(path))
    assert path.read_bytes() == data and data[:8] == b"\x89PNG\r\n\x1a\n"

"""The `outer-product` experiment: counts from real layers, and a quick run.

Parameter and FLOP counts are exact, so their ordering is asserted; accuracy
after a 2-epoch quick run is not (it can flip by chance).
"""

from __future__ import annotations

import json
import os

import keras
import pytest

from keras_convnets.experiments import outer_product as op
from keras_convnets.layers import OuterProductConv2D
from keras_convnets.models.flops import count_flops


def test_lecture_example_2500_vs_125_weights():
    rows = {(r["filters"], r["kind"]): r for r in op.lecture_example()}
    assert rows[(1, "full")]["weights"] == 5 * 5 * 100 == 2500
    assert rows[(1, "outer_product")]["weights"] == 5 * 5 + 100 == 125
    assert rows[(64, "full")]["weights"] == 64 * 2500
    assert rows[(64, "outer_product")]["weights"] == 64 * 125
    assert rows[(64, "separable")]["weights"] == 2500 + 100 * 64
    assert rows[(64, "outer_product")]["flops"] < rows[(64, "full")]["flops"] / 10


def test_same_layout_fewer_weights_and_flops():
    models = {kind: op.build(kind) for kind in op.KINDS}
    shapes = {
        k: [tuple(layer.output.shape) for layer in m.layers] for k, m in models.items()
    }
    assert shapes["outer_product"] == shapes["full"] == shapes["separable"]
    # Only the first convolution stays a full Conv2D.
    assert type(models["full"].get_layer("stage1_conv1")) is keras.layers.Conv2D
    assert (
        type(models["outer_product"].get_layer("stage1_conv1")) is keras.layers.Conv2D
    )
    assert isinstance(
        models["outer_product"].get_layer("stage1_conv2"), OuterProductConv2D
    )
    assert isinstance(
        models["separable"].get_layer("stage2_conv2"), keras.layers.SeparableConv2D
    )
    for kind in ("outer_product", "separable"):
        assert op.conv_params(models[kind]) * 5 < op.conv_params(models["full"])
        assert count_flops(models[kind]) * 5 < count_flops(models["full"])


@pytest.mark.slow  # four nets trained; the layers are tested above in `make test`
def test_quick_run_structure(tmp_path, tiny_fashion_dir):
    op.run(str(tmp_path), quick=True, seed=0, data_dir=tiny_fashion_dir)
    d = tmp_path / "outer-product"
    assert sorted(os.listdir(d)) == ["outer_product.png", "results.json", "summary.md"]
    saved = json.loads((d / "results.json").read_text())
    models = saved["models"]
    assert list(models) == list(op.KINDS)
    for kind in ("outer_product", "separable"):
        assert models[kind]["params"] < models["full"]["params"]
        assert models[kind]["conv_params"] < models["full"]["conv_params"]
        assert models[kind]["flops"] < models["full"]["flops"]
    for c in models.values():
        assert len(c["test_accuracy"]) == len(c["train_accuracy"]) == 2
        assert 0.0 <= c["final_test_accuracy"] <= 1.0
    assert "2,500" in (d / "summary.md").read_text()

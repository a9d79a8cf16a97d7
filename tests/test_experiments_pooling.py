"""The `pooling` experiment on a small real Fashion-MNIST subset.

Quick runs (2 epochs, tiny filters) are undertrained, so which pooling is most
accurate or most invariant is not asserted; the tests check the layouts
(pooling has no weights: only the readout of `none` grows) and that the
measurements, shared with `translation-invariance`, are well formed.
"""

from __future__ import annotations

import json
import os

import keras

from keras_convnets import get_model
from keras_convnets.experiments import pooling
from keras_convnets.layers import L2Pooling2D, MedianPooling2D

POOL_TYPES = {
    "max": keras.layers.MaxPooling2D,
    "mean": keras.layers.AveragePooling2D,
    "l2": L2Pooling2D,
    "median": MedianPooling2D,
    "none": keras.layers.Identity,
}


def test_build_swaps_only_the_pooling():
    illing = get_model("illing", (40, 40, 1), 10)
    for pool, cls in POOL_TYPES.items():
        model = pooling.build(pool)
        for stage in (1, 2, 3):
            assert type(model.get_layer(f"stage{stage}_pool")) is cls
        rep = model.get_layer("representation").output.shape[1]
        if pool == "none":
            assert rep == 4 * 4 * 128
            assert model.count_params() > illing.count_params()
        else:
            assert rep == 2 * 2 * 128  # Illing's 2x2x128
            assert model.count_params() == illing.count_params()


def test_quick_run_structure(tmp_path, tiny_fashion_dir):
    pooling.run(str(tmp_path), quick=True, seed=0, data_dir=tiny_fashion_dir)
    d = tmp_path / "pooling"
    assert sorted(os.listdir(d)) == ["pooling.png", "results.json", "summary.md"]
    saved = json.loads((d / "results.json").read_text())
    assert saved["shifts"] == [0, 1, 2, 3] and saved["epochs"] == 2
    assert list(saved["pools"]) == list(pooling.POOLS)
    params = {p: v["params"] for p, v in saved["pools"].items()}
    assert len({params[p] for p in ("max", "mean", "l2", "median")}) == 1
    assert params["none"] > params["max"]
    for v in saved["pools"].values():
        assert abs(v["cosine"][0] - 1.0) < 1e-6 and v["unchanged"][0] == 1.0
        assert all(-1.0 <= c <= 1.0 + 1e-6 for c in v["cosine"])
        assert len(v["shifted_accuracy"]) == 4 and len(v["test_accuracy_curve"]) == 2
        assert 0.0 <= v["test_accuracy"] <= 1.0 and v["flops"] > 0
    assert "| median |" in (d / "summary.md").read_text()

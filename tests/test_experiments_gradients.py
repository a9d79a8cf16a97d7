"""The `gradients` experiment: hand-derived dL/dw, GradientTape and autodiff agree."""

from __future__ import annotations

import json
import os

import numpy as np

from keras_convnets.experiments import gradients


def test_quick_run_agrees_to_1e5(tmp_path):
    r = gradients.run(str(tmp_path), quick=True, seed=0)
    d = tmp_path / "gradients"
    assert sorted(os.listdir(d)) == ["gradients.png", "results.json", "summary.md"]
    saved = json.loads((d / "results.json").read_text())
    assert saved["max_abs_error"] == r["max_abs_error"] < 1e-5
    assert {c["pool"] for c in saved["cases"]} == {False, True}
    for case in saved["cases"]:
        w = case["w_1135"]
        assert abs(w["hand"] - w["tape"]) < 1e-5
        assert abs(w["autodiff"] - w["tape"]) < 1e-5
        assert case["max_abs_gradient"] > 1e-3  # a real, non-trivial gradient
    assert saved["lecture_example"]["w_a_children"] == ["k", "h", "m", "g_ab"]
    assert "1e-5" in (d / "summary.md").read_text()


def test_pooling_routes_gradient_only_to_winners(rng):
    p = gradients.make_problem(rng, pool=True)
    _, winners = gradients.hand_gradient(p)
    x = gradients.forward(p)["x"]
    won = np.zeros(x.shape, bool)
    n = winners.shape[0]
    for i in range(n):
        for j in range(n):
            for k in range(x.shape[2]):
                won[winners[i, j, k, 0], winners[i, j, k, 1], k] = True
    # Some positions win no window, so they get no gradient; the routing
    # matches TensorFlow's max-pool gradient.
    assert 0 < won.mean() < 1
    hand, _ = gradients.hand_gradient(p)
    np.testing.assert_allclose(hand, gradients.tape_gradient(p), atol=1e-10)

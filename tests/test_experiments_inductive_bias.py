"""The `inductive-bias` experiment: the matching bias wins, every bias fits."""

from __future__ import annotations

import json
import os

import numpy as np

from keras_convnets.experiments import inductive_bias as ib


def test_quick_run_no_free_lunch(tmp_path):
    r = ib.run(str(tmp_path), quick=True, seed=0)
    d = tmp_path / "inductive-bias"
    assert sorted(os.listdir(d)) == ["fits.png", "results.json", "summary.md"]
    saved = json.loads((d / "results.json").read_text())
    assert saved["best_bias"] == {"decay": "exponential", "ballistic": "parabola"}
    for law in ("decay", "ballistic"):
        # Zero training error for every strong bias, yet very different tests.
        for bias in ("exponential", "line", "parabola", "full-family"):
            assert saved["train_mse"][law][bias] < 1e-8
        assert saved["test_mse"][law][saved["best_bias"][law]] < 1e-10
        wrong = [
            b for b in ("exponential", "line", "parabola") if b != r["best_bias"][law]
        ]
        assert min(saved["test_mse"][law][b] for b in wrong) > 0.1
        assert saved["full_family_spread"][law] > 1.0  # weak bias: many fits


def test_two_parameter_fits_pass_through_points():
    x, y = np.array([0.5, 1.5]), np.array([2.0, 1.0])
    for fit in (ib.fit_exponential, ib.fit_line, ib.fit_parabola):
        np.testing.assert_allclose(ib.family(fit(x, y), x), y, atol=1e-12)
    xa, ya = ib.augment(x, y, jitter=0.2, copies=3)
    np.testing.assert_allclose(xa, [0.3, 0.5, 0.7, 1.3, 1.5, 1.7])
    np.testing.assert_allclose(ya, [2, 2, 2, 1, 1, 1])

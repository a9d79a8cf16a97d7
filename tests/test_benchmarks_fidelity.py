"""benchmarks/search_fidelity.py and search.py: rank statistics, the proxy choice,
best-so-far on a CPU grid (their trainings are not tests)."""

import math

from benchmarks.search_fidelity import choose_proxy, correlations


def _report(reference, proxies):
    cells = []
    for i, r in enumerate(reference):
        cells.append(
            {
                "proxies": {
                    name: {"score": scores[i], "cpu_s": cost}
                    for name, (scores, cost) in proxies.items()
                },
                "reference": None if r is None else {"val_accuracy": r},
            }
        )
    return {"proxies": list(proxies), "cells": cells}


def test_correlations_rank_against_the_reference_only_where_it_exists():
    reference = [0.80, 0.85, 0.90, 0.70, None]
    report = _report(
        reference,
        {
            "same": ([2, 3, 4, 1, 99], 1.0),  # same order: tau = rho = 1
            "reversed": ([3, 2, 1, 4, 0], 2.0),  # reversed: -1
            "broken": ([1, -math.inf, 3, 0, 5], 0.5),  # -inf is left out
        },
    )
    summary = correlations(report)
    assert summary["same"]["kendall_tau"] == 1.0
    assert summary["same"]["spearman_rho"] == 1.0
    assert summary["same"]["cells"] == 4  # the unreferenced cell is left out
    assert summary["reversed"]["kendall_tau"] == -1.0
    assert summary["broken"]["cells"] == 3
    assert summary["broken"]["kendall_tau"] == 1.0
    # CPU cost counts every evaluation, referenced or not.
    assert summary["reversed"]["cpu_s_per_eval"] == 2.0


def test_choose_proxy_takes_the_cheapest_near_the_best_tau():
    summary = {
        "train": {"kendall_tau": 0.62, "cpu_s_per_eval": 50.0},
        "naswot": {"kendall_tau": 0.59, "cpu_s_per_eval": 1.5},
        "params": {"kendall_tau": 0.30, "cpu_s_per_eval": 0.5},
        "unrated": {"kendall_tau": None, "cpu_s_per_eval": 0.1},
    }
    assert choose_proxy(summary) == "naswot"  # within 0.05 of 0.62, 33x cheaper
    summary["naswot"]["kendall_tau"] = 0.50
    assert choose_proxy(summary) == "train"
    assert choose_proxy({}) is None


def test_correlations_need_three_cells():
    report = _report([0.8, 0.9], {"p": ([1, 2], 1.0)})
    assert correlations(report)["p"]["kendall_tau"] is None


def test_best_so_far_on_a_cpu_grid():
    from benchmarks.search import best_so_far_on_grid

    val = [0.5, None, 0.7, 0.6]  # trial 2 failed (no score)
    cpu = [10.0, 20.0, 35.0, 50.0]  # cumulative CPU-s at the end of each trial
    assert best_so_far_on_grid(val, cpu, [5, 10, 30, 40, 60]) == [
        None,
        0.5,
        0.5,
        0.7,
        0.7,
    ]

"""Regularized evolution oracle: random start, aging population, tournament, mutation."""

from __future__ import annotations

import random

import keras_tuner
import pytest
from keras_tuner.engine import trial as trial_module

from keras_convnets.search.evolution import RegularizedEvolutionOracle
from keras_convnets.search.genotype import Genotype, declare_search_space


def _space(blocks=2, extra=True):
    hp = keras_tuner.HyperParameters()
    declare_search_space(hp, blocks)
    if extra:
        hp.Choice("filters", [8, 16])
        hp.Fixed("cells", 1)
    return hp


def _oracle(
    tmp_path, seed=0, population=4, sample=2, max_trials=30, screen=None, k=1, **kwargs
):
    oracle = RegularizedEvolutionOracle(
        keras_tuner.Objective("val_accuracy", "max"),
        max_trials=max_trials,
        population_size=population,
        sample_size=sample,
        seed=seed,
        hyperparameters=_space(**kwargs),
        screen=screen,
        screen_candidates=k,
    )
    oracle._set_project_dir(str(tmp_path), f"evo{seed}")
    oracle.verbose = 0
    return oracle


def _score(values):
    """A deterministic fitness: counts separable convs in the genotype."""
    return sum(str(v).startswith("sep_conv") for v in values.values()) / 10 + 0.01


def _run(oracle, n, tuner_id="tuner0"):
    trials = []
    for _ in range(n):
        trial = oracle.create_trial(tuner_id)
        assert trial.status == trial_module.TrialStatus.RUNNING
        oracle.update_trial(
            trial.trial_id, {"val_accuracy": _score(trial.hyperparameters.values)}
        )
        trial.status = trial_module.TrialStatus.COMPLETED
        oracle.end_trial(trial)
        trials.append(oracle.get_trial(trial.trial_id))
    return trials


def _diff(a, b):
    return sorted(k for k in a if a[k] != b.get(k))


def test_population_is_the_most_recent_completed_trials(tmp_path):
    oracle = _oracle(tmp_path, population=4)
    trials = _run(oracle, 7)
    assert [t.trial_id for t in oracle.population()] == [
        t.trial_id for t in trials[-4:]
    ]


def test_children_differ_from_a_population_member_in_one_choice(tmp_path):
    oracle = _oracle(tmp_path, population=4, sample=2)
    first = _run(oracle, 4)
    assert len({tuple(sorted(t.hyperparameters.values.items())) for t in first}) == 4
    kinds = set()
    for _ in range(12):
        population = {t.trial_id: t.hyperparameters.values for t in oracle.population()}
        (child,) = _run(oracle, 1)
        values = child.hyperparameters.values
        diffs = [_diff(values, parent) for parent in population.values()]
        one = [d for d in diffs if len(d) == 1]
        assert one, diffs
        name = one[0][0]
        kinds.add("op" if "_op_" in name else "input" if "_input_" in name else name)
        assert Genotype.from_hyperparameters(values)  # still valid
        assert values["cells"] == 1  # fixed values never mutate
    assert {"op", "input"} <= kinds


def test_tournament_selects_the_best_of_the_sample(tmp_path):
    oracle = _oracle(tmp_path, population=5, sample=5)
    _run(oracle, 5)
    population = oracle.population()
    parent = oracle.select_parent(population, random.Random(0))
    assert parent.score == max(t.score for t in population)
    oracle.sample_size = 1
    picked = {
        oracle.select_parent(population, random.Random(s)).trial_id for s in range(40)
    }
    assert len(picked) > 1  # a sample of one is a random member


def test_mutation_changes_exactly_one_value_seeded(tmp_path):
    oracle = _oracle(tmp_path, extra=False)
    values = Genotype.random(2, seed=3).to_hyperparameters().values
    a = oracle.mutate(values, random.Random(7))
    b = oracle.mutate(values, random.Random(7))
    assert a == b and len(_diff(a, values)) == 1
    inputs = [k for k in _diff(a, values) if "_input_" in k]
    for key in inputs:
        block = int(key.split("_")[1])
        assert 0 <= a[key] < 2 + block


def test_same_seed_same_search(tmp_path):
    runs = []
    for directory in ("a", "b"):
        oracle = _oracle(tmp_path / directory, seed=5, population=3, sample=2)
        runs.append([t.hyperparameters.values for t in _run(oracle, 8)])
    assert runs[0] == runs[1]


def test_state_survives_reload(tmp_path):
    oracle = _oracle(tmp_path, seed=1, population=3, sample=2)
    _run(oracle, 5)
    again = _oracle(tmp_path, seed=1, population=99, sample=1)
    again.reload()
    assert (again.population_size, again.sample_size) == (3, 2)
    assert [t.trial_id for t in again.population()] == [
        t.trial_id for t in oracle.population()
    ]


def test_screening_trains_the_best_scored_of_k_candidates(tmp_path):
    """With K candidates per trial, the screen sees K distinct candidates
    (random ones while the population fills, children after) and the trial
    gets the one it scores highest; K = 1 never calls it and searches as
    without a screen."""
    seen = []

    def score(values):
        return _score(values) + random.Random(str(sorted(values.items()))).random()

    def screen(values):
        seen.append(dict(values))
        return score(values)

    oracle = _oracle(tmp_path / "k", seed=2, population=3, sample=2, screen=screen, k=4)
    for i in range(7):
        seen.clear()
        population = [t.hyperparameters.values for t in oracle.population()]
        (trial,) = _run(oracle, 1)
        values = trial.hyperparameters.values
        assert len(seen) == 4 and len({str(sorted(v.items())) for v in seen}) == 4
        assert values == max(seen, key=score), i
        if i >= 3:  # children: one choice away from a living member
            assert all(any(len(_diff(c, p)) == 1 for p in population) for c in seen)

    def never(values):
        raise AssertionError("K = 1 must not screen")

    plain = _oracle(tmp_path / "a", seed=5, population=3)
    one = _oracle(tmp_path / "b", seed=5, population=3, screen=never, k=1)
    assert [t.hyperparameters.values for t in _run(plain, 8)] == [
        t.hyperparameters.values for t in _run(one, 8)
    ]


def test_hypermodel_screen_score_is_synflow_of_the_trial_network():
    import keras

    from keras_convnets.models.nas_cell_net import build_from_genotype
    from keras_convnets.search.hypermodel import CellHyperModel
    from keras_convnets.search.zero_cost import synflow_score

    genotype = Genotype.random(1, seed=4)
    values = {**genotype.to_hyperparameters().values, "filters": 4}
    hypermodel = CellHyperModel((28, 28, 1), 10, blocks=1, filters=(4, 8), seed=3)
    score = hypermodel.screen_score(values)
    assert score == hypermodel.screen_score(values)  # seeded
    keras.utils.set_random_seed(3)
    model = build_from_genotype(
        genotype, (28, 28, 1), 10, cells=1, filters=4, cell_norm="none", stem_stride=2
    )
    assert score == pytest.approx(synflow_score(model), rel=1e-6)
    wider = hypermodel.screen_score({**values, "filters": 8})
    assert wider > score  # SynFlow grows with width


def test_bad_sizes_raise():
    with pytest.raises(ValueError, match="sample_size"):
        RegularizedEvolutionOracle("val_accuracy", population_size=2, sample_size=3)
    with pytest.raises(ValueError, match="screen_candidates"):
        RegularizedEvolutionOracle("val_accuracy", screen_candidates=0)
    with pytest.raises(ValueError, match="population_size"):
        RegularizedEvolutionOracle("val_accuracy", population_size=0, sample_size=1)

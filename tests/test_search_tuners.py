"""Searches on a tiny real subset: every tuner, outputs, resume after interruption."""

from __future__ import annotations

import csv
import json
import os
from dataclasses import replace

import keras
import keras_tuner
import pytest

from keras_convnets.search.genotype import Genotype, load_genotype
from keras_convnets.search.hypermodel import CellHyperModel, proxy_bn_momentum
from keras_convnets.search.runner import (
    SearchConfig,
    read_config_file,
    resolve_search_config,
    run_search,
)


def _config(tmp_path, data_dir, **overrides):
    values = dict(
        max_trials=2,
        blocks=1,
        cells=(0,),  # no normal cells: the smallest trial model
        filters=(4,),
        proxy_epochs=1,
        proxy_fraction=0.185,  # 200 of the 1,080 training images
        batch_size=100,
        run_eagerly=True,
        isolate_trials=False,  # in-process: cheaper (tests of the default below)
        data_dir=data_dir,
        directory=str(tmp_path),
        population_size=1,
        sample_size=1,
        initial_points=1,
    )
    values.update(overrides)
    return SearchConfig(**values).validate()


def test_hypermodel_defaults_and_pinned_values():
    hypermodel = CellHyperModel((28, 28, 1), 10, blocks=1, filters=(4, 8), cells=(0,))
    hp = keras_tuner.HyperParameters()
    model = hypermodel.build(hp)
    assert hp.get("filters") == 4 and hp.get("cells") == 0
    assert hp.get("augment") == "none" and hp.get("learning_rate") == 2e-3
    assert model.output.shape[-1] == 10
    hp = keras_tuner.HyperParameters()
    hp.Fixed("filters", 8)
    hp.Fixed("normal_0_op_a", "max_pool_3x3")
    model = hypermodel.build(hp)
    assert model.get_layer("stem_conv").filters == 8
    assert hypermodel.genotype(hp).normal[0].op_a == "max_pool_3x3"


def test_proxy_batch_norm_momentum_forgets_the_initial_statistics():
    # Keras's 0.99 keeps ~80% of the initial moving mean/variance after 22
    # steps, so a short proxy scored chance whatever the cell.
    for steps in (1, 9, 22, 43, 200):
        momentum = proxy_bn_momentum(steps)
        assert 0 <= momentum <= 0.99
        assert momentum ** (steps / 2) <= 0.01 + 1e-9
    assert proxy_bn_momentum(10_000) == 0.99
    hypermodel = CellHyperModel(
        (28, 28, 1), 10, blocks=1, epochs=1, steps_per_epoch=22, cell_norm="batch"
    )
    model = hypermodel.build(keras_tuner.HyperParameters())
    norms = [
        layer
        for layer in model.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert norms and all(n.momentum == proxy_bn_momentum(22) for n in norms)


def test_trial_state_is_built_before_the_train_function_is_traced():
    # Keras's TF trainer creates optimizer slots and metric variables inside
    # the first trace; their lifted initializers kept every trial's train
    # graph alive (~150 MB per cell-net trial). The hypermodel builds them
    # eagerly first, so no initializer `cond` graph is traced at all.
    import gc

    import numpy as np
    import tensorflow as tf
    from tensorflow.python.framework import func_graph

    def cond_graphs():
        gc.collect()
        return sum(
            isinstance(o, func_graph.FuncGraph) and "_cond_" in o.name
            for o in gc.get_objects()
        )

    rng = np.random.default_rng(0)
    x = rng.random((32, 28, 28, 1), dtype=np.float32)
    y = keras.utils.to_categorical(rng.integers(0, 10, 32), 10)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    hypermodel = CellHyperModel(
        (28, 28, 1), 10, blocks=1, filters=(4,), steps_per_epoch=2, run_eagerly=False
    )
    before = cond_graphs()
    model = hypermodel.build(keras_tuner.HyperParameters())
    assert not model.optimizer.built
    metrics = hypermodel.fit(
        keras_tuner.HyperParameters(),
        model,
        data,
        validation_data=data,
        epochs=1,
        verbose=0,
    )
    assert model.optimizer.built and 0 <= metrics["val_accuracy"] <= 1
    assert cond_graphs() == before


# Random search is the other tests' tuner (resume, stacking); its own run here
# is in `make test-slow`.
@pytest.mark.parametrize(
    "tuner",
    [
        pytest.param("random", marks=pytest.mark.slow),
        "evolution",
        pytest.param("hyperband", marks=pytest.mark.slow),
        "bayesian",
    ],
)
def test_search_writes_outputs(tmp_path, small_fashion_dir, tuner):
    if tuner == "bayesian":
        pytest.importorskip("scipy")
        pytest.importorskip("sklearn")
    extra = {}
    if tuner == "hyperband":  # two 1-epoch trials in the first round
        extra = dict(proxy_epochs=2, hyperband_factor=2)
    if tuner == "evolution":  # with SynFlow screening of 3 candidates per trial
        extra = dict(screen_candidates=3)
    config = _config(tmp_path, small_fashion_dir, tuner=tuner, **extra)
    record = run_search(config, verbose=0)
    project = tmp_path / f"{tuner}-fashion_mnist"
    assert record["project_dir"] == str(project)
    assert record["trials"] == 2 and record["completed"] == 2
    best = load_genotype(str(project / "best_genotype.json"))
    assert isinstance(best, Genotype) and best.blocks == 1
    data = json.loads((project / "best_genotype.json").read_text())
    assert data["search"]["val_accuracy"] == record["best"]["val_accuracy"]
    with open(project / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["trial_id"] for r in rows] == ["0", "1"]
    for r in rows:
        assert r["status"] == "COMPLETED"
        assert 0 <= float(r["val_accuracy"]) <= 1
        assert int(r["params"]) > 0 and int(r["flops"]) > 0
        assert float(r["seconds"]) >= float(r["fit_seconds"]) > 0
        assert Genotype.from_json(r["genotype"])
    summary = (project / "summary.md").read_text()
    assert "keras-convnets train --genotype" in summary
    for png in ("normal_cell.png", "reduce_cell.png"):
        assert (project / png).read_bytes()[:4] == b"\x89PNG"
    # TensorBoard: one folder per trial, with the HParams plugin's data
    logs = project / "logs"
    assert sorted(os.listdir(logs)) == ["0", "1"]
    if tuner == "hyperband":
        assert {r["epochs"] for r in rows} == {"1"}


class _Interrupt(keras.callbacks.Callback):
    """Raises KeyboardInterrupt in the N-th fit (class-level: survives deepcopy)."""

    fits = []
    at = None

    def on_train_begin(self, logs=None):
        _Interrupt.fits.append(1)
        if len(_Interrupt.fits) == _Interrupt.at:
            raise KeyboardInterrupt("test interrupt")


# Slow: test_search_state kills real searches and resumes them in `make test`.
@pytest.mark.slow
def test_resume_after_interruption(tmp_path, small_fashion_dir):
    config = _config(tmp_path, small_fashion_dir, tuner="evolution", max_trials=3)
    project = tmp_path / "evolution-fashion_mnist"
    _Interrupt.fits, _Interrupt.at = [], 2
    with pytest.raises(KeyboardInterrupt):
        run_search(config, callbacks=[_Interrupt()], verbose=0)
    trial0 = (project / "trial_0" / "trial.json").read_text()
    assert json.loads(trial0)["status"] == "COMPLETED"
    assert (
        json.loads((project / "trial_1" / "trial.json").read_text())["status"]
        == "RUNNING"
    )

    _Interrupt.fits, _Interrupt.at = [], None
    record = run_search(config, callbacks=[_Interrupt()], verbose=0)
    # trial 0 is kept, trial 1 retried, trial 2 new: two fits, three trials
    assert len(_Interrupt.fits) == 2
    assert record["trials"] == 3 and record["completed"] == 3
    assert (project / "trial_0" / "trial.json").read_text() == trial0
    for trial_id in "012":
        runs = json.loads((project / f"trial_{trial_id}" / "runs.json").read_text())
        assert len(runs) == 1  # every trial ran to completion exactly once

    # Same command again: nothing left to do. A bigger budget continues.
    _Interrupt.fits = []
    assert run_search(config, verbose=0)["trials"] == 3 and not _Interrupt.fits
    bigger = _config(tmp_path, small_fashion_dir, tuner="evolution", max_trials=4)
    assert run_search(bigger, callbacks=[_Interrupt()], verbose=0)["trials"] == 4
    assert len(_Interrupt.fits) == 1

    # A different search in the same project is refused, naming what differs.
    other = _config(tmp_path, small_fashion_dir, tuner="evolution", blocks=2)
    with pytest.raises(ValueError, match="differs in: blocks"):
        run_search(other, verbose=0)


def test_config_file_and_flags(tmp_path):
    path = tmp_path / "search.yaml"
    path.write_text(
        "tuner: random\nfilters: [8, 16]\nproxy-epochs: 3\naugment: none,flip\n"
    )
    values = read_config_file(str(path))
    config = resolve_search_config(values, {"proxy_epochs": 1, "cells": "1,2"})
    assert config.tuner == "random" and config.filters == (8, 16)
    assert config.proxy_epochs == 1 and config.cells == (1, 2)
    assert config.augment == ("none", "flip")
    assert config.project_dir == os.path.join("tuning", "random-fashion_mnist")
    path.write_text("filterz: [8]\n")
    with pytest.raises(ValueError, match="did you mean 'filters'"):
        read_config_file(str(path))
    with pytest.raises(ValueError, match="proxy_fraction"):
        resolve_search_config({}, {"proxy_fraction": 1.5})
    with pytest.raises(ValueError, match="both an oracle address and a tuner id"):
        resolve_search_config({}, {"tuner_id": "worker0"})
    with pytest.raises(ValueError, match="HOST:PORT"):
        resolve_search_config({}, {"tuner_id": "chief", "oracle_address": "localhost"})


# Slow: a search plus three budget builds of a stacked net (25 s on 2 cores);
# test_nas_cell_net checks the budget and the cell norm in `make test`.
@pytest.mark.slow
def test_cell_norm_and_final_stacking_reach_train(tmp_path, small_fashion_dir):
    # The searched normalization and the parameter budget are recorded in
    # best_genotype.json, so the model `train --genotype` builds is the one
    # the search stacked.
    from keras_convnets.models import get_model

    config = _config(
        tmp_path,
        small_fashion_dir,
        tuner="random",
        max_trials=1,
        cells=(1,),
        cell_norm="batch",
        params_budget=30_000,
    )
    record = run_search(config, verbose=0)
    path = tmp_path / "random-fashion_mnist" / "best_genotype.json"
    data = json.loads(path.read_text())
    assert data["cell_norm"] == "batch"
    assert data["stem_stride"] == 2  # the search's default, recorded
    assert data["stacking"] == record["stacking"]
    stacking = data["stacking"]
    assert stacking["params_budget"] == 30_000 and stacking["cells"] == 1
    model = get_model(
        "nas_cell_net",
        (28, 28, 1),
        10,
        genotype=str(path),
        cells=stacking["cells"],
        params_budget=30_000,
    )
    assert model.count_params() == stacking["params"] <= 30_000
    assert any(isinstance(x, keras.layers.BatchNormalization) for x in model.layers)
    assert model.get_layer("stem_conv").strides == (2, 2)
    summary = (tmp_path / "random-fashion_mnist" / "summary.md").read_text()
    assert "--cells 1 --params-budget 30000" in summary
    assert "stem_stride 2" in summary


def test_a_project_from_before_cell_norm_resumes_only_with_batch_norm(tmp_path):
    from keras_convnets.search.runner import _check_resume

    config = SearchConfig(directory=str(tmp_path), project="old", screen_candidates=1)
    os.makedirs(config.project_dir)
    old = config.to_dict()
    del old["cell_norm"]  # written before cell_norm existed: BatchNorm cells
    del old["stem_stride"]  # ... and before stem_stride: stride 1
    del old["screen_candidates"]  # ... and before screening: none
    del old["isolate_trials"]  # a run setting: not compared
    (tmp_path / "old" / "search_config.json").write_text(json.dumps(old))
    with pytest.raises(ValueError, match="differs in: cell_norm, stem_stride"):
        _check_resume(config)
    with pytest.raises(ValueError, match="differs in: stem_stride"):
        _check_resume(replace(config, cell_norm="batch"))
    assert _check_resume(replace(config, cell_norm="batch", stem_stride=1))
    with pytest.raises(ValueError, match="differs in: screen_candidates"):
        _check_resume(
            replace(config, cell_norm="batch", stem_stride=1, screen_candidates=4)
        )  # today's default screens: an old project resumes only without


# Slow: 25 s on 2 cores; `benchmarks/search.py --parts memory` measures the same
# leak over 50 trials.
@pytest.mark.slow
def test_no_trial_model_or_traced_graph_outlives_its_trial(
    tmp_path, small_fashion_dir, monkeypatch
):
    # Trials in the search's own process (isolate_trials=False), eager: a
    # trial's model and optimizer are freed when it ends and no traced graph
    # is left behind, so RSS stays flat over a long search
    # (`benchmarks/search.py --parts memory`). In graph mode TensorFlow keeps
    # each trial's traced train graph: the graph count grows by one or more
    # per trial and this test fails.
    import gc
    import weakref

    from tensorflow.python.framework import func_graph

    built = []
    original = CellHyperModel.build

    def build(self, hp):
        model = original(self, hp)
        built.append((weakref.ref(model), weakref.ref(model.optimizer)))
        return model

    monkeypatch.setattr(CellHyperModel, "build", build)
    graphs = []

    def at_trial_end(tuner):
        gc.collect()
        assert all(m() is None and o() is None for m, o in built)
        graphs.append(
            sum(isinstance(o, func_graph.FuncGraph) for o in gc.get_objects())
        )

    config = _config(tmp_path, small_fashion_dir, tuner="random", max_trials=3)
    assert not config.isolate_trials and config.run_eagerly
    run_search(config, verbose=0, on_trial_end=at_trial_end)
    assert len(graphs) == 3 and len(built) >= 3  # KerasTuner builds once first
    assert graphs[2] == graphs[1], graphs


# Slow: 54 s in `make test` (three trial processes); test_search_cli runs the
# default (a trial in its own process) end to end.
@pytest.mark.slow
def test_default_trials_run_in_their_own_processes_hyperband_included(
    tmp_path, small_fashion_dir
):
    """The default (each trial in a fresh process, graph mode) with Hyperband:
    its third trial continues the better first-round trial from that trial's
    checkpoint, in a process of its own. Each trial's process wrote its
    checkpoint and build config; the search's own process traces no graph
    from one trial to the next (what keeps its memory flat)."""
    import gc

    from tensorflow.python.framework import func_graph

    graphs = []

    def at_trial_end(tuner):
        gc.collect()
        graphs.append(
            sum(isinstance(o, func_graph.FuncGraph) for o in gc.get_objects())
        )

    config = _config(tmp_path, small_fashion_dir, tuner="hyperband", max_trials=3)
    defaults = SearchConfig()
    config = replace(
        config,
        isolate_trials=defaults.isolate_trials,
        run_eagerly=defaults.run_eagerly,
        proxy_epochs=2,
        hyperband_factor=2,
    )
    assert config.isolate_trials and not config.run_eagerly
    record = run_search(config, verbose=0, on_trial_end=at_trial_end)
    assert record["completed"] == 3 and graphs[2] == graphs[0], graphs
    project = tmp_path / config.project_name
    pids = set()
    for trial in ("0", "1", "2"):
        (run,) = json.loads((project / f"trial_{trial}" / "runs.json").read_text())
        assert run["pid"] == os.getpid() and run["trial_process"]["cpu_s"] > 0
        pids.add(run["trial_process"]["pid"])
        assert (project / f"trial_{trial}" / "build_config.json").exists()
    assert len(pids) == 3 and os.getpid() not in pids
    values = json.loads((project / "trial_2" / "trial.json").read_text())
    values = values["hyperparameters"]["values"]
    assert values["tuner/initial_epoch"] == 1 and values["tuner/trial_id"] in "01"

"""Running a cell search: the job (project, resume, proxy data, the loop).

`run_search(config)` loads the proxy data, builds the `CellHyperModel` and the
chosen KerasTuner tuner (`random`, `hyperband`, `bayesian`, or `evolution`,
our `RegularizedEvolutionOracle`), and searches into
`config.directory/config.project/`:

    search_config.json   the resolved config (what must match to resume)
    oracle.json, tuner0.json, trial_*/   KerasTuner's own project files
    trial_*/runs.json    which tuner ran the trial, and how long it took
    logs/                TensorBoard, one folder per trial, HParams dashboard
    best_genotype.json   the best trial's genotype, hyperparameters, scores
    trials.csv           one row per trial
    summary.md           the best cells, as text, and the top trials
    normal_cell.png, reduce_cell.png   diagrams of the best cells

KerasTuner reloads an existing project (`overwrite=False`), so rerunning the
same search resumes it: completed trials are kept, a trial that was running is
retried, and `max_trials` counts every trial that ever started.

The parts live beside it: `search/config.py` (`SearchConfig`),
`search/tuners.py`, `search/distribution.py` and `search/reports.py`; their
public names are importable from here too, as before the split.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import time

import keras

from keras_convnets.errors import UserInputError
from keras_convnets.search import state
from keras_convnets.search.config import (  # noqa: F401 (re-exported)
    TUNERS,
    SearchConfig,
    check_values,
    parse_address,
    read_config_file,
    resolve_search_config,
)
from keras_convnets.search.distribution import (  # noqa: F401 (re-exported)
    distributed_env,
    serve_oracle,
    wait_for_chief,
)
from keras_convnets.search.hypermodel import CellHyperModel
from keras_convnets.search.reports import (  # noqa: F401 (re-exported)
    load_trials,
    read_runs,
    write_reports,
)
from keras_convnets.search.tuners import (  # noqa: F401 (re-exported)
    CellBayesianOptimization,
    CellHyperband,
    CellRandomSearch,
    RegularizedEvolution,
    make_tuner,
)
from keras_convnets.training import io


def _check_resume(config: SearchConfig) -> bool:
    """Whether the project exists; refuses one of a different search."""
    path = os.path.join(config.project_dir, "search_config.json")
    if not os.path.exists(path):
        return False
    state.check_state_files(config.project_dir)
    stored = state.read_state_json(path)
    stored_identity = {k: v for k, v in stored.items() if k not in config.RUN_FIELDS}
    # Searches before cell_norm existed had BatchNorm in every cell.
    stored_identity.setdefault("cell_norm", "batch")
    # ... and a stem of stride 1.
    stored_identity.setdefault("stem_stride", 1)
    # ... and no candidate screening.
    stored_identity.setdefault("screen_candidates", 1)
    identity = config.identity()
    if stored_identity != identity:
        differs = sorted(k for k in identity if identity[k] != stored_identity.get(k))
        raise UserInputError(
            f"{config.project_dir} holds a search with different settings "
            f"(differs in: {', '.join(differs)}); rerun with the same settings to "
            f"resume it, or pass --overwrite or another --project."
        )
    return True


def _clear_project(project_dir: str) -> None:
    for name in os.listdir(project_dir):
        if name == ".lock":
            continue
        path = os.path.join(project_dir, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        else:
            os.remove(path)


@contextlib.contextmanager
def _project_lock(config: SearchConfig):
    try:
        with io.run_lock(config.project_dir):
            yield
    except UserInputError as e:
        if "another process" not in str(e).lower():
            raise
        raise UserInputError(
            f"Another search is running in {config.project_dir}; wait for it, or "
            f"join it as a worker (--oracle-address, --tuner-id), or choose another "
            f"--project."
        ) from None


def run_search(
    config: SearchConfig,
    callbacks=None,
    verbose=1,
    worker_wait_seconds: float = 120.0,
    on_trial_end=None,
) -> dict:
    """Runs (or resumes, or joins) an architecture search.

    Args:
        config: SearchConfig. The resolved configuration.
        callbacks: list of Keras callbacks for every trial's `fit` (deep-copied
            per trial by KerasTuner).
        verbose: Keras `fit` and KerasTuner verbosity. Defaults to 1.
        worker_wait_seconds: float. How long a worker waits for its chief.
        on_trial_end: callable. Called with the tuner after each trial this
            process ran (after the reports are updated). An exception it
            raises stops the search, with the finished trial saved.

    Returns:
        The search record (`write_reports` output) for a single process or the
        chief; for a worker, `{"tuner_id": ..., "trials_run": n}`.

    Example:

    ```python
    config = SearchConfig(tuner="evolution", max_trials=10, proxy_fraction=0.05)
    record = run_search(config)
    print(record["best"]["val_accuracy"], record["paths"]["best_genotype"])
    ```
    """
    config.validate()
    worker = config.tuner_id is not None and config.tuner_id != "chief"
    lock = contextlib.nullcontext() if worker else _project_lock(config)
    with distributed_env(config), lock:
        if worker:
            _check_resume(config)
            wait_for_chief(worker_wait_seconds)
        else:
            os.makedirs(config.project_dir, exist_ok=True)
            if config.overwrite:
                _clear_project(config.project_dir)
            elif _check_resume(config):
                print(f"Resuming the search in {config.project_dir}", flush=True)
            state.write_json(
                os.path.join(config.project_dir, "search_config.json"), config.to_dict()
            )
        train, validation, info = proxy_data(config)
        hypermodel = make_hypermodel(config, info)
        keras.utils.set_random_seed(config.seed)
        tuner = make_tuner(config, hypermodel)
        tuner.search_config = config  # for trials in their own process

        def trial_end_hook(tuner):
            if config.tuner_id is None:
                write_reports(config.project_dir)
            if on_trial_end is not None:
                on_trial_end(tuner)

        tuner.trial_end_hook = trial_end_hook
        tensorboard = keras.callbacks.TensorBoard(
            os.path.join(config.project_dir, "logs"), write_graph=False
        )
        start = time.time()
        tuner.search(
            train,
            validation_data=validation,
            epochs=config.proxy_epochs,
            callbacks=[tensorboard, *(callbacks or [])],
            verbose=verbose,
            shuffle=False,  # the pipeline shuffles, seeded
        )
        if worker:
            ran = sum(
                1
                for name in os.listdir(config.project_dir)
                if name.startswith("trial_")
                and any(
                    r["tuner_id"] == config.tuner_id
                    for r in read_runs(os.path.join(config.project_dir, name))
                )
            )
            return {"tuner_id": config.tuner_id, "trials_run": ran}
        record = write_reports(config.project_dir)
        if record["best"] is not None and config.params_budget is not None:
            stacking = final_stacking(config, info, record["best"])
            record = write_reports(config.project_dir, stacking=stacking)
        record["wall_time_s"] = round(time.time() - start, 2)
        return record


def final_stacking(config: SearchConfig, info, best: dict) -> dict:
    """N and F of the network the best cell is trained in after the search.

    N is the best trial's; with `config.params_budget`, F is the widest whose
    network has at most that many parameters on the searched dataset
    (`models.nas_cell_net.filters_for_budget`), else the trial's F.
    """
    from keras_convnets.models.nas_cell_net import count_params, filters_for_budget

    cells = best["cells"] if best["cells"] is not None else 1
    stacking = {
        "cells": cells,
        "filters": best["filters"] if best["filters"] is not None else 16,
        "params_budget": config.params_budget,
        "params": None,
    }
    if config.params_budget is not None:
        args = (best["genotype"], info.image_shape, info.num_classes, cells)
        f = filters_for_budget(*args, config.params_budget, config.cell_norm)
        stacking.update(filters=f, params=int(count_params(*args, f, config.cell_norm)))
    return stacking


def make_hypermodel(config: SearchConfig, info) -> CellHyperModel:
    """The search's `CellHyperModel` on the proxy data `info` describes."""
    return CellHyperModel(
        info.image_shape,
        info.num_classes,
        blocks=config.blocks,
        cells=config.cells,
        filters=config.filters,
        learning_rate=config.learning_rate,
        augment=config.augment,
        epochs=config.proxy_epochs,
        steps_per_epoch=math.ceil(info.sizes["train"] / config.batch_size),
        seed=config.seed,
        run_eagerly=config.run_eagerly,
        cell_norm=config.cell_norm,
        stem_stride=config.stem_stride,
    )


def proxy_data(config: SearchConfig):
    """The proxy task's `(train, validation, info)`, seeded by `config`."""
    from keras_convnets.data.pipelines import make_datasets

    train, validation, _, info = make_datasets(
        config.dataset,
        data_dir=config.data_dir,
        tfds_data_dir=config.tfds_data_dir,
        validation_fraction=config.validation_fraction,
        train_fraction=config.proxy_fraction,
        batch_size=config.batch_size,
        seed=config.seed,
    )
    return train, validation, info

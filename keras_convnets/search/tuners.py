"""The search's KerasTuner tuners: random, Hyperband, Bayesian, evolution.

Each is KerasTuner's own tuner with `_CellTunerMixin` in front: per-trial
timing and `runs.json`, each trial in its own process by default
(`search/trial_process.py`), memory freed after each trial, the chief serving
the oracle, and state files that survive a kill at any moment
(`search/state.py`).
"""

from __future__ import annotations

import functools
import gc
import os
import time

import keras
import keras_tuner
from keras_tuner.src.engine import tuner_utils

from keras_convnets.errors import UserInputError
from keras_convnets.search import state
from keras_convnets.search.config import SearchConfig
from keras_convnets.search.distribution import serve_oracle
from keras_convnets.search.evolution import RegularizedEvolutionOracle
from keras_convnets.search.hypermodel import objective
from keras_convnets.training import io


class _CellTunerMixin:
    """What every search tuner adds to KerasTuner's: timing, memory, chief,
    and state that survives a kill at any moment (see `search/state.py`)."""

    # Called with the tuner after each finished trial (single-process mode).
    trial_end_hook = None
    # The search's SearchConfig (`run_search` sets it); with `isolate_trials`,
    # each trial is built and trained in its own process.
    search_config = None
    # CPU seconds and peak memory of the last trial's process.
    last_trial_process = None

    def __init__(self, *args, **kwargs):
        state.install_atomic_writes()
        super().__init__(*args, **kwargs)

    def reload(self):
        """KerasTuner's reload, refusing damaged state with one clear line.

        `oracle.json` must have every field a fresh oracle of the same class
        has, of the same JSON kind, and KerasTuner must accept it; trials it
        names must exist. A trial created just before a kill, that the oracle
        never recorded, is forgotten (`state.drop_orphan_trials`); one that
        completed just before a kill is ended, not trained again
        (`state.finish_completed_trials`).
        """
        if self._is_worker():
            return super().reload()
        path = self.oracle._get_oracle_fname()
        template = self.oracle.get_state()
        if os.path.exists(path):
            state.check_oracle_state(path, state.read_state_json(path), template)
        try:
            super().reload()
        except UserInputError:
            raise
        except Exception as e:  # a shape KerasTuner cannot use
            cause = e.__cause__ or e  # KerasTuner wraps a KeyError in its own
            raise state.corrupt(path, f"{type(cause).__name__}: {cause}") from None
        state.check_oracle_trials(path, self.oracle)
        state.drop_orphan_trials(self.oracle)
        state.finish_completed_trials(self.oracle)

    def on_search_begin(self):
        super().on_search_begin()
        # KerasTuner reloads a project only if `tuner0.json` exists, and first
        # writes it after the first trial: a kill just after the oracle ended
        # trial 0 would start the search afresh and train trial 0 again.
        if not self._is_worker():
            self.save()

    def _build_and_fit_model(self, trial, *args, **kwargs):
        if self.search_config is not None and self.search_config.isolate_trials:
            from keras_convnets.search.trial_process import run_trial_in_process

            results = run_trial_in_process(self, trial, kwargs)
            tuner_utils.validate_trial_results(
                results, self.oracle.objective, "HyperModel.fit()"
            )
            return results
        # KerasTuner's best-epoch checkpoint writes weights in place.
        for callback in kwargs.get("callbacks") or []:
            if isinstance(callback, tuner_utils.SaveBestEpoch):
                callback._save_model = functools.partial(
                    state.save_best_epoch_atomic, callback
                )
        return super()._build_and_fit_model(trial, *args, **kwargs)

    def run_trial(self, trial, *args, **kwargs):
        self.last_trial_process = None
        start = time.perf_counter()
        results = super().run_trial(trial, *args, **kwargs)
        seconds = time.perf_counter() - start
        last = results[-1] if isinstance(results, list) else results
        if isinstance(last, dict):
            last["trial_seconds"] = seconds
        runs_path = os.path.join(self.get_trial_dir(trial.trial_id), "runs.json")
        runs = io.read_json(runs_path) if os.path.exists(runs_path) else []
        run = {"tuner_id": self.tuner_id, "pid": os.getpid(), "seconds": seconds}
        if self.last_trial_process is not None:
            run["trial_process"] = self.last_trial_process
        runs.append(run)
        state.write_json(runs_path, runs)
        return results

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        # KerasTuner clears the session before building; clearing after the
        # trial as well frees the last model's graph and weights before the
        # oracle's next, possibly long, computation.
        keras.backend.clear_session()
        gc.collect()
        if self.trial_end_hook is not None:
            self.trial_end_hook(self)

    def search(self, *fit_args, **fit_kwargs):
        from keras_tuner.src.distribute import utils as dist_utils

        if dist_utils.is_chief_oracle():
            if "verbose" in fit_kwargs:
                self.oracle.verbose = fit_kwargs["verbose"]
            self.save()
            serve_oracle(self.oracle)
            return
        return super().search(*fit_args, **fit_kwargs)


class CellRandomSearch(_CellTunerMixin, keras_tuner.RandomSearch):
    """KerasTuner's `RandomSearch` over the cell space."""


class CellHyperband(_CellTunerMixin, keras_tuner.Hyperband):
    """KerasTuner's `Hyperband` over the cell space (epochs are the budget)."""


class CellBayesianOptimization(_CellTunerMixin, keras_tuner.BayesianOptimization):
    """KerasTuner's `BayesianOptimization` over the cell space."""


class RegularizedEvolution(_CellTunerMixin, keras_tuner.Tuner):
    """A KerasTuner tuner driven by `RegularizedEvolutionOracle`.

    Args:
        hypermodel: `HyperModel` or build function.
        objective: str or `keras_tuner.Objective`.
        max_trials: int. Trials in all.
        population_size: int. `P`. Defaults to 20.
        sample_size: int. `S`. Defaults to 5.
        seed: int. Defaults to None.
        screen: callable `values -> float`, or None: see
            `RegularizedEvolutionOracle`.
        screen_candidates: int. Candidates per trial. Defaults to 1.
        **kwargs: `keras_tuner.Tuner` arguments (`directory`,
            `project_name`, `overwrite`, ...).
    """

    def __init__(
        self,
        hypermodel=None,
        objective=None,
        max_trials=100,
        population_size=20,
        sample_size=5,
        seed=None,
        screen=None,
        screen_candidates=1,
        hyperparameters=None,
        tune_new_entries=True,
        allow_new_entries=True,
        max_retries_per_trial=0,
        max_consecutive_failed_trials=3,
        **kwargs,
    ):
        oracle = RegularizedEvolutionOracle(
            objective=objective,
            max_trials=max_trials,
            population_size=population_size,
            sample_size=sample_size,
            seed=seed,
            screen=screen,
            screen_candidates=screen_candidates,
            hyperparameters=hyperparameters,
            tune_new_entries=tune_new_entries,
            allow_new_entries=allow_new_entries,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
        )
        super().__init__(oracle, hypermodel, **kwargs)


def make_tuner(config: SearchConfig, hypermodel, **kwargs):
    """The KerasTuner tuner `config.tuner` names, over `hypermodel`."""
    common = dict(
        objective=objective(),
        seed=config.seed,
        directory=config.directory,
        project_name=config.project_name,
        overwrite=False,
        **kwargs,
    )
    if config.tuner == "random":
        return CellRandomSearch(hypermodel, max_trials=config.max_trials, **common)
    if config.tuner == "evolution":
        return RegularizedEvolution(
            hypermodel,
            max_trials=config.max_trials,
            population_size=config.population_size,
            sample_size=config.sample_size,
            screen=getattr(hypermodel, "screen_score", None),
            screen_candidates=config.screen_candidates,
            **common,
        )
    if config.tuner == "bayesian":
        try:
            import scipy  # noqa: F401
            import sklearn  # noqa: F401
        except ImportError:
            raise UserInputError(
                "--tuner bayesian needs scipy and scikit-learn: "
                "pip install 'keras-tuner[bayesian]'."
            ) from None
        return CellBayesianOptimization(
            hypermodel,
            max_trials=config.max_trials,
            num_initial_points=config.initial_points,
            **common,
        )
    tuner = CellHyperband(
        hypermodel,
        max_epochs=config.proxy_epochs,
        factor=config.hyperband_factor,
        **common,
    )
    # Hyperband's budget is epochs; cap the number of trials too.
    tuner.oracle.max_trials = config.max_trials
    return tuner

"""Running a cell search: config, tuners, resume, distribution, reports.

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
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import gc
import io as _io
import math
import os
import shutil
import time
import typing
from dataclasses import dataclass, replace

import keras
import keras_tuner
from keras_tuner.engine import trial as trial_module
from keras_tuner.src.engine import tuner_utils

from keras_convnets.errors import UserInputError
from keras_convnets.search import state
from keras_convnets.search.evolution import RegularizedEvolutionOracle
from keras_convnets.search.genotype import Genotype
from keras_convnets.search.hypermodel import OBJECTIVE, CellHyperModel, objective
from keras_convnets.training import config as _config
from keras_convnets.training import io

TUNERS = ("random", "hyperband", "bayesian", "evolution")


@dataclass(frozen=True)
class SearchConfig:
    """Everything that defines an architecture search.

    Fields not in `RUN_FIELDS` define the search: resuming a project requires
    the same values (`max_trials` may grow to extend the budget).
    """

    # --- Search --------------------------------------------------------------
    # One of TUNERS.
    tuner: str = "evolution"
    # Trials in all, counting those of earlier runs of the same project.
    max_trials: int = 20
    # Regularized evolution: population P and tournament sample size S.
    population_size: int = 8
    sample_size: int = 3
    # Hyperband: reduction factor between rounds (epochs per bracket grow by it).
    hyperband_factor: int = 3
    # Bayesian optimization: random trials before the Gaussian process.
    initial_points: int = 3
    seed: int = 0

    # --- Search space ----------------------------------------------------------
    # Blocks per cell, B.
    blocks: int = 3
    # Candidate values; a single value is fixed (hp.Fixed), several are searched.
    cells: tuple = (1,)
    filters: tuple = (16,)
    learning_rate: tuple = (2e-3,)
    augment: tuple = ("none",)

    # --- Proxy task ------------------------------------------------------------
    dataset: str = "fashion_mnist"
    data_dir: str | None = None
    tfds_data_dir: str | None = None
    # Seeded fraction of the training split each trial trains on.
    proxy_fraction: float = 0.1
    # Epochs per trial (Hyperband: the most epochs a trial gets).
    proxy_epochs: int = 2
    batch_size: int = 128
    # Fraction of the training split held out to score trials.
    validation_fraction: float = 0.1
    # Run fit eagerly: skips tf.function tracing, which dominates a proxy
    # trial of only a few batches on CPU (about 3x faster for 4 batches).
    run_eagerly: bool = False

    # --- Output and distribution -------------------------------------------------
    directory: str = "tuning"
    # None: `<tuner>-<dataset>`.
    project: str | None = None
    # Start the project afresh instead of resuming it.
    overwrite: bool = False
    # "HOST:PORT" of the chief oracle, for distributed search; None: one process.
    oracle_address: str | None = None
    # "chief" (serves the oracle) or "worker0", "worker1", ... (run trials).
    tuner_id: str | None = None

    RUN_FIELDS: typing.ClassVar[tuple] = (
        "max_trials",
        "run_eagerly",
        "data_dir",
        "tfds_data_dir",
        "directory",
        "project",
        "overwrite",
        "oracle_address",
        "tuner_id",
    )

    @property
    def project_name(self) -> str:
        return (
            self.project
            or f"{self.tuner}-{os.path.basename(os.path.normpath(self.dataset))}"
        )

    @property
    def project_dir(self) -> str:
        return os.path.join(self.directory, self.project_name)

    def validate(self) -> SearchConfig:
        """Raises `UserInputError` for a value out of range; returns self."""
        from keras_convnets.data.augment import list_policies

        checks = [
            (
                self.tuner in TUNERS,
                f"tuner must be one of {', '.join(TUNERS)}",
                "tuner",
            ),
            (self.max_trials >= 1, "max_trials must be >= 1", "max_trials"),
            (
                self.population_size >= 1,
                "population_size must be >= 1",
                "population_size",
            ),
            (
                1 <= self.sample_size <= self.population_size,
                "sample_size must be in [1, population_size]",
                "sample_size",
            ),
            (
                self.hyperband_factor >= 2,
                "hyperband_factor must be >= 2",
                "hyperband_factor",
            ),
            (self.initial_points >= 1, "initial_points must be >= 1", "initial_points"),
            (self.blocks >= 1, "blocks must be >= 1", "blocks"),
            (
                bool(self.cells) and min(self.cells) >= 0,
                "cells must be ints >= 0",
                "cells",
            ),
            (
                bool(self.filters) and min(self.filters) >= 1,
                "filters must be ints >= 1",
                "filters",
            ),
            (
                bool(self.learning_rate) and min(self.learning_rate) > 0,
                "learning_rate must be > 0",
                "learning_rate",
            ),
            (
                bool(self.augment) and all(p in list_policies() for p in self.augment),
                f"augment must be among {', '.join(list_policies())}",
                "augment",
            ),
            (
                0 < self.proxy_fraction <= 1,
                "proxy_fraction must be in (0, 1]",
                "proxy_fraction",
            ),
            (self.proxy_epochs >= 1, "proxy_epochs must be >= 1", "proxy_epochs"),
            (self.batch_size >= 1, "batch_size must be >= 1", "batch_size"),
            (
                0 < self.validation_fraction < 1,
                "validation_fraction must be in (0, 1): trials are scored on it",
                "validation_fraction",
            ),
        ]
        for ok, message, name in checks:
            if not ok:
                raise UserInputError(
                    f"{message}. Received: {name}={getattr(self, name)!r}"
                )
        name = self.project_name
        if not name or "/" in name or name in (".", ".."):
            raise UserInputError(
                f"project must be a plain folder name. Received: project={name!r}"
            )
        if self.tuner_id is not None and not (
            self.tuner_id == "chief" or self.tuner_id.startswith("worker")
        ):
            raise UserInputError(
                f'tuner_id must be "chief" or "worker<N>". Received: tuner_id={self.tuner_id!r}'
            )
        if (self.tuner_id is None) != (self.oracle_address is None):
            raise UserInputError(
                "A distributed search needs both an oracle address and a tuner id. "
                f"Received: oracle_address={self.oracle_address!r}, "
                f"tuner_id={self.tuner_id!r}"
            )
        if self.oracle_address is not None:
            parse_address(self.oracle_address)
        return self

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        for key in ("cells", "filters", "learning_rate", "augment"):
            d[key] = list(d[key])
        return d

    def identity(self) -> dict:
        """The fields that define the search (what must match to resume)."""
        d = self.to_dict()
        for key in self.RUN_FIELDS:
            d.pop(key)
        return d


_LIST_FIELDS = {"cells": int, "filters": int, "learning_rate": float, "augment": str}


def check_values(values: dict, where: str) -> dict:
    """Checks and converts `{field: value}` from a file or flags."""
    return _config.check_values(
        values,
        where,
        schema=SearchConfig,
        list_fields=_LIST_FIELDS,
        label="search config",
    )


def read_config_file(path: str) -> dict:
    """Reads a YAML or JSON search config (fields of `SearchConfig`)."""
    return _config.read_config_file(
        path, schema=SearchConfig, list_fields=_LIST_FIELDS, label="search config"
    )


def resolve_search_config(
    file_values: dict | None = None, flag_values: dict | None = None
) -> SearchConfig:
    """Defaults < config file < flags, validated."""
    merged = {
        **(file_values or {}),
        **check_values(dict(flag_values or {}), "command line"),
    }
    return replace(SearchConfig(), **merged).validate()


def parse_address(address: str) -> tuple[str, int]:
    """`HOST:PORT` (or `:PORT`, `PORT`: loopback) to `(host, port)`."""
    host, _, port = str(address).rpartition(":")
    try:
        port = int(port)
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        raise UserInputError(
            f"oracle address must be HOST:PORT with a port in 1..65535. "
            f"Received: oracle_address={address!r}"
        )
    return host.strip("[]") or "127.0.0.1", port


# ----------------------------------------------------------------------------
# Tuners.


def _save_checkpoint(callback) -> None:
    state.save_weights_atomic(callback.model, callback.filepath)


class _CellTunerMixin:
    """What every search tuner adds to KerasTuner's: timing, memory, chief,
    and state that survives a kill at any moment (see `search/state.py`)."""

    # Called with the tuner after each finished trial (single-process mode).
    trial_end_hook = None

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
        # KerasTuner's best-epoch checkpoint writes weights in place.
        for callback in kwargs.get("callbacks") or []:
            if isinstance(callback, tuner_utils.SaveBestEpoch):
                callback._save_model = functools.partial(_save_checkpoint, callback)
        return super()._build_and_fit_model(trial, *args, **kwargs)

    def run_trial(self, trial, *args, **kwargs):
        start = time.perf_counter()
        results = super().run_trial(trial, *args, **kwargs)
        seconds = time.perf_counter() - start
        last = results[-1] if isinstance(results, list) else results
        if isinstance(last, dict):
            last["trial_seconds"] = seconds
        runs_path = os.path.join(self.get_trial_dir(trial.trial_id), "runs.json")
        runs = io.read_json(runs_path) if os.path.exists(runs_path) else []
        runs.append({"tuner_id": self.tuner_id, "pid": os.getpid(), "seconds": seconds})
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


# ----------------------------------------------------------------------------
# Distribution.


@contextlib.contextmanager
def distributed_env(config: SearchConfig):
    """Sets KerasTuner's KERASTUNER_* variables for the duration of a search."""
    names = ("KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID")
    saved = {name: os.environ.get(name) for name in names}
    try:
        if config.oracle_address is not None:
            host, port = parse_address(config.oracle_address)
            os.environ.update(
                KERASTUNER_ORACLE_IP=host,
                KERASTUNER_ORACLE_PORT=str(port),
                KERASTUNER_TUNER_ID=config.tuner_id,
            )
        else:
            for name in names:
                os.environ.pop(name, None)
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def serve_oracle(oracle, poll_seconds: float = 0.2) -> None:
    """Serves `oracle` to workers over gRPC until the search is done.

    KerasTuner's own `start_server`, but binding exactly
    `KERASTUNER_ORACLE_IP` (loopback unless the user chose another address),
    failing clearly when the port is taken, and polling for the end every
    `poll_seconds` instead of every 20 seconds.
    """
    from concurrent import futures

    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    address = (
        f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}"
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    servicer = oracle_chief.OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError:
        bound = 0
    if not bound:
        raise UserInputError(f"The oracle chief cannot listen on {address} (in use?).")
    server.start()
    print(f"Oracle chief listening on {address}", flush=True)
    try:
        while not (servicer.stop_triggered and oracle_chief.exit_chief(oracle)):
            time.sleep(poll_seconds)
    finally:
        server.stop(grace=1.0)


def _wait_for_chief(timeout: float) -> None:
    import grpc

    address = (
        f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}"
    )
    channel = grpc.insecure_channel(address)
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
    except grpc.FutureTimeoutError:
        raise UserInputError(
            f"No oracle chief answered at {address} within {timeout:.0f} s; start "
            f"`keras-convnets search --tuner-id chief --oracle-address {address}` first."
        ) from None
    finally:
        channel.close()


# ----------------------------------------------------------------------------
# The job.


def _check_resume(config: SearchConfig) -> bool:
    """Whether the project exists; refuses one of a different search."""
    path = os.path.join(config.project_dir, "search_config.json")
    if not os.path.exists(path):
        return False
    state.check_state_files(config.project_dir)
    stored = state.read_state_json(path)
    stored_identity = {k: v for k, v in stored.items() if k not in config.RUN_FIELDS}
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
            _wait_for_chief(worker_wait_seconds)
        else:
            os.makedirs(config.project_dir, exist_ok=True)
            if config.overwrite:
                _clear_project(config.project_dir)
            elif _check_resume(config):
                print(f"Resuming the search in {config.project_dir}", flush=True)
            state.write_json(
                os.path.join(config.project_dir, "search_config.json"), config.to_dict()
            )
        train, validation, info = _proxy_data(config)
        hypermodel = CellHyperModel(
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
        )
        keras.utils.set_random_seed(config.seed)
        tuner = make_tuner(config, hypermodel)

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
                    for r in _read_runs(os.path.join(config.project_dir, name))
                )
            )
            return {"tuner_id": config.tuner_id, "trials_run": ran}
        record = write_reports(config.project_dir)
        record["wall_time_s"] = round(time.time() - start, 2)
        return record


def _proxy_data(config: SearchConfig):
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


# ----------------------------------------------------------------------------
# Reports.


def _read_runs(trial_dir: str) -> list:
    path = os.path.join(trial_dir, "runs.json")
    try:
        return io.read_json(path) if os.path.exists(path) else []
    except UserInputError:
        return []


def load_trials(project_dir: str) -> list[dict]:
    """Every trial of a project as a flat record, in trial-id order."""
    rows = []
    for name in sorted(os.listdir(project_dir)):
        path = os.path.join(project_dir, name, "trial.json")
        if not name.startswith("trial_") or not os.path.isfile(path):
            continue
        trial = trial_module.Trial.load(path)
        values = dict(trial.hyperparameters.values)
        try:
            genotype = Genotype.from_hyperparameters(values)
        except UserInputError:
            genotype = None

        def metric(key, trial=trial):
            if trial.metrics.exists(key):
                return trial.metrics.get_last_value(key)
            return None

        runs = _read_runs(os.path.join(project_dir, name))
        rows.append(
            {
                "trial_id": trial.trial_id,
                "status": trial.status,
                "val_accuracy": trial.score if trial.score is not None else None,
                "params": metric("params"),
                "flops": metric("flops"),
                "seconds": metric("trial_seconds"),
                "fit_seconds": metric("fit_seconds"),
                "cells": values.get("cells"),
                "filters": values.get("filters"),
                "learning_rate": values.get("learning_rate"),
                "augment": values.get("augment"),
                "epochs": values.get("tuner/epochs"),
                "tuner_ids": [r["tuner_id"] for r in runs],
                "genotype": genotype,
                "hyperparameters": values,
            }
        )
    return rows


_CSV_COLUMNS = (
    "trial_id",
    "status",
    "val_accuracy",
    "params",
    "flops",
    "seconds",
    "fit_seconds",
    "cells",
    "filters",
    "learning_rate",
    "augment",
    "epochs",
    "tuner_ids",
    "genotype",
)


def write_reports(project_dir: str) -> dict:
    """Writes `trials.csv`, `best_genotype.json`, `summary.md` and cell PNGs.

    A pure function of the project's files, so it works from any process and
    after any interruption.

    Returns:
        `{"project_dir", "trials", "completed", "best", "paths"}`, where
        `best` is None until a trial completes.
    """
    config = io.read_json(os.path.join(project_dir, "search_config.json"))
    rows = load_trials(project_dir)
    buffer = _io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(_CSV_COLUMNS)
    for row in rows:
        out = []
        for key in _CSV_COLUMNS:
            value = row[key]
            if key == "genotype":
                value = value.to_json() if value is not None else ""
            elif key == "tuner_ids":
                value = " ".join(value)
            elif isinstance(value, float) and key in ("params", "flops"):
                value = int(value)
            elif isinstance(value, float):
                value = round(value, 6)
            out.append("" if value is None else value)
        writer.writerow(out)
    paths = {
        "trials_csv": os.path.join(project_dir, "trials.csv"),
        "best_genotype": os.path.join(project_dir, "best_genotype.json"),
        "summary": os.path.join(project_dir, "summary.md"),
        "normal_png": os.path.join(project_dir, "normal_cell.png"),
        "reduce_png": os.path.join(project_dir, "reduce_cell.png"),
    }
    state.write_bytes(paths["trials_csv"], buffer.getvalue().encode("utf-8"))

    completed = [
        r
        for r in rows
        if r["status"] == trial_module.TrialStatus.COMPLETED
        and r["val_accuracy"] is not None
        and r["genotype"] is not None
    ]
    ranked = sorted(completed, key=lambda r: -r["val_accuracy"])
    record = {
        "project_dir": os.path.abspath(project_dir),
        "dataset": config["dataset"],
        "trials": len(rows),
        "completed": len(completed),
        "best": None,
        "paths": paths,
    }
    if not ranked:
        return record
    best = ranked[0]
    best_record = {
        **best["genotype"].to_dict(),
        "search": {
            "trial_id": best["trial_id"],
            "val_accuracy": best["val_accuracy"],
            "params": best["params"],
            "flops": best["flops"],
            "hyperparameters": best["hyperparameters"],
            "dataset": config["dataset"],
            "tuner": config["tuner"],
            "project": os.path.basename(os.path.normpath(project_dir)),
        },
    }
    state.write_json(paths["best_genotype"], best_record)
    from keras_convnets.search.render import plot_cell

    for cell in ("normal", "reduce"):
        plot_cell(best["genotype"], cell, paths[f"{cell}_png"])
    state.write_bytes(
        paths["summary"], _summary(project_dir, config, rows, ranked).encode("utf-8")
    )
    record["best"] = {
        k: best[k]
        for k in ("trial_id", "val_accuracy", "params", "flops", "cells", "filters")
    }
    record["best"]["genotype"] = best["genotype"].to_dict()
    return record


def _summary(project_dir, config, rows, ranked) -> str:
    best = ranked[0]
    name = os.path.basename(os.path.normpath(project_dir))
    cells = best["cells"] if best["cells"] is not None else 1
    filters = best["filters"] if best["filters"] is not None else 16
    lines = [
        f"# Architecture search `{name}`",
        "",
        f"Tuner `{config['tuner']}` on `{config['dataset']}` (proxy: "
        f"{config['proxy_fraction']:g} of the training split, "
        f"{config['proxy_epochs']} epochs, B={config['blocks']} blocks per cell). "
        f"{len(rows)} trials, {len(ranked)} completed; objective: {OBJECTIVE} (max).",
        "",
        f"## Best trial: {best['trial_id']}, {OBJECTIVE} {best['val_accuracy']:.4f}",
        "",
        f"N={cells}, F={filters}, {int(best['params'] or 0):,} parameters, "
        f"{(best['flops'] or 0) / 1e6:.1f} MFLOPs per image.",
        "",
        "```",
        best["genotype"].describe(),
        "```",
        "",
        "![normal cell](normal_cell.png) ![reduction cell](reduce_cell.png)",
        "",
        "Train it at full size (the transfer from the proxy to the real task):",
        "",
        "```bash",
        f"keras-convnets train --genotype {os.path.join(project_dir, 'best_genotype.json')} "
        f"--cells {cells} --filters {filters} --dataset {config['dataset']}",
        "```",
        "",
        "## Top trials",
        "",
        f"| trial | {OBJECTIVE} | params | MFLOPs | seconds | N | F | genotype |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in ranked[:10]:
        lines.append(
            f"| {r['trial_id']} | {r['val_accuracy']:.4f} | {int(r['params'] or 0):,} | "
            f"{(r['flops'] or 0) / 1e6:.1f} | {r['seconds'] or 0:.1f} | {r['cells']} | "
            f"{r['filters']} | `{r['genotype'].short()}` |"
        )
    lines += [
        "",
        f"TensorBoard (HParams dashboard): `tensorboard --logdir {os.path.join(project_dir, 'logs')}`",
        "",
    ]
    return "\n".join(lines)

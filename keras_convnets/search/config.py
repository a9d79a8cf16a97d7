"""The search's configuration: `SearchConfig`, reading and merging it.

Precedence, lowest first: the defaults < `--config FILE` < flags, as for
training (`keras_convnets.training.config`, whose readers this reuses).
"""

from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass, replace

from keras_convnets.errors import UserInputError
from keras_convnets.training import config as _config

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
    # Evolution: candidates drawn per trial, the best by SynFlow at
    # initialization trained (multi-fidelity screening); 1: none. SynFlow
    # ranked 12 cells with Kendall tau 0.47 against the reference training
    # at 1/50 of a trial's CPU (README "Proxy fidelity").
    screen_candidates: int = 4
    seed: int = 0

    # --- Search space ----------------------------------------------------------
    # Blocks per cell, B.
    blocks: int = 3
    # Candidate values; a single value is fixed (hp.Fixed), several are searched.
    cells: tuple = (1,)
    filters: tuple = (16,)
    learning_rate: tuple = (2e-3,)
    augment: tuple = ("none",)
    # Normalization in the cells: "none" (fast on CPUs) or "batch" (NASNet's).
    # Recorded in best_genotype.json, so `train --genotype` builds the same.
    cell_norm: str = "none"
    # Stride of the stem convolution: 2 (the default) runs the first stage at
    # half the input's resolution, a quarter of the CPU work per cell; 1 at
    # full resolution, as NASNet's CIFAR networks. Recorded like cell_norm.
    stem_stride: int = 2

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
    # Train each trial in a fresh Python process (the default): everything
    # the trial allocated (TensorFlow keeps every traced train graph, about
    # 36 MB per trial in graph mode) goes when it exits, so the search's
    # memory stays flat at graph-mode speed, for about 7 CPU-s of start-up per
    # trial. False: in the search's process (with run_eagerly for flat memory).
    isolate_trials: bool = True
    # Run fit eagerly: no tf.function tracing, so nothing outlives a trial in
    # the search's process; but about 3x the CPU of graph mode per trial
    # (README "Proxy fidelity"). Worth it only with isolate_trials=False.
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
    # The final stacking of the best cell: the widest F whose network (with
    # the best trial's N) has at most this many parameters; None: the trial's F.
    params_budget: int | None = None

    RUN_FIELDS: typing.ClassVar[tuple] = (
        "max_trials",
        "isolate_trials",
        "run_eagerly",
        "data_dir",
        "tfds_data_dir",
        "directory",
        "project",
        "overwrite",
        "oracle_address",
        "tuner_id",
        "params_budget",
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
            (
                self.screen_candidates >= 1,
                "screen_candidates must be >= 1",
                "screen_candidates",
            ),
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
                self.cell_norm in ("none", "batch"),
                "cell_norm must be one of none, batch",
                "cell_norm",
            ),
            (
                self.stem_stride in (1, 2),
                "stem_stride must be 1 or 2",
                "stem_stride",
            ),
            (
                self.params_budget is None or self.params_budget >= 1,
                "params_budget must be >= 1",
                "params_budget",
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


def config_from_dict(values: dict) -> SearchConfig:
    """`SearchConfig.to_dict()`'s output back into a `SearchConfig`."""
    return SearchConfig(
        **{k: tuple(v) if k in _LIST_FIELDS else v for k, v in values.items()}
    )


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

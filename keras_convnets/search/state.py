"""Search state that survives a kill at any moment, and is checked before reuse.

A search project is KerasTuner's files (`oracle.json`, `tuner0.json`,
`trial_*/trial.json`, `trial_*/build_config.json`, `trial_*/checkpoint.weights.h5`)
and ours (`search_config.json`, `trial_*/runs.json`, the reports). KerasTuner
1.4 writes its files in place: a kill while it rewrites `oracle.json` leaves
half a file, and the search cannot resume. Here:

- `install_atomic_writes()` routes every JSON file KerasTuner writes through
  an atomic write (temporary file in the same folder, fsync, `os.replace`).
  KerasTuner has one function for that, `keras_tuner.src.utils.save_json`,
  which `Oracle.save`, `Trial.save`, `Tuner.save` (all via `Stateful.save`)
  and the per-trial build config call through the module at call time. Replacing
  that one function covers the oracles and trials we do not subclass (random
  search, Hyperband, Bayesian optimization) and the gRPC chief's thread, which
  overriding the `save` methods of our own subclasses would miss.
  `tests/test_search_state.py` audits every file a search writes, so a
  KerasTuner that writes state some other way fails the tests.
- `save_weights_atomic` replaces the in-place checkpoint write of KerasTuner's
  `SaveBestEpoch` callback (see `_CellTunerMixin` in `tuners.py`).
- `check_state_files` and `check_oracle_state` refuse damaged state with one
  line naming the file. Atomic files leave two windows between files, both
  closed on reload: a trial whose `trial.json` was written when the process
  died before `oracle.json` recorded that it started (`drop_orphan_trials`),
  and one whose `trial.json` says COMPLETED when the process died before
  `oracle.json` recorded that it ended (`finish_completed_trials`).

The environment variable `KERAS_CONVNETS_TEST_KILL_AT_WRITE=NAME:N` is a test
seam: the process kills itself (SIGKILL) in the middle of its N-th write of a
state file named NAME (`*` for any file), so tests can kill a search at every
write, deterministically, whatever the machine's load. A trial's own process
(`search/trial_process.py`) continues its search's count, and kills the search
with itself.
"""

from __future__ import annotations

import collections
import json
import os
import signal

from keras_convnets.errors import UserInputError
from keras_convnets.training import io

KILL_ENV = "KERAS_CONVNETS_TEST_KILL_AT_WRITE"

_writes = collections.Counter()

_RECOVER = (
    "Restore this file to resume, or pass --overwrite (or choose another "
    "--project) to start the search over."
)


def _kill_point(path: str) -> bool:
    """Counts a write of `path`; whether the test seam says to die in it."""
    spec = os.environ.get(KILL_ENV)
    if not spec:
        return False
    name, _, nth = spec.rpartition(":")
    base = os.path.basename(path)
    if name not in ("*", base):
        return False
    _writes[name] += 1
    return str(_writes[name]) == nth


def _die() -> None:
    from keras_convnets.search.trial_process import CHILD_ENV

    parent = os.environ.get(CHILD_ENV)
    if parent:  # a trial's own process: the search dies with it
        os.kill(int(parent), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def kill_seam_counts() -> dict:
    """The test seam's write counts so far (for a trial's process to go on)."""
    return dict(_writes)


def set_kill_seam_counts(counts: dict) -> None:
    """Replaces the test seam's write counts with `counts`."""
    _writes.clear()
    _writes.update({str(k): int(v) for k, v in (counts or {}).items()})


def write_bytes(path: str, data: bytes) -> None:
    """Writes `data` to `path` atomically (`io.atomic_path`).

    Under the test seam (`KILL_ENV`), the process dies with half of `data`
    written to the temporary file and flushed to disk.
    """
    die = _kill_point(path)
    with io.atomic_path(path) as tmp, open(tmp, "wb") as f:
        if die:
            f.write(data[: len(data) // 2])
            f.flush()
            os.fsync(f.fileno())
            _die()
        f.write(data)


def write_json(path: str, obj, indent: int | None = 2) -> str:
    """Writes `obj` as JSON to `path` atomically; returns the JSON text."""
    text = json.dumps(obj, indent=indent, default=io.json_default)
    write_bytes(path, (text + ("\n" if indent else "")).encode("utf-8"))
    return text


def save_weights_atomic(model, path: str) -> None:
    """Saves `model`'s weights to `path` (`.weights.h5`) atomically."""
    die = _kill_point(path)
    with io.atomic_path(path) as tmp:
        model.save_weights(tmp)
        if die:
            _die()


def save_best_epoch_atomic(callback) -> None:
    """KerasTuner's `SaveBestEpoch._save_model`, through `save_weights_atomic`."""
    save_weights_atomic(callback.model, callback.filepath)


def _keras_tuner_save_json(path, obj):
    """`keras_tuner.src.utils.save_json`, atomic for local paths."""
    path = os.fspath(path)
    if "://" in path:  # a remote file system (gs://...): KerasTuner's own write
        return _ORIGINAL["save_json"](path, obj)
    return write_json(path, obj, indent=None)


_ORIGINAL = {}


def install_atomic_writes() -> None:
    """Makes every JSON file KerasTuner writes an atomic write. Idempotent.

    The content is KerasTuner's own (`json.dumps(obj)`); only how it reaches
    the disk changes, so other KerasTuner users in the process are unaffected.
    """
    from keras_tuner.src import utils as kt_utils

    if "save_json" not in _ORIGINAL:
        _ORIGINAL["save_json"] = kt_utils.save_json
    kt_utils.save_json = _keras_tuner_save_json


# ----------------------------------------------------------------------------
# Checking state before KerasTuner reads it.


def corrupt(path: str, why: str) -> UserInputError:
    """The one-line error for a damaged state file, saying how to recover."""
    return UserInputError(f"{path}: corrupt search state ({why}). {_RECOVER}")


def read_state_json(path: str) -> dict:
    """Reads a JSON object of the search state; one clear error if damaged."""
    try:
        data = io.read_json(path)
    except UserInputError as e:
        why = str(e).removeprefix(f"{path}: ").rstrip(".")
        raise corrupt(path, why) from None
    if not isinstance(data, dict):
        raise corrupt(path, "not a JSON object")
    return data


_STATUSES = (
    "RUNNING",
    "IDLE",
    "INVALID",
    "STOPPED",
    "COMPLETED",
    "FAILED",
)


def check_trial_file(path: str) -> None:
    """Refuses a `trial_<id>/trial.json` KerasTuner could not use.

    The content is parsed by KerasTuner's own `Trial.from_state`, so the check
    follows KerasTuner's format rather than a copy of it.
    """
    from keras_tuner.engine import trial as trial_module

    state = read_state_json(path)
    try:
        trial = trial_module.Trial.from_state(state)
    except Exception as e:  # any shape KerasTuner cannot read
        raise corrupt(path, f"{type(e).__name__}: {e}") from None
    expected = os.path.basename(os.path.dirname(path)).removeprefix("trial_")
    if trial.trial_id != expected:
        raise corrupt(
            path, f"trial_id {trial.trial_id!r} in the folder of trial {expected!r}"
        )
    if trial.status not in _STATUSES:
        raise corrupt(path, f"unknown status {trial.status!r}")
    if trial.score is not None and not isinstance(trial.score, (int, float)):
        raise corrupt(path, f"score {trial.score!r} is not a number")


def check_state_files(project_dir: str) -> None:
    """Refuses to resume over damaged state, naming the file.

    Temporary files that killed writers left are removed first (a live
    writer's are kept, and never read). Every JSON file of the project and
    every trial's `trial.json` must be a readable JSON object (size bounded,
    UTF-8, not nested too deeply), every `trial.json` one KerasTuner can
    load, and every `runs.json` a list of runs.
    """
    io.sweep_stale_temps(project_dir)  # half writes of killed processes
    names = sorted(n for n in os.listdir(project_dir) if not n.startswith("."))
    for name in names:
        path = os.path.join(project_dir, name)
        if name.endswith(".json") and os.path.isfile(path):
            read_state_json(path)
    for name in names:
        if not (
            name.startswith("trial_") and os.path.isdir(os.path.join(project_dir, name))
        ):
            continue
        io.sweep_stale_temps(os.path.join(project_dir, name))
        path = os.path.join(project_dir, name, "trial.json")
        if os.path.lexists(path):
            check_trial_file(path)
        runs = os.path.join(project_dir, name, "runs.json")
        if os.path.lexists(runs):
            try:
                data = io.read_json(runs)
            except UserInputError as e:
                raise corrupt(
                    runs, str(e).removeprefix(f"{runs}: ").rstrip(".")
                ) from None
            if not isinstance(data, list) or not all(
                isinstance(r, dict) and isinstance(r.get("tuner_id"), str) for r in data
            ):
                raise corrupt(runs, "not a list of runs")


def _kind(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def check_oracle_state(path: str, state: dict, template: dict) -> None:
    """Refuses an `oracle.json` whose fields differ in kind from `template`.

    Args:
        path: str. The file, for the message.
        state: dict. Its content.
        template: dict. `get_state()` of a fresh oracle of the same class: the
            fields KerasTuner will read, and the JSON kind of each (a `None`
            in the template accepts any value).
    """
    for key, value in template.items():
        if key not in state:
            raise corrupt(path, f"no {key!r}")
        if value is not None and _kind(state[key]) != _kind(value):
            raise corrupt(
                path, f"{key!r} is a JSON {_kind(state[key])}, not a {_kind(value)}"
            )


def check_oracle_trials(path: str, oracle) -> None:
    """Refuses a reloaded oracle that refers to trials with no `trial.json`."""
    known = set(oracle.trials)
    for key in ("start_order", "end_order", "_retry_queue"):
        for trial_id in getattr(oracle, key):
            if trial_id not in known:
                raise corrupt(
                    path,
                    f"{key.strip('_')} names trial {trial_id!r}, which has no "
                    f"trial_{trial_id}/trial.json",
                )


def drop_orphan_trials(oracle) -> list[str]:
    """Forgets trials `oracle.json` does not know were started.

    KerasTuner creates a trial by writing its `trial.json`, then `oracle.json`.
    A kill between the two leaves a RUNNING `trial.json` that the oracle never
    recorded: it would never be retried nor finished. Forgetting it returns
    the search to the moment before the trial was created; the next trial
    takes the same id, and the same values, and overwrites the file.

    Returns:
        The ids forgotten.

    Raises:
        UserInputError: a trial the oracle does not know that is not RUNNING
            (files mixed by hand rather than a kill).
    """
    started = set(oracle.start_order)
    orphans = sorted(t for t in oracle.trials if t not in started)
    for trial_id in orphans:
        trial = oracle.trials[trial_id]
        if trial.status != "RUNNING":
            path = os.path.join(oracle._project_dir, "oracle.json")
            raise corrupt(
                path,
                f"trial {trial_id!r} is {trial.status} in its trial.json but "
                f"was never started by this oracle",
            )
        del oracle.trials[trial_id]
    return orphans


def finish_completed_trials(oracle) -> list[str]:
    """Ends trials whose `trial.json` says COMPLETED but the oracle did not end.

    KerasTuner ends a trial by writing its `trial.json` (COMPLETED, scored),
    then `oracle.json`. A kill between the two leaves the trial among the
    oracle's ongoing ones, which a reload would train again. Ending it with
    KerasTuner's own `end_trial` keeps the finished work.

    Returns:
        The ids ended.
    """
    ended = []
    for trial_id in list(oracle._retry_queue):
        trial = oracle.trials[trial_id]
        if trial.status != "COMPLETED" or trial.score is None:
            continue
        oracle._retry_queue.remove(trial_id)
        oracle.ongoing_trials[f"resumed-{trial_id}"] = trial
        # The display timed the trial in the killed process: nothing to show.
        display = oracle._display
        verbose, display.verbose = display.verbose, 0
        try:
            oracle.end_trial(trial)
        finally:
            display.verbose = verbose
        ended.append(trial_id)
    return ended

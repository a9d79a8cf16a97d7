"""Search state: every write atomic, a kill at any write resumes, damage refused.

Kills use the `KERAS_CONVNETS_TEST_KILL_AT_WRITE` seam (`search/state.py`): the
search kills itself (SIGKILL) halfway through its N-th write of a named file,
so each test kills at the same moment on an idle or a busy machine.
"""

from __future__ import annotations

import builtins
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import keras
import pytest
from keras_tuner.src.backend import io as kt_io

from conftest import REPO, assert_one_line_error, cli_in_process, run_cli
from keras_convnets.errors import UserInputError
from keras_convnets.search import state
from keras_convnets.search.runner import SearchConfig, run_search

TINY = (
    "--blocks", "1", "--cells", "0", "--filters", "4", "--proxy-epochs", "1",
    "--proxy-fraction", "0.185", "--batch-size", "100", "--run-eagerly", "--no-isolate-trials",
)  # fmt: skip


def _args(directory, data_dir, trials=2, tuner="random", isolate=False):
    """The search CLI's arguments; `isolate`: each trial in its own process
    (the default), which continues the kill seam's count of writes."""
    tiny = [a for a in TINY if not (isolate and a == "--no-isolate-trials")]
    return (
        "search", "--tuner", tuner, "--max-trials", str(trials), "--seed", "1",
        "--data-dir", data_dir, "--directory", directory, "--project", "p", *tiny,
    )  # fmt: skip


def _config(directory, data_dir, **overrides):
    values = dict(
        tuner="random",
        max_trials=1,
        blocks=1,
        cells=(0,),  # no normal cells: the smallest trial model
        filters=(4,),
        proxy_epochs=1,
        proxy_fraction=0.185,
        batch_size=100,
        run_eagerly=True,
        isolate_trials=False,  # in-process: cheaper (tests of the default below)
        seed=1,
        data_dir=data_dir,
        directory=str(directory),
        project="p",
    )
    values.update(overrides)
    return SearchConfig(**values).validate()


def _killed_at(args, spec):
    """Runs the search CLI until the seam kills it at `spec`; returns its code."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", state.KILL_ENV: spec}
    process = subprocess.run(
        [sys.executable, "-m", "keras_convnets", *map(str, args)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return process.returncode, process.stderr


def _trial(project, trial_id):
    return json.loads((project / f"trial_{trial_id}" / "trial.json").read_text())


def _values(project, trial_ids):
    return [_trial(project, t)["hyperparameters"]["values"] for t in trial_ids]


class _WriteAudit:
    """Records every file of a project opened for writing in place, and every
    target `os.replace` moved a file over, while it is active."""

    def __init__(self, project):
        self.project = str(project)
        self.in_place, self.replaced = [], []

    def record(self, path, mode):
        path = os.path.abspath(os.fspath(path))
        inside = path.startswith(self.project + os.sep)
        logs = path.startswith(os.path.join(self.project, "logs"))  # TensorBoard
        if inside and not logs and any(m in mode for m in "wax+"):
            name = os.path.basename(path)
            if not (name.startswith(".") and ".tmp" in name):
                self.in_place.append(path)

    def patch(self, monkeypatch):
        real_open, real_file = builtins.open, kt_io.File
        real_save_weights, real_replace = keras.Model.save_weights, os.replace

        def open_(file, mode="r", *args, **kwargs):
            if isinstance(file, (str, os.PathLike)):
                self.record(file, mode)
            return real_open(file, mode, *args, **kwargs)

        def file_(path, mode):
            self.record(path, mode)
            return real_file(path, mode)

        def save_weights(model, path, *args, **kwargs):
            self.record(path, "w")
            return real_save_weights(model, path, *args, **kwargs)

        def replace(src, dst, *args, **kwargs):
            target = os.path.abspath(os.fspath(dst))
            self.replaced.append(os.path.relpath(target, self.project))
            return real_replace(src, dst, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", open_)
        monkeypatch.setattr(kt_io, "File", file_)
        monkeypatch.setattr(keras.Model, "save_weights", save_weights)
        monkeypatch.setattr(os, "replace", replace)


@pytest.fixture(scope="module")
def audited(tmp_path_factory, small_fashion_dir):
    """A two-trial random search (in-process) under a `_WriteAudit`."""
    directory = tmp_path_factory.mktemp("finished")
    audit = _WriteAudit(directory / "p")
    keras.utils.set_random_seed(1)
    with pytest.MonkeyPatch.context() as monkeypatch:
        audit.patch(monkeypatch)
        run_search(_config(directory, small_fashion_dir, max_trials=2), verbose=0)
    return audit


@pytest.fixture
def finished(audited):
    """The finished two-trial search, copied by each test."""
    return Path(audited.project)


# ----------------------------------------------------------------------------
# Atomic writes.


def test_every_state_write_goes_to_a_temporary_file(
    tmp_path, audited, small_fashion_dir, monkeypatch
):
    """No file of the project is opened for writing in place: KerasTuner's
    JSON, checkpoints, our runs, config and reports all go to a temporary file
    that `os.replace` moves over the target (old code: oracle.json in place).
    Resuming, which checks and may rewrite the oracle's files, too."""
    project = Path(audited.project)
    assert audited.in_place == []
    for name in (
        "oracle.json",
        "tuner0.json",
        "search_config.json",
        "trials.csv",
        "best_genotype.json",
        "summary.md",
        "normal_cell.png",
        "trial_0/trial.json",
        "trial_0/runs.json",
        "trial_0/build_config.json",
        "trial_0/checkpoint.weights.h5",
        "trial_1/trial.json",
    ):
        assert name in audited.replaced, (name, sorted(set(audited.replaced)))
        assert (project / name).stat().st_size > 0
    assert not [n for n in os.listdir(project / "trial_0") if ".tmp" in n]

    shutil.copytree(project, tmp_path / "p")
    resumed = _WriteAudit(tmp_path / "p")
    resumed.patch(monkeypatch)
    run_search(_config(tmp_path, small_fashion_dir, max_trials=2), verbose=0)
    assert resumed.in_place == [] and "oracle.json" in resumed.replaced


def test_kill_seam_counts_per_file_name(tmp_path, monkeypatch):
    """The seam kills in the N-th write of the named file only, never before."""
    deaths = []
    monkeypatch.setattr(state, "_die", lambda: deaths.append(1))
    monkeypatch.setattr(state, "_writes", state.collections.Counter())
    monkeypatch.setenv(state.KILL_ENV, "a.json:2")
    state.write_json(str(tmp_path / "b.json"), {"x": 1})
    state.write_json(str(tmp_path / "a.json"), {"x": 1})
    assert deaths == []
    state.write_json(str(tmp_path / "a.json"), {"x": 2})
    assert deaths == [1]


def test_kill_seam_count_continues_in_a_trial_process(tmp_path, monkeypatch):
    """A trial's process is handed the count so far and hands back its own:
    the count is replaced, not added to (a Counter's `update` adds)."""
    deaths = []
    monkeypatch.setattr(state, "_die", lambda: deaths.append(1))
    monkeypatch.setattr(state, "_writes", state.collections.Counter())
    monkeypatch.setenv(state.KILL_ENV, "a.json:3")
    state.write_json(str(tmp_path / "a.json"), {"x": 1})
    handed = state.kill_seam_counts()
    assert handed == {"a.json": 1}
    state.set_kill_seam_counts({"a.json": 2})  # the trial's process wrote one
    state.set_kill_seam_counts(state.kill_seam_counts())  # idempotent
    assert deaths == [] and state.kill_seam_counts() == {"a.json": 2}
    state.write_json(str(tmp_path / "a.json"), {"x": 3})
    assert deaths == [1]


# ----------------------------------------------------------------------------
# Kills at chosen writes, in real subprocesses.


class _CountFits(keras.callbacks.Callback):
    """Counts `fit` calls (class-level: KerasTuner deep-copies callbacks)."""

    fits = []

    def on_train_begin(self, logs=None):
        _CountFits.fits.append(1)


def _edit_json(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_trial_the_oracle_never_recorded_is_created_again(
    tmp_path, finished, small_fashion_dir
):
    """The state a kill leaves between a new trial's trial.json and the
    oracle.json recording its start: the trial is forgotten, then created and
    trained (old code: never retried, left RUNNING, the search 'finished')."""
    project = tmp_path / "p"
    shutil.copytree(finished, project)

    def forget_trial_1(oracle):
        oracle["start_order"].remove("1")
        oracle["end_order"].remove("1")
        oracle["run_times"].pop("1")

    _edit_json(project / "oracle.json", forget_trial_1)
    _edit_json(
        project / "trial_1" / "trial.json",
        lambda t: t.update(status="RUNNING", score=None),
    )
    (project / "trial_1" / "runs.json").unlink()
    _CountFits.fits = []
    config = _config(tmp_path, small_fashion_dir, max_trials=2)
    record = run_search(config, callbacks=[_CountFits()], verbose=0)
    assert record["completed"] == 2 and len(_CountFits.fits) == 1
    assert json.loads((project / "oracle.json").read_text())["start_order"] == [
        "0",
        "1",
    ]
    assert len(json.loads((project / "trial_1" / "runs.json").read_text())) == 1


def test_trial_completed_before_the_oracle_recorded_it_is_not_trained_again(
    tmp_path, finished, small_fashion_dir
):
    """The state a kill leaves between a trial's COMPLETED trial.json and the
    oracle.json recording its end: the trial is ended, not trained again (old
    code: retried from scratch)."""
    project = tmp_path / "p"
    shutil.copytree(finished, project)

    def still_running(oracle):
        oracle["end_order"].remove("1")
        oracle["ongoing_trials"] = {"tuner0": "1"}
        oracle["run_times"]["1"] -= 1

    _edit_json(project / "oracle.json", still_running)
    _CountFits.fits = []
    config = _config(tmp_path, small_fashion_dir, max_trials=2)
    record = run_search(config, callbacks=[_CountFits()], verbose=0)
    assert record["completed"] == 2 and _CountFits.fits == []
    oracle = json.loads((project / "oracle.json").read_text())
    assert oracle["end_order"] == ["0", "1"] and oracle["ongoing_trials"] == {}
    assert len(json.loads((project / "trial_1" / "runs.json").read_text())) == 1


@pytest.mark.slow
def test_search_killed_mid_training_then_as_a_trial_ends_resumes(
    tmp_path, small_fashion_dir, finished
):
    """Killed halfway through trial 0's checkpoint, then halfway through the
    oracle.json that ends trial 0 (its trial.json already says COMPLETED), the
    search resumes without training trial 0 a third time and finishes with the
    trials an uninterrupted search of the same seed runs. (The kill as a
    trial starts is `test_search_kill.py`.)"""
    args = _args(tmp_path, small_fashion_dir, isolate=True)
    project = tmp_path / "p"

    # The checkpoint is written by trial 0's own process: the kill takes the
    # search with it, as a kill of the whole search would.
    code, stderr = _killed_at(args, "checkpoint.weights.h5:1")
    assert code == -signal.SIGKILL, stderr[-2000:]
    assert _trial(project, "0")["status"] == "RUNNING"

    # Oracle writes of a resumed process: search begin, trial 0 retried, ended.
    code, stderr = _killed_at(args, "oracle.json:3")
    assert code == -signal.SIGKILL, stderr[-2000:]
    assert _trial(project, "0")["status"] == "COMPLETED"
    oracle = json.loads((project / "oracle.json").read_text())
    assert "0" in oracle["ongoing_trials"].values()  # the window: not yet ended

    result = run_cli(*args, check=True)
    assert "Best trial:" in result.stdout
    assert [_trial(project, t)["status"] for t in "01"] == ["COMPLETED"] * 2
    runs = json.loads((project / "trial_0" / "runs.json").read_text())
    assert len(runs) == 1  # trained to the end once, not again after the kill
    assert _values(project, "01") == _values(finished, "01")
    leftovers = [n for _, _, names in os.walk(project) for n in names if ".tmp" in n]
    assert leftovers == []


@pytest.mark.slow
def test_search_killed_at_every_write_resumes(tmp_path, small_fashion_dir):
    """A kill halfway through each write of a one-trial search in turn (the
    N-th write of a fresh process, for every N until the search finishes
    without being killed), then a resume: the trial completes."""
    n = 1
    while True:
        directory = tmp_path / str(n)
        args = _args(directory, small_fashion_dir, trials=1, isolate=True)
        code, stderr = _killed_at(args, f"*:{n}")
        if code == 0:
            break
        assert code == -signal.SIGKILL, (n, code, stderr[-2000:])
        run_cli(*args, check=True)
        assert _trial(directory / "p", "0")["status"] == "COMPLETED", n
        n += 1
    assert n > 15  # every write of the search was a kill point


# ----------------------------------------------------------------------------
# Damaged state: one line naming the file, and how to recover.


def _damage(project, target, content):
    path = project / target
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif callable(content):
        path.write_text(json.dumps(content(json.loads(path.read_text()))))
    else:
        path.write_text(content)
    return path


def _set(key, value):
    def change(data):
        data[key] = value
        return data

    return change


@pytest.mark.parametrize(
    "target, content, fragment",
    [
        ("oracle.json", "{}", "no 'ongoing_trials'"),
        ("oracle.json", _set("start_order", 5), "'start_order' is a JSON number"),
        ("oracle.json", _set("end_order", ["7"]), "names trial '7'"),
        ("oracle.json", _set("ongoing_trials", {"tuner0": "9"}), "KeyError"),
        ("oracle.json", _set("hyperparameters", {"space": 3}), "TypeError"),
        ("oracle.json", b'{"ongoing_trials": \xff}', "not UTF-8"),
        ("oracle.json", '{"ongoing_trials": {', "corrupt JSON"),
        ("tuner0.json", "[]", "not a JSON object"),
        ("trial_0/trial.json", "{}", "KeyError"),
        ("trial_0/trial.json", _set("trial_id", "5"), "folder of trial '0'"),
        ("trial_0/trial.json", _set("status", "DONE"), "unknown status"),
        ("trial_0/trial.json", _set("metrics", []), "Error"),
        ("trial_0/trial.json", b"\xfe\xff{}", "not UTF-8"),
        ("trial_0/runs.json", "{}", "not a list of runs"),
    ],
)
def test_damaged_state_is_refused_naming_the_file(
    tmp_path, finished, small_fashion_dir, target, content, fragment
):
    project = tmp_path / "p"
    shutil.copytree(finished, project)
    path = _damage(project, target, content)
    damaged = path.read_bytes()
    with pytest.raises(UserInputError) as info:
        run_search(_config(tmp_path, small_fashion_dir, max_trials=2), verbose=0)
    message = str(info.value)
    assert "\n" not in message
    for part in (str(path), "corrupt search state", fragment, "--overwrite"):
        assert part in message, (part, message)
    assert path.read_bytes() == damaged  # nothing was silently rewritten


def test_oracle_replaced_by_empty_object_is_one_line_from_the_cli(
    tmp_path, finished, small_fashion_dir
):
    """The reported case: `{}` gave a KerasTuner traceback. Now exit 2, one
    line (the command's `main`, in this process). (`{}` in a trial.json and other damage: the test above, in-process.)"""
    shutil.copytree(finished, tmp_path / "p")
    path = _damage(tmp_path / "p", "oracle.json", "{}")
    args = _args(tmp_path, small_fashion_dir, trials=1)
    result = cli_in_process(*args)
    assert_one_line_error(result, str(path), "corrupt search state", "--overwrite")


def test_another_search_in_the_project_is_refused(tmp_path, small_fashion_dir):
    from keras_convnets.training import io

    config = _config(tmp_path, small_fashion_dir)
    with io.run_lock(config.project_dir):
        with pytest.raises(UserInputError, match="Another search is running"):
            run_search(config, verbose=0)

"""A search killed (SIGKILL, real subprocess) mid-trial resumes; damaged state is refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO, assert_one_line_error, run_cli

TINY = (
    "--blocks", "1", "--filters", "4", "--proxy-epochs", "2",
    "--proxy-fraction", "0.185", "--batch-size", "100", "--run-eagerly",
)  # fmt: skip


def _status(project, trial):
    try:
        return json.loads((project / f"trial_{trial}" / "trial.json").read_text())[
            "status"
        ]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return None


def _args(tmp_path, data_dir):
    return (
        "search", "--tuner", "random", "--max-trials", "4", "--seed", "1",
        "--data-dir", data_dir, "--directory", tmp_path, "--project", "p", *TINY,
    )  # fmt: skip


def test_search_killed_in_trial_2_of_4_resumes(tmp_path, small_fashion_dir):
    args = _args(tmp_path, small_fashion_dir)
    project = tmp_path / "p"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    process = subprocess.Popen(
        [sys.executable, "-m", "keras_convnets", *map(str, args)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.time() + 240
    # Trial ids are 0-based: "trial 2 of 4" is trial_1.
    while _status(project, "1") != "RUNNING":
        assert process.poll() is None and time.time() < deadline, "search ended early"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    trial0 = (project / "trial_0" / "trial.json").read_text()
    assert json.loads(trial0)["status"] == "COMPLETED"

    result = run_cli(*args, check=True)
    assert "Best trial:" in result.stdout
    statuses = [_status(project, t) for t in "0123"]
    assert statuses == ["COMPLETED"] * 4
    assert (project / "trial_0" / "trial.json").read_text() == trial0  # not retrained
    runs = json.loads((project / "trial_1" / "runs.json").read_text())
    assert len(runs) == 1  # the interrupted trial was retried and ran to completion


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_damaged_tuner_state_is_refused_naming_the_file(
    tmp_path, small_fashion_dir, damage
):
    args = (
        *_args(tmp_path, small_fashion_dir)[:4],
        "1",
        *_args(tmp_path, small_fashion_dir)[5:],
    )
    run_cli(*args, check=True)
    target = tmp_path / "p" / "trial_0" / "trial.json"
    text = target.read_text()
    target.write_text(text[: len(text) // 2] if damage == "truncate" else "[1, 2]")
    result = run_cli(*args)
    assert_one_line_error(result, str(target), "corrupt search state", "--overwrite")
    assert target.read_text() != text  # nothing was silently rewritten

"""A search killed (SIGKILL, real subprocess) mid-trial resumes; damaged state is refused.

The kill lands at a fixed write (`KERAS_CONVNETS_TEST_KILL_AT_WRITE`, see
`search/state.py`), not after a lucky wait: the test holds on a busy machine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from conftest import REPO, assert_one_line_error, cli_in_process, run_cli
from keras_convnets.search.state import KILL_ENV

TINY = (
    "--blocks", "1", "--cells", "0", "--filters", "4", "--proxy-epochs", "2",
    "--proxy-fraction", "0.185", "--batch-size", "100", "--run-eagerly", "--no-isolate-trials",
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


# Slow: test_search_state kills searches at oracle writes and mid-training in
# `make test`; this is the reported 4-trial case end to end.
@pytest.mark.slow
def test_search_killed_in_trial_2_of_4_resumes(tmp_path, small_fashion_dir):
    """The CI failure, now at a fixed moment: SIGKILL halfway through the
    rewrite of oracle.json that records trial 2's start (its fifth write:
    search begin, trial 1 start, trial 1 end, tuner save, trial 2 start), so
    trial 2's trial.json is RUNNING and the oracle never recorded it."""
    args = _args(tmp_path, data_dir=small_fashion_dir)
    project = tmp_path / "p"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", KILL_ENV: "oracle.json:5"}
    process = subprocess.run(
        [sys.executable, "-m", "keras_convnets", *map(str, args)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert process.returncode == -signal.SIGKILL, process.stderr[-2000:]
    trial0 = (project / "trial_0" / "trial.json").read_text()
    assert json.loads(trial0)["status"] == "COMPLETED"
    # Trial ids are 0-based: "trial 2 of 4" is trial_1.
    assert _status(project, "1") == "RUNNING"
    assert "1" not in json.loads((project / "oracle.json").read_text())["start_order"]

    result = run_cli(*args, check=True, timeout=600)
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
    # In this process: a real process is what the test above runs.
    first = cli_in_process(*args)
    assert first.returncode == 0, first.stderr[-2000:]
    target = tmp_path / "p" / "trial_0" / "trial.json"
    text = target.read_text()
    target.write_text(text[: len(text) // 2] if damage == "truncate" else "[1, 2]")
    result = cli_in_process(*args)
    assert_one_line_error(result, str(target), "corrupt search state", "--overwrite")
    assert target.read_text() != text  # nothing was silently rewritten

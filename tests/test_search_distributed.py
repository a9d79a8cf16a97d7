"""Distributed search: a chief and two workers as processes on 127.0.0.1."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys

from conftest import REPO

MAX_TRIALS = 4


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_chief_and_two_workers_run_every_trial_once(tmp_path, small_fashion_dir):
    address = f"127.0.0.1:{_free_port()}"
    common = [
        sys.executable, "-m", "keras_convnets", "search",
        "--tuner", "random", "--max-trials", str(MAX_TRIALS),
        "--blocks", "1", "--cells", "0", "--filters", "4", "--proxy-epochs", "1",
        "--proxy-fraction", "0.185", "--batch-size", "100", "--run-eagerly", "--no-isolate-trials",
        "--data-dir", small_fashion_dir, "--directory", str(tmp_path),
        "--project", "dist", "--oracle-address", address,
    ]  # fmt: skip
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    procs = {}
    for tuner_id in ("chief", "worker0", "worker1"):
        procs[tuner_id] = subprocess.Popen(
            [*common, "--tuner-id", tuner_id],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    outputs = {}
    try:
        for tuner_id, proc in procs.items():
            outputs[tuner_id], _ = proc.communicate(timeout=300)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
    for tuner_id, proc in procs.items():
        assert proc.returncode == 0, (tuner_id, outputs[tuner_id][-3000:])
    assert f"Oracle chief listening on {address}" in outputs["chief"]
    assert "Best trial:" in outputs["chief"]

    project = tmp_path / "dist"
    with open(project / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["trial_id"] for r in rows] == [str(i) for i in range(MAX_TRIALS)]
    assert {r["status"] for r in rows} == {"COMPLETED"}
    runners = []
    for r in rows:
        runs = json.loads(
            (project / f"trial_{r['trial_id']}" / "runs.json").read_text()
        )
        assert len(runs) == 1, runs  # exactly once
        runners.append(runs[0]["tuner_id"])
    assert set(runners) <= {"worker0", "worker1"}
    ran = {
        t: int(outputs[t].rsplit("ran ", 1)[1].split()[0])
        for t in ("worker0", "worker1")
    }
    assert sum(ran.values()) == MAX_TRIALS
    assert ran == {t: runners.count(t) for t in ran}

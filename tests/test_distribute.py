"""tf.distribute training: cluster flags, MirroredStrategy on 2 logical CPUs,
2 workers on 127.0.0.1 (MultiWorkerMirroredStrategy), kill and resume.

The numbers are compared with one process training the same config (global
batch 64, seed 0). The model has no BatchNormalization (its statistics are per
replica) and no dropout, so the sums differ only in float order.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import types

import keras
import numpy as np
import pytest

from conftest import REPO, assert_one_line_error, run_cli
from keras_convnets.errors import UserInputError
from keras_convnets.training import distribute

MODEL_KWARGS = {"batch_norm": False, "dropout": 0.0}
# 432 training images in batches of 64: 7 steps an epoch (the last one partial).
FLAGS = {
    "recipe": "quick",
    "model_kwargs": MODEL_KWARGS,
    "train_fraction": 0.4,
    "batch_size": 64,
    "tensorboard_images": 0,
}
TOLERANCE = 1e-4  # relative, on losses after training


def _cli_flags(flags):
    args = []
    for key, value in flags.items():
        if isinstance(value, dict):
            value = json.dumps(value)
        args += [f"--{key.replace('_', '-')}", str(value)]
    return args


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _env(tmp_path):
    # Workers keep their folders under TMPDIR: here, inside the test's folder.
    tmp = tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TMPDIR": str(tmp)}


def _start_cluster(tmp_path, args, tag, n=2):
    workers = ",".join(f"127.0.0.1:{p}" for p in _free_ports(n))
    procs, logs = [], []
    for i in range(n):
        log = tmp_path / f"{tag}-worker{i}.log"
        with open(log, "w") as out:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "keras_convnets", "train", *args,
                     "--workers", workers, "--worker-index", str(i)],
                    cwd=REPO, env=_env(tmp_path), stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )  # fmt: skip
        logs.append(log)
    return procs, logs


def _wait(procs, logs, timeout=600):
    deadline = time.time() + timeout
    try:
        for proc in procs:
            proc.wait(timeout=max(1, deadline - time.time()))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    outputs = [log.read_text() for log in logs]
    for i, (proc, output) in enumerate(zip(procs, outputs)):
        assert proc.returncode == 0, (i, output[-4000:])
    return outputs


def _close(a, b, tolerance=TOLERANCE):
    return abs(a - b) <= tolerance * max(1.0, abs(b))


@pytest.fixture(scope="module")
def single_process(tmp_path_factory, small_fashion_dir):
    """The reference: the same config trained by one process, one device."""
    from keras_convnets.inference import load_model
    from keras_convnets.training.config import resolve_config
    from keras_convnets.training.train import train_and_evaluate

    def train(epochs):
        workdir = tmp_path_factory.mktemp("single")
        flags = {**FLAGS, "data_dir": small_fashion_dir, "workdir": str(workdir)}
        flags.update(run_name="r", epochs=epochs)
        record = train_and_evaluate(resolve_config({}, flags), verbose=0)
        model, _ = load_model(str(workdir / "r"))
        return record, [w.numpy() for w in model.weights]

    cache = {}

    def get(epochs):
        if epochs not in cache:
            cache[epochs] = train(epochs)
        return cache[epochs]

    return get


def _max_weight_difference(run_dir, reference_weights):
    from keras_convnets.inference import load_model

    model, _ = load_model(str(run_dir))
    return max(
        float(np.max(np.abs(w.numpy() - r)))
        for w, r in zip(model.weights, reference_weights)
    )


# ----------------------------------------------------------------------------
# Flags and TF_CONFIG.


def test_cluster_flags_write_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    config = distribute.set_cluster("127.0.0.1:1234,host-b:1235", 1)
    assert config == {
        "cluster": {"worker": ["127.0.0.1:1234", "host-b:1235"]},
        "task": {"type": "worker", "index": 1},
    }
    assert json.loads(os.environ["TF_CONFIG"]) == config
    assert distribute.read_tf_config() == config
    for bad in ("", "host", "host:0", "host:70000", "a:1,,b:2", "a:1,a:1", "a b:1"):
        with pytest.raises(UserInputError, match="workers"):
            distribute.parse_workers(bad)
    with pytest.raises(UserInputError, match="worker_index must be in 0..1"):
        distribute.set_cluster("a:1,b:2", 2)
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["a:1"]}, "task": {}}')
    with pytest.raises(UserInputError, match="TF_CONFIG must be JSON"):
        distribute.read_tf_config()
    monkeypatch.delenv("TF_CONFIG")
    with pytest.raises(UserInputError, match="needs the cluster"):
        distribute.read_tf_config()


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--strategy", "multi-worker"], "needs the cluster"),
        (["--workers", "127.0.0.1:1,127.0.0.1:x", "--worker-index", "0"], "HOST:PORT"),
        (["--workers", "127.0.0.1:1,127.0.0.1:2", "--worker-index", "2"], "0..1"),
        (["--workers", "127.0.0.1:1,127.0.0.1:2"], "needs --worker-index"),
        (["--worker-index", "1"], "needs --workers"),
        (
            ["--strategy", "mirrored", "--workers", "a:1", "--worker-index", "0"],
            "is for",
        ),
    ],
)
def test_cluster_mistakes_are_one_line_errors(
    tmp_path, monkeypatch, capsys, args, fragment
):
    from keras_convnets.cli import main

    monkeypatch.delenv("TF_CONFIG", raising=False)
    code = main(["train", "--recipe", "quick", "--workdir", str(tmp_path), *args])
    result = types.SimpleNamespace(returncode=code, stderr=capsys.readouterr().err)
    assert_one_line_error(result, fragment)
    assert not os.listdir(tmp_path)
    assert "TF_CONFIG" not in os.environ


@pytest.mark.slow  # the test above runs the same command's main in-process
def test_bad_tf_config_is_a_one_line_error_from_the_command(tmp_path):
    result = run_cli(
        "train", "--recipe", "quick", "--workdir", tmp_path, "--strategy",
        "multi-worker", env={"TF_CONFIG": '{"cluster": {}}'},
    )  # fmt: skip
    assert_one_line_error(result, "TF_CONFIG must be JSON")


def test_atomic_backup_commits_weights_and_epoch_together(tmp_path):
    from keras_convnets.training.callbacks import AtomicBackupAndRestore

    x, y = np.random.rand(16, 4), np.random.rand(16, 2)
    backup_dir = tmp_path / "backup"

    def model():
        m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        m.compile("sgd", "mse")
        return m

    class KillAt(keras.callbacks.Callback):
        def __init__(self, epoch):
            super().__init__()
            self.epoch, self.seen = epoch, []

        def on_epoch_begin(self, epoch, logs=None):
            self.seen.append(epoch)
            if epoch == self.epoch:
                raise RuntimeError("killed")

    backup = AtomicBackupAndRestore(str(backup_dir))
    with pytest.raises(RuntimeError):
        model().fit(x, y, epochs=4, callbacks=[backup, KillAt(2)], verbose=0)
    assert backup.read_state() == {
        "epoch": 2,
        "weights": "epoch-2.weights.h5",
        "previous": {"epoch": 1, "weights": "epoch-1.weights.h5"},
    }
    assert sorted(os.listdir(backup_dir)) == [
        "epoch-1.weights.h5",
        "epoch-2.weights.h5",
        "training_metadata.json",
    ]
    # A torn current file: the run resumes from the previous backup.
    (backup_dir / "epoch-2.weights.h5").write_bytes(b"torn")
    watch = KillAt(None)
    model().fit(
        x,
        y,
        epochs=4,
        callbacks=[AtomicBackupAndRestore(str(backup_dir)), watch],
        verbose=0,
    )
    assert watch.seen == [1, 2, 3]
    # Kept when fit ends: the run deletes it only once run.json is written.
    assert AtomicBackupAndRestore(str(backup_dir)).read_state()["epoch"] == 4
    shutil.rmtree(backup_dir)
    # A backup in Keras's own layout (runs interrupted before this class).
    with pytest.raises(RuntimeError):
        model().fit(
            x,
            y,
            epochs=4,
            callbacks=[keras.callbacks.BackupAndRestore(str(backup_dir)), KillAt(2)],
            verbose=0,
        )
    watch = KillAt(None)
    resumed = AtomicBackupAndRestore(str(backup_dir))
    model().fit(x, y, epochs=4, callbacks=[resumed, watch], verbose=0)
    assert watch.seen == [2, 3]


# ----------------------------------------------------------------------------
# MirroredStrategy: 2 logical CPU devices in one process.

_MIRRORED = """
import json, sys
from keras_convnets.training import distribute
distribute.split_cpu(2)
from keras_convnets.training.config import resolve_config
from keras_convnets.training.train import train_and_evaluate
record = train_and_evaluate(resolve_config({}, json.loads(sys.argv[1])), verbose=0,
                            strategy="mirrored")
print("RECORD " + json.dumps(record))
"""


# Slow: two real worker processes train like one process below, in `make test`.
@pytest.mark.slow
def test_mirrored_on_two_logical_cpus_matches_one_device(
    tmp_path, small_fashion_dir, single_process
):
    flags = {**FLAGS, "data_dir": small_fashion_dir, "workdir": str(tmp_path)}
    flags.update(run_name="m", epochs=1, jit_compile=True)
    result = subprocess.run(
        [sys.executable, "-c", _MIRRORED, json.dumps(flags)],
        cwd=REPO, env=_env(tmp_path), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    assert "batch 64 = 2 replicas x 32 [mirrored]" in result.stdout
    assert "Note: jit_compile is off" in result.stdout
    record = json.loads(result.stdout.split("RECORD ", 1)[1])
    assert record["distribution"]["replicas"] == 2
    assert record["jit_compile"] is False
    reference, weights = single_process(1)
    assert _close(record["history"]["loss"][0], reference["history"]["loss"][0])
    assert _close(record["test_loss"], reference["test_loss"])
    assert _max_weight_difference(tmp_path / "m", weights) < 1e-4


# ----------------------------------------------------------------------------
# MultiWorkerMirroredStrategy: 2 worker processes on 127.0.0.1.


# Slow: three processes (two workers and a reference); `make test` checks the
# TF_CONFIG handling in-process and runs a real chief and two search workers.
@pytest.mark.slow
def test_two_workers_train_like_one_process(
    tmp_path, small_fashion_dir, single_process
):
    workdir = tmp_path / "runs"
    args = _cli_flags(FLAGS) + ["--epochs", "1", "--data-dir", small_fashion_dir]
    args += ["--workdir", str(workdir), "--run-name", "mw"]
    procs, logs = _start_cluster(tmp_path, args, "fit")
    chief, worker = _wait(procs, logs)

    assert "batch 64 = 2 replicas x 32 [multi-worker, worker:0 (chief)]" in chief
    assert "Test accuracy:" in chief
    assert "worker:1: done; the chief wrote the run." in worker
    # Only the chief writes the run; the worker's folder is gone.
    assert sorted(os.listdir(workdir)) == [".mw.lock", "mw"]  # the lock beside the run
    assert not glob.glob(str(tmp_path / "tmp" / "keras-convnets-workers" / "*"))
    record = json.loads((workdir / "mw" / "run.json").read_text())
    assert record["distribution"] == {
        "strategy": "multi-worker",
        "replicas": 2,
        "workers": 2,
        "task": "worker:0",
        "chief": True,
    }
    reference, weights = single_process(1)
    loss, expected = record["history"]["loss"][0], reference["history"]["loss"][0]
    assert _close(loss, expected), (loss, expected)
    assert _close(record["test_loss"], reference["test_loss"])
    assert _max_weight_difference(workdir / "mw", weights) < 1e-4


def _backup_epoch(path):
    try:
        with open(path) as f:
            return json.load(f)["epoch"]
    except (OSError, ValueError, KeyError):
        return 0


@pytest.mark.slow
def test_killed_worker_then_restarted_cluster_resumes_from_backup(
    tmp_path, small_fashion_dir, single_process
):
    epochs = 6
    workdir = tmp_path / "runs"
    args = _cli_flags(FLAGS) + [
        "--epochs",
        str(epochs),
        "--data-dir",
        small_fashion_dir,
    ]
    args += ["--workdir", str(workdir), "--run-name", "ft"]
    procs, logs = _start_cluster(tmp_path, args, "first")
    chief_backup = workdir / "ft" / "backup" / "training_metadata.json"
    deadline = time.time() + 600
    try:
        while _backup_epoch(chief_backup) < 1:
            assert time.time() < deadline, logs[0].read_text()[-3000:]
            assert procs[0].poll() is None, logs[0].read_text()[-3000:]
            time.sleep(0.05)
        procs[1].send_signal(signal.SIGKILL)  # a worker dies mid-run...
        procs[1].wait()
        try:  # ...the chief then stalls in the next collective or fails
            procs[0].wait(timeout=5)
        except subprocess.TimeoutExpired:
            procs[0].send_signal(signal.SIGKILL)
            procs[0].wait()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    backed_up = _backup_epoch(chief_backup)
    assert 1 <= backed_up < epochs, logs[0].read_text()[-3000:]
    assert glob.glob(str(tmp_path / "tmp" / "keras-convnets-workers" / "*worker1"))

    # Restart the whole cluster with the same commands.
    procs, logs = _start_cluster(tmp_path, args, "second")
    chief, worker = _wait(procs, logs)
    assert "Resuming the unfinished run" in chief
    assert "Resuming the unfinished run" in worker
    assert "Epoch 1/" not in chief  # started from the backup, not from scratch
    record = json.loads((workdir / "ft" / "run.json").read_text())
    assert record["resumed"] is True
    assert record["history"]["epoch"] == list(range(1, epochs + 1))
    # The resumed run lands where an uninterrupted one does.
    reference, weights = single_process(epochs)
    loss, expected = record["history"]["loss"][-1], reference["history"]["loss"][-1]
    assert _close(loss, expected, 1e-3), (loss, expected)
    assert _max_weight_difference(workdir / "ft", weights) < 1e-3
    assert not glob.glob(str(tmp_path / "tmp" / "keras-convnets-workers" / "*"))


# ----------------------------------------------------------------------------
# The upstream bug, still there? (keras-team/keras#20585)

_PLAIN_FIT = """
import numpy as np, tensorflow as tf, keras
strategy = tf.distribute.MultiWorkerMirroredStrategy()
ds = tf.data.Dataset.from_tensor_slices(
    (np.zeros((32, 4), "float32"), np.zeros((32,), "int32"))).batch(8)
with strategy.scope():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
try:
    model.fit(ds, epochs=1, verbose=0)
    print("FIT WORKED")
except ValueError as e:
    print("FIT FAILED", str(e).replace(chr(10), " ")[-200:])
"""


@pytest.mark.slow
def test_plain_keras_fit_still_fails_under_multi_worker(tmp_path):
    """When this fails, upstream fixed `fit` under MultiWorkerMirroredStrategy
    and `distribute.keras_multi_worker_fixes` can go."""
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    procs = []
    for i in range(2):
        env = {**_env(tmp_path), "TF_CONFIG": json.dumps(
            distribute.tf_config_for(workers, i))}  # fmt: skip
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", _PLAIN_FIT], env=env, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True,
            )
        )  # fmt: skip
    outputs = [proc.communicate(timeout=300)[0] for proc in procs]
    for output in outputs:
        assert "FIT FAILED" in output, output[-2000:]
        assert "PerReplica" in output, output[-2000:]


def test_keras_fixes_last_one_fit_and_leave_keras_as_it_was():
    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer as tf_trainer

    original = tf_trainer.reduce_per_replica
    dist = distribute.Distribution(
        "multi-worker",
        tf.distribute.get_strategy(),
        task_type="worker",
        task_index=0,
        cluster={"worker": ["127.0.0.1:1", "127.0.0.1:2"]},
    )
    assert dist.multi_worker and dist.is_chief and dist.num_workers == 2
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile("sgd", "mse")
    with distribute.keras_multi_worker_fixes(model, dist):
        assert tf_trainer.reduce_per_replica is not original
        assert "_maybe_symbolic_build" in vars(model)
        # Outside a cluster the fixes step aside: a plain fit still works.
        model.fit(np.ones((8, 4)), np.ones((8, 2)), epochs=1, verbose=0)
    assert tf_trainer.reduce_per_replica is original
    assert "_maybe_symbolic_build" not in vars(model)

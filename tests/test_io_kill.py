"""Atomic writes under real kills and a real file-size limit (child processes)."""

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np

from keras_convnets.training import io


def _rewrite_forever(model, path):
    """Child body: rewrite model.keras in a loop, version k with bias == k."""
    try:
        version = 0
        while True:
            version += 1
            model.layers[-1].bias.assign(np.full(256, float(version), np.float32))
            io.save_model_atomic(model, path)
    finally:
        os._exit(0)


def _temps(directory):
    return [n for n in os.listdir(directory) if ".tmp" in n]


def test_model_file_survives_kills_at_random_moments(tmp_path):
    path = str(tmp_path / "model.keras")
    inputs = keras.Input((64,))
    model = keras.Model(inputs, keras.layers.Dense(256)(inputs))
    rng = random.Random(0)
    versions = []
    for _ in range(20):
        # fork: the child inherits the imported TensorFlow (no 5 s start-up).
        pid = os.fork()
        if pid == 0:
            _rewrite_forever(model, path)
        time.sleep(rng.uniform(0.05, 0.5))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        if not os.path.exists(path):  # killed before its first write finished
            continue
        loaded = keras.saving.load_model(path)  # the old or the new version, whole
        bias = loaded.layers[-1].bias.numpy()
        assert np.all(bias == bias[0]) and bias[0] >= 1
        versions.append(int(bias[0]))
    assert len(versions) >= 15, versions
    # Kills mid-write leave temporary files of dead writers; the next write of
    # the same file sweeps them.
    io.save_model_atomic(model, path)
    assert _temps(tmp_path) == []


_FULL_DISK = textwrap.dedent(
    """
    import os, resource, signal, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    import keras
    from keras_convnets.errors import UserInputError
    from keras_convnets.training import io
    inputs = keras.Input((512,))
    model = keras.Model(inputs, keras.layers.Dense(512)(inputs))  # ~1 MB of weights
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of a signal
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
    try:
        io.save_model_atomic(model, sys.argv[1])
    except UserInputError as e:
        print("ERROR:", e)
        sys.exit(2)
    """
)


def test_full_disk_keeps_the_previous_file(tmp_path):
    path = tmp_path / "model.keras"
    inputs = keras.Input((4,))
    previous = keras.Model(inputs, keras.layers.Dense(3)(inputs))
    io.save_model_atomic(previous, str(path))
    before = path.read_bytes()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [sys.executable, "-c", _FULL_DISK, str(path)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"ERROR: Cannot write {path}" in result.stdout
    assert "previous file is kept" in result.stdout
    assert path.read_bytes() == before
    assert _temps(tmp_path) == []

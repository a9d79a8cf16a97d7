"""Atomic writes and run locks."""

import json
import os

import keras
import numpy as np
import pytest

from keras_convnets.errors import UserInputError
from keras_convnets.training import io


def _leftovers(directory):
    return [n for n in os.listdir(directory) if ".tmp" in n]


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    path = tmp_path / "a.json"
    io.atomic_write_json(str(path), {"v": 1})
    io.atomic_write_json(str(path), {"v": 2})
    assert json.loads(path.read_text()) == {"v": 2}
    assert _leftovers(tmp_path) == []
    assert oct(path.stat().st_mode & 0o777) != oct(0o600)  # not mkstemp's mode


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "a.txt"
    io.atomic_write_bytes(str(path), b"old")
    with pytest.raises(RuntimeError), io.atomic_path(str(path)) as tmp:
        with open(tmp, "wb") as f:
            f.write(b"half")
        raise RuntimeError("crash mid-write")
    assert path.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_full_disk_gives_a_clear_error(tmp_path):
    path = tmp_path / "a.bin"
    io.atomic_write_bytes(str(path), b"old")
    with (
        pytest.raises(UserInputError, match="previous file is kept"),
        io.atomic_path(str(path)),
    ):
        raise OSError(28, "No space left on device")
    assert path.read_bytes() == b"old"


def test_save_model_atomic_loads_back(tmp_path):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    path = tmp_path / "m.keras"
    io.save_model_atomic(model, str(path))
    loaded = keras.saving.load_model(str(path))
    x = np.ones((1, 4), np.float32)
    np.testing.assert_allclose(loaded(x), model(x))
    assert _leftovers(tmp_path) == []
    with pytest.raises(UserInputError, match="must end in .keras"):
        io.save_model_atomic(model, str(tmp_path / "m.h5"))


def test_weights_temp_name_keeps_suffix(tmp_path):
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    io.save_weights_atomic(model, str(tmp_path / "best.weights.h5"))
    model.load_weights(str(tmp_path / "best.weights.h5"))


def test_run_lock_refuses_a_second_holder(tmp_path):
    with io.run_lock(str(tmp_path)):
        with pytest.raises(
            UserInputError, match=rf"in use by another process \(pid {os.getpid()}\)"
        ):
            with io.run_lock(str(tmp_path)):
                pass
    with io.run_lock(str(tmp_path)):  # released when the holder exits
        pass


def test_read_json_reports_corruption(tmp_path):
    path = tmp_path / "r.json"
    path.write_text('{"a": ')
    with pytest.raises(UserInputError, match=r"r.json: corrupt JSON"):
        io.read_json(str(path))


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    import subprocess
    import sys

    # A child takes the lock and is killed while holding it.
    code = (
        "import sys, time; from keras_convnets.training import io\n"
        "with io.run_lock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(60)"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout.readline().strip() == "locked"
    with pytest.raises(UserInputError, match=f"pid {child.pid}"):
        with io.run_lock(str(tmp_path)):
            pass
    child.kill()
    child.wait()
    assert (tmp_path / ".lock").exists()  # the stale lock file is still there...
    with io.run_lock(str(tmp_path)):  # ...and taken over
        assert (tmp_path / ".lock").read_text() == str(os.getpid())

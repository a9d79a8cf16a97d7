"""Atomic writes and run locks."""

import json
import os

import keras
import numpy as np
import pytest

from conftest import hold_lock
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
    # A child takes the lock and is killed while holding it.
    child = hold_lock(tmp_path / ".lock")
    with pytest.raises(UserInputError, match=f"pid {child.pid}"):
        with io.run_lock(str(tmp_path)):
            pass
    child.kill()
    child.wait()
    assert (tmp_path / ".lock").exists()  # the stale lock file is still there...
    with io.run_lock(str(tmp_path)):  # ...and taken over
        assert (tmp_path / ".lock").read_text() == str(os.getpid())


@pytest.mark.parametrize(
    "data, match",
    [
        (b'{"a": "caf\xe9"}', r"not UTF-8 text \(byte 10\)"),
        (b"[" * 200_000, "corrupt JSON"),
        (b"", "corrupt JSON"),
    ],
)
def test_read_json_gives_one_clear_error_for_any_bytes(tmp_path, data, match):
    path = tmp_path / "run.json"
    path.write_bytes(data)
    with pytest.raises(UserInputError, match=match) as e:
        io.read_json(str(path))
    assert str(path) in str(e.value)


def test_read_json_bounds_the_size_before_reading(tmp_path):
    path = tmp_path / "big.json"
    path.write_text("[" + "0," * 100 + "0]")
    with pytest.raises(UserInputError, match="more than the 64 a JSON file"):
        io.read_json(str(path), max_bytes=64)


_ENOSPC_CHILD = """
import sys
import keras
from keras_convnets.errors import UserInputError
from keras_convnets.training import io
inputs = keras.Input((100,))
model = keras.Model(inputs, keras.layers.Dense(4000)(inputs))  # 1.6 MB of weights
try:
    io.save_weights_atomic(model, sys.argv[1])
except UserInputError as e:
    print("refused:", e, flush=True)
"""


def test_a_real_full_disk_exits_cleanly(tmp_path):
    """A 1.2 MB tmpfs fills up during a weights write: one clear error, exit 0.

    Before, the error was right but the process died at exit with a
    segmentation fault in h5py's cleanup of the file Keras left open.
    """
    import subprocess
    import sys

    mount = tmp_path / "small"
    mount.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1200k", "tmpfs", str(mount)],
        capture_output=True,
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        target = mount / "backup.weights.h5"
        child = subprocess.run(
            [sys.executable, "-c", _ENOSPC_CHILD, str(target)],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        )
        assert child.returncode == 0, (child.returncode, child.stderr[-2000:])
        assert "refused: Cannot write" in child.stdout
        assert "No space left on device" in child.stdout
        assert os.listdir(mount) == []  # no temp file left, no target
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_file_lock_names_what_it_guards(tmp_path):
    lock = str(tmp_path / ".run.lock")
    with io.file_lock(lock, what="saved_models/run"):
        with pytest.raises(UserInputError, match="saved_models/run is in use"):
            with io.file_lock(lock, what="saved_models/run"):
                pass

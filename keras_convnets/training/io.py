"""Files that survive crashes: atomic writes, run directories, run locks.

Every file the package writes goes through `atomic_path`: the content is written
to a temporary file in the same directory, flushed and fsync'ed, then moved over
the target with `os.replace` (atomic on POSIX), and the directory is fsync'ed.
A reader therefore sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import json
import os
import tempfile

from keras_convnets.errors import UserInputError


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# mkstemp creates 0600 files; give outputs the permissions a plain open() would.
_FILE_MODE = 0o666 & ~_current_umask()


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yields a temporary path next to `path`; moves it over `path` on success.

    The temporary name keeps the target's suffix (Keras checks that a model file
    ends in `.keras` and weights in `.weights.h5`). If the block raises, the
    temporary file is removed and `path` is untouched.

    Example:

    ```python
    with atomic_path("run/model.keras") as tmp:
        model.save(tmp)
    ```
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    base = os.path.basename(path)
    suffix = (
        ".weights.h5" if base.endswith(".weights.h5") else os.path.splitext(base)[1]
    )
    sweep_stale_temps(directory, base)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{base}.{os.getpid()}.", suffix=f".tmp{suffix}", dir=directory
    )
    os.close(fd)
    os.chmod(tmp, _FILE_MODE)
    try:
        yield tmp
        # Some writers (h5py, zipfile) replace rather than reuse the file: open
        # whatever is at tmp now to flush it to disk.
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(directory)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        if isinstance(e, OSError) and e.errno in (
            errno.ENOSPC,
            errno.EFBIG,
            errno.EDQUOT,
        ):
            raise UserInputError(
                f"Cannot write {path}: {e.strerror}; the previous file is kept."
            ) from None
        raise


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_temps(directory: str, base: str | None = None) -> list[str]:
    """Removes temporary files that writers killed mid-write left behind.

    A temporary file is named `.<target>.<pid>.<random>.tmp<suffix>`; it is
    stale when process `pid` no longer exists. Called before every atomic
    write (for that target) and when a run resumes (for its directory).

    Returns:
        The removed paths.
    """
    removed = []
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return removed
    for name in names:
        if not name.startswith(".") or ".tmp" not in name:
            continue
        head = name.partition(".tmp")[0]
        parts = head[1:].rsplit(".", 2)  # target, pid, random
        if len(parts) != 3 or not parts[1].isdigit():
            continue
        if (base is not None and parts[0] != base) or _alive(int(parts[1])):
            continue
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(directory, name))
            removed.append(os.path.join(directory, name))
    return removed


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Writes `data` to `path` atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def atomic_write_json(path: str, obj) -> None:
    """Writes `obj` as indented JSON to `path` atomically."""
    text = json.dumps(obj, indent=2, sort_keys=False, default=json_default)
    atomic_write_bytes(path, (text + "\n").encode("utf-8"))


def json_default(value):
    """`json.dumps(default=...)` for NumPy/TensorFlow scalars and arrays, sets, tuples."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def save_model_atomic(model, path: str) -> None:
    """Saves a Keras model as a `.keras` file atomically."""
    if not str(path).endswith(".keras"):
        raise UserInputError(
            f"A model file must end in .keras. Received: path={path!r}"
        )
    with atomic_path(path) as tmp:
        model.save(tmp)


def save_weights_atomic(model, path: str) -> None:
    """Saves a Keras model's weights as a `.weights.h5` file atomically.

    When the write fails (a full disk), Keras leaves its `h5py.File` open; at
    interpreter exit h5py then retries the flush on the deleted temporary file
    and the process dies with a segmentation fault (measured on a full 1.2 MB
    tmpfs: exit -11 after the right message). The file is closed here, so the
    error reaches the caller and the process exits normally.
    """
    with atomic_path(path) as tmp:
        try:
            model.save_weights(tmp)
        except BaseException:
            _close_h5_files(tmp)
            raise


def _close_h5_files(path: str) -> None:
    """Closes every open `h5py.File` on `path`, ignoring the errors of closing."""
    import gc

    import h5py

    target = os.path.abspath(path)
    for obj in gc.get_objects():
        if not isinstance(obj, h5py.File):
            continue
        try:
            if obj.id.valid and os.path.abspath(obj.filename) == target:
                obj.close()
        except Exception:  # noqa: BLE001 - closing a file on a full disk fails too
            pass


# The largest JSON file the package reads back (configs, run records, search
# state): a run.json with a few thousand epochs of history is under 1 MB.
MAX_JSON_BYTES = 64 * 1024 * 1024


def read_text(path: str, max_bytes: int, label: str = "file") -> str:
    """Reads a UTF-8 text file of at most `max_bytes`; one clear error otherwise.

    The size is checked before anything is read (and the read itself is
    bounded, should the file grow meanwhile); bytes that are not UTF-8 are a
    `UserInputError` naming the file and the offset.

    Args:
        path: str. The file.
        max_bytes: int. The largest size accepted.
        label: str. What the file is, for the errors ("config file").
    """
    try:
        size = os.path.getsize(path)
        if size > max_bytes:
            raise UserInputError(
                f"{path}: {size:,} bytes, more than the {max_bytes:,} a {label} "
                f"can be; refusing to read it."
            )
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except IsADirectoryError:
        raise UserInputError(f"{path}: is a folder, not a {label}.") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserInputError(
            f"{path}: not UTF-8 text (byte {e.start}); cannot read the {label}."
        ) from None


def read_json(path: str, max_bytes: int = MAX_JSON_BYTES):
    """Reads a JSON file the package wrote; a clear error if it is corrupt.

    The size is checked before anything is read, and bytes that are not UTF-8,
    JSON that is malformed or nested too deeply for Python's parser are one
    `UserInputError` naming the file.
    """
    text = read_text(path, max_bytes, "JSON file of the package")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise UserInputError(
            f"{path}: corrupt JSON ({e.msg} at line {e.lineno})."
        ) from None
    except RecursionError:
        raise UserInputError(f"{path}: corrupt JSON (nested too deeply).") from None


def timestamp() -> str:
    return datetime.datetime.now().strftime("%Y%m%d-%H%M%S")


@contextlib.contextmanager
def file_lock(lock_path: str, what: str | None = None, hint: str = "--run-name"):
    """Holds an exclusive lock on `lock_path` for the life of a process.

    A second process gets a clear error naming the holder's pid instead of
    interleaving its writes. The lock is an `flock`: the kernel releases it
    when its process dies, so the file a killed process leaves behind is
    taken over by the next one. Lock files are never deleted (deleting one
    while another process waits on it would let two processes hold "it").

    Args:
        lock_path: str. The lock file (created if missing).
        what: str. What the lock guards, for the error. Defaults to the
            lock's folder.
        hint: str. What the error suggests choosing instead.
    """
    what = what or os.path.dirname(lock_path)
    os.makedirs(os.path.dirname(os.path.abspath(lock_path)), exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise UserInputError(
                f"{what} is in use by another process (pid {holder}); wait for "
                f"it or choose another {hint}."
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        os.close(fd)


def run_lock(directory: str):
    """`file_lock` on `directory/.lock` (a search's project folder)."""
    os.makedirs(directory, exist_ok=True)
    return file_lock(os.path.join(directory, ".lock"), what=directory)

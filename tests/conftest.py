"""Shared fixtures: seeding, the real Fashion-MNIST files, small real subsets."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from keras_convnets.data import datasets  # noqa: E402
from keras_convnets.data.idx import read_idx_pair, write_idx  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)


@pytest.fixture(scope="session")
def fashion_mnist_dir():
    """The folder of the real Fashion-MNIST IDX files.

    Skipped where they are missing, except under CI, where `.ci/run` installs
    them: there a missing dataset is a failure, not a silent skip.
    """
    directory = datasets.find_idx_source("fashion_mnist")
    if directory is None:
        message = "Fashion-MNIST IDX files not found (run `make data`)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return directory


def _fashion_subset(tmp_path_factory, fashion_mnist_dir, name, sizes):
    out = tmp_path_factory.mktemp(name)
    for split, n in zip(("train", "test"), sizes):
        images_path, labels_path = datasets._find_idx_files(fashion_mnist_dir, split)
        images, labels = read_idx_pair(images_path, labels_path, 10)
        stem_images, stem_labels = datasets._IDX_FILES[split]
        write_idx(str(out / f"{stem_images}.gz"), images[:n, :, :, 0])
        write_idx(str(out / f"{stem_labels}.gz"), labels[:n])
    return str(out)


@pytest.fixture(scope="session")
def small_fashion_dir(tmp_path_factory, fashion_mnist_dir):
    """A small real subset of Fashion-MNIST as IDX files: 1,200 train, 300 test.

    The first images of each official split, so every test run sees the same
    real images, at a size that trains in seconds.
    """
    return _fashion_subset(
        tmp_path_factory, fashion_mnist_dir, "fashion_small", (1200, 300)
    )


@pytest.fixture(scope="session")
def tiny_fashion_dir(tmp_path_factory, fashion_mnist_dir):
    """The first 400 train and 100 test images of Fashion-MNIST: for tests of
    what a run writes (structure, not accuracy) that train several models."""
    return _fashion_subset(
        tmp_path_factory, fashion_mnist_dir, "fashion_tiny", (400, 100)
    )


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory, small_fashion_dir):
    """A real run directory (model.keras + run.json), trained once per test
    process: the quick recipe, 1 epoch on the small Fashion-MNIST subset."""
    from keras_convnets.training.config import resolve_config
    from keras_convnets.training.train import train_and_evaluate

    workdir = tmp_path_factory.mktemp("shared_runs")
    flags = {
        "recipe": "quick",
        "data_dir": small_fashion_dir,
        "workdir": str(workdir),
        "run_name": "r",
        "epochs": 1,
    }
    train_and_evaluate(resolve_config({}, flags), verbose=0)
    return str(workdir / "r")


def quick_config(tmp_path, data_dir, **overrides):
    """A resolved `quick` config training 2 epochs on `data_dir` into tmp_path/run."""
    from keras_convnets.training.config import resolve_config

    flags = dict(
        recipe="quick",
        data_dir=data_dir,
        workdir=str(tmp_path),
        run_name="run",
        epochs=2,
        batch_size=64,
        train_fraction=1.0,
    )
    flags.update(overrides)
    return resolve_config({}, flags)


def run_cli(*args, cwd=None, timeout=300, env=None, check=False):
    """Runs `python -m keras_convnets ARGS` as a real subprocess."""
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    result = subprocess.run(
        [sys.executable, "-m", "keras_convnets", *map(str, args)],
        cwd=cwd or REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"exit {result.returncode}\nstdout:\n{result.stdout[-3000:]}\n"
            f"stderr:\n{result.stderr[-3000:]}"
        )
    return result


def assert_one_line_error(result, *fragments, code=2):
    """A user error: the given exit code, one line on stderr, no traceback."""
    assert result.returncode == code, (result.returncode, result.stderr[-2000:])
    # TensorFlow's C++ start-up lines (I0000..., E0000 ... cuInit) may precede
    # ours on stderr; the package's own message is the one `keras-convnets` line.
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("keras-convnets")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def hold_lock(path):
    """Starts a child process that holds `io.file_lock(path)` until it is killed.

    Returns the `subprocess.Popen` once the child has the lock (it says so on
    stdout), so the caller never races the child's start-up.
    """
    code = (
        "import sys, time; from keras_convnets.training import io\n"
        "with io.file_lock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(600)"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout.readline().strip() == "locked"
    return child


def cli_in_process(*args, env=None):
    """Runs `keras-convnets ARGS` in this process: `cli.main` with stdout and
    stderr captured, argparse's `SystemExit` turned into the exit code.

    For the error and help paths, which end before any training: the same code
    as the real command, without paying TensorFlow's start-up (seconds) for each
    case. `run_cli` keeps the real-process checks. Returns an object with
    `returncode`, `stdout` and `stderr` like `subprocess.run`'s.
    """
    import contextlib
    import io
    import signal
    import types

    from keras_convnets import cli

    out, err = io.StringIO(), io.StringIO()
    saved_env = {k: os.environ.get(k) for k in (env or {})}
    saved_sigterm = signal.getsignal(signal.SIGTERM)
    os.environ.update(env or {})
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main([str(a) for a in args])
            except SystemExit as e:
                code = (
                    e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
                )
    finally:
        signal.signal(signal.SIGTERM, saved_sigterm)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return types.SimpleNamespace(
        returncode=code, stdout=out.getvalue(), stderr=err.getvalue()
    )

"""The CLI as a user runs it: real subprocesses on a small real Fashion-MNIST subset."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO, assert_one_line_error, cli_in_process, run_cli
from keras_convnets.data import datasets
from keras_convnets.data.idx import read_idx_pair


def _train_args(workdir, data_dir, run_name="run", epochs=2, *extra):
    return [
        "train",
        "--recipe", "quick",
        "--data-dir", data_dir,
        "--train-fraction", "1.0",
        "--epochs", str(epochs),
        "--batch-size", "64",
        "--workdir", workdir,
        "--run-name", run_name,
        *extra,
    ]  # fmt: skip


def test_train_evaluate_predict(tmp_path, small_fashion_dir):
    result = run_cli(*_train_args(tmp_path, small_fashion_dir), check=True)
    out = result.stdout
    assert "Epoch 1/2" in out and "Epoch 2/2" in out  # Keras's own progress output
    run = tmp_path / "run"
    record = json.loads((run / "run.json").read_text())
    assert f"Model:         {run / 'model.keras'}" in out
    assert f"tensorboard --logdir {run / 'logs'}" in out
    assert f"Test accuracy: {record['test_accuracy']:.4f}" in out

    evaluated = run_cli("evaluate", run, "--json", check=True)
    metrics = json.loads(evaluated.stdout.strip().splitlines()[-1])
    assert metrics["accuracy"] == pytest.approx(record["test_accuracy"], abs=1e-9)
    assert metrics["loss"] == pytest.approx(record["test_loss"], rel=1e-6)

    # A bare .keras file with an explicit dataset (the command's main, here).
    evaluated = cli_in_process(
        "evaluate", run / "model.keras", "--dataset", "fashion_mnist",
        "--data-dir", small_fashion_dir, "--json",
    )  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert json.loads(evaluated.stdout.strip().splitlines()[-1])["examples"] == 300

    # Predict on real test images written as PNG files.
    images_path, labels_path = datasets._find_idx_files(small_fashion_dir, "test")
    images, labels = read_idx_pair(images_path, labels_path, 10)
    files = []
    for i in range(3):
        path = tmp_path / f"img{i}.png"
        path.write_bytes(tf.io.encode_png(images[i]).numpy())
        files.append(str(path))
    predicted = run_cli("predict", run, *files, "--top-k", "2", "--json", check=True)
    results = json.loads(predicted.stdout[predicted.stdout.index("[") :])
    assert [r["image"] for r in results] == files
    names = set(record["dataset"]["class_names"])
    for r in results:
        assert len(r["top"]) == 2 and {t["class"] for t in r["top"]} <= names
        assert r["top"][0]["probability"] >= r["top"][1]["probability"]
    # The CLI's predictions are the model's: same classes as an in-process forward pass.
    from keras_convnets.inference import load_model

    model, _ = load_model(str(run))
    expected = np.argmax(
        model.predict(images[:3].astype("float32") / 255.0, verbose=0), -1
    )
    assert [r["top"][0]["index"] for r in results] == expected.tolist()


def _wait_for(predicate, process, timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        if process.poll() is not None:
            raise AssertionError(f"process ended early: {process.communicate()}")
        time.sleep(0.05)
    raise AssertionError("timed out")


def _epochs_done(run):
    path = run / "history.json"
    try:
        return len(json.loads(path.read_text()))
    except (FileNotFoundError, json.JSONDecodeError):
        return 0


# Runs the CLI in a child that SIGKILLs itself right after epoch K's end-of-epoch
# callbacks (backup first, history last): a kill at a known moment, whatever the
# machine's load, where polling from outside could land epochs later.
_KILLED_AFTER_EPOCH = """
import os, signal, sys
from keras_convnets import cli
from keras_convnets.training import callbacks
kill_after = int(sys.argv[1])
original = callbacks.EpochHistory.on_epoch_end
def on_epoch_end(self, epoch, logs=None):
    original(self, epoch, logs)
    if epoch + 1 == kill_after:
        os.kill(os.getpid(), signal.SIGKILL)
callbacks.EpochHistory.on_epoch_end = on_epoch_end
sys.exit(cli.main(sys.argv[2:]))
"""


def _run_killed_after_epoch(epoch, args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [sys.executable, "-c", _KILLED_AFTER_EPOCH, str(epoch), *map(str, args)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == -signal.SIGKILL, (
        result.returncode,
        result.stderr[-2000:],
    )
    return result


def _popen(args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen(
        [sys.executable, "-m", "keras_convnets", *map(str, args)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_killed_run_resumes_exactly(tmp_path, small_fashion_dir):
    """SIGKILL after epoch 2 of 4, rerun: resumes at epoch 3 and ends bit-equal
    to an uninterrupted run (same shuffles, augmentation and dropout masks).

    On this quarter of the subset, epochs 2 and 3 tie on validation accuracy:
    the uninterrupted run keeps epoch 2, and so must the resumed one (it kept
    epoch 3 while the best checkpoint came after the backup and the kill
    between them dropped epoch 2's candidacy)."""
    extra = ("--augment", "flip-translate", "--train-fraction", "0.25")
    run_cli(*_train_args(tmp_path, small_fashion_dir, "whole", 4, *extra), check=True)

    args = _train_args(tmp_path, small_fashion_dir, "killed", 4, *extra)
    _run_killed_after_epoch(2, args)
    run = tmp_path / "killed"
    done = _epochs_done(run)
    assert done == 2, done
    assert (run / "backup").is_dir() and not (run / "run.json").exists()

    result = run_cli(*args, check=True)
    assert f"Resuming the unfinished run in {run}" in result.stdout
    assert result.stdout.split("Epoch ")[1].startswith(f"{done + 1}/4")
    record = json.loads((run / "run.json").read_text())
    whole = json.loads((tmp_path / "whole" / "run.json").read_text())
    assert record["resumed"] is True and not (run / "backup").exists()
    assert record["history"]["epoch"] == list(range(1, 5))
    assert record["history"]["loss"] == whole["history"]["loss"]
    assert record["history"]["val_accuracy"] == whole["history"]["val_accuracy"]
    assert record["best_epoch"] == whole["best_epoch"]
    import keras

    resumed = keras.saving.load_model(run / "model.keras").get_weights()
    uninterrupted = keras.saving.load_model(
        tmp_path / "whole" / "model.keras"
    ).get_weights()
    for a, b in zip(resumed, uninterrupted, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow  # the kill and resume above, with the run named by default
def test_default_run_name_resumes_the_unfinished_run(tmp_path, small_fashion_dir):
    args = _train_args(
        tmp_path, small_fashion_dir, "unused", 2, "--train-fraction", "0.5"
    )
    args = args[: args.index("--run-name")]  # no --run-name: a timestamped one
    _run_killed_after_epoch(1, args)
    [run] = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    assert run.name.startswith("simple_cnn_tiny-fashion_mnist-")
    result = run_cli(*args, check=True)
    assert f"Resuming the unfinished run in {run}" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".{run.name}.lock", run.name]


def test_sigterm_stops_cleanly_and_keeps_the_backup(tmp_path, small_fashion_dir):
    process = _popen(_train_args(tmp_path, small_fashion_dir, "run", 25))
    run = tmp_path / "run"
    _wait_for(lambda: _epochs_done(run) >= 1, process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130
    assert "interrupted; rerun the same command to resume" in stderr
    assert (run / "backup").is_dir() and not (run / "run.json").exists()


def test_diverging_run_stops_with_a_clear_error(tmp_path, small_fashion_dir):
    result = cli_in_process(
        *_train_args(tmp_path, small_fashion_dir, "nan", 2),
        "--optimizer", "sgd", "--schedule", "constant", "--learning-rate", "1e30",
    )  # fmt: skip
    assert_one_line_error(result, "Training diverged: loss became", code=3)


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["train", "--model", "no_such_net"], ["Unknown model 'no_such_net'"]),
        (["train", "--dataset", "no_such_data"], ["Unknown dataset 'no_such_data'"]),
        (["train", "--epochs", "three"], ["argument --epochs: expected an integer"]),
        (["train", "--epochs", "0"], ["Received: epochs=0"]),
        (["train", "--seed", "-1"], ["seed must be in [0, 2**32 - 1]"]),
        (["train", "--image-size", "28,28,3"], ["--image-size: expected H,W with"]),
        (["train", "--learning-rate", "inf"], ["learning_rate must be a finite"]),
        (["train", "--run-name", "r" * 300], ["run_name must be a folder name"]),
        (
            ["train", "--model-kwargs", '{"dropot": 0.5}'],
            ["takes no argument 'dropot' (did you mean 'dropout'?)"],
        ),
        (["train", "--optimizer", "lbfgs"], ["invalid choice: 'lbfgs'"]),
        (["train", "--precision", "fp64"], ["invalid choice: 'fp64'"]),
        (
            ["train", "--config", "missing.yaml"],
            ["Config file not found: missing.yaml"],
        ),
        (["evaluate", "nowhere/model.keras"], ["nowhere/model.keras not found"]),
        (["predict", "nowhere"], ["the following arguments are required: IMAGE"]),
        (["no-such-command"], ["invalid choice: 'no-such-command'"]),
    ],
)
def test_user_errors_are_one_line(args, fragments, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths in the cases resolve here
    if args[0] == "train":
        args = [*args, "--workdir", tmp_path]
    assert_one_line_error(cli_in_process(*args), *fragments)
    assert os.listdir(tmp_path) == []  # a refused command writes nothing


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["train", "--model", "no_such_net"], ["Unknown model 'no_such_net'"]),
        pytest.param(
            ["train", "--epochs", "three"],
            ["argument --epochs: expected an integer"],
            marks=pytest.mark.slow,
        ),
    ],
)
def test_user_errors_are_one_line_from_a_real_process(args, fragments, tmp_path):
    """The same as above through a real `python -m keras_convnets`: exit status
    2 and one line, with TensorFlow's own start-up lines on stderr as well."""
    assert_one_line_error(run_cli(*args, "--workdir", tmp_path), *fragments)


def test_corrupt_data_names_the_file(tmp_path, small_fashion_dir):
    for name in os.listdir(small_fashion_dir):
        data = open(os.path.join(small_fashion_dir, name), "rb").read()
        if name.startswith("train-images"):
            data = data[: len(data) // 2]
        (tmp_path / name).write_bytes(data)
    result = cli_in_process(*_train_args(tmp_path / "w", str(tmp_path)))
    assert_one_line_error(result, "train-images-idx3-ubyte.gz", "truncated gzip")


def test_bad_config_key_names_the_file(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("epoch: 3\n")
    result = cli_in_process("train", "--config", config)
    assert_one_line_error(result, str(config), "unknown config key 'epoch'")


def test_unreadable_files_and_paths_are_one_line(tmp_path, small_fashion_dir):
    config = tmp_path / "c.yaml"
    config.write_bytes(b"epochs: 1\nrun_name: caf\xe9\n")
    result = cli_in_process("train", "--config", config)
    assert_one_line_error(result, str(config), "not UTF-8 text")
    workdir = tmp_path / "file"
    workdir.write_text("")
    result = cli_in_process(
        *_train_args(tmp_path, small_fashion_dir, "r", 1), "--workdir", workdir
    )
    assert_one_line_error(result, f"--workdir {workdir} is a file, not a folder")


def test_predict_rejects_a_non_image(tmp_path, run_dir):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    assert_one_line_error(cli_in_process("predict", run_dir, bad), "notes.png")


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "models"])
def test_every_subcommand_has_help_with_an_example(command):
    result = cli_in_process(command, "--help")
    assert result.returncode == 0, result.stderr
    assert "example" in result.stdout and f"keras-convnets {command}" in result.stdout


def test_models_lists_the_registry():
    result = cli_in_process(
        "models", "simple_cnn", "mlp", "alexnet", "--input-shape", "32,32,3", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads(result.stdout[result.stdout.index("[") :])
    assert [r["name"] for r in rows] == ["alexnet", "mlp", "simple_cnn"]  # sorted
    by_name = {r["name"]: r for r in rows}
    assert by_name["mlp"]["params"] == 32 * 32 * 3 * 512 + 512 + 512 * 256 + 256 + 2570
    assert by_name["simple_cnn"]["flops"] > 0
    assert (
        by_name["alexnet"]["params"] is None and "67x67" in by_name["alexnet"]["error"]
    )


def test_bad_image_folder_fails_before_any_run_directory(tmp_path, rng):
    data = tmp_path / "data"
    for cls in ("a", "b"):
        for i in range(5):
            path = data / cls / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(
                tf.io.encode_png(
                    rng.integers(0, 255, (8, 8, 1), dtype=np.uint8)
                ).numpy()
            )
    (data / "a" / "3.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    workdir = tmp_path / "runs"
    result = cli_in_process(
        "train", "--dataset", data, "--workdir", workdir, "--epochs", "1"
    )
    assert_one_line_error(result, "unreadable image file", "3.png")
    assert not workdir.exists()  # nothing written


def test_empty_split_is_a_clear_error(tmp_path, rng):
    data = tmp_path / "data"
    for cls in ("a", "b"):
        for i in range(2):  # 4 images: the 10% test hold-out is empty
            path = data / cls / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(
                tf.io.encode_png(
                    rng.integers(0, 255, (8, 8, 1), dtype=np.uint8)
                ).numpy()
            )
    result = cli_in_process("train", "--dataset", data, "--workdir", tmp_path / "runs")
    assert_one_line_error(result, "empty test and validation split")

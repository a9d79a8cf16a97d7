"""train_and_evaluate in-process: outputs, model selection, optimizers, NaN stop."""

import json
import os

import keras
import numpy as np
import pytest

from conftest import hold_lock
from conftest import quick_config as _config
from keras_convnets.errors import TrainingDivergedError, UserInputError
from keras_convnets.inference import evaluate, evaluate_model, load_model
from keras_convnets.training import callbacks as kc_callbacks
from keras_convnets.training.config import resolve_config
from keras_convnets.training.schedules import OneCycle
from keras_convnets.training.train import build_optimizer, train_and_evaluate


def test_train_writes_a_complete_run(tmp_path, small_fashion_dir):
    record = train_and_evaluate(_config(tmp_path, small_fashion_dir), verbose=0)
    run = tmp_path / "run"
    assert sorted(os.listdir(run)) == [
        "config.json",
        "history.json",
        "logs",
        "model.keras",
        "run.json",
    ]  # no backup/ or checkpoints/ left once finished
    assert (tmp_path / ".run.lock").is_file()  # beside the run, not in it
    on_disk = json.loads((run / "run.json").read_text())
    for key in (
        "config",
        "dataset",
        "params",
        "history",
        "test_accuracy",
        "test_loss",
        "wall_time_s",
        "versions",
    ):
        assert key in on_disk, key
    assert on_disk["test_accuracy"] == record["test_accuracy"]
    assert on_disk["dataset"]["sizes"] == {
        "train": 1080,
        "validation": 120,
        "test": 300,
    }
    assert on_disk["history"]["epoch"] == [1, 2]
    assert len(on_disk["history"]["val_accuracy"]) == 2
    assert on_disk["versions"]["keras"] == keras.__version__
    assert on_disk["precision"] == {
        "requested": "fp32",
        "precision": "fp32",
        "how": "given",
    }
    # Issue 19's epoch turnover, timed in every run: 2 epochs, 1 turnover.
    timing = on_disk["epoch_timing"]
    assert len(timing["first_step_s"]) == len(timing["validation_s"]) == 2
    assert len(timing["turnover_s"]) == 1 and timing["turnover_s"][0] > 0
    assert json.loads((run / "config.json").read_text()) == on_disk["config"]
    # The saved model alone reproduces the reported test accuracy.
    result = evaluate(str(run))
    assert result["accuracy"] == pytest.approx(record["test_accuracy"], abs=1e-9)
    assert result["examples"] == 300
    # Learning is real: well above chance (10%) after 2 short epochs.
    assert record["test_accuracy"] > 0.4
    # TensorBoard got epoch scalars (incl. learning rate) and sample images.
    train_tags = _tensorboard_tags(run / "logs" / "train")
    assert {"epoch_loss", "epoch_accuracy", "epoch_learning_rate"} <= train_tags
    assert "epoch_accuracy" in _tensorboard_tags(run / "logs" / "validation")
    assert "training_images" in _tensorboard_tags(run / "logs" / "samples")


def _tensorboard_tags(directory):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(directory))
    accumulator.Reload()
    tags = accumulator.Tags()
    return set(tags["tensors"]) | set(tags["scalars"]) | set(tags["images"])


def test_model_selection_uses_the_best_validation_epoch(tmp_path, small_fashion_dir):
    record = train_and_evaluate(
        _config(tmp_path, small_fashion_dir, epochs=3), verbose=0
    )
    val = record["history"]["val_accuracy"]
    assert record["best_epoch"] == int(np.argmax(val)) + 1
    model, _ = load_model(str(tmp_path / "run"))
    from keras_convnets.training.train import make_datasets

    _, val_ds, _, _ = make_datasets(_config(tmp_path, small_fashion_dir))
    assert evaluate_model(model, val_ds)["accuracy"] == pytest.approx(
        max(val), abs=1e-6
    )


def test_finished_run_is_not_overwritten(tmp_path, small_fashion_dir):
    config = _config(tmp_path, small_fashion_dir, epochs=1)
    train_and_evaluate(config, verbose=0)
    with pytest.raises(UserInputError, match="holds a finished run"):
        train_and_evaluate(config, verbose=0)
    record = train_and_evaluate(
        _config(tmp_path, small_fashion_dir, epochs=1, overwrite=True), verbose=0
    )
    assert record["resumed"] is False


def test_overwrite_is_refused_while_another_process_trains_the_run(
    tmp_path, small_fashion_dir
):
    """The lock is taken before `--overwrite` touches the folder, and on a path
    outside it, so the other process's run is left as it was."""
    config = _config(tmp_path, small_fashion_dir, epochs=1)
    record = train_and_evaluate(config, verbose=0)
    before = sorted(os.listdir(tmp_path / "run"))
    holder = hold_lock(tmp_path / ".run.lock")
    try:
        with pytest.raises(
            UserInputError, match=rf"in use by another process \(pid {holder.pid}\)"
        ):
            train_and_evaluate(
                _config(tmp_path, small_fashion_dir, epochs=1, overwrite=True),
                verbose=0,
            )
    finally:
        holder.kill()
        holder.wait()
    assert sorted(os.listdir(tmp_path / "run")) == before
    on_disk = json.loads((tmp_path / "run" / "run.json").read_text())
    assert on_disk["test_accuracy"] == record["test_accuracy"]


class _Killed(BaseException):
    """Stands in for SIGKILL: nothing after the raise runs."""


def test_overwrite_keeps_the_finished_run_until_the_new_one_finishes(
    tmp_path, small_fashion_dir, monkeypatch
):
    old = train_and_evaluate(_config(tmp_path, small_fashion_dir, epochs=1), verbose=0)
    replaced = tmp_path / ".run.replaced"

    def killed_after_the_first_epoch(self, epoch, logs=None):
        raise _Killed

    new = _config(tmp_path, small_fashion_dir, epochs=2, overwrite=True)
    with monkeypatch.context() as m:
        m.setattr(
            kc_callbacks.EpochHistory, "on_epoch_end", killed_after_the_first_epoch
        )
        with pytest.raises(_Killed):
            train_and_evaluate(new, verbose=0)
    # The new run was killed: the old one is whole, beside it.
    kept = json.loads((replaced / "run.json").read_text())
    assert kept["test_accuracy"] == old["test_accuracy"]
    assert (replaced / "model.keras").is_file()
    assert not (tmp_path / "run" / "run.json").exists()
    # Rerunning the same command resumes the new run; only then is the old deleted.
    record = train_and_evaluate(new, verbose=0)
    assert record["resumed"] is True and record["config"]["epochs"] == 2
    assert not replaced.exists()


def test_a_kill_after_fit_resumes_at_the_last_epoch(
    tmp_path, small_fashion_dir, monkeypatch
):
    """Keras deletes its backup when fit ends; a kill before model.keras and
    run.json were written then restarted the whole run. Now the rerun restores
    the last epoch, trains nothing and saves."""
    from keras_convnets.training import train as train_module

    config = _config(tmp_path, small_fashion_dir, epochs=2)

    def killed(*args, **kwargs):
        raise _Killed

    with monkeypatch.context() as m:
        m.setattr(train_module.io, "save_model_atomic", killed)
        with pytest.raises(_Killed):
            train_and_evaluate(config, verbose=0)
    run = tmp_path / "run"
    state = json.loads((run / "backup" / "training_metadata.json").read_text())
    assert state["epoch"] == 2  # both epochs finished and backed up
    history_written = (run / "history.json").stat().st_mtime_ns
    record = train_and_evaluate(config, verbose=0)
    assert record["resumed"] is True
    assert record["history"]["epoch"] == [1, 2]
    assert (run / "history.json").stat().st_mtime_ns == history_written  # no epoch ran
    assert not (run / "backup").exists() and not (run / "checkpoints").exists()


def test_a_workdir_that_is_a_file_is_a_clear_error(tmp_path, small_fashion_dir):
    workdir = tmp_path / "not_a_folder"
    workdir.write_text("x")
    config = _config(tmp_path, small_fashion_dir, epochs=1, workdir=str(workdir))
    with pytest.raises(UserInputError, match="not_a_folder is a file, not a folder"):
        train_and_evaluate(config, verbose=0)


def test_unfinished_run_with_other_config_is_refused(tmp_path, small_fashion_dir):
    config = _config(tmp_path, small_fashion_dir, epochs=1)
    os.makedirs(tmp_path / "run")
    (tmp_path / "run" / "config.json").write_text(json.dumps(config.to_dict()))
    with pytest.raises(
        UserInputError, match=r"different config \(differs in: epochs\)"
    ):
        train_and_evaluate(_config(tmp_path, small_fashion_dir, epochs=2), verbose=0)


@pytest.mark.parametrize(
    "optimizer, schedule",
    [
        ("adam", "constant"),
        ("adamw", "cosine"),
        ("sgd", "one-cycle"),
        ("nesterov", "cosine"),
    ],
)
def test_optimizers_and_schedules(optimizer, schedule):
    config = resolve_config(
        {}, {"optimizer": optimizer, "schedule": schedule, "learning_rate": 0.1}
    )
    opt = build_optimizer(config, steps_per_epoch=10)
    lr = opt.learning_rate
    assert float(lr) > 0
    if optimizer == "nesterov":
        assert opt.nesterov
    if schedule == "one-cycle":
        assert isinstance(opt._learning_rate, OneCycle)


def test_one_cycle_shape_and_serialization():
    schedule = OneCycle(1.0, total_steps=100, warmup_steps=20)
    values = [float(schedule(s)) for s in (0, 10, 20, 60, 100)]
    assert values[0] == pytest.approx(0.04)
    assert values[1] == pytest.approx(0.52)
    assert values[2] == pytest.approx(1.0)
    assert values[3] == pytest.approx(0.5)
    assert values[4] == pytest.approx(0.0)
    clone = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(schedule)
    )
    assert float(clone(60)) == pytest.approx(0.5)


def test_weight_decay_skips_biases_and_norms(tmp_path):
    from keras_convnets import get_model

    model = get_model("simple_cnn_tiny", (28, 28, 1), 10)
    opt = build_optimizer(resolve_config({}, {"weight_decay": 1e-3}), steps_per_epoch=1)
    opt.build(model.trainable_variables)
    decayed = {v.path for v in model.trainable_variables if opt._use_weight_decay(v)}
    assert any("kernel" in p for p in decayed)
    assert not any(p.endswith(("bias", "gamma", "beta")) for p in decayed)


def test_stop_on_non_finite_raises():
    callback = kc_callbacks.StopOnNonFinite(backup_dir="somewhere/backup")
    callback.on_epoch_begin(2)
    callback.on_train_batch_end(0, {"loss": 1.0})
    with pytest.raises(
        TrainingDivergedError,
        match=r"loss became nan at epoch 3, batch 5.*somewhere/backup",
    ):
        callback.on_train_batch_end(4, {"loss": float("nan")})


def test_evaluate_model_matches_numpy(small_fashion_dir):
    from keras_convnets import get_model, load_dataset

    model = get_model("simple_cnn_tiny", (28, 28, 1), 10)
    ds, _ = load_dataset(
        "fashion_mnist", "test", data_dir=small_fashion_dir, batch_size=128
    )
    result = evaluate_model(model, ds)
    x = np.concatenate([a.numpy() for a, _ in ds])
    y = np.concatenate([b.numpy() for _, b in ds])
    probs = model.predict(x, verbose=0)
    assert result["accuracy"] == pytest.approx(np.mean(probs.argmax(-1) == y))
    assert result["loss"] == pytest.approx(
        -np.mean(np.log(probs[np.arange(len(y)), y])), rel=1e-4
    )


# Mixup's soft labels are tested in test_augment (XLA, seeds, label sums); its
# full training run is in `make test-slow`.
@pytest.mark.parametrize(
    "policy", ["flip-translate", pytest.param("mixup", marks=pytest.mark.slow)]
)
def test_training_with_augmentation(tmp_path, small_fashion_dir, policy):
    record = train_and_evaluate(
        _config(tmp_path, small_fashion_dir, epochs=3, augment=policy), verbose=0
    )
    assert record["config"]["augment"] == policy
    assert (
        np.isfinite(record["test_loss"]) and record["test_accuracy"] > 0.2
    )  # chance: 0.1


def test_training_a_searched_genotype(tmp_path, small_fashion_dir):
    from keras_convnets.search.genotype import Genotype

    path = tmp_path / "best_genotype.json"
    path.write_text(Genotype.random(blocks=2, seed=3).to_json())
    record = train_and_evaluate(
        _config(
            tmp_path,
            small_fashion_dir,
            epochs=1,
            genotype=str(path),
            cells=0,
            filters=8,
        ),
        verbose=0,
    )
    assert record["genotype"] == json.loads(path.read_text())
    model, _ = load_model(str(tmp_path / "run"))
    assert any(layer.name.startswith("stem") for layer in model.layers)
    assert record["params"] == model.count_params()
    with pytest.raises(UserInputError, match="missing.json"):
        train_and_evaluate(
            _config(
                tmp_path,
                small_fashion_dir,
                run_name="r2",
                genotype=str(tmp_path / "missing.json"),
            ),
            verbose=0,
        )
    assert not (tmp_path / "r2").exists()


@pytest.mark.parametrize(
    "precision, compute", [("bf16", "bfloat16"), ("fp16", "float16")]
)
def test_mixed_precision_keeps_float32_outputs(
    tmp_path, small_fashion_dir, precision, compute
):
    record = train_and_evaluate(
        _config(tmp_path, small_fashion_dir, epochs=2, precision=precision), verbose=0
    )
    assert keras.config.dtype_policy().name == "float32"  # global policy restored
    model, _ = load_model(str(tmp_path / "run"))
    assert model.get_layer("stage1_conv1").compute_dtype == compute
    assert model.get_layer("stage1_conv1").kernel.dtype == "float32"
    assert model.get_layer("predictions").compute_dtype == "float32"
    assert model.output.dtype == "float32"
    assert np.isfinite(record["test_loss"]) and record["test_accuracy"] > 0.4

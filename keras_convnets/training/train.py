"""Training: what `keras-convnets train` calls.

`train_and_evaluate(config)` runs one training job end to end: data pipelines,
model, optimizer, callbacks (TensorBoard, best-on-validation checkpoint,
`BackupAndRestore`, NaN stop), `model.fit`, then the final evaluation of the
best-on-validation weights on the test split. Everything lands in
`workdir/run_name/`:

    config.json          the resolved config (written first)
    precision.json       the precision (`auto`: timings, choice) while training
    model.keras          the selected model (best validation accuracy)
    run.json             config, dataset, params, history, test metrics, timing
    history.json         per-epoch logs, kept across resumes
    checkpoints/         best.weights.h5 + best.json while training
    backup/              BackupAndRestore state; deleted when the run finishes
    logs/                TensorBoard: train/, validation/, samples/
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import shutil
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from keras_convnets.data import pipelines
from keras_convnets.data.datasets import DatasetInfo
from keras_convnets.errors import UserInputError
from keras_convnets.inference import evaluate_model
from keras_convnets.models.registry import check_model_kwargs, get_model
from keras_convnets.models.tta import with_tta
from keras_convnets.training import callbacks as kc_callbacks
from keras_convnets.training import distribute, io, optim
from keras_convnets.training import precision as kc_precision
from keras_convnets.training.config import TrainConfig, config_from_dict


def versions() -> dict:
    import keras_convnets

    return {
        "keras_convnets": keras_convnets.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


# ----------------------------------------------------------------------------
# Pieces.


def build_state_eagerly(model: keras.Model, dataset) -> None:
    """Creates the optimizer's and the metrics' variables before `fit`.

    Without a distribution strategy, Keras's TensorFlow trainer defers this
    to the first trace of the train function, so the variables are created
    inside a `tf.function`. Their lifted initializers (one `cond` per
    optimizer slot and metric variable) then keep each traced train graph alive
    after `clear_session`: about 150 MB per search trial of a cell net
    (measured: 12k graph operations and ~700 registered functions per trial;
    with this call the function count stays flat). Keras's own
    `_symbolic_build` is the one routine that builds model, loss, metrics and
    optimizer state from a batch's shapes; it is private, so a Keras without
    it just skips this (the leak comes back, nothing breaks).

    Args:
        model: compiled `keras.Model`.
        dataset: the `tf.data.Dataset` `fit` will read (anything else: no-op).
    """
    symbolic_build = getattr(model, "_symbolic_build", None)
    if (
        symbolic_build is None
        or model.run_eagerly  # nothing is traced, nothing is kept
        or model.optimizer is None
        or model.optimizer.built
    ):
        return
    # Shapes and dtypes are all it reads: the dataset's element spec will do.
    spec = getattr(dataset, "element_spec", None)
    if spec is None:
        return
    symbolic_build(data_batch=tuple(spec) if isinstance(spec, (list, tuple)) else spec)


def build_optimizer(
    config: TrainConfig, steps_per_epoch: int
) -> keras.optimizers.Optimizer:
    """Builds the optimizer and learning-rate schedule a config asks for.

    Args:
        config: TrainConfig.
        steps_per_epoch: int. Optimizer steps per epoch.

    Returns:
        A `keras.optimizers.Optimizer` with biases and normalization weights
        excluded from weight decay (see `training.optim.build_optimizer`).
    """
    return optim.build_optimizer(
        learning_rate=config.learning_rate,
        epochs=config.epochs,
        steps_per_epoch=steps_per_epoch,
        optimizer=config.optimizer,
        schedule=config.schedule,
        warmup_epochs=config.warmup_epochs,
        weight_decay=config.weight_decay,
        momentum=config.momentum,
        ema=config.ema,
    )


def make_datasets(config: TrainConfig, epoch: tf.Variable | None = None):
    """Returns `(train, validation or None, test, info)` pipelines for a config.

    Labels are one-hot so that label smoothing, mixup and cutmix apply; the
    training batches go through the config's augmentation policy (see
    `data.pipelines.make_datasets`).

    Args:
        config: TrainConfig.
        epoch: integer `tf.Variable` or None. When given, the training order
            and augmentation of each epoch derive from `(config.seed, epoch)`
            (see `load_dataset`); `train_and_evaluate` keeps it current with
            `callbacks.EpochCounter`.
    """
    return pipelines.make_datasets(
        config.dataset,
        batch_size=config.batch_size,
        epoch=epoch,
        **_data_fields(config),
    )


def _data_fields(config: TrainConfig) -> dict:
    """The config's fields that choose the data, as `data.pipelines` takes them."""
    return dict(
        seed=config.seed,
        validation_fraction=config.validation_fraction,
        train_fraction=config.train_fraction,
        data_dir=config.data_dir,
        tfds_data_dir=config.tfds_data_dir,
        image_size=config.image_size,
        augment=config.augment,
    )


def _resolve_jit(config: TrainConfig) -> bool:
    if config.jit_compile is not None:
        return config.jit_compile
    return bool(
        tf.config.list_physical_devices("GPU") or tf.config.list_physical_devices("TPU")
    )


# ----------------------------------------------------------------------------
# Run directories.


def _find_unfinished(workdir: str, identity: dict) -> str | None:
    if not os.path.isdir(workdir):
        return None
    matches = []
    for name in os.listdir(workdir):
        run_dir = os.path.join(workdir, name)
        config_path = os.path.join(run_dir, "config.json")
        if os.path.exists(os.path.join(run_dir, "run.json")) or not os.path.isfile(
            config_path
        ):
            continue
        try:
            other = config_from_dict(io.read_json(config_path), where=config_path)
        except UserInputError:
            continue
        if other.identity() == identity:
            matches.append((os.path.getmtime(config_path), run_dir))
    return max(matches)[1] if matches else None


def lock_path(run_dir: str) -> str:
    """The lock of a run folder: `.NAME.lock` beside it, so it outlives `--overwrite`."""
    parent, name = os.path.split(os.path.normpath(run_dir))
    return os.path.join(parent, f".{name}.lock")


def replaced_path(run_dir: str) -> str:
    """Where `--overwrite` keeps the finished run it replaces until the new one ends."""
    parent, name = os.path.split(os.path.normpath(run_dir))
    return os.path.join(parent, f".{name}.replaced")


def _check_workdir(workdir: str) -> None:
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise UserInputError(f"--workdir {workdir} is a file, not a folder.")
    try:
        os.makedirs(workdir, exist_ok=True)
    except OSError as e:
        raise UserInputError(
            f"Cannot create --workdir {workdir}: {e.strerror}."
        ) from None


@contextlib.contextmanager
def claim_run_dir(config: TrainConfig):
    """Chooses the run directory and holds its lock; yields `(run_dir, resuming)`.

    The lock (`.NAME.lock` beside the run folder) is taken before anything in
    the folder is read, moved or deleted, so a second process can neither
    train into a run in progress nor `--overwrite` it. With no `run_name`, an
    unfinished run of the same config in `workdir` is resumed (so rerunning
    the same command after a crash continues it); otherwise a new
    `<model>-<dataset>-<timestamp>` directory is made. `--overwrite` of a
    finished run moves it to `.NAME.replaced`; `finish_run_dir` deletes that
    once the new run is complete, so a kill in between loses neither.
    """
    _check_workdir(config.workdir)
    with contextlib.ExitStack() as stack:
        if config.run_name is not None:
            run_dir = os.path.join(config.workdir, config.run_name)
            stack.enter_context(io.file_lock(lock_path(run_dir), what=run_dir))
            resuming = _prepare_named(config, run_dir)
        else:
            run_dir, resuming = _claim_unnamed(config, stack)
        yield run_dir, resuming


def _claim_unnamed(config: TrainConfig, stack: contextlib.ExitStack):
    identity = config.identity()
    unfinished = _find_unfinished(config.workdir, identity)
    if unfinished:
        stack.enter_context(io.file_lock(lock_path(unfinished), what=unfinished))
        if not os.path.exists(os.path.join(unfinished, "run.json")):
            return unfinished, True
    dataset = os.path.basename(os.path.normpath(config.dataset))
    genotype = _genotype_path(config)
    model = (
        "genotype-" + os.path.splitext(os.path.basename(genotype))[0]
        if genotype
        else config.model
    )
    base = f"{model}-{dataset}-{io.timestamp()}"
    for i in range(1, 10_000):
        run_dir = os.path.join(config.workdir, base if i == 1 else f"{base}-{i}")
        if os.path.exists(run_dir):
            continue
        try:
            lock = stack.enter_context(
                contextlib.ExitStack()
            )  # a lock of its own, released if the name is taken meanwhile
            lock.enter_context(io.file_lock(lock_path(run_dir), what=run_dir))
        except UserInputError:
            continue  # another process claimed this name a moment ago
        if os.path.exists(run_dir):
            lock.close()
            continue
        return run_dir, False
    raise UserInputError(f"No free run folder name for {base} in {config.workdir}.")


def _prepare_named(config: TrainConfig, run_dir: str) -> bool:
    """Under the run's lock: resume, refuse, or make room for a new run."""
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise UserInputError(f"{run_dir} is a file, not a run folder.")
    replaced = replaced_path(run_dir)
    if os.path.exists(os.path.join(run_dir, "run.json")):
        if not config.overwrite:
            raise UserInputError(
                f"{run_dir} holds a finished run; choose another --run-name or pass "
                f"--overwrite to replace it."
            )
        # Kept until the new run finishes (an older replaced run goes now).
        if os.path.exists(replaced):
            shutil.rmtree(replaced)
        os.rename(run_dir, replaced)
        print(
            f"Note: the finished run in {run_dir} is kept as {replaced} until "
            f"the new run finishes.",
            flush=True,
        )
        return False
    config_path = os.path.join(run_dir, "config.json")
    if not os.path.isfile(config_path):
        return False
    try:
        other = config_from_dict(io.read_json(config_path), where=config_path)
    except UserInputError:
        if not config.overwrite:
            raise
        other = None
    if other is not None and other.identity() == config.identity():
        return True
    if config.overwrite:
        shutil.rmtree(run_dir)  # an unfinished run (a replaced one stays)
        return False
    identity = config.identity()
    differs = sorted(k for k in identity if identity[k] != other.identity().get(k))
    raise UserInputError(
        f"{run_dir} holds an unfinished run with a different config "
        f"(differs in: {', '.join(differs)}); rerun with the same settings "
        f"to resume it, or pass --overwrite or another --run-name."
    )


def finish_run_dir(run_dir: str) -> None:
    """Deletes what a complete run no longer needs: backup, checkpoints, a replaced run.

    `precision.json` goes too: run.json holds the same record.
    """
    for path in (
        os.path.join(run_dir, "backup"),
        os.path.join(run_dir, "checkpoints"),
        replaced_path(run_dir),
    ):
        shutil.rmtree(path, ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        os.remove(os.path.join(run_dir, kc_precision.RECORD_FILE))


# ----------------------------------------------------------------------------
# The job.


def train_and_evaluate(
    config: TrainConfig,
    verbose="auto",
    start_time: float | None = None,
    strategy: str = "default",
) -> dict:
    """Trains a model as `config` says, selects it on validation, tests it.

    Rerunning after a crash (same config; same `run_name`, or none) resumes
    from the last finished epoch via `keras.callbacks.BackupAndRestore`.

    Args:
        config: TrainConfig. The resolved configuration.
        verbose: Keras `fit` verbosity. Defaults to `"auto"`.
        start_time: float. `time.time()` at which to start the wall clock
            (the CLI passes its process start). Defaults to now.
        strategy: str. `default`, `mirrored` or `multi-worker` (reads
            `TF_CONFIG`); see `training.distribute`. `config.batch_size` is the
            global batch, split across the replicas. Only the chief writes the
            run; other workers train in a temporary folder. Defaults to
            `default`.

    Returns:
        The run record, as written to `run.json`.

    Example:

    ```python
    from keras_convnets.training.config import resolve_config
    record = train_and_evaluate(resolve_config(flag_values={"recipe": "quick"}))
    print(record["test_accuracy"], record["run_dir"])
    ```
    """
    start = start_time or time.time()
    config.validate()
    check_model_kwargs(config.model, config.model_kwargs)
    # First: the multi-worker strategy must exist before TensorFlow starts.
    dist = distribute.make_distribution(strategy)
    # Seed first: weight initialization and dropout follow from it, and the
    # data order and augmentation of epoch e follow from (seed, e). The data
    # is opened before any run directory exists, so bad data leaves no trace.
    keras.utils.set_random_seed(config.seed)
    epoch_variable = tf.Variable(0, dtype=tf.int64, trainable=False, name="data_epoch")
    datasets = distribute.distribute_datasets(
        make_datasets(config, epoch_variable), dist
    )
    for note in datasets[3].notes:
        print(f"Note: {note}", flush=True)
    with dist.scope():  # variables mirrored on every replica
        model = build_model(config, datasets[3])
    if dist.is_chief:
        claim = claim_run_dir(config)
    else:
        claim = _worker_claim(config, dist)
    with claim as (run_dir, resuming):
        precision = resolve_precision(
            config, datasets, run_dir, resuming, multi_worker=dist.multi_worker
        )
        if config.precision == "auto":
            # Built again from the seed: the same weights as a run given
            # this precision (timing drew from the random generators).
            keras.utils.set_random_seed(config.seed)
            with dist.scope():
                model = build_model(config, datasets[3], precision["precision"])
        record = _train_locked(
            config=config,
            run_dir=run_dir,
            resuming=resuming,
            start=start,
            verbose=verbose,
            datasets=datasets,
            epoch_variable=epoch_variable,
            model=model,
            dist=dist,
            precision=precision,
        )
    distribute.finish_worker(run_dir, dist)
    return record


def resolve_precision(
    config: TrainConfig,
    datasets,
    run_dir: str | None = None,
    resuming: bool = False,
    multi_worker: bool = False,
) -> dict:
    """The precision a run trains in (`training.precision.resolve`).

    `auto` on a CPU times the config's model on a real batch of
    `datasets[0]` in fp32 and bf16 and keeps the faster.

    Args:
        config: TrainConfig.
        datasets: `make_datasets(config)`'s `(train, validation, test, info)`.
        run_dir: str or None. The run folder to record the choice in (and, if
            `resuming`, to read it from); None records nothing.
        resuming: bool. Reuse the choice recorded in `run_dir`.
        multi_worker: bool. Multi-worker training: nothing is timed.

    Returns:
        The precision record (`record["precision"]` is fp32, bf16 or fp16).
    """
    train_ds, _, _, info = datasets
    steps_per_epoch = math.ceil(info.sizes["train"] / config.batch_size)

    def measure():
        print("Precision auto: timing training steps in fp32 and bf16...", flush=True)
        batch = next(iter(train_ds))

        def build(precision):
            model = build_model(config, info, precision)
            _compile_model(
                model, config, steps_per_epoch, _resolve_jit(config), precision
            )
            return model

        return kc_precision.measure_step_ms(build, batch)

    record = kc_precision.resolve(
        config.precision,
        run_dir,
        resuming,
        measure,
        batch_size=config.batch_size,
        multi_worker=multi_worker,
    )
    print(kc_precision.describe(record), flush=True)
    return record


def _compile_model(model, config, steps_per_epoch, jit_compile, precision) -> None:
    model.compile(
        optimizer=kc_precision.wrap_optimizer(
            build_optimizer(config, steps_per_epoch), precision
        ),
        loss=keras.losses.CategoricalCrossentropy(
            label_smoothing=config.label_smoothing
        ),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        jit_compile=jit_compile,
    )


@contextlib.contextmanager
def _worker_claim(config, dist):
    run_dir, resuming = distribute.worker_run_dir(config, dist)
    with io.run_lock(run_dir):
        yield run_dir, resuming


def build_model(
    config: TrainConfig, info: DatasetInfo, precision: str | None = None
) -> keras.Model:
    """The config's registry model (or searched genotype) at a precision.

    With `bf16`/`fp16` the model is built under Keras's mixed dtype policy
    (float32 variables, low-precision compute) and its output layers are
    switched to float32, so the softmax and the loss are computed in float32.

    Args:
        config: TrainConfig.
        info: the dataset's `DatasetInfo` (input shape, classes).
        precision: str. `fp32`, `bf16` or `fp16`. Defaults to
            `config.precision`, where `auto` builds in fp32 (the run decides
            later, see `training.precision`).
    """
    precision = precision or config.precision
    if precision == "auto":
        precision = "fp32"
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(kc_precision.POLICIES[precision])
    try:
        model = _build_architecture(config, info)
    finally:
        keras.config.set_dtype_policy(previous)
    if precision != "fp32":
        model = _float32_outputs(model)
    return model


def _float32_outputs(model: keras.Model) -> keras.Model:
    """A clone of a mixed-precision model whose output layers compute in float32."""
    output_layers = {id(t._keras_history.operation) for t in model.outputs}

    def clone(layer):
        config = layer.get_config()
        if id(layer) in output_layers:
            config["dtype"] = "float32"
        return layer.__class__.from_config(config)

    cloned = keras.models.clone_model(model, clone_function=clone)
    cloned.set_weights(model.get_weights())  # e.g. pretrained weights
    return cloned


def _build_architecture(config: TrainConfig, info: DatasetInfo) -> keras.Model:
    if config.weights:
        from keras_convnets.models.pretrained import pretrained_model

        return pretrained_model(
            config.model,
            info.image_shape,
            info.num_classes,
            config.weights,
            **config.model_kwargs,
        )
    return get_model(
        config.model, info.image_shape, info.num_classes, **config.model_kwargs
    )


# The run folder's files (see the module docstring).
RUN_FILES = ("config.json", "model.keras", "run.json", "history.json", "logs", "backup")


def _train_locked(
    *,
    config: TrainConfig,
    run_dir: str,
    resuming: bool,
    start: float,
    verbose,
    datasets: tuple,
    epoch_variable: tf.Variable,
    model: keras.Model,
    dist,
    precision: dict | None = None,
) -> dict:
    """The job, under the run folder's lock: compile, fit, select, save, test, record."""
    paths = {name: os.path.join(run_dir, name) for name in RUN_FILES}
    train_ds, val_ds, test_ds, info = datasets
    # Without a validation split there is nothing to select on.
    best_weights = (
        os.path.join(run_dir, "checkpoints", "best.weights.h5")
        if val_ds is not None
        else None
    )
    if resuming:
        print(f"Resuming the unfinished run in {run_dir}", flush=True)
    io.atomic_write_json(paths["config.json"], config.to_dict())

    precision = precision or {
        "requested": config.precision,
        "precision": config.precision,
        "how": "given",
    }
    jit_compile = _compile(
        model,
        config=config,
        steps_per_epoch=math.ceil(info.sizes["train"] / config.batch_size),
        dist=dist,
        precision=precision["precision"],
    )
    callbacks = _callbacks(
        config=config,
        paths=paths,
        best_weights=best_weights,
        epoch_variable=epoch_variable,
        info=info,
        dist=dist,
    )
    fit_time = _fit(
        model,
        config=config,
        train_ds=train_ds,
        val_ds=val_ds,
        callbacks=callbacks,
        info=info,
        verbose=verbose,
        dist=dist,
    )
    model, best_epoch, without_tta = _select_and_save(
        model,
        config=config,
        best_weights=best_weights,
        test_ds=test_ds,
        model_path=paths["model.keras"],
    )
    record = _run_record(
        model,
        config=config,
        run_dir=run_dir,
        info=info,
        history_path=paths["history.json"],
        best_epoch=best_epoch,
        test=evaluate_model(model, test_ds),
        validation=evaluate_model(model, val_ds) if val_ds is not None else None,
        without_tta=without_tta,
        wall_time_s=round(time.time() - start, 2),
        fit_time=fit_time,
        resuming=resuming,
        jit_compile=jit_compile,
        dist=dist,
    )
    record["precision"] = precision
    record["epoch_timing"] = next(
        c.timing for c in callbacks if isinstance(c, kc_callbacks.EpochTimer)
    )
    io.atomic_write_json(paths["run.json"], record)
    # Only now: a kill before this line resumes at the last epoch, not epoch 1.
    finish_run_dir(run_dir)
    return record


def _compile(
    model,
    *,
    config: TrainConfig,
    steps_per_epoch: int,
    dist,
    precision: str | None = None,
) -> bool:
    """Compiles `model` for the config in the strategy's scope; returns jit_compile.

    `precision` (fp32, bf16, fp16; default the config's) decides loss scaling.
    """
    jit_compile, jit_note = distribute.resolve_jit(_resolve_jit(config), dist)
    if jit_note:
        print(f"Note: {jit_note}", flush=True)
    with dist.scope():  # optimizer and metric variables too
        _compile_model(
            model, config, steps_per_epoch, jit_compile, precision or config.precision
        )
    return jit_compile


def _callbacks(
    *,
    config: TrainConfig,
    paths: dict,
    best_weights: str | None,
    epoch_variable: tf.Variable,
    info: DatasetInfo,
    dist,
) -> list:
    """Best checkpoint, backup, epoch sync and counter, NaN stop, history, TensorBoard.

    `best_weights` is None without a validation split (nothing to select on).
    The best checkpoint comes before the backup: a run killed between the two
    repeats the epoch (same data, same weights) and so offers it to the best
    checkpoint again. After the backup, a kill in between lost that epoch's
    candidacy, and a resumed run could select another epoch than an
    uninterrupted one (seen on a tie in validation accuracy).
    """
    backup = kc_callbacks.AtomicBackupAndRestore(paths["backup"])
    timer = kc_callbacks.EpochTimer()  # first: its epoch end is the epoch's end
    best = [] if best_weights is None else [kc_callbacks.BestCheckpoint(best_weights)]
    callbacks = [
        timer,
        *best,
        backup,
        distribute.SameEpochOnAllWorkers(dist, backup, config.epochs),
        kc_callbacks.EpochCounter(epoch_variable),
        kc_callbacks.StopOnNonFinite(backup_dir=paths["backup"]),
        kc_callbacks.EpochHistory(paths["history.json"]),
        keras.callbacks.TensorBoard(paths["logs"], write_graph=False),
    ]
    if config.tensorboard_images:
        images, captions = pipelines.sample_images(
            config.dataset,
            info,
            count=config.tensorboard_images,
            **_data_fields(config),
        )
        callbacks.append(kc_callbacks.ImageSamples(paths["logs"], images, captions))
    return callbacks


def _fit(
    model,
    *,
    config: TrainConfig,
    train_ds,
    val_ds,
    callbacks: list,
    info: DatasetInfo,
    verbose,
    dist,
) -> float:
    """Announces the run and runs `model.fit`; returns its wall time in seconds."""
    label = config.model
    print(
        f"Training {label} ({model.count_params():,} parameters) on "
        f"{info.name} [{info.source}]: {info.sizes['train']} train / "
        f"{info.sizes['validation']} validation images, {config.epochs} epochs, "
        f"batch {config.batch_size}{_replicas_note(config, dist)}",
        flush=True,
    )
    fit_start = time.time()
    with distribute.keras_multi_worker_fixes(model, dist):
        model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=config.epochs,
            callbacks=callbacks,
            verbose=verbose,
            shuffle=False,  # the pipeline shuffles, seeded
        )
    return time.time() - fit_start


def _select_and_save(
    model, *, config: TrainConfig, best_weights: str | None, test_ds, model_path: str
):
    """Loads the best-on-validation weights, adds TTA, saves model.keras.

    Returns:
        `(model, best_epoch (1-based) or None, test accuracy without TTA or None)`.
    """
    best_epoch = None
    if best_weights is not None and os.path.exists(best_weights):
        model.load_weights(best_weights)
        best_epoch = (
            io.read_json(best_weights.replace(".weights.h5", ".json"))["epoch"] + 1
        )
    without_tta = None
    if config.tta != "none":
        # The saved model carries its test-time augmentation, so evaluating
        # model.keras reproduces the reported number.
        without_tta = evaluate_model(model, test_ds)["accuracy"]
        model = with_tta(model, config.tta)
    io.save_model_atomic(model, model_path)
    return model, best_epoch, without_tta


def _run_record(
    model,
    *,
    config: TrainConfig,
    run_dir: str,
    info: DatasetInfo,
    history_path: str,
    best_epoch: int | None,
    test: dict,
    validation: dict | None,
    without_tta: float | None,
    wall_time_s: float,
    fit_time: float,
    resuming: bool,
    jit_compile: bool,
    dist,
) -> dict:
    """The run record written to run.json."""
    history = io.read_json(history_path) if os.path.exists(history_path) else []
    return {
        "run_dir": os.path.abspath(run_dir),
        "config": config.to_dict(),
        "dataset": info.to_dict(),
        "model": config.model,
        "genotype": _read_genotype(config),
        "params": int(model.count_params()),
        "trainable_params": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
        "history": _columns(history),
        "best_epoch": best_epoch,
        "validation_accuracy": validation["accuracy"] if validation else None,
        "test_accuracy": test["accuracy"],
        "test_loss": test["loss"],
        "test_accuracy_without_tta": without_tta,
        "wall_time_s": wall_time_s,
        "fit_time_s": round(fit_time, 2),
        "resumed": resuming,
        "jit_compile": jit_compile,
        "distribution": dist.describe(),
        "versions": versions(),
        "command": " ".join(sys.argv),
    }


def _replicas_note(config, dist) -> str:
    if dist.replicas == 1 and not dist.multi_worker:
        return ""
    per_replica = config.batch_size / dist.replicas
    role = ""
    if dist.multi_worker:
        role = f", {dist.task}{' (chief)' if dist.is_chief else ''}"
    return f" = {dist.replicas} replicas x {per_replica:g} [{dist.name}{role}]"


def _genotype_path(config: TrainConfig) -> str | None:
    """The genotype file of a `nas_cell_net` run, or None."""
    if config.model != "nas_cell_net":
        return None
    genotype = config.model_kwargs.get("genotype")
    return genotype if isinstance(genotype, str) else None


def _read_genotype(config: TrainConfig) -> dict | None:
    """The searched cell of a `nas_cell_net` run, for run.json."""
    if config.model != "nas_cell_net":
        return None
    genotype = config.model_kwargs.get("genotype")
    return io.read_json(genotype) if isinstance(genotype, str) else genotype


def _columns(history: list[dict]) -> dict:
    keys = []
    for entry in history:
        keys.extend(k for k in entry if k not in keys)
    return {k: [entry.get(k) for entry in history] for k in keys}

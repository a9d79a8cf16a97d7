"""Callbacks Keras lacks: atomic best checkpoint, persistent history, NaN stop,
sample images in TensorBoard.

Keras's `ModelCheckpoint` overwrites its file in place (a kill mid-write leaves
an unloadable file) and forgets the best value when a run resumes, so the best
checkpoint here goes through `io.atomic_path` and keeps its score in a JSON file
beside the weights.
"""

from __future__ import annotations

import math
import os
import time

import keras
import numpy as np
import tensorflow as tf

from keras_convnets.errors import TrainingDivergedError
from keras_convnets.training import io


class BestCheckpoint(keras.callbacks.Callback):
    """Saves the weights of the best epoch on a validation metric, atomically.

    Args:
        weights_path: str. Where to write the `.weights.h5` file.
        monitor: str. Metric in the epoch logs. Defaults to `val_accuracy`.
        mode: str. `max` or `min`. Defaults to `max`.
    """

    def __init__(self, weights_path, monitor="val_accuracy", mode="max"):
        super().__init__()
        self.weights_path = weights_path
        self.state_path = weights_path.replace(".weights.h5", ".json")
        self.monitor = monitor
        self.mode = mode
        self.best = None
        self.best_epoch = None

    def on_train_begin(self, logs=None):
        # On resume, remember the best of the epochs already done.
        if os.path.exists(self.state_path) and os.path.exists(self.weights_path):
            state = io.read_json(self.state_path)
            self.best, self.best_epoch = state["value"], state["epoch"]

    def _improved(self, value):
        if self.best is None:
            return True
        return value > self.best if self.mode == "max" else value < self.best

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not math.isfinite(value):
            return
        if self._improved(value):
            self.best, self.best_epoch = float(value), epoch
            io.save_weights_atomic(self.model, self.weights_path)
            io.atomic_write_json(
                self.state_path,
                {"monitor": self.monitor, "value": self.best, "epoch": epoch},
            )


class EpochHistory(keras.callbacks.Callback):
    """Keeps every epoch's logs in a JSON file, across resumed runs.

    `model.fit`'s `History` only holds the epochs of the current process; this
    file holds all of them, one entry per epoch, with epoch numbers from 1.
    """

    def __init__(self, path):
        super().__init__()
        self.path = path
        self.epochs = []
        self._first = True

    def on_epoch_begin(self, epoch, logs=None):
        if self._first:
            self._first = False
            if os.path.exists(self.path):
                previous = io.read_json(self.path)
                self.epochs = [e for e in previous if e["epoch"] <= epoch]

    def on_epoch_end(self, epoch, logs=None):
        entry = {"epoch": epoch + 1}
        entry.update({k: float(v) for k, v in (logs or {}).items()})
        self.epochs.append(entry)
        io.atomic_write_json(self.path, self.epochs)


class EpochCounter(keras.callbacks.Callback):
    """Makes every epoch's randomness a function of `(seed, epoch)`.

    Before each epoch it sets a `tf.Variable` to the epoch number (the training
    pipeline derives its shuffle order and augmentation draws from it) and
    re-keys every layer's `keras.random.SeedGenerator` (dropout and friends) to
    `(its initial seed, epoch)`. `BackupAndRestore` saves weights and optimizer
    state but not the generators' states, so without this a resumed run would
    draw different dropout masks than an uninterrupted one.
    """

    # Calls of a generator within one epoch stay below this stride.
    STRIDE = 1 << 20

    def __init__(self, variable):
        super().__init__()
        self.variable = variable
        self._generators = []

    def on_train_begin(self, logs=None):
        self._generators = []
        for layer in self.model._flatten_layers(include_self=True):
            for generator in getattr(layer, "_seed_generators", []):
                self._generators.append((generator, int(generator.state.numpy()[0])))

    def on_epoch_begin(self, epoch, logs=None):
        self.variable.assign(epoch)
        for generator, initial in self._generators:
            state = np.array(
                [initial, epoch * self.STRIDE], dtype=generator.state.dtype
            )
            generator.state.assign(state)


class StopOnNonFinite(keras.callbacks.Callback):
    """Stops training with `TrainingDivergedError` when the loss is NaN or inf.

    Unlike `keras.callbacks.TerminateOnNaN`, which ends `fit` normally (so that
    `BackupAndRestore` deletes its backup), this raises: `fit` stops at once and
    the last good backup stays on disk.
    """

    def __init__(self, backup_dir=None):
        super().__init__()
        self.backup_dir = backup_dir
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            kept = (
                f"; the backup of the last finished epoch is kept in {self.backup_dir}"
                if self.backup_dir
                else ""
            )
            raise TrainingDivergedError(
                f"Training diverged: loss became {float(loss)} at epoch "
                f"{self.epoch + 1}, batch {batch + 1}{kept}. Try a lower "
                f"--learning-rate."
            )


class ImageSamples(keras.callbacks.Callback):
    """Writes a few training images (after augmentation) to TensorBoard.

    Args:
        log_dir: str. TensorBoard folder; images go to `log_dir/samples`.
        images: array `(n, h, w, c)` in [0, 1].
        labels: list of str. One caption per image.
    """

    def __init__(self, log_dir, images, labels):
        super().__init__()
        self.log_dir = os.path.join(log_dir, "samples")
        self.images = np.asarray(images, np.float32)
        self.labels = list(labels)

    def on_train_begin(self, logs=None):
        writer = tf.summary.create_file_writer(self.log_dir)
        with writer.as_default():
            description = "Training inputs: " + ", ".join(self.labels)
            tf.summary.image(
                "training_images",
                self.images,
                step=0,
                max_outputs=len(self.images),
                description=description,
            )
        writer.flush()
        writer.close()


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` whose backup survives a kill at any moment.

    Keras writes `latest.weights.h5` in place, then the epoch in
    `training_metadata.json`: a kill during the first write leaves an
    unreadable file and no previous one (found by killing a worker of a
    multi-worker run), and a kill between the two writes pairs the weights of
    epoch k with the number k - 1. Here every backup goes to a new file,
    `epoch-K.weights.h5`, written through `io.atomic_path`, and becomes the
    current one when the metadata naming it is renamed into place: one atomic
    rename commits weights and epoch together. The previous backup is kept
    (what Keras's `double_checkpoint` is for); older files are deleted.

    Keras deletes the backup when `fit` returns, before the caller has saved
    the model and the run record: a kill in that window would restart the
    whole run. Here the backup is kept (`delete_checkpoint=False`); the caller
    deletes it once the run is complete, and a rerun in between restores the
    last epoch, trains nothing and goes straight to saving.

    Args:
        backup_dir: str. The backup folder; kept when training ends.
    """

    def __init__(self, backup_dir):
        super().__init__(
            backup_dir,
            save_freq="epoch",
            double_checkpoint=True,
            delete_checkpoint=False,
        )

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.read_state() is None:
            # Back up the starting state too, so that there always is a
            # previous backup to step back to (see `SameEpochOnAllWorkers`).
            self._current_epoch = int(getattr(self.model, "_initial_epoch", 0) or 0)
            self._save_model()

    def read_state(self) -> dict | None:
        """The committed backup: `{"epoch", "weights", "previous"}`, or None."""
        if not os.path.isfile(self._training_metadata_path):
            return None
        state = io.read_json(self._training_metadata_path)
        return state if "weights" in state else None

    def restore(self, weights: str, epoch: int) -> None:
        """Loads a backup's weights (a file name in `backup_dir`) and epoch."""
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(os.path.join(self.backup_dir, weights))
        self.model._initial_epoch = epoch

    def _load_model(self):
        if not self.model.built:
            raise ValueError("BackupAndRestore needs a built model.")
        state = self.read_state()
        if state is None:
            if os.path.isfile(self._weights_path):
                super()._load_model()  # a backup in Keras's own layout
            return
        try:
            self.restore(state["weights"], state["epoch"])
        except OSError:
            if not state.get("previous"):
                raise
            previous = state["previous"]
            self.restore(previous["weights"], previous["epoch"])

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        weights = f"epoch-{self._current_epoch}.weights.h5"
        io.save_weights_atomic(self.model, os.path.join(self.backup_dir, weights))
        current = self.read_state()
        previous = None
        if current and current["weights"] != weights:
            previous = {"epoch": current["epoch"], "weights": current["weights"]}
        state = {"epoch": self._current_epoch, "weights": weights, "previous": previous}
        io.atomic_write_json(self._training_metadata_path, state)
        keep = {weights, previous["weights"] if previous else None}
        for name in os.listdir(self.backup_dir):
            if name.endswith(".weights.h5") and name not in keep:
                os.remove(os.path.join(self.backup_dir, name))


class EpochTimer(keras.callbacks.Callback):
    """Times each epoch's turnover: from `on_epoch_end` to the next first step.

    Issue 19 saw epochs begin with a stall of 4-40 s before their first step
    finished. Placed first in the callback list, this records per epoch (of
    this process): `turnover_s` (the previous epoch's `on_epoch_end` to this
    epoch's first finished step: the other callbacks' epoch-end work, the new
    iterator, the first step), `first_step_s` (`on_epoch_begin` to the first
    finished step) and `validation_s` (the validation pass). It waits for the
    first step's loss once per epoch; nothing else is synchronized.
    """

    def __init__(self):
        super().__init__()
        self.timing = {"turnover_s": [], "first_step_s": [], "validation_s": []}
        self._epoch_end = None
        self._epoch_begin = None
        self._test_begin = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_begin = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if self._epoch_begin is None:
            return
        loss = (logs or {}).get("loss")
        if loss is not None:
            float(loss)  # the step has finished
        now = time.perf_counter()
        self.timing["first_step_s"].append(round(now - self._epoch_begin, 3))
        if self._epoch_end is not None:
            self.timing["turnover_s"].append(round(now - self._epoch_end, 3))
        self._epoch_begin = None

    def on_test_begin(self, logs=None):
        self._test_begin = time.perf_counter()

    def on_test_end(self, logs=None):
        if self._test_begin is not None:
            elapsed = time.perf_counter() - self._test_begin
            self.timing["validation_s"].append(round(elapsed, 3))

    def on_epoch_end(self, epoch, logs=None):
        self._epoch_end = time.perf_counter()

"""Data-parallel training on `tf.distribute`: one GPU, several, several hosts.

`train_and_evaluate(config, strategy=...)` runs the same `model.fit` under one
of three strategies:

    default        one device (TensorFlow's default strategy: no replicas)
    mirrored       `tf.distribute.MirroredStrategy`: every local GPU (or, with
                   no GPU, every logical CPU device) holds a replica
    multi-worker   `tf.distribute.MultiWorkerMirroredStrategy`: one process per
                   host, the cluster described by `TF_CONFIG`

The config's `batch_size` is the global batch: `tf.distribute` splits each
batch across the replicas, so a run's result does not depend on how many
machines ran it (up to the order of float additions and per-replica
BatchNormalization statistics). That is why the strategy is not a config
field: it is how a run is executed, not what is trained, and a run started on
one machine can be resumed on two.

Keras 3 on TensorFlow 2.16+ cannot `fit` under MultiWorkerMirroredStrategy
(keras-team/keras#20585, tensorflow/tensorflow#72388). Two functions of Keras's
TensorFlow trainer fail when the strategy spans processes:

1. `TensorFlowTrainer._maybe_symbolic_build` asks the strategy to all-reduce
   the first input batch, an `(images, labels)` tuple of `PerReplica` values,
   only to learn its shapes; `MultiWorkerMirroredStrategy.reduce` accepts no
   nested structure: `ValueError: Attempt to convert a value (PerReplica:...)
   with an unsupported type`.
2. `reduce_per_replica` averages the per-replica metric results across
   workers with `strategy.reduce("MEAN", v, axis=0)`; the results are scalars:
   `ValueError: Invalid reduction dimension 0 for input with 0 dimensions`.

`keras_multi_worker_fixes` mends both for the duration of one `fit`, and only
in multi-worker mode: the build reads the shapes from the local replica's
batch (no all-reduce of images), and scalar results are averaged over all
replicas with `axis=None`. Everything else is Keras's own `fit`: callbacks,
TensorBoard, `BackupAndRestore`, progress bars. Two workers on 127.0.0.1 then
give the loss of one process with the same global batch and seed
(`tests/test_distribute.py`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shutil
import tempfile
import types

import keras
import tensorflow as tf

from keras_convnets.errors import UserInputError

STRATEGIES = ("default", "mirrored", "multi-worker")

_ADDRESS = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$")


# ----------------------------------------------------------------------------
# The cluster: TF_CONFIG.


def parse_workers(text: str) -> list[str]:
    """Splits `--workers host:port,host:port,...` into checked addresses.

    Raises:
        UserInputError: an empty, malformed or repeated address.
    """
    workers = [w.strip() for w in str(text).split(",")]
    for worker in workers:
        match = _ADDRESS.match(worker)
        if not match or not 1 <= int(match.group(2)) <= 65535:
            raise UserInputError(
                f"workers must be a comma-separated list of HOST:PORT with ports "
                f"in 1..65535. Received: workers={text!r}"
            )
    if len(set(workers)) != len(workers):
        raise UserInputError(
            f"workers lists an address twice. Received: workers={text!r}"
        )
    return workers


def tf_config_for(workers: list[str], index: int) -> dict:
    """The `TF_CONFIG` of worker `index` of a cluster of `workers` (0 = chief)."""
    if not 0 <= index < len(workers):
        raise UserInputError(
            f"worker_index must be in 0..{len(workers) - 1} for {len(workers)} "
            f"workers. Received: worker_index={index}"
        )
    return {
        "cluster": {"worker": list(workers)},
        "task": {"type": "worker", "index": index},
    }


def set_cluster(workers: str, worker_index: int | None) -> dict:
    """Writes `TF_CONFIG` from `--workers` and `--worker-index`; returns it."""
    if worker_index is None:
        raise UserInputError(
            "--workers needs --worker-index (0 on the chief, 1, 2, ... on the others)."
        )
    tf_config = tf_config_for(parse_workers(workers), worker_index)
    os.environ["TF_CONFIG"] = json.dumps(tf_config)
    return tf_config


def read_tf_config() -> dict:
    """The checked `TF_CONFIG` of this process.

    Raises:
        UserInputError: missing, not JSON, or a task that is not in the cluster.
    """
    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        raise UserInputError(
            "--strategy multi-worker needs the cluster: pass --workers HOST:PORT,... "
            "--worker-index I, or set TF_CONFIG."
        )
    try:
        tf_config = json.loads(text)
        cluster, task = tf_config["cluster"], tf_config["task"]
        task_type, index = task["type"], int(task["index"])
        members = cluster[task_type]
        if not isinstance(members, list) or not 0 <= index < len(members):
            raise ValueError(index)
    except (ValueError, KeyError, TypeError):
        raise UserInputError(
            'TF_CONFIG must be JSON like {"cluster": {"worker": ["host:port", '
            '...]}, "task": {"type": "worker", "index": 0}}. '
            f"Received: TF_CONFIG={text[:200]!r}"
        ) from None
    if task_type not in ("chief", "worker"):
        raise UserInputError(
            f"TF_CONFIG task type must be chief or worker. Received: type={task_type!r}"
        )
    return tf_config


# ----------------------------------------------------------------------------
# The strategy and this process's place in it.


@dataclasses.dataclass
class Distribution:
    """A strategy and the role of this process in it.

    Attributes:
        name: str. One of `STRATEGIES`.
        strategy: `tf.distribute.Strategy`.
        task_type: str or None. `chief` or `worker` (multi-worker only).
        task_index: int. Index of this process among its task type.
        cluster: dict or None. The `TF_CONFIG` cluster (multi-worker only).
    """

    name: str
    strategy: tf.distribute.Strategy
    task_type: str | None = None
    task_index: int = 0
    cluster: dict | None = None

    @property
    def replicas(self) -> int:
        return int(self.strategy.num_replicas_in_sync)

    @property
    def num_workers(self) -> int:
        if not self.cluster:
            return 1
        return sum(len(self.cluster.get(t, [])) for t in ("chief", "worker"))

    @property
    def multi_worker(self) -> bool:
        """True when replicas live in more than one process."""
        return self.num_workers > 1

    @property
    def is_chief(self) -> bool:
        """The process that writes the run (`saved_models/`, TensorBoard)."""
        if self.task_type is None or self.task_type == "chief":
            return True
        return self.task_index == 0 and "chief" not in (self.cluster or {})

    @property
    def task(self) -> str:
        return f"{self.task_type}:{self.task_index}" if self.task_type else "local"

    def scope(self):
        return self.strategy.scope()

    def describe(self) -> dict:
        """What goes into `run.json`."""
        return {
            "strategy": self.name,
            "replicas": self.replicas,
            "workers": self.num_workers,
            "task": self.task,
            "chief": self.is_chief,
        }


def make_distribution(name: str = "default") -> Distribution:
    """Creates the strategy `name` names; call it before any other TF work.

    `MultiWorkerMirroredStrategy` must be created before TensorFlow starts its
    runtime; `train_and_evaluate` creates it first thing.

    Args:
        name: str. `default`, `mirrored` or `multi-worker` (reads `TF_CONFIG`).

    Returns:
        A `Distribution`.
    """
    if name not in STRATEGIES:
        raise UserInputError(
            f"strategy must be one of {', '.join(STRATEGIES)}. Received: strategy={name!r}"
        )
    if name == "default":
        return Distribution(name, tf.distribute.get_strategy())
    if name == "mirrored":
        devices = tf.config.list_logical_devices(
            "GPU"
        ) or tf.config.list_logical_devices("CPU")
        return Distribution(
            name, tf.distribute.MirroredStrategy([d.name for d in devices])
        )
    tf_config = read_tf_config()
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    except (RuntimeError, ValueError) as e:
        raise UserInputError(
            f"cannot start the multi-worker strategy ({str(e).splitlines()[0][:200]}); "
            f"start the workers in fresh processes."
        ) from None
    return Distribution(
        name,
        strategy,
        task_type=tf_config["task"]["type"],
        task_index=int(tf_config["task"]["index"]),
        cluster=tf_config["cluster"],
    )


def split_cpu(devices: int) -> None:
    """Splits the CPU into `devices` logical devices (for `mirrored` on CPU).

    Must run before TensorFlow initializes its devices.
    """
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(devices)]
    )


def distribute_datasets(datasets, dist: Distribution):
    """Sets data sharding for multi-worker: every worker reads the pipeline and
    keeps its share of each global batch (the in-memory sources have no files
    to shard by)."""
    if not dist.multi_worker:
        return datasets
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA
    )
    return tuple(
        ds.with_options(options) if isinstance(ds, tf.data.Dataset) else ds
        for ds in datasets
    )


def resolve_jit(jit: bool, dist: Distribution) -> tuple[bool, str | None]:
    """XLA is off for more than one replica. Keras compiles its whole step,
    `strategy.run` over every replica included, as one XLA cluster, which
    cannot reach the variables of the other devices ("Trying to access
    resource .../replica_1 located in device CPU:1 from device CPU:0", the
    XLA known issue "tf.Variable on a different device"; keras-team/keras#20763
    on GPUs). Returns `(jit, note or None)`."""
    if jit and dist.replicas > 1:
        return False, (
            f"jit_compile is off: Keras's XLA step cannot span {dist.replicas} "
            f"replicas (keras-team/keras#20763)."
        )
    return jit, None


# ----------------------------------------------------------------------------
# Where a worker writes.


def worker_run_dir(config, dist: Distribution) -> tuple[str, bool]:
    """A non-chief worker's run directory; returns `(run_dir, resuming)`.

    A worker's model, logs and history are thrown away, but its
    `BackupAndRestore` state must outlive a crash, so the folder is a fixed
    one under the system's temporary folder, named from the config, the run
    folder, the cluster's size and the worker's place in it (not from the
    addresses: a restart may get other ports): restarting the same command
    finds it again. It is deleted when the run finishes (`finish_worker`).
    """
    key = json.dumps(
        {
            "identity": config.identity(),
            "workdir": os.path.abspath(config.workdir),
            "run_name": config.run_name,
            "workers": dist.num_workers,
            "task": dist.task,
        },
        sort_keys=True,
        default=str,
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    run_dir = os.path.join(
        tempfile.gettempdir(),
        "keras-convnets-workers",
        f"{digest}-{dist.task_type}{dist.task_index}",
    )
    if config.overwrite and os.path.isdir(run_dir):
        shutil.rmtree(run_dir)
    return run_dir, os.path.isfile(os.path.join(run_dir, "config.json"))


def finish_worker(run_dir: str, dist: Distribution) -> None:
    """Deletes a non-chief worker's folder once its run is done."""
    if not dist.is_chief:
        shutil.rmtree(run_dir, ignore_errors=True)


# ----------------------------------------------------------------------------
# Resume: every worker from the same epoch.


class SameEpochOnAllWorkers(keras.callbacks.Callback):
    """After `BackupAndRestore` restored each worker, makes them agree.

    Each worker keeps its own backup. A worker killed while writing its
    end-of-epoch backup can come back one epoch behind the others, and
    workers at different epochs would pair different collective ops and hang.
    This callback (placed right after the backup callback) compares the
    restored epochs across workers; those one epoch ahead step back to their
    previous backup (which `callbacks.AtomicBackupAndRestore` keeps), anything
    else stops with an error that says which backup folders to delete.

    Args:
        dist: Distribution.
        backup: `callbacks.AtomicBackupAndRestore`. The callback to agree on.
        epochs: int. The run's epoch count.
    """

    def __init__(self, dist, backup, epochs):
        super().__init__()
        self.dist = dist
        self.backup = backup
        self.epochs = int(epochs)

    def on_train_begin(self, logs=None):
        if not self.dist.multi_worker:
            return
        epoch = int(getattr(self.model, "_initial_epoch", None) or 0)
        # A histogram of the restored epochs: each replica adds a one-hot row.
        strategy = self.dist.strategy
        rows = strategy.run(lambda: tf.one_hot(epoch, self.epochs + 1))
        counts = strategy.reduce("SUM", rows, axis=None).numpy()
        restored = [e for e, n in enumerate(counts) if n]
        low, high = min(restored), max(restored)
        if low == high:
            return
        state = self.backup.read_state() or {}
        previous = state.get("previous")
        if high - low == 1 and epoch == high and previous and previous["epoch"] == low:
            self.backup.restore(previous["weights"], low)
            print(
                f"Note: {self.dist.task} steps back to the backup of epoch {low}, "
                f"where the other workers are.",
                flush=True,
            )
        elif epoch != low:
            raise UserInputError(
                f"The workers restored different epochs ({', '.join(map(str, restored))}); "
                f"delete the backup folders (the chief's {self.backup.backup_dir!r} "
                f"among them) to start over."
            )


# ----------------------------------------------------------------------------
# Keras 3 under MultiWorkerMirroredStrategy (see the module docstring).


def _local_shapes_build(self, iterator=None, data_batch=None):
    """`_maybe_symbolic_build` that reads shapes from the local replica."""
    strategy = self.distribute_strategy
    if iterator is not None:
        for _, _, it in iterator:
            batch = next(it)
            data_batch = tf.nest.map_structure(
                lambda v: (
                    strategy.experimental_local_results(v)[0]
                    if isinstance(v, tf.distribute.DistributedValues)
                    else v
                ),
                batch,
            )
            break
    with strategy.scope():
        self._symbolic_build(data_batch=data_batch)


def _scalar_safe_reduce(original):
    from keras.src.backend.tensorflow import trainer as tf_trainer

    def reduce_per_replica(values, strategy, reduction):
        if not tf_trainer._collective_all_reduce_multi_worker(strategy) or (
            reduction not in ("auto", "mean")
        ):
            return original(values, strategy, reduction)

        def reduce_one(v):
            if strategy.experimental_local_results(v)[0].shape.rank == 0:
                return strategy.reduce("MEAN", v, axis=None)
            return original(v, strategy, reduction)

        return tf.nest.map_structure(reduce_one, values)

    return reduce_per_replica


@contextlib.contextmanager
def keras_multi_worker_fixes(model: keras.Model, dist: Distribution):
    """Lets `model.fit` (and `evaluate`) run under MultiWorkerMirroredStrategy.

    A no-op unless the replicas span processes. Patches `model`'s symbolic
    build (this model only) and Keras's `reduce_per_replica` (restored on
    exit); see the module docstring for the two upstream bugs.
    """
    if not dist.multi_worker:
        with dist.scope():
            yield
        return
    from keras.src.backend.tensorflow import trainer as tf_trainer

    original = tf_trainer.reduce_per_replica
    tf_trainer.reduce_per_replica = _scalar_safe_reduce(original)
    model._maybe_symbolic_build = types.MethodType(_local_shapes_build, model)
    try:
        with dist.scope():
            yield
    finally:
        tf_trainer.reduce_per_replica = original
        del model._maybe_symbolic_build

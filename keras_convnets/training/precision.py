"""Compute precision of a training run: `--precision auto|fp32|bf16|fp16`.

`fp32`, `bf16` and `fp16` force a precision; `bf16` and `fp16` are Keras's
mixed policies (float32 variables, low-precision compute, and here float32
output layers; `fp16` adds dynamic loss scaling).

`auto` (what the `fast` and `long` recipes prefer) decides when the run
starts:

- on GPUs, the usual rule, no timing: `bf16` where every GPU supports it
  (compute capability >= 8.0: A100, H100 and later), else `fp16`;
- on CPUs without bf16 arithmetic in hardware (no `amx_bf16` or `avx512_bf16`
  flag on x86, no `bf16` feature on Arm, in `/proc/cpuinfo`), `fp32` without
  timing: bf16 is emulated there and loses by far (10x per step on an AVX2
  Zen 3), and timing it cost up to minutes for a cell network (tracing both
  precisions);
- on other CPUs (or where the flags cannot be read), it times a few training
  steps of the run's own model, at the run's batch size and input shape, in
  fp32 and in bf16 (after warm-up steps, so tracing and oneDNN primitive
  creation are not counted) and keeps the faster. bf16 pays on CPUs with AMX
  or AVX-512-BF16 for convolution-heavy models, but BatchNorm can eat its
  gain, which is why a fixed choice does not travel;
- under multi-worker training nothing is timed (every worker must agree
  without talking): CPUs get fp32.

The choice and both timings are written to `precision.json` in the run folder
before training starts and copied into `run.json`. A resumed run reads that
file back instead of measuring again, so it finishes in the precision it
started in.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

import keras
import tensorflow as tf

from keras_convnets.training import io

# What a config may ask for; `auto` resolves to one of `CONCRETE`.
CHOICES = ("auto", "fp32", "bf16", "fp16")
CONCRETE = ("fp32", "bf16", "fp16")
# Keras dtype policy of each concrete precision.
POLICIES = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}
# The file in the run folder that records the choice.
RECORD_FILE = "precision.json"
# bf16 is kept only when its step takes at most this fraction of fp32's: a
# difference within timing noise goes to fp32, the more accurate of equals.
BF16_MARGIN = 0.9
# Steps untimed (the first traces the train function and sets up oneDNN's
# kernels; later calls reuse both), then timed, per precision.
WARMUP_STEPS = 1
TIMED_STEPS = 5
# Timing stops early once a precision has used this many seconds of timed steps
# (a very slow bf16 needs no five steps to lose).
TIME_BUDGET_S = 3.0
# A later precision whose timed step takes this many times the best median so
# far cannot win (bf16 on AVX2-only CPUs is ~10x slower): one step decides.
HOPELESS_FACTOR = 2.0


# CPU flags of bf16 arithmetic in hardware: AMX and AVX-512 BF16 (x86 `flags`),
# BF16 (Arm `Features`).
BF16_FLAGS = ("amx_bf16", "avx512_bf16", "bf16")


def cpu_bf16_support(cpuinfo_path: str = "/proc/cpuinfo") -> bool | None:
    """Whether the CPU does bf16 arithmetic in hardware; None if unknown.

    Args:
        cpuinfo_path: str. Linux's `/proc/cpuinfo` (tests pass a copy).

    Returns:
        True if the first processor lists one of `BF16_FLAGS`, False if it
        lists flags but none of them, None without a readable flag list
        (not Linux): then `auto` measures.
    """
    flags = set()
    try:
        with open(cpuinfo_path, errors="replace") as f:
            for line in f:
                if not line.strip():
                    if flags:
                        break  # the first processor's block is enough
                    continue
                key, _, value = line.partition(":")
                if key.strip().lower() in ("flags", "features"):
                    flags.update(value.split())
    except OSError:
        return None
    if not flags:
        return None
    return any(flag in flags for flag in BF16_FLAGS)


def gpu_precision(gpus: list | None = None) -> str | None:
    """The precision `auto` takes on GPUs, or None without GPUs.

    Args:
        gpus: list of `(name, compute capability tuple or None)`. Defaults to
            the GPUs TensorFlow sees.

    Returns:
        `"bf16"` if every GPU has compute capability >= 8.0, `"fp16"` if some
        has less (or reports none), None if there are no GPUs.
    """
    if gpus is None:
        gpus = [
            (
                d.name,
                tf.config.experimental.get_device_details(d).get("compute_capability"),
            )
            for d in tf.config.list_physical_devices("GPU")
        ]
    if not gpus:
        return None
    if all(cap is not None and tuple(cap) >= (8, 0) for _, cap in gpus):
        return "bf16"
    return "fp16"


def choose(ms_per_step: dict[str, float]) -> str:
    """The precision `auto` keeps on a CPU, given measured ms per training step.

    bf16 wins only when it takes at most `BF16_MARGIN` of fp32's step time.

    Args:
        ms_per_step: dict `{"fp32": ms, "bf16": ms}`.

    Returns:
        `"fp32"` or `"bf16"`.
    """
    fp32, bf16 = ms_per_step["fp32"], ms_per_step["bf16"]
    return "bf16" if bf16 <= BF16_MARGIN * fp32 else "fp32"


def measure_step_ms(
    build: Callable[[str], keras.Model],
    batch,
    precisions=("fp32", "bf16"),
    warmup_steps: int = WARMUP_STEPS,
    timed_steps: int = TIMED_STEPS,
    budget_s: float = TIME_BUDGET_S,
    clock: Callable[[], float] = time.perf_counter,
    hopeless_factor: float = HOPELESS_FACTOR,
) -> dict[str, float]:
    """Median milliseconds per training step of a model in each precision.

    Args:
        build: function `precision -> compiled keras.Model` (the run's model,
            optimizer and loss).
        batch: `(inputs, targets)`, one real batch of the run.
        precisions: the precisions to time.
        warmup_steps: int. Untimed steps first (tracing, first-call setup).
        timed_steps: int. At most this many timed steps.
        budget_s: float. Timing of a precision stops once its timed steps
            took this long (at least one step is always timed).
        clock: the clock (tests inject one).
        hopeless_factor: float. Timing of a precision also stops after a
            step that took this many times the best median measured before
            it: it cannot become the faster one.

    Returns:
        dict `{precision: median ms per step}`.
    """
    x, y = batch
    result = {}
    for precision in precisions:
        model = build(precision)
        for _ in range(warmup_steps):
            model.train_on_batch(x, y)
        times = []
        hopeless = min(result.values(), default=float("inf")) * hopeless_factor / 1000
        while len(times) < timed_steps and sum(times) < budget_s:
            start = clock()
            model.train_on_batch(x, y)  # returns numpy: the step has finished
            times.append(clock() - start)
            if times[-1] >= hopeless:
                break
        result[precision] = round(1000 * statistics.median(times), 2)
        del model
    return result


def resolve(
    requested: str,
    run_dir: str | None,
    resuming: bool,
    measure: Callable[[], dict[str, float]],
    batch_size: int,
    multi_worker: bool = False,
    gpus: list | None = None,
    cpu_bf16: bool | None = None,
) -> dict:
    """Decides a run's precision and records it in `run_dir/precision.json`.

    Args:
        requested: str. The config's precision, one of `CHOICES`.
        run_dir: str or None. The run folder (exists; its lock is held);
            None records nothing (benchmarks).
        resuming: bool. Whether the run is being resumed: a recorded choice
            is then reused, never measured again.
        measure: function `() -> {"fp32": ms, "bf16": ms}` that times the
            run's model (`measure_step_ms`); only called when needed.
        batch_size: int. The batch the timings are for (recorded).
        multi_worker: bool. No timing under multi-worker training.
        gpus: see `gpu_precision`; defaults to the GPUs TensorFlow sees.
        cpu_bf16: bool or None. Whether the CPU has bf16 hardware; None reads
            it (`cpu_bf16_support`). False: fp32, not timed.

    Returns:
        The record: `{"requested", "precision", "how", "ms_per_step", ...}`,
        where `how` is `given`, `recorded` (from an earlier start of this
        run), `gpu`, `multi-worker`, `cpu-flags` (no bf16 hardware) or
        `measured`.
    """
    path = os.path.join(run_dir, RECORD_FILE) if run_dir else None
    if requested != "auto":
        record = {"requested": requested, "precision": requested, "how": "given"}
    elif resuming and path and os.path.isfile(path):
        record = _read_record(path, requested)
        if record is not None:
            return record
    if requested == "auto":
        gpu = gpu_precision(gpus)
        if gpu is not None:
            record = {"requested": "auto", "precision": gpu, "how": "gpu"}
        elif multi_worker:
            record = {"requested": "auto", "precision": "fp32", "how": "multi-worker"}
        elif (cpu_bf16_support() if cpu_bf16 is None else cpu_bf16) is False:
            record = {"requested": "auto", "precision": "fp32", "how": "cpu-flags"}
        else:
            start = time.perf_counter()
            ms = measure()
            record = {
                "requested": "auto",
                "precision": choose(ms),
                "how": "measured",
                "ms_per_step": ms,
                "batch_size": batch_size,
                "bf16_margin": BF16_MARGIN,
                "measure_s": round(time.perf_counter() - start, 2),
            }
    if path:
        io.atomic_write_json(path, record)
    return record


def _read_record(path: str, requested: str) -> dict | None:
    record = io.read_json(path)
    if (
        isinstance(record, dict)
        and record.get("requested") == requested
        and record.get("precision") in CONCRETE
    ):
        return {**record, "how": "recorded", "first_how": record.get("how")}
    return None


def describe(record: dict) -> str:
    """One line about a precision decision, for the training log."""
    precision, how = record["precision"], record["how"]
    if how == "given":
        return f"Precision: {precision}"
    if how == "recorded":
        return f"Precision: {precision} (auto, as recorded when this run started)"
    if how == "gpu":
        return f"Precision: {precision} (auto: the GPU rule, bf16 from compute capability 8.0)"
    if how == "multi-worker":
        return (
            f"Precision: {precision} (auto: multi-worker training on CPUs, not timed)"
        )
    if how == "cpu-flags":
        return (
            f"Precision: {precision} (auto: this CPU has no bf16 hardware, "
            f"no {', '.join(BF16_FLAGS)} flag; not timed)"
        )
    ms = record["ms_per_step"]
    timings = ", ".join(f"{p} {v:.1f}" for p, v in ms.items())
    return (
        f"Precision: {precision} (auto: ms per step at batch {record['batch_size']}: "
        f"{timings}; the faster kept)"
    )


def wrap_optimizer(
    optimizer: keras.optimizers.Optimizer, precision: str
) -> keras.optimizers.Optimizer:
    """Adds dynamic loss scaling for fp16.

    Keras's `compile` does this only when the model's own dtype policy is
    `mixed_float16`; the functional model around mixed-precision layers (and
    the clone with float32 outputs) has the float32 policy, so it is done here.
    """
    if precision == "fp16" and not isinstance(
        optimizer, keras.optimizers.LossScaleOptimizer
    ):
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer

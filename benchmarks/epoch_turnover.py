"""Where the seconds between two epochs go: a profile of `fit`'s epoch turnover.

Runs `train_and_evaluate` (the real run: its pipelines, callbacks, backup,
TensorBoard, checkpoint) with every callback's hooks timed, Python's garbage
collections timed, and these moments of each epoch recorded:

    last_step      the last training step of the epoch finished
    test_begin/end the validation pass
    epoch_end      `on_epoch_end` reached (first callback)
    epoch_begin    the next epoch's `on_epoch_begin` (first callback)
    first_step     the next epoch's first training step finished

`turnover_s` = first_step(e + 1) - epoch_end(e): what issue 19 measured as the
stall (steady steps are 70-85 ms; turnovers were 4-40 s). Callback hooks that
took longer than 10 ms are listed by name.

The stall's cause, found with this profile and a native stack dump taken
during one (every thread asleep): `fit` drops the last epoch's dataset
iterator, and its destructor waits for tf.data's autotuning thread, which
sleeps for a growing period between optimizations (waits of 40 s seen). `load_dataset` now turns that
thread off (`datasets.without_autotune_thread`). `--autotune-thread both`
(the default) runs the profile twice, in two processes, with the thread
(`keep`, TensorFlow's default) and without it (`drop`, the package's
pipelines), and reports both side by side.

    nice python benchmarks/epoch_turnover.py [--epochs 4] [--train-fraction 0.3]
        [--recipe fast] [--precision fp32] [--autotune-thread both|keep|drop]
        [--out benchmarks/results/epoch_turnover.json]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402

from benchmarks._machine import machine_info  # noqa: E402

_HOOKS = (
    "on_train_begin",
    "on_epoch_begin",
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_test_begin",
    "on_test_end",
    "on_epoch_end",
    "on_train_end",
)


class Profile:
    """Collects timestamped events and per-hook durations."""

    def __init__(self):
        self.t0 = time.perf_counter()
        self.events = []  # (t, kind, detail)
        self.hooks = []  # (t, epoch, callback, hook, seconds)
        self.epoch = -1
        self.batch = -1
        self._gc_start = None
        self.traces = []

    def now(self):
        return time.perf_counter() - self.t0

    def gc_callback(self, phase, info):
        if phase == "start":
            self._gc_start = time.perf_counter()
        elif self._gc_start is not None:
            seconds = time.perf_counter() - self._gc_start
            self.events.append((self.now(), "gc", (info["generation"], seconds)))

    def instrument(self, callbacks):
        """Wraps every hook of every callback with a timer (instance attributes)."""
        for callback in callbacks:
            for hook in _HOOKS:
                method = getattr(callback, hook, None)
                if method is None:
                    continue
                setattr(callback, hook, self._timed(callback, hook, method))

    def _timed(self, callback, hook, method):
        name = type(callback).__name__

        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                seconds = time.perf_counter() - start
                self.hooks.append((self.now(), self.epoch, name, hook, seconds))

        return wrapper


class Marker(keras.callbacks.Callback):
    """First in the list: records the moments; syncs on the step's loss."""

    def __init__(self, profile):
        super().__init__()
        self.p = profile

    def on_epoch_begin(self, epoch, logs=None):
        self.p.epoch, self.p.batch = epoch, -1
        self.p.events.append((self.p.now(), "epoch_begin", epoch))

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None:
            float(loss)  # the step has finished
        kind = "first_step" if self.p.batch < 0 else "step"
        self.p.batch = batch
        self.p.events.append((self.p.now(), kind, self.p.epoch))

    def on_test_begin(self, logs=None):
        self.p.events.append((self.p.now(), "test_begin", self.p.epoch))

    def on_test_end(self, logs=None):
        self.p.events.append((self.p.now(), "test_end", self.p.epoch))

    def on_epoch_end(self, epoch, logs=None):
        self.p.events.append((self.p.now(), "epoch_end", epoch))


def _set_data_pool(size):
    """Runs the training pipeline on a private tf.data pool of `size` threads
    (0: TensorFlow's shared pool)."""
    import tensorflow as tf

    from keras_convnets.training import train as train_module

    original = train_module.make_datasets

    def make_datasets(config, epoch=None):
        train, *rest = original(config, epoch)
        options = tf.data.Options()
        options.threading.private_threadpool_size = size
        return (train.with_options(options), *rest)

    train_module.make_datasets = make_datasets


def _set_augment_jit(jit):
    from keras_convnets.data import augment

    original = augment.augment_dataset

    def augment_dataset(*args, **kwargs):
        kwargs["jit_compile"] = jit
        return original(*args, **kwargs)

    augment.augment_dataset = augment_dataset


def _count_traces(model, profile):
    """`train_step`/`test_step` run in Python only while TensorFlow traces the
    train/test function: each call is a (re)trace."""
    for name in ("train_step", "test_step"):
        original = getattr(model, name)

        def traced(*args, _original=original, _name=name, **kwargs):
            profile.events.append((profile.now(), "trace", _name))
            return _original(*args, **kwargs)

        setattr(model, name, traced)


def _instrument_iterator(profile):
    """Times, in `fit`'s training epoch iterator, the creation of each epoch's
    dataset iterator and the first `next()` on it (the first batch ready)."""
    from keras.src.backend.tensorflow.trainer import TFEpochIterator

    original_get, original_next = (
        TFEpochIterator._get_iterator,
        TFEpochIterator.__next__,
    )

    class Timed:
        def __init__(self, iterable):
            self.iterable = iterable

        def __iter__(self):
            start = time.perf_counter()
            iterator = iter(self.iterable)
            profile.events.append(
                (profile.now(), "iterator_created", time.perf_counter() - start)
            )
            profile.first_next = True
            return iterator

    def get_iterator(self):
        return Timed(original_get(self))

    def next_(self):
        start = time.perf_counter()
        result = original_next(self)
        if getattr(profile, "first_next", False):
            profile.first_next = False
            profile.events.append(
                (profile.now(), "first_batch", time.perf_counter() - start)
            )
        return result

    TFEpochIterator._get_iterator = get_iterator
    TFEpochIterator.__next__ = next_


def summarize(profile, epochs):
    """Per-epoch breakdown of the turnover into its parts."""
    by = {}
    steps = {}
    pending = {}
    for t, kind, detail in profile.events:
        if kind == "gc":
            continue
        if kind == "trace":
            profile.traces.append((t, detail))
            continue
        if kind in ("iterator_created", "first_batch"):
            pending[kind] = detail  # belongs to the next first_step
            continue
        if kind == "first_step":
            by.setdefault(detail, {}).update({f"{k}_s": v for k, v in pending.items()})
            pending = {}
        if kind == "step":
            steps.setdefault(detail, []).append(t)
            by.setdefault(detail, {})["last_step"] = t
        else:
            by.setdefault(detail, {})[kind] = t
            if kind == "first_step":
                by[detail]["last_step"] = t
    step_ms = []
    for times in steps.values():
        step_ms += [1000 * (b - a) for a, b in zip(times, times[1:])]
    rows = []
    for e in range(epochs - 1):
        cur, nxt = by.get(e, {}), by.get(e + 1, {})
        if "epoch_end" not in cur or "first_step" not in nxt:
            continue
        slow_hooks = [
            {"callback": c, "hook": h, "s": round(s, 3)}
            for t, ep, c, h, s in profile.hooks
            if s > 0.01 and cur["last_step"] <= t <= nxt["first_step"]
        ]
        gcs = [
            {"generation": g, "s": round(s, 3)}
            for t, kind, (g, s) in (ev for ev in profile.events if ev[1] == "gc")
            if cur["last_step"] <= t <= nxt["first_step"] and s > 0.005
        ]
        rows.append(
            {
                "after_epoch": e + 1,
                "turnover_s": round(nxt["first_step"] - cur["epoch_end"], 3),
                "last_step_to_test_begin_s": round(
                    cur.get("test_begin", cur["epoch_end"]) - cur["last_step"], 3
                ),
                "validation_s": round(
                    cur.get("test_end", 0) - cur.get("test_begin", 0), 3
                ),
                "epoch_end_callbacks_s": round(
                    nxt["epoch_begin"] - cur["epoch_end"], 3
                ),
                "epoch_begin_to_first_step_s": round(
                    nxt["first_step"] - nxt["epoch_begin"], 3
                ),
                # Parts of it: iter() of the dataset, and next() (first batch
                # ready; includes waiting for the pipeline's start).
                "iterator_creation_s": round(nxt.get("iterator_created_s", -1), 3),
                "first_batch_s": round(nxt.get("first_batch_s", -1), 3),
                "traces": [
                    name
                    for t, name in profile.traces
                    if cur["last_step"] <= t <= nxt["first_step"]
                ],
                "slow_hooks": slow_hooks,
                "gc": gcs,
            }
        )
    return rows, step_ms


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="fast")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--train-fraction", type=float, default=0.3)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--model", help="another registry model (smaller: faster)")
    parser.add_argument("--tta", help="e.g. none: a shorter final evaluation")
    parser.add_argument(
        "--set",
        default="{}",
        metavar="JSON",
        help='other config fields, e.g. \'{"augment": "none"}\'',
    )
    parser.add_argument(
        "--augment-jit",
        choices=("true", "false"),
        help="XLA for the augmentation in the training pipeline (default: "
        "what make_datasets does)",
    )
    parser.add_argument(
        "--data-pool",
        type=int,
        default=None,
        help="tf.data private_threadpool_size for the training pipeline "
        "(default: what make_datasets sets)",
    )
    parser.add_argument(
        "--autotune-thread",
        choices=("drop", "keep", "both"),
        default="both",
        help="drop: the pipelines as make_datasets builds them (tf.data's "
        "autotuning thread off, the fix); keep: with that thread (TensorFlow's "
        "default, the stall); both: one process each, side by side",
    )
    parser.add_argument("--out", default="benchmarks/results/epoch_turnover.json")
    args = parser.parse_args(argv)
    if args.autotune_thread == "both":
        return _both(argv if argv is not None else sys.argv[1:], args.out)

    from keras_convnets.training import io
    from keras_convnets.training.config import resolve_config
    from keras_convnets.training.train import train_and_evaluate

    profile = Profile()
    gc.callbacks.append(profile.gc_callback)
    original_fit = keras.Model.fit

    def fit(self, *a, callbacks=None, **kw):
        callbacks = list(callbacks or [])
        profile.instrument(callbacks)
        _count_traces(self, profile)
        return original_fit(self, *a, callbacks=[Marker(profile), *callbacks], **kw)

    keras.Model.fit = fit
    _instrument_iterator(profile)
    if args.autotune_thread == "keep":
        from keras_convnets.data import datasets

        datasets.without_autotune_thread = lambda ds: ds
    if args.data_pool is not None:
        _set_data_pool(args.data_pool)
    if args.augment_jit is not None:
        _set_augment_jit(args.augment_jit == "true")
    workdir = tempfile.mkdtemp(prefix="turnover-")
    flags = {
        "recipe": args.recipe,
        "epochs": args.epochs,
        "train_fraction": args.train_fraction,
        "precision": args.precision,
        "workdir": workdir,
        "run_name": "profile",
    }
    if args.model:
        flags.update(model=args.model, model_kwargs={})
    if args.tta:
        flags["tta"] = args.tta
    flags.update(json.loads(args.set))
    record = train_and_evaluate(resolve_config({}, flags), verbose=2)
    keras.Model.fit = original_fit
    rows, step_ms = summarize(profile, args.epochs)
    turnovers = [r["turnover_s"] for r in rows]
    result = {
        "benchmark": "epoch_turnover",
        "flags": flags,
        "data_pool": args.data_pool,
        "augment_jit": args.augment_jit,
        "autotune_thread": args.autotune_thread,
        "precision": record.get("precision"),
        "steady_step_ms_median": round(statistics.median(step_ms), 1)
        if step_ms
        else None,
        # A stall inside an epoch too would point at the machine, not fit.
        "steady_step_ms_max": round(max(step_ms), 1) if step_ms else None,
        "steady_steps_over_1s": sum(ms > 1000 for ms in step_ms),
        "steady_steps": len(step_ms),
        "turnover_s_median": round(statistics.median(turnovers), 3)
        if turnovers
        else None,
        "turnover_s_max": max(turnovers) if turnovers else None,
        "epochs": rows,
        "load_average_at_end": list(os.getloadavg()),
        "machine": machine_info(),
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    io.atomic_write_json(args.out, result)
    for r in rows:
        print(
            f"after epoch {r['after_epoch']}: turnover {r['turnover_s']:.2f} s "
            f"(validation {r['validation_s']:.2f} s before it; epoch_end callbacks "
            f"{r['epoch_end_callbacks_s']:.2f} s, epoch_begin -> first step "
            f"{r['epoch_begin_to_first_step_s']:.2f} s: iter() "
            f"{r['iterator_creation_s']:.2f} s, first batch {r['first_batch_s']:.2f} s)"
            f" traces: {r['traces']} slow hooks: "
            f"{[(h['callback'], h['hook'], h['s']) for h in r['slow_hooks']]} "
            f"gc: {r['gc']}"
        )
    print(
        f"steady step {result['steady_step_ms_median']} ms (max "
        f"{result['steady_step_ms_max']} ms, {result['steady_steps_over_1s']} of "
        f"{result['steady_steps']} over 1 s); wrote {args.out}"
    )


def _both(argv, out):
    """Runs `keep` then `drop` as subprocesses; writes both results to `out`."""
    import subprocess

    from keras_convnets.training import io

    cleaned, skip = [], False
    for a in argv:  # this script's own arguments, less --autotune-thread/--out
        if skip:
            skip = False
        elif a in ("--autotune-thread", "--out"):
            skip = True
        elif not a.startswith(("--autotune-thread=", "--out=")):
            cleaned.append(a)
    results = {}
    for mode in ("keep", "drop"):
        part = f"{out}.{mode}.json"
        subprocess.run(
            [
                sys.executable,
                __file__,
                *cleaned,
                "--autotune-thread",
                mode,
                "--out",
                part,
            ],
            check=True,
        )
        with open(part) as f:
            results[mode] = json.load(f)
        os.remove(part)
    summary = {
        mode: {
            "turnover_s": [r["turnover_s"] for r in results[mode]["epochs"]],
            "turnover_s_max": results[mode]["turnover_s_max"],
            "steady_step_ms_median": results[mode]["steady_step_ms_median"],
        }
        for mode in results
    }
    io.atomic_write_json(
        out,
        {
            "benchmark": "epoch_turnover",
            "summary": summary,
            "runs": results,
            "machine": results["drop"]["machine"],
        },
    )
    for mode, row in summary.items():
        print(
            f"autotune thread {mode}: turnovers {row['turnover_s']} s, "
            f"steady step {row['steady_step_ms_median']} ms"
        )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

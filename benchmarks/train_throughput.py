"""Training throughput: fp32 vs bf16, XLA on vs off, against the machine's peaks.

For each model (default: the `fast` recipe's model, and `simple_cnn` with
BatchNorm, the old default) and each (precision, jit_compile) pair, measures
training images/s of `model.fit` on real Fashion-MNIST batches from the
package's own pipeline (`make_datasets`, the recipe's batch size and
augmentation), built and compiled exactly as `keras-convnets train` does
(`build_model`, `build_optimizer`).

In the same run, micro-benchmarks give the machine's peaks: a 2048x2048
matmul and 3x3 convolutions (batch 128 at the shapes of simple_cnn's layers
and a wider one, `CONV_SHAPES`; the fastest counts), each in fp32 and bf16. A training step costs about 3x the forward FLOPs
(forward, gradient w.r.t. inputs, gradient w.r.t. weights); the achieved
FLOP/s is `3 * forward FLOPs per image * images/s`, reported as a fraction of
each peak. The forward FLOPs come from the zoo's counter (`count_flops`).

Everything is interleaved over `--rounds` rounds and the best round is
reported (the machine is shared: compare ratios within one run).

    python benchmarks/train_throughput.py [--rounds 2] [--steps 60]
        [--out benchmarks/results/train_throughput.json]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks._machine import machine_info  # noqa: E402
from keras_convnets.models.flops import count_flops  # noqa: E402
from keras_convnets.training.config import get_recipe  # noqa: E402
from keras_convnets.training.io import atomic_write_json  # noqa: E402
from keras_convnets.training.train import (  # noqa: E402
    build_model,
    build_optimizer,
    make_datasets,
)

_DTYPES = {"fp32": tf.float32, "bf16": tf.bfloat16}


def _timed(fn, repeats):
    fn()  # warm-up (tracing, oneDNN primitive creation)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def matmul_peak(precision, n=2048, repeats=10):
    a = tf.random.normal((n, n), dtype=tf.float32)
    a = tf.cast(a, _DTYPES[precision])
    f = tf.function(lambda: tf.reduce_sum(tf.cast(tf.matmul(a, a), tf.float32)))
    seconds = _timed(lambda: f().numpy(), repeats)
    return 2 * n**3 / seconds


def conv_peak(precision, batch, size, channels, repeats=10):
    x = tf.cast(tf.random.normal((batch, size, size, channels)), _DTYPES[precision])
    w = tf.cast(tf.random.normal((3, 3, channels, channels)), _DTYPES[precision])
    f = tf.function(
        lambda: tf.reduce_sum(tf.cast(tf.nn.conv2d(x, w, 1, "SAME"), tf.float32))
    )
    seconds = _timed(lambda: f().numpy(), repeats)
    return 2 * batch * size * size * channels * channels * 9 / seconds


# 3x3 convolutions measured for the peak: the shapes of simple_cnn's layers
# (28x28x32, 14x14x64) and a wider one; the fastest is the peak.
CONV_SHAPES = ((28, 32), (14, 64), (14, 128))


class Case:
    """One (model, precision, jit) training setup, built once, timed per round."""

    def __init__(self, label, config, steps):
        self.label, self.config, self.steps = label, config, steps
        keras.utils.set_random_seed(config.seed)
        train, _, _, info = make_datasets(config)
        self.data = train.take(steps).cache()
        for _ in self.data:  # fill the cache: time the model, not the pipeline
            pass
        self.model = build_model(config, info)
        self.model.compile(
            optimizer=build_optimizer(config, steps),
            loss=keras.losses.CategoricalCrossentropy(
                label_smoothing=config.label_smoothing
            ),
            jit_compile=bool(config.jit_compile),
        )
        self.flops = count_flops(self.model)
        self.model.fit(self.data.take(5), epochs=1, verbose=0)  # compile, warm up
        self.best = 0.0

    def run(self):
        start = time.perf_counter()
        self.model.fit(self.data, epochs=1, verbose=0)
        images = self.steps * self.config.batch_size
        self.best = max(self.best, images / (time.perf_counter() - start))
        return self.best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="fast")
    parser.add_argument(
        "--models",
        default="recipe,simple_cnn",
        help="comma list: `recipe` (the recipe's model) and/or registry names",
    )
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--jit", default="false,true", help="jit_compile values")
    parser.add_argument("--steps", type=int, default=60, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/train_throughput.json")
    args = parser.parse_args(argv)

    recipe = replace(get_recipe(args.recipe), tensorboard_images=0)
    precisions = args.precisions.split(",")
    cases = []
    for name in args.models.split(","):
        base = (
            recipe if name == "recipe" else replace(recipe, model=name, model_kwargs={})
        )
        for precision in precisions:
            for jit in (v == "true" for v in args.jit.split(",")):
                label = f"{base.model}{'' if name != 'recipe' else ' (recipe)'} {precision} xla={'on' if jit else 'off'}"
                config = replace(base, precision=precision, jit_compile=jit)
                print(f"building {label}", flush=True)
                cases.append(Case(label, config, args.steps))

    peaks, conv_rates = {}, {}
    for round_ in range(args.rounds):
        for case in cases:
            rate = case.run()
            print(f"round {round_ + 1}: {case.label}: {rate:,.0f} images/s", flush=True)
        for precision in precisions:
            key = f"matmul_{precision}"
            peaks[key] = max(peaks.get(key, 0.0), matmul_peak(precision))
            for size, channels in CONV_SHAPES:
                key = f"conv3x3_{size}x{size}x{channels}_{precision}"
                rate = conv_peak(precision, 128, size, channels)
                conv_rates[key] = max(conv_rates.get(key, 0.0), rate)
                peak = f"conv3x3_{precision}"
                peaks[peak] = max(peaks.get(peak, 0.0), conv_rates[key])

    rows = []
    for case in cases:
        p = case.config.precision
        achieved = 3 * case.flops * case.best
        rows.append(
            {
                "case": case.label,
                "variant": case.label.rsplit(" ", 2)[0],
                "model": case.config.model,
                "model_kwargs": case.config.model_kwargs,
                "precision": p,
                "jit_compile": bool(case.config.jit_compile),
                "batch_size": case.config.batch_size,
                "params": int(case.model.count_params()),
                "forward_mflops_per_image": round(case.flops / 1e6, 2),
                "images_per_s": round(case.best, 1),
                "achieved_train_gflops": round(achieved / 1e9, 1),
                "fraction_of_matmul_peak": round(achieved / peaks[f"matmul_{p}"], 3),
                "fraction_of_conv_peak": round(achieved / peaks[f"conv3x3_{p}"], 3),
            }
        )
    by = {(r["variant"], r["precision"], r["jit_compile"]): r for r in rows}
    ratios = {}
    for model in dict.fromkeys(r["variant"] for r in rows):
        for jit in (False, True):
            fp32, bf16 = by.get((model, "fp32", jit)), by.get((model, "bf16", jit))
            if fp32 and bf16:
                ratios[f"{model} bf16/fp32 xla={'on' if jit else 'off'}"] = round(
                    bf16["images_per_s"] / fp32["images_per_s"], 2
                )
        for p in precisions:
            off, on = by.get((model, p, False)), by.get((model, p, True))
            if off and on:
                ratios[f"{model} {p} xla on/off"] = round(
                    on["images_per_s"] / off["images_per_s"], 2
                )
    result = {
        "benchmark": "train_throughput",
        "recipe": args.recipe,
        "steps_per_round": args.steps,
        "rounds": args.rounds,
        "peaks_gflops": {k: round(v / 1e9, 1) for k, v in peaks.items()},
        "conv3x3_gflops_by_shape_batch128": {
            k: round(v / 1e9, 1) for k, v in conv_rates.items()
        },
        "rows": rows,
        "ratios": ratios,
        "targets": {
            "bf16_over_fp32_at_least": 2.5,
            "fp32_fraction_of_conv_peak_at_least": 0.5,
        },
        "machine": machine_info(),
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    atomic_write_json(args.out, result)
    print(f"\npeaks (GFLOP/s): {result['peaks_gflops']}")
    print(f"{'case':44s} {'img/s':>8s} {'GFLOP/s':>8s} {'%conv':>6s} {'%matmul':>8s}")
    for r in rows:
        print(
            f"{r['case']:44s} {r['images_per_s']:8.0f} {r['achieved_train_gflops']:8.1f} "
            f"{100 * r['fraction_of_conv_peak']:5.1f}% {100 * r['fraction_of_matmul_peak']:7.1f}%"
        )
    for k, v in ratios.items():
        print(f"{k}: {v}x")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

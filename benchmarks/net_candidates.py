"""Training throughput of cheaper `simple_cnn` variants: where a faster recipe could come from.

The fast recipe's net (simple_cnn without BatchNorm, 37.5 forward MFLOPs per
28x28 image) runs 3,712 images/s in bf16 on the AMX Xeon it was tuned on, but
about 470 in fp32 on a 2-core AVX2-only CPU, where `make train`'s 20 epochs
then take ~38 minutes. This measures `fit` throughput of the recipe's net and
of narrower, shallower or deeper variants (`simple_cnn` keyword arguments),
each built, compiled and fed exactly as `keras-convnets train` does
(`train_throughput.Case`: the recipe's pipeline and optimizer, batches cached
so the model is timed, not the input), in the same run, rounds interleaved,
best round kept. The Keras "simple MNIST convnet" example (the peer of
`time_to_accuracy.py`) is timed in the same run with its own `fit` on arrays.

Accuracy is not measured here: a variant is worth a full training run
(`keras-convnets train --model-kwargs ...`) only if it is much faster.

    python benchmarks/net_candidates.py [--precision fp32] [--rounds 2] [--steps 40]
        [--only "base,32-64 c1"] [--out benchmarks/results/net_candidates.json]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._machine import machine_info  # noqa: E402
from benchmarks.train_throughput import Case  # noqa: E402
from keras_convnets.models.flops import count_flops  # noqa: E402
from keras_convnets.training.config import get_recipe  # noqa: E402
from keras_convnets.training.io import atomic_write_json  # noqa: E402

# (label, simple_cnn keyword arguments, batch size); "base" is the fast recipe's net.
VARIANTS = (
    ("base", {"batch_norm": False}, 128),
    ("base + BatchNorm", {"batch_norm": True}, 128),
    ("base, batch 256", {"batch_norm": False}, 256),
    ("32-64 c1-2", {"batch_norm": False, "convs_per_stage": (1, 2)}, 128),
    (
        "32-64-128 c1",
        {
            "batch_norm": False,
            "stackwise_num_filters": (32, 64, 128),
            "convs_per_stage": 1,
        },
        128,
    ),
    ("24-48 c2", {"batch_norm": False, "stackwise_num_filters": (24, 48)}, 128),
    ("32-64 c1", {"batch_norm": False, "convs_per_stage": 1}, 128),
    ("16-32 c2", {"batch_norm": False, "stackwise_num_filters": (16, 32)}, 128),
    (
        "32-64-128 c1-2-1",
        {
            "batch_norm": False,
            "stackwise_num_filters": (32, 64, 128),
            "convs_per_stage": (1, 2, 1),
        },
        128,
    ),
)


def keras_example_rate(images=12800, rounds=2):
    """Training images/s of the Keras example's own `fit` (arrays, batch 128)."""
    from benchmarks.time_to_accuracy import keras_example

    peer, x, y = keras_example(limit=images)
    peer.fit(x[:1280], y[:1280], batch_size=128, epochs=1, verbose=0)  # warm up
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        peer.fit(x, y, batch_size=128, epochs=1, verbose=0)
        best = max(best, len(x) / (time.perf_counter() - start))
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="fast")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--only", help="comma list of variant labels")
    parser.add_argument("--out", default="benchmarks/results/net_candidates.json")
    args = parser.parse_args(argv)

    recipe = replace(
        get_recipe(args.recipe),
        tensorboard_images=0,
        precision=args.precision,
        jit_compile=False,
    )
    wanted = set(args.only.split(",")) if args.only else None
    cases = [
        Case(label, replace(recipe, model_kwargs=kwargs, batch_size=batch), args.steps)
        for label, kwargs, batch in VARIANTS
        if wanted is None or label in wanted
    ]
    for round_ in range(args.rounds):
        for case in cases:
            rate = case.run()
            print(f"round {round_ + 1}: {case.label}: {rate:,.0f} images/s", flush=True)
    example = keras_example_rate(rounds=args.rounds)
    base = next((c.best for c in cases if c.label == "base"), None)
    rows = [
        {
            "variant": case.label,
            "model_kwargs": case.config.model_kwargs,
            "batch_size": case.config.batch_size,
            "params": int(case.model.count_params()),
            "forward_mflops_per_image": round(count_flops(case.model) / 1e6, 2),
            "images_per_s": round(case.best, 1),
            "over_base": round(case.best / base, 2) if base else None,
            # Seconds of steps for one epoch of Fashion-MNIST's 54,000 images.
            "epoch_s": round(54000 / case.best, 1),
        }
        for case in cases
    ]
    result = {
        "benchmark": "net_candidates",
        "recipe": args.recipe,
        "precision": args.precision,
        "steps_per_round": args.steps,
        "rounds": args.rounds,
        "rows": rows,
        "keras_example_images_per_s": round(example, 1),
        "keras_example_15_epochs_s": round(15 * 54000 / example, 1),
        "machine": machine_info(),
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    atomic_write_json(args.out, result)
    for r in rows:
        print(
            f"{r['variant']:>18}: {r['images_per_s']:>7,.0f} images/s "
            f"({r['over_base']}x base), {r['forward_mflops_per_image']} MFLOPs, "
            f"{r['params']:,} weights"
        )
    print(
        f"Keras example: {example:,.0f} images/s (15 epochs of 54,000: "
        f"{15 * 54000 / example:.0f} s); wrote {args.out}"
    )


if __name__ == "__main__":
    main()

"""The `experiment` subcommand of `keras-convnets`.

Only argparse at import time, so `keras-convnets --help` stays fast; the
experiment's module (TensorFlow, matplotlib) is imported when it runs.
"""

from __future__ import annotations

import os

from keras_convnets.cli_common import integer

DEFAULT_OUT = "experiments_out"

EXAMPLES = """examples:
  keras-convnets experiment gradients                 # hand vs GradientTape vs autodiff
  keras-convnets experiment inductive-bias --out results
  keras-convnets experiment gradients --quick --seed 3
  keras-convnets experiment transfer --backbone MobileNetV2 --dataset mnist

Each run writes OUT/NAME/results.json, PNG plots and OUT/NAME/summary.md.
--quick is a small, fast version for tests; the full run is what the README
reports."""


def add_parsers(subparsers, formatter) -> None:
    """Adds `experiment` to the `keras-convnets` subcommands."""
    from keras_convnets.experiments.registry import EXPERIMENTS

    listing = "\n".join(
        f"  {name}\n      {description}"
        for name, (_, description) in EXPERIMENTS.items()
    )
    p = subparsers.add_parser(
        "experiment",
        help="run one of the lecture's claims as an experiment",
        description="Run one of the lecture's claims as an experiment.\n\n" + listing,
        epilog=EXAMPLES,
        formatter_class=formatter,
    )
    p.add_argument("name", metavar="NAME", choices=sorted(EXPERIMENTS))
    p.add_argument(
        "--quick", action="store_true", help="small and fast (minutes), for tests"
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        default=DEFAULT_OUT,
        help=f"results land in DIR/NAME (default {DEFAULT_OUT})",
    )
    p.add_argument("--data-dir", help="folder with IDX files, searched first")
    p.add_argument("--seed", type=integer, default=0, help="random seed (default 0)")
    g = p.add_argument_group("transfer only")
    g.add_argument(
        "--dataset",
        help="dataset whose first half of classes is the source task and second "
        "half the target (default fashion_mnist; any TFDS name or folder)",
    )
    g.add_argument(
        "--backbone",
        metavar="NAME",
        help="a keras.applications model (e.g. MobileNetV2) or a zoo model with "
        "a keras.applications twin (e.g. resnet50_v2, mobilenet) with ImageNet "
        "weights as the pretrained features, instead of pretraining on the "
        "source classes",
    )
    g.add_argument(
        "--backbone-weights",
        choices=("imagenet", "random"),
        help="imagenet (default; offline: a one-line error) or random (explicit "
        "random initialization)",
    )
    p.set_defaults(func=_cmd_experiment)


def _cmd_experiment(args) -> int:
    from keras_convnets.experiments.registry import run_experiment

    options = {
        key: getattr(args, key)
        for key in ("dataset", "backbone", "backbone_weights")
        if getattr(args, key) is not None
    }
    run_experiment(
        args.name,
        args.out,
        quick=args.quick,
        seed=args.seed,
        data_dir=args.data_dir,
        **options,
    )
    directory = os.path.join(args.out, args.name)
    print(f"Results: {os.path.join(directory, 'results.json')}")
    print(f"Summary: {os.path.join(directory, 'summary.md')}")
    return 0

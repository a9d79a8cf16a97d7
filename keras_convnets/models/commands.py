"""The `models` subcommand of `keras-convnets`: the registry as a table."""

from __future__ import annotations

import json

from keras_convnets import cli_common


def add_parsers(subparsers, formatter) -> None:
    """Adds `models` to the `keras-convnets` subcommands."""
    p = subparsers.add_parser(
        "models",
        help="list registered architectures",
        description="List registered models with parameters, forward FLOPs per image "
        "(a multiply-add counts 2) and a description.",
        epilog="examples:\n  keras-convnets models\n  keras-convnets models --input-shape 28,28,1\n"
        "  keras-convnets models resnet50 mobilenet_v2 --input-shape 96,96,3 --json",
        formatter_class=formatter,
    )
    p.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help="only these models (default: all; building every model takes a while)",
    )
    p.add_argument(
        "--input-shape",
        type=cli_common.input_shape,
        metavar="H,W,C",
        help="build every model at this shape (default: each model's usual one)",
    )
    p.add_argument(
        "--num-classes",
        type=cli_common.positive_int,
        help="classes (default: 1000 for ImageNet-sized models, else 10)",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_models)


def _cmd_models(args):
    from keras_convnets.models.flops import describe_models

    rows = describe_models(args.input_shape, args.num_classes, args.names or None)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["name"]) for r in rows)
    print(
        f"{'name':<{width}}  {'input':>11}  {'params':>12}  {'GFLOPs':>8}  description"
    )
    for r in rows:
        shape = "x".join(str(d) for d in r["input_shape"])
        if r["params"] is None:
            size = f"{'-':>12}  {'-':>8}  {r['description']} ({r['error']})"
        else:
            size = f"{r['params']:>12,}  {r['flops'] / 1e9:>8.3f}  {r['description']}"
        print(f"{r['name']:<{width}}  {shape:>11}  {size}")
    return 0

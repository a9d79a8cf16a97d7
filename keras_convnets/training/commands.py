"""The `train`, `evaluate` and `predict` subcommands of `keras-convnets`.

`train`'s config flags are derived from `TrainConfig`: one flag per field,
named after it (`learning_rate` -> `--learning-rate`), typed by the field's
type, shown with the default recipe's value. `CONFIG_FLAGS` only adds what a
type cannot say: the help group, a line of help, choices and a metavar.
TensorFlow is imported when a command runs, not when the parser is built.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
import typing

from keras_convnets import cli_common
from keras_convnets.errors import UNSAFE_HELP

TRAIN_EXAMPLES = """examples:
  keras-convnets train                                   # default recipe on Fashion-MNIST
  keras-convnets train --recipe quick --run-name smoke   # a 30-second smoke run
  keras-convnets train --model simple_cnn --epochs 20 --batch-size 256 \\
      --optimizer nesterov --learning-rate 0.05 --schedule one-cycle
  keras-convnets train --dataset cifar10 --tfds-data-dir ~/tensorflow_datasets
  keras-convnets train --dataset path/to/folders --image-size 64,64
  keras-convnets train --config my_run.yaml --epochs 3   # flags override the file
  keras-convnets train --genotype tuning/NAME/best_genotype.json --cells 2 --filters 32
  keras-convnets train --genotype tuning/NAME/best_genotype.json --params-budget 470000
  keras-convnets train --strategy mirrored               # every local GPU, one batch split
  # two machines, one line on each (worker 0 is the chief and writes the run):
  keras-convnets train --workers host0:12345,host1:12345 --worker-index 0
  keras-convnets train --workers host0:12345,host1:12345 --worker-index 1

Rerunning the same command after a crash resumes the unfinished run.
Open TensorBoard with: tensorboard --logdir saved_models"""

# The help groups of `train`'s config flags, in order. A config field that
# `config_flags` does not list still gets its flag, under `OTHER_GROUP`.
TRAIN_GROUPS = ("recipe and config", "model", "data", "optimization", "run")
OTHER_GROUP = "other config fields"


def config_flags() -> dict:
    """`{field: (group, add_argument options)}` for the `TrainConfig` fields.

    Options given here win over those derived from the field's type; `aliases`
    lists extra flag names. A field missing here gets a plain flag under
    `OTHER_GROUP`.
    """
    from keras_convnets.data.augment import list_policies
    from keras_convnets.training.config import (
        OPTIMIZERS,
        PRECISIONS,
        RECIPES,
        SCHEDULES,
        TTA_POLICIES,
    )

    policies = list_policies()
    return {
        "recipe": (
            "recipe and config",
            dict(choices=sorted(RECIPES), help="named preset"),
        ),
        "model": ("model", dict(help="registry name, see `keras-convnets models`")),
        "model_kwargs": (
            "model",
            dict(metavar="JSON", help="builder arguments, e.g. '{\"dropout\": 0.5}'"),
        ),
        "weights": (
            "model",
            dict(
                metavar="imagenet|FILE",
                help="start from pretrained weights: imagenet (downloaded once into "
                "~/.keras/models) or a weights file of the keras.applications twin; "
                "for resnet50/101/152(_v2), vgg16/19, mobilenet, inception_resnet_v2",
            ),
        ),
        "genotype": (
            "model",
            dict(
                metavar="FILE",
                help="train a searched cell (best_genotype.json) instead of --model",
            ),
        ),
        "cells": (
            "model",
            dict(help="normal cells per stage of a --genotype (default 2)"),
        ),
        "filters": (
            "model",
            dict(help="first-stage filters of a --genotype (default 32)"),
        ),
        "params_budget": (
            "model",
            dict(
                metavar="N",
                help="--genotype: the widest --filters within N parameters, e.g. 470000",
            ),
        ),
        "cell_norm": (
            "model",
            dict(
                choices=("none", "batch"),
                help="--genotype: BatchNorm in the cells (default: what the file "
                "records, else none)",
            ),
        ),
        "stem_stride": (
            "model",
            dict(
                choices=(1, 2),
                help="--genotype: stride of the stem, 1 or 2 (default: what the "
                "file records, else 1)",
            ),
        ),
        "dataset": (
            "data",
            dict(help="fashion_mnist, mnist, a TFDS name, or a folder"),
        ),
        "data_dir": ("data", dict(help="folder with IDX files, searched first")),
        "tfds_data_dir": ("data", dict(help="TensorFlow Datasets data folder")),
        "image_size": ("data", dict(metavar="H,W", help="resize images")),
        "validation_fraction": ("data", dict(metavar="F", help="held out")),
        "train_fraction": ("data", dict(metavar="F", help="seeded subset")),
        "augment": (
            "data",
            dict(
                choices=policies,
                metavar="POLICY",
                help=f"augmentation of training batches: {', '.join(policies)}",
            ),
        ),
        "epochs": ("optimization", dict(help="passes over the training split")),
        "batch_size": ("optimization", dict(help="examples per step, all replicas")),
        "optimizer": (
            "optimization",
            dict(choices=OPTIMIZERS, help="nesterov: SGD with Nesterov momentum"),
        ),
        "learning_rate": ("optimization", dict(aliases=["--lr"], help="peak rate")),
        "schedule": (
            "optimization",
            dict(
                choices=SCHEDULES,
                help="cosine: decay to 0 after the warmup; one-cycle: linear up "
                "for the warmup, then linear down to 0",
            ),
        ),
        "warmup_epochs": ("optimization", dict(help="linear warmup, in epochs")),
        "weight_decay": (
            "optimization",
            dict(help="decoupled; not on biases and normalization weights"),
        ),
        "momentum": ("optimization", dict(help="of sgd and nesterov")),
        "label_smoothing": ("optimization", dict(help="of the cross-entropy loss")),
        "ema": (
            "optimization",
            dict(
                metavar="MOMENTUM",
                help="weight EMA momentum per step, e.g. 0.99; 0 is off",
            ),
        ),
        "tta": (
            "optimization",
            dict(
                choices=TTA_POLICIES, help="test-time augmentation saved in model.keras"
            ),
        ),
        "precision": (
            "optimization",
            dict(
                choices=PRECISIONS,
                help="auto (on CPUs the faster of fp32 and bf16, timed on the run's "
                "model at start; on GPUs bf16, or fp16 below compute capability 8.0), "
                "fp32, or mixed bf16/fp16 with float32 variables and outputs",
            ),
        ),
        "jit_compile": ("optimization", dict(help="XLA (auto: on for GPU only)")),
        "seed": ("run", dict(help="weights, data order and augmentation follow it")),
        "workdir": ("run", dict(help="where runs land")),
        "run_name": (
            "run",
            dict(help="run folder name (default <model>-<dataset>-<time>)"),
        ),
        "tensorboard_images": (
            "run",
            dict(metavar="N", help="training images shown in TensorBoard"),
        ),
        "overwrite": ("run", dict(help="replace a finished run")),
    }


def _type_options(hint) -> dict:
    """`add_argument` options for a config field of type `hint`.

    Values stay as typed where the config's own coercion does the rest
    (`model_kwargs` JSON, `jit_compile` auto/true/false), so a flag and a
    config file accept the same text.
    """
    args = typing.get_args(hint)
    base = next((a for a in args if a is not type(None)), hint) if args else hint
    if base is bool:
        if type(None) in args:  # None means "auto"
            return dict(choices=("auto", "true", "false"))
        return dict(action="store_true")
    if base is int:
        return dict(type=cli_common.integer)
    if base is float:
        return dict(type=cli_common.number)
    if base is tuple:
        return dict(type=cli_common.image_size)
    return {}  # str, and dict (JSON text)


def _shown(value) -> str | None:
    """A default as the user would type it; None where there is nothing to show."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, dict):
        return json.dumps(value).replace("%", "%%")
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value).replace("%", "%%")  # argparse %-formats help


def add_config_arguments(parser, groups: dict) -> None:
    """Adds one flag per `TrainConfig` field to `parser`'s `groups`.

    Every default is None (= not given) so that precedence is recipe < file <
    flags; the help shows the default recipe's value.

    Args:
        parser: the `train` parser (it gets the `OTHER_GROUP` if needed).
        groups: dict `{title: argument group}` holding `TRAIN_GROUPS`.
    """
    from keras_convnets.training.config import (
        CLI_DEFAULT_RECIPE,
        NAS_CELL_ARGUMENTS,
        TrainConfig,
        get_recipe,
    )

    defaults = get_recipe(CLI_DEFAULT_RECIPE)
    hints = typing.get_type_hints(TrainConfig)
    flags = config_flags()
    for field in dataclasses.fields(TrainConfig):
        group, extra = flags.get(field.name, (OTHER_GROUP, {}))
        if group not in groups:
            groups[group] = parser.add_argument_group(group)
        options = {**_type_options(hints[field.name]), **extra}
        aliases = options.pop("aliases", [])
        shown = _shown(getattr(defaults, field.name))
        if shown is not None and "(default" not in options.get("help", ""):
            options["help"] = f"{options.get('help', '')} (default {shown})".lstrip()
        groups[group].add_argument(
            "--" + field.name.replace("_", "-"),
            *aliases,
            dest=field.name,
            default=None,
            **options,
        )
    # Shortcuts for the model arguments of a searched cell (`nas_cell_net`).
    kinds = {
        "genotype": str,
        "cells": int,
        "filters": int,
        "params_budget": int,
        "stem_stride": int,
    }
    for name in NAS_CELL_ARGUMENTS:
        group, extra = flags[name]
        options = {**_type_options(kinds.get(name, str)), **extra}
        groups[group].add_argument(
            "--" + name.replace("_", "-"), dest=name, default=None, **options
        )


def config_flag_values(args) -> dict:
    """The config fields given on the command line, as `resolve_config` takes them."""
    from keras_convnets.training.config import NAS_CELL_ARGUMENTS, TrainConfig

    names = [f.name for f in dataclasses.fields(TrainConfig)] + list(NAS_CELL_ARGUMENTS)
    values = {name: getattr(args, name, None) for name in names}
    return {k: v for k, v in values.items() if v is not None}


def add_parsers(subparsers, formatter) -> None:
    """Adds `train`, `evaluate` and `predict` to the `keras-convnets` subcommands."""
    _add_train_parser(subparsers, formatter)
    _add_evaluate_parser(subparsers, formatter)
    _add_predict_parser(subparsers, formatter)


def _add_train_parser(subparsers, formatter):
    from keras_convnets.training.config import CLI_DEFAULT_RECIPE

    p = subparsers.add_parser(
        "train",
        help="train a model, select it on validation, test it",
        description="Train a model with model.fit; the run lands in WORKDIR/RUN_NAME.\n"
        f"Defaults shown are the {CLI_DEFAULT_RECIPE} recipe's; --recipe and "
        "--config change them, flags override both.",
        epilog=TRAIN_EXAMPLES,
        formatter_class=formatter,
    )
    groups = {title: p.add_argument_group(title) for title in TRAIN_GROUPS}
    add_config_arguments(p, groups)
    groups["recipe and config"].add_argument(
        "--config", metavar="FILE", help="YAML or JSON file of config fields"
    )
    groups["run"].add_argument(
        "--json", action="store_true", help="print the run record as JSON at the end"
    )
    g = p.add_argument_group(
        "distribution (how to run, not what: not part of the config; "
        "--batch-size is the global batch)"
    )
    g.add_argument(
        "--strategy",
        choices=("default", "mirrored", "multi-worker"),
        help="one device (default), all local GPUs (mirrored), or a cluster "
        "from TF_CONFIG or --workers (multi-worker)",
    )
    g.add_argument(
        "--workers",
        metavar="HOST:PORT,...",
        help="the cluster, the same list on every machine; writes TF_CONFIG "
        "(implies --strategy multi-worker)",
    )
    g.add_argument(
        "--worker-index",
        type=cli_common.integer,
        metavar="I",
        help="this machine's place in --workers (0: the chief)",
    )
    p.set_defaults(func=_cmd_train)


def _process_start_time() -> float | None:
    """When this process started (Linux), so wall times include start-up."""
    try:
        with open("/proc/self/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return time.time() - uptime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _strategy(args) -> str:
    """`--strategy`, checked against `--workers`/`--worker-index`; writes TF_CONFIG."""
    from keras_convnets.errors import UserInputError
    from keras_convnets.training import distribute

    strategy = args.strategy or ("multi-worker" if args.workers else "default")
    if args.workers is not None:
        if strategy != "multi-worker":
            raise UserInputError(
                f"--workers is for --strategy multi-worker. Received: --strategy {strategy}"
            )
        distribute.set_cluster(args.workers, args.worker_index)
    elif args.worker_index is not None:
        raise UserInputError("--worker-index needs --workers HOST:PORT,...")
    if strategy == "multi-worker":
        distribute.read_tf_config()  # a missing or bad cluster fails here, at once
    return strategy


def _cmd_train(args):
    from keras_convnets.errors import TrainingDivergedError
    from keras_convnets.training.config import (
        CLI_DEFAULT_RECIPE,
        read_config_file,
        resolve_config,
    )
    from keras_convnets.training.train import train_and_evaluate

    file_values = read_config_file(args.config) if args.config else {}
    config = resolve_config(
        file_values, config_flag_values(args), default_recipe=CLI_DEFAULT_RECIPE
    )
    strategy = _strategy(args)
    # SIGTERM stops the run like Ctrl-C: fit is interrupted before it can
    # delete the backup, so rerunning the command resumes.
    cli_common.stop_on_sigterm()
    try:
        record = train_and_evaluate(
            config, start_time=_process_start_time(), strategy=strategy
        )
    except TrainingDivergedError as e:
        print(f"keras-convnets train: error: {e}", file=sys.stderr)
        return cli_common.EXIT_DIVERGED
    distribution = record.get("distribution") or {}
    if not distribution.get("chief", True):
        print(f"{distribution['task']}: done; the chief wrote the run.")
        return 0
    run_dir = cli_common.short_path(record["run_dir"])
    if args.json:
        print(json.dumps(record, indent=2))
    best = f" (best epoch {record['best_epoch']})" if record["best_epoch"] else ""
    print(f"Model:         {os.path.join(run_dir, 'model.keras')}{best}")
    print(f"Run record:    {os.path.join(run_dir, 'run.json')}")
    print(f"TensorBoard:   tensorboard --logdir {os.path.join(run_dir, 'logs')}")
    print(
        f"Test accuracy: {record['test_accuracy']:.4f} (loss {record['test_loss']:.4f}) on "
        f"{record['dataset']['sizes']['test']} {record['dataset']['name']} test images, "
        f"{record['wall_time_s']:.0f} s"
    )
    return 0


def _add_evaluate_parser(subparsers, formatter):
    p = subparsers.add_parser(
        "evaluate",
        help="accuracy and loss of a saved model on a dataset split",
        description="Evaluate a saved model (a run directory or a .keras file).",
        epilog="examples:\n  keras-convnets evaluate saved_models/my-run\n"
        "  keras-convnets evaluate model.keras --dataset fashion_mnist --json",
        formatter_class=formatter,
    )
    p.add_argument("path", help="run directory or .keras file")
    p.add_argument("--dataset", help="dataset (default: the run's own)")
    p.add_argument("--split", choices=("test", "validation", "train"), default="test")
    p.add_argument("--batch-size", type=cli_common.positive_int, default=256)
    p.add_argument("--data-dir")
    p.add_argument("--tfds-data-dir")
    p.add_argument("--json", action="store_true", help="print a JSON object")
    p.add_argument("--unsafe", action="store_true", help=UNSAFE_HELP)
    p.set_defaults(func=_cmd_evaluate)


def _cmd_evaluate(args):
    from keras_convnets.inference import evaluate

    result = evaluate(
        args.path,
        dataset=args.dataset,
        split=args.split,
        batch_size=args.batch_size,
        data_dir=args.data_dir,
        tfds_data_dir=args.tfds_data_dir,
        unsafe=args.unsafe,
    )
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['dataset']} {result['split']}: accuracy {result['accuracy']:.4f}, "
            f"loss {result['loss']:.4f} ({result['examples']} images)"
        )
    return 0


def _add_predict_parser(subparsers, formatter):
    p = subparsers.add_parser(
        "predict",
        help="top-k classes for image files",
        description="Predict classes of PNG/JPEG images with a saved model.",
        epilog="example:\n  keras-convnets predict saved_models/my-run shoe.png shirt.jpg --top-k 3",
        formatter_class=formatter,
    )
    p.add_argument("path", help="run directory or .keras file")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--top-k", type=cli_common.positive_int, default=3)
    p.add_argument("--json", action="store_true")
    p.add_argument("--unsafe", action="store_true", help=UNSAFE_HELP)
    p.set_defaults(func=_cmd_predict)


def _cmd_predict(args):
    from keras_convnets.inference import predict

    results = predict(args.path, args.images, top_k=args.top_k, unsafe=args.unsafe)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for r in results:
        tops = ", ".join(f"{t['class']} {t['probability']:.3f}" for t in r["top"])
        print(f"{r['image']}: {tops}")
    return 0

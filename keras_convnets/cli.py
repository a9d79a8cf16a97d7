"""The `keras-convnets` command: parses flags and calls library functions.

Subcommands: train, evaluate, predict, models. A mistake of the user's prints
one line on stderr and exits with status 2; a diverged run exits with 3.
Set KERAS_CONVNETS_DEBUG=1 to see tracebacks for those too.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import sys
import time

from keras_convnets.errors import UNSAFE_HELP

EXIT_USER_ERROR = 2
EXIT_DIVERGED = 3


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line (not the whole usage) and exit 2."""

    def error(self, message):
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message}\n")


def _formatter(prog):
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _float(text):
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _int(text):
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _sizes(text, lengths, form):
    try:
        parts = tuple(int(p) for p in text.replace("x", ",").split(",") if p.strip())
    except ValueError:
        parts = ()
    if len(parts) not in lengths or min(parts) < 1:
        raise argparse.ArgumentTypeError(
            f"expected {form} with positive sizes, got {text!r}"
        )
    return parts


def _shape(text):
    return _sizes(text, (2, 3), "H,W or H,W,C")


def _image_size(text):
    return _sizes(text, (2,), "H,W")


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


def _add_train_parser(subparsers):
    from keras_convnets.data.augment import list_policies
    from keras_convnets.training.config import (
        CLI_DEFAULT_RECIPE,
        OPTIMIZERS,
        PRECISIONS,
        RECIPES,
        SCHEDULES,
        TTA_POLICIES,
    )

    p = subparsers.add_parser(
        "train",
        help="train a model, select it on validation, test it",
        description="Train a model with model.fit; the run lands in WORKDIR/RUN_NAME.",
        epilog=TRAIN_EXAMPLES,
        formatter_class=_formatter,
    )
    # Every default is None (= not given) so that precedence is recipe < file < flags.
    p.set_defaults(_defaults_are_none=True)
    g = p.add_argument_group("recipe and config")
    g.add_argument(
        "--recipe",
        choices=sorted(RECIPES),
        help=f"named preset (default: {CLI_DEFAULT_RECIPE})",
    )
    g.add_argument(
        "--config", metavar="FILE", help="YAML or JSON file of config fields"
    )
    g = p.add_argument_group("model")
    g.add_argument("--model", help="registry name (see `keras-convnets models`)")
    g.add_argument(
        "--model-kwargs",
        metavar="JSON",
        help="builder arguments, e.g. '{\"dropout\": 0.5}'",
    )
    g.add_argument(
        "--genotype",
        metavar="FILE",
        help="train a searched cell (best_genotype.json) instead of --model",
    )
    g.add_argument(
        "--cells", type=_int, help="normal cells per stage (genotype; default 2)"
    )
    g.add_argument(
        "--filters", type=_int, help="first-stage filters (genotype; default 32)"
    )
    g.add_argument(
        "--params-budget",
        type=_int,
        metavar="N",
        help="genotype: the widest --filters within N parameters, e.g. 470000",
    )
    g.add_argument(
        "--cell-norm",
        choices=("none", "batch"),
        help="genotype: BatchNorm in the cells (default: what the file records, else none)",
    )
    g = p.add_argument_group("data")
    g.add_argument(
        "--dataset", help="fashion_mnist (default), mnist, a TFDS name, or a folder"
    )
    g.add_argument("--data-dir", help="folder with IDX files, searched first")
    g.add_argument("--tfds-data-dir", help="TensorFlow Datasets data folder")
    g.add_argument(
        "--image-size", type=_image_size, metavar="H,W", help="resize images"
    )
    g.add_argument(
        "--validation-fraction", type=_float, metavar="F", help="held out (default 0.1)"
    )
    g.add_argument(
        "--train-fraction", type=_float, metavar="F", help="seeded subset (default 1.0)"
    )
    g.add_argument(
        "--augment",
        choices=list_policies(),
        metavar="POLICY",
        help=f"augmentation of training batches: {', '.join(list_policies())} (default none)",
    )
    g = p.add_argument_group("optimization")
    g.add_argument("--epochs", type=_int)
    g.add_argument("--batch-size", type=_int)
    g.add_argument("--optimizer", choices=OPTIMIZERS)
    g.add_argument("--learning-rate", "--lr", type=_float, dest="learning_rate")
    g.add_argument("--schedule", choices=SCHEDULES)
    g.add_argument("--warmup-epochs", type=_float)
    g.add_argument("--weight-decay", type=_float)
    g.add_argument("--momentum", type=_float)
    g.add_argument("--label-smoothing", type=_float)
    g.add_argument(
        "--ema",
        type=_float,
        metavar="MOMENTUM",
        help="weight EMA momentum per step, e.g. 0.99 (0: off, the default)",
    )
    g.add_argument(
        "--tta",
        choices=TTA_POLICIES,
        help="test-time augmentation saved in model.keras (default none)",
    )
    g.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="fp32 (default), or mixed bf16/fp16 with float32 variables and outputs",
    )
    g.add_argument(
        "--jit-compile",
        choices=("auto", "true", "false"),
        help="XLA (auto: on for GPU only)",
    )
    g = p.add_argument_group("run")
    g.add_argument("--seed", type=_int)
    g.add_argument("--workdir", help="where runs land (default saved_models)")
    g.add_argument(
        "--run-name", help="run folder name (default <model>-<dataset>-<time>)"
    )
    g.add_argument("--tensorboard-images", type=_int, metavar="N")
    g.add_argument(
        "--overwrite", action="store_true", default=None, help="replace a finished run"
    )
    g.add_argument(
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
        type=_int,
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


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


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

    skip = {"func", "command", "config", "json", "_defaults_are_none"}
    skip |= {"strategy", "workers", "worker_index"}
    flags = {k: v for k, v in vars(args).items() if k not in skip and v is not None}
    file_values = read_config_file(args.config) if args.config else {}
    config = resolve_config(file_values, flags, default_recipe=CLI_DEFAULT_RECIPE)
    strategy = _strategy(args)
    # SIGTERM stops the run like Ctrl-C: fit is interrupted before it can
    # delete the backup, so rerunning the command resumes.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        record = train_and_evaluate(
            config, start_time=_process_start_time(), strategy=strategy
        )
    except TrainingDivergedError as e:
        print(f"keras-convnets train: error: {e}", file=sys.stderr)
        return EXIT_DIVERGED
    distribution = record.get("distribution") or {}
    if not distribution.get("chief", True):
        print(f"{distribution['task']}: done; the chief wrote the run.")
        return 0
    run_dir = record["run_dir"]
    if not os.path.relpath(run_dir).startswith(".."):
        run_dir = os.path.relpath(run_dir)  # short paths when under the cwd
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


def _add_evaluate_parser(subparsers):
    p = subparsers.add_parser(
        "evaluate",
        help="accuracy and loss of a saved model on a dataset split",
        description="Evaluate a saved model (a run directory or a .keras file).",
        epilog="examples:\n  keras-convnets evaluate saved_models/my-run\n"
        "  keras-convnets evaluate model.keras --dataset fashion_mnist --json",
        formatter_class=_formatter,
    )
    p.add_argument("path", help="run directory or .keras file")
    p.add_argument("--dataset", help="dataset (default: the run's own)")
    p.add_argument("--split", choices=("test", "validation", "train"), default="test")
    p.add_argument("--batch-size", type=_positive_int, default=256)
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


def _add_predict_parser(subparsers):
    p = subparsers.add_parser(
        "predict",
        help="top-k classes for image files",
        description="Predict classes of PNG/JPEG images with a saved model.",
        epilog="example:\n  keras-convnets predict saved_models/my-run shoe.png shirt.jpg --top-k 3",
        formatter_class=_formatter,
    )
    p.add_argument("path", help="run directory or .keras file")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--top-k", type=_positive_int, default=3)
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


def _add_models_parser(subparsers):
    p = subparsers.add_parser(
        "models",
        help="list registered architectures",
        description="List registered models with parameters, forward FLOPs per image "
        "(a multiply-add counts 2) and a description.",
        epilog="examples:\n  keras-convnets models\n  keras-convnets models --input-shape 28,28,1",
        formatter_class=_formatter,
    )
    p.add_argument(
        "--input-shape",
        type=_shape,
        metavar="H,W,C",
        help="build every model at this shape (default: each model's usual one)",
    )
    p.add_argument(
        "--num-classes",
        type=_positive_int,
        help="classes (default: 1000 for ImageNet-sized models, else 10)",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_models)


def _cmd_models(args):
    from keras_convnets.models.flops import describe_models

    rows = describe_models(args.input_shape, args.num_classes)
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


# Modules contributing subcommands: each has `add_parsers(subparsers, formatter)`
# adding parsers whose `func(args)` returns the exit code.
_COMMAND_MODULES: list[str] = [
    "keras_convnets.analysis.commands",
    "keras_convnets.search.commands",
    "keras_convnets.experiments.commands",
]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="keras-convnets",
        description="Build, train, search and look inside convolutional networks.",
        epilog="Run `keras-convnets COMMAND --help` for a command's flags and examples.",
        formatter_class=_formatter,
    )
    from keras_convnets import __version__

    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    subparsers = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=_Parser
    )
    subparsers.required = True
    _add_train_parser(subparsers)
    _add_evaluate_parser(subparsers)
    _add_predict_parser(subparsers)
    _add_models_parser(subparsers)
    for module_name in _COMMAND_MODULES:
        importlib.import_module(module_name).add_parsers(subparsers, _formatter)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from keras_convnets.errors import UserInputError

    try:
        return args.func(args)
    except UserInputError as e:
        if os.environ.get("KERAS_CONVNETS_DEBUG"):
            raise
        message = " ".join(str(e).split())  # one line, always
        print(f"keras-convnets {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(
            f"keras-convnets {args.command}: interrupted; rerun the same command to "
            f"resume.",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""The `keras-convnets search` subcommand (parsing only; imports stay light)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from keras_convnets.cli_common import comma_list, integer, number, stop_on_sigterm

SEARCH_EXAMPLES = """examples:
  keras-convnets search --tuner evolution --max-trials 40        # tuning/evolution-fashion_mnist
  keras-convnets search --tuner random --max-trials 40 --proxy-epochs 2 --proxy-fraction 0.1
  keras-convnets search --tuner hyperband --proxy-epochs 9 --project hb
  keras-convnets search --filters 8,16,32 --cells 1,2 --augment none,flip  # search N, F, policy too
  keras-convnets search --config tuning/evolution-quick.yaml --max-trials 10

  # distributed: one chief (serves the oracle), any number of workers
  keras-convnets search --project dist --oracle-address 127.0.0.1:8000 --tuner-id chief
  keras-convnets search --project dist --oracle-address 127.0.0.1:8000 --tuner-id worker0
  keras-convnets search --project dist --oracle-address 127.0.0.1:8000 --tuner-id worker1

  # then train the best cell at full size
  keras-convnets train --genotype tuning/evolution-fashion_mnist/best_genotype.json \\
      --cells 2 --filters 32
  keras-convnets train --genotype tuning/evolution-fashion_mnist/best_genotype.json \\
      --cells 2 --params-budget 470000          # the widest F within simple_cnn's size

Rerunning the same command resumes the search: finished trials are kept, the
interrupted one is retried, --max-trials counts every trial so far.
Open TensorBoard (HParams dashboard) with: tensorboard --logdir tuning/PROJECT/logs"""


def add_parsers(subparsers, formatter):
    """Adds `search` to the `keras-convnets` subcommands."""
    p = subparsers.add_parser(
        "search",
        help="search a NASNet-style cell on a proxy task (KerasTuner)",
        description="Architecture search: find a normal and a reduction cell on a "
        "small proxy task (a fraction of the training split, few epochs, small "
        "N and F) with KerasTuner's random search, Hyperband, Bayesian "
        "optimization or regularized evolution. Results land in "
        "DIRECTORY/PROJECT: best_genotype.json, trials.csv, summary.md, cell "
        "diagrams and TensorBoard logs.",
        epilog=SEARCH_EXAMPLES,
        formatter_class=formatter,
    )
    # Every default is None (= not given) so that defaults < file < flags.
    g = p.add_argument_group("search")
    g.add_argument(
        "--tuner",
        choices=("random", "hyperband", "bayesian", "evolution"),
        help="search algorithm (default evolution)",
    )
    g.add_argument(
        "--max-trials", type=integer, metavar="T", help="trials in all (default 20)"
    )
    g.add_argument(
        "--population-size", type=integer, metavar="P", help="evolution (default 8)"
    )
    g.add_argument(
        "--sample-size", type=integer, metavar="S", help="evolution (default 3)"
    )
    g.add_argument(
        "--screen-candidates",
        type=integer,
        metavar="K",
        help="evolution: draw K candidates per trial, train the best by SynFlow "
        "at initialization (default 4; 1: no screening)",
    )
    g.add_argument(
        "--hyperband-factor", type=integer, metavar="K", help="hyperband (default 3)"
    )
    g.add_argument(
        "--initial-points",
        type=integer,
        metavar="K",
        help="bayesian: random trials first (default 3)",
    )
    g.add_argument("--seed", type=integer)
    g.add_argument("--config", metavar="FILE", help="YAML or JSON of search fields")
    g = p.add_argument_group("search space")
    g.add_argument(
        "--blocks", type=integer, metavar="B", help="blocks per cell (default 3)"
    )
    g.add_argument(
        "--cells",
        type=comma_list(int),
        metavar="N[,N...]",
        help="normal cells per stage; several values are searched (default 1)",
    )
    g.add_argument(
        "--filters",
        type=comma_list(int),
        metavar="F[,F...]",
        help="first-stage filters; several are searched (default 16)",
    )
    g.add_argument(
        "--learning-rate",
        "--lr",
        dest="learning_rate",
        type=comma_list(float),
        metavar="LR[,LR...]",
        help="AdamW peak learning rate(s) (default 0.002)",
    )
    g.add_argument(
        "--augment",
        type=comma_list(str),
        metavar="POLICY[,...]",
        help="augmentation policies (default none)",
    )
    g.add_argument(
        "--cell-norm",
        choices=("none", "batch"),
        help="BatchNorm in the cells: none (default, fast on CPUs) or batch",
    )
    g.add_argument(
        "--stem-stride",
        type=integer,
        choices=(1, 2),
        help="stride of the stem: 2 (default: the cells at half resolution, "
        "4x less work) or 1",
    )
    g.add_argument(
        "--params-budget",
        type=integer,
        metavar="N",
        help="final stacking: the widest F within N parameters (e.g. 470000)",
    )
    g = p.add_argument_group("proxy task")
    g.add_argument(
        "--dataset", help="fashion_mnist (default), mnist, TFDS name, folder"
    )
    g.add_argument("--data-dir", help="folder with IDX files, searched first")
    g.add_argument("--tfds-data-dir", help="TensorFlow Datasets data folder")
    g.add_argument(
        "--proxy-fraction",
        type=number,
        metavar="P",
        help="fraction of the training split (default 0.1)",
    )
    g.add_argument(
        "--proxy-epochs",
        type=integer,
        metavar="E",
        help="epochs per trial; hyperband: the most (default 2)",
    )
    g.add_argument("--batch-size", type=integer)
    g.add_argument(
        "--validation-fraction",
        type=number,
        metavar="F",
        help="held out to score trials (default 0.1)",
    )
    g.add_argument(
        "--isolate-trials",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="train each trial in a fresh Python process (default: on; flat "
        "memory at graph-mode speed, about 7 CPU-s of start-up per trial); "
        "--no-isolate-trials: in this process",
    )
    g.add_argument(
        "--run-eagerly",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="train trials without tf.function tracing (default: off; about 3x "
        "the CPU of graph mode; with --no-isolate-trials it keeps this "
        "process's memory flat, where graph mode keeps about 36 MB per trial)",
    )
    g = p.add_argument_group("output")
    g.add_argument("--directory", help="where projects land (default tuning)")
    g.add_argument("--project", help="project folder name (default TUNER-DATASET)")
    g.add_argument(
        "--overwrite",
        action="store_true",
        default=None,
        help="start the project afresh instead of resuming it",
    )
    g.add_argument(
        "--json", action="store_true", help="print the search record as JSON"
    )
    g = p.add_argument_group("distributed (KerasTuner chief/worker)")
    g.add_argument(
        "--oracle-address",
        metavar="HOST:PORT",
        help="chief's address; the chief listens on HOST (use 127.0.0.1 unless "
        "workers are on other machines; :PORT means 127.0.0.1)",
    )
    g.add_argument(
        "--tuner-id",
        metavar="ID",
        help="chief (serves the oracle) or worker0, worker1, ... (run trials)",
    )
    p.set_defaults(func=_cmd_search)


def _cmd_search(args) -> int:
    from keras_convnets.search.runner import (
        read_config_file,
        resolve_search_config,
        run_search,
    )

    skip = {"func", "command", "config", "json"}
    flags = {k: v for k, v in vars(args).items() if k not in skip and v is not None}
    file_values = read_config_file(args.config) if args.config else {}
    config = resolve_search_config(file_values, flags)
    stop_on_sigterm()
    record = run_search(config, verbose=1 if sys.stdout.isatty() else 2)
    if args.json:
        print(json.dumps(record, indent=2, default=_plain))
        return 0
    if "trials_run" in record:
        print(f"{record['tuner_id']}: done, ran {record['trials_run']} trials")
        return 0
    project = record["project_dir"]
    if not os.path.relpath(project).startswith(".."):
        project = os.path.relpath(project)
    print(
        f"Project:       {project} ({record['completed']}/{record['trials']} trials completed)"
    )
    best = record["best"]
    if best is None:
        print("No trial completed.")
        return 1
    from keras_convnets.search.genotype import Genotype

    paths = {
        k: os.path.join(project, os.path.basename(v))
        for k, v in record["paths"].items()
    }
    print(
        f"Best trial:    {best['trial_id']}: val_accuracy {best['val_accuracy']:.4f}, "
        f"{int(best['params']):,} parameters, {best['flops'] / 1e6:.1f} MFLOPs"
    )
    print(Genotype.from_dict(best["genotype"]).describe())
    print(f"Genotype:      {paths['best_genotype']}")
    print(f"Trials:        {paths['trials_csv']}")
    print(f"Summary:       {paths['summary']}")
    print(f"TensorBoard:   tensorboard --logdir {os.path.join(project, 'logs')}")
    from keras_convnets.search.reports import train_command

    print(
        "Next:          "
        + train_command(paths["best_genotype"], record["stacking"], record["dataset"])
    )
    return 0


def _plain(value):
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(type(value).__name__)

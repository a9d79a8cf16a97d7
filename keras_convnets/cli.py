"""The `keras-convnets` command: assembles the subcommands and runs one.

Each subcommand lives in its package's `commands.py` (train, evaluate and
predict in `training`, models in `models`, visualize and stylize in
`analysis`, search in `search`, experiment in `experiments`). A mistake of
the user's prints one line on stderr and exits with status 2; a diverged run
exits with 3. Set KERAS_CONVNETS_DEBUG=1 to see tracebacks for those too.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from keras_convnets.cli_common import EXIT_DIVERGED, EXIT_USER_ERROR

__all__ = ["EXIT_DIVERGED", "EXIT_USER_ERROR", "build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line (not the whole usage) and exit 2."""

    def error(self, message):
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message}\n")


def _formatter(prog):
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


# Modules contributing subcommands, in the order `--help` lists them: each has
# `add_parsers(subparsers, formatter)` adding parsers whose `func(args)`
# returns the exit code.
COMMAND_MODULES: list[str] = [
    "keras_convnets.training.commands",
    "keras_convnets.models.commands",
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
    for module_name in COMMAND_MODULES:
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

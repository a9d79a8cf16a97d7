"""What every `keras-convnets` subcommand shares: argument types, exit codes, SIGTERM.

The `commands.py` modules (`training`, `models`, `search`, `analysis`,
`experiments`) import this; library modules never do. Only the standard
library at import time, so building the parser stays light.

Each argument type is an `argparse` `type=` callable: it returns the parsed
value or raises `argparse.ArgumentTypeError`, which argparse prints as one
line (`argument --epochs: expected an integer, got 'three'`) and exits 2.

Example:

```python
parser.add_argument("--epochs", type=integer)
parser.add_argument("--steps", type=int_at_least(1), default=150)
parser.add_argument("--filters", type=comma_list(int), metavar="F[,F...]")
```
"""

from __future__ import annotations

import argparse
import os
import signal

# Exit status of a mistake of the user's (a bad flag, file or value).
EXIT_USER_ERROR = 2
# Exit status of a training run whose loss became NaN or infinite.
EXIT_DIVERGED = 3


def integer(text: str) -> int:
    """An integer, e.g. `--seed 3`."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def number(text: str) -> float:
    """A number, e.g. `--learning-rate 2e-3` (range checks are the config's)."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def int_at_least(minimum: int):
    """An argument type for integers `>= minimum`.

    Args:
        minimum: int. The smallest value accepted.

    Returns:
        A callable for `add_argument(type=...)`.
    """

    def parse(text: str) -> int:
        value = integer(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(
                f"expected an integer >= {minimum}, got {text!r}"
            )
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


positive_int = int_at_least(1)


def non_negative_float(text: str) -> float:
    """A number `>= 0` (NaN is refused), e.g. `--style-weight 10`."""
    value = number(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def comma_list(kind):
    """An argument type for `A,B,C` lists of `kind` (e.g. `--filters 8,16`).

    Args:
        kind: `int`, `float` or `str`. Each item's type.

    Returns:
        A callable returning a list, or None for an empty text.
    """

    def parse(text: str):
        try:
            return [kind(v.strip()) for v in text.split(",") if v.strip()] or None
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated list of {kind.__name__}s, got {text!r}"
            ) from None

    parse.__name__ = f"{kind.__name__} list"
    return parse


def sizes(text: str, lengths: tuple, form: str) -> tuple:
    """Positive integers separated by `,` or `x` (`28,28,1`, `64x64`).

    Args:
        text: str. What the user typed.
        lengths: tuple of int. How many numbers are accepted.
        form: str. The expected form, for the error (`"H,W"`).

    Returns:
        The sizes as a tuple of int.
    """
    try:
        parts = tuple(int(p) for p in text.replace("x", ",").split(",") if p.strip())
    except ValueError:
        parts = ()
    if len(parts) not in lengths or min(parts) < 1:
        raise argparse.ArgumentTypeError(
            f"expected {form} with positive sizes, got {text!r}"
        )
    return parts


def input_shape(text: str) -> tuple:
    """`H,W` or `H,W,C`, e.g. `--input-shape 28,28,1`."""
    return sizes(text, (2, 3), "H,W or H,W,C")


def image_size(text: str) -> tuple:
    """`H,W`, e.g. `--image-size 64,64`."""
    return sizes(text, (2,), "H,W")


def raise_interrupt(signum, frame):
    """A signal handler that stops the program like Ctrl-C."""
    raise KeyboardInterrupt(f"signal {signum}")


def stop_on_sigterm() -> None:
    """SIGTERM stops the command like Ctrl-C.

    `KeyboardInterrupt` unwinds through `fit` and the tuner before they
    delete their resume state, so rerunning the same command resumes, and
    `cli.main` prints one line and exits 130.
    """
    signal.signal(signal.SIGTERM, raise_interrupt)


def short_path(path: str) -> str:
    """`path` relative to the working directory when it lies under it."""
    if not os.path.relpath(path).startswith(".."):
        return os.path.relpath(path)
    return path

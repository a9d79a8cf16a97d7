"""Errors a user can cause, as opposed to bugs.

The CLI prints these as one line and exits non-zero; anything else is a bug and
keeps its traceback. `UserInputError` subclasses `ValueError` so library callers
can keep catching `ValueError` as Keras users do.
"""


class UserInputError(ValueError):
    """Bad input from the user: an unknown name, a missing or corrupt file, a bad value."""


class DataNotFoundError(UserInputError, FileNotFoundError):
    """A dataset could not be found locally and could not be downloaded."""


class TrainingDivergedError(RuntimeError):
    """The training loss became NaN or infinite; the run's backup is kept."""


# The help of `--unsafe`, the flag every command that loads a model file has
# (here because the CLI modules import nothing heavy at start-up).
UNSAFE_HELP = (
    "load a model file you trust without the safety checks (allowlist of "
    "layers and functions, bounded archive members, Keras safe_mode)"
)

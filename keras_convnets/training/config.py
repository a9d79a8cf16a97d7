"""Training configuration: one frozen dataclass, named recipes, file loading.

Precedence, lowest first: the recipe's defaults < `--config FILE` < flags. The
resolved config is written into the run directory as `config.json`.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import re
import reprlib
import typing
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from keras_convnets.errors import UserInputError
from keras_convnets.training.io import read_text

OPTIMIZERS = ("adam", "adamw", "sgd", "nesterov")
# Upper bounds of the numbers a config may hold: far above any real run, low
# enough that TensorFlow neither overflows nor tries to allocate them.
MAX_EPOCHS = 100_000
MAX_BATCH_SIZE = 65_536
MAX_CELLS = 64
MAX_FILTERS = 8_192
MAX_TENSORBOARD_IMAGES = 256
# A run folder's name: letters, digits and `._+=@,-`, not starting with a dot
# (the lock and a replaced run live beside it as `.NAME.lock`, `.NAME.replaced`),
# short enough for any file system's 255-byte name limit with those suffixes.
MAX_RUN_NAME = 200
# Config files are a screenful of `key: value` lines.
MAX_CONFIG_FILE_BYTES = 1024 * 1024


def check_run_name(name: str) -> str:
    """Raises `UserInputError` unless `name` is a plain, portable folder name."""
    if (
        not isinstance(name, str)
        or not re.fullmatch(r"[\w+=@,-][\w.+=@,-]*", name)
        or len(name.encode("utf-8")) > MAX_RUN_NAME
    ):
        raise UserInputError(
            f"run_name must be a folder name of at most {MAX_RUN_NAME} bytes of "
            f"letters, digits and ._+=@,- not starting with a dot. "
            f"Received: run_name={_short(name)}"
        )
    return name


def _short(value, limit: int = 120) -> str:
    """`repr(value)`, cut to `limit` characters, for error messages."""
    short = reprlib.Repr()  # bounded in depth, items per level and string length
    short.maxstring = short.maxother = limit
    text = short.repr(value)
    return text if len(text) <= limit else text[:limit] + "...'"


# `auto` times fp32 and bf16 at the start of a run (`training.precision`).
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
SCHEDULES = ("constant", "cosine", "one-cycle")
# Test-time augmentation policies (`keras_convnets.models.tta.TTA_POLICIES`).
TTA_POLICIES = ("none", "flip")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run.

    Changing any field but `run_name`, `workdir` and `overwrite` defines a
    different run; resuming an unfinished run requires the same config.
    """

    # Named recipe these defaults came from (see `RECIPES`).
    recipe: str = "default"

    # --- Model -------------------------------------------------------------
    # Registry name; `keras-convnets models` lists them.
    model: str = "simple_cnn"
    # Extra keyword arguments for the model builder (e.g. {"dropout": 0.5}).
    model_kwargs: dict = field(default_factory=dict)
    # Pretrained weights: "imagenet" or a weights file of the model's
    # keras.applications twin (`keras_convnets.models.pretrained`); the model
    # then gets ImageNet preprocessing in front. None: random initialization.
    weights: str | None = None
    # A searched cell is the model `nas_cell_net` with model_kwargs
    # {"genotype": "best_genotype.json", "cells": N, "filters": F, ...}; the
    # flags and config keys in `NAS_CELL_ARGUMENTS` are shortcuts for them.

    # --- Data --------------------------------------------------------------
    # `fashion_mnist`, `mnist`, a TFDS image-classification name, or a folder.
    dataset: str = "fashion_mnist"
    # Folder with IDX files, searched before the system folders.
    data_dir: str | None = None
    # TFDS data folder (TFDS's default when None).
    tfds_data_dir: str | None = None
    # Resize images to (height, width); None keeps the dataset's size.
    image_size: tuple | None = None
    # Fraction of the training split held out for validation (model selection).
    validation_fraction: float = 0.1
    # Train on this seeded fraction of the remaining training examples.
    train_fraction: float = 1.0
    # Augmentation policy applied to training batches (`none` for none).
    augment: str = "none"

    # --- Optimization ------------------------------------------------------
    epochs: int = 12
    batch_size: int = 128
    # One of OPTIMIZERS; `nesterov` is SGD with Nesterov momentum.
    optimizer: str = "adamw"
    # Peak learning rate.
    learning_rate: float = 2e-3
    # One of SCHEDULES. `cosine` decays to 0 over the run after the warmup;
    # `one-cycle` rises linearly for `warmup_epochs` then falls linearly to 0.
    schedule: str = "cosine"
    # Linear warmup length in epochs (cosine and one-cycle).
    warmup_epochs: float = 1.0
    # Decoupled weight decay; not applied to biases and normalization weights.
    weight_decay: float = 5e-4
    # Momentum of SGD / Nesterov.
    momentum: float = 0.9
    # Label smoothing of the cross-entropy loss.
    label_smoothing: float = 0.0
    # Exponential moving average of the weights (Keras `use_ema`), momentum per
    # step; 0 turns it off. The average is copied into the model at the end of
    # every epoch, so validation, the best checkpoint and the saved model use it.
    ema: float = 0.0
    # Test-time augmentation saved inside model.keras: `none` or `flip`
    # (average of the image's and its mirror image's predictions).
    tta: str = "none"
    # Compute precision: fp32, or mixed bf16 / fp16 (variables and the softmax
    # output stay float32; fp16 gets dynamic loss scaling), or auto: on CPUs
    # the faster of fp32 and bf16 timed on the run's model when it starts, on
    # GPUs bf16 from compute capability 8.0, else fp16 (`training.precision`).
    # A recipe's value is what it prefers; a flag or file forces another.
    precision: str = "fp32"
    # XLA compilation of the train step; None: on for GPU/TPU, off on CPU
    # (where XLA was measured slower than oneDNN).
    jit_compile: bool | None = None

    # --- Run ---------------------------------------------------------------
    seed: int = 0
    # Runs land in workdir/run_name.
    workdir: str = "saved_models"
    # None: `<model>-<dataset>-<timestamp>`.
    run_name: str | None = None
    # Number of training images written to TensorBoard.
    tensorboard_images: int = 8
    # Replace a finished run of the same name instead of refusing.
    overwrite: bool = False

    def validate(self) -> TrainConfig:
        """Raises `UserInputError` for a value out of range; returns self.

        Every number must be finite and inside the range that makes sense; the
        upper bounds keep a typo (`--batch-size 1e20`) from reaching
        TensorFlow, where it would overflow or allocate without limit.
        """
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise UserInputError(
                    f"{f.name} must be a finite number. Received: {f.name}={value!r}"
                )
        checks = [
            (
                1 <= self.epochs <= MAX_EPOCHS,
                f"epochs must be in [1, {MAX_EPOCHS}]",
                "epochs",
            ),
            (
                1 <= self.batch_size <= MAX_BATCH_SIZE,
                f"batch_size must be in [1, {MAX_BATCH_SIZE}]",
                "batch_size",
            ),
            (
                0 <= self.seed < 2**32,
                "seed must be in [0, 2**32 - 1] (what NumPy and Keras accept)",
                "seed",
            ),
            (self.learning_rate > 0, "learning_rate must be > 0", "learning_rate"),
            (self.weight_decay >= 0, "weight_decay must be >= 0", "weight_decay"),
            (
                0 <= self.label_smoothing < 1,
                "label_smoothing must be in [0, 1)",
                "label_smoothing",
            ),
            (
                0 <= self.validation_fraction < 1,
                "validation_fraction must be in [0, 1)",
                "validation_fraction",
            ),
            (
                0 < self.train_fraction <= 1,
                "train_fraction must be in (0, 1]",
                "train_fraction",
            ),
            (
                0 <= self.warmup_epochs <= self.epochs,
                "warmup_epochs must be in [0, epochs]",
                "warmup_epochs",
            ),
            (0 <= self.momentum < 1, "momentum must be in [0, 1)", "momentum"),
            (0 <= self.ema < 1, "ema must be in [0, 1)", "ema"),
            (
                self.tta in TTA_POLICIES,
                f"tta must be one of {', '.join(TTA_POLICIES)}",
                "tta",
            ),
            (
                self.optimizer in OPTIMIZERS,
                f"optimizer must be one of {', '.join(OPTIMIZERS)}",
                "optimizer",
            ),
            (
                self.precision in PRECISIONS,
                f"precision must be one of {', '.join(PRECISIONS)}",
                "precision",
            ),
            (
                self.schedule in SCHEDULES,
                f"schedule must be one of {', '.join(SCHEDULES)}",
                "schedule",
            ),
            (
                0 <= self.tensorboard_images <= MAX_TENSORBOARD_IMAGES,
                f"tensorboard_images must be in [0, {MAX_TENSORBOARD_IMAGES}]",
                "tensorboard_images",
            ),
        ]
        for ok, message, name in checks:
            if not ok:
                raise UserInputError(
                    f"{message}. Received: {name}={getattr(self, name)!r}"
                )
        from keras_convnets.data.augment import list_policies

        if self.augment not in list_policies():
            raise UserInputError(
                f"Unknown augmentation policy; choose one of "
                f"{', '.join(list_policies())}. Received: augment={self.augment!r}"
            )
        if self.run_name is not None:
            check_run_name(self.run_name)
        if self.weights is not None:
            from keras_convnets.models.pretrained import get_twin

            get_twin(self.model)
        if not isinstance(self.model_kwargs, dict) or not all(
            isinstance(k, str) for k in self.model_kwargs
        ):
            raise UserInputError(
                f"model_kwargs must be a mapping of argument names to values. "
                f"Received: model_kwargs={self.model_kwargs!r}"[:300]
            )
        if self.model == "nas_cell_net":
            _check_nas_cell_kwargs(self.model_kwargs)
        return self

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        if d["image_size"] is not None:
            d["image_size"] = list(d["image_size"])
        return d

    def identity(self) -> dict:
        """The fields that define the run (what must match to resume it)."""
        d = self.to_dict()
        for key in ("run_name", "workdir", "overwrite"):
            d.pop(key)
        return d


# ----------------------------------------------------------------------------
# Recipes: named presets, each a function returning a config (Flax `configs/`).

RECIPES: dict[str, Callable[[], TrainConfig]] = {}


def register_recipe(fn: Callable[[], TrainConfig]) -> Callable[[], TrainConfig]:
    """Registers a recipe under the function's name (`_` becomes `-`)."""
    RECIPES[fn.__name__.replace("_", "-")] = fn
    return fn


@register_recipe
def default() -> TrainConfig:
    """simple_cnn on Fashion-MNIST: AdamW, cosine, 12 epochs."""
    return TrainConfig()


@register_recipe
def quick() -> TrainConfig:
    """A smoke run in seconds: a tiny convnet, 2 epochs on 10% of the data."""
    return replace(
        default(),
        recipe="quick",
        model="simple_cnn_tiny",
        epochs=2,
        train_fraction=0.1,
        tensorboard_images=4,
    )


@register_recipe
def fast() -> TrainConfig:
    """What `keras-convnets train` and `make train` run: ~94% in ~6 min on a 2-core AMX Xeon.

    simple_cnn without BatchNorm (BatchNorm cost half the step in fp32 and
    most of it in bf16 on the AVX-512/AMX CPU this was tuned on), precision
    `auto` (bf16 where the machine runs it faster, as that CPU did; fp32 on
    CPUs without bf16 hardware), random horizontal flips, AdamW (decoupled weight decay 0.05) with
    cosine decay over 20 epochs, and flip test-time augmentation saved inside
    model.keras. README "Results" lists the levers tried and what each did;
    on a 2-core AVX2-only EPYC (fp32) the same run took ~40 min for 93.75%.
    """
    return replace(
        default(),
        recipe="fast",
        model_kwargs={"batch_norm": False},
        precision="auto",
        augment="flip",
        epochs=20,
        weight_decay=0.05,
        tta="flip",
    )


@register_recipe
def long() -> TrainConfig:
    """The longer preset: 95.19% / 95.12% Fashion-MNIST test (seeds 0 / 1; README "Results").

    The Myrtle.ai ResNet-9 at half width (1.65M weights; its max-pools come
    before the BatchNorms, so BatchNorm stays cheap on CPUs), precision
    `auto` as in `fast`, flip + translation by 1/8 + random erasing, label smoothing
    0.1, AdamW (weight decay 0.05) with cosine decay over 30 epochs, flip
    test-time augmentation saved inside model.keras.
    """
    return replace(
        fast(),
        recipe="long",
        model="resnet9",
        model_kwargs={"width": 32},
        augment="erasing",
        label_smoothing=0.1,
        epochs=30,
    )


# What `keras-convnets train` runs when neither flags nor a config file name one.
CLI_DEFAULT_RECIPE = "fast"


def get_recipe(name: str) -> TrainConfig:
    if name not in RECIPES:
        raise UserInputError(
            f"Unknown recipe {name!r}; choose one of {', '.join(sorted(RECIPES))}. "
            f"Received: recipe={name!r}"
        )
    return replace(RECIPES[name](), recipe=name)


# ----------------------------------------------------------------------------
# Loading and merging.


def coerce_value(schema, name: str, value, where: str, list_fields=None):
    """Converts a value from a file or flag to a config field's type, or raises.

    Args:
        schema: a config dataclass (`TrainConfig`, `search.runner.SearchConfig`).
        name: str. The field.
        value: what the file or flag gave.
        where: str. The file (or "command line") for the error message.
        list_fields: dict `{field: item type}` of fields that take a comma list
            or a YAML list (the search space's choices).
    """
    if list_fields and name in list_fields:
        return _coerce_list(name, value, where, list_fields[name])
    hint = typing.get_type_hints(schema)[name]
    args = typing.get_args(hint)
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), hint) if args else hint
    if value is None:
        if optional:
            return None
        raise UserInputError(f"{where}: {name} may not be null.")
    try:
        if base is bool:
            if isinstance(value, str):
                lowered = value.strip().lower()
                if lowered in ("true", "1", "yes", "on"):
                    return True
                if lowered in ("false", "0", "no", "off"):
                    return False
                if optional and lowered in ("auto", "none"):
                    return None
                raise ValueError(value)
            if not isinstance(value, bool):
                raise ValueError(value)
            return value
        if base is int:
            if isinstance(value, bool) or (
                isinstance(value, float) and not value.is_integer()
            ):
                raise ValueError(value)
            return int(value)
        if base is float:
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        if base is str:
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise ValueError(value)
            return str(value)
        if base is tuple:
            if isinstance(value, str):
                value = [v for v in value.replace("x", ",").split(",") if v.strip()]
            result = tuple(int(v) for v in value)
            if len(result) != 2 or min(result) < 1:
                raise ValueError(value)
            return result
        if base is dict:
            if isinstance(value, str):
                value = json.loads(value)
            if not isinstance(value, dict):
                raise ValueError(value)
            return dict(value)
    except (TypeError, ValueError, RecursionError):
        expected = getattr(base, "__name__", str(base))
        raise UserInputError(
            f"{where}: {name} must be {'an' if expected[0] in 'aeiou' else 'a'} "
            f"{expected}. Received: {name}={_short(value)}"
        ) from None
    return value


def _coerce_list(name, value, where, kind):
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        items = [items]
    try:
        result = tuple(kind(str(v).strip()) if kind is str else kind(v) for v in items)
    except (TypeError, ValueError):
        raise UserInputError(
            f"{where}: {name} must be a {kind.__name__} or a list of them. "
            f"Received: {name}={_short(value)}"
        ) from None
    if not result:
        raise UserInputError(
            f"{where}: {name} needs a value. Received: {name}={_short(value)}"
        )
    return result


def read_config_file(
    path: str, schema=TrainConfig, list_fields=None, label: str = "config"
) -> dict:
    """Reads a YAML or JSON config file into a dict of checked field values.

    Args:
        path: str. A `.json` file, or YAML for any other name.
        schema: the config dataclass whose fields the file sets.
        list_fields: see `coerce_value`.
        label: str. What the file is, for error messages.
    """
    if not os.path.isfile(path):
        raise UserInputError(f"Config file not found: {path}")
    text = read_text(path, MAX_CONFIG_FILE_BYTES, f"{label} file")
    try:
        if path.endswith(".json"):
            data = json.loads(text)
        else:
            data = _load_plain_yaml(text)
    except RecursionError:
        raise UserInputError(
            f"{path}: cannot parse {label} (nested too deeply)."
        ) from None
    except Exception as e:  # json/yaml each raise their own error types
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserInputError(f"{path}: cannot parse {label} ({first[:200]}).") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserInputError(
            f"{path}: a {label} file must hold a mapping of field: value, "
            f"got {type(data).__name__}."
        )
    return check_values(
        data, where=path, schema=schema, list_fields=list_fields, label=label
    )


def _load_plain_yaml(text: str):
    """`yaml.safe_load` without anchors, aliases and tags.

    A config file needs plain mappings, lists and scalars. Aliases let a file
    of a few hundred bytes stand for billions of values ("billion laughs"),
    which any later walk or error message would expand, so they are refused
    while parsing, before anything is built.
    """
    import yaml

    class _PlainLoader(yaml.SafeLoader):
        def compose_node(self, parent, index):
            event = self.peek_event()
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise yaml.YAMLError(
                    f"YAML anchors and aliases are not allowed (line "
                    f"{event.start_mark.line + 1})"
                )
            return super().compose_node(parent, index)

    return yaml.load(text, Loader=_PlainLoader)  # noqa: S506 (a SafeLoader)


def check_values(
    values: dict,
    where: str,
    schema=TrainConfig,
    list_fields=None,
    label: str = "config",
) -> dict:
    """Checks field names (suggesting close ones) and converts their values.

    For `TrainConfig`, the `NAS_CELL_ARGUMENTS` keys become the model
    `nas_cell_net` and its model arguments (`fold_nas_cell_arguments`).
    """
    if schema is TrainConfig:
        values = fold_nas_cell_arguments(values, where)
    fields = [f.name for f in dataclasses.fields(schema)]
    checked = {}
    for key, value in values.items():
        name = str(key).replace("-", "_")
        if name not in fields:
            close = difflib.get_close_matches(name, fields, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UserInputError(f"{where}: unknown {label} key {_short(key)}{hint}.")
        checked[name] = coerce_value(schema, name, value, where, list_fields)
    return checked


def resolve_config(
    file_values: dict | None = None,
    flag_values: dict | None = None,
    default_recipe: str = "default",
) -> TrainConfig:
    """Merges recipe defaults < config file < flags into a validated config.

    Args:
        file_values: dict. Values from `read_config_file`.
        flag_values: dict. Values given on the command line (only those given).
        default_recipe: str. The recipe when neither names one (the CLI
            passes `CLI_DEFAULT_RECIPE`).

    Returns:
        A validated `TrainConfig`.
    """
    file_values = dict(file_values or {})
    flag_values = dict(flag_values or {})
    shortcuts = {k: flag_values.pop(k) for k in NAS_CELL_ARGUMENTS if k in flag_values}
    flag_values = check_values(flag_values, where="command line")
    recipe = flag_values.get("recipe") or file_values.get("recipe") or default_recipe
    base = get_recipe(recipe)
    merged = {**file_values, **flag_values}
    if shortcuts:
        merged.update(_nas_cell_shortcut_flags(shortcuts, file_values, flag_values))
    return replace(base, **merged).validate()


# ----------------------------------------------------------------------------
# The searched cell as a model: `--genotype FILE --cells N --filters F ...`.

# Shortcut keys (flags, config file keys) for `nas_cell_net`'s model arguments.
NAS_CELL_ARGUMENTS = (
    "genotype",
    "cells",
    "filters",
    "params_budget",
    "cell_norm",
    "stem_stride",
)


def fold_nas_cell_arguments(values: dict, where: str) -> dict:
    """`{genotype: P, cells: N, ...}` -> `{model: nas_cell_net, model_kwargs: {...}}`.

    Configs before `nas_cell_net` existed had `genotype`, `cells` and
    `filters` fields (a run's config.json holds all three, `genotype: null`
    for a registry model). The cells of such a run had BatchNorm, so a whole
    config of that time (with `recipe` and `model` keys) gets `cell_norm:
    batch` unless it says otherwise: resuming or retraining it rebuilds the
    same network.
    """
    if not any(k in values for k in NAS_CELL_ARGUMENTS):
        return values
    values = dict(values)
    shortcuts = {k: values.pop(k) for k in NAS_CELL_ARGUMENTS if k in values}
    if shortcuts.get("genotype") is None:
        if "genotype" in shortcuts:
            return values  # a registry model's config.json of that time
        raise UserInputError(
            f"{where}: {', '.join(shortcuts)} need a genotype (the searched cell); "
            f"or give them in model_kwargs of model nas_cell_net."
        )
    kwargs = values.get("model_kwargs") if values.get("model") == "nas_cell_net" else {}
    if not isinstance(kwargs, dict):
        kwargs = {}
    if all(k in values for k in ("recipe", "model")) and "cell_norm" not in shortcuts:
        shortcuts["cell_norm"] = "batch"  # a whole config.json of that time
    values["model"] = "nas_cell_net"
    values["model_kwargs"] = {**kwargs, **shortcuts}
    return values


def _nas_cell_shortcut_flags(shortcuts: dict, file_values: dict, flag_values: dict):
    """Flags `--genotype`, `--cells`, ... over a file's `nas_cell_net` arguments."""
    kwargs = {}
    model = flag_values.get("model", file_values.get("model"))
    if "genotype" not in shortcuts and model != "nas_cell_net":
        flags = ", ".join(f"--{k.replace('_', '-')}" for k in shortcuts)
        raise UserInputError(
            f"command line: {flags} apply to a searched cell; pass --genotype FILE."
        )
    if file_values.get("model") == "nas_cell_net":
        kwargs.update(file_values.get("model_kwargs") or {})
    if flag_values.get("model") == "nas_cell_net" or "model_kwargs" in flag_values:
        kwargs.update(flag_values.get("model_kwargs") or {})
    kwargs.update(shortcuts)
    if "params_budget" in shortcuts and "filters" not in shortcuts:
        kwargs.pop("filters", None)  # the budget chooses it
    if "filters" in shortcuts and "params_budget" not in shortcuts:
        kwargs.pop("params_budget", None)
    return {"model": "nas_cell_net", "model_kwargs": kwargs}


def _check_nas_cell_kwargs(kwargs: dict) -> None:
    """Ranges of `nas_cell_net`'s arguments, checked before any data is read."""
    where = "model_kwargs of nas_cell_net"
    checks = (
        ("cells", 0, MAX_CELLS),
        ("filters", 1, MAX_FILTERS),
        ("params_budget", 1, 10**10),
    )
    for name, low, high in checks:
        value = kwargs.get(name)
        if value is None:
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not low <= value <= high
        ):
            raise UserInputError(
                f"{where}: {name} must be an int in [{low}, {high}]. "
                f"Received: {name}={_short(value)}"
            )
    genotype = kwargs.get("genotype")
    if genotype is not None and not isinstance(genotype, (str, dict)):
        raise UserInputError(
            f"{where}: genotype must be a file path or a genotype mapping. "
            f"Received: genotype={_short(genotype)}"
        )
    if kwargs.get("stem_stride") is not None and (
        isinstance(kwargs["stem_stride"], bool) or kwargs["stem_stride"] not in (1, 2)
    ):
        raise UserInputError(
            f"{where}: stem_stride must be 1 or 2. "
            f"Received: stem_stride={_short(kwargs['stem_stride'])}"
        )
    if kwargs.get("cell_norm") not in (None, "none", "batch"):
        raise UserInputError(
            f"{where}: cell_norm must be none or batch. "
            f"Received: cell_norm={_short(kwargs['cell_norm'])}"
        )


def config_from_dict(values: dict, where: str = "config") -> TrainConfig:
    """Rebuilds a config from `to_dict()` output (e.g. a run's config.json)."""
    return replace(TrainConfig(), **check_values(values, where=where))

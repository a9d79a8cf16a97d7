"""Checks on `.keras` files before Keras deserializes them.

Keras's `safe_mode=True` refuses Python lambdas and `TFSMLayer`, but it is a
blocklist and has had a long line of bypasses (CVE-2025-1550, CVE-2025-8747,
CVE-2025-9906, CVE-2025-49655, CVE-2026-1462, and a `Lambda` calling the named
Keras function `keras.visualization.plot_image_gallery`, which writes any
file). So a model file from anywhere is first read here, as data, and refused
unless:

- it is a zip archive of at most `MAX_MEMBERS` members, each a plain relative
  path among those Keras writes (`config.json`, `metadata.json`,
  `model.weights.h5`/`.npz`, `assets/...`), none repeated, encrypted or
  compressed with a method other than STORED or DEFLATED;
- the sizes its central directory declares are bounded before anything is
  inflated: `config.json` by `MAX_CONFIG_BYTES`, `metadata.json` by
  `MAX_METADATA_BYTES`, `assets/` by `MAX_ASSET_BYTES` each and
  `MAX_ASSETS_TOTAL_BYTES` together, and the weights, once the architecture is
  known, by what its parameters need (`weights_limit`);
- every object its config names is on an ALLOWLIST of what the package's
  models are made of (`ALLOWED_LAYERS`, the layers registered by
  keras_convnets, initializers, regularizers, constraints, dtype policies,
  activation names). No `Lambda`, no function reference (`"class_name":
  "function"`, `__lambda__`), nothing else. The walk covers every nested
  config (models inside models, `inbound_nodes`, `build_config`) without
  recursion, to a bounded depth.

Only then does `inference.load_model` build the architecture with Keras's
`safe_mode=True`, check the weights' declared size against its parameter count,
and read the weights. The `--unsafe` flag of the CLI skips all of it, for files
the user trusts.
"""

from __future__ import annotations

import json
import posixpath
import zipfile
import zlib

import keras

from keras_convnets.errors import UserInputError

_MEMBERS = {"config.json", "metadata.json", "model.weights.h5", "model.weights.npz"}
_WEIGHTS = ("model.weights.h5", "model.weights.npz")

# The largest config of the zoo, inception_resnet_v2 wrapped for test-time
# augmentation, is about 2 MB of JSON (googlenet_tiny: 0.19 MB); 16 MiB leaves
# 8x margin and is still parsed in well under a second.
MAX_CONFIG_BYTES = 16 * 1024 * 1024
# Keras writes about 100 bytes (its version and the save date).
MAX_METADATA_BYTES = 64 * 1024
# No model of the package writes assets (measured on every zoo model); layers
# that do (lookup tables) are not on the allowlist either.
MAX_ASSET_BYTES = 1024 * 1024
MAX_ASSETS_TOTAL_BYTES = 4 * 1024 * 1024
MAX_MEMBERS = 256
# Weights: 8 bytes per parameter (float64, the widest dtype a variable has)
# plus HDF5's metadata, which grows with the number of groups and datasets:
# measured 1.0-2.8 KB per layer-or-variable on the zoo's saved models (fp32
# and bf16, with TTA and Augment). 16 KiB each and 1 MiB on top make the limit
# 2.1x (resnet9, 26 MB) to 68x (a 15-parameter model) the real size.
WEIGHTS_BYTES_PER_PARAM = 8
WEIGHTS_BYTES_PER_ITEM = 16 * 1024
WEIGHTS_FIXED_BYTES = 1024 * 1024
# The deepest nesting of a zoo config is about 20 levels.
MAX_CONFIG_DEPTH = 64

# Keras layer classes the zoo, the searched cells, augmentation and TTA models
# are made of (`module` "keras.layers"); the package's own registered layers
# are added from Keras's registry (`_registered`).
ALLOWED_LAYERS = frozenset(
    {
        "Activation",
        "Add",
        "Average",
        "AveragePooling2D",
        "BatchNormalization",
        "Concatenate",
        "Conv2D",
        "Dense",
        "DepthwiseConv2D",
        "Dropout",
        "Flatten",
        "GlobalAveragePooling2D",
        "GlobalMaxPooling2D",
        "Identity",
        "InputLayer",
        "MaxPooling2D",
        "ReLU",
        "Rescaling",
        "Resizing",
        "SeparableConv2D",
        "ZeroPadding2D",
    }
)
# (module, class_name) of models: what `Model.save` writes for a functional
# model and a `keras.Sequential`.
ALLOWED_MODELS = frozenset(
    {("keras.src.models.functional", "Functional"), ("keras", "Sequential")}
)
ALLOWED_INITIALIZERS = frozenset(
    {
        "Constant",
        "GlorotNormal",
        "GlorotUniform",
        "HeNormal",
        "HeUniform",
        "LecunNormal",
        "LecunUniform",
        "Ones",
        "RandomNormal",
        "RandomUniform",
        "TruncatedNormal",
        "VarianceScaling",
        "Zeros",
    }
)
ALLOWED_REGULARIZERS = frozenset({"L1", "L1L2", "L2"})
ALLOWED_CONSTRAINTS = frozenset({"MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm"})
ALLOWED_POLICIES = frozenset(
    {"float16", "float32", "float64", "bfloat16", "mixed_float16", "mixed_bfloat16"}
)
ALLOWED_DTYPES = ALLOWED_POLICIES | {"int32", "int64", "uint8", "bool"}
# Names that Keras resolves from a string, by the key's suffix.
_NAMES = {
    "activation": frozenset(
        {
            "elu",
            "exponential",
            "gelu",
            "hard_sigmoid",
            "hard_silu",
            "hard_swish",
            "leaky_relu",
            "linear",
            "log_softmax",
            "mish",
            "relu",
            "relu6",
            "selu",
            "sigmoid",
            "silu",
            "softmax",
            "softplus",
            "softsign",
            "swish",
            "tanh",
        }
    ),
    "initializer": frozenset(
        {
            "constant",
            "glorot_normal",
            "glorot_uniform",
            "he_normal",
            "he_uniform",
            "lecun_normal",
            "lecun_uniform",
            "ones",
            "random_normal",
            "random_uniform",
            "truncated_normal",
            "variance_scaling",
            "zeros",
        }
    ),
    "regularizer": frozenset({"l1", "l1_l2", "l2"}),
    "constraint": frozenset({"max_norm", "min_max_norm", "non_neg", "unit_norm"}),
}
# What the top-level `compile_config` of our trained models holds. Loading uses
# `compile=False`, which discards it unread; it is still checked, so that no
# file passes whose optimizer, loss or metrics name anything else.
_COMPILE_OBJECTS = frozenset(
    {
        ("keras.optimizers", "Adam"),
        ("keras.optimizers", "AdamW"),
        ("keras.optimizers", "SGD"),
        ("keras.optimizers.schedules", "CosineDecay"),
        ("keras.losses", "CategoricalCrossentropy"),
        ("keras.losses", "SparseCategoricalCrossentropy"),
        ("keras.metrics", "CategoricalAccuracy"),
        ("keras.metrics", "SparseCategoricalAccuracy"),
    }
)
_OBJECT_KEYS = frozenset(
    {
        "module",
        "class_name",
        "config",
        "registered_name",
        "build_config",
        "compile_config",
        "name",
        "inbound_nodes",
        "shared_object_id",
    }
)
# Registered classes that moved module: (the module files saved before the
# move name, registered name). Keras finds them by registered name; the
# allowlist accepts the old module for the same class.
MOVED_MODULES = frozenset({("keras_convnets.data.augment", "keras_convnets>Augment")})
# Plain data Keras writes between layers of a functional model.
_KERAS_TENSOR_KEYS = frozenset({"shape", "dtype", "keras_history"})


def _registered():
    """(module, class_name, registered_name) of the package's registered classes,
    split into layers and compile-only objects (learning-rate schedules)."""
    # Importing registers every serializable layer and schedule of the package.
    import keras_convnets.layers  # noqa: F401
    import keras_convnets.models  # noqa: F401
    import keras_convnets.training.schedules  # noqa: F401

    layers, compile_only = set(), set()
    for name, obj in keras.saving.get_custom_objects().items():
        if not name.startswith("keras_convnets>") or not isinstance(obj, type):
            continue
        if keras.saving.get_registered_object(name) is not obj:
            continue
        key = (obj.__module__, obj.__name__, name)
        if issubclass(obj, keras.layers.Layer):
            layers.add(key)
            layers.update((m, obj.__name__, n) for m, n in MOVED_MODULES if n == name)
        elif issubclass(obj, keras.optimizers.schedules.LearningRateSchedule):
            compile_only.add(key)
    return frozenset(layers), frozenset(compile_only)


def _refuse(path, where, what):
    raise UserInputError(
        f"{path}: refusing to load: {where or 'config'} {what}; only the layers, "
        f"initializers and activations of keras_convnets models are allowed. "
        f"If you trust this file, pass --unsafe."
    )


def _object_problem(node, allowed_layers, compile_ok, compile_only):
    """None if an object dict (one with `class_name`) is allowed, else why not."""
    module = node.get("module")
    class_name = node.get("class_name")
    registered = node.get("registered_name")
    label = f"names {module}.{class_name} (registered_name={registered!r})"
    unknown = set(node) - _OBJECT_KEYS
    if unknown:
        return f"has unknown key {sorted(unknown)[0]!r} in an object of class {class_name!r}"
    if class_name == "__keras_tensor__":
        if module is not None or registered is not None:
            return label
        config = node.get("config")
        if not isinstance(config, dict) or set(config) - _KERAS_TENSOR_KEYS:
            return "holds a malformed __keras_tensor__"
        return None
    if not isinstance(class_name, str) or not isinstance(module, str):
        return f"{label}: an object without a module is not allowed"
    if class_name == "function" or class_name.startswith("__"):
        return f"{label}: function references and {class_name!r} are not allowed"
    if (module, class_name, registered) in allowed_layers:
        return None
    if compile_ok and (module, class_name, registered) in compile_only:
        return None
    builtin = registered is None or registered == class_name
    if builtin and (
        (module == "keras.layers" and class_name in ALLOWED_LAYERS)
        or (module, class_name) in ALLOWED_MODELS
        or (module == "keras.initializers" and class_name in ALLOWED_INITIALIZERS)
        or (module == "keras.regularizers" and class_name in ALLOWED_REGULARIZERS)
        or (module == "keras.constraints" and class_name in ALLOWED_CONSTRAINTS)
        or (compile_ok and (module, class_name) in _COMPILE_OBJECTS)
    ):
        return None
    if (
        builtin
        and module == "keras"
        and class_name in ("DTypePolicy", "FloatDTypePolicy")
    ):
        config = node.get("config")
        if isinstance(config, dict) and config.get("name") in ALLOWED_POLICIES:
            return None
        return f"names a dtype policy outside {sorted(ALLOWED_POLICIES)}"
    return label


def _string_problem(key, value):
    """None if a string under `key` is inert or an allowed name, else why not."""
    if key == "dtype":
        return None if value in ALLOWED_DTYPES else f"names dtype {value!r}"
    for suffix, names in _NAMES.items():
        if key.endswith(suffix):
            return None if value in names else f"names {suffix} {value!r}"
    return None


def check_config(config, path: str = "model") -> None:
    """Raises `UserInputError` unless every object a model config names is allowed.

    Walks every dict and list of the config (iteratively, to `MAX_CONFIG_DEPTH`
    levels): each dict with a `class_name` must name an allowed class with
    only the keys Keras writes; each string under a key Keras resolves as a
    name (`activation`, `*_initializer`, `*_regularizer`, `*_constraint`,
    `dtype`) must be an allowed name. Optimizers, losses, metrics and the
    package's schedules are allowed only inside a `compile_config`. Every
    `compile_config`, nested ones included (a model trained compiled, then
    wrapped for test-time augmentation, carries one), is checked here and
    dropped before building (`drop_compile_configs`): Keras would compile a
    nested model from it even with `compile=False`.

    Args:
        config: the parsed `config.json`.
        path: str. The file, named in the error.
    """
    allowed_layers, compile_only = _registered()
    # (node, where, key it sits under, depth, inside the top compile_config)
    stack = [(config, "", None, 0, False)]
    while stack:
        node, where, key, depth, compile_ok = stack.pop()
        if depth > MAX_CONFIG_DEPTH:
            _refuse(path, where, f"nests deeper than {MAX_CONFIG_DEPTH} levels")
        if isinstance(node, str):
            problem = _string_problem(key, node) if key else None
            if problem:
                _refuse(path, where, problem)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                stack.append((value, f"{where}[{i}]", key, depth + 1, compile_ok))
        elif isinstance(node, dict):
            if "class_name" in node:
                problem = _object_problem(
                    node, allowed_layers, compile_ok, compile_only
                )
                if problem:
                    _refuse(path, where, problem)
            for k, value in node.items():
                if not isinstance(k, str):
                    _refuse(path, where, "has a non-string key")
                inner = compile_ok or k == "compile_config"
                child_key = key if k == "config" else k
                stack.append(
                    (value, f"{where}.{k}" if where else k, child_key, depth + 1, inner)
                )
        elif not (node is None or isinstance(node, (bool, int, float))):
            _refuse(path, where, f"holds a {type(node).__name__}")


def drop_compile_configs(config) -> None:
    """Sets every `compile_config` in a (checked) model config to None, in place.

    What `load_model(compile=False)` does for the top level, for every level:
    no optimizer, loss or metric is built when a safe load deserializes it.
    """
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("compile_config") is not None:
                node["compile_config"] = None
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _member_error(path, name, error):
    return UserInputError(
        f"{path}: corrupt .keras archive: member {name} cannot be read "
        f"({type(error).__name__}: {str(error)[:200]})."
    )


def _read_member(path, archive, info, limit):
    """The member's bytes, reading at most `limit + 1` of them."""
    try:
        with archive.open(info) as f:
            data = f.read(limit + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError) as e:
        raise _member_error(path, info.filename, e) from None
    if len(data) > limit:
        raise UserInputError(
            f"{path}: refusing to load: {info.filename} inflates past its "
            f"{limit}-byte limit."
        )
    return data


def _too_big(path, name, size, limit, why):
    raise UserInputError(
        f"{path}: refusing to load: {name} declares {size} bytes uncompressed, "
        f"more than {limit} ({why}); a decompression bomb or not a model of this "
        f"package. If you trust this file, pass --unsafe."
    )


def _infos(path, archive):
    """The archive's members, checked from the central directory alone."""
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise UserInputError(
            f"{path}: refusing to load: {len(infos)} archive members (at most "
            f"{MAX_MEMBERS})."
        )
    seen, assets_total = set(), 0
    for info in infos:
        name = info.filename
        normal = posixpath.normpath(name)
        if (
            name.startswith(("/", "\\"))
            or ".." in normal.split("/")
            or "\\" in name
            or ":" in name
        ):
            raise UserInputError(
                f"{path}: refusing to load: archive member {name!r} points outside "
                f"the archive (path traversal)."
            )
        if normal not in _MEMBERS and not normal.startswith("assets/"):
            raise UserInputError(
                f"{path}: refusing to load: unexpected archive member {name!r} "
                f"(a .keras file holds {', '.join(sorted(_MEMBERS))} and assets/)."
            )
        if normal in seen:
            raise UserInputError(
                f"{path}: refusing to load: archive member {name!r} appears twice."
            )
        seen.add(normal)
        if info.flag_bits & 0x1:
            raise UserInputError(
                f"{path}: refusing to load: archive member {name!r} is encrypted."
            )
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise UserInputError(
                f"{path}: refusing to load: archive member {name!r} uses "
                f"compression method {info.compress_type} (only stored and deflated "
                f"are allowed)."
            )
        if normal == "config.json" and info.file_size > MAX_CONFIG_BYTES:
            _too_big(path, name, info.file_size, MAX_CONFIG_BYTES, "config limit")
        if normal == "metadata.json" and info.file_size > MAX_METADATA_BYTES:
            _too_big(path, name, info.file_size, MAX_METADATA_BYTES, "metadata limit")
        if normal.startswith("assets/"):
            if info.file_size > MAX_ASSET_BYTES:
                _too_big(path, name, info.file_size, MAX_ASSET_BYTES, "asset limit")
            assets_total += info.file_size
            if assets_total > MAX_ASSETS_TOTAL_BYTES:
                _too_big(
                    path,
                    "assets/",
                    assets_total,
                    MAX_ASSETS_TOTAL_BYTES,
                    "limit on all assets",
                )
    if "config.json" not in seen:
        raise UserInputError(f"{path}: not a .keras model archive (no config.json).")
    return {posixpath.normpath(info.filename): info for info in infos}


def _open(path):
    if not zipfile.is_zipfile(path):
        raise UserInputError(f"{path}: not a .keras model archive (not a zip file).")
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise UserInputError(
            f"{path}: corrupt .keras archive ({type(e).__name__}: {str(e)[:200]})."
        ) from None


def check_model_archive(path: str) -> dict:
    """Checks a `.keras` file as data; returns its parsed, allowed config.

    Everything is decided from the zip central directory and `config.json`
    alone: member names, encryption, compression methods and declared sizes
    first, then `config.json` (read with a bounded read, parsed, walked by
    `check_config`). No weight or asset byte is read. The weights' size is
    checked against the architecture by `check_weights_size` once the model is
    built.

    Args:
        path: str. The `.keras` file.

    Returns:
        The config (a dict), with its top-level `compile_config`.

    Raises:
        UserInputError: the archive is corrupt, too large for what it holds,
            or names anything outside the allowlist.

    Example:

    ```python
    config = check_model_archive("downloaded.keras")  # raises before any code runs
    ```
    """
    with _open(path) as archive:
        infos = _infos(path, archive)
        raw = _read_member(path, archive, infos["config.json"], MAX_CONFIG_BYTES)
        if "metadata.json" in infos:
            _read_member(path, archive, infos["metadata.json"], MAX_METADATA_BYTES)
    try:
        config = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise UserInputError(f"{path}: corrupt config.json (not UTF-8 text).") from None
    except json.JSONDecodeError as e:
        raise UserInputError(f"{path}: corrupt config.json ({e}).") from None
    except RecursionError:
        raise UserInputError(
            f"{path}: refusing to load: config.json nests too deeply to parse."
        ) from None
    if not isinstance(config, dict):
        raise UserInputError(f"{path}: corrupt config.json (not a JSON object).")
    check_config(config, path)
    return config


def weights_limit(num_params: int, num_items: int) -> int:
    """The most bytes a weights file of such a model may declare.

    Args:
        num_params: int. Scalars in all the model's variables.
        num_items: int. Its layers and variables (each an HDF5 group or
            dataset, with its own metadata).
    """
    return (
        WEIGHTS_BYTES_PER_PARAM * num_params
        + WEIGHTS_BYTES_PER_ITEM * num_items
        + WEIGHTS_FIXED_BYTES
    )


def check_weights_size(path: str, model) -> None:
    """Raises `UserInputError` if the archive's weights or total size are out
    of proportion to the built (not yet loaded) `model`.

    Reads only the central directory.

    Args:
        path: str. The `.keras` file.
        model: keras.Model. Built from the file's config, weights not loaded.
    """
    num_params = model.count_params()
    num_items = len(model.weights) + _count_layers(model)
    limit = weights_limit(num_params, num_items)
    with _open(path) as archive:
        infos = _infos(path, archive)
    for name in _WEIGHTS:
        if name in infos and infos[name].file_size > limit:
            _too_big(
                path,
                name,
                infos[name].file_size,
                limit,
                f"limit for {num_params} parameters",
            )
    total = sum(info.file_size for info in infos.values())
    total_limit = limit + MAX_CONFIG_BYTES + MAX_METADATA_BYTES + MAX_ASSETS_TOTAL_BYTES
    if total > total_limit:
        _too_big(path, "the archive", total, total_limit, "limit on all members")


def _count_layers(model) -> int:
    count, stack = 0, [model]
    while stack:
        layer = stack.pop()
        count += 1
        stack.extend(getattr(layer, "layers", ()))
    return count

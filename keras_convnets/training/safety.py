"""Checks on `.keras` files before Keras deserializes them.

Keras's `safe_mode=True` refuses Python lambdas and `TFSMLayer`, but it has had
a long line of bypasses (CVE-2025-1550, CVE-2025-8747, CVE-2025-9906,
CVE-2025-49655, CVE-2026-1462). So a model file from anywhere is first read
here, as data, and refused unless:

- it is a zip archive whose member names are plain relative paths (no `..`,
  no absolute paths) among those Keras writes (`config.json`,
  `metadata.json`, `model.weights.h5`/`.npz`, `assets/...`);
- every object its config names comes from `keras` or `keras_convnets`
  (`module` and `registered_name`): no `subprocess.Popen`, `os.system`,
  `builtins.exec` or a user module.

Only then does `keras.saving.load_model(..., safe_mode=True)` run. The
`--unsafe` flag of the CLI skips both, for files the user trusts.
"""

from __future__ import annotations

import json
import posixpath
import zipfile

from keras_convnets.errors import UserInputError

_MEMBERS = {"config.json", "metadata.json", "model.weights.h5", "model.weights.npz"}
_PACKAGES = ("keras", "keras_convnets")


def _allowed_module(module) -> bool:
    if module is None:
        return True
    return isinstance(module, str) and any(
        module == p or module.startswith(p + ".") for p in _PACKAGES
    )


def _allowed_registered_name(name) -> bool:
    if name is None or not isinstance(name, str):
        return name is None
    if ">" in name:  # "package>Class" from register_keras_serializable
        return name.split(">", 1)[0] in _PACKAGES
    return "." not in name  # a Keras class name such as "Functional"


def _walk(node, path, problems):
    if isinstance(node, dict):
        module = node.get("module")
        registered = node.get("registered_name")
        if "class_name" in node and not (
            _allowed_module(module) and _allowed_registered_name(registered)
        ):
            problems.append(
                f"{path or 'config'} names {module}.{node.get('class_name')} "
                f"(registered_name={registered!r})"
            )
        for key, value in node.items():
            _walk(value, f"{path}.{key}" if path else key, problems)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _walk(value, f"{path}[{i}]", problems)


def check_model_archive(path: str) -> None:
    """Raises `UserInputError` if a `.keras` file is malformed or names foreign code.

    Args:
        path: str. The `.keras` file.

    Example:

    ```python
    check_model_archive("downloaded.keras")  # raises before any code runs
    ```
    """
    if not zipfile.is_zipfile(path):
        raise UserInputError(f"{path}: not a .keras model archive (not a zip file).")
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
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
        if "config.json" not in archive.namelist():
            raise UserInputError(
                f"{path}: not a .keras model archive (no config.json)."
            )
        try:
            config = json.loads(archive.read("config.json"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise UserInputError(f"{path}: corrupt config.json ({e}).") from None
    problems = []
    _walk(config, "", problems)
    if problems:
        raise UserInputError(
            f"{path}: refusing to load: its config names code outside keras and "
            f"keras_convnets ({problems[0]}"
            f"{f' and {len(problems) - 1} more' if len(problems) > 1 else ''}). "
            f"If you trust this file, pass --unsafe."
        )

"""The package's import rules, read from the source (no imports run).

- No module uses another module's private (`_name`) function, class or
  constant. A private *module* (`analysis/_common.py`) may be used inside its
  own package, which is what the underscore says.
- Library modules never import the command line: only `cli.py` and the
  `commands.py` modules import `cli_common` or a `commands` module.
"""

from __future__ import annotations

import ast
import os

import pytest

PACKAGE = "keras_convnets"
ROOT = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), PACKAGE
)
CLI_MODULES = {f"{PACKAGE}.cli", f"{PACKAGE}.cli_common"}


def _modules() -> dict[str, str]:
    """`{dotted module name: path}` of every module in the package."""
    found = {}
    for folder, _, files in os.walk(ROOT):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, os.path.dirname(ROOT))[: -len(".py")]
                dotted = rel.replace(os.sep, ".").removesuffix(".__init__")
                found[dotted] = path
    return found


MODULES = _modules()


def _package_of(module: str, path: str) -> str:
    return module if path.endswith("__init__.py") else module.rpartition(".")[0]


def _private_uses(module: str, path: str) -> list[str]:
    """`module`'s uses of private names of other package modules."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    package = _package_of(module, path)
    problems = []
    aliases = {}  # local name -> package module it is bound to

    def allowed_module(target: str) -> bool:
        # A private module, used inside its own package (or below it).
        parent = target.rpartition(".")[0]
        return package == parent or package.startswith(parent + ".")

    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if not node.module.startswith(PACKAGE):
                continue
            for alias in node.names:
                target = f"{node.module}.{alias.name}"
                if target in MODULES:
                    aliases[alias.asname or alias.name] = target
                    if alias.name.startswith("_") and not allowed_module(target):
                        problems.append(f"line {node.lineno}: imports {target}")
                elif alias.name.startswith("_") and not alias.name.startswith("__"):
                    problems.append(f"line {node.lineno}: imports {target}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(PACKAGE) and alias.asname:
                    aliases[alias.asname] = alias.name
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
        ):
            target = f"{aliases[node.value.id]}.{node.attr}"
            if target not in MODULES or not allowed_module(target):
                problems.append(f"line {node.lineno}: uses {target}")
    return problems


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_private_names_of_other_modules(module):
    assert _private_uses(module, MODULES[module]) == []


def _imports(path: str) -> set[str]:
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def _is_cli(module: str) -> bool:
    return module in CLI_MODULES or module.endswith(".commands")


@pytest.mark.parametrize(
    "module",
    sorted(m for m in MODULES if not _is_cli(m) and m != f"{PACKAGE}.__main__"),
)
def test_library_modules_do_not_import_the_command_line(module):
    imported = {name for name in _imports(MODULES[module]) if _is_cli(name)}
    assert imported == set()


def test_the_checks_can_fail(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from keras_convnets.layers.outer_product import _pair\n"
        "from keras_convnets.data import datasets\n"
        "datasets._online()\n"
        "from keras_convnets.analysis import _common\n"
        "from keras_convnets.training import commands\n"
    )
    problems = _private_uses(f"{PACKAGE}.experiments.bad", str(bad))
    assert len(problems) == 3, problems  # _pair, _online, another package's _common
    assert f"{PACKAGE}.training.commands" in _imports(str(bad))


# Lower layers never import higher ones (data -> model -> train, see
# ARCHITECTURE.md): `{package prefix: packages it must not import}`.
LAYERS = {
    f"{PACKAGE}.data": (f"{PACKAGE}.training", f"{PACKAGE}.search"),
    f"{PACKAGE}.training.optim": (f"{PACKAGE}.training.config",),
}


@pytest.mark.parametrize(
    "module", sorted(m for m in MODULES if any(m.startswith(p) for p in LAYERS))
)
def test_lower_layers_do_not_import_higher_ones(module):
    banned = next(v for p, v in LAYERS.items() if module.startswith(p))
    imported = {
        name
        for name in _imports(MODULES[module])
        if any(name == b or name.startswith(b + ".") for b in banned)
    }
    assert imported == set()

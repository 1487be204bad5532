"""The dependencies are declared honestly.

Every third-party package that ``kbuilder/`` imports is a requirement in ``pyproject.toml``
(for this platform, markers included); every declared requirement is imported or says why
not; ``pyproject.toml`` holds ranges, ``constraints.txt`` the exact versions, and each pin
lies inside its range. The files are read as data (tomllib, ``packaging``), so nothing of
kbuilder is imported here.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]

# Declared, never imported by kbuilder's own code: what each is there for.
NOT_IMPORTED = {
    "jaxlib": "the compiled half of jax, which jax imports",
    "tensorboard": "keras.callbacks.TensorBoard writes its logs through it",
    "psycopg2-binary": "the PostgreSQL driver SQLAlchemy loads for an Optuna storage URL",
}


@dataclass(frozen=True)
class Import:
    """One ``import X`` / ``from X import ...`` of a third-party top-level module."""

    module: str
    file: Path
    line: int
    optional: bool  # inside ``try: ... except ImportError``: the code works without it

    def where(self) -> str:
        return f"{self.file.relative_to(REPO)}:{self.line}"


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError")
               for n in names)


def _imports_in(source: str, path: Path) -> list[Import]:
    """The third-party imports in ``source`` (the text of ``path``)."""
    found: list[Import] = []

    def visit(node: ast.AST, optional: bool) -> None:
        if isinstance(node, ast.Try):
            guarded = optional or any(_catches_import_error(h) for h in node.handlers)
            for child in node.body:
                visit(child, guarded)
            for child in (*node.handlers, *node.orelse, *node.finalbody):
                visit(child, optional)
            return
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            top = name.split(".")[0]
            if top not in sys.stdlib_module_names and top not in ("kbuilder", "__future__"):
                found.append(Import(top, path, node.lineno, optional))
        for child in ast.iter_child_nodes(node):
            visit(child, optional)

    visit(ast.parse(source, str(path)), False)
    return found


def _all_imports() -> list[Import]:
    return [i for path in sorted((REPO / "kbuilder").rglob("*.py"))
            for i in _imports_in(path.read_text(encoding="utf-8"), path)]


def _pyproject() -> dict:
    with open(REPO / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)


def _requirements(*, extras: bool) -> list[Requirement]:
    project = _pyproject()["project"]
    texts = list(project["dependencies"])
    if extras:
        texts += [t for group in project["optional-dependencies"].values() for t in group]
    return [Requirement(t) for t in texts]


def _applies_here(requirement: Requirement) -> bool:
    return requirement.marker is None or requirement.marker.evaluate({"extra": ""})


def _pins() -> dict[str, tuple[Version, int]]:
    """constraints.txt: canonical name -> (pinned version, line number)."""
    pins: dict[str, tuple[Version, int]] = {}
    lines = (REPO / "constraints.txt").read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        text = line.split("#")[0].strip()
        if not text:
            continue
        requirement = Requirement(text)
        (spec,) = requirement.specifier  # one exact version a line: it is the lock
        assert spec.operator == "==", f"constraints.txt:{number}: '{text}' is not an exact pin"
        pins[canonicalize_name(requirement.name)] = (Version(spec.version), number)
    return pins


@functools.cache
def _module_distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()  # reads every installed package


def _distributions_of(module: str) -> list[str]:
    return [canonicalize_name(d) for d in _module_distributions().get(module, [])]


def test_every_third_party_import_is_declared():
    declared = {canonicalize_name(r.name) for r in _requirements(extras=False)
                if _applies_here(r)}
    undeclared = []
    for found in _all_imports():
        if found.optional:
            continue  # kbuilder works without it (LiteRT's interpreter falls back to tf.lite)
        distributions = _distributions_of(found.module)
        if not distributions:
            undeclared.append(f"{found.where()}: '{found.module}' is imported but no "
                              "installed distribution provides it")
        elif not declared & set(distributions):
            undeclared.append(f"{found.where()}: '{found.module}' (from "
                              f"{', '.join(distributions)}) is not in [project] dependencies "
                              "of pyproject.toml; add it with a range")
    assert not undeclared, "\n".join(dict.fromkeys(undeclared))


def test_every_declared_dependency_is_imported_or_says_why_not():
    imported = {d for found in _all_imports() for d in _distributions_of(found.module)}
    unused = [r.name for r in _requirements(extras=False) if _applies_here(r)
              and canonicalize_name(r.name) not in imported
              and canonicalize_name(r.name) not in NOT_IMPORTED]
    assert not unused, (f"declared in pyproject.toml but never imported by kbuilder: {unused}; "
                        "drop them, or say in NOT_IMPORTED why they are needed")
    declared = {canonicalize_name(r.name) for r in _requirements(extras=False)}
    stale = [name for name in NOT_IMPORTED if name not in declared or name in imported]
    assert not stale, f"NOT_IMPORTED names packages not declared, or imported after all: {stale}"


def test_pyproject_holds_ranges_and_constraints_the_pins_inside_them():
    pins = _pins()
    problems = []
    for requirement in _requirements(extras=True):
        name = canonicalize_name(requirement.name)
        exact = [s for s in requirement.specifier if s.operator in ("==", "===")]
        if exact:
            problems.append(f"pyproject.toml: '{requirement}' is an exact version; give a "
                            "range there and the pin in constraints.txt")
        if name not in pins:
            if _applies_here(requirement):
                problems.append(f"'{requirement.name}' is declared but not pinned in "
                                "constraints.txt")
            continue
        version, line = pins[name]
        if not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"constraints.txt:{line}: {requirement.name}=={version} is "
                            f"outside pyproject.toml's range '{requirement.specifier}'")
    assert not problems, "\n".join(problems)


def test_tensorflow_is_declared_for_every_platform():
    """The packaging README: macOS has only ``tensorflow``, elsewhere ``tensorflow-cpu``."""
    tensorflows = [r for r in _requirements(extras=False)
                   if canonicalize_name(r.name) in ("tensorflow", "tensorflow-cpu")]
    for platform, expected in (("linux", "tensorflow-cpu"), ("win32", "tensorflow-cpu"),
                               ("darwin", "tensorflow")):
        chosen = [canonicalize_name(r.name) for r in tensorflows
                  if r.marker is None or r.marker.evaluate({"sys_platform": platform,
                                                            "extra": ""})]
        assert chosen == [expected], (platform, chosen)


@pytest.mark.parametrize("source, optional", [
    ("import numpy\n", False),
    ("try:\n    import ai_edge_litert\nexcept ImportError:\n    pass\n", True),
    ("try:\n    import numpy\nexcept (KeyError, ModuleNotFoundError):\n    pass\n", True),
    ("try:\n    import numpy\nexcept KeyError:\n    pass\n", False),
    ("def f():\n    from numpy.linalg import norm\n", False),
    ("import json\nfrom . import sibling\nfrom kbuilder import files\n", None),
])
def test_the_import_scanner(source, optional):
    imports = _imports_in(source, REPO / "kbuilder" / "example.py")
    if optional is None:
        assert imports == []
    else:
        (found,) = imports
        assert found.optional is optional

"""The architecture contract: which layer of kbuilder may import what.

graph and runtime never import Qt; ui never imports keras or a backend; graph does not
depend on runtime or the CLI (import-linter contracts in pyproject.toml). On top of the
static check, fresh interpreters show what importing a module really pulls in — keras must
be imported lazily, inside the functions that need it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

QT = ("PySide6", "shiboken6", "pyqtgraph")
KERAS_AND_BACKENDS = ("keras", "jax", "tensorflow", "torch")

# Modules of the Qt-free core that must also stay free of keras at import time.
CORE_MODULES = (
    "kbuilder.graph.model",
    "kbuilder.graph.commands",
    "kbuilder.graph.catalog",
    "kbuilder.graph.project",
)


def _lint_imports() -> str:
    script = Path(sys.executable).with_name("lint-imports")
    found = str(script) if script.exists() else shutil.which("lint-imports")
    if found is None:
        pytest.fail("lint-imports (import-linter) is not installed; run `make env`.")
    return found


def _run_lint_imports(cwd: Path, config: Path) -> subprocess.CompletedProcess:
    # PYTHONPATH is dropped so that the package analysed is the one in `cwd`.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [_lint_imports(), "--config", str(config), "--no-cache"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=50,
    )


def _imported_after(modules: tuple[str, ...], watched: tuple[str, ...]) -> dict:
    """Import ``modules`` (those that exist) in a fresh interpreter; report ``watched``."""
    code = f"""
import importlib, importlib.util, json, sys
imported, missing = [], []
for name in {list(modules)!r}:
    if importlib.util.find_spec(name) is None:
        missing.append(name)
    else:
        importlib.import_module(name)
        imported.append(name)
loaded = sorted({{m.split(".")[0] for m in sys.modules}} & set({list(watched)!r}))
print(json.dumps({{"imported": imported, "missing": missing, "loaded": loaded}}))
"""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, PYTHONPATH=path)
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=50,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_import_linter_contracts_hold():
    proc = _run_lint_imports(REPO, REPO / "pyproject.toml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def test_graph_core_imports_neither_qt_nor_keras():
    result = _imported_after(CORE_MODULES, QT + KERAS_AND_BACKENDS)
    assert result["imported"], "none of the core modules exists"
    assert result["loaded"] == [], (
        f"importing {result['imported']} pulled in {result['loaded']}; "
        "import keras inside the functions that need it"
    )


def test_doctor_imports_neither_qt_nor_keras():
    result = _imported_after(("kbuilder.runtime.doctor",), QT + KERAS_AND_BACKENDS)
    assert result["loaded"] == []


def test_ui_app_does_not_import_keras():
    result = _imported_after(("kbuilder.ui.app",), KERAS_AND_BACKENDS)
    assert result["imported"] == ["kbuilder.ui.app"]
    assert result["loaded"] == []


def test_cli_imports_neither_qt_nor_keras():
    # `kbuilder --help` and the app's start must not pay for keras or Qt they do not use.
    result = _imported_after(("kbuilder.cli",), QT + KERAS_AND_BACKENDS)
    assert result["loaded"] == []


@pytest.mark.parametrize(
    ("module", "statement", "contract"),
    [
        ("graph/model.py", "import PySide6", "graph and runtime never import Qt"),
        ("ui/app.py", "import keras", "ui never imports keras or a backend"),
        ("graph/model.py", "import kbuilder.runtime.doctor", "graph does not depend on runtime"),
    ],
)
def test_contracts_catch_a_violation(tmp_path, module, statement, contract):
    """The contracts are not vacuous: a copy of the package with one bad import fails."""
    shutil.copytree(
        REPO / "kbuilder", tmp_path / "kbuilder", ignore=shutil.ignore_patterns("__pycache__")
    )
    config = tmp_path / "pyproject.toml"
    shutil.copy(REPO / "pyproject.toml", config)
    target = tmp_path / "kbuilder" / module
    target.write_text(target.read_text() + f"\n{statement}  # injected by the test\n")

    proc = _run_lint_imports(tmp_path, config)

    assert proc.returncode != 0, proc.stdout
    assert f"{contract} BROKEN" in proc.stdout, proc.stdout + proc.stderr
    assert "1 broken" in proc.stdout, "only the injected import may break a contract"

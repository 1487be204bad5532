"""The architecture contract: which layer of kbuilder may import what.

graph and runtime never import Qt; ui never imports keras or a backend; the layers
``cli > ui > runtime > graph`` import only downwards; inside ui the tabs (model, data,
train, results) never import each other and ui.jobs imports neither the shell nor a tab
(import-linter contracts in pyproject.toml, also run by ``make lint`` before ``make test``). On top of the
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


def test_the_export_formats_are_listed_without_numpy_or_keras():
    # The CLI's parser and the Export dialog read them; the exporter stays in its worker.
    result = _imported_after(("kbuilder.runtime.export_formats",),
                             ("numpy",) + QT + KERAS_AND_BACKENDS)
    assert result["imported"] and result["loaded"] == []


def test_cli_imports_neither_qt_nor_keras():
    # `kbuilder --help` and the app's start must not pay for keras or Qt they do not use.
    result = _imported_after(("kbuilder.cli",), QT + KERAS_AND_BACKENDS)
    assert result["loaded"] == []


QT_CONTRACT = "graph and runtime never import Qt"
KERAS_CONTRACT = "ui never imports keras or a backend"
LAYERS_CONTRACT = "layers: cli > ui > runtime > graph"
TABS_CONTRACT = "ui tabs never import each other"
JOBS_CONTRACT = "ui jobs never import the shell or a tab"


@pytest.mark.parametrize(
    ("module", "statement", "contracts"),
    [
        ("graph/model.py", "import PySide6", {QT_CONTRACT}),
        ("ui/app.py", "import keras", {KERAS_CONTRACT}),
        ("graph/model.py", "import kbuilder.runtime.doctor", {LAYERS_CONTRACT}),
        ("ui/app.py", "import kbuilder.cli", {LAYERS_CONTRACT}),
        # Outside the layers, but graph imports kbuilder.files: graph -> files -> ui. ui.jobs
        # imports graph and runtime, so it reaches the shell through them too.
        ("files.py", "import kbuilder.ui.shell.theme", {LAYERS_CONTRACT, JOBS_CONTRACT}),
        ("runtime/devices.py", "import kbuilder.ui.shell.theme",
         {QT_CONTRACT, LAYERS_CONTRACT, JOBS_CONTRACT}),
        ("ui/data/data_page.py", "import kbuilder.ui.train.dashboard", {TABS_CONTRACT}),
        ("ui/jobs/engine.py", "import kbuilder.ui.shell.theme", {JOBS_CONTRACT}),
    ],
)
def test_contracts_catch_a_violation(tmp_path, module, statement, contracts):
    """The contracts are not vacuous: a copy of the package with one bad import fails."""
    shutil.copytree(
        REPO / "kbuilder", tmp_path / "kbuilder", ignore=shutil.ignore_patterns("__pycache__")
    )
    config = tmp_path / "pyproject.toml"
    shutil.copy(REPO / "pyproject.toml", config)
    target = tmp_path / "kbuilder" / module
    target.write_text(target.read_text() + f"\n{statement}  # injected by the test\n")

    proc = _run_lint_imports(tmp_path, config)

    broken = {line.removesuffix(" BROKEN") for line in proc.stdout.splitlines()
              if line.endswith(" BROKEN")}
    assert broken == contracts, proc.stdout + proc.stderr  # exactly those, no others
    assert (proc.returncode != 0) == bool(contracts), proc.stdout


def test_make_test_runs_the_linters_before_the_suite():
    """CI runs ``make test`` (.ci/run): ruff and the contracts must be part of it."""
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    # -n prints the recipe without running it; STAMP= skips creating the environment.
    proc = subprocess.run([make, "-n", "test", "STAMP="], cwd=REPO, capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()

    def first(word: str) -> int:
        return next(i for i, line in enumerate(lines) if word in line)

    assert first("ruff check") < first("lint-imports") < first("pytest"), proc.stdout
    assert "make test" in (REPO / ".ci" / "run").read_text()

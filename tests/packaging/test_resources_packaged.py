"""resources/ reaches the places kbuilder/ui/shell/resources.py looks: the wheel's package folder
kbuilder/resources/ (setup.py) and the PyInstaller bundle (packaging/kbuilder.spec)."""

from __future__ import annotations

import ast
import importlib.metadata
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from kbuilder.ui.shell import resources

REPO = Path(__file__).resolve().parents[2]


def resource_files() -> list[str]:
    top = REPO / "resources"
    return sorted(p.relative_to(top).as_posix() for p in top.rglob("*") if p.is_file())


def test_the_spec_puts_resources_where_the_bundle_looks():
    spec = ast.parse((REPO / "packaging" / "kbuilder.spec").read_text(encoding="utf-8"))
    destinations = [
        node.elts[1].value for node in ast.walk(spec)
        if isinstance(node, ast.Tuple) and len(node.elts) == 2
        and isinstance(node.elts[1], ast.Constant) and isinstance(node.elts[1].value, str)
        and any(isinstance(n, ast.Constant) and n.value == "resources"
                for n in ast.walk(node.elts[0]))
    ]
    assert len(destinations) == 1, "the spec should add (ROOT / 'resources', DEST) to datas"
    bundle = "/opt/kbuilder/_internal"
    assert Path(bundle) / destinations[0] == resources.candidates(bundle=bundle)[0]


def _setuptools_version() -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in importlib.metadata.version("setuptools").split(".")[:2])
    except importlib.metadata.PackageNotFoundError:
        return (0,)


@pytest.mark.skipif(_setuptools_version() < (77,), reason="builds the wheel without pip's "
                    "isolated (networked) build: needs setuptools>=77 installed")
def test_the_wheel_holds_every_resource_in_the_package(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for folder in ("kbuilder", "resources"):
        shutil.copytree(REPO / folder, source / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(tmp_path / "wheel"), str(source)],
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    (wheel,) = (tmp_path / "wheel").glob("kbuilder-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(tmp_path / "installed")
    package = tmp_path / "installed" / "kbuilder"
    assert resources.find_root(package) == package / "resources"
    installed = sorted(p.relative_to(package / "resources").as_posix()
                       for p in (package / "resources").rglob("*") if p.is_file())
    assert installed == resource_files()

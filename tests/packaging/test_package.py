"""The packaged app: PyInstaller bundle, .deb installer, desktop entry (packaging/).

The first tests are fast and always run: the bundle's entry point stands in for ``python``
when kbuilder starts its own workers, the desktop entry is valid, the icons are written.

The rest build the bundle and the .deb (~15-25 minutes on two cores) and are skipped
unless ``KBUILDER_PACKAGE_TEST=1``: `make test` (CI) does not run them, `make package` does,
right after building (it passes the built .deb in ``KBUILDER_PACKAGE_DEB``, so nothing is
built twice). Those tests unpack the .deb into a temporary folder, run the installed app's
``kbuilder selftest --bundle`` offscreen (GUI steps, then one epoch of training on the
bundled backend and three verified exports, all through the bundle's own executable), check
the desktop entry and icon, and install and remove the package with dpkg in a temporary
root to see that removal leaves none of its files behind. Nothing is installed on the
machine itself.
"""

from __future__ import annotations

import configparser
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGING = REPO / "packaging"
BUILD_TIMEOUT = 3 * 3600  # seconds: PyInstaller on two busy cores
SELFTEST_TIMEOUT = 1200

package_test = pytest.mark.skipif(
    os.environ.get("KBUILDER_PACKAGE_TEST") != "1",
    reason="builds the installer (slow): run `make package` or set KBUILDER_PACKAGE_TEST=1",
)


def _entry_module():
    spec = importlib.util.spec_from_file_location("kbuilder_entry", PACKAGING / "entry.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(args: list[str], timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, **kwargs)


def _app_env(home: Path) -> dict[str, str]:
    """A user's environment: no virtualenv, no PYTHONPATH, a fresh home, no display."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "VIRTUAL_ENV", "KERAS_", "PYTEST", "QT_"))}
    return {**env, "HOME": str(home), "QT_QPA_PLATFORM": "offscreen",
            "TF_CPP_MIN_LOG_LEVEL": "2"}


# ============================================================== fast: always run
@pytest.mark.parametrize(("argv", "expected"), [
    (["-X", "faulthandler", "-m", "kbuilder.runtime.worker", "--backend", "tensorflow"],
     ("module", "kbuilder.runtime.worker", ["--backend", "tensorflow"])),
    (["-c", "print(1)", "x"], ("code", "print(1)", ["x"])),
    (["-u", "-m", "kbuilder"], ("module", "kbuilder", [])),
    (["gui", "p.kbproj"], None),
    (["selftest", "--bundle"], None),
    ([], None),
    (["-m"], None),  # no module name: not a Python command line
])
def test_entry_tells_python_command_lines_from_kbuilder_commands(argv, expected):
    assert _entry_module().python_command(argv) == expected


def test_entry_runs_workers_code_and_the_kbuilder_command():
    """What the bundle does with the command lines kbuilder starts helpers with."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    entry = [sys.executable, str(PACKAGING / "entry.py")]
    code = _run([*entry, "-X", "faulthandler", "-c",
                 "import sys; print(__name__, sys.argv[1:])", "a", "b"], env=env)
    assert code.returncode == 0, code.stderr
    assert code.stdout.strip() == "__main__ ['a', 'b']"
    module = _run([*entry, "-m", "kbuilder", "--version"], env=env)
    assert module.returncode == 0, module.stderr
    assert module.stdout.strip().startswith("kbuilder ")
    command = _run([*entry, "--version"], env=env)
    assert command.stdout == module.stdout
    worker = _run([*entry, "-X", "faulthandler", "-m", "kbuilder.runtime.worker"], env=env)
    assert worker.returncode == 2 and "--backend" in worker.stderr  # the worker's own parser


def test_desktop_entry_starts_the_gui_with_the_file_and_shows_the_icon():
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(PACKAGING / "linux" / "kbuilder.desktop")
    desktop = entry["Desktop Entry"]
    assert desktop["Exec"] == "kbuilder gui %f"  # a bare path would be read as a command
    assert desktop["Icon"] == "kbuilder" and desktop["Terminal"] == "false"
    assert "application/x-kbuilder-project" in desktop["MimeType"]
    validator = shutil.which("desktop-file-validate")
    if validator is None:
        pytest.skip("desktop-file-validate is not installed (apt-get install desktop-file-utils)")
    result = _run([validator, str(PACKAGING / "linux" / "kbuilder.desktop")])
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout


def test_icons_are_written_for_every_platform(tmp_path):
    from PIL import Image

    spec = importlib.util.spec_from_file_location("kbuilder_icon", PACKAGING / "icon.py")
    icon = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(icon)
    icon.write_icons(tmp_path)
    for size in icon.PNG_SIZES:
        with Image.open(tmp_path / f"kbuilder-{size}.png") as image:
            assert image.size == (size, size)
    with Image.open(tmp_path / "kbuilder.ico") as ico:
        assert (256, 256) in ico.info["sizes"]
    with Image.open(tmp_path / "kbuilder.icns") as icns:
        assert icns.format == "ICNS"


def test_bundle_selftest_fails_clearly_without_a_training_backend(tmp_path, monkeypatch):
    import io

    from kbuilder.runtime import smoke

    monkeypatch.setattr(smoke, "installed_backend", lambda: None)
    out = io.StringIO()
    assert smoke.run(tmp_path, out) == 1
    assert "no training backend (tensorflow, jax, torch) is installed" in out.getvalue()


# ================================================ slow: KBUILDER_PACKAGE_TEST=1
@pytest.fixture(scope="module")
def deb() -> Path:
    """The .deb: the one `make package` just built, or built here."""
    prebuilt = os.environ.get("KBUILDER_PACKAGE_DEB")
    if prebuilt:
        return Path(prebuilt)
    for tool in ("dpkg-deb", "dpkg"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: apt-get install dpkg-dev")
    result = _run(["bash", str(PACKAGING / "build.sh"), sys.executable], timeout=BUILD_TIMEOUT,
                  cwd=REPO)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return max((REPO / "dist").glob("kbuilder_*.deb"), key=lambda p: p.stat().st_mtime)


@pytest.fixture(scope="module")
def unpacked(deb, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("unpacked")
    result = _run(["dpkg-deb", "-x", str(deb), str(root)], timeout=900)
    assert result.returncode == 0, result.stderr
    return root


def _package_files(unpacked: Path) -> set[str]:
    """The package's files (not folders) as absolute paths on the target system."""
    return {"/" + str(p.relative_to(unpacked)) for p in unpacked.rglob("*")
            if p.is_file() or p.is_symlink()}


@package_test
def test_package_metadata_and_contents(deb, unpacked):
    fields = _run(["dpkg-deb", "-f", str(deb), "Package", "Version", "Depends"]).stdout
    assert "Package: kbuilder" in fields
    assert "libxcb-cursor0" in fields and "libegl1" in fields  # Qt's xcb platform
    files = _package_files(unpacked)
    for path in ("/opt/kbuilder/kbuilder", "/usr/bin/kbuilder",
                 "/usr/share/applications/kbuilder.desktop",
                 "/usr/share/icons/hicolor/256x256/apps/kbuilder.png",
                 "/usr/share/mime/packages/kbuilder.xml"):
        assert path in files, path
    # The backend that is not bundled (PyTorch), and CUDA, stayed out.
    unwanted = [f for f in files if any(
        part in f for part in ("/torch/", "/nvidia/", "libcudart", "libtorch"))]
    assert not unwanted, unwanted[:10]


@package_test
def test_installed_app_passes_its_selftest_offline(unpacked, tmp_path):
    """`kbuilder selftest --bundle` from the installed files: the editor, then one epoch
    on the bundled backend and ONNX/OpenVINO/LiteRT exports, each verified."""
    launcher = (unpacked / "usr/bin/kbuilder").read_text()
    assert "exec /opt/kbuilder/kbuilder" in launcher
    app = unpacked / "opt/kbuilder/kbuilder"
    result = _run([str(app), "selftest", "--bundle"], timeout=SELFTEST_TIMEOUT,
                  env=_app_env(tmp_path), cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    assert "selftest: all steps passed" in output
    assert "train one epoch on tensorflow in a worker" in output
    for format in ("onnx", "openvino", "litert"):
        assert f"export to {format} and verify" in output
    assert "selftest --bundle: all steps passed" in output


@package_test
def test_installed_desktop_entry_and_icon(unpacked):
    desktop = unpacked / "usr/share/applications/kbuilder.desktop"
    validator = shutil.which("desktop-file-validate")
    if validator is not None:
        result = _run([validator, str(desktop)])
        assert result.returncode == 0 and not result.stdout.strip(), result.stdout
    text = desktop.read_text()
    assert "Exec=kbuilder gui %f" in text and (unpacked / "usr/bin/kbuilder").is_file()
    icons = list((unpacked / "usr/share/icons/hicolor").glob("*/apps/kbuilder.png"))
    assert len(icons) >= 5


@package_test
def test_install_and_remove_with_dpkg_leave_nothing_behind(deb, unpacked, tmp_path):
    """dpkg -i / dpkg -r into an empty root (its own dpkg database), maintainer scripts
    included; afterwards none of the package's files is left."""
    root = tmp_path / "root"
    admin = root / "var/lib/dpkg"
    for folder in ("info", "updates", "triggers"):
        (admin / folder).mkdir(parents=True)
    for name in ("status", "available"):
        (admin / name).touch()
    dpkg = ["dpkg", f"--root={root}", "--force-script-chrootless", "--force-not-root",
            "--log=/dev/null"]
    install = _run([*dpkg, "--force-depends", "-i", str(deb)], timeout=900)
    assert install.returncode == 0, install.stderr
    status = _run([*dpkg, "-s", "kbuilder"])
    assert "Status: install ok installed" in status.stdout
    files = sorted(_package_files(unpacked))
    assert all((root / f.lstrip("/")).exists() or (root / f.lstrip("/")).is_symlink()
               for f in files)
    remove = _run([*dpkg, "-r", "kbuilder"], timeout=900)
    assert remove.returncode == 0, remove.stderr
    left = [f for f in files if (root / f.lstrip("/")).exists()]
    assert not left, left[:10]
    assert not (root / "opt/kbuilder").exists()

"""The desktop app's entry point.

``run`` shows the main window (``kbuilder.ui.shell.main_window``) first and loads the engine
(the layer catalog, hence keras) in the background, because the window must appear in
about a second. The UI never imports keras or a backend itself (tests/test_layering.py).

Environment:
    QT_QPA_PLATFORM: Qt's platform plugin, left to Qt (``offscreen`` runs without a display).
    KBUILDER_EXIT_AFTER_SHOWN: when set, quit as soon as the window has been shown
        (smoke tests and start-up benchmarks).
    KBUILDER_SHOWN_FILE: when set, the time (``time.time()``) of the window's first paint
        is written to this file (bench/gui_startup.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

from PySide6.QtWidgets import QApplication

from kbuilder.ui.shell import icons, theme
from kbuilder.ui.shell.main_window import APP_NAME, ORGANIZATION, MainWindow, QtFirstPaint

__all__ = ["APP_NAME", "AppStartError", "MainWindow", "run"]

# Shared libraries Qt's xcb platform plugin loads, and the Debian packages that ship them.
_XCB_LIBRARIES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libdbus-1.so.3": "libdbus-1-3",
}


class AppStartError(RuntimeError):
    """The app cannot open a window here; the message says what to do."""


def create_application() -> QApplication:
    """The QApplication, named and themed (following the system's colour scheme)."""
    app = QApplication.instance() or QApplication(sys.argv[:1] or [APP_NAME])
    assert isinstance(app, QApplication)
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationDisplayName(APP_NAME)
    app.setWindowIcon(icons.app_icon())  # title bars, task switchers (Linux: the .desktop's)
    theme.install(app)
    return app


def run(project_path: str | os.PathLike | None = None) -> int:
    """Start the desktop app and return its exit code when the window closes.

    Args:
        project_path: a ``.kbproj`` file (or a ``.keras``/``.h5`` model) to open, or
            ``None`` for the start page.

    Returns:
        The exit code of the Qt event loop.

    Raises:
        AppStartError: there is no display to show a window on.
    """
    _check_display()
    # In-process graph work is symbolic; the numpy backend does it without JIT delays.
    # Training runs in worker processes on the user's backend.
    os.environ.setdefault("KERAS_BACKEND", "numpy")
    app = create_application()
    window = MainWindow()
    window.show()
    shown_file = os.environ.get("KBUILDER_SHOWN_FILE")
    exit_after_shown = bool(os.environ.get("KBUILDER_EXIT_AFTER_SHOWN"))

    def after_first_paint() -> None:
        if shown_file:
            _write_time(shown_file)
        if project_path is not None:
            # Reading a project needs the layer catalog (keras, seconds): window first.
            window.open_project(project_path)
        if exit_after_shown:
            app.quit()

    QtFirstPaint(window, after_first_paint)
    code = app.exec()
    if window.loader.busy:
        # The catalog thread is still importing keras: an interpreter shutting down under
        # a thread in the middle of an import can crash, so leave at once.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _write_time(path: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(repr(time.time()))
    except OSError:
        pass


def _check_display() -> None:
    """Give advice where Qt would otherwise abort the whole process."""
    if not sys.platform.startswith("linux"):
        return
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform and not platform.startswith("xcb"):
        return  # offscreen, wayland, vnc, ...: Qt reports its own problems
    if not platform and os.environ.get("WAYLAND_DISPLAY"):
        return
    if not os.environ.get("DISPLAY"):
        raise AppStartError(
            "No display found (DISPLAY is not set). Start kbuilder from a desktop session, "
            "or set QT_QPA_PLATFORM=offscreen to run it without a visible window."
        )
    missing = _missing_xcb_packages()
    if missing:
        # A warning, not an error: the loader may find them where ldconfig does not look.
        # If it does not, Qt aborts right after this with a less helpful message.
        packages = " ".join(missing)
        print(
            f"kbuilder: Qt may need system libraries that seem to be missing: {packages}. "
            f"If the window does not open, install them with "
            f"'sudo apt-get install {packages}' (or start kbuilder with 'make run').",
            file=sys.stderr,
        )


def _missing_xcb_packages() -> list[str]:
    # One `ldconfig -p` lists every library the loader knows; without it, let Qt try.
    ldconfig = shutil.which("ldconfig") or "/sbin/ldconfig"
    try:
        listing = subprocess.run(
            [ldconfig, "-p"], capture_output=True, text=True, timeout=5, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    known = {line.split(" (", 1)[0].strip() for line in listing.splitlines()}
    return [pkg for lib, pkg in _XCB_LIBRARIES.items() if lib not in known]

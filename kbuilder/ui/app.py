"""The desktop app's entry point and main window.

For now the window is a placeholder for the editor: it shows which project is open and the
nodes of its graph. It never imports keras or a backend (tests/test_layering.py checks it):
start-up time is the time to the first window, and keras alone would cost seconds.

Environment:
    QT_QPA_PLATFORM: Qt's platform plugin, left to Qt (``offscreen`` runs without a display).
    KBUILDER_EXIT_AFTER_SHOWN: when set, quit as soon as the window has been shown
        (smoke tests and start-up benchmarks).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QLabel,
    QListWidget,
    QMainWindow,
    QVBoxLayout,
    QWidget,
)

from kbuilder.graph.errors import CycleError
from kbuilder.graph.model import Graph

APP_NAME = "kbuilder"
PROJECT_FILTER = "kbuilder projects (*.kbproj);;All files (*)"

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


class MainWindow(QMainWindow):
    """The main window: a File menu and, until the editor exists, a project summary."""

    def __init__(self, project_path: str | os.PathLike | None = None):
        super().__init__()
        self.setWindowTitle(APP_NAME)
        self.resize(960, 640)
        self.project_path: Path | None = None
        self._build_menu()

        central = QWidget(self)
        layout = QVBoxLayout(central)
        self.summary = QLabel(central)
        self.summary.setWordWrap(True)
        self.node_list = QListWidget(central)
        layout.addWidget(self.summary)
        layout.addWidget(self.node_list, 1)
        self.setCentralWidget(central)

        if project_path is None:
            self.show_message("No project is open. Use File > Open… to open a .kbproj file.")
        else:
            self.open_project(project_path)

    def _build_menu(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.open_action = QAction("&Open…", self)
        self.open_action.setShortcut(QKeySequence.StandardKey.Open)
        self.open_action.triggered.connect(self._ask_open)
        file_menu.addAction(self.open_action)
        file_menu.addSeparator()
        self.quit_action = QAction("&Quit", self)
        self.quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        self.quit_action.triggered.connect(self.close)
        file_menu.addAction(self.quit_action)

    def _ask_open(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open project", "", PROJECT_FILTER)
        if path:
            self.open_project(path)

    def open_project(self, path: str | os.PathLike) -> bool:
        """Show the project at ``path``; on failure show why and keep what was shown.

        Args:
            path: a ``.kbproj`` file.

        Returns:
            Whether the project was opened.
        """
        from kbuilder.graph.errors import ProjectFileError
        from kbuilder.graph.project import load_project

        path = Path(path)
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            project = load_project(path)
        except ProjectFileError as exc:
            self.statusBar().showMessage(f"Could not open {path.name}: {exc}")
            if self.project_path is None:
                self.show_message(f"Could not open {path}: {exc}")
            return False
        finally:
            QApplication.restoreOverrideCursor()
        graph = project.graph
        self.project_path = path
        self.setWindowTitle(f"{path.name} — {APP_NAME}")
        self.show_message(f"Project: {path}\nModel '{graph.name}' with {len(graph)} nodes.")
        self.node_list.clear()
        self.node_list.addItems(
            [f"{graph.node(nid).name}  ({graph.node(nid).label})" for nid in _node_order(graph)]
        )
        self.statusBar().showMessage(f"Opened {path.name}", 5000)
        return True

    def show_message(self, text: str) -> None:
        """Show ``text`` above the node list."""
        self.summary.setText(text)


def _node_order(graph: Graph) -> list[str]:
    try:
        return graph.topological_order()
    except CycleError:  # a hand-edited file: show the nodes anyway
        return graph.node_ids


def run(project_path: str | os.PathLike | None = None) -> int:
    """Start the desktop app and return its exit code when the window closes.

    Args:
        project_path: a ``.kbproj`` file to open, or ``None``.

    Returns:
        The exit code of the Qt event loop.

    Raises:
        AppStartError: there is no display to show a window on.
    """
    _check_display()
    app = QApplication.instance() or QApplication(sys.argv[:1] or [APP_NAME])
    app.setApplicationName(APP_NAME)
    window = MainWindow()
    window.show()
    if project_path is not None:
        # Reading a project checks it against the layer catalog, which imports keras
        # (seconds): show the window first, then open the project.
        window.show_message(f"Opening {project_path}…")
        QTimer.singleShot(0, lambda: window.open_project(project_path))
    if os.environ.get("KBUILDER_EXIT_AFTER_SHOWN"):
        # Queued after the show (and the project's opening), so both have happened.
        QTimer.singleShot(0, app.quit)
    return app.exec()


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

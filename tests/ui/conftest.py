"""Fixtures for the editor's tests: a real main window, offscreen, with private settings.

The layer catalog (keras) is loaded once per session; each window gets its own settings
file, recovery folder and scripted dialogs (a modal dialog would block an offscreen run).
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings

from kbuilder.ui.testing import ScriptedDialogs


@pytest.fixture(scope="session")
def engine():
    """The layer catalog, loaded once (it imports keras)."""
    from kbuilder.graph import catalog

    catalog.all_layers()
    return catalog


@pytest.fixture(scope="session")
def run_folder(tmp_path_factory):
    """Where the runs of ``tests/ui/trained_runs.py`` are trained, once per session."""
    return tmp_path_factory.mktemp("runs")


@pytest.fixture
def loader(qapp, engine):
    from kbuilder.ui.jobs.engine import QtEngineLoader

    loader = QtEngineLoader()
    assert loader.wait(60)
    return loader


@pytest.fixture
def make_window(qtbot, tmp_path, loader):
    """Build main windows sharing one settings file and recovery folder (a "restart")."""
    from kbuilder.ui.shell.main_window import MainWindow

    windows = []

    def make(**kwargs):
        settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(settings=settings, recovery_dir=tmp_path / "recovery",
                            loader=loader, **kwargs)
        window.dialogs = ScriptedDialogs()
        qtbot.addWidget(window)
        window.resize(1280, 800)
        window.show()
        qtbot.waitExposed(window)
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.dialogs.unsaved = "discard"
        window.close()


@pytest.fixture
def window(make_window):
    return make_window()


@pytest.fixture
def mlp_window(window):
    """A window with the MLP template open."""
    assert window.new_from_template("mlp_classifier")
    return window

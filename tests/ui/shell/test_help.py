"""Help › Getting Started and Help › About kbuilder (issue 12 item 26: Help was a six-line
message box and there was no About box)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from PySide6.QtCore import Qt, qVersion
from PySide6.QtTest import QTest

from kbuilder.ui.jobs.run_controller import installed_backends

REPO = Path(__file__).resolve().parents[3]


def test_getting_started_walks_through_the_journeys_and_lists_the_shortcuts(window, qtbot):
    QTest.keyClick(window, Qt.Key.Key_F1)  # Help › Getting Started
    help_window = window._help
    assert help_window is not None and help_window.isVisible()
    assert not help_window.isModal()  # it can stay open beside the work
    text = help_window.browser.toPlainText()
    for heading in ("Build a model", "Choose the data", "Train", "Judge the results",
                    "Export", "Keyboard and mouse"):
        assert heading in text, heading
    # The shortcuts come from the window's own actions.
    assert "\nTrain\nF5\n" in text and "\nStop Training\nShift+F5\n" in text
    assert "Ctrl+S" in text and "Shift+F5" in text and "Ctrl+Alt+E" in text
    # Help › Keyboard and Mouse shows the same window at its shortcuts.
    help_window.browser.verticalScrollBar().setValue(0)
    window.keys_help_action.trigger()
    assert window._help is help_window
    assert help_window.browser.verticalScrollBar().value() > 0


def test_about_names_the_versions(window):
    window.about_action.trigger()
    from kbuilder.ui.shell.help import QtAboutDialog

    about = next(w for w in window.findChildren(QtAboutDialog) if w.isVisible())
    text = about.text.text()
    assert importlib.metadata.version("keras") in text
    assert platform.python_version() in text and qVersion() in text
    import kbuilder

    assert kbuilder.__version__ in text
    for backend in installed_backends():
        label = {"jax": "JAX", "tensorflow": "TensorFlow", "torch": "PyTorch"}[backend]
        assert label in text


ABOUT_ONLY = """
import json, sys
from kbuilder.ui.app import create_application
from kbuilder.ui.shell.help import QtAboutDialog, versions

app = create_application()
dialog = QtAboutDialog()
dialog.show()
app.processEvents()
print(json.dumps({"versions": {v.name: v.version for v in versions()},
                  "imported": sorted({m.split(".")[0] for m in sys.modules}
                                     & {"keras", "jax", "tensorflow", "torch"})}))
"""


def test_the_about_box_reads_versions_without_importing_keras(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", ABOUT_ONLY], capture_output=True, text=True,
                         env=env, timeout=120, check=True, cwd=tmp_path)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["imported"] == []
    assert result["versions"]["Keras"] == importlib.metadata.version("keras")

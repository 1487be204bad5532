"""What the window's start-up may cost: no plotting library, no NumPy until a tab needs them.

pyqtgraph and NumPy took a third of the start-up (bench/gui_startup.py); they load with the
Train and Results tabs' plots instead (and in the background after the first paint, with the
layer catalog). A fresh interpreter shows what creating and showing the window imports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

SHOW_WINDOW = """
import json, sys
from PySide6.QtCore import QSettings
from PySide6.QtTest import QTest
from kbuilder.ui.app import create_application
from kbuilder.ui.jobs.engine import QtEngineLoader
from kbuilder.ui.shell.main_window import MainWindow

class NoCatalog(QtEngineLoader):
    def start(self):  # keras (and the imports that follow it) stay out of this check
        pass

app = create_application()
settings = QSettings(sys.argv[1], QSettings.Format.IniFormat)
window = MainWindow(settings=settings, recovery_dir=sys.argv[2], loader=NoCatalog())
window.show()
assert QTest.qWaitForWindowExposed(window)
for _ in range(5):
    app.processEvents()
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} & {"pyqtgraph", "numpy"})))
"""


def test_showing_the_window_imports_neither_pyqtgraph_nor_numpy(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO),
                                                        os.environ.get("PYTHONPATH")])))
    proc = subprocess.run(
        [sys.executable, "-c", SHOW_WINDOW, str(tmp_path / "settings.ini"),
         str(tmp_path / "recovery")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert loaded == [], f"showing the window imported {loaded}: import them lazily"


def test_the_train_tab_builds_its_plots_when_first_shown(mlp_window, qtbot):
    page = mlp_window.train_page
    dashboard = page.dashboard
    assert not dashboard.plots_built  # nothing shown yet: no plot was made
    assert dashboard.point_counts()["loss/batch"] == 0  # still answers, as in a run
    mlp_window._show_page(page)
    qtbot.waitUntil(lambda: dashboard.plots_built, timeout=5000)
    assert {"loss", "accuracy", "learning rate"} <= set(dashboard.plots)
    assert dashboard.graphics.isVisible()

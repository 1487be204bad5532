"""Render the README's screenshots from the real window, offscreen.

Run: .venv/bin/python docs/screenshots/render.py
Writes start-page.png, window-template.png, error-badge.png, inspector.png and
dark-theme.png beside this file.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("KERAS_BACKEND", "numpy")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from PySide6.QtCore import QPointF, QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from kbuilder.graph.commands import SetParamCommand  # noqa: E402
from kbuilder.ui.app import create_application  # noqa: E402
from kbuilder.ui.main_window import MainWindow  # noqa: E402
from kbuilder.ui.testing import ScriptedDialogs, click_node, connect_by_drag, drop_mime  # noqa: E402

SIZE = (1440, 900)


def settle(app: QApplication, window: MainWindow) -> None:
    for _ in range(5):
        app.processEvents()


def new_window(folder: Path) -> MainWindow:
    settings = QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings, recovery_dir=folder / "recovery")
    window.dialogs = ScriptedDialogs()
    window.resize(*SIZE)
    window.show()
    assert window.loader.wait(300), window.loader.error
    return window


def main() -> None:
    app = create_application()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        window = new_window(folder)
        settle(app, window)
        window.grab().save(str(HERE / "start-page.png"))

        # The multi-input template, a layer selected: canvas, inspector, summary.
        window.new_from_template("multi_input")
        window.editor.fit()
        graph = window.doc.graph
        click_node(window.editor, graph.find("conv2d").id)
        settle(app, window)
        window.grab().save(str(HERE / "window-template.png"))

        # A wrong connection: an Input of shape (10,) into a Conv2D.
        view = window.editor.view
        target = QPointF(*graph.find("tabular_dense").position) + QPointF(-230, 20)
        mime = window.palette.mime_for("Conv2D")
        drop_mime(view, mime, view.mapFromScene(target))
        bad = window.editor.selected_node_ids()[0]
        connect_by_drag(window.editor, graph.find("tabular").id, 0, bad, "inputs")
        window.doc.edit(lambda: SetParamCommand(graph, bad, "filters", 16))
        window.editor.view.fit(window.editor.scene.nodes[bad].sceneBoundingRect()
                               .adjusted(-300, -200, 380, 260), max_zoom=1.1)
        click_node(window.editor, bad)
        settle(app, window)
        window.grab().save(str(HERE / "error-badge.png"))

        # The inspector of a wrapper layer with its nested editor.
        window.dialogs.unsaved = "discard"
        window.new_from_template("text_classifier")
        click_node(window.editor, window.doc.graph.find("bidirectional").id)
        window.inspector_dock.resize(380, SIZE[1] - 120)
        settle(app, window)
        window.inspector.grab().save(str(HERE / "inspector.png"))

        # Dark theme, the code panel in front.
        window.set_theme("dark")
        window.new_from_template("residual_cnn")
        window.code_dock.show()
        window.code_dock.raise_()
        window.code_view.wait(300)
        click_node(window.editor, window.doc.graph.find("res1_add").id)
        settle(app, window)
        window.grab().save(str(HERE / "dark-theme.png"))
        window.set_theme("system")
        window.close()
    print("screenshots written to", HERE)


if __name__ == "__main__":
    main()

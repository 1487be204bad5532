"""Render the README's screenshots from the real window, offscreen.

Run: .venv/bin/python docs/screenshots/render.py
Writes start-page.png, window-template.png, error-badge.png, inspector.png,
dark-theme.png, help.png, about.png, evaluation.png, export-parity.png (it trains two short
runs on JAX and exports one to ONNX) and dashboard.png (a run on JAX, caught mid-training)
beside this file.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("KERAS_BACKEND", "numpy")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from PySide6.QtCore import QPointF, QSettings, Qt  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from kbuilder.graph.commands import SetParamCommand  # noqa: E402
from kbuilder.ui.app import create_application  # noqa: E402
from kbuilder.ui.shell.main_window import MainWindow  # noqa: E402
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


def render_help(app: QApplication, window: MainWindow) -> None:
    """Help › Getting Started and Help › About kbuilder."""
    help_window = window.show_help()
    settle(app, window)
    help_window.grab().save(str(HERE / "help.png"))
    help_window.close()
    about = window.show_about()
    settle(app, window)
    about.grab().save(str(HERE / "about.png"))
    about.close()


def render_data_page(app: QApplication, window: MainWindow, name: str = "data-page.png") -> None:
    """The Data tab: digits chosen, its preview, and a finding with its fix (the MLP's
    output layer given 3 units for 10 classes)."""
    window.dialogs.unsaved = "discard"
    window.new_from_template("mlp_classifier")
    graph = window.doc.graph
    window.doc.edit(lambda: SetParamCommand(graph, graph.find("predictions").id, "units", 3))
    window._show_page(window.data_page)
    assert window.data_page.wait(300), "the data did not load"
    settle(app, window)
    window.grab().save(str(HERE / name))


def record_run(project, data, training, worker, run_dir: Path) -> None:
    """Train ``project`` once on ``worker`` and append the run's record, as the window does."""
    from kbuilder.runtime import protocol as p
    from kbuilder.runtime.runner import run_record, start_run

    run = start_run(project, data, training, worker=worker, run_dir=run_dir)
    started = None
    for message in run.events():
        started = message if isinstance(message, p.RunStarted) else started
    project.runs.append(run_record(run, started))


def train_digits_runs(folder: Path) -> object:
    """The CNN template fitted to digits, with two real runs (JAX, two learning rates)."""
    from kbuilder.graph.settings import DataSettings
    from kbuilder.runtime.client import Worker
    from kbuilder.runtime.preflight import new_project_for_data

    project = new_project_for_data("cnn_classifier", DataSettings(source="digits"))
    worker = Worker("jax")
    try:
        for i, rate in enumerate((1e-3, 3e-3)):
            training = dataclasses.replace(project.training, backend="jax", epochs=6,
                                           learning_rate=rate)
            record_run(project, project.data, training, worker,
                       folder / f"run{i + 1}")
    finally:
        worker.shutdown()
    return project


def render_evaluation(app: QApplication, window: MainWindow, project: object,
                      name: str = "evaluation.png") -> None:
    """The Results tab: two runs' curves overlaid, the newest run's confusion matrix and
    sample predictions."""
    window.dialogs.unsaved = "discard"
    window.set_project(project)
    window._show_page(window.results_page)
    page = window.results_page
    page.select_runs([run["run_id"] for run in project.runs])
    settle(app, window)
    window.grab().save(str(HERE / name))


def render_export_parity(app: QApplication, window: MainWindow, folder: Path,
                         name: str = "export-parity.png") -> None:
    """The Export dialog after exporting the newest run's model to ONNX."""
    page = window.results_page
    dialog = page.open_export_dialog(page.current_run_id())
    dialog.set_format("onnx")
    dialog.set_output(folder / "digits.onnx")
    dialog.export()
    deadline = time.monotonic() + 600
    while dialog.job.busy and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)
    assert dialog.result is not None, dialog.error
    # The folder of a temporary run reads badly in a picture: show where users export to.
    dialog.output_edit.setText("/home/ana/exports/digits.onnx")
    dialog.status.setText(dialog.status.text().replace(str(folder), "/home/ana/exports"))
    dialog.files.item(0).setText("/home/ana/exports/digits.onnx")
    settle(app, window)
    dialog.grab().save(str(HERE / name))
    dialog.close()


def render_dashboard(app: QApplication, window: MainWindow, name: str = "dashboard.png",
                     path: Path | None = None) -> None:
    """The Train tab mid-training: the MLP template on digits, on JAX, about half done."""
    window.dialogs.unsaved = "discard"
    window.new_from_template("mlp_classifier")
    window._show_page(window.train_page)
    page = window.train_page
    page.backend.setCurrentIndex(page.backend.findData("jax"))
    page.epochs.setValue(60)
    page.batch_size.setValue(32)
    page.reduce_lr.setChecked(True)  # so the learning-rate curve has steps
    page.train()
    deadline = time.monotonic() + 300
    while page.dashboard.progress.value() < 450 and time.monotonic() < deadline:
        if not page.running:
            raise RuntimeError(f"The run ended early: {page.dashboard.status.text()}")
        app.processEvents()
        time.sleep(0.002)
    page.dashboard.redraw()
    settle(app, window)
    window.grab().save(str(path or HERE / name))
    page.stop()
    page.controller.wait_idle()


def main() -> None:
    app = create_application()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        window = new_window(folder)
        settle(app, window)
        window.grab().save(str(HERE / "start-page.png"))

        # The multi-input template, a layer selected: canvas, inspector, summary.
        window.new_from_template("multi_input")  # opens fitted to the canvas
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
        window.model_page.resizeDocks([window.inspector_dock], [380],
                                      Qt.Orientation.Horizontal)
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
        render_help(app, window)
        render_data_page(app, window)
        project = train_digits_runs(folder)
        render_evaluation(app, window, project)
        render_export_parity(app, window, folder)
        render_dashboard(app, window)
        window.close()
    print("screenshots written to", HERE)


if __name__ == "__main__":
    main()

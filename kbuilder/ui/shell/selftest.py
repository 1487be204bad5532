"""``kbuilder selftest``: drive the real window offscreen through a user's first session.

New project from a template, add and connect a layer, edit a parameter, undo and redo,
save and reopen, generate code; then choose the digits data, train one epoch on each
installed backend while the curves fill, stop a run, evaluate, and export to ONNX with the
parity check — each step done with the same gestures a user makes (clicks, drags, typing)
and checked against both the project and what the window shows. Training, evaluation and
export run in real worker processes. Prints one line per step; the exit code is 0 only if
every step did what it should.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from kbuilder.graph.runs import RunRecord
from kbuilder.graph.text import plural
from kbuilder.runtime.checklist import check, run_steps

STEP_TIMEOUT = 120.0
RUN_TIMEOUT = 300.0  # a cold backend import on a busy machine, then a run


def _quiet_offscreen_notices() -> None:
    """Drop the offscreen platform's "This plugin does not support raise()" notices: they
    say only that there is no real window, and would bury the steps' lines."""
    from PySide6.QtCore import qInstallMessageHandler

    previous = None

    def handler(kind, context, message: str) -> None:
        if message.startswith("This plugin does not support"):
            return
        if previous is not None:
            previous(kind, context, message)
        else:
            print(message, file=sys.stderr)

    previous = qInstallMessageHandler(handler)


class _Session:
    """The steps, sharing one window and what earlier steps made."""

    def __init__(self, folder: Path):
        from PySide6.QtCore import QSettings

        from kbuilder.ui.app import create_application
        from kbuilder.ui.shell.main_window import MainWindow
        from kbuilder.ui.testing import ScriptedDialogs

        self.folder = folder
        self.app = create_application()
        _quiet_offscreen_notices()
        settings = QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat)
        self.window = MainWindow(settings=settings, recovery_dir=folder / "recovery")
        self.window.dialogs = ScriptedDialogs()
        self.window.resize(1280, 800)
        self.window.show()
        self.new_id = ""
        self.saved: dict = {}
        self.records: list[RunRecord] = []
        self.window.train_page.run_recorded.connect(self.records.append)

    @property
    def editor(self):
        return self.window.editor

    @property
    def graph(self):
        assert self.window.doc is not None
        return self.window.doc.graph

    def _item(self, node_id: str):
        return self.editor.scene.nodes[node_id]

    def _wait(self, condition: Callable[[], object], timeout: float = STEP_TIMEOUT) -> bool:
        """Let the window work (timers, worker messages) until ``condition`` holds."""
        from PySide6.QtCore import QEventLoop

        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                return False
            self.app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
            time.sleep(0.005)
        return True

    def _click(self, button) -> None:
        from PySide6.QtCore import Qt
        from PySide6.QtTest import QTest

        check(button.isEnabled(), f"the {button.text()!r} button is disabled")
        QTest.mouseClick(button, Qt.MouseButton.LeftButton)

    def _train(self, backend: str, epochs: int) -> None:
        """Set up the Train tab as a user would and press Train."""
        self.window._show_page(self.window.train_page)
        page = self.window.train_page
        index = page.backend.findData(backend)
        check(index >= 0, f"the backend {backend} is not offered")
        page.backend.setCurrentIndex(index)
        page.epochs.setValue(epochs)
        page.batch_size.setValue(64)
        check(self.window.project.training.epochs == epochs,
              "the epochs typed in the Train tab were not stored")
        self._click(page.train_button)

    # ------------------------------------------------------------------ steps
    def start(self) -> str:
        t0 = time.monotonic()
        check(self.window.isVisible(), "the window is not shown")
        check(self.window.loader.wait(STEP_TIMEOUT), f"the engine did not load: "
              f"{self.window.loader.error}")
        check(self.window.current_page() is self.window.gallery,
              "the start page is not shown")
        return f"window shown, layer catalog loaded in {time.monotonic() - t0:.1f} s"

    def new_from_template(self) -> str:
        from kbuilder.ui.testing import click

        card = self.window.gallery.cards["mlp_classifier"]
        click(card, card.rect().center())
        doc = self.window.doc
        check(doc is not None, "clicking the template card opened no project")
        check(self.window.current_page() is self.window.editor, "the canvas is not shown")
        n = len(self.graph)
        check(len(self.editor.scene.nodes) == n, "the canvas does not show every node")
        check(len(self.editor.scene.edges) == len(self.graph.edges),
              "the canvas does not show every connection")
        check(not doc.inference.errors(), f"the template has errors: {doc.inference.errors()}")
        out = self._item(self.graph.find("predictions").id)
        check(out.shape_text == "(None, 10)", f"predictions shows {out.shape_text!r}")
        return f"mlp_classifier: {n} nodes shown, predictions (None, 10)"

    def add_layer(self) -> str:
        from PySide6.QtCore import QPointF

        from kbuilder.ui.testing import drop_mime, to_viewport

        before = set(self.graph.node_ids)
        anchor = self.graph.find("dense_1").position
        view = self.editor.view
        target = QPointF(anchor[0] + 260, anchor[1] + 60)
        view.centerOn(target)
        mime = self.window.palette.mime_for("Dense")
        check(drop_mime(view, mime, to_viewport(view, target)), "the drop was refused")
        added = set(self.graph.node_ids) - before
        check(len(added) == 1, "dropping Dense did not add one node")
        self.new_id = added.pop()
        node = self.graph.node(self.new_id)
        check(node.class_name == "Dense", f"added {node.class_name}")
        check(self.new_id in self.editor.scene.nodes, "the new node is not on the canvas")
        item = self._item(self.new_id)
        check(item.status == "warning", "an unconnected layer should be marked as a to-do")
        return f"dropped Dense from the palette as '{node.name}'"

    def connect(self) -> str:
        from kbuilder.ui.testing import connect_by_drag

        src = self.graph.find("dense_1").id
        head = self.graph.find("predictions").id
        connect_by_drag(self.editor, src, 0, self.new_id, "inputs")
        edges = self.graph.edges_into(self.new_id)
        check(len(edges) == 1 and edges[0].src == src, "the drag made no connection")
        item = self._item(self.new_id)
        check(item.shape_text == "(None, 32)", f"the new layer shows {item.shape_text!r}")
        check(item.status == "ok", "the connected layer still shows a problem")
        # Into the head: the new connection replaces dense_1 -> predictions.
        connect_by_drag(self.editor, self.new_id, 0, head, "inputs")
        into_head = self.graph.edges_into(head)
        check([e.src for e in into_head] == [self.new_id], "the head is not fed by the new layer")
        check(self._item(head).params_text == "330 params",
              f"predictions shows {self._item(head).params_text!r}")
        # A cycle is refused, with the graph's reason in the status bar.
        n = len(self.graph.edges)
        connect_by_drag(self.editor, self.new_id, 0, src, "inputs")
        check(len(self.graph.edges) == n, "a connection making a cycle was accepted")
        message = self.window.statusBar().currentMessage()
        check("cycle" in message, f"no reason shown for the refusal: {message!r}")
        return ("dense_1 → new layer (None, 32) → predictions (330 params); "
                "a cycle was refused with its reason")

    def edit_parameter(self) -> str:
        from kbuilder.ui.testing import click_node, field, type_into

        click_node(self.editor, self.new_id)
        check(self.window.inspector.node_id == self.new_id, "the inspector shows another node")
        type_into(field(self.window, "units"), "16")
        node = self.graph.node(self.new_id)
        check(node.param("units") == 16, f"units is {node.param('units')}")
        item = self._item(self.new_id)
        check(item.shape_text == "(None, 16)", f"the node shows {item.shape_text!r}")
        head = self._item(self.graph.find("predictions").id)
        check(head.params_text == "170 params", f"predictions shows {head.params_text!r}")
        return "units = 16 typed in the inspector; the node shows (None, 16), the head 170 params"

    def undo_redo(self) -> str:
        from kbuilder.ui.testing import field

        units = field(self.window, "units")
        self.window.undo_action.trigger()
        check(self.graph.node(self.new_id).param("units") == 32, "undo did not restore 32")
        check(self._item(self.new_id).shape_text == "(None, 32)", "the node did not follow undo")
        check(units.value() == 32, "the inspector did not follow undo")
        self.window.redo_action.trigger()
        check(self.graph.node(self.new_id).param("units") == 16, "redo did not set 16 again")
        check(self._item(self.new_id).shape_text == "(None, 16)", "the node did not follow redo")
        return "undo → 32, redo → 16, on the graph, the node and the inspector"

    def save_and_reopen(self) -> str:
        path = self.folder / "selftest.kbproj"
        self.saved = {"graph": self.graph.to_dict(), "positions": self.graph.positions()}
        check(self.window.save_as(str(path)), "saving failed")
        check(path.exists(), "no file was written")
        check(not self.window.isWindowModified(), "the window still shows unsaved changes")
        check(self.window.open_project(str(path)), "reopening failed")
        check(self.graph.to_dict() == self.saved["graph"], "the reopened graph differs")
        check(self.graph.positions() == self.saved["positions"], "positions were not kept")
        check(len(self.editor.scene.nodes) == len(self.graph), "the canvas is incomplete")
        new = self._item(self.new_id)
        check(new.shape_text == "(None, 16)", f"the reopened node shows {new.shape_text!r}")
        return f"{path.name}: {len(self.graph)} nodes, identical after reopening"

    def generate_code(self) -> str:
        self.window.code_dock.show()
        self.window.code_dock.raise_()
        view = self.window.code_view
        check(view.wait(STEP_TIMEOUT), f"code generation failed: {view.error}")
        code = view.editor.toPlainText()
        name = self.graph.node(self.new_id).name
        check("def build_model" in code, "no build_model() in the code")
        check(f'name="{name}"' in code, f"the new layer '{name}' is not in the code")
        compile(code, "model.py", "exec")
        return f"{code.count(chr(10))} lines of Python with build_model(); it compiles"

    def choose_data(self) -> str:
        self.window._show_page(self.window.data_page)
        page = self.window.data_page
        source = page.source
        source.kind_combo.setCurrentIndex(source.kind_combo.findData("builtin"))
        source.dataset_combo.setCurrentIndex(source.dataset_combo.findData("digits"))
        check(page.wait(STEP_TIMEOUT), "the data did not load")
        check(page.error is None, f"digits did not load: {page.error}")
        check(sum(page.class_counts.totals()) == 1797, "the class counts do not add up to 1,797")
        check(page.grid.samples.rowCount() > 0, "no sample images are shown")
        check(self._wait(lambda: not page.checker.busy), "the checks did not finish")
        errors = [f.message for f in page.findings if f.severity == "error"]
        check(not errors, f"the checks found problems: {errors}")
        return (f"digits: 1,797 images in 10 classes, {page.grid.samples.rowCount()} shown; "
                f"{len(page.findings)} findings, no errors")

    def train_each_backend(self) -> str:
        from kbuilder.ui.jobs.run_controller import installed_backends

        backends = installed_backends()
        check(backends, "no training backend is installed")
        page = self.window.train_page
        done = []
        for backend in backends:
            before = len(self.records)
            self._train(backend, epochs=1)
            check(self._wait(lambda n=before: len(self.records) > n, RUN_TIMEOUT),
                  f"the {backend} run did not end")
            record = self.records[-1]
            check(record.status == "completed",
                  f"the {backend} run ended {record.status}: {record.message}")
            points = page.dashboard.point_counts()
            check(points["loss/batch"] > 0 and points["loss/train"] == 1,
                  f"the {backend} curves did not receive points: {points}")
            check(Path(record.model_file).is_file(), "no trained model was saved")
            done.append(f"{backend} {record.test_metrics.get('accuracy', 0):.2f}")
        check(len(self.window.project.runs) == len(backends), "not every run was recorded")
        return "test accuracy " + ", ".join(done) + " after one epoch each"

    def stop_run(self) -> str:
        from kbuilder.ui.jobs.run_controller import installed_backends

        page = self.window.train_page
        before = len(self.records)
        self._train(installed_backends()[0], epochs=500)
        # This run's first epoch (the dashboard still shows the last run's until it starts).
        check(self._wait(lambda: page.controller.state == "running"
                         and page.dashboard.point_counts()["loss/train"] >= 1, RUN_TIMEOUT),
              "the run did not finish an epoch")
        self._click(page.stop_button)
        check(self._wait(lambda: len(self.records) > before, RUN_TIMEOUT),
              "the stopped run did not end")
        record = self.records[-1]
        check(record.status == "stopped", f"the run ended {record.status}")
        epochs = len(record.history["loss"])
        check(1 <= epochs < 500, f"{plural(epochs, 'epoch')} recorded")
        check(Path(record.model_file).is_file(), "the stopped run kept no model")
        check(page.train_button.isEnabled(), "Train is not enabled again")
        return f"stopped after {plural(epochs, 'epoch')}; its model is kept"

    def evaluate(self) -> str:
        window = self.window
        window._show_page(window.results_page)
        page = window.results_page
        completed = [r for r in window.project.runs if r.status == "completed"]
        run_id = completed[-1].run_id
        page.show_run(run_id)
        view = page.evaluation
        view.split_combo.setCurrentIndex(view.split_combo.findData("test"))
        self._click(view.evaluate_button)
        check(self._wait(lambda: not page.job.busy, RUN_TIMEOUT), "the evaluation did not end")
        record = page.record(run_id)
        check(record is not None and record.evaluations,
              f"no evaluation was recorded: {view.status.text()}")
        evaluation = record.evaluations[-1]
        total = int(view.confusion.matrix.sum())
        check(total == evaluation["samples"] > 0,
              f"the confusion matrix counts {total} of {evaluation['samples']} samples")
        accuracy = evaluation["metrics"].get("accuracy")
        check(accuracy is not None, f"no accuracy in {evaluation['metrics']}")
        return f"test split: {total} samples, accuracy {accuracy:.3f}, confusion matrix shown"

    def export_onnx(self) -> str:
        page = self.window.results_page
        run_id = page.current_run_id()
        dialog = page.open_export_dialog(run_id)
        dialog.set_format("onnx")
        target = self.folder / "exports" / "model.onnx"
        target.parent.mkdir()
        dialog.set_output(target)
        self._click(dialog.export_button)
        check(self._wait(lambda: not dialog.job.busy, RUN_TIMEOUT), "the export did not end")
        check(not dialog.error, f"the export failed: {dialog.error}")
        rows = dialog.parity_rows()
        check(rows and all(row[-1] == "pass" for row in rows), f"parity: {rows}")
        check(target.is_file(), "no ONNX file was written")
        dialog.close()
        return f"{target.name}: largest difference from Keras {rows[0][2]} ({rows[0][1]})"

    def close(self) -> None:
        self.window.dialogs.unsaved = "discard"  # type: ignore[attr-defined]
        self.window.close()


def run(out: TextIO | None = None) -> int:
    """Run every step; returns 0 if all passed, else 1."""
    out = out or sys.stdout
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("KERAS_BACKEND", "numpy")
    with tempfile.TemporaryDirectory(prefix="kbuilder-selftest-") as tmp:
        session = _Session(Path(tmp))
        steps: list[tuple[str, Callable[[], str]]] = [
            ("start", session.start),
            ("new project from a template", session.new_from_template),
            ("add a layer from the palette", session.add_layer),
            ("connect it by dragging between ports", session.connect),
            ("edit a parameter in the inspector", session.edit_parameter),
            ("undo and redo", session.undo_redo),
            ("save and reopen", session.save_and_reopen),
            ("generate code", session.generate_code),
            ("choose the digits data", session.choose_data),
            ("train one epoch on each installed backend", session.train_each_backend),
            ("stop a run", session.stop_run),
            ("evaluate a run", session.evaluate),
            ("export it to ONNX with the parity check", session.export_onnx),
        ]
        passed = run_steps(steps, out)
        session.close()
        print("selftest: all steps passed" if passed else "selftest: FAILED", file=out)
        return 0 if passed else 1

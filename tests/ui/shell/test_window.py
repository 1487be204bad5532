"""The main window: start page, files, unsaved changes, recovery, settings, live panels."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from kbuilder.graph.commands import SetParamCommand
from kbuilder.graph.project import Project, save_project
from kbuilder.graph.templates import get_template
from kbuilder.ui.shell import theme
from kbuilder.ui.testing import click, click_node, field, type_into


def set_units(window, name: str, units: int) -> None:
    graph = window.doc.graph
    nid = graph.find(name).id
    window.doc.edit(lambda: SetParamCommand(graph, nid, "units", units))


def shown(window) -> dict[str, tuple[str, str]]:
    """What the canvas shows of each node: name -> (shape, parameters)."""
    return {item.name: (item.shape_text, item.params_text)
            for item in window.editor.scene.nodes.values()}


def test_start_page_then_a_template(window):
    w = window
    assert w.current_page() is w.gallery
    assert not w.palette_dock.isVisible() and not w.inspector_dock.isVisible()
    assert w.windowTitle() == "kbuilder"
    card = w.gallery.cards["cnn_classifier"]
    click(card, card.rect().center())
    assert w.current_page() is w.editor
    assert w.palette_dock.isVisible() and w.inspector_dock.isVisible()
    assert w.windowTitle() == "cnn_classifier (unsaved)[*] — kbuilder"
    assert not w.isWindowModified()
    assert shown(w)["predictions"] == ("(None, 10)", "31,370 params")
    assert w._model_label.text() == "7 layers · 50,186 params"


def test_standard_shortcuts(window):
    w = window
    S = QKeySequence.StandardKey
    for action, key in ((w.new_action, S.New), (w.open_action, S.Open), (w.save_action, S.Save),
                        (w.undo_action, S.Undo), (w.copy_action, S.Copy),
                        (w.paste_action, S.Paste), (w.quit_action, S.Quit)):
        assert action.shortcut() == QKeySequence(key), action.text()
    assert w.redo_action.shortcuts()


def test_save_and_reopen_shows_the_same_model(mlp_window, make_window, tmp_path):
    w = mlp_window
    set_units(w, "dense", 99)
    before = shown(w)
    path = tmp_path / "my model.kbproj"
    w.dialogs.save_path = str(path)
    w.save_action.trigger()  # no path yet: asks where, like Save As
    assert path.exists() and not w.isWindowModified()
    assert w.windowTitle() == "my model.kbproj[*] — kbuilder"
    graph = w.doc.graph.to_dict()
    positions = w.doc.graph.positions()
    # A second window (a restart) opens it through File > Open and shows the same.
    other = make_window()
    assert str(path.resolve()) == other.recent_files()[0]
    assert other.gallery.recent.item(0).data(Qt.ItemDataRole.UserRole) == str(path.resolve())
    other.dialogs.open_path = str(path)
    other.open_action.trigger()
    assert other.doc.graph.to_dict() == graph
    assert other.doc.graph.positions() == positions
    assert shown(other) == before
    assert shown(other)["dense"] == ("(None, 99)", f"{64 * 99 + 99:,} params")


def test_unsaved_changes_are_asked_about(mlp_window):
    w = mlp_window
    set_units(w, "dense", 5)
    assert w.isWindowModified()
    w.dialogs.unsaved = "cancel"
    assert not w.close()
    assert w.isVisible() and w.dialogs.asked_unsaved
    assert not w.new_from_template("cnn_classifier")  # cancelled: the model stays
    assert w.doc.graph.name == "mlp_classifier"
    w.dialogs.unsaved = "discard"
    assert w.new_from_template("cnn_classifier")
    assert w.doc.graph.name == "cnn_classifier"


def test_workspace_tabs_keep_the_editing_panels_with_the_model(mlp_window):
    w = mlp_window
    set_units(w, "dense", 5)
    assert w.undo_action.isEnabled() and w.palette_dock.isVisible()
    w.workspace.setCurrentWidget(w.train_page)
    assert w.current_page() is w.train_page
    assert not w.palette_dock.isVisible() and not w.inspector_dock.isVisible()
    assert not w.undo_action.isEnabled()  # Ctrl+Z on the Train tab must not edit the model
    w.workspace.setCurrentWidget(w.model_page)
    assert w.current_page() is w.editor
    assert w.palette_dock.isVisible() and w.inspector_dock.isVisible()
    assert w.undo_action.isEnabled()


def drag_separator(page, dock, dx: int) -> None:
    """Drag the separator on ``dock``'s right edge by ``dx`` pixels, as a user would."""
    x, y = dock.geometry().right() + 3, page.height() // 3
    QTest.mousePress(page, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     QPoint(x, y))
    for step in range(1, 9):
        QTest.mouseMove(page, QPoint(x + dx * step // 8, y))
        QApplication.processEvents()
    QTest.mouseRelease(page, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                       QPoint(x + dx, y))


def test_docks_keep_their_place_and_size_across_tabs_and_resizes(qtbot, mlp_window):
    """Issue 12 item 22: a visit to the Train tab shrank the palette; making the window
    small and large again left the panels ~60 px wide; the tab bar moved between pages,
    so a click where "Train" was landed on the palette's float button."""
    w = mlp_window
    bar = w.workspace.tabBar()

    def layout():
        QApplication.processEvents()
        QApplication.processEvents()
        return (w.palette_dock.width(), w.inspector_dock.width(),
                bar.mapTo(w, QPoint(0, 0)), bar.tabRect(2))

    palette, inspector, origin, train_tab = layout()
    assert palette >= 200 and inspector >= 280  # sensible from the start
    w.workspace.setCurrentWidget(w.train_page)
    assert layout()[2:] == (origin, train_tab)  # the tab bar stays put
    click(bar, train_tab.center())
    assert w.current_page() is w.train_page
    w.workspace.setCurrentWidget(w.model_page)
    assert layout() == (palette, inspector, origin, train_tab)

    drag_separator(w.model_page, w.palette_dock, 150)  # the user widens the palette
    palette = layout()[0]
    assert palette >= 350
    w.resize(w.minimumSizeHint().width(), 500)
    squeezed = layout()
    assert squeezed[0] >= 180 and squeezed[1] >= 240  # never squeezed to nothing
    assert w.editor.width() >= 300  # the canvas keeps room too
    w.resize(1280, 800)
    assert layout() == (palette, inspector, origin, train_tab)
    # Resized while another tab is shown: the same once the Model tab is back.
    w.workspace.setCurrentWidget(w.results_page)
    w.resize(w.minimumSizeHint().width(), 500)
    QApplication.processEvents()
    w.resize(1280, 800)
    w.workspace.setCurrentWidget(w.model_page)
    assert layout() == (palette, inspector, origin, train_tab)


def test_undo_redo_actions_follow_the_history(mlp_window):
    w = mlp_window
    assert not w.undo_action.isEnabled()
    set_units(w, "dense", 5)
    assert w.undo_action.isEnabled() and w.undo_action.text() == "&Undo set units of dense"
    w.undo_action.trigger()
    assert not w.undo_action.isEnabled() and w.redo_action.isEnabled()
    assert not w.isWindowModified()
    w.redo_action.trigger()
    assert w.isWindowModified()


def test_a_file_that_cannot_be_opened_leaves_the_model_open(mlp_window, tmp_path):
    w = mlp_window
    garbage = tmp_path / "garbage.kbproj"
    garbage.write_bytes(b"not a project")
    assert not w.open_project(garbage)
    assert w.doc.graph.name == "mlp_classifier"
    assert "garbage.kbproj" in w.statusBar().currentMessage()
    assert w.dialogs.errors


def test_dropping_a_project_file_on_the_window_opens_it(qtbot, window, tmp_path):
    path = tmp_path / "dropped.kbproj"
    save_project(Project.new(get_template("residual_cnn").build()), path)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    actions = Qt.DropAction.CopyAction
    enter = QDragEnterEvent(QPoint(200, 200), actions, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(200, 200), actions, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, drop)
    qtbot.waitUntil(lambda: window.doc is not None, timeout=5000)
    assert window.doc.graph.name == "residual_cnn"
    assert window.doc.project.path == path


def test_autosave_and_recovery_after_a_crash(qtbot, make_window, tmp_path):
    w = make_window(autosave_ms=50)
    assert w.new_from_template("mlp_classifier")
    recovery = w.autosave.path
    assert not recovery.exists()  # nothing to keep yet
    set_units(w, "dense", 77)
    qtbot.waitUntil(recovery.exists, timeout=3000)
    edited = w.doc.graph.to_dict()
    # A crash: the process is gone but its recovery file stays. Pretend it was another
    # (dead) process's file by giving it that process's pid.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    pid = int(dead.stdout)
    note = json.loads(w.autosave.note.read_text())
    note["pid"], note["started"] = pid, ""
    crashed = recovery.with_name(f"autosave-{pid}.kbproj")
    os.replace(recovery, crashed)
    crashed.with_suffix(".json").write_text(json.dumps(note))
    w.autosave.note.unlink()
    w.autosave.timer.stop()
    # The next start offers to recover it.
    again = make_window()
    assert again.gallery.recovery.isVisible()
    assert "mlp_classifier" in again.gallery.recovery_label.text()
    again.gallery.recover_button.click()
    assert again.doc.graph.to_dict() == edited
    assert again.isWindowModified()
    assert not crashed.exists()
    assert again.autosave.path.exists()  # the work is protected again at once


def test_window_state_and_theme_are_remembered(make_window):
    w = make_window()
    assert w.new_from_template("mlp_classifier")
    w.inspector_dock.hide()
    w.set_theme("dark")
    assert theme.colors().dark
    w.close()
    try:
        again = make_window()
        assert again.theme.mode == "dark"
        assert again.new_from_template("mlp_classifier")
        assert again.inspector_dock.isHidden()
        assert not again.palette_dock.isHidden()
    finally:
        theme.manager().set_mode("system")


def test_summary_and_code_are_live(qtbot, mlp_window, tmp_path):
    w = mlp_window
    w.code_dock.show()
    w.code_dock.raise_()
    assert w.code_view.wait(120)
    assert 'layers.Dense(128, activation="relu", name="dense")' in w.code_view.code
    click_node(w.editor, w.doc.graph.find("dense").id)
    type_into(field(w, "units"), "48")
    qtbot.waitUntil(lambda: "layers.Dense(48," in w.code_view.code, timeout=60_000)
    model = w.summary.model
    rows = {model.data(model.index(r, 0)): model.data(model.index(r, 3))
            for r in range(model.rowCount())}
    assert rows["dense"] == f"{64 * 48 + 48:,}"
    w.summary.table.clicked.emit(model.index(model.row_of(w.doc.graph.find("dropout").id), 0))
    assert w.editor.selected_node_ids() == [w.doc.graph.find("dropout").id]
    target = tmp_path / "model.py"
    w.dialogs.save_path = str(target)
    w.export_code_action.trigger()
    assert "layers.Dense(48," in target.read_text()


def test_save_model_as_keras_and_import_it(qtbot, mlp_window, tmp_path):
    w = mlp_window
    target = tmp_path / "model.keras"
    w.dialogs.save_path = str(tmp_path / "model")  # the suffix is added
    w.export_action.trigger()  # no trained run: the model being edited, built in a worker
    qtbot.waitUntil(lambda: not w.model_saver.busy, timeout=180_000)
    assert target.exists(), w.dialogs.errors
    assert not w.dialogs.asked_choice  # nothing to choose from
    names = {n.name for n in w.doc.graph.nodes if n.kind == "layer"}
    assert w.import_model(str(target))
    assert {n.name for n in w.doc.graph.nodes if n.kind == "layer"} == names
    assert w.doc.project.path is None and "(unsaved)" in w.windowTitle()
    assert shown(w)["predictions"][0] == "(None, 10)"


@pytest.mark.slow
def test_selftest_command_passes():
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run([sys.executable, "-m", "kbuilder", "selftest"], capture_output=True,
                          text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("[")]
    assert len(lines) == 13 and all(" ok " in line for line in lines)
    assert "train one epoch on each installed backend" in proc.stdout
    assert "all steps passed" in proc.stdout


def test_selftest_fails_when_a_step_does_not_do_what_it_should(qapp, loader, monkeypatch):
    import io

    from kbuilder.runtime.checklist import StepFailure
    from kbuilder.ui.shell import selftest

    def broken(self):
        raise StepFailure("the code view shows nothing")

    monkeypatch.setattr(selftest._Session, "generate_code", broken)
    out = io.StringIO()
    assert selftest.run(out) == 1
    text = out.getvalue()
    assert "[7/13] ok    save and reopen" in text
    assert "[8/13] FAIL  generate code: the code view shows nothing" in text
    assert text.rstrip().endswith("selftest: FAILED")


def test_a_model_with_code_is_opened_only_when_the_user_trusts_it(mlp_window, tmp_path):
    import keras

    w = mlp_window
    x = keras.Input((4,))
    y = keras.layers.Lambda(lambda t: t + 1.0, name="my_lambda")(keras.layers.Dense(3)(x))
    path = tmp_path / "risky.keras"
    keras.Model(x, y).save(path)
    before = w.doc.graph.to_dict()

    w.dialogs.trust = False
    assert not w.import_model(str(path))
    name, message = w.dialogs.asked_trust[-1]
    assert name == "risky.keras" and "'my_lambda' (Lambda) contains Python code" in message
    assert "Did not open risky.keras" in w.statusBar().currentMessage()
    assert w.doc.graph.to_dict() == before and not w.dialogs.errors

    # Trusted, Keras reads it, and the Lambda is then named as what cannot become a node.
    w.dialogs.trust = True
    assert not w.import_model(str(path))
    assert len(w.dialogs.asked_trust) == 2
    _title, error = w.dialogs.errors[-1]
    assert "'my_lambda' (Lambda) runs Python code" in error
    assert w.doc.graph.to_dict() == before


def test_a_template_or_project_opens_fitted_to_the_canvas(window, tmp_path):
    """Issue 12 item 26: a template did not fit the view when opened (it was fitted to the
    canvas's size before the panels appeared, and tall ones opened at their top)."""
    w = window

    def whole_model_visible() -> bool:
        QApplication.processEvents()
        view = w.editor.view
        visible = view.mapToScene(view.viewport().rect()).boundingRect()
        return visible.contains(w.editor.scene.nodes_rect())

    card = w.gallery.cards["multi_input"]  # the first model of the session: panels appear
    click(card, card.rect().center())
    assert whole_model_visible()
    path = tmp_path / "cnn.kbproj"
    save_project(Project.new(get_template("cnn_classifier").build()), path)
    w.dialogs.unsaved = "discard"
    assert w.open_project(path)
    assert whole_model_visible()


def test_counts_agree_with_their_nouns(window):
    """Issue 12 item 26: the status bar said "1 layers"."""
    from kbuilder.graph.commands import (
        AddNodeCommand,
        ConnectCommand,
        History,
        new_input_node,
        new_layer_node,
        new_output_node,
    )
    from kbuilder.graph.model import Graph

    graph, history = Graph("one"), History()
    source = new_input_node(graph, [4], "float32", "x")
    history.push(AddNodeCommand(graph, source))
    dense = new_layer_node(graph, "Dense", {"units": 1}, None)
    history.push(AddNodeCommand(graph, dense))
    sink = new_output_node(graph, "y")
    history.push(AddNodeCommand(graph, sink))
    history.push(ConnectCommand(graph, source.id, 0, dense.id, "inputs"))
    history.push(ConnectCommand(graph, dense.id, 0, sink.id))
    window.set_project(Project.new(graph))
    assert window._model_label.text() == "1 layer · 5 params"

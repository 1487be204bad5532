"""Training settings become ranges from the Train tab: the "sweep this" button beside a
field asks the range in the inspector's dialog, the setting is marked, the edit undoes,
and the Sweep tab sees the same search space."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from kbuilder.graph.sweeps import SweepParam
from kbuilder.ui.shell.sweep_range import QtRangeDialog
from tests.ui.train.test_train_page import click

SHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"


def answer_dialog(qtbot, fill) -> list[str]:
    """When the range dialog opens, ``fill`` it and press OK (as a user would); returns
    the dialog's title once it was answered."""
    seen: list[str] = []

    def find() -> None:
        dialogs = [w for w in QApplication.topLevelWidgets()
                   if isinstance(w, QtRangeDialog) and w.isVisible()]
        if not dialogs:
            QTimer.singleShot(20, find)
            return
        dialog = dialogs[0]
        seen.append(dialog.windowTitle())
        fill(dialog)
        from PySide6.QtWidgets import QDialogButtonBox

        box = dialog.findChild(QDialogButtonBox)
        click(box.button(QDialogButtonBox.StandardButton.Ok))

    QTimer.singleShot(0, find)
    return seen


def test_a_training_setting_becomes_a_range_from_the_train_tab(mlp_window, qtbot):
    window = mlp_window
    window._show_page(window.train_page)
    page = window.train_page
    sweeps = page.sweeps
    assert set(sweeps.buttons) == {"learning_rate", "batch_size", "epochs", "optimizer",
                                   "early_stopping.patience",
                                   "reduce_lr_on_plateau.patience"}
    label, plain = sweeps.labels["learning_rate"]
    assert plain == "Learning rate" and label.text() == "Learning rate"

    def lr_range(dialog):
        dialog.low.setValue(1e-4)
        dialog.high.setValue(1e-2)
        dialog.log.setChecked(True)

    seen = answer_dialog(qtbot, lr_range)
    click(sweeps.buttons["learning_rate"])
    assert seen == ["Sweep learning_rate"]
    assert window.project.sweep.params == (
        SweepParam("learning_rate", None, "float", 1e-4, 1e-2, True),)
    assert label.text() == "Learning rate ⟳"
    assert "Swept: 0.0001 .. 0.01 (log)" in label.toolTip()
    assert "Swept" in sweeps.buttons["learning_rate"].toolTip()
    assert window.isWindowModified()

    def optimizers(dialog):
        assert "adam" in dialog.choices.text()
        dialog.choices.setText("adam, sgd")

    seen = answer_dialog(qtbot, optimizers)
    click(sweeps.buttons["optimizer"])
    assert window.project.sweep.find(None, "optimizer").choices == ("adam", "sgd")
    assert sweeps.labels["optimizer"][0].text() == "Optimizer ⟳"
    # The Sweep tab lists the same search space.
    window._show_page(window.sweep_page)
    assert "learning_rate: 0.0001 .. 0.01 (log)" in window.sweep_page.space_label.text()
    assert "optimizer: 'adam' | 'sgd'" in window.sweep_page.space_label.text()
    window._show_page(page)
    window.resize(1280, 820)
    qtbot.wait(100)
    SHOTS.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(SHOTS / "train_tab_sweep.png"))

    # A swept setting's button offers to stop sweeping it.
    click(sweeps.buttons["optimizer"])
    actions = [a.text() for a in sweeps.menu.actions()]
    assert actions == ["Change the range of optimizer…", "Stop sweeping optimizer"]
    sweeps.menu.actions()[1].trigger()
    sweeps.menu.close()
    assert window.project.sweep.find(None, "optimizer") is None
    assert sweeps.labels["optimizer"][0].text() == "Optimizer"
    # Every step undoes like an edit, and the marks follow.
    window.doc.undo()
    assert window.project.sweep.find(None, "optimizer") is not None
    assert sweeps.labels["optimizer"][0].text() == "Optimizer ⟳"
    window.doc.undo()
    window.doc.undo()
    assert window.project.sweep is None
    assert label.text() == "Learning rate" and label.styleSheet() == ""


def test_a_patience_range_refused_in_the_dialog_stores_nothing(mlp_window, qtbot):
    window = mlp_window
    window._show_page(window.train_page)
    sweeps = window.train_page.sweeps
    errors = []

    def backwards(dialog):
        dialog.low.setValue(9)
        dialog.high.setValue(2)
        dialog._accept()  # refused: the dialog stays open and says why
        errors.append(dialog.error.text())
        dialog.high.setValue(12)

    answer_dialog(qtbot, backwards)
    click(sweeps.buttons["early_stopping.patience"])
    assert "low end must be below the high end" in errors[0]
    assert window.project.sweep.params == (
        SweepParam("early_stopping.patience", None, "int", 9, 12),)
    assert sweeps.labels["early_stopping.patience"][0].text() == "patience ⟳"
    assert sweeps.labels["reduce_lr_on_plateau.patience"][0].text() == "patience"

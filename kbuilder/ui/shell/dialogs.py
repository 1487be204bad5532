"""The questions the window asks the user, in one replaceable object.

Tests and the self-test replace ``MainWindow.dialogs`` with scripted answers: a modal
dialog would block an offscreen run forever.
"""

from __future__ import annotations

from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox, QWidget

PROJECT_FILTER = "kbuilder projects (*.kbproj)"
OPEN_FILTER = ("Projects and models (*.kbproj *.keras *.h5);;kbuilder projects (*.kbproj);;"
               "Keras models (*.keras *.h5);;All files (*)")
MODEL_FILTER = "Keras models (*.keras *.h5);;All files (*)"
KERAS_FILTER = "Keras model (*.keras)"


class QtDialogs:
    """Asks with standard Qt dialogs, parented to ``parent``."""

    def __init__(self, parent: QWidget):
        self.parent = parent

    def ask_open_path(self, title: str, file_filter: str, folder: str = "") -> str:
        path, _ = QFileDialog.getOpenFileName(self.parent, title, folder, file_filter)
        return path

    def ask_save_path(self, title: str, file_filter: str, suggested: str = "") -> str:
        path, _ = QFileDialog.getSaveFileName(self.parent, title, suggested, file_filter)
        return path

    def ask_folder(self, title: str, folder: str = "") -> str:
        return QFileDialog.getExistingDirectory(self.parent, title, folder)

    def ask_unsaved(self, name: str) -> str:
        """"save", "discard" or "cancel" for a project with unsaved changes."""
        box = QMessageBox(self.parent)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Unsaved changes")
        box.setText(f"Save the changes to '{name}'?")
        box.setInformativeText("Your changes will be lost if you don't save them.")
        box.setStandardButtons(QMessageBox.StandardButton.Save
                               | QMessageBox.StandardButton.Discard
                               | QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Save)
        answer = box.exec()
        return {QMessageBox.StandardButton.Save: "save",
                QMessageBox.StandardButton.Discard: "discard"}.get(
                    QMessageBox.StandardButton(answer), "cancel")

    def ask_stop_training(self) -> bool:
        """Whether to stop the running training and close the window (``False``: keep both)."""
        box = QMessageBox(QMessageBox.Icon.Question, "Training is running",
                          "Training is running. Stop it and close?",
                          QMessageBox.StandardButton.Cancel, self.parent)
        box.setInformativeText("Stopping ends the run after its current batch; the model "
                               "trained so far and the run's record are kept.")
        stop = box.addButton("Stop && Close", QMessageBox.ButtonRole.AcceptRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return box.clickedButton() is stop

    def ask_trust(self, name: str, message: str) -> bool:
        answer = QMessageBox.warning(
            self.parent, "This model contains code",
            f"{message}\n\nOpening '{name}' runs the Python code stored in it. Only do this "
            "for files you trust. Open it anyway?",
            QMessageBox.StandardButton.Open | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        return answer == QMessageBox.StandardButton.Open

    def ask_confirm(self, title: str, message: str, action: str = "OK") -> bool:
        """Whether to go ahead with ``action`` (e.g. "Delete"), which cannot be undone."""
        box = QMessageBox(QMessageBox.Icon.Question, title, message,
                          QMessageBox.StandardButton.Cancel, self.parent)
        go = box.addButton(action, QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return box.clickedButton() is go

    def ask_choice(self, title: str, message: str, choices: list[str]) -> int | None:
        """The index of the choice the user picked (the first is preselected), or ``None``
        when they cancelled."""
        text, ok = QInputDialog.getItem(self.parent, title, message, choices, 0, False)
        return choices.index(text) if ok and text in choices else None

    def show_info(self, title: str, message: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Information, title, message,
                          QMessageBox.StandardButton.Ok, self.parent)
        box.setModal(False)
        box.show()

    def show_error(self, title: str, message: str) -> None:
        # Not modal: the window stays usable, and an offscreen run never blocks on it.
        box = QMessageBox(QMessageBox.Icon.Warning, title, message,
                          QMessageBox.StandardButton.Ok, self.parent)
        box.setModal(False)
        box.show()

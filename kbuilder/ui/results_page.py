"""The Results tab: runs, their curves overlaid, evaluation and export (issue 7)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from kbuilder.ui.document import QtDocument


class QtResultsPage(QWidget):
    """Placeholder until the runs and evaluation views land.

    Signals:
        open_model_requested(path): the user asked to open a run's trained ``.keras``.
    """

    open_model_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.doc: QtDocument | None = None
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Results — coming soon", self))

    def set_document(self, doc: QtDocument | None) -> None:
        self.doc = doc

    def show_run(self, run_id: str) -> None:
        """Select the run ``run_id`` (just recorded) in the list."""

"""The Train tab: training settings, Train/Pause/Stop and the live dashboard (issue 7)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from kbuilder.ui.document import QtDocument


class QtTrainPage(QWidget):
    """Placeholder until the training panel lands.

    Signals:
        settings_changed(): ``project.training`` was changed by the user.
        run_recorded(record): a run ended; its record was appended to ``project.runs``.
    """

    settings_changed = Signal()
    run_recorded = Signal(object)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.doc: QtDocument | None = None
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Training — coming soon", self))

    def set_document(self, doc: QtDocument | None) -> None:
        self.doc = doc

"""The Data tab: choose the data, preview it and check it against the model (issue 7)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from kbuilder.ui.document import QtDocument


class QtDataPage(QWidget):
    """Placeholder until the data panel lands.

    Signals:
        data_changed(): ``project.data`` was changed by the user.
    """

    data_changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.doc: QtDocument | None = None
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Data — coming soon", self))

    def set_document(self, doc: QtDocument | None) -> None:
        self.doc = doc

"""The find bar of the canvas (Ctrl+F): a layer by name or type, and the next match.

The bar only takes the text and the keys; the editor searches the graph (and the blocks
inside it) and shows each match. Typing jumps to the first match, as a browser's find
does; Enter (or F3) goes to the next one, Shift+Enter (Shift+F3) to the previous one,
Escape closes the bar.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QLineEdit, QToolButton, QWidget


class QtFindBar(QFrame):
    """A search field with previous/next buttons and a "3 of 17" count.

    Signals:
        search(text): the text changed (the editor finds and shows the first match).
        step(forward): go to the next (``True``) or previous match.
        closed(): the bar was closed.
    """

    search = Signal(str)
    step = Signal(bool)
    closed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setObjectName("canvasFindBar")
        row = QHBoxLayout(self)
        row.setContentsMargins(6, 3, 6, 3)
        self.field = QLineEdit(self)
        self.field.setPlaceholderText("Find a layer by name or type (e.g. block_3 or Conv2D)")
        self.field.setClearButtonEnabled(True)
        self.field.textChanged.connect(self.search)
        self.field.installEventFilter(self)
        self.count = QLabel(self)
        self.count.setObjectName("muted")
        self.count.setMinimumWidth(90)
        self.previous = self._button("‹", "Previous match (Shift+Enter)", False)
        self.next = self._button("›", "Next match (Enter)", True)
        close = QToolButton(self)
        close.setText("✕")
        close.setToolTip("Close (Escape)")
        close.setAutoRaise(True)
        close.clicked.connect(self.close_bar)
        row.addWidget(QLabel("Find:", self))
        row.addWidget(self.field, 1)
        row.addWidget(self.count)
        row.addWidget(self.previous)
        row.addWidget(self.next)
        row.addWidget(close)
        self.hide()

    def _button(self, text: str, tip: str, forward: bool) -> QToolButton:
        button = QToolButton(self)
        button.setText(text)
        button.setToolTip(tip)
        button.setAutoRaise(True)
        button.clicked.connect(lambda: self.step.emit(forward))
        return button

    def open_bar(self) -> None:
        """Show the bar with its text selected, ready to type over."""
        self.show()
        self.field.setFocus()
        self.field.selectAll()
        if self.field.text():
            self.search.emit(self.field.text())

    def close_bar(self) -> None:
        self.hide()
        self.closed.emit()

    def set_count(self, index: int, total: int) -> None:
        """Show "index+1 of total", or that nothing matches."""
        if not self.field.text():
            self.count.setText("")
        elif total == 0:
            self.count.setText("no match")
        else:
            self.count.setText(f"{index + 1} of {total}")
        self.previous.setEnabled(total > 1)
        self.next.setEnabled(total > 1)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.field and event.type() == QEvent.Type.KeyPress:
            assert isinstance(event, QKeyEvent)
            key, shift = event.key(), bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_F3):
                self.step.emit(not shift)
                return True
            if key == Qt.Key.Key_Escape:
                self.close_bar()
                return True
        return False

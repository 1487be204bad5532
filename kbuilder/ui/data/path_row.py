"""A read-only path with its "Choose…" button, as each page of the source form has one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QHBoxLayout, QLineEdit, QPushButton, QWidget


def path_row(parent: QWidget, placeholder: str,
             choose: Callable[[], None]) -> tuple[QLineEdit, QPushButton, QHBoxLayout]:
    """The path field, its button (calls ``choose``) and the row holding them."""
    edit = QLineEdit(parent)
    edit.setReadOnly(True)
    edit.setPlaceholderText(placeholder)
    button = QPushButton("Choose…", parent)
    button.clicked.connect(choose)
    row = QHBoxLayout()
    row.addWidget(edit, 1)
    row.addWidget(button)
    return edit, button, row


def dialogs_of(widget: QWidget) -> Any:
    """The window's dialogs (scripted in tests), or plain ones for a widget on its own."""
    from kbuilder.ui.shell.dialogs import QtDialogs

    return getattr(widget.window(), "dialogs", None) or QtDialogs(widget)


def start_folder(current: str) -> str:
    """Where a file dialog opens: the folder of the current choice."""
    return str(Path(current).parent) if current else ""

"""The desktop app (PySide6): windows, canvas, panels. Never imports keras or a backend."""

from kbuilder.ui.qt_compat import protect_none

# Before any Qt call can leak references to None (PySide6 6.12 on Python 3.11).
protect_none()

"""The code view: the model as readable Python, syntax highlighted, live, copy and save.

Generating code builds Keras layers to leave out default arguments, which can take
seconds the first time; so it runs in a background thread on a copy of the graph, a
moment after the last edit and only while the panel is visible. A result that arrives
after a newer edit is dropped.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QGuiApplication,
    QSyntaxHighlighter,
    QTextCharFormat,
    QTextDocument,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from kbuilder.ui.document import QtDocument
from kbuilder.ui.jobs.background_job import QtBackgroundJob
from kbuilder.ui.shell import icons, theme

LIGHT_STYLE, DARK_STYLE = "friendly", "one-dark"
CODE_FONT = QFont("DejaVu Sans Mono", 9)


class QtPygmentsHighlighter(QSyntaxHighlighter):
    """Highlights Python with Pygments: the whole text is lexed once per change (so
    multi-line strings are right), and each block applies its line's runs."""

    def __init__(self, document: QTextDocument, dark: bool = False):
        super().__init__(document)
        self._runs: dict[int, list[tuple[int, int, QTextCharFormat]]] = {}
        self._formats: dict = {}
        self.background = QColor()
        self.set_dark(dark)

    def set_dark(self, dark: bool) -> None:
        from pygments.styles import get_style_by_name

        self._style = get_style_by_name(DARK_STYLE if dark else LIGHT_STYLE)
        self.background = QColor(self._style.background_color)
        self._formats.clear()

    def _format(self, token) -> QTextCharFormat:
        fmt = self._formats.get(token)
        if fmt is None:
            style = self._style.style_for_token(token)
            fmt = QTextCharFormat()
            if style.get("color"):
                fmt.setForeground(QColor("#" + style["color"]))
            if style.get("bold"):
                fmt.setFontWeight(QFont.Weight.Bold)
            if style.get("italic"):
                fmt.setFontItalic(True)
            self._formats[token] = fmt
        return fmt

    def prepare(self, text: str) -> None:
        """Lex ``text`` (call before the document gets it)."""
        from pygments.lexers import PythonLexer

        runs: dict[int, list[tuple[int, int, QTextCharFormat]]] = {}
        line, col = 0, 0
        for _, token, value in PythonLexer().get_tokens_unprocessed(text):
            fmt = self._format(token)
            for i, part in enumerate(value.split("\n")):
                if i:
                    line, col = line + 1, 0
                if part:
                    runs.setdefault(line, []).append((col, len(part), fmt))
                    col += len(part)
        self._runs = runs

    def highlightBlock(self, text: str) -> None:
        for start, length, fmt in self._runs.get(self.currentBlock().blockNumber(), ()):
            self.setFormat(start, length, fmt)


class QtCodeView(QWidget):
    """Signals: generated(code) after each successful generation."""

    generated = Signal(str)

    def __init__(self, parent: QWidget | None = None, delay_ms: int = 300):
        super().__init__(parent)
        self.doc: QtDocument | None = None
        self._stale = True
        self.code = ""
        self.error = ""
        self.editor = QPlainTextEdit(self)
        self.editor.setReadOnly(True)
        self.editor.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.editor.setFont(CODE_FONT)
        self.editor.setTabStopDistance(4 * self.editor.fontMetrics().horizontalAdvance(" "))
        self.highlighter = QtPygmentsHighlighter(self.editor.document(), theme.colors().dark)
        self.status = QLabel(self)
        self.status.setObjectName("muted")
        self.status.setWordWrap(True)
        self.copy_button = self._button("Copy", "copy", self.copy_to_clipboard,
                                        "Copy the code to the clipboard")
        self.save_button = self._button("Save as…", "save", lambda: self.save_as(),
                                        "Save the code as a Python file")
        bar = QHBoxLayout()
        bar.setContentsMargins(6, 4, 6, 0)
        bar.addWidget(self.status, 1)
        bar.addWidget(self.copy_button)
        bar.addWidget(self.save_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(bar)
        layout.addWidget(self.editor, 1)
        self._job = QtBackgroundJob("codegen", self)
        self._job.finished.connect(self._on_finished)
        self._timer = QTimer(self, singleShot=True, interval=delay_ms)
        self._timer.timeout.connect(self._regenerate_if_shown)
        theme.manager().changed.connect(self._on_theme)
        self._apply_colors()

    def _button(self, text: str, icon: str, slot, tip: str) -> QToolButton:
        button = QToolButton(self)
        button.setText(text)
        button.setIcon(icons.icon(icon))
        button.setToolTip(tip)
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        button.setAutoRaise(True)
        button.clicked.connect(slot)
        return button

    # -------------------------------------------------------------- document
    def set_document(self, doc: QtDocument | None) -> None:
        if self.doc is not None:
            self.doc.history_changed.disconnect(self._schedule)
        self.doc = doc
        self.code, self.error = "", ""
        self._set_text("")
        if doc is not None:
            doc.history_changed.connect(self._schedule)
        self._schedule()

    def _schedule(self) -> None:
        self._stale = True
        self._job.cancel()  # a generation running now is of an earlier graph
        if self.isVisible() and self.doc is not None:
            self._timer.start()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._stale and self.doc is not None:
            self._timer.start()

    def _regenerate_if_shown(self) -> None:
        # A dock tab shown for a moment (while the layout settles) is no reason to work.
        if self.isVisible():
            self.regenerate()

    @property
    def up_to_date(self) -> bool:
        return not self._stale and not self._job.busy

    def regenerate(self) -> None:
        """Generate the code of the current graph in the background."""
        if self.doc is None:
            return
        self._stale = False
        graph = self.doc.graph.copy()  # the thread must not read a graph being edited
        self.status.setText("Generating code…")

        def work(progress) -> tuple[str, str]:
            try:
                from kbuilder.graph.codegen import generate_model_code

                return generate_model_code(graph), ""
            except Exception as exc:  # shown in the panel; the last good code stays
                return "", str(exc) or type(exc).__name__

        self._job.start(work)

    def _on_finished(self, result: tuple[str, str]) -> None:
        code, error = result
        self.error = error
        if error:
            self.status.setText(f"The code is not up to date: {error}")
            self.status.setObjectName("errorLabel")
        else:
            self.code = code
            self._set_text(code)
            lines = code.count("\n")
            self.status.setText(f"build_model() — {lines} lines, generated from the graph")
            self.status.setObjectName("muted")
            self.generated.emit(code)
        self.status.style().unpolish(self.status)
        self.status.style().polish(self.status)

    def wait(self, timeout: float = 60.0) -> bool:
        """Generate now and process events until done (tests, selftest)."""
        import time

        from PySide6.QtCore import QCoreApplication

        self._timer.stop()
        if self._stale or not self.code:
            self.regenerate()
        deadline = time.monotonic() + timeout
        while self._job.busy and time.monotonic() < deadline:
            QCoreApplication.processEvents()
            time.sleep(0.01)
        return not self._job.busy and not self.error

    def _set_text(self, text: str) -> None:
        scroll = self.editor.verticalScrollBar().value()
        self.highlighter.prepare(text)
        self.editor.setPlainText(text)
        self.editor.verticalScrollBar().setValue(scroll)

    # ---------------------------------------------------------------- actions
    def copy_to_clipboard(self) -> None:
        QGuiApplication.clipboard().setText(self.editor.toPlainText())
        self.status.setText("Copied to the clipboard.")

    def save_as(self, path: str | None = None) -> bool:
        if not path:
            name = (self.doc.graph.name if self.doc else "model") + ".py"
            # The window's dialogs when there is one (tests script them), else Qt's.
            dialogs = getattr(self.window(), "dialogs", None)
            if dialogs is not None:
                path = dialogs.ask_save_path("Save the model code", "Python files (*.py)",
                                             name)
            else:
                path, _ = QFileDialog.getSaveFileName(self, "Save the model code", name,
                                                      "Python files (*.py)")
            if not path:
                return False
        from kbuilder.files import atomic_write

        try:
            atomic_write(path, self.editor.toPlainText())
        except OSError as exc:
            self.status.setText(f"Could not save {Path(path).name}: {exc.strerror or exc}")
            return False
        self.status.setText(f"Saved {Path(path).name}")
        return True

    # ------------------------------------------------------------------ theme
    def _on_theme(self) -> None:
        self.highlighter.set_dark(theme.colors().dark)
        self._apply_colors()
        self._set_text(self.editor.toPlainText())
        self.copy_button.setIcon(icons.icon("copy"))
        self.save_button.setIcon(icons.icon("save"))

    def _apply_colors(self) -> None:
        fg = "#abb2bf" if theme.colors().dark else "#1f2328"
        self.editor.setStyleSheet(theme.style_sheet(
            "code_view", code_background=self.highlighter.background.name(), code_text=fg))

"""The pre-flight findings of the data panel: one row per finding, next to what it is about.

A row says what does not fit (``Finding.message``), names the node and column concerned,
and offers "Show in model" for a node and a button for the one-click fix. The panel only
shows and asks; the data page applies fixes to the document.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPainterPath, QPen, QPixmap
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from kbuilder.ui.shell import theme

if TYPE_CHECKING:
    from kbuilder.runtime.preflight import Finding


def severity_pixmap(severity: str, side: int = 18) -> QPixmap:
    """A red disc with "!" for errors, an amber triangle with "!" for warnings, a green
    disc with a tick for "ok"."""
    colors = theme.colors()
    ratio = 2.0  # drawn at twice the size: crisp on high-DPI screens
    pixmap = QPixmap(int(side * ratio), int(side * ratio))
    pixmap.setDevicePixelRatio(ratio)
    pixmap.fill(Qt.GlobalColor.transparent)
    p = QPainter(pixmap)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    s = float(side)
    if severity == "warning":
        path = QPainterPath(QPointF(s / 2, 1.5))
        path.lineTo(s - 1, s - 2)
        path.lineTo(1, s - 2)
        path.closeSubpath()
        p.fillPath(path, colors.warning)
        mark = QRectF(0, 3, s, s - 4)
    else:
        p.setBrush(colors.valid if severity == "ok" else colors.error)
        p.setPen(Qt.PenStyle.NoPen)
        p.drawEllipse(QRectF(1, 1, s - 2, s - 2))
        mark = QRectF(0, 0, s, s)
    if severity == "ok":
        p.setPen(QPen(QColor("white"), 2.0))
        p.drawPolyline([QPointF(s * 0.28, s * 0.52), QPointF(s * 0.44, s * 0.68),
                        QPointF(s * 0.73, s * 0.34)])
    else:
        font = QFont()
        font.setBold(True)
        font.setPixelSize(int(s * 0.7))
        p.setFont(font)
        p.setPen(QColor("white"))
        p.drawText(mark, Qt.AlignmentFlag.AlignCenter, "!")
    p.end()
    return pixmap


class QtFindingRow(QFrame):
    """One finding: severity icon, message, what it is about, Show and Fix buttons."""

    def __init__(self, finding: Finding, node_name: Callable[[str], str],
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.finding = finding
        self.setObjectName("findingRow")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.icon = QLabel(self)
        self.icon.setPixmap(severity_pixmap(finding.severity))
        self.icon.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.icon.setToolTip(finding.severity)
        about = []
        if finding.node_id:
            about.append(f"Layer '{node_name(finding.node_id)}'")
        if finding.column:
            about.append(f"column '{finding.column}'")
        self.about = QLabel(" · ".join(about) or _general(finding.code), self)
        self.about.setObjectName("sectionTitle")
        self.message = QLabel(finding.message, self)
        self.message.setWordWrap(True)
        self.message.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.setSizePolicy(QSizePolicy.Policy.Expanding,
                                   QSizePolicy.Policy.Preferred)
        self.show_button = QPushButton("Show in model", self)
        self.show_button.setVisible(bool(finding.node_id))
        self.fix_button = QPushButton("Fix", self)
        self.fix_button.setVisible(finding.fix is not None)
        if finding.fix is not None:
            label = finding.fix.label(node_name)
            self.fix_button.setText(f"Fix: {label}" if len(label) <= 44 else "Fix")
            self.fix_button.setToolTip(label)
        text = QVBoxLayout()
        text.setSpacing(2)
        text.addWidget(self.about)
        text.addWidget(self.message)
        text.addStretch(1)
        buttons = QVBoxLayout()
        buttons.setSpacing(4)
        buttons.addWidget(self.fix_button)
        buttons.addWidget(self.show_button)
        buttons.addStretch(1)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.addWidget(self.icon)
        layout.addLayout(text, 1)
        layout.addLayout(buttons)


def _general(code: str) -> str:
    if code.startswith(("no_validation", "monitor_", "batch_size")):
        return "Training settings"
    if code.startswith("nan_"):
        return "Data"
    return "Model and data"


class QtChecksPanel(QWidget):
    """The findings of the latest check, the fit-to-data offer and a status line.

    Signals:
        fix_requested(finding): the user pressed a finding's Fix button.
        node_requested(node_id): the user pressed "Show in model".
        fit_requested(): the user pressed "Fit the model to this data".
    """

    fix_requested = Signal(object)
    node_requested = Signal(str)
    fit_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.rows: list[QtFindingRow] = []
        title = QLabel("Checks against the model", self)
        title.setObjectName("sectionTitle")
        self.status_icon = QLabel(self)
        self.status = QLabel("Choose data to check it against the model.", self)
        self.status.setObjectName("muted")
        self.status.setWordWrap(True)
        self.fit_button = QPushButton("Fit the model to this data", self)
        # Replaced by what the fit will do (the data page's _update_fit) once data loads.
        self.fit_button.setToolTip("Fit the model's inputs (for a table, its preprocessing "
                                   "inside the model), output layer and loss to the data — "
                                   "one undoable edit.")
        self.fit_button.setEnabled(False)
        self.fit_button.clicked.connect(self.fit_requested)
        header = QHBoxLayout()
        header.addWidget(title)
        header.addSpacing(8)
        header.addWidget(self.status_icon)
        header.addWidget(self.status, 1)
        header.addWidget(self.fit_button)
        self._list = QWidget(self)
        self._list_layout = QVBoxLayout(self._list)
        self._list_layout.setContentsMargins(0, 0, 0, 0)
        self._list_layout.setSpacing(6)
        self._list_layout.addStretch(1)
        self.scroll = QScrollArea(self)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setWidget(self._list)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(header)
        layout.addWidget(self.scroll, 1)
        self._findings: list[Finding] = []
        self._node_name: Callable[[str], str] = str
        self._severity: str | None = None
        theme.manager().changed.connect(self._on_theme)

    @property
    def findings(self) -> list[Finding]:
        return list(self._findings)

    def set_status(self, text: str, severity: str | None = None) -> None:
        self.status.setText(text)
        self._severity = severity
        if severity is None:
            self.status_icon.clear()
        else:
            self.status_icon.setPixmap(severity_pixmap(severity, 16))

    def show_findings(self, findings: list[Finding], node_name: Callable[[str], str]) -> None:
        self._findings, self._node_name = list(findings), node_name
        for row in self.rows:
            row.setParent(None)
            row.deleteLater()
        self.rows = []
        for finding in findings:
            row = QtFindingRow(finding, node_name, self._list)
            row.fix_button.clicked.connect(lambda _c=False, f=finding: self.fix_requested.emit(f))
            row.show_button.clicked.connect(
                lambda _c=False, n=finding.node_id: self.node_requested.emit(n))
            self._list_layout.insertWidget(self._list_layout.count() - 1, row)
            self.rows.append(row)
        errors = sum(f.severity == "error" for f in findings)
        warnings = len(findings) - errors
        if not findings:
            self.set_status("No problems found: the data fits the model and the training "
                            "settings.", "ok")
        else:
            parts = []
            if errors:
                parts.append(f"{errors} problem{'s' if errors != 1 else ''} to fix before "
                             "training")
            if warnings:
                parts.append(f"{warnings} warning{'s' if warnings != 1 else ''}")
            self.set_status(", ".join(parts) + ".", "error" if errors else "warning")

    def _on_theme(self) -> None:
        for row in self.rows:
            row.icon.setPixmap(severity_pixmap(row.finding.severity))
        self.set_status(self.status.text(), self._severity)


__all__ = ["QtChecksPanel", "QtFindingRow", "severity_pixmap"]

"""The data panel's preview: a table head, an image grid, class counts and the summary.

Each view shows a result of ``kbuilder.runtime.data.preview`` (computed in a background
thread) and never reads the data itself. No numpy here: this module is imported when the
window starts, and arrays only arrive once data has been loaded.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QRectF, QSize, Qt
from PySide6.QtGui import (
    QColor,
    QFontMetrics,
    QIcon,
    QImage,
    QPainter,
    QPixmap,
    QStandardItem,
    QStandardItemModel,
)
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QListView, QTableView, QWidget

from kbuilder.graph.table_layout import MISSING_MARKERS  # the loader's
from kbuilder.ui.shell import theme

if TYPE_CHECKING:
    from kbuilder.runtime.data.preview import Samples

TILE = 64  # image grid: the side of a sample's picture, in pixels
SPLIT_NAMES = ("train", "validation", "test")
# Bar colours of the splits in the class-count chart (readable on light and dark).
SPLIT_COLORS = {"train": "#3b82f6", "validation": "#f59e0b", "test": "#10b981"}


# ============================================================================== table
class QtTableModel(QAbstractTableModel):
    """Rows of text with a header; missing cells are tinted so they stand out.

    ``row_labels`` name the rows in the vertical header (e.g. the CSV's line numbers).
    """

    def __init__(self, parent: Any = None):
        super().__init__(parent)
        self.header: list[str] = []
        self.rows: list[list[str]] = []
        self.row_labels: list[str] = []
        self.highlight_column: int | None = None  # e.g. the target

    def set_rows(self, header: list[str], rows: list[list[str]],
                 row_labels: list[str] | None = None,
                 highlight_column: int | None = None) -> None:
        self.beginResetModel()
        self.header, self.rows = list(header), [list(r) for r in rows]
        self.row_labels = list(row_labels) if row_labels else [
            str(i + 1) for i in range(len(rows))]
        self.highlight_column = highlight_column
        self.endResetModel()

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.header)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        text = self.rows[index.row()][index.column()]
        missing = text.strip().lower() in MISSING_MARKERS
        if role == Qt.ItemDataRole.DisplayRole:
            return "—" if missing and not text.strip() else text
        if role == Qt.ItemDataRole.ToolTipRole and missing:
            return "missing value"
        if role == Qt.ItemDataRole.BackgroundRole:
            if missing:
                color = QColor(theme.colors().warning)
                color.setAlpha(70)
                return color
            if index.column() == self.highlight_column:
                color = QColor(theme.colors().selection)
                color.setAlpha(28)
                return color
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter) \
                if _numeric(text) else int(Qt.AlignmentFlag.AlignLeft
                                           | Qt.AlignmentFlag.AlignVCenter)
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Horizontal:
            return self.header[section] if section < len(self.header) else None
        return self.row_labels[section] if section < len(self.row_labels) else None


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class QtTableHead(QTableView):
    """The first rows of a table (``QtTableModel``)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.table = QtTableModel(self)
        self.setModel(self.table)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.horizontalHeader().setDefaultSectionSize(90)
        self.verticalHeader().setDefaultSectionSize(22)

    def show_rows(self, header: list[str], rows: list[list[str]],
                  row_labels: list[str] | None = None,
                  highlight_column: int | None = None) -> None:
        self.table.set_rows(header, rows, row_labels, highlight_column)
        # Widths from the texts themselves: resizeColumnsToContents asks the model for
        # every cell's size hint through Python, which takes a noticeable moment.
        metrics = self.fontMetrics()
        bold = QFontMetrics(self.horizontalHeader().font())
        for column, name in enumerate(header):
            widest = max((metrics.horizontalAdvance(row[column]) for row in rows), default=0)
            width = max(widest + 14, bold.horizontalAdvance(name) + 18)
            self.setColumnWidth(column, min(width, 180))  # long texts must not push the rest


# ========================================================================= image grid
class QtPreviewGrid(QListView):
    """Samples as pictures with their labels, in a wrapping grid.

    Each item keeps the sample's shape in ``Qt.UserRole`` (tests, tooltips).
    """

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.samples = QStandardItemModel(self)
        self.setModel(self.samples)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setIconSize(QSize(TILE, TILE))
        self.setGridSize(QSize(TILE + 16, TILE + 24))
        self.setUniformItemSizes(True)
        self.setSpacing(2)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)

    def show_samples(self, samples: Samples) -> None:
        self.samples.clear()
        images = samples.images
        if images is None:
            return
        shape = "×".join(str(d) for d in samples.sample_shape)
        for image, label in zip(images, samples.labels, strict=True):
            item = QStandardItem(QIcon(image_pixmap(image, TILE)), label)
            item.setData(tuple(samples.sample_shape), Qt.ItemDataRole.UserRole)
            item.setToolTip(f"label {label} · {shape}")
            item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter)
            self.samples.appendRow(item)


def image_pixmap(image: Any, side: int) -> QPixmap:
    """A uint8 ``(h, w, 1|3)`` array as a pixmap of at most ``side`` pixels, pixelated:
    an 8×8 digit must look like 8×8 pixels, not a blur."""
    height, width, channels = image.shape
    data = image.tobytes()
    fmt = QImage.Format.Format_Grayscale8 if channels == 1 else QImage.Format.Format_RGB888
    qimage = QImage(data, width, height, width * channels, fmt).copy()  # owns its bytes
    return QPixmap.fromImage(qimage.scaled(
        side, side, Qt.AspectRatioMode.KeepAspectRatio,
        Qt.TransformationMode.FastTransformation if max(height, width) < side
        else Qt.TransformationMode.SmoothTransformation,
    ))


# ======================================================================= class counts
class QtClassCounts(QWidget):
    """Horizontal bars: samples per class, split into train / validation / test."""

    BAR = 16
    GAP = 5

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.names: list[str] = []
        self.counts: dict[str, list[int]] = {}  # split -> count per class
        self.setMinimumHeight(40)

    def set_counts(self, summary: dict[str, Any] | None) -> None:
        """Counts from ``Dataset.summary()``; none for regression data."""
        self.names, self.counts = [], {}
        splits = (summary or {}).get("splits", {})
        for split in SPLIT_NAMES:
            counts = splits.get(split, {}).get("class_counts")
            if counts is None:
                continue
            if not self.names:
                self.names = list(counts)
            self.counts[split] = [int(counts.get(name, 0)) for name in self.names]
        self.setMinimumHeight(self._height())
        self.updateGeometry()
        self.update()

    def totals(self) -> list[int]:
        return [sum(c[i] for c in self.counts.values()) for i in range(len(self.names))]

    def _height(self) -> int:
        return max(40, 28 + len(self.names) * (self.BAR + self.GAP))

    def sizeHint(self) -> QSize:
        return QSize(320, self._height())

    def paintEvent(self, event) -> None:
        colors = theme.colors()
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        metrics = QFontMetrics(self.font())
        if not self.names:
            p.setPen(colors.muted)
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter,
                       "No classes: the target is a number (regression).")
            return
        totals = self.totals()
        top = max(totals) or 1
        label_w = min(140, max(metrics.horizontalAdvance(n) for n in self.names) + 10)
        count_w = metrics.horizontalAdvance(f"{top:,}") + 10
        x0, width = label_w, max(20, self.width() - label_w - count_w - 6)
        y = 4
        # Legend first: which colour is which split.
        lx = x0
        for split in self.counts:
            p.fillRect(QRectF(lx, y + 3, 10, 10), QColor(SPLIT_COLORS[split]))
            p.setPen(colors.muted)
            p.drawText(int(lx + 14), y + 12, split)
            lx += 24 + metrics.horizontalAdvance(split)
        y += 22
        for i, name in enumerate(self.names):
            p.setPen(colors.text)
            text = metrics.elidedText(name, Qt.TextElideMode.ElideRight, label_w - 8)
            p.drawText(QRectF(0, y, label_w - 8, self.BAR),
                       Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, text)
            x = float(x0)
            for split, counts in self.counts.items():
                w = width * counts[i] / top
                p.fillRect(QRectF(x, y + 1, w, self.BAR - 2), QColor(SPLIT_COLORS[split]))
                x += w
            p.setPen(colors.muted)
            p.drawText(QRectF(x + 4, y, count_w, self.BAR),
                       Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                       f"{totals[i]:,}")
            y += self.BAR + self.GAP


# ============================================================================ summary
def summary_html(summary: dict[str, Any]) -> str:
    """The data summary as a small two-column table for a ``QLabel``."""
    rows: list[tuple[str, str]] = []
    splits = summary.get("splits", {})
    total = sum(s.get("count", 0) for s in splits.values())
    parts = " · ".join(f"{name} {s['count']:,}" for name, s in splits.items())
    rows.append(("Samples", f"{total:,} — {parts}"))
    train = splits.get("train", {})
    rows.append(("Each sample", f"{_shape_text(summary.get('sample_shape'))} "
                 f"{_plain(train.get('x_dtype'))}"))
    x_range = summary.get("x_range")
    if isinstance(x_range, dict) and x_range.get("min") is not None:
        text = f"{x_range['min']:.4g} … {x_range['max']:.4g} (mean {x_range['mean']:.3g})"
        if x_range.get("nan"):
            text += f", {x_range['nan']:,} missing"
        rows.append(("Values", text))
    task = summary.get("task", "")
    if task == "classification":
        k = summary.get("num_classes")
        names = summary.get("class_names") or []
        shown = ", ".join(names[:12]) + (", …" if len(names) > 12 else "")
        rows.append(("Task", f"classification · {k} classes ({shown})"))
        rows.append(("Labels", f"{_label_format(summary.get('label_format'))}, "
                     f"shape {_shape_text(train.get('y_shape'))} {train.get('y_dtype', '')}"))
    else:
        y_range = summary.get("y_range") or {}
        span = (f": {y_range['min']:.4g} … {y_range['max']:.4g}"
                if y_range.get("min") is not None else "")
        rows.append(("Task", f"regression (predict a number{span})"))
    features = summary.get("feature_names")
    if features:
        shown = ", ".join(features[:8]) + (f", … ({len(features)} in all)"
                                           if len(features) > 8 else "")
        rows.append(("Features", shown))
    for entry in summary.get("missing") or []:
        filled = entry.get("filled_with")
        how = f"filled with {filled:.4g}" if isinstance(filled, float) else f"as '{filled}'"
        rows.append(("Missing", f"column '{entry['column']}': {entry['count']} value(s), "
                     f"{how}"))
    for step in summary.get("preprocessing") or []:
        rows.append(("Prepared", step.get("description", step.get("step", ""))))
    for note in summary.get("notes") or []:
        rows.append(("Note", note))
    body = "".join(
        f"<tr><td style='padding:1px 10px 1px 0' valign='top'><b>{html.escape(k, quote=False)}</b></td>"
        f"<td style='padding:1px 0'>{html.escape(str(v), quote=False)}</td></tr>" for k, v in rows)
    return f"<table cellspacing='0'>{body}</table>"


def _label_format(fmt: Any) -> str:
    return {"integer": "class numbers", "one_hot": "one-hot rows",
            "multi_label": "0/1 per class (multi-label)", "values": "values"}.get(
                str(fmt), str(fmt))


def _shape_text(shape: Any) -> str:
    if isinstance(shape, dict):
        return ", ".join(f"{k}: {_shape_text(v)}" for k, v in shape.items())
    if isinstance(shape, list) and shape and isinstance(shape[0], list):
        return ", ".join(_shape_text(s) for s in shape)
    if isinstance(shape, list | tuple):
        inner = ", ".join(str(d) for d in shape)
        return f"({inner}{',' if len(shape) == 1 else ''})"
    return str(shape)


def _plain(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value or "")


__all__ = ["QtClassCounts", "QtPreviewGrid", "QtTableHead", "QtTableModel", "image_pixmap",
           "summary_html"]

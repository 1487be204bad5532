"""How well a trained model does: metrics, confusion matrix, per-class scores, samples.

Shows the ``results`` of ``kbuilder.runtime.evaluation.describe_results`` — computed in
the worker at the end of a run, or by "Evaluate again" on another split. Classification
results get a confusion-matrix heatmap with the counts in the cells, a precision / recall /
F1 table and sample predictions (the images, when the data are images); regression results
get their errors and a predicted-vs-true scatter.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from kbuilder.graph.text import plural
from kbuilder.runtime.evaluation import decode_image
from kbuilder.ui.results.run_format import format_metric, metric_name
from kbuilder.ui.shell import theme

SPLITS = (("test", "Test split"), ("val", "Validation split"), ("train", "Training split"))
TILE_PIXELS = 72  # sample images are scaled (nearest neighbour) to this size


class EpochAxis(pg.AxisItem):
    """An axis of whole epochs: no ticks at 1.2 or 1.4."""

    def tickValues(self, minVal, maxVal, size):  # noqa: N802, N803 (pyqtgraph's names)
        levels = []
        for spacing, values in super().tickValues(minVal, maxVal, size):
            whole = [v for v in values if float(v).is_integer()]
            if spacing >= 1 and whole:
                levels.append((spacing, whole))
        if not levels:
            low, high = int(np.ceil(minVal)), int(np.floor(maxVal))
            levels = [(1.0, [float(v) for v in range(low, high + 1)])]
        return levels


class QtConfusionMatrix(QWidget):
    """A heatmap of ``[true class, predicted class]`` counts, each cell showing its count.

    A cell's colour is its share of the true class (its row), so a class with few samples
    reads as clearly as a large one; the diagonal (right answers) is drawn in the theme's
    "valid" colour, mistakes in its "error" colour.
    """

    CELL = 34
    MIN_CELL_FOR_TEXT = 16

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.matrix = np.zeros((0, 0), dtype=np.int64)
        self.class_names: list[str] = []
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(220, 200)

    def set_matrix(self, matrix: list[list[int]], class_names: list[str]) -> None:
        self.matrix = np.asarray(matrix, dtype=np.int64).reshape(len(matrix), -1)
        self.class_names = list(class_names)
        self.setToolTip("Rows: the true class; columns: the predicted class. "
                        "The diagonal holds the right answers.")
        self.updateGeometry()
        self.update()

    def cell_text(self, row: int, column: int) -> str:
        """What the cell shows: its count."""
        return str(int(self.matrix[row, column]))

    def _margins(self) -> tuple[int, int, int]:
        """Left (true-class names), top (title) and bottom (predicted names) margins."""
        metrics = QFontMetrics(self.font())
        names = self._widest_name()
        line = metrics.height()
        bottom = line + 6 if self._upright_names() else names + 10
        return names + line + 14, line + 6, bottom

    def _widest_name(self) -> int:
        metrics = QFontMetrics(self.font())
        return max((metrics.horizontalAdvance(n) for n in self._short_names()), default=0)

    def _upright_names(self) -> bool:
        """Predicted-class names fit under their columns (else they are written downwards)."""
        return self._widest_name() <= self.CELL - 6

    def _short_names(self) -> list[str]:
        return [n if len(n) <= 14 else n[:13] + "…" for n in self.class_names]

    def sizeHint(self) -> QSize:
        left, top, bottom = self._margins()
        k = max(len(self.class_names), 1)
        side = k * self.CELL
        return QSize(left + side + 12, top + side + bottom)

    def _grid(self) -> tuple[float, float, float]:
        left, top, bottom = self._margins()
        k = max(len(self.matrix), 1)
        cell = min((self.width() - left - 12) / k, (self.height() - top - bottom) / k,
                   self.CELL * 1.6)
        return float(left), float(top), max(cell, 2.0)

    def paintEvent(self, _event) -> None:
        k = len(self.matrix)
        if k == 0:
            return
        colors = theme.colors()
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        left, top, cell = self._grid()
        rows = self.matrix.sum(axis=1, keepdims=True).astype(np.float64)
        share = np.divide(self.matrix, rows, out=np.zeros(self.matrix.shape), where=rows > 0)
        base = colors.node
        bold = QFont(self.font())
        bold.setBold(True)
        show_text = cell >= self.MIN_CELL_FOR_TEXT
        small = QFont(self.font())
        if cell < 26:
            small.setPointSizeF(max(6.0, small.pointSizeF() * cell / 26))
        for i in range(k):
            for j in range(k):
                rect = QRectF(left + j * cell, top + i * cell, cell, cell)
                accent = colors.valid if i == j else colors.error
                t = float(share[i, j]) ** 0.6 if self.matrix[i, j] else 0.0
                fill = _blend(base, accent, 0.08 + 0.85 * t if self.matrix[i, j] else 0.0)
                painter.fillRect(rect, fill)
                painter.setPen(colors.grid)
                painter.drawRect(rect)
                if show_text:
                    painter.setFont(small if self.matrix[i, j] == 0 else bold)
                    painter.setPen(QColor("#ffffff") if t > 0.55 else
                                   (colors.muted if self.matrix[i, j] == 0 else colors.text))
                    painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, self.cell_text(i, j))
        painter.setFont(self.font())
        painter.setPen(colors.text)
        names = self._short_names()
        metrics = QFontMetrics(self.font())
        # With many classes, every n-th name, so that names never overlap.
        step = max(1, int(np.ceil(metrics.height() / cell)))
        names = [name if i % step == 0 else "" for i, name in enumerate(names)]
        line = metrics.height()
        for i, name in enumerate(names):
            rect = QRectF(0, top + i * cell + cell / 2 - line / 2, left - 6, line)
            painter.drawText(rect, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                             name)
        bottom_y = top + k * cell
        upright = self._upright_names()
        for j, name in enumerate(names):  # predicted classes under their columns
            if upright:
                painter.drawText(QRectF(left + j * cell, bottom_y + 2, cell, metrics.height()),
                                 Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop,
                                 name)
                continue
            painter.save()  # too wide for the column: written downwards
            painter.translate(left + j * cell + cell / 2, bottom_y + 4)
            painter.rotate(90)
            painter.drawText(QRectF(0, -metrics.height() / 2,
                                    metrics.horizontalAdvance(name) + 4, metrics.height()),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, name)
            painter.restore()
        painter.setPen(colors.muted)
        painter.drawText(QRectF(left, 0, k * cell, top - 2),
                         Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom,
                         "predicted class →")
        painter.save()
        painter.translate(metrics.height() - 2, top + k * cell / 2)
        painter.rotate(-90)
        painter.drawText(QRectF(-k * cell / 2, -metrics.height(), k * cell, metrics.height()),
                         Qt.AlignmentFlag.AlignCenter, "true class →")
        painter.restore()
        painter.end()


def _blend(a: QColor, b: QColor, t: float) -> QColor:
    return QColor(round(a.red() + (b.red() - a.red()) * t),
                  round(a.green() + (b.green() - a.green()) * t),
                  round(a.blue() + (b.blue() - a.blue()) * t))


def image_pixmap(image: dict[str, Any], size: int = TILE_PIXELS) -> QPixmap:
    """A sample image of the results as a pixmap, scaled up without blurring."""
    array = np.ascontiguousarray(decode_image(image))
    height, width, channels = array.shape
    if channels == 1:
        qimage = QImage(array.data, width, height, width, QImage.Format.Format_Grayscale8)
    else:
        qimage = QImage(array.data, width, height, width * 3, QImage.Format.Format_RGB888)
    pixmap = QPixmap.fromImage(qimage.copy())  # copy: the array's memory is temporary
    return pixmap.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                         Qt.TransformationMode.FastTransformation)


class QtSampleTile(QFrame):
    """One sample: its image (if any), the true and the predicted label."""

    def __init__(self, sample: dict[str, Any], parent: QWidget | None = None):
        super().__init__(parent)
        self.sample = sample
        self.correct = sample.get("true") == sample.get("predicted")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setFixedWidth(QtPredictionGrid.TILE_WIDTH)  # long class names wrap instead
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(3)
        self.image_label: QLabel | None = None
        if sample.get("image"):
            self.image_label = QLabel(self)
            self.image_label.setPixmap(image_pixmap(sample["image"]))
            self.image_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            layout.addWidget(self.image_label)
        colors = theme.colors()
        color = (colors.valid if self.correct else colors.error).name()
        confidence = sample.get("confidence")
        sure = f" ({confidence:.0%})" if isinstance(confidence, float) else ""
        mark = "✓" if self.correct else "✗"
        self.text_label = QLabel(
            f"true <b>{_escape(sample.get('true'))}</b><br>"
            f"<span style='color:{color}'>{mark} predicted <b>"
            f"{_escape(sample.get('predicted'))}</b>{sure}</span>", self)
        self.text_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.text_label.setWordWrap(True)
        self.text_label.setToolTip(f"Sample #{sample.get('index')} of the split")
        layout.addWidget(self.text_label)


def _escape(value: Any) -> str:
    text = str(value)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class QtPredictionGrid(QWidget):
    """Sample predictions as tiles, wrapped into rows of ``columns``."""

    TILE_WIDTH = 150  # each tile's width; the view sets the columns from its own width

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.tiles: list[QtSampleTile] = []
        self.columns = 4
        self._layout = QGridLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(6)
        self._layout.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)

    def set_samples(self, samples: list[dict[str, Any]]) -> None:
        for tile in self.tiles:
            # Out of the grid now: deleteLater() runs only when the event loop next idles.
            self._layout.removeWidget(tile)
            tile.hide()
            tile.deleteLater()
        self.tiles = []
        self.tiles = [QtSampleTile(sample, self) for sample in samples]
        self._place()

    def set_columns(self, columns: int) -> None:
        if columns != self.columns:
            self.columns = columns
            self._place()

    def _place(self) -> None:
        for tile in self.tiles:
            self._layout.removeWidget(tile)
        for i, tile in enumerate(self.tiles):
            self._layout.addWidget(tile, i // self.columns, i % self.columns)


def _table(headers: list[str], parent: QWidget) -> QTableWidget:
    table = QTableWidget(0, len(headers), parent)
    table.setHorizontalHeaderLabels(headers)
    table.verticalHeader().hide()
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
    table.setAlternatingRowColors(True)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
    return table


def _cell(text: str, number: bool = True) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    if number:
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return item


def _section(text: str, parent: QWidget) -> QLabel:
    label = QLabel(text, parent)
    label.setObjectName("sectionTitle")
    return label


class QtEvaluationView(QWidget):
    """The evaluation of one run.

    Signals:
        evaluate_requested(split): the user asked to evaluate the run again on ``split``
            (``test``, ``val`` or ``train``).
    """

    evaluate_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.results: dict[str, Any] = {}
        self.metrics: dict[str, Any] = {}
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)

        bar = QHBoxLayout()
        bar.setContentsMargins(8, 6, 8, 0)
        self.title = QLabel(self)
        self.title.setObjectName("sectionTitle")
        self.title.setWordWrap(True)
        bar.addWidget(self.title, 1)
        self.split_combo = QComboBox(self)
        for key, label in SPLITS:
            self.split_combo.addItem(label, key)
        self.split_combo.setToolTip("The data to evaluate the trained model on")
        self.evaluate_button = QPushButton("Evaluate again", self)
        self.evaluate_button.setToolTip(
            "Evaluate the run's trained model on the chosen split, in a worker process")
        self.evaluate_button.clicked.connect(
            lambda: self.evaluate_requested.emit(self.split_combo.currentData()))
        self.busy = QProgressBar(self)
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(110)
        self.busy.setTextVisible(False)
        self.busy.hide()
        for widget in (self.busy, self.split_combo, self.evaluate_button):
            bar.addWidget(widget)
        outer.addLayout(bar)
        self.status = QLabel(self)
        self.status.setWordWrap(True)
        self.status.setContentsMargins(8, 0, 8, 0)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status.hide()
        outer.addWidget(self.status)

        self.pages = QStackedWidget(self)
        outer.addWidget(self.pages, 1)
        self.empty = QLabel(self)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.empty.setObjectName("muted")
        self.pages.addWidget(self.empty)

        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        body = QWidget(scroll)
        scroll.setWidget(body)
        self.body = QVBoxLayout(body)
        self.body.setContentsMargins(8, 4, 8, 8)
        self.metrics_label = QLabel(body)
        self.metrics_label.setWordWrap(True)
        self.metrics_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.body.addWidget(self.metrics_label)

        # Classification: matrix and per-class table side by side, samples below.
        self.classification = QWidget(body)
        cls_layout = QVBoxLayout(self.classification)
        cls_layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        left = QVBoxLayout()
        left.addWidget(_section("Confusion matrix", body))
        self.confusion = QtConfusionMatrix(body)
        left.addWidget(self.confusion, 1)
        right = QVBoxLayout()
        right.addWidget(_section("Per class", body))
        self.per_class = _table(["class", "precision", "recall", "F1", "support"], body)
        self.per_class.setMinimumWidth(300)
        right.addWidget(self.per_class, 1)
        row.addLayout(left, 3)
        row.addLayout(right, 2)
        cls_layout.addLayout(row)
        cls_layout.addWidget(_section("Sample predictions", body))
        self.samples = QtPredictionGrid(body)
        cls_layout.addWidget(self.samples)
        self.body.addWidget(self.classification)

        # Regression: the scatter and a few samples.
        self.regression = QWidget(body)
        reg_layout = QVBoxLayout(self.regression)
        reg_layout.setContentsMargins(0, 0, 0, 0)
        reg_layout.addWidget(_section("Predicted vs. true", body))
        self.scatter_plot = pg.PlotWidget(parent=body)
        self.scatter_plot.setMinimumHeight(300)
        self.scatter_plot.setLabel("bottom", "true value")
        self.scatter_plot.setLabel("left", "predicted value")
        self.scatter_plot.showGrid(x=True, y=True, alpha=0.2)
        self.scatter = pg.ScatterPlotItem(size=6, pen=None)
        self.diagonal = pg.PlotDataItem()
        self.scatter_plot.addItem(self.diagonal)
        self.scatter_plot.addItem(self.scatter)
        reg_layout.addWidget(self.scatter_plot)
        reg_layout.addWidget(_section("Sample predictions", body))
        self.regression_samples = _table(["sample", "true", "predicted", "error"], body)
        self.regression_samples.setMinimumHeight(200)
        reg_layout.addWidget(self.regression_samples)
        self.body.addWidget(self.regression)
        self.body.addStretch(1)
        self.pages.addWidget(scroll)
        self._scroll = scroll
        theme.manager().changed.connect(self._refresh_theme)
        self._refresh_theme()
        self.clear("Select a run to see how its model does.")

    # ----------------------------------------------------------------- public
    def clear(self, message: str, can_evaluate: bool = False) -> None:
        self.results, self.metrics = {}, {}
        self.title.setText("")
        self.empty.setText(message)
        self.pages.setCurrentWidget(self.empty)
        self.set_can_evaluate(can_evaluate)
        self.show_status("")

    def set_can_evaluate(self, enabled: bool, why: str = "") -> None:
        for widget in (self.evaluate_button, self.split_combo):
            widget.setEnabled(enabled and not self.busy.isVisible())
        self.evaluate_button.setToolTip(
            why or "Evaluate the run's trained model on the chosen split, in a worker process")

    def set_busy(self, busy: bool, text: str = "") -> None:
        self.busy.setVisible(busy)
        self.evaluate_button.setEnabled(not busy)
        self.split_combo.setEnabled(not busy)
        self.show_status(text)

    def show_status(self, text: str, error: bool = False) -> None:
        self.status.setObjectName("errorLabel" if error else "muted")
        self.status.style().unpolish(self.status)
        self.status.style().polish(self.status)
        self.status.setText(text)
        self.status.setVisible(bool(text))

    def show_evaluation(self, title: str, metrics: dict[str, Any], results: dict[str, Any],
                        samples: int | None = None) -> None:
        """Show ``metrics`` (Keras's) and ``results`` (``describe_results``)."""
        self.results, self.metrics = dict(results or {}), dict(metrics or {})
        self.title.setText(title)
        task = self.results.get("task")
        if not task and not self.metrics:
            self.clear("This run has no evaluation (it failed, was stopped before its "
                       "test, or its data has no test split).", can_evaluate=True)
            return
        parts = [f"{metric_name(name)} <b>{format_metric(value)}</b>" for name, value in
                 self.metrics.items()]
        if task == "regression":
            shown = {metric_name(name) for name in self.metrics}
            parts += [f"{name.upper()} <b>{format_metric(self.results.get(name))}</b>"
                      for name in ("mae", "rmse") if name.upper() not in shown]
        if samples is not None:
            parts.append(plural(samples, 'sample', grouped=True))
        self.metrics_label.setText(" · ".join(parts) or "No metrics.")
        self.classification.setVisible(task == "classification")
        self.regression.setVisible(task == "regression")
        if task == "classification":
            self._show_classification()
        elif task == "regression":
            self._show_regression()
        self.pages.setCurrentWidget(self._scroll)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        # As many sample columns as the width holds, so nothing scrolls sideways.
        self._fit_sample_columns()

    def _fit_sample_columns(self) -> None:
        room = self.width() - 40  # the body's margins and a vertical scroll bar
        self.samples.set_columns(max(1, room // (QtPredictionGrid.TILE_WIDTH + 6)))

    # ---------------------------------------------------------------- private
    def _show_classification(self) -> None:
        r = self.results
        self.confusion.set_matrix(r.get("confusion_matrix", []), r.get("class_names", []))
        rows = r.get("per_class", [])
        self.per_class.setRowCount(len(rows))
        for i, row in enumerate(rows):
            self.per_class.setItem(i, 0, _cell(str(row.get("class")), number=False))
            for j, key in enumerate(("precision", "recall", "f1"), start=1):
                value = row.get(key)
                self.per_class.setItem(i, j, _cell("—" if value is None else f"{value:.3f}"))
            self.per_class.setItem(i, 4, _cell(str(row.get("support", ""))))
        height = self.per_class.horizontalHeader().height() + sum(
            self.per_class.rowHeight(i) for i in range(len(rows))) + 4
        self.per_class.setMinimumHeight(min(height, 420))
        k = len(r.get("class_names", []))
        self.confusion.setMinimumHeight(min(max(200, self.confusion.sizeHint().height()),
                                            520 if k <= 20 else 640))
        self.samples.set_samples(r.get("samples", []))
        self._fit_sample_columns()

    def _show_regression(self) -> None:
        r = self.results
        points = r.get("scatter") or {}
        true = np.asarray(points.get("true") or [s["true"][0] for s in r.get("samples", [])],
                          dtype=np.float64)
        predicted = np.asarray(points.get("predicted") or
                               [s["predicted"][0] for s in r.get("samples", [])],
                               dtype=np.float64)
        self.scatter.setData(true, predicted)
        if len(true):
            low = float(min(true.min(), predicted.min()))
            high = float(max(true.max(), predicted.max()))
            self.diagonal.setData([low, high], [low, high])
        else:
            self.diagonal.setData([], [])
        samples = r.get("samples", [])
        self.regression_samples.setRowCount(len(samples))
        for i, sample in enumerate(samples):
            t, p = sample.get("true", []), sample.get("predicted", [])
            error = [b - a for a, b in zip(t, p, strict=False)]
            self.regression_samples.setItem(i, 0, _cell(f"#{sample.get('index')}"))
            for j, values in enumerate((t, p, error), start=1):
                self.regression_samples.setItem(
                    i, j, _cell(", ".join(f"{v:.4g}" for v in values)))

    def _refresh_theme(self) -> None:
        colors = theme.colors()
        self.scatter_plot.setBackground(colors.background)
        for axis in ("left", "bottom"):
            self.scatter_plot.getAxis(axis).setTextPen(colors.text)
            self.scatter_plot.getAxis(axis).setPen(colors.muted)
        self.scatter.setBrush(pg.mkBrush(colors.selection))
        self.diagonal.setPen(pg.mkPen(colors.muted, width=1, style=Qt.PenStyle.DashLine))
        if self.results.get("task") == "classification":
            self.samples.set_samples(self.results.get("samples", []))  # label colours
        self.confusion.update()

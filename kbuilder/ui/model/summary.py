"""The model summary: every node's output shape, parameters, FLOPs and whether its weights
train (Keras's ``summary(show_trainable=True)`` column), and the totals.

A table model over the graph in data-flow order, refreshed (coalesced) after edits and
only while the panel is visible. Clicking a row selects the node on the canvas.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from kbuilder.graph.errors import CycleError
from kbuilder.graph.freezing import frozen_state
from kbuilder.graph.model import Graph
from kbuilder.graph.shapes import NodeResult, ShapeInference
from kbuilder.graph.text import plural
from kbuilder.ui.document import QtDocument
from kbuilder.ui.model.canvas.scene import count_text, layer_count, shape_text
from kbuilder.ui.shell import theme

COLUMNS = ("Layer", "Type", "Output shape", "Params", "FLOPs", "Trainable")
TRAINABLE_COLUMN = 5
# Keras's show_trainable marks: Y / N, "-" for a layer without weights; a block with
# some of its layers frozen is "partly".
TRAINABLE_TEXT = {"": "Y", "frozen": "N", "partly": "partly"}
TRAINABLE_TIPS = {
    "Y": "Its weights learn in training.",
    "N": "Frozen (trainable = False): training leaves its weights as they are.",
    "partly": "Some of the block's layers are frozen; the others learn.",
}
NODE_ID_ROLE = Qt.ItemDataRole.UserRole + 1
MONO = QFont("DejaVu Sans Mono", 9)


def _order(graph: Graph) -> list[str]:
    try:
        return graph.topological_order()
    except CycleError:
        return graph.node_ids


class QtSummaryModel(QAbstractTableModel):
    """Rows: the graph's nodes in data-flow order."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.graph: Graph | None = None
        self.inference: ShapeInference | None = None
        self._ids: list[str] = []

    def reset(self, graph: Graph | None, inference: ShapeInference | None) -> None:
        self.beginResetModel()
        self.graph, self.inference = graph, inference
        self._ids = _order(graph) if graph is not None else []
        self.endResetModel()

    def node_id(self, row: int) -> str:
        return self._ids[row]

    def row_of(self, node_id: str) -> int:
        return self._ids.index(node_id) if node_id in self._ids else -1

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex | None = None) -> int:
        return 0 if parent is not None and parent.isValid() else len(self._ids)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex | None = None) -> int:
        return 0 if parent is not None and parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if role == Qt.ItemDataRole.TextAlignmentRole and section == TRAINABLE_COLUMN:
            return int(Qt.AlignmentFlag.AlignCenter)
        if role == Qt.ItemDataRole.TextAlignmentRole and section >= 3:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _result(self, nid: str) -> NodeResult:
        return self.inference.result(nid) if self.inference is not None else NodeResult()

    def trainable_text(self, nid: str) -> str:
        """Y, N, partly, or "-" for a node without weights (as Keras's summary marks it)."""
        assert self.graph is not None
        node = self.graph.node(nid)
        if node.kind not in ("layer", "block") or not self._result(nid).params:
            return "-"
        return TRAINABLE_TEXT[frozen_state(self.graph, nid)]

    def data(self, index: QModelIndex | QPersistentModelIndex,
             role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or self.graph is None:
            return None
        nid = self._ids[index.row()]
        if nid not in self.graph:
            return None
        node = self.graph.node(nid)
        result = self._result(nid)
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return node.name
            if col == 1:
                if node.kind == "block" and node.subgraph is not None:
                    return f"Block ({plural(layer_count(node.subgraph), 'layer')})"
                return node.label + (" (shared)" if node.shared_with else "")
            if col == 2:
                if result.error:
                    return "error"
                return shape_text(result) if result.ok else "—"
            if col == 3:
                return f"{result.params:,}" if node.kind in ("layer", "block") else ""
            if col == 4:
                return count_text(result.flops) if result.flops else ""
            if col == TRAINABLE_COLUMN:
                return self.trainable_text(nid)
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == TRAINABLE_COLUMN:
                return TRAINABLE_TIPS.get(self.trainable_text(nid))
            return result.error or result.blocked or None
        if role == Qt.ItemDataRole.ForegroundRole and col == TRAINABLE_COLUMN:
            if self.trainable_text(nid) != "Y":
                return theme.colors().muted
        if role == Qt.ItemDataRole.ForegroundRole and col == 2:
            if result.error:
                return theme.colors().error
            if result.blocked:
                return theme.colors().muted
        if role == Qt.ItemDataRole.FontRole and col == 2:
            return MONO
        if role == Qt.ItemDataRole.TextAlignmentRole and col == TRAINABLE_COLUMN:
            return int(Qt.AlignmentFlag.AlignCenter)
        if role == Qt.ItemDataRole.TextAlignmentRole and col >= 3:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == NODE_ID_ROLE:
            return nid
        return None


def _bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    return f"{size:.1f} GB"


class QtSummaryPanel(QWidget):
    """Signals: node_selected(node_id) when a row is clicked."""

    node_selected = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.doc: QtDocument | None = None
        self.model = QtSummaryModel(self)
        self.table = QTableView(self)
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(22)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        header.setStretchLastSection(False)
        for col, width in enumerate((200, 180, 200, 110, 90, 80)):
            self.table.setColumnWidth(col, width)
        self.table.clicked.connect(self._clicked)
        self.totals = QLabel(self)
        self.totals.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.totals.setContentsMargins(6, 2, 6, 4)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.totals)
        self._stale = True
        self._timer = QTimer(self, singleShot=True, interval=60)
        self._timer.timeout.connect(self.refresh)

    def set_document(self, doc: QtDocument | None) -> None:
        if self.doc is not None:
            self.doc.results_changed.disconnect(self._schedule)
            self.doc.history_changed.disconnect(self._schedule)
        self.doc = doc
        if doc is not None:
            doc.results_changed.connect(self._schedule)
            doc.history_changed.connect(self._schedule)
        self.refresh()

    def _schedule(self, *_args: Any) -> None:
        self._stale = True
        if self.isVisible():
            self._timer.start()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._stale:
            self._timer.start()

    def refresh(self) -> None:
        self._stale = False
        doc = self.doc
        if doc is None:
            self.model.reset(None, None)
            self.totals.setText("No model open.")
            return
        self.model.reset(doc.graph, doc.inference)
        inf = doc.inference
        total, trainable = inf.total_params(), inf.total_trainable_params()
        errors = len(inf.errors())
        text = (f"<b>Total params:</b> {total:,} ({_bytes(total * 4)}) &nbsp; "
                f"<b>Trainable:</b> {trainable:,} &nbsp; "
                f"<b>Non-trainable:</b> {total - trainable:,} &nbsp; "
                f"<b>FLOPs:</b> {count_text(inf.total_flops())}")
        if errors:
            color = theme.colors().error.name()
            text += (f" &nbsp; <span style='color:{color}'><b>{errors} problem"
                     f"{'s' if errors != 1 else ''}</b></span>")
        self.totals.setText(text)

    def count(self) -> int:
        """How many nodes the summary lists."""
        return self.model.rowCount()

    def _clicked(self, index: QModelIndex) -> None:
        if index.isValid():
            self.node_selected.emit(self.model.node_id(index.row()))

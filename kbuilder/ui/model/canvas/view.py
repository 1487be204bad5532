"""The canvas view: zoom, pan, rubber-band selection, dropping layers, dragging connections.

The view turns gestures into requests (signals); the editor turns requests into commands.
It never edits the graph. Nothing here runs per frame in Python: the background grid is a
texture brush, nodes are cached pixmaps, and scrolling is Qt's.
"""

from __future__ import annotations

import json

from PySide6.QtCore import QMimeData, QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPen,
    QPixmap,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import QGraphicsItem, QGraphicsView

from kbuilder.graph.errors import GraphError
from kbuilder.ui.model.canvas.edge_item import QtEdgeItem
from kbuilder.ui.model.canvas.node_item import QtNodeItem
from kbuilder.ui.model.canvas.port_item import QtPortItem
from kbuilder.ui.model.canvas.scene import FAR_ZOOM, QtGraphScene
from kbuilder.ui.shell import theme

# What the palette puts on a drag: {"kind": "layer", "class_name": "Dense"} or
# {"kind": "input"} / {"kind": "output"}, as JSON.
NODE_MIME = "application/x-kbuilder-node"

MIN_ZOOM, MAX_ZOOM = 0.05, 3.0
NODE_ZOOM = 0.75  # where a double-click far out zooms to (node text is readable)
GRID = 22


def node_mime(kind: str, class_name: str | None = None) -> QMimeData:
    """The drag payload for a new node of ``kind`` (and layer class)."""
    mime = QMimeData()
    payload = {"kind": kind, **({"class_name": class_name} if class_name else {})}
    mime.setData(NODE_MIME, json.dumps(payload).encode())
    mime.setText(class_name or kind)
    return mime


def read_node_mime(mime: QMimeData) -> dict | None:
    if not mime.hasFormat(NODE_MIME):
        return None
    try:
        payload = json.loads(bytes(mime.data(NODE_MIME).data()).decode())
    except (ValueError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) and "kind" in payload else None


class _Drag:
    """A connection being dragged from a port."""

    def __init__(self, port: QtPortItem, edge: QtEdgeItem, valid: set):
        self.port = port
        self.edge = edge
        self.valid = valid
        self.target: QtPortItem | None = None


class QtGraphView(QGraphicsView):
    """Shows a ``QtGraphScene``.

    Signals:
        node_dropped(payload, scene_pos): a palette entry was dropped.
        connect_requested(src, src_port, dst, dst_port): a valid connection was drawn.
        nodes_moved(positions): nodes were dragged to new positions (on release).
        node_activated(node_id): a node was double-clicked.
        context_menu_requested(node_id or "", global_pos).
        status_message(text): a hint or a refusal reason for the status bar.
        zoom_changed(factor).
    """

    node_dropped = Signal(dict, QPointF)
    connect_requested = Signal(str, int, str, str)
    nodes_moved = Signal(dict)
    node_activated = Signal(str)
    context_menu_requested = Signal(str, QPoint)
    status_message = Signal(str)
    zoom_changed = Signal(float)

    def __init__(self, scene: QtGraphScene, parent=None):
        super().__init__(scene, parent)
        self._scene = scene
        self._drag: _Drag | None = None
        self._pan_from: QPoint | None = None
        self._space = False
        self._grid_visible: bool | None = None
        self.setRenderHints(QPainter.RenderHint.Antialiasing
                            | QPainter.RenderHint.TextAntialiasing)
        self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
        self.setRubberBandSelectionMode(Qt.ItemSelectionMode.IntersectsItemShape)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.MinimalViewportUpdate)
        self.setCacheMode(QGraphicsView.CacheModeFlag.CacheBackground)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontSavePainterState, True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFrameShape(QGraphicsView.Shape.NoFrame)
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.refresh_theme()

    # ---------------------------------------------------------------- zooming
    @property
    def zoom(self) -> float:
        return self.transform().m11()

    def set_zoom(self, factor: float, anchor_center: bool = True) -> None:
        factor = min(MAX_ZOOM, max(MIN_ZOOM, factor))
        anchor = self.transformationAnchor()
        if anchor_center:
            self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setTransform(QTransform.fromScale(factor, factor))
        self.setTransformationAnchor(anchor)
        self._zoomed()

    def zoom_by(self, step: float) -> None:
        self.set_zoom(self.zoom * step)

    def fit(self, rect: QRectF | None = None, max_zoom: float = 1.25,
            min_zoom: float = MIN_ZOOM, start: QRectF | None = None) -> None:
        """Show ``rect`` (default: every node) as large as fits, at most ``max_zoom``.

        With ``min_zoom`` (e.g. when a model opens), a model too big to be readable
        whole is shown from where its data starts at ``min_zoom`` instead: its top (its
        left when data flows right), centred across the flow on ``start`` (the inputs).
        """
        rect = rect if rect is not None else self._scene.nodes_rect()
        if rect.isEmpty():
            self.set_zoom(1.0)
            self.centerOn(0, 0)
            return
        rect = rect.adjusted(-40, -40, 40, 40)
        # The zoom is worked out, not tried (fitInView, then a clamp): each zoom set on a
        # big graph may switch the far-out picture on and off (QtGraphScene.set_far).
        port = self.viewport().rect()
        zoom = min(max_zoom, port.width() / rect.width(), port.height() / rect.height())
        center = rect.center()
        if zoom < min_zoom:
            zoom = min_zoom
            across = (start if start is not None and not start.isEmpty() else rect).center()
            if self._scene.flow == "right":
                visible = port.width() / min_zoom
                center = QPointF(rect.left() + visible / 2, across.y())
            else:
                visible = port.height() / min_zoom
                center = QPointF(across.x(), rect.top() + visible / 2)
        self.set_zoom(zoom)
        self.centerOn(center)

    def _zoomed(self) -> None:
        self._scene.set_far(self.zoom < FAR_ZOOM)
        self._update_grid()
        self.zoom_changed.emit(self.zoom)

    def wheelEvent(self, event: QWheelEvent) -> None:
        delta = event.angleDelta().y()
        if delta == 0:
            super().wheelEvent(event)
            return
        factor = min(MAX_ZOOM, max(MIN_ZOOM, self.zoom * 1.0015 ** delta))
        step = factor / self.zoom
        self.scale(step, step)
        self._zoomed()
        event.accept()

    # --------------------------------------------------------------- painting
    def paintEvent(self, event) -> None:
        if not self._scene.far:
            super().paintEvent(event)
            return
        # Far out the scene's picture stands for the items (QtGraphScene.set_far): Qt is
        # not asked to find and paint the thousands of items in view.
        painter = QPainter(self.viewport())
        painter.fillRect(event.rect(), theme.colors().background)
        painter.setTransform(self.viewportTransform())
        self._scene.draw_far(painter)
        band = self.rubberBandRect()
        if not band.isEmpty():
            painter.resetTransform()
            fill = QColor(theme.colors().selection)
            fill.setAlpha(40)
            painter.setPen(QPen(theme.colors().selection, 1))
            painter.setBrush(fill)
            painter.drawRect(band)
        painter.end()

    # ------------------------------------------------------------- background
    def refresh_theme(self) -> None:
        self._grid_visible = None
        self._update_grid()

    def _update_grid(self) -> None:
        visible = self.zoom >= 0.45
        if visible == self._grid_visible:
            return
        self._grid_visible = visible
        c = theme.colors()
        if not visible:
            self.setBackgroundBrush(QBrush(c.background))
        else:
            tile = QPixmap(GRID, GRID)
            tile.fill(c.background)
            painter = QPainter(tile)
            painter.setPen(QColor(c.grid))
            painter.drawPoint(0, 0)
            painter.drawPoint(1, 0)
            painter.drawPoint(0, 1)
            painter.drawPoint(1, 1)
            painter.end()
            self.setBackgroundBrush(QBrush(tile))
        self.resetCachedContent()

    # ---------------------------------------------------------------- drop
    def dragEnterEvent(self, event) -> None:
        if read_node_mime(event.mimeData()) is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        if read_node_mime(event.mimeData()) is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event) -> None:
        payload = read_node_mime(event.mimeData())
        if payload is None:
            event.ignore()
            return
        event.acceptProposedAction()
        self.node_dropped.emit(payload, self.mapToScene(event.position().toPoint()))

    # ------------------------------------------------------------------ mouse
    def _port_at(self, pos: QPoint) -> QtPortItem | None:
        for item in self.items(pos):
            if isinstance(item, QtPortItem):
                return item
        return None

    def _node_at(self, pos: QPoint) -> QtNodeItem | None:
        item: QGraphicsItem | None = self.itemAt(pos)
        while item is not None and not isinstance(item, QtNodeItem):
            item = item.parentItem()
        return item

    def mousePressEvent(self, event: QMouseEvent) -> None:
        pos = event.position().toPoint()
        button = event.button()
        if button == Qt.MouseButton.MiddleButton or (
            button == Qt.MouseButton.LeftButton and self._space
        ):
            self._pan_from = pos
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        if button == Qt.MouseButton.LeftButton and self._scene.far:
            # Far out a click picks the node under it (ports and drags are too small to
            # aim at: nodes are moved, and connected, closer in).
            node = self._node_at(pos)
            if node is not None:
                ctrl = bool(event.modifiers() & Qt.KeyboardModifier.ControlModifier)
                if not ctrl:
                    self._scene.clearSelection()
                node.setSelected(not (ctrl and node.isSelected()))  # Ctrl toggles
                event.accept()
                return
        elif button == Qt.MouseButton.LeftButton:
            port = self._port_at(pos)
            if port is not None:
                self._start_connection(port, self.mapToScene(pos))
                event.accept()
                return
        if button == Qt.MouseButton.RightButton:
            node = self._node_at(pos)
            if node is not None and not node.isSelected():
                self._scene.clearSelection()
                node.setSelected(True)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position().toPoint()
        if self._pan_from is not None:
            delta = pos - self._pan_from
            self._pan_from = pos
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - delta.x())
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - delta.y())
            event.accept()
            return
        if self._drag is not None:
            self._drag_to(pos)
            event.accept()
            return
        super().mouseMoveEvent(event)
        if event.buttons() & Qt.MouseButton.LeftButton and isinstance(
            self._scene.mouseGrabberItem(), QtNodeItem
        ):
            # Qt moved the selected nodes; their connections follow.
            self._scene.update_edges(self._scene.selected_node_ids())

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None and event.button() in (
            Qt.MouseButton.MiddleButton, Qt.MouseButton.LeftButton
        ):
            self._pan_from = None
            self.viewport().setCursor(
                Qt.CursorShape.OpenHandCursor if self._space else Qt.CursorShape.ArrowCursor
            )
            event.accept()
            return
        if self._drag is not None and event.button() == Qt.MouseButton.LeftButton:
            self._finish_connection(event.position().toPoint())
            event.accept()
            return
        super().mouseReleaseEvent(event)
        if event.button() == Qt.MouseButton.LeftButton:
            moved = self._scene.moved_positions()
            if moved:
                self.nodes_moved.emit(moved)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        node = self._node_at(event.position().toPoint())
        if node is not None and self._scene.far:
            # Far out a double-click zooms in to the node (its items come back).
            self._scene.clearSelection()
            node.setSelected(True)
            self.set_zoom(NODE_ZOOM)
            self.centerOn(node)
            event.accept()
            return
        if node is not None:
            self.node_activated.emit(node.node_id)
            event.accept()
            return
        super().mouseDoubleClickEvent(event)

    def contextMenuEvent(self, event) -> None:
        node = self._node_at(event.pos())
        self.context_menu_requested.emit(node.node_id if node else "", event.globalPos())
        event.accept()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = True
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            event.accept()
            return
        if event.key() == Qt.Key.Key_Escape and self._drag is not None:
            self._cancel_connection()
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
            self.viewport().setCursor(Qt.CursorShape.ArrowCursor)
            event.accept()
            return
        super().keyReleaseEvent(event)

    # ------------------------------------------------------------- connecting
    def _start_connection(self, port: QtPortItem, scene_pos: QPointF) -> None:
        node = port.parentItem()
        assert isinstance(node, QtNodeItem)
        if port.is_output:
            edge = QtEdgeItem(None, node, int(port.key), None, "")
            valid = self._scene.valid_targets(node.node_id, int(port.key))
            self._scene.highlight_targets(valid, node.node_id)
            hint = f"Connecting from {node.name}: drop on a green input port."
        else:
            edge = QtEdgeItem(None, None, 0, node, str(port.key))
            valid = self._scene.valid_sources(node.node_id)
            self._scene.highlight_sources(valid)
            hint = f"Connecting into {node.name}: drop on a green output port."
        edge.free_end = scene_pos
        edge.update_path()
        self._scene.addItem(edge)
        self._drag = _Drag(port, edge, valid)
        self.status_message.emit(hint)

    def _ends(self, target: QtPortItem) -> tuple[str, int, str, str]:
        """(src, src_port, dst, dst_port) of the dragged connection ending at ``target``."""
        assert self._drag is not None
        start = self._drag.port
        out, inp = (start, target) if start.is_output else (target, start)
        return out.node_id, int(out.key), inp.node_id, str(inp.key)

    def _target_at(self, pos: QPoint) -> QtPortItem | None:
        assert self._drag is not None
        port = self._port_at(pos)
        if port is None or port.is_output == self._drag.port.is_output:
            return None
        return port

    def _is_valid(self, port: QtPortItem) -> bool:
        assert self._drag is not None
        key = (port.node_id, port.key if not port.is_output else int(port.key))
        return key in self._drag.valid

    def _reason(self, port: QtPortItem) -> str:
        """Why the graph refuses this connection (the graph's own message)."""
        graph = self._scene.graph
        if graph is None:
            return ""
        try:
            graph.check_connection(*self._ends(port))
        except GraphError as exc:
            return str(exc)
        return "This connection is not allowed."

    def _drag_to(self, pos: QPoint) -> None:
        drag = self._drag
        assert drag is not None
        target = self._target_at(pos)
        drag.target = target
        if target is not None:
            drag.edge.free_end = target.scenePos()
            drag.edge.valid = self._is_valid(target)
            if drag.edge.valid:
                src, _, dst, port = self._ends(target)
                graph = self._scene.graph
                assert graph is not None
                self.status_message.emit(
                    f"Release to connect {graph.node(src).name} → {graph.node(dst).name}"
                    + (f" ({port})" if port != "inputs" else "")
                )
            else:
                self.status_message.emit(self._reason(target))
        else:
            drag.edge.free_end = self.mapToScene(pos)
            drag.edge.valid = False
        drag.edge.update_path()
        drag.edge.update()

    def _finish_connection(self, pos: QPoint) -> None:
        target = self._target_at(pos)
        ends = self._ends(target) if target is not None else None
        self._cancel_connection()
        if ends is None:
            self.status_message.emit("")
            return
        # Invalid targets too: the graph refuses them with its reason for the status bar.
        self.connect_requested.emit(*ends)

    def _cancel_connection(self) -> None:
        drag = self._drag
        self._drag = None
        self._scene.clear_highlights()
        if drag is not None and drag.edge.scene() is self._scene:
            self._scene.removeItem(drag.edge)

    @property
    def connecting(self) -> bool:
        return self._drag is not None

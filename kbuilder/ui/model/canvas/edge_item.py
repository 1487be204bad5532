"""A connection on the canvas: a curve from an output port down to an input port.

The tooltip shows the tensor that flows along it (set by the scene from shape inference).
The same item, without an edge id, draws the connection being dragged.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QPainter, QPainterPath, QPainterPathStroker, QPen, QPolygonF
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsPathItem,
    QStyleOptionGraphicsItem,
    QWidget,
)

from kbuilder.ui.shell import theme

ARROW = 6.0
MAX_CACHED_AREA = 400.0 * 400.0  # scene units² (a connection to the next layer: ~20x120)


def curve(p1: QPointF, p2: QPointF, flow: str = "down") -> QPainterPath:
    """An S-curve from ``p1`` (an output, below a node) to ``p2`` (an input): vertical when
    data flows down, horizontal when it flows right."""
    if flow == "right":
        dx = p2.x() - p1.x()
        bend = max(36.0, abs(dx) * 0.5) if dx > 0 else max(80.0, abs(dx) * 0.4)
        path = QPainterPath(p1)
        path.cubicTo(QPointF(p1.x() + bend, p1.y()), QPointF(p2.x() - bend - ARROW, p2.y()),
                     QPointF(p2.x() - ARROW, p2.y()))
        return path
    dy = p2.y() - p1.y()
    # Going up (a connection drawn against the flow) needs wide loops to stay readable.
    bend = max(36.0, abs(dy) * 0.5) if dy > 0 else max(80.0, abs(dy) * 0.4)
    path = QPainterPath(p1)
    path.cubicTo(QPointF(p1.x(), p1.y() + bend), QPointF(p2.x(), p2.y() - bend - ARROW),
                 QPointF(p2.x(), p2.y() - ARROW))
    return path


class QtEdgeItem(QGraphicsPathItem):
    """One edge of the graph (``edge_id``), or the connection being dragged (``None``).

    Args:
        edge_id: the graph edge, or ``None`` for the temporary connection.
        src: the source node item (``None`` while dragging from an input).
        src_port: the source's output index.
        dst: the target node item.
        dst_port: the target's input port name.
    """

    def __init__(self, edge_id: str | None, src=None, src_port: int = 0, dst=None,
                 dst_port: str = ""):
        super().__init__()
        self.edge_id = edge_id
        self.src, self.src_port, self.dst, self.dst_port = src, src_port, dst, dst_port
        self._path = QPainterPath()
        self._shape: QPainterPath | None = QPainterPath()
        self._arrow = QPolygonF()
        # The path item's own (C++) boundingRect covers curve and arrow: see update_path.
        self.setPen(QPen(Qt.GlobalColor.transparent, 3.0))
        self._hover = False
        self._tooltip = ""
        self.free_end: QPointF | None = None  # the mouse, while dragging
        self.valid = True  # the dragged connection's colour
        self.setZValue(0 if edge_id else 5)
        if edge_id is not None:
            self.setAcceptHoverEvents(True)
            self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
            # A pixmap per edge (panning blits it), but see update_path.
            self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)

    def set_tooltip(self, text: str) -> None:
        if text != self._tooltip:
            self._tooltip = text
            self.setToolTip(text)

    def endpoints(self) -> tuple[QPointF, QPointF]:
        start = (self.src.port_scene_pos(True, self.src_port) if self.src is not None
                 else self.free_end or QPointF())
        end = (self.dst.port_scene_pos(False, self.dst_port) if self.dst is not None
               else self.free_end or QPointF())
        return start, end

    def update_path(self) -> None:
        p1, p2 = self.endpoints()
        end = self.src if self.src is not None else self.dst
        flow = end.flow if end is not None else "down"
        self._path = curve(p1, p2, flow)
        if flow == "right":
            self._arrow = QPolygonF([QPointF(p2.x() - ARROW, p2.y() - ARROW * 0.7),
                                     QPointF(p2.x() - ARROW, p2.y() + ARROW * 0.7),
                                     QPointF(p2.x(), p2.y())])
        else:
            self._arrow = QPolygonF([QPointF(p2.x() - ARROW * 0.7, p2.y() - ARROW),
                                     QPointF(p2.x() + ARROW * 0.7, p2.y() - ARROW),
                                     QPointF(p2.x(), p2.y())])
        self._shape = None  # stroked when first asked (a hover, a click): most never are
        bounds = QPainterPath(self._path)
        bounds.addPolygon(self._arrow)
        self.setPath(bounds)  # for the bounding rect only; paint() draws the parts
        if self.edge_id is not None:
            # A long connection (a fan-out across the model) is drawn, not cached: its
            # pixmap, as big as its bounds, was redrawn on every zoom change (fit to view).
            r = bounds.boundingRect()
            mode = (QGraphicsItem.CacheMode.DeviceCoordinateCache
                    if r.width() * r.height() <= MAX_CACHED_AREA
                    else QGraphicsItem.CacheMode.NoCache)
            if self.cacheMode() != mode:
                self.setCacheMode(mode)

    def shape(self) -> QPainterPath:
        if self._shape is None:
            stroker = QPainterPathStroker()
            stroker.setWidth(10)
            self._shape = stroker.createStroke(self._path)
        return self._shape

    @property
    def curve(self) -> QPainterPath:
        """The connection's line, without its arrow (the far-out picture draws it)."""
        return self._path

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        c = theme.colors()
        if self.edge_id is None:
            color = c.valid if self.valid else c.edge
            pen = QPen(color, 2.0, Qt.PenStyle.DashLine)
        else:
            highlighted = self._hover or self.isSelected() or (
                (self.src is not None and self.src.isSelected())
                or (self.dst is not None and self.dst.isSelected())
            )
            color = c.edge_hover if highlighted else c.edge
            pen = QPen(color, 2.4 if self._hover or self.isSelected() else 1.6)
        lod = option.levelOfDetailFromTransform(painter.worldTransform())  # type: ignore[attr-defined]
        if lod < 0.2:
            pen.setWidthF(0)  # a cosmetic hairline, and no arrow: too small to see
            painter.setPen(pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawPath(self._path)
            return
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(self._path)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(color)
        painter.drawPolygon(self._arrow)

    def hoverEnterEvent(self, event) -> None:
        scene = self.scene()
        if scene is not None and hasattr(scene, "describe_edge"):
            # Computed on hover: the tensor shape changes with every edit upstream.
            self.set_tooltip(scene.describe_edge(self))
        self._hover = True
        self.update()
        super().hoverEnterEvent(event)

    def hoverLeaveEvent(self, event) -> None:
        self._hover = False
        self.update()
        super().hoverLeaveEvent(event)

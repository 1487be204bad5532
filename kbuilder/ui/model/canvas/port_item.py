"""A node's input or output port on the canvas.

Inputs sit on the node's top edge, outputs on its bottom edge (data flows down, as in the
layered layout). A port that accepts several connections (a merge layer's ``inputs``) is
drawn as a pill; an optional one is hollow. While a connection is being dragged, the scene
marks each input port as a valid or invalid target.

The port item only takes hover and hit tests; its node draws it (``paint_port``), inside
the node's cached pixmap, so panning a large graph runs no Python per port.
"""

from __future__ import annotations

from enum import Enum

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QFont, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from kbuilder.ui.shell import theme

RADIUS = 4.5
HIT_RADIUS = 10.0  # generous: ports are small, grabbing one should not need precision
LABEL_FONT = QFont("Sans Serif", 7)
LABEL_WIDTH = 64.0


class Highlight(Enum):
    NONE = 0
    VALID = 1
    INVALID = 2
    HOVER = 3


def short_label(port_name: str) -> str:
    """``attention_mask`` -> ``mask``: labels share a node's width with their neighbours."""
    return port_name.rsplit("_", 1)[-1] if "_" in port_name else port_name


class QtPortItem(QGraphicsItem):
    """One port of a node item (a child item, positioned by the node).

    Args:
        parent: the node item.
        is_output: output (bottom) or input (top) port.
        key: the output index, or the input port's name.
        label: text shown beside the port ("" for none).
        variadic: accepts several connections.
        required: must be connected.
    """

    Type = QGraphicsItem.UserType + 2

    def __init__(self, parent: QGraphicsItem, is_output: bool, key: int | str,
                 label: str = "", variadic: bool = False, required: bool = True):
        super().__init__(parent)
        self.is_output = is_output
        self.key = key
        self.label = label
        self.variadic = variadic
        self.required = required
        self.connected = False
        self.highlight = Highlight.NONE
        self._tooltip = ""
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemHasNoContents)
        self.setAcceptHoverEvents(True)
        # The view starts connections from ports itself; other clicks reach the node.
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.setZValue(2)

    def type(self) -> int:
        return self.Type

    @property
    def node_id(self) -> str:
        return self.parentItem().node_id  # type: ignore[union-attr]

    def _changed(self) -> None:
        parent = self.parentItem()
        if parent is not None:
            parent.update()

    def set_highlight(self, highlight: Highlight) -> None:
        if highlight is not self.highlight:
            self.highlight = highlight
            self._changed()

    def set_connected(self, connected: bool) -> None:
        if connected != self.connected:
            self.connected = connected
            self._changed()

    def set_tooltip(self, text: str) -> None:
        if text != self._tooltip:
            self._tooltip = text
            self.setToolTip(text)

    def boundingRect(self) -> QRectF:
        return QRectF(-HIT_RADIUS, -HIT_RADIUS, 2 * HIT_RADIUS, 2 * HIT_RADIUS)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addEllipse(QPointF(0, 0), HIT_RADIUS, HIT_RADIUS)
        return path

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        pass  # drawn by the node (ItemHasNoContents: never called)

    def hoverEnterEvent(self, event) -> None:
        scene = self.scene()
        if scene is not None and hasattr(scene, "describe_port"):
            self.set_tooltip(scene.describe_port(self))
        if self.highlight is Highlight.NONE:
            self.set_highlight(Highlight.HOVER)
        super().hoverEnterEvent(event)

    def hoverLeaveEvent(self, event) -> None:
        if self.highlight is Highlight.HOVER:
            self.set_highlight(Highlight.NONE)
        super().hoverLeaveEvent(event)


def paint_port(painter: QPainter, port: QtPortItem) -> None:
    """Draw ``port`` in its node's coordinates (called from the node's ``paint``)."""
    c = theme.colors()
    color = c.port
    width = 1.4
    w = RADIUS * 2.6 if port.variadic else RADIUS
    pos = port.pos()
    rect = QRectF(pos.x() - w, pos.y() - RADIUS, 2 * w, 2 * RADIUS)
    if port.highlight is Highlight.VALID:
        color, width = c.valid, 2.2
        rect = rect.adjusted(-1.5, -1.5, 1.5, 1.5)
    elif port.highlight is Highlight.INVALID:
        color, width = c.invalid, 1.6
    elif port.highlight is Highlight.HOVER:
        color, width = c.selection, 2.2
        rect = rect.adjusted(-1.5, -1.5, 1.5, 1.5)
    filled = port.connected or port.highlight is Highlight.VALID
    style = Qt.PenStyle.DotLine if not port.required and not filled else Qt.PenStyle.SolidLine
    painter.setPen(QPen(color, width, style))
    painter.setBrush(QBrush(color) if filled else QBrush(c.node))
    painter.drawRoundedRect(rect, RADIUS, RADIUS)
    if port.label:
        painter.setFont(LABEL_FONT)
        painter.setPen(c.muted if port.highlight is Highlight.NONE else color)
        if port.is_output:
            label = QRectF(pos.x() - LABEL_WIDTH / 2, pos.y() + RADIUS + 1, LABEL_WIDTH, 11)
            align = Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop
        else:
            label = QRectF(pos.x() - LABEL_WIDTH / 2, pos.y() - RADIUS - 12, LABEL_WIDTH, 11)
            align = Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom
        painter.drawText(label, int(align), port.label)

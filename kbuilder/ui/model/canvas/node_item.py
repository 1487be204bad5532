"""A node on the canvas: name, type, output shape and parameter count, ports, error badge.

The item is a projection: the scene tells it what to show (``set_identity``, ``set_ports``,
``set_result``) from the graph and the shape inference; it never reads or writes the model.
It caches its rendering in device coordinates, so panning a large graph only blits
pixmaps. Its level of detail follows the zoom: text from ``TEXT_LOD``, ports from
``PORTS_LOD``, and below ``BLOCK_LOD`` a plain block (no outline, no clipping) that costs
a couple of fills.

Ports sit on the top and bottom edges when data flows down, on the left and right edges
when it flows right (``set_flow``; the scene sets every node's flow).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsRectItem,
    QStyleOptionGraphicsItem,
    QWidget,
)

from kbuilder.ui.model.canvas.port_item import QtPortItem, paint_port, short_label
from kbuilder.ui.shell import theme
from kbuilder.ui.shell.sweep_range import SWEPT_COLOR

WIDTH = 184.0
HEIGHT = 62.0
ACCENT = 5.0
PAD = 10.0

TITLE_FONT = QFont("Sans Serif", 9)
TITLE_FONT.setBold(True)
TYPE_FONT = QFont("Sans Serif", 8)
SHAPE_FONT = QFont("DejaVu Sans Mono", 8)
BADGE_FONT = QFont("Sans Serif", 8)
BADGE_FONT.setBold(True)
TEXT_LOD = 0.4
PORTS_LOD = 0.35
BLOCK_LOD = 0.2




@dataclass(frozen=True)
class PortInfo:
    """What the node shows of one input port."""

    name: str
    variadic: bool = False
    required: bool = True


class QtBadgeItem(QGraphicsItem):
    """The round "!" on a node with a problem; its tooltip is the message."""

    RADIUS = 8.0

    def __init__(self, parent: QGraphicsItem):
        super().__init__(parent)
        self.color = QColor("#d1242f")
        self.setZValue(3)
        self.setAcceptHoverEvents(True)
        # Clicks go to the node (select, move), the badge only shows its tooltip.
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)

    def boundingRect(self) -> QRectF:
        r = self.RADIUS + 1
        return QRectF(-r, -r, 2 * r, 2 * r)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        painter.setPen(QPen(theme.colors().node, 1.5))
        painter.setBrush(self.color)
        painter.drawEllipse(QPointF(0, 0), self.RADIUS, self.RADIUS)
        painter.setPen(QColor("#ffffff"))
        painter.setFont(BADGE_FONT)
        painter.drawText(self.boundingRect(), int(Qt.AlignmentFlag.AlignCenter), "!")


class QtNodeItem(QGraphicsRectItem):
    """One graph node. ``pos()`` is the node's centre, as ``Node.position``.

    A ``QGraphicsRectItem`` (whose rect is the area drawn, ports and labels included) so
    that ``boundingRect`` stays in C++: Qt asks every item for it on every frame, and a
    Python override costs milliseconds per frame on a large graph.
    """

    def __init__(self, node_id: str):
        super().__init__()
        self.node_id = node_id
        self.kind = "layer"
        self.edges: set = set()  # QtEdgeItem; updated when the node moves
        self.inputs: dict[str, QtPortItem] = {}
        self.outputs: list[QtPortItem] = []
        self._port_infos: tuple[PortInfo, ...] = ()
        self._name = ""
        self._type = ""
        self._accent = QColor("#94a3b8")
        self._shape_text = ""
        self._params_text = ""
        self._status = "ok"  # ok | error | warning | blocked
        self._frozen = ""  # "" | "frozen" | "partly" (a block with some layers frozen)
        self._elided: tuple[str, str, str, str] = ("", "", "", "")
        self._rect = QRectF(-WIDTH / 2, -HEIGHT / 2, WIDTH, HEIGHT)
        # Room for the ports, which stick out, and their labels above and below.
        self.setRect(self._rect.adjusted(-8, -20, 8, 20))
        self.setPen(Qt.PenStyle.NoPen)
        self._text_dirty = True
        self._swept = ""  # the swept parameters' ranges, as text ("" when none)
        self._tooltip = ""
        self.flow = "down"
        self._badge: QtBadgeItem | None = None  # made when a problem is first shown
        # The tooltip, written when first asked (``toolTip``): opening a model of 10,000
        # nodes need not write 10,000 of them.
        self._tooltip_source: Callable[[], str] | None = None
        # No ItemSendsGeometryChanges: a Python itemChange on every change of every item
        # costs more than the scene's explicit edge updates (see QtGraphScene).
        self.setFlags(
            QGraphicsItem.GraphicsItemFlag.ItemIsSelectable
            | QGraphicsItem.GraphicsItemFlag.ItemIsMovable
        )
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.setZValue(1)

    @property
    def name(self) -> str:
        return self._name

    @property
    def shown_name(self) -> str:
        """The name as drawn (elided to the node's width)."""
        if self._text_dirty:
            self._elide()
        return self._elided[0]

    @property
    def accent(self) -> QColor:
        """The colour of the node's category (the overview draws nodes in it)."""
        return self._accent

    @property
    def shape_text(self) -> str:
        return self._shape_text

    @property
    def params_text(self) -> str:
        return self._params_text

    @property
    def status(self) -> str:
        return self._status

    # ----------------------------------------------------------------- content
    def set_identity(self, name: str, type_text: str, category: str, kind: str) -> None:
        self._name, self._type, self.kind = name, type_text, kind
        self._accent = theme.category_color(category)
        self._text_changed()

    def set_ports(self, inputs: Sequence[PortInfo], n_outputs: int) -> None:
        """Create or drop port items so they match; existing ones are kept (edges use them)."""
        infos = tuple(inputs)
        if infos != self._port_infos:
            self._port_infos = infos
            labelled = len(infos) > 1
            for port in self.inputs.values():
                port.setParentItem(None)
                if port.scene() is not None:
                    port.scene().removeItem(port)
            self.inputs = {}
            for info in infos:
                port = QtPortItem(self, False, info.name,
                                  short_label(info.name) if labelled else "",
                                  info.variadic, info.required)
                self.inputs[info.name] = port
        if n_outputs != len(self.outputs):
            for port in self.outputs[n_outputs:]:
                port.setParentItem(None)
                if port.scene() is not None:
                    port.scene().removeItem(port)
            del self.outputs[n_outputs:]
            for i in range(len(self.outputs), n_outputs):
                self.outputs.append(QtPortItem(self, True, i))
            for i, port in enumerate(self.outputs):
                port.label = str(i) if n_outputs > 1 else ""
        self._place_ports()
        self.update()

    def set_flow(self, flow: str) -> None:
        """``"down"``: inputs on top, outputs below; ``"right"``: inputs left, outputs right."""
        if flow != self.flow:
            self.flow = flow
            self._place_ports()
            self.update()

    def _place_ports(self) -> None:
        for ports, output in ((list(self.inputs.values()), False), (self.outputs, True)):
            n = len(ports)
            for i, port in enumerate(ports):
                if self.flow == "right":
                    port.setPos(WIDTH / 2 if output else -WIDTH / 2,
                                -HEIGHT / 2 + HEIGHT * (i + 1) / (n + 1))
                else:
                    port.setPos(-WIDTH / 2 + WIDTH * (i + 1) / (n + 1),
                                HEIGHT / 2 if output else -HEIGHT / 2)

    @property
    def frozen(self) -> str:
        return self._frozen

    def set_frozen(self, frozen: str) -> None:
        """``"frozen"`` (weights that do not learn: a hatched face), ``"partly"`` (a
        block with frozen layers: hatched at its accent) or ``""``."""
        if frozen != self._frozen:
            self._frozen = frozen
            self.update()

    @property
    def badge(self) -> QtBadgeItem:
        """The round "!" shown on a node with a problem (hidden otherwise)."""
        if self._badge is None:
            self._badge = QtBadgeItem(self)
            self._badge.setPos(WIDTH / 2 - 3, -HEIGHT / 2 + 3)
            self._badge.hide()
        return self._badge

    @property
    def _has_badge(self) -> bool:
        return self._badge is not None and self._badge.isVisible()

    def set_result(self, shape_text: str, params_text: str, status: str, message: str,
                   tooltip: str | Callable[[], str]) -> None:
        """What the node shows of its inference result; ``tooltip`` may be a function
        that writes it, called when the tooltip is first asked for."""
        self._shape_text, self._params_text, self._status = shape_text, params_text, status
        if status in ("error", "warning"):
            c = theme.colors()
            self.badge.color = c.error if status == "error" else c.warning
            self.badge.setToolTip(message)
            self.badge.show()
            self.badge.update()
        elif self._badge is not None:
            self._badge.hide()
        if callable(tooltip):
            self._tooltip, self._tooltip_source = "", tooltip
        else:
            self._tooltip, self._tooltip_source = tooltip, None
        self._show_tooltip()
        self._text_changed()

    @property
    def swept(self) -> str:
        return self._swept

    def set_swept(self, text: str) -> None:
        """Mark the node as having swept parameters (``text``: their ranges; "" clears)."""
        if text != self._swept:
            self._swept = text
            self._show_tooltip()
            self.update()

    def toolTip(self) -> str:  # noqa: N802 (Qt's name)
        """The tooltip (written now if it was left to be written when asked)."""
        self.write_tooltip()
        return super().toolTip()

    def write_tooltip(self) -> None:
        """Write a tooltip left to be written when asked (the scene calls it before Qt
        shows one: Qt reads it in C++)."""
        if self._tooltip_source is not None:
            self._tooltip, self._tooltip_source = self._tooltip_source(), None
            self._show_tooltip()

    def _show_tooltip(self) -> None:
        if self._tooltip_source is not None:
            return
        self.setToolTip(self._tooltip + (f"\nSwept in the sweep: {self._swept}"
                                         if self._swept else ""))

    def _text_changed(self) -> None:
        # Eliding is done when painted: most nodes of a large graph are off screen.
        self._text_dirty = True
        self.update()

    def _elide(self) -> None:
        # Line 1: the name (full width). Line 2: the type, and the weights on the right.
        # Line 3: the output shape, the number users look for first.
        inner = WIDTH - ACCENT - 2 * PAD - (16 if self.kind in ("input", "output") else 0)
        type_metrics = QFontMetricsF(TYPE_FONT)
        # Elided in the middle: generated names share long prefixes and differ at the
        # end ("expanded_conv_depthwise_BN"); the tooltip has the full name.
        name = QFontMetricsF(TITLE_FONT).elidedText(
            self._name, Qt.TextElideMode.ElideMiddle, inner - (12 if self._has_badge else 0)
        )
        params = type_metrics.elidedText(self._params_text, Qt.TextElideMode.ElideLeft,
                                         inner * 0.6)
        room = inner - type_metrics.horizontalAdvance(params) - 8
        type_text = type_metrics.elidedText(self._type, Qt.TextElideMode.ElideRight, room)
        shape = QFontMetricsF(SHAPE_FONT).elidedText(
            self._shape_text, Qt.TextElideMode.ElideMiddle, inner
        )
        self._elided = (name, type_text, shape, params)
        self._text_dirty = False

    def port_scene_pos(self, is_output: bool, key: int | str) -> QPointF:
        """Where an edge attaches; the node's edge centre when the port does not exist."""
        port = None
        if is_output and isinstance(key, int) and key < len(self.outputs):
            port = self.outputs[key]
        elif not is_output:
            port = self.inputs.get(str(key))
        if port is not None:
            return port.scenePos()
        if self.flow == "right":
            return self.scenePos() + QPointF(WIDTH / 2 if is_output else -WIDTH / 2, 0)
        return self.scenePos() + QPointF(0, HEIGHT / 2 if is_output else -HEIGHT / 2)

    def refresh_theme(self) -> None:
        if self._badge is not None:
            self._badge.update()
        self.update()

    # ---------------------------------------------------------------- painting
    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addRoundedRect(self._rect, 6, 6)
        return path

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        c = theme.colors()
        lod = option.levelOfDetailFromTransform(painter.worldTransform())  # type: ignore[attr-defined]
        rect = self._rect
        selected = self.isSelected()
        if lod < BLOCK_LOD:
            # Far out a node is a few pixels: a block in its category's colour, red when
            # it has a problem, the selection colour when selected.
            painter.fillRect(rect, c.selection if selected else
                             (c.error if self._status == "error" else c.node_border))
            painter.fillRect(QRectF(rect.left(), rect.top(), rect.width() * 0.3,
                                    rect.height()), self._accent)
            return
        self._paint_detail(painter, lod, c, selected)

    def _paint_detail(self, painter: QPainter, lod: float, c, selected: bool) -> None:
        rect = self._rect
        if self._status == "error":
            border, width = c.error, 1.6
        elif selected:
            border, width = c.selection, 2.2
        else:
            border, width = c.node_border, 1.0
        if selected and self._status == "error":
            width = 2.4
        painter.setPen(QPen(border, width))
        painter.setBrush(c.node)
        is_io = self.kind in ("input", "output")
        radius = 16.0 if is_io else 6.0
        painter.drawRoundedRect(rect, radius, radius)
        if self._swept:  # a dashed violet outline: some of its parameters are swept
            painter.save()
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.setPen(QPen(QColor(SWEPT_COLOR), 1.6, Qt.PenStyle.DashLine))
            painter.drawRoundedRect(rect.adjusted(-3.5, -3.5, 3.5, 3.5), radius + 3, radius + 3)
            painter.restore()
        # The category accent, clipped to the rounded outline.
        painter.save()
        clip = QPainterPath()
        clip.addRoundedRect(rect.adjusted(0.5, 0.5, -0.5, -0.5), radius, radius)
        painter.setClipPath(clip)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(self._accent)
        if is_io:
            painter.drawRect(QRectF(rect.left(), rect.top(), ACCENT + 10, rect.height()))
        else:
            painter.drawRect(QRectF(rect.left(), rect.top(), ACCENT, rect.height()))
        if self._frozen:
            # Frozen: ice-blue diagonal hatching over the face (the whole of it, or a
            # band at the left of a partly frozen block).
            ice = QColor(c.frozen)
            ice.setAlpha(110)
            painter.setBrush(QBrush(ice, Qt.BrushStyle.BDiagPattern))
            face = rect if self._frozen == "frozen" else QRectF(
                rect.left(), rect.top(), rect.width() * 0.3, rect.height())
            painter.drawRect(face)
        if self.kind == "block":
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.setPen(QPen(self._accent, 1.0, Qt.PenStyle.DashLine))
            painter.drawRoundedRect(rect.adjusted(3.5, 3.5, -3.5, -3.5), 4, 4)
        painter.restore()
        if lod < PORTS_LOD:
            return
        for port in (*self.inputs.values(), *self.outputs):
            paint_port(painter, port)
        if lod < TEXT_LOD:
            return
        if self._text_dirty:
            self._elide()
        name, type_text, shape, params = self._elided
        io = self.kind in ("input", "output")
        left = rect.left() + ACCENT + PAD + (8 if io else 0)
        right = rect.right() - PAD - (8 if io else 0)
        top = rect.top() + 5
        left_mid = int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        painter.setFont(TITLE_FONT)
        painter.setPen(c.text)
        painter.drawText(QRectF(left, top, right - left, 17), left_mid, name)
        line2 = QRectF(left, top + 17, right - left, 15)
        painter.setFont(TYPE_FONT)
        painter.setPen(c.muted)
        painter.drawText(line2, left_mid, type_text)
        painter.drawText(line2, int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter),
                         params)
        painter.setFont(SHAPE_FONT)
        painter.setPen(c.error if self._status == "error" else
                       (c.muted if self._status != "ok" else c.text))
        painter.drawText(QRectF(left, top + 33, right - left, 16), left_mid, shape)


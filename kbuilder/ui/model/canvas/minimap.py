"""The overview: the whole graph in a corner of the canvas, with the region in view.

A picture of the nodes (a small block each, in its category's colour, and the connections
while there are few enough to tell apart) is drawn once into a pixmap and redrawn only
when nodes are added, removed or moved, coalesced to once per event-loop turn; panning
and zooming repaint just the pixmap and the frame of the visible region. Clicking or
dragging in the overview centres the canvas there.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, QSize, QSizeF, Qt, QTimer
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPen, QPixmap
from PySide6.QtWidgets import QWidget

from kbuilder.ui.model.canvas.node_item import HEIGHT as NODE_H
from kbuilder.ui.model.canvas.node_item import WIDTH as NODE_W
from kbuilder.ui.model.canvas.scene import QtGraphScene
from kbuilder.ui.model.canvas.view import QtGraphView
from kbuilder.ui.shell import theme

SIZE = QSize(220, 160)
MARGIN = 12
INSET = 6.0
# Above this many connections the overview shows the nodes only (lines become a smear).
MAX_DRAWN_EDGES = 3000
MIN_FRAME = 8.0


class QtMinimap(QWidget):
    """An overview of ``view``'s scene, floating over the view's bottom-right corner."""

    def __init__(self, view: QtGraphView, scene: QtGraphScene):
        super().__init__(view)
        self._view, self._scene = view, scene
        self._picture: QPixmap | None = None
        self._bounds = QRectF()  # the scene rectangle the picture shows
        self._scale = 1.0
        self._offset = QPointF()
        self.setFixedSize(SIZE)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Overview of the whole model: click or drag to move the view there")
        self.setObjectName("canvasOverview")
        self._stale = QTimer(self, singleShot=True, interval=0)
        self._stale.timeout.connect(self.rebuild)
        scene.structure_changed.connect(self._stale.start)
        scene.nodes_moved.connect(self._stale.start)
        view.horizontalScrollBar().valueChanged.connect(lambda _v: self.update())
        view.verticalScrollBar().valueChanged.connect(lambda _v: self.update())
        view.zoom_changed.connect(lambda _z: self.update())
        view.installEventFilter(self)
        theme.manager().changed.connect(self._stale.start)
        self._place()

    # --------------------------------------------------------------- geometry
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self._view and event.type() == QEvent.Type.Resize:
            self._place()
        return False

    def _place(self) -> None:
        self.move(self._view.width() - SIZE.width() - MARGIN,
                  self._view.height() - SIZE.height() - MARGIN)

    def to_scene(self, point: QPointF) -> QPointF:
        """The scene point under ``point`` (widget coordinates)."""
        return QPointF((point.x() - self._offset.x()) / self._scale + self._bounds.left(),
                       (point.y() - self._offset.y()) / self._scale + self._bounds.top())

    def to_map(self, point: QPointF) -> QPointF:
        """Where scene ``point`` is drawn in the overview."""
        return QPointF((point.x() - self._bounds.left()) * self._scale + self._offset.x(),
                       (point.y() - self._bounds.top()) * self._scale + self._offset.y())

    def visible_region(self) -> QRectF:
        """The scene rectangle the canvas shows."""
        return self._view.mapToScene(self._view.viewport().rect()).boundingRect()

    # ---------------------------------------------------------------- picture
    def rebuild(self) -> None:
        """Draw the graph into the cached picture (after nodes were added or moved)."""
        self._stale.stop()
        scene = self._scene
        bounds = scene.nodes_rect()
        if bounds.isEmpty():
            self._picture = None
            self.update()
            return
        bounds = bounds.adjusted(-40, -40, 40, 40)
        room_w, room_h = SIZE.width() - 2 * INSET, SIZE.height() - 2 * INSET
        self._scale = min(room_w / bounds.width(), room_h / bounds.height())
        self._offset = QPointF(INSET + (room_w - bounds.width() * self._scale) / 2,
                               INSET + (room_h - bounds.height() * self._scale) / 2)
        self._bounds = bounds
        ratio = self.devicePixelRatioF()
        picture = QPixmap(SIZE * ratio)
        picture.setDevicePixelRatio(ratio)
        picture.fill(Qt.GlobalColor.transparent)
        c = theme.colors()
        painter = QPainter(picture)
        if len(scene.edges) <= MAX_DRAWN_EDGES:
            painter.setPen(QPen(c.edge, 0))
            for edge in scene.edges.values():
                a, b = edge.endpoints()
                painter.drawLine(self.to_map(a), self.to_map(b))
        # One fill per colour (a C++ loop over the rectangles), not one call per node.
        scale, left, top = self._scale, bounds.left(), bounds.top()
        dx, dy = self._offset.x() - NODE_W / 2 * scale, self._offset.y() - NODE_H / 2 * scale
        w, h = max(2.0, NODE_W * scale), max(2.0, NODE_H * scale)
        by_colour: dict[int, tuple[QColor, list[QRectF]]] = {}
        for item in scene.nodes.values():
            colour = c.error if item.status == "error" else item.accent
            p = item.pos()
            rects = by_colour.setdefault(colour.rgba(), (colour, []))[1]
            rects.append(QRectF((p.x() - left) * scale + dx, (p.y() - top) * scale + dy, w, h))
        painter.setPen(Qt.PenStyle.NoPen)
        for colour, rects in by_colour.values():
            painter.setBrush(colour)
            painter.drawRects(rects)
        painter.end()
        self._picture = picture
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        c = theme.colors()
        painter = QPainter(self)
        background = QColor(c.background)
        background.setAlpha(235)
        painter.setPen(QPen(c.node_border, 1))
        painter.setBrush(background)
        painter.drawRoundedRect(QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5), 6, 6)
        if self._picture is None:
            painter.end()
            return
        painter.drawPixmap(0, 0, self._picture)
        region = self.visible_region()
        top_left, bottom_right = self.to_map(region.topLeft()), self.to_map(region.bottomRight())
        frame = QRectF(top_left, bottom_right).intersected(QRectF(self.rect()))
        if frame.width() < MIN_FRAME or frame.height() < MIN_FRAME:
            # Zoomed in on a huge graph: keep the frame big enough to see and to grab.
            center = frame.center()
            frame.setSize(frame.size().expandedTo(QSizeF(MIN_FRAME, MIN_FRAME)))
            frame.moveCenter(center)
        painter.setClipRect(self.rect())
        fill = QColor(c.selection)
        fill.setAlpha(40)
        painter.setBrush(fill)
        painter.setPen(QPen(c.selection, 1.5))
        painter.drawRect(frame)
        painter.end()

    # ------------------------------------------------------------------ mouse
    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self._picture is not None:
            self._view.centerOn(self.to_scene(event.position()))
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton and self._picture is not None:
            self._view.centerOn(self.to_scene(event.position()))
            event.accept()
            return
        super().mouseMoveEvent(event)

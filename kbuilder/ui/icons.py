"""Toolbar icons drawn with QPainter, in the theme's text colour.

Drawn rather than shipped: no icon theme exists on a bare Linux, and drawn icons follow
the light/dark theme without a second set of files.
"""

from __future__ import annotations

import functools
import math

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPainterPath, QPen, QPixmap

from kbuilder.ui import theme

SIZE = 32  # drawn at 2x and scaled down by Qt for crisp edges
ACCENTS = {"stop": "#d1242f"}  # icons whose accent is not the theme's selection colour


def icon(name: str) -> QIcon:
    """The icon called ``name`` (see ``_DRAW``) in the current theme's colours, with its
    disabled look drawn in the theme's disabled colour."""
    c = theme.colors()
    accent = ACCENTS.get(name, c.selection.name())
    return _icon(name, c.text.name(), accent, c.disabled.name())


@functools.cache
def _icon(name: str, ink: str, accent: str, disabled: str) -> QIcon:
    result = QIcon(_pixmap(name, ink, accent))
    # Qt's own disabled look only lightens an icon: light ink on a dark theme then looks
    # as enabled as before. Draw it in the disabled colour, accent included.
    result.addPixmap(_pixmap(name, disabled, disabled), QIcon.Mode.Disabled)
    return result


def _pixmap(name: str, ink: str, accent: str) -> QPixmap:
    pixmap = QPixmap(SIZE, SIZE)
    pixmap.fill(Qt.GlobalColor.transparent)
    p = QPainter(pixmap)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(_pen(QColor(ink)))
    try:
        _DRAW[name](p, QColor(ink), QColor(accent))
    finally:
        p.end()
    return pixmap


def _pen(color: QColor, width: float = 2.4, style=Qt.PenStyle.SolidLine) -> QPen:
    return QPen(color, width, style, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin)


def _page(p: QPainter, x: float = 8, y: float = 4, w: float = 16, h: float = 24) -> None:
    path = QPainterPath()
    path.moveTo(x, y)
    path.lineTo(x + w - 6, y)
    path.lineTo(x + w, y + 6)
    path.lineTo(x + w, y + h)
    path.lineTo(x, y + h)
    path.closeSubpath()
    p.drawPath(path)


def _new(p: QPainter, ink: QColor, accent: QColor) -> None:
    _page(p)
    p.setPen(_pen(accent))
    p.drawLine(QPointF(16, 12), QPointF(16, 22))
    p.drawLine(QPointF(11, 17), QPointF(21, 17))


def _open(p: QPainter, ink: QColor, accent: QColor) -> None:
    path = QPainterPath()
    path.moveTo(4, 8)
    path.lineTo(12, 8)
    path.lineTo(14, 11)
    path.lineTo(26, 11)
    path.lineTo(26, 25)
    path.lineTo(4, 25)
    path.closeSubpath()
    p.drawPath(path)
    p.drawLine(QPointF(4, 15), QPointF(26, 15))


def _save(p: QPainter, ink: QColor, accent: QColor) -> None:
    path = QPainterPath()
    path.moveTo(5, 5)
    path.lineTo(23, 5)
    path.lineTo(27, 9)
    path.lineTo(27, 27)
    path.lineTo(5, 27)
    path.closeSubpath()
    p.drawPath(path)
    p.drawRect(QRectF(10, 5, 11, 7))
    p.drawRect(QRectF(9, 17, 14, 10))


def _arrow(p: QPainter, mirrored: bool) -> None:
    p.save()
    if mirrored:
        p.translate(SIZE, 0)
        p.scale(-1, 1)
    path = QPainterPath()
    path.moveTo(9, 13)
    path.lineTo(20, 13)
    path.cubicTo(29, 13, 29, 26, 20, 26)
    path.lineTo(12, 26)
    p.drawPath(path)
    p.drawLine(QPointF(9, 13), QPointF(14, 8))
    p.drawLine(QPointF(9, 13), QPointF(14, 18))
    p.restore()


def _undo(p: QPainter, ink: QColor, accent: QColor) -> None:
    _arrow(p, False)


def _redo(p: QPainter, ink: QColor, accent: QColor) -> None:
    _arrow(p, True)


def _magnifier(p: QPainter) -> None:
    p.drawEllipse(QRectF(5, 5, 16, 16))
    p.drawLine(QPointF(19, 19), QPointF(27, 27))


def _zoom_in(p: QPainter, ink: QColor, accent: QColor) -> None:
    _magnifier(p)
    p.drawLine(QPointF(9, 13), QPointF(17, 13))
    p.drawLine(QPointF(13, 9), QPointF(13, 17))


def _zoom_out(p: QPainter, ink: QColor, accent: QColor) -> None:
    _magnifier(p)
    p.drawLine(QPointF(9, 13), QPointF(17, 13))


def _fit(p: QPainter, ink: QColor, accent: QColor) -> None:
    for x, y, dx, dy in ((5, 5, 1, 1), (27, 5, -1, 1), (5, 27, 1, -1), (27, 27, -1, -1)):
        p.drawLine(QPointF(x, y), QPointF(x + 7 * dx, y))
        p.drawLine(QPointF(x, y), QPointF(x, y + 7 * dy))
    p.drawRect(QRectF(11, 11, 10, 10))


def _box(p: QPainter, x: float, y: float, accent: QColor | None = None) -> None:
    if accent is not None:
        p.setBrush(accent)
    p.drawRoundedRect(QRectF(x, y, 10, 7), 2, 2)
    p.setBrush(Qt.BrushStyle.NoBrush)


def _arrange(p: QPainter, ink: QColor, accent: QColor) -> None:
    p.drawLine(QPointF(16, 11), QPointF(9, 20))
    p.drawLine(QPointF(16, 11), QPointF(23, 20))
    _box(p, 11, 4)
    _box(p, 4, 20)
    _box(p, 18, 20)


def _cut(p: QPainter, ink: QColor, accent: QColor) -> None:
    p.drawEllipse(QRectF(5, 19, 8, 8))
    p.drawEllipse(QRectF(19, 19, 8, 8))
    p.drawLine(QPointF(11, 20), QPointF(22, 4))
    p.drawLine(QPointF(21, 20), QPointF(10, 4))


def _copy(p: QPainter, ink: QColor, accent: QColor) -> None:
    p.drawRoundedRect(QRectF(11, 10, 15, 18), 2, 2)
    p.drawPolyline([QPointF(7, 22), QPointF(6, 22), QPointF(6, 4), QPointF(20, 4),
                    QPointF(20, 6)])


def _paste(p: QPainter, ink: QColor, accent: QColor) -> None:
    p.drawRoundedRect(QRectF(6, 7, 20, 21), 2, 2)
    p.drawRoundedRect(QRectF(11, 4, 10, 6), 2, 2)


def _delete(p: QPainter, ink: QColor, accent: QColor) -> None:
    p.drawLine(QPointF(5, 8), QPointF(27, 8))
    p.drawLine(QPointF(13, 8), QPointF(13, 4))
    p.drawLine(QPointF(13, 4), QPointF(19, 4))
    p.drawLine(QPointF(19, 4), QPointF(19, 8))
    path = QPainterPath()
    path.moveTo(8, 8)
    path.lineTo(10, 28)
    path.lineTo(22, 28)
    path.lineTo(24, 8)
    p.drawPath(path)
    p.drawLine(QPointF(14, 13), QPointF(14, 23))
    p.drawLine(QPointF(18, 13), QPointF(18, 23))


def _import(p: QPainter, ink: QColor, accent: QColor) -> None:
    p.drawPolyline([QPointF(5, 18), QPointF(5, 27), QPointF(27, 27), QPointF(27, 18)])
    p.setPen(_pen(accent))
    p.drawLine(QPointF(16, 4), QPointF(16, 20))
    p.drawLine(QPointF(16, 20), QPointF(10, 14))
    p.drawLine(QPointF(16, 20), QPointF(22, 14))


def _export(p: QPainter, ink: QColor, accent: QColor) -> None:
    p.drawPolyline([QPointF(5, 18), QPointF(5, 27), QPointF(27, 27), QPointF(27, 18)])
    p.setPen(_pen(accent))
    p.drawLine(QPointF(16, 21), QPointF(16, 4))
    p.drawLine(QPointF(16, 4), QPointF(10, 10))
    p.drawLine(QPointF(16, 4), QPointF(22, 10))


def _up(p: QPainter, ink: QColor, accent: QColor) -> None:
    p.drawLine(QPointF(16, 26), QPointF(16, 7))
    p.drawLine(QPointF(16, 7), QPointF(9, 14))
    p.drawLine(QPointF(16, 7), QPointF(23, 14))


def _layers(p: QPainter, ink: QColor, accent: QColor) -> None:
    for i, y in enumerate((6, 14, 22)):
        _box(p, 6 + i * 2, y, accent if i == 1 else None)
        p.drawRoundedRect(QRectF(6, y, 20, 6), 2, 2)


def _code(p: QPainter, ink: QColor, accent: QColor) -> None:
    p.drawPolyline([QPointF(11, 9), QPointF(4, 16), QPointF(11, 23)])
    p.drawPolyline([QPointF(21, 9), QPointF(28, 16), QPointF(21, 23)])
    p.setPen(_pen(accent))
    p.drawLine(QPointF(18, 6), QPointF(14, 26))


def _group(p: QPainter, ink: QColor, accent: QColor) -> None:
    p.setPen(_pen(ink, 2.0, Qt.PenStyle.DashLine))
    p.drawRoundedRect(QRectF(4, 4, 24, 24), 4, 4)
    p.setPen(_pen(ink))
    _box(p, 11, 9, accent)
    _box(p, 11, 17)


def _play(p: QPainter, ink: QColor, accent: QColor) -> None:
    path = QPainterPath()
    r = 11
    cx, cy = 16, 16
    for i in range(3):
        a = math.radians(120 * i)
        pt = QPointF(cx + r * math.cos(a), cy + r * math.sin(a))
        path.lineTo(pt) if i else path.moveTo(pt)
    path.closeSubpath()
    p.setBrush(accent)
    p.drawPath(path)


def _pause(p: QPainter, ink: QColor, accent: QColor) -> None:
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(accent)
    p.drawRoundedRect(QRectF(8, 6, 6, 20), 1.5, 1.5)
    p.drawRoundedRect(QRectF(18, 6, 6, 20), 1.5, 1.5)


def _stop(p: QPainter, ink: QColor, accent: QColor) -> None:
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(accent)
    p.drawRoundedRect(QRectF(7, 7, 18, 18), 3, 3)


_DRAW = {
    "new": _new,
    "open": _open,
    "save": _save,
    "undo": _undo,
    "redo": _redo,
    "zoom_in": _zoom_in,
    "zoom_out": _zoom_out,
    "fit": _fit,
    "arrange": _arrange,
    "cut": _cut,
    "copy": _copy,
    "paste": _paste,
    "delete": _delete,
    "import": _import,
    "export": _export,
    "up": _up,
    "layers": _layers,
    "code": _code,
    "group": _group,
    "play": _play,
    "pause": _pause,
    "stop": _stop,
}

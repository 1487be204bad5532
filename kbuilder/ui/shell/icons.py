"""Toolbar and button icons: the SVG files in resources/icons/, drawn by QtSvg in the theme's
colours, and the application icon (resources/kbuilder.svg).

Each icon file is a 24x24 line drawing whose paint is ``currentColor``: it takes the theme's
text colour (the ink), or the accent where an element (or a group around it) has
``class="accent"``. A disabled icon is drawn wholly in the theme's disabled colour: Qt's own
disabled look only lightens an icon, and light ink on a dark theme then looks as enabled as
before. An engine (``QtSvgIconEngine``) renders the drawing at exactly the size and device
pixel ratio asked for, so an icon is crisp at 16 px on a 2x screen as at 64 px.

Icons are made and rendered on the GUI thread only: Qt's painting types are not thread-safe
(creating them on a background thread crashed CI once), so ``icon`` refuses other threads.
"""

from __future__ import annotations

import functools
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from PySide6.QtCore import QByteArray, QCoreApplication, QRectF, QSize, Qt
from PySide6.QtGui import QIcon, QIconEngine, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer

from kbuilder.ui.shell import resources, theme

SVG_NS = "http://www.w3.org/2000/svg"
ET.register_namespace("", SVG_NS)  # write <svg>, not <ns0:svg>, back out
PAINTS = ("stroke", "fill")
WARNING_ICONS = frozenset({"stop"})  # accented in the theme's error colour, not the selection's


@dataclass(frozen=True)
class IconColors:
    """The colours an icon is drawn in (``#rrggbb``)."""

    ink: str
    accent: str
    disabled: str


@functools.cache
def names() -> tuple[str, ...]:
    """Every icon's name: the files in resources/icons/ without ``.svg`` (listed once)."""
    return tuple(resources.names("icons", ".svg"))


def icon(name: str) -> QIcon:
    """The icon ``name`` (resources/icons/NAME.svg) in the current theme's colours. Call it
    again after a theme change (``theme.manager().changed``) for the new colours.

    Raises:
        ResourceError: there is no such icon file.
        RuntimeError: called from a thread other than the GUI thread.
    """
    _require_gui_thread()
    c = theme.colors()
    accent = c.error if name in WARNING_ICONS else c.selection
    return _icon(name, IconColors(c.text.name(), accent.name(), c.disabled.name()))


def app_icon() -> QIcon:
    """kbuilder's application icon (resources/kbuilder.svg), as it is: not recoloured."""
    _require_gui_thread()
    return _app_icon()


def recolour(svg: bytes, ink: str, accent: str) -> bytes:
    """``svg`` with every ``currentColor`` paint (``stroke``, ``fill``, as attributes) made
    ``ink``, or ``accent`` inside an element of class ``accent``.

    Inherited paints are resolved the way SVG resolves ``currentColor``: at the element
    that is painted, so an accent element that inherits ``stroke="currentColor"`` from the
    root is stroked in the accent.
    """
    root = ET.fromstring(svg)

    def paint(element: ET.Element, colour: str, inherited: dict[str, str | None]) -> None:
        if "accent" in element.get("class", "").split():
            colour = accent
        own = {}
        for attr in PAINTS:
            own[attr] = element.get(attr, inherited[attr])
            if own[attr] == "currentColor":
                element.set(attr, colour)
        for child in element:
            paint(child, colour, own)

    paint(root, ink, dict.fromkeys(PAINTS))
    return ET.tostring(root)


class QtSvgIconEngine(QIconEngine):
    """Renders an icon from SVG at whatever size and device pixel ratio it is asked for.

    Args:
        name: what the icon is called (``iconName``).
        normal: the drawing for the normal, active and selected modes.
        disabled: the drawing for the disabled mode.
    """

    def __init__(self, name: str, normal: QSvgRenderer, disabled: QSvgRenderer):
        super().__init__()
        self._name = name
        self._normal = normal
        self._disabled = disabled
        self._pixmaps: dict[tuple[int, int, float, QIcon.Mode], QPixmap] = {}

    def _renderer(self, mode: QIcon.Mode) -> QSvgRenderer:
        return self._disabled if mode == QIcon.Mode.Disabled else self._normal

    def paint(self, painter: QPainter, rect, mode: QIcon.Mode, state: QIcon.State) -> None:
        self._renderer(mode).render(painter, _square(QRectF(rect)))

    def pixmap(self, size: QSize, mode: QIcon.Mode, state: QIcon.State) -> QPixmap:
        return self.scaledPixmap(size, mode, state, 1.0)

    def scaledPixmap(self, size: QSize, mode: QIcon.Mode,  # noqa: N802 (Qt's name)
                     state: QIcon.State, scale: float) -> QPixmap:
        key = (size.width(), size.height(), scale, mode)
        pixmap = self._pixmaps.get(key)
        if pixmap is None:
            pixmap = QPixmap(size * scale)
            pixmap.fill(Qt.GlobalColor.transparent)
            painter = QPainter(pixmap)
            try:
                self._renderer(mode).render(painter, _square(QRectF(pixmap.rect())))
            finally:
                painter.end()
            pixmap.setDevicePixelRatio(scale)
            self._pixmaps[key] = pixmap
        return pixmap

    def iconName(self) -> str:  # noqa: N802 (Qt's name)
        return self._name

    def clone(self) -> QtSvgIconEngine:
        # Qt clones an engine when a shared QIcon is changed (addPixmap, ...), which
        # kbuilder never does. Qt then owns the clone, but PySide6 would free the Python
        # object behind it once this returns (a crash at the next paint), so it is kept.
        engine = QtSvgIconEngine(self._name, self._normal, self._disabled)
        _CLONES.append(engine)
        return engine


_CLONES: list[QtSvgIconEngine] = []


def _square(rect: QRectF) -> QRectF:
    """The largest square centred in ``rect``: the drawings are square."""
    side = min(rect.width(), rect.height())
    return QRectF(rect.center().x() - side / 2, rect.center().y() - side / 2, side, side)


def _require_gui_thread() -> None:
    # Asked of Python, not Qt: QThread.currentThread() would itself create a Qt object on
    # a foreign thread. kbuilder's GUI thread is the main thread (kbuilder/ui/app.py).
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("Icons are made on the GUI thread only: Qt's painting types are "
                           "not thread-safe. Ask for the icon in a slot that runs there.")
    if QCoreApplication.instance() is None:
        raise RuntimeError("Create the QApplication before asking for icons.")


@functools.cache
def _icon(name: str, colors: IconColors) -> QIcon:
    normal = _renderer(f"icons/{name}.svg", colors.ink, colors.accent)
    disabled = _renderer(f"icons/{name}.svg", colors.disabled, colors.disabled)
    return QIcon(QtSvgIconEngine(name, normal, disabled))


@functools.cache
def _app_icon() -> QIcon:
    renderer = _renderer("kbuilder.svg", None, None)
    return QIcon(QtSvgIconEngine("kbuilder", renderer, renderer))


@functools.cache
def _renderer(file: str, ink: str | None, accent: str | None) -> QSvgRenderer:
    """The drawing in ``file`` (relative to resources/), recoloured unless ``ink`` is None."""
    svg = resources.data(file)
    if ink is not None:
        svg = recolour(svg, ink, accent or ink)
    renderer = QSvgRenderer(QByteArray(svg))
    if not renderer.isValid():
        raise resources.ResourceError(f"{resources.path(file)} is not an SVG drawing "
                                      "QtSvg can read.")
    return renderer

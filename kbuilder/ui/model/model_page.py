"""The Model tab: the canvas with the editing panels (palette, inspector, summary, code)
docked around it.

The tab is a main window of its own, nested in the workspace's tab. The panels belong to
it: the other tabs never hide or re-place them (hiding and showing docks in the outer
window made Qt hand them back narrower), and the workspace's tab bar spans the whole
window, so it stays put whichever tab is shown.

Docks also keep their size: Qt squeezes them when the window gets small and gives all the
room to the canvas when it grows again, leaving panels 60 px wide. The page remembers
each panel's size (the user's, when they drag a separator; saved with the window's
settings) and, on every resize, gives the docks as much of it as fits beside a usable
canvas (``resizeDocks``), never less than a minimum.
"""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QHideEvent, QResizeEvent, QShowEvent
from PySide6.QtWidgets import QApplication, QDockWidget, QMainWindow, QWidget

Area = Qt.DockWidgetArea
# Docks never get narrower (or, at the bottom, lower) than this: below it a panel cannot
# show its content. The canvas keeps at least CANVAS_MIN when sizes are given back.
MIN_EXTENT = {"palette": 180, "inspector": 240, "summary": 110, "code": 110}
DEFAULT_EXTENT = {"palette": 240, "inspector": 330, "summary": 210, "code": 210}
CANVAS_MIN = 360


class QtModelPage(QMainWindow):
    """The Model tab's page: ``editor`` in the middle, the panels docked around it.

    Args:
        editor: the canvas editor (the central widget).
        panels: ``(title, name, widget, area)`` for each dock; the dock's object name is
            ``f"{name}_dock"`` (saved window states refer to it).
        parent: the workspace.
    """

    def __init__(self, editor: QWidget, panels: list[tuple[str, str, QWidget, Area]],
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowFlags(Qt.WindowType.Widget)  # a page, not a window
        self.setObjectName("model_page")
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks
                            | QMainWindow.DockOption.AllowTabbedDocks)
        self.setCentralWidget(editor)
        self.docks: dict[str, QDockWidget] = {}
        for title, name, widget, area in panels:
            dock = QDockWidget(title, self)
            dock.setObjectName(f"{name}_dock")
            dock.setWidget(widget)
            dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                             | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                             | QDockWidget.DockWidgetFeature.DockWidgetClosable)
            self.addDockWidget(area, dock)
            self.docks[name] = dock
            dock.installEventFilter(self)
        self.extents = {name: DEFAULT_EXTENT.get(name, 240) for name in self.docks}
        self._hidden_floating: list[QDockWidget] = []  # floating panels hidden with the tab
        self._fitting = False
        self._fit_timer = QTimer(self, singleShot=True, interval=0)
        self._fit_timer.timeout.connect(self.fit_docks)
        for dock in self.docks.values():
            dock.dockLocationChanged.connect(self._apply_minimums)
            dock.topLevelChanged.connect(self._apply_minimums)
            dock.visibilityChanged.connect(lambda _shown: self._fit_timer.start())
        self._apply_minimums()

    # ------------------------------------------------------------------ sizes
    def _horizontal(self, dock: QDockWidget) -> bool:
        return self.dockWidgetArea(dock) in (Area.LeftDockWidgetArea, Area.RightDockWidgetArea)

    def _extent(self, dock: QDockWidget) -> int:
        return dock.width() if self._horizontal(dock) else dock.height()

    def _name(self, dock: QDockWidget) -> str:
        return dock.objectName().removesuffix("_dock")

    def _apply_minimums(self, *_args) -> None:
        """A docked panel keeps its minimum along the side it can be squeezed on."""
        for name, dock in self.docks.items():
            low = MIN_EXTENT.get(name, 120)
            if dock.isFloating():
                dock.setMinimumSize(0, 0)
            elif self._horizontal(dock):
                dock.setMinimumSize(low, 0)
            else:
                dock.setMinimumSize(0, low)

    def _placed(self) -> list[QDockWidget]:
        """The docks shown in the page (not floating, not behind another's tab)."""
        return [d for d in self.docks.values() if d.isVisible() and not d.isFloating()]

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        # A dock resized while the mouse button is down: the user is dragging a separator,
        # and that size is the one to keep.
        if (event.type() == QEvent.Type.Resize and isinstance(watched, QDockWidget)
                and not self._fitting and watched.isVisible() and not watched.isFloating()
                and QApplication.mouseButtons() & Qt.MouseButton.LeftButton):
            self.extents[self._name(watched)] = self._extent(watched)
        return False

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit_timer.start()  # once the layout has placed the docks

    def fit_docks(self) -> None:
        """Size the placed docks to their remembered sizes as far as the page has room.

        The canvas keeps ``CANVAS_MIN`` while the docks can give way (down to their
        minimums, in proportion to their sizes); when the page grows again they get their
        sizes back.
        """
        central = self.centralWidget()
        if central is None or not self.isVisible():
            return
        self._fitting = True
        try:
            for orientation in (Qt.Orientation.Horizontal, Qt.Orientation.Vertical):
                self._fit(orientation, central)
        finally:
            self._fitting = False

    def settle(self) -> None:
        """Lay the page out now (pending layouts, then the docks' sizes), so the canvas
        has the size the user will see."""
        QApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
        self._fit_timer.stop()
        self.fit_docks()
        QApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)

    def _fit(self, orientation: Qt.Orientation, central: QWidget) -> None:
        horizontal = orientation == Qt.Orientation.Horizontal
        areas: dict[Area, list[QDockWidget]] = {}
        for dock in self._placed():
            if self._horizontal(dock) == horizontal:
                areas.setdefault(self.dockWidgetArea(dock), []).append(dock)
        if not areas:
            return
        # One size per side (docks stacked on one side share its width).
        have = {a: max(self._extent(d) for d in ds) for a, ds in areas.items()}
        want = {a: max(self.extents[self._name(d)] for d in ds) for a, ds in areas.items()}
        low = {a: max(MIN_EXTENT.get(self._name(d), 120) for d in ds)
               for a, ds in areas.items()}
        room = (central.width() if horizontal else central.height()) + sum(have.values())
        spare = room - CANVAS_MIN - sum(low.values())
        extra = sum(want[a] - low[a] for a in areas)
        ratio = 1.0 if extra <= 0 else min(1.0, max(0.0, spare / extra))
        docks, sizes = [], []
        for area, members in areas.items():
            target = low[area] + int((want[area] - low[area]) * ratio)
            if abs(target - have[area]) > 1:
                docks.extend(members)
                sizes.extend([target] * len(members))
        if docks:
            self.resizeDocks(docks, sizes, orientation)

    # ------------------------------------------------------------- visibility
    def hideEvent(self, event: QHideEvent) -> None:
        # Another tab is shown: a floating panel is a window of its own and would stay.
        super().hideEvent(event)
        if not event.spontaneous():
            self._hidden_floating = [d for d in self.docks.values()
                                     if d.isFloating() and d.isVisible()]
            for dock in self._hidden_floating:
                dock.hide()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        for dock in self._hidden_floating:
            dock.show()
        self._hidden_floating = []
        self._fit_timer.start()

    # --------------------------------------------------------------- settings
    def save_state(self) -> tuple[QByteArray, dict[str, int]]:
        """The docks' places (Qt's state) and the sizes to give back."""
        for dock in self._hidden_floating:  # hidden with the tab, not by the user
            dock.show()
        state = self.saveState()
        for dock in self._hidden_floating:
            dock.hide()
        return state, dict(self.extents)

    def restore_state(self, state: object, extents: object) -> None:
        """Put the docks back as ``save_state`` described them (values read from the
        settings; anything unreadable is ignored)."""
        if isinstance(state, QByteArray | bytes):
            self.restoreState(state)
        if isinstance(extents, dict):
            for name, value in extents.items():
                try:
                    size = int(value)
                except (TypeError, ValueError):
                    continue
                if name in self.extents:
                    self.extents[name] = max(size, MIN_EXTENT.get(name, 120))
        self._apply_minimums()

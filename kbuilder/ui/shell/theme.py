"""Light and dark themes, following the system's colour scheme unless the user picks one.

Widgets use Qt's Fusion style with a palette of our own, so the app looks the same on every
desktop (with check box and radio button outlines that stay visible on a dark palette); the
canvas reads its colours from ``colors()`` at paint time, so a theme switch is one repaint. ``QtThemeManager.changed`` tells the views that cache pixmaps or formats.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from string import Template

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtWidgets import QApplication, QProxyStyle, QStyle, QStyleOption, QWidget

from kbuilder.ui.shell import resources

MODES = ("system", "light", "dark")


@dataclass(frozen=True)
class CanvasColors:
    """The colours of the node graph and of the other custom-painted views."""

    dark: bool
    background: QColor
    grid: QColor
    node: QColor
    node_header: QColor
    node_border: QColor
    text: QColor
    muted: QColor
    selection: QColor
    error: QColor
    warning: QColor
    edge: QColor
    edge_hover: QColor
    valid: QColor
    invalid: QColor
    port: QColor
    card: QColor
    card_hover: QColor
    disabled: QColor  # text and icons of disabled controls
    frozen: QColor  # the hatching of frozen nodes (ice blue)


LIGHT = CanvasColors(
    dark=False,
    background=QColor("#f3f4f6"),
    grid=QColor("#d4d8de"),
    node=QColor("#ffffff"),
    node_header=QColor("#f7f8fa"),
    node_border=QColor("#c3c8d0"),
    text=QColor("#1f2328"),
    muted=QColor("#5f6b7a"),
    selection=QColor("#2f6fde"),
    error=QColor("#d1242f"),
    warning=QColor("#b7791f"),
    edge=QColor("#8a94a3"),
    edge_hover=QColor("#2f6fde"),
    valid=QColor("#1f9d55"),
    invalid=QColor("#d1242f"),
    port=QColor("#6b7785"),
    card=QColor("#ffffff"),
    card_hover=QColor("#eef3fc"),
    disabled=QColor("#9aa3ae"),
    frozen=QColor("#0284c7"),
)

DARK = CanvasColors(
    dark=True,
    background=QColor("#1b1d21"),
    grid=QColor("#30343b"),
    node=QColor("#2a2d33"),
    node_header=QColor("#31353c"),
    node_border=QColor("#464b54"),
    text=QColor("#e6e8eb"),
    muted=QColor("#9aa3ae"),
    selection=QColor("#4c8dff"),
    error=QColor("#f85149"),
    warning=QColor("#d29922"),
    edge=QColor("#7d8590"),
    edge_hover=QColor("#4c8dff"),
    valid=QColor("#3fb950"),
    invalid=QColor("#f85149"),
    port=QColor("#9aa3ae"),
    card=QColor("#2a2d33"),
    card_hover=QColor("#323844"),
    disabled=QColor("#6e7681"),
    frozen=QColor("#38bdf8"),
)

# One accent per palette category, so a model's structure reads at a glance.
_CATEGORY_COLORS = {
    "Core": "#3b82f6",
    "Convolution": "#8b5cf6",
    "Pooling": "#a78bfa",
    "Recurrent": "#f97316",
    "Attention": "#ec4899",
    "Normalization": "#14b8a6",
    "Regularization": "#94a3b8",
    "Reshaping": "#eab308",
    "Merging": "#22c55e",
    "Activations": "#f59e0b",
    "Preprocessing": "#0ea5e9",
    "Image augmentation": "#06b6d4",
    "Wrappers": "#64748b",
    "Pretrained network": "#c026d3",
    "Input": "#10b981",
    "Output": "#6366f1",
    "Block": "#6366f1",
}


def category_color(category: str) -> QColor:
    return QColor(_CATEGORY_COLORS.get(category, "#94a3b8"))


def _palette(c: CanvasColors) -> QPalette:
    p = QPalette()
    R = QPalette.ColorRole
    if c.dark:
        window, base, alt, button = "#23262b", "#1b1d21", "#262a30", "#2d3137"
        text = "#e6e8eb"
        highlight, link = "#2f5fb3", "#6ea8fe"
        tooltip_bg = "#30343b"
    else:
        window, base, alt, button = "#eceef1", "#ffffff", "#f5f6f8", "#f5f6f8"
        text = "#1f2328"
        highlight, link = "#2f6fde", "#0b5cd5"
        tooltip_bg = "#ffffff"
    p.setColor(R.Window, QColor(window))
    p.setColor(R.WindowText, QColor(text))
    p.setColor(R.Base, QColor(base))
    p.setColor(R.AlternateBase, QColor(alt))
    p.setColor(R.Button, QColor(button))
    p.setColor(R.ButtonText, QColor(text))
    p.setColor(R.Text, QColor(text))
    p.setColor(R.BrightText, QColor("#ffffff"))
    p.setColor(R.Highlight, QColor(highlight))
    p.setColor(R.HighlightedText, QColor("#ffffff"))
    p.setColor(R.Link, QColor(link))
    p.setColor(R.ToolTipBase, QColor(tooltip_bg))
    p.setColor(R.ToolTipText, QColor(text))
    disabled = c.disabled
    p.setColor(R.PlaceholderText, disabled)
    p.setColor(R.Mid, QColor("#3a3f47" if c.dark else "#c3c8d0"))
    p.setColor(R.Midlight, QColor("#30343b" if c.dark else "#e2e5e9"))
    p.setColor(R.Dark, QColor("#15171a" if c.dark else "#a0a7b1"))
    p.setColor(R.Light, QColor("#3a3f47" if c.dark else "#ffffff"))
    for role in (R.WindowText, R.Text, R.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, disabled)
    return p


class QtAppStyle(QProxyStyle):
    """Fusion, with check box and radio button indicators that stand out on any palette.

    Fusion outlines an indicator in the window colour made 40% darker: on a dark window that
    outline vanishes, and an unchecked box (or a list's unchecked item) cannot be seen. Here
    the indicator is drawn from a palette whose window colour makes that outline a clear
    mid-grey, and whose text colour (the check mark) is the accent.
    """

    INDICATORS = (QStyle.PrimitiveElement.PE_IndicatorCheckBox,
                  QStyle.PrimitiveElement.PE_IndicatorRadioButton)

    def __init__(self) -> None:
        super().__init__("Fusion")

    def drawPrimitive(self, element: QStyle.PrimitiveElement,  # noqa: N802 (Qt's name)
                      option: QStyleOption, painter: QPainter,
                      widget: QWidget | None = None) -> None:
        R = QPalette.ColorRole
        if element in self.INDICATORS and option.palette.color(R.Window).lightness() < 128:
            option = type(option)(option)  # a copy: the caller's option stays as it was
            palette = QPalette(option.palette)
            c = DARK
            # Fusion's outline is window.darker(140); this makes it the edge grey.
            palette.setColor(R.Window, QColor(c.edge).lighter(140))
            if option.state & QStyle.StateFlag.State_Enabled:
                # The check mark is text.darker(120): aim it at the accent colour.
                palette.setColor(R.Text, QColor(c.selection).lighter(120))
            option.palette = palette
        super().drawPrimitive(element, option, painter, widget)


def style_sheet(name: str, scheme: CanvasColors | None = None, **extra: str) -> str:
    """The style sheet resources/styles/NAME.qss with its ``${placeholder}``s filled in:
    each colour of ``scheme`` (the current theme's by default) as ``#rrggbb``, and
    ``extra``.

    Raises:
        ValueError: the file names a placeholder that is neither.
    """
    c = scheme if scheme is not None else colors()
    values = {f.name: getattr(c, f.name).name() for f in fields(c)
              if isinstance(getattr(c, f.name), QColor)}
    values.update(extra)
    file = f"styles/{name}.qss"
    try:
        return Template(resources.text(file)).substitute(values)
    except KeyError as exc:
        raise ValueError(f"{resources.path(file)} uses ${{{exc.args[0]}}}, which is not a "
                         f"colour it is given; use one of: {', '.join(values)}.") from None




class QtThemeManager(QObject):
    """Applies the theme to the application and says when it changes.

    Args:
        app: the application.
        mode: "system" (follow ``QStyleHints.colorScheme``), "light" or "dark".
    """

    changed = Signal()

    def __init__(self, app: QApplication, mode: str = "system"):
        super().__init__(app)
        self._app = app
        self._mode = mode if mode in MODES else "system"
        self._colors = LIGHT
        self._style = QtAppStyle()  # kept here too: the app does not own a Python style
        app.setStyle(self._style)
        app.styleHints().colorSchemeChanged.connect(self._on_system_scheme)
        self._apply()

    @property
    def mode(self) -> str:
        return self._mode

    @property
    def colors(self) -> CanvasColors:
        return self._colors

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"Unknown theme '{mode}'; expected one of {', '.join(MODES)}.")
        if mode == self._mode:
            return  # restyling the whole application is not free
        self._mode = mode
        self._apply()

    def _on_system_scheme(self, _scheme: Qt.ColorScheme) -> None:
        if self._mode == "system":
            self._apply()

    def _wants_dark(self) -> bool:
        if self._mode != "system":
            return self._mode == "dark"
        return self._app.styleHints().colorScheme() == Qt.ColorScheme.Dark

    def _apply(self) -> None:
        colors = DARK if self._wants_dark() else LIGHT
        changed = colors is not self._colors
        self._colors = colors
        self._app.setPalette(_palette(colors))
        self._app.setStyleSheet(style_sheet("app", colors))
        if changed:
            self.changed.emit()


_manager: QtThemeManager | None = None


def install(app: QApplication, mode: str = "system") -> QtThemeManager:
    """Create (or re-mode) the app's theme manager."""
    global _manager
    if _manager is None or _manager.parent() is not app:
        _manager = QtThemeManager(app, mode)
    else:
        _manager.set_mode(mode)
    return _manager


def manager() -> QtThemeManager:
    """The theme manager, installed on first use."""
    app = QApplication.instance()
    if _manager is None or _manager.parent() is not app:
        assert isinstance(app, QApplication), "create the QApplication first"
        return install(app)
    return _manager


def colors() -> CanvasColors:
    return _manager.colors if _manager is not None else LIGHT

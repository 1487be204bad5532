"""The icons: SVG files in resources/icons/, rendered by QtSvg in the theme's colours.

Every icon the window asks for has a file; each renders at the size and pixel ratio asked for
(a 16 px icon on a 2x screen is drawn at 32 device pixels, not a 16 px image scaled up), in
the theme's ink and accent; a disabled icon looks disabled in both themes (issue 12 item 26:
in the dark theme Qt's own disabled look only lightened light ink, so it looked enabled).
"""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET

import pytest
from PySide6.QtCore import QSize
from PySide6.QtGui import QIcon, QImage

from kbuilder.ui.shell import icons, resources, theme

# Icons drawn wholly in the accent colour (no ink).
ACCENT_ONLY = {"play", "pause", "stop"}
SIZES = (16, 32, 64)


def ink(image) -> set[tuple[int, int, int]]:
    """The colours of an image's solidly drawn pixels."""
    colors = (image.pixelColor(x, y) for x in range(image.width())
              for y in range(image.height()))
    return {(c.red(), c.green(), c.blue()) for c in colors if c.alpha() > 230}


def rgb(color) -> tuple[int, int, int]:
    return color.red(), color.green(), color.blue()


def near(color, target) -> bool:
    return all(abs(a - b) <= 3 for a, b in zip(color, target, strict=True))


@pytest.fixture(params=["light", "dark"])
def mode(request, qapp):
    manager = theme.manager()
    manager.set_mode(request.param)
    yield request.param
    manager.set_mode("system")


def test_every_icon_the_window_asks_for_has_a_file_and_every_file_is_used(
        monkeypatch, make_window):
    asked = set()
    original = icons.icon

    def recording(name):
        asked.add(name)
        return original(name)

    monkeypatch.setattr(icons, "icon", recording)
    window = make_window()
    window.set_theme("dark")  # the window asks again for every icon in the new colours
    assert asked, "the window asked for no icons: the recording missed them"
    assert asked <= set(icons.names()), f"no SVG for {asked - set(icons.names())}"
    assert set(icons.names()) <= asked, f"unused icon files: {set(icons.names()) - asked}"


def test_the_window_recolours_its_toolbar_with_the_theme(window):
    def toolbar_ink() -> set:
        return ink(window.save_action.icon().pixmap(QSize(20, 20), 2.0).toImage())

    window.set_theme("light")
    light = toolbar_ink()
    window.set_theme("dark")
    dark = toolbar_ink()
    assert any(near(c, rgb(theme.LIGHT.text)) for c in light)
    assert any(near(c, rgb(theme.DARK.text)) for c in dark)
    assert not any(near(c, rgb(theme.LIGHT.text)) for c in dark)


def test_icon_files_are_24px_line_drawings_in_current_color():
    assert len(icons.names()) >= 20
    for name in icons.names():
        root = ET.fromstring(resources.data(f"icons/{name}.svg"))
        assert root.tag == f"{{{icons.SVG_NS}}}svg" and root.get("viewBox") == "0 0 24 24", name
        for element in root.iter():
            # Paints as attributes only (recolour reads no CSS), and no fixed colours: a
            # fixed colour would not follow the theme.
            assert element.get("style") is None, name
            for attr in icons.PAINTS:
                assert element.get(attr) in (None, "none", "currentColor"), (name, attr)


def test_recolour_resolves_current_color_where_it_is_painted():
    svg = (b'<svg xmlns="http://www.w3.org/2000/svg" stroke="currentColor" fill="none">'
           b'<path d="M0 0h1"/><g class="big accent"><path d="M1 1h1"/>'
           b'<rect fill="currentColor" stroke="none"/></g><circle fill="#123456"/></svg>')
    root = ET.fromstring(icons.recolour(svg, "#111111", "#ff0000"))
    path, group, accent_path, rect, circle = list(root.iter())[1:]
    assert root.get("stroke") == "#111111" and path.get("stroke") == "#111111"
    assert accent_path.get("stroke") == "#ff0000"  # inherited currentColor, accent's colour
    assert rect.get("fill") == "#ff0000" and rect.get("stroke") == "none"
    assert circle.get("fill") == "#123456"  # not currentColor: left alone
    assert b"ns0:" not in icons.recolour(svg, "#111111", "#ff0000")


def test_icons_render_at_the_pixel_ratio_in_the_theme_colours(mode):
    c = theme.colors()
    for name in icons.names():
        icon = icons.icon(name)
        accent = rgb(c.error if name in icons.WARNING_ICONS else c.selection)
        for size in SIZES:
            pixmap = icon.pixmap(QSize(size, size), 2.0)
            assert pixmap.size() == QSize(2 * size, 2 * size), (name, size)
            assert pixmap.devicePixelRatio() == 2.0
            image = pixmap.toImage()
            colours = ink(image)
            assert colours, f"{name} at {size} px is empty"
            assert all(near(x, rgb(c.text)) or near(x, accent) for x in colours), (name, size)
            if name not in ACCENT_ONLY:
                assert any(near(x, rgb(c.text)) for x in colours), (name, size)
            # Drawn at device resolution: the 2x pixmap is the 1x one of twice the size,
            # pixel for pixel (an image scaled up would be blurred, or blocky).
            twice = icon.pixmap(QSize(2 * size, 2 * size), 1.0).toImage()
            assert image.convertToFormat(QImage.Format.Format_ARGB32) == \
                twice.convertToFormat(QImage.Format.Format_ARGB32), (name, size)


def test_disabled_icons_are_drawn_in_the_disabled_colour(mode):
    c = theme.colors()
    grey = rgb(c.disabled)
    for name in icons.names():
        icon = icons.icon(name)
        normal = ink(icon.pixmap(32, 32, QIcon.Mode.Normal).toImage())
        disabled = ink(icon.pixmap(32, 32, QIcon.Mode.Disabled).toImage())
        assert disabled and all(near(x, grey) for x in disabled), (name, disabled)
        assert not any(near(x, grey) for x in normal), name
    # Clearly dimmer than the enabled ink against the window (dark: darker; light: lighter).
    assert abs(c.disabled.lightness() - c.text.lightness()) > 90


def test_an_unknown_icon_names_the_missing_file(qapp):
    with pytest.raises(resources.ResourceError, match=r"icons/no_such_icon\.svg"):
        icons.icon("no_such_icon")


def test_icons_are_refused_off_the_gui_thread(qapp):
    errors = []

    def ask():
        try:
            icons.icon("save")
        except RuntimeError as exc:
            errors.append(str(exc))

    thread = threading.Thread(target=ask)
    thread.start()
    thread.join(10)
    assert errors and "GUI thread" in errors[0]


def test_a_changed_icon_keeps_drawing(qapp):
    # Changing a shared QIcon makes Qt clone its engine; a clone PySide6 freed would crash.
    changed = QIcon(icons.icon("copy"))
    changed.addPixmap(icons.icon("cut").pixmap(8, 8), QIcon.Mode.Selected)
    assert ink(changed.pixmap(QSize(32, 32), 2.0).toImage())


def test_app_icon_is_the_kbuilder_drawing(qapp):
    image = icons.app_icon().pixmap(QSize(64, 64), 2.0).toImage()
    assert image.size() == QSize(128, 128)
    assert near(rgb(image.pixelColor(20, 64)), (0x25, 0x63, 0xEB))  # the blue square
    assert image.pixelColor(0, 0).alpha() == 0  # rounded corners: transparent


def test_the_application_shows_the_kbuilder_icon(qapp):
    from kbuilder.ui.app import create_application

    app = create_application()  # the running QApplication, named, themed and iconed
    assert app is qapp
    image = app.windowIcon().pixmap(QSize(32, 32), 1.0).toImage()
    assert near(rgb(image.pixelColor(5, 16)), (0x25, 0x63, 0xEB))

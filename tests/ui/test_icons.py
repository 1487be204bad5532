"""The drawn icons: a disabled icon looks disabled in both themes (issue 12 item 26: in the
dark theme Qt's own disabled look only lightened light ink, so it looked enabled)."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QIcon

from kbuilder.ui import icons, theme


def ink(image) -> set[tuple[int, int, int]]:
    """The colours of an image's solidly drawn pixels."""
    colors = (image.pixelColor(x, y) for x in range(image.width())
              for y in range(image.height()))
    return {(c.red(), c.green(), c.blue()) for c in colors if c.alpha() > 230}


def near(color, target) -> bool:
    return all(abs(a - b) <= 3 for a, b in zip(color, target, strict=True))


@pytest.mark.parametrize("mode", ["light", "dark"])
def test_disabled_icons_are_drawn_in_the_disabled_colour(qapp, mode):
    manager = theme.manager()
    manager.set_mode(mode)
    try:
        c = theme.colors()
        grey = (c.disabled.red(), c.disabled.green(), c.disabled.blue())
        for name in icons.names():
            icon = icons.icon(name)
            normal = ink(icon.pixmap(32, 32, QIcon.Mode.Normal).toImage())
            disabled = ink(icon.pixmap(32, 32, QIcon.Mode.Disabled).toImage())
            assert disabled and all(near(x, grey) for x in disabled), (name, disabled)
            assert not any(near(x, grey) for x in normal), name
        # Clearly dimmer than the enabled ink against the window (dark: darker; light:
        # lighter).
        assert abs(c.disabled.lightness() - c.text.lightness()) > 90
    finally:
        manager.set_mode("system")

"""Render kbuilder's application icon (resources/kbuilder.svg) in every format the installers
need.

The drawing is the SVG file the app itself shows (kbuilder/ui/shell/icons.py ``app_icon``); this
script renders it with QtSvg at each size (a crisp render per size, not one big image scaled
down) and writes into a folder: ``kbuilder-SIZE.png`` for the Linux icon theme (hicolor),
``kbuilder.ico`` for Windows and ``kbuilder.icns`` for macOS (Pillow writes those two from
the renders).

Usage: ``python packaging/icon.py OUT_DIR``
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

from kbuilder.ui.shell import resources

# The sizes hicolor themes look for (apps/), and the ones Windows and macOS icons hold.
PNG_SIZES = (16, 32, 48, 64, 128, 256, 512)
ICO_SIZES = [(16, 16), (24, 24), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)]
ICNS_SIZES = (16, 32, 64, 128, 256, 512, 1024)


def draw(size: int = 1024) -> Image.Image:
    """The icon rendered at ``size`` x ``size`` pixels (RGBA, transparent around)."""
    renderer = QSvgRenderer(str(resources.path("kbuilder.svg")))
    if not renderer.isValid():
        raise ValueError(f"{resources.path('kbuilder.svg')} is not an SVG drawing QtSvg reads")
    image = QImage(size, size, QImage.Format.Format_RGBA8888)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    try:
        renderer.render(painter, QRectF(0, 0, size, size))
    finally:
        painter.end()
    return Image.frombytes("RGBA", (size, size), bytes(image.constBits()))


def write_icons(folder: Path) -> list[Path]:
    """Write every icon file into ``folder`` (created if missing); returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    renders = {size: draw(size) for size in {*PNG_SIZES, *(s for s, _ in ICO_SIZES),
                                              *ICNS_SIZES}}
    written = []
    for size in PNG_SIZES:
        path = folder / f"kbuilder-{size}.png"
        renders[size].save(path)
        written.append(path)
    # Pillow takes each size's frame from the images given, rather than shrinking the first.
    ico, icns = folder / "kbuilder.ico", folder / "kbuilder.icns"
    renders[256].save(ico, sizes=ICO_SIZES, append_images=[renders[s] for s, _ in ICO_SIZES])
    renders[1024].save(icns, append_images=[renders[s] for s in ICNS_SIZES])
    return [*written, ico, icns]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python packaging/icon.py OUT_DIR")
    for path in write_icons(Path(sys.argv[1])):
        print(path)

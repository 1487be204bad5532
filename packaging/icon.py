"""Draw kbuilder's application icon and write it in every format the installers need.

Drawn with Pillow (a dependency already) rather than kept as binary files: three layers
wired into a fourth on a rounded square, the same motif as the canvas. Writes into a
folder: ``kbuilder-SIZE.png`` for the Linux icon theme (hicolor), ``kbuilder.ico`` for
Windows and ``kbuilder.icns`` for macOS.

Usage: ``python packaging/icon.py OUT_DIR``
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw

# The sizes hicolor themes look for (apps/), and the ones Windows and macOS icons hold.
PNG_SIZES = (16, 32, 48, 64, 128, 256, 512)
ICO_SIZES = [(16, 16), (24, 24), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)]

_BACKGROUND = (37, 99, 235)  # the light theme's selection blue
_INK = (255, 255, 255)
_ACCENT = (250, 204, 21)


def draw(size: int = 1024) -> Image.Image:
    """The icon at ``size`` x ``size`` pixels (drawn large, then scaled down by the caller)."""
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(image)
    s = size / 1024
    d.rounded_rectangle((48 * s, 48 * s, 976 * s, 976 * s), radius=200 * s, fill=_BACKGROUND)
    inputs = [(280 * s, 290 * s), (280 * s, 512 * s), (280 * s, 734 * s)]
    output = (744 * s, 512 * s)
    for x, y in inputs:
        d.line((x, y, *output), fill=_INK, width=round(34 * s))
    r = 78 * s
    for x, y in inputs:
        d.ellipse((x - r, y - r, x + r, y + r), fill=_INK)
    R = 118 * s
    d.ellipse((output[0] - R, output[1] - R, output[0] + R, output[1] + R), fill=_ACCENT)
    return image


def write_icons(folder: Path) -> list[Path]:
    """Write every icon file into ``folder`` (created if missing); returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    big = draw()
    written = []
    for size in PNG_SIZES:
        path = folder / f"kbuilder-{size}.png"
        big.resize((size, size), Image.Resampling.LANCZOS).save(path)
        written.append(path)
    big.resize((256, 256), Image.Resampling.LANCZOS).save(folder / "kbuilder.ico",
                                                            sizes=ICO_SIZES)
    big.save(folder / "kbuilder.icns")
    written += [folder / "kbuilder.ico", folder / "kbuilder.icns"]
    return written


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python packaging/icon.py OUT_DIR")
    for path in write_icons(Path(sys.argv[1])):
        print(path)

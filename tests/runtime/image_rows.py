"""A generated table with a column of image paths (the tabular + image case)."""

from pathlib import Path

import numpy as np


def write_image_rows(folder: Path, n: int = 48, size: int = 8) -> Path:
    """``rows.csv`` with numeric columns (one with a gap), a text column, an image-path
    column (PNGs under ``images/``, relative to the CSV) and a label decided by both a
    number and the image's brightness."""
    from PIL import Image

    rng = np.random.default_rng(0)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    lines = ["age,dose,site,scan,label"]
    for i in range(n):
        bright = i % 2 == 0
        age = float(rng.normal(50, 10))
        pixels = rng.integers(150, 255) if bright else rng.integers(0, 100)
        image = np.full((size, size, 3), pixels, np.uint8)
        Image.fromarray(image).save(folder / "images" / f"s{i}.png")
        label = "sick" if (bright or age > 65) else "well"
        dose = "" if i == 3 else f"{rng.normal(200, 50):.1f}"
        site = ("north", "south", "east")[i % 3]
        lines.append(f"{age:.1f},{dose},{site},images/s{i}.png,{label}")
    path = folder / "rows.csv"
    path.write_text("\n".join(lines) + "\n")
    return path

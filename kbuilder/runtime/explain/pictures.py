"""PNG pictures of explanations and layer outputs (pillow), for the CLI's output folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# A perceptual ramp (dark blue -> teal -> yellow, like viridis), sampled at 5 points.
_RAMP = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98],
                  [253, 231, 37]], dtype=np.float64)


# NaN (the gaps between feature maps) is drawn light grey.
GAP_GREY = 200


def colour(values: np.ndarray) -> np.ndarray:
    """Values in 0..1 as uint8 RGB along the ramp (NaN light grey)."""
    gaps = np.isnan(values)
    v = np.clip(np.nan_to_num(values), 0, 1) * (len(_RAMP) - 1)
    low = np.floor(v).astype(int).clip(0, len(_RAMP) - 2)
    f = (v - low)[..., None]
    rgb = (_RAMP[low] * (1 - f) + _RAMP[low + 1] * f).round().astype(np.uint8)
    rgb[gaps] = GAP_GREY
    return rgb


def scaled(values: np.ndarray) -> np.ndarray:
    """``values`` stretched to 0..1 (all 0 when constant)."""
    v = np.asarray(values, dtype=np.float64)
    low, high = float(np.nanmin(v)), float(np.nanmax(v))
    return (v - low) / (high - low) if high > low else np.zeros_like(v)


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """A heat map (0..1, the image's height and width) over an image, as uint8 RGB."""
    base = scaled(image)
    if base.ndim == 2:
        base = base[..., None]
    if base.shape[-1] == 1:
        base = np.repeat(base, 3, axis=-1)
    mixed = (1 - alpha) * base[..., :3] * 255 + alpha * colour(heat)
    return mixed.round().clip(0, 255).astype(np.uint8)


def grid(maps: np.ndarray, columns: int | None = None, gap: int = 1) -> np.ndarray:
    """Feature maps ``(height, width, channels)`` as one 2-D mosaic (each map scaled on
    its own), NaN in the gaps."""
    h, w, c = maps.shape
    columns = columns or int(np.ceil(np.sqrt(c)))
    rows = int(np.ceil(c / columns))
    out = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap), np.nan)
    for k in range(c):
        r, col = divmod(k, columns)
        out[r * (h + gap):r * (h + gap) + h, col * (w + gap):col * (w + gap) + w] = \
            scaled(maps[..., k])
    return out


def save_png(path: Path, pixels: np.ndarray, upscale: int = 1) -> None:
    """RGB (or 0..1 grey, drawn along the ramp) pixels as a PNG, written atomically."""
    from PIL import Image

    from kbuilder.files import atomic_path

    if pixels.dtype != np.uint8:
        pixels = colour(pixels)
    image = Image.fromarray(pixels)
    if upscale > 1:
        image = image.resize((image.width * upscale, image.height * upscale), Image.NEAREST)
    with atomic_path(path) as temp:
        image.save(temp, format="PNG")


def upscale_for(height: int, width: int, target: int = 256) -> int:
    """A whole factor that makes a small picture about ``target`` pixels wide."""
    return max(1, target // max(height, width, 1))

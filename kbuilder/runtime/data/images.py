"""Image folders: one sub-folder per class."""


from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from kbuilder.graph.settings import DataSettings
from kbuilder.graph.text import plural
from kbuilder.runtime.data.dataset import DataError, Progress
from kbuilder.runtime.data.split import Raw

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


# ======================================================================== image folders
def load_images(location: str, settings: DataSettings, progress: Progress | None) -> Raw:
    root = Path(location)
    classes = _image_classes(root)
    decode = _image_decoder()
    height, width = settings.image_size
    channels = 3 if settings.color_mode == "rgb" else 1
    total = sum(len(files) for _, files in classes)
    x = np.empty((total, height, width, channels), dtype=np.float32)
    y = np.empty(total, dtype=np.int32)
    i = 0
    for label, (_, files) in enumerate(classes):
        for file in files:
            try:
                data = file.read_bytes()
            except OSError as exc:
                raise DataError(f"{file} cannot be read: {exc}.", path=str(file)) from exc
            try:
                x[i] = decode(data, (height, width), channels)
            except Exception as exc:  # each decoder raises its own kinds of errors
                raise DataError(
                    f"{file} is not a readable image ({_decode_reason(exc)}). Remove or "
                    "replace the file.", path=str(file),
                ) from exc
            y[i] = label
            i += 1
            if progress is not None:
                progress("Reading images", i, total)
    return Raw(
        x, y, "classification", root.name or str(root),
        class_names=[name for name, _ in classes], num_classes=len(classes),
        notes=[f"Images resized to {height}x{width} ({settings.color_mode}); pixel values "
               "kept as 0..255."],
    )


def _decode_reason(exc: Exception) -> str:
    """The decoder's reason without TensorFlow's op names or Python object addresses."""
    text = str(exc).strip()
    text = text.splitlines()[-1] if text else ""
    text = text.split("}}")[-1]  # TensorFlow: "{{function_node ...}} reason [Op:Decode]"
    text = re.sub(r"\s*\[Op:\w+\]$", "", text)
    text = re.sub(r"\s*<[^>]* at 0x[0-9a-f]+>", "", text)  # Pillow: "<_io.BytesIO at 0x..>"
    return text.strip() or type(exc).__name__


def _image_classes(root: Path) -> list[tuple[str, list[Path]]]:
    """``(class name, image files)`` per sub-folder, sorted; explains what is wrong."""
    if not root.exists():
        raise DataError(f"The image folder {root} does not exist.", path=str(root))
    if not root.is_dir():
        raise DataError(f"{root} is a file; choose a folder with one sub-folder per class.",
                        path=str(root))
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        loose = [p for p in root.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS]
        hint = (f" It holds {plural(len(loose), 'image')} directly; " if loose else " ")
        raise DataError(
            f"{root} has no sub-folders.{hint}Put the images of each class in its own "
            f"sub-folder, e.g. {root.name}/cats/ and {root.name}/dogs/.", path=str(root),
        )
    classes = []
    for folder in folders:
        files = sorted(
            p for p in folder.rglob("*")
            if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
            and not p.name.startswith(".")
        )
        if not files:
            raise DataError(
                f"The class folder '{folder.name}' in {root} has no images "
                f"({', '.join(IMAGE_EXTENSIONS)}). Add images or remove the folder.",
                path=str(folder),
            )
        classes.append((folder.name, files))
    if len(classes) < 2:
        raise DataError(
            f"{root} has only one class folder ('{classes[0][0]}'); a classifier needs at "
            "least two. Add a sub-folder of images for each other class.", path=str(root),
        )
    return classes


def _image_decoder() -> Callable[[bytes, tuple[int, int], int], np.ndarray]:
    """A function ``(file bytes, (height, width), channels) -> float32 array 0..255``.

    Pillow when installed (fast, many formats), else TensorFlow's decoders (PNG, JPEG,
    GIF, BMP, WebP), which kbuilder installs anyway.
    """
    try:
        from PIL import Image
    except ImportError:
        return _tf_decode

    def decode(data: bytes, size: tuple[int, int], channels: int) -> np.ndarray:
        with Image.open(io.BytesIO(data)) as image:
            image = image.convert("RGB" if channels == 3 else "L")
            image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            array = np.asarray(image, dtype=np.float32)
        return array.reshape(size[0], size[1], channels)

    return decode


def _tf_decode(data: bytes, size: tuple[int, int], channels: int) -> np.ndarray:
    import tensorflow as tf

    image = tf.io.decode_image(data, channels=channels, expand_animations=False)
    image = tf.image.resize(image, size, method="bilinear", antialias=True)
    return np.clip(image.numpy(), 0, 255)



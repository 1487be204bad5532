"""A table column of image paths: the tabular + image case.

A column whose cells name image files (role ``image_path``) is not encoded as a feature:
it becomes an ``ImageFiles`` stream (``images.py``: read on demand as uint8, resized to
``DataSettings.image_size``/``color_mode``, unreadable files skipped when chosen) that feeds
an image Input, while the other feature columns feed the table Input. The source's ``x``
is then a dict, ``{"features": table, column: images}``; ``DataSettings.input_arrays``
renames its keys to the model's Input names (``node -> column`` or ``node -> "features"``),
and without it ``dataset.match_inputs`` pairs them with the Inputs by shape rank (while
the features have no Input chosen).

Decisions a user may ask about:
    * Paths are relative to the table's folder (or absolute), so a project folder moved
      with its data still works. A relative path that leaves the table's folder (``../``)
      is refused: it breaks as soon as the folder moves; make it absolute or move the
      images under the table's folder.
    * Every file is looked up (``stat``) when the data is read, not decoded: a missing file
      is named with its line before training starts, for the price of a listing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from kbuilder.graph.settings import DataSettings
from kbuilder.runtime.data.dataset import TABLE_FEATURES, DataError
from kbuilder.runtime.data.images import IMAGE_EXTENSIONS, ImageFiles, cache_file_for

FEATURES = TABLE_FEATURES  # the key of the table's features in a dict ``x``
# Files looked up to infer the role: the first few present values must exist.
_CHECKED = 5


def looks_like_image_paths(values: list[str], table_path: str) -> bool:
    """Whether text ``values`` are image files: nearly all end in an image extension, and
    the first few exist relative to the table's folder (or as absolute paths)."""
    if not values:
        return False
    named = sum(str(v).lower().endswith(IMAGE_EXTENSIONS) for v in values)
    if named < 0.95 * len(values):
        return False
    root = Path(table_path).parent
    return all((root / str(v)).is_file() for v in values[:_CHECKED])


def with_image_columns(table: Any, features: np.ndarray, columns: list[tuple[str, Any]],
                       kept: np.ndarray, settings: DataSettings
                       ) -> tuple[Any, str | None, list[str]]:
    """``(x, key of the features or None, notes)``: the features and one ``ImageFiles``
    per image-path column, keyed as ``settings.input_arrays`` says.

    Args:
        table: the ``tables.Table`` read.
        features: the encoded feature columns of the rows ``kept`` (may have no columns).
        columns: ``(name, text values of the kept rows)`` per image-path column.
        kept: the table rows that have a target.
        settings: image size, colour mode, skipping of bad images, the Input mapping.
    """
    x: dict[str, Any] = {}
    if features.shape[1]:
        x[FEATURES] = features
    notes = []
    for name, text in columns:
        x[name] = image_column(table, name, text, kept, settings)
        height, width = settings.image_size
        notes.append(f"Column '{name}' names image files: they are read from disk as the "
                     f"model trains, resized to {height}x{width} ({settings.color_mode}), "
                     "pixel values kept as 0..255 (uint8).")
        if x[name].cache_path:
            notes.append(f"Resized images of column '{name}' are cached in "
                         f"{x[name].cache_path}.")
    mapping = dict(settings.input_arrays)
    named: dict[str, str] = {}
    if mapping:
        named = {key: node for node, key in mapping.items()}
        unknown = [k for k in named if k not in x]
        if unknown:
            raise DataError(
                f"'{unknown[0]}' (chosen as the data of Input '{named[unknown[0]]}') is not "
                f"a column of image paths of {table.name}, nor \"{FEATURES}\" (the table's "
                f"other columns); choose one of: {', '.join(x)}.", path=table.path,
                column=unknown[0])
        x = {named.get(k, k): v for k, v in x.items()}
    if len(x) == 1:  # images only (a CSV listing image files and their labels)
        return next(iter(x.values())), None, notes
    key = named.get(FEATURES, FEATURES) if mapping else FEATURES
    return x, key if features.shape[1] else None, notes


def image_column(table: Any, name: str, text: Any, kept: np.ndarray,
                 settings: DataSettings) -> ImageFiles:
    """The images a column names (``text``: its values at the rows ``kept``), streamed.

    Raises:
        DataError: a cell is empty, a file is missing or a relative path leaves the
            table's folder; the message names the line.
    """
    root = Path(table.path).parent.resolve()
    values = text.to_pylist() if hasattr(text, "to_pylist") else list(text)
    files, stats = [], np.zeros((len(values), 2), np.int64)
    for i, value in enumerate(values):
        where = f"{table.where(int(kept[i]))}, column '{name}'"
        line = int(table.lines[int(kept[i])])
        if not value:
            raise DataError(f"{where} names no image file. Give every row its image, or "
                            "remove the row.", path=table.path, line=line, column=name)
        given = Path(str(value).strip())
        path = given if given.is_absolute() else root / given
        if not given.is_absolute():
            resolved = Path(os.path.normpath(path))
            if resolved != root and root not in resolved.parents:
                raise DataError(
                    f"{where}: '{value}' points outside the folder of {table.name} "
                    f"({root}). Image paths are read relative to that folder so the data "
                    "can move with it; give an absolute path, or move the images into "
                    "that folder.", path=table.path, line=line, column=name)
            path = resolved
        try:
            info = os.stat(path)
        except OSError:
            raise DataError(
                f"{where}: the image '{value}' does not exist (looked for {path}). Image "
                f"paths are relative to the folder of {table.name}; correct the path or "
                "add the file.", path=table.path, line=line, column=name) from None
        files.append(str(path))
        stats[i] = info.st_size, info.st_mtime_ns
    height, width = settings.image_size
    channels = 3 if settings.color_mode == "rgb" else 1
    images = ImageFiles(np.asarray(files, dtype=str), stats, (height, width), channels,
                        skip_bad=settings.skip_bad_images)
    for file in images.files[stats[:, 0] == 0]:
        images.bad_file(str(file), "the file is empty")
    if settings.cache_images:
        images.cache_path = str(cache_file_for(Path(table.path).resolve() / name, images))
    return images

"""Rows to predict from, read like the training table: the same feature columns encoded
the same way, and the images their image-path columns name (``image_paths.py``)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from kbuilder.graph.settings import DataSettings, parse_source
from kbuilder.runtime.data.dataset import DataError
from kbuilder.runtime.data.image_paths import with_image_columns
from kbuilder.runtime.data.images import ImageFiles
from kbuilder.runtime.data.roles import analyse_column, encode_column
from kbuilder.runtime.data.tables import read_table


def table_rows_with_images(path: str, settings: DataSettings, trained: Any) -> Any | None:
    """Model inputs from a table like the one ``trained`` (a ``Dataset``) was read from,
    without its target: the same feature columns encoded the same way (categories the
    training rows lacked are zeros, missing numbers the training medians) and the images
    of its image-path columns (relative to ``path``'s folder). ``None`` when the table has
    no column of image paths (the caller reads it as plain numbers).

    Raises:
        DataError: a column the model was trained on is missing, or an image is.
    """
    if parse_source(settings.source)[0] != "csv":
        return None
    source = settings.source.replace(settings.location, str(path), 1)
    spec = dataclasses.replace(settings.table(), path=str(path))
    table = read_table(spec)
    target = settings.target or spec.target
    features = list(settings.features) if settings.features is not None else [
        c for c in table.header if c != target]
    # The image columns of the training table, whatever these rows look like (a missing
    # file must be named, not make the column text).
    chosen = dict(settings.input_arrays)
    trained_images = [chosen.get(key, key) for key, value in trained.x_train.items()
                      if isinstance(value, ImageFiles)]
    reading = dataclasses.replace(settings, source=source, roles=(
        *((c, r) for c, r in settings.roles if c not in trained_images),
        *((c, "image_path") for c in trained_images)))
    require = [c for c in trained_images if c not in table.columns]
    if require:
        raise DataError(f"{table.name} has no column '{require[0]}' of image paths, which "
                        "the model was trained on.", path=str(path), column=require[0])
    infos = [analyse_column(table, name, reading, False, None, True)
             for name in features if name in table.columns]
    images = [(i.role.name, i.text) for i in infos if i.role.role == "image_path"]
    if not images:
        return None
    kept = np.arange(table.num_rows)
    columns: dict[str, np.ndarray] = {}
    for info in infos:
        if info.role.used:
            for block, names, _ in encode_column(table, info, kept, True):
                columns.update(zip(names, block.T, strict=True))
    names = trained.feature_names or []
    fills = {m["column"]: m["filled_with"] for m in trained.missing
             if isinstance(m.get("filled_with"), float)}
    lacking = [n for n in names if n not in columns and "=" not in n]
    if lacking:
        raise DataError(f"{table.name} has no column '{lacking[0]}', which the model was "
                        "trained on; give every feature column of the training data.",
                        path=str(path), column=lacking[0])
    x = np.zeros((table.num_rows, len(names)), np.float32)
    for j, name in enumerate(names):  # one-hot columns the rows lack stay 0
        if name in columns:
            values = columns[name]
            x[:, j] = np.where(np.isnan(values), fills.get(name, 0.0), values)
    inputs, _, _ = with_image_columns(table, x, images, kept, settings)
    return inputs

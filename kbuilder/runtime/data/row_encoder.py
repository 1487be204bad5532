"""Raw table rows as the inputs of a model that preprocesses inside itself.

With ``DataSettings.table_encoding == "model"`` a table becomes a dict of model inputs:

    * ``numeric``: float32 ``(n, k)`` in the file's units, NaN where a value is missing
      (numbers, yes/no flags as 0/1, and date parts, in ``RowEncoder.columns`` order); the
      model's ``FillMissing`` and ``Normalization`` (adapted on the training split) do the
      rest;
    * one int32 ``(n, 1)`` array of category codes per categorical column, named after
      the column (``input_name``): 0 is a value not seen in training, 1..K the sorted
      vocabulary of the training split (missing values are the category ``(missing)``);
      the model one-hot encodes it (``CategoryEncoding``);
    * per column of image paths (role ``image_path``), its images, streamed as uint8
      (``images.ImageFiles``, paths relative to the table's folder) for an image Input of
      the model (e.g. the multi_input template), keyed by the column's name (or the Input
      ``DataSettings.input_arrays`` gives it) and paired with its Input by shape
      (``dataset.match_inputs``); the model's ``Rescaling`` scales the pixels.

The text -> code step is the only preprocessing outside the model: JAX and PyTorch
cannot carry strings in a graph. ``RowEncoder`` is that step as a small JSON record,
saved next to the trained model (``row_encoder.json``) and next to every export, and
applied wherever kbuilder predicts from raw rows (``encode_rows``).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kbuilder.files import atomic_write
from kbuilder.graph.settings import parse_table_spec
from kbuilder.runtime.data.arrow_numpy import from_numpy, string_scalar, strings, to_numpy
from kbuilder.runtime.data.columns import (
    MISSING_CATEGORY,
    apply_merges,
    as_numbers,
    category_ranks,
    date_parts,
    text_values,
)
from kbuilder.runtime.data.dataset import DataError
from kbuilder.runtime.data.split import Raw
from kbuilder.runtime.data.tables import read_table, require_columns

NUMERIC_INPUT = "numeric"
FILE_NAME = "row_encoder.json"
RAW_INPUTS_NOTE = ("The table's inputs are raw: missing numbers are filled and features "
                   "scaled inside the model, categories one-hot encoded by it from codes "
                   f"(the rows' text becomes codes by {FILE_NAME}, saved with the model).")


@dataclass
class RowEncoder:
    """How raw rows of a table become a model's inputs (see the module docstring).

    Attributes:
        columns: the numeric block's columns in order, each ``{"column", "kind"}`` with
            kind ``"number"``, ``"boolean"`` (plus ``"true"``/``"false"``: the lowered
            words) or ``"date"`` (plus ``"parts"``, from ``columns.DATE_PARTS``).
        categories: per categorical column ``{"column", "input", "vocabulary"}``.
        merges: column -> {value: the value it becomes}, applied before anything else.
        decimal: the decimal mark of the training file ("." or ",").
        feature_names: the names of the numeric block's columns.
        numeric_input: the name of the Input taking the numeric block.
        class_names: the classes the model predicts (their order), for prediction files.
        images: per column of image paths ``{"column", "input", "size": [height, width],
            "channels", "color_mode"}``: the images it names feed the model's image Input.
    """

    columns: list[dict[str, Any]] = field(default_factory=list)
    categories: list[dict[str, Any]] = field(default_factory=list)
    merges: dict[str, dict[str, str]] = field(default_factory=dict)
    decimal: str = "."
    feature_names: list[str] = field(default_factory=list)
    numeric_input: str = NUMERIC_INPUT
    class_names: list[str] | None = None
    images: list[dict[str, Any]] = field(default_factory=list)

    @property
    def input_names(self) -> list[str]:
        names = [self.numeric_input] if self.columns else []
        return names + [c["input"] for c in self.categories]

    @property
    def source_columns(self) -> list[str]:
        return [c["column"] for c in self.columns] + [c["column"] for c in self.categories] \
            + [c["column"] for c in self.images]

    def to_dict(self) -> dict[str, Any]:
        return {"format": "kbuilder.row_encoder/1", **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RowEncoder:
        values = {k: v for k, v in data.items() if k != "format"}
        return cls(**values)

    def save(self, path: Path) -> Path:
        atomic_write(path, json.dumps(self.to_dict(), indent=1))  # never half a file
        return path

    @classmethod
    def load(cls, path: Path) -> RowEncoder:
        return cls.from_dict(json.loads(path.read_text()))

    def fit_vocabularies(self, parts: list[Any]) -> list[Any]:
        """Codes of the training split's vocabulary (``parts[0]`` is the training split):
        ``model_raw``'s ranks in every row's categories become 1 + the position among the
        categories the training rows have, 0 for the others."""
        out = [dict(p) if p is not None else None for p in parts]
        for spec in self.categories:
            name, every = spec["input"], spec["vocabulary"]
            seen = np.unique(out[0][name])
            remap = np.zeros(len(every), dtype=np.int32)
            remap[seen] = np.arange(1, len(seen) + 1, dtype=np.int32)
            spec["vocabulary"] = [every[i] for i in seen]
            for x in out:
                if x is not None:
                    x[name] = remap[x[name]]
        return out


def input_name(column: str, taken: set[str]) -> str:
    """A node name for a column's Input: lower-case letters, digits and underscores."""
    base = re.sub(r"[^0-9a-zA-Z]+", "_", column).strip("_").lower() or "column"
    if base[0].isdigit():
        base = f"c_{base}"
    name, i = base, 2
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    taken.add(name)
    return name


def category_text(column: Any, merges: dict[str, str]) -> Any:
    """A categorical column's values as text, merged, missing as ``(missing)``."""
    import pyarrow.compute as pc

    text = text_values(column)
    if merges:
        text = apply_merges(text, merges)
    return pc.fill_null(text, string_scalar(MISSING_CATEGORY))


def category_codes(text: Any, vocabulary: list[str]) -> np.ndarray:
    """int32 ``(n, 1)`` codes: 1 + the position in ``vocabulary``, 0 for other values."""
    import pyarrow.compute as pc

    index = pc.index_in(text, value_set=strings(vocabulary))
    slot = from_numpy(np.full(1, -1, str(index.type)))[0]  # not in the vocabulary: code 0
    codes = to_numpy(pc.fill_null(index, slot)) + 1
    return codes.astype(np.int32).reshape(-1, 1)


def boolean_values(text: Any, true: list[str], false: list[str]) -> np.ndarray:
    """float32 0/1 by the training words (lowered); NaN for missing or other words."""
    import pyarrow.compute as pc

    lowered = pc.utf8_lower(text)
    out = np.full(len(text), np.nan, dtype=np.float32)
    no = from_numpy(np.zeros(1, bool))[0]
    out[to_numpy(pc.fill_null(pc.is_in(lowered, value_set=strings(true)), no))] = 1.0
    out[to_numpy(pc.fill_null(pc.is_in(lowered, value_set=strings(false)), no))] = 0.0
    return out


def date_block(column: Any, parts: list[str]) -> np.ndarray:
    """float32 ``(n, len(parts))``: the date parts the training data had."""
    names, block, _bad = date_parts(column)
    out = np.empty((len(block), len(parts)), dtype=np.float32)
    for j, part in enumerate(parts):
        if part in names:
            out[:, j] = block[:, names.index(part)]
        else:  # no time of day in these rows: hour 0 where there is a date
            out[:, j] = np.where(np.isnan(block[:, 0]), np.nan, 0.0)
    return out


def encode_rows(encoder: RowEncoder, table: Any) -> dict[str, np.ndarray]:
    """The model inputs for the rows of ``table`` (a ``tables.Table``) by ``encoder``.

    Raises:
        DataError: a column the model needs is not in the table, or a number is not one.
    """
    import pyarrow as pa

    require_columns(table, encoder.source_columns)
    n = table.num_rows
    out: dict[str, np.ndarray] = {}
    if encoder.columns:
        numeric = np.empty((n, len(encoder.feature_names)), dtype=np.float32)
        at = 0
        for spec in encoder.columns:
            name, column = spec["column"], table.columns[spec["column"]]
            if pa.types.is_null(column.type):  # every cell empty (e.g. one row to predict)
                width = len(spec.get("parts", [None]))
                block = np.full((n, width), np.nan, dtype=np.float32)
            elif spec["kind"] == "date":
                block = date_block(column, spec["parts"])
            elif spec["kind"] == "boolean":
                block = boolean_values(text_values(column), spec["true"], spec["false"])
            else:
                numbers = as_numbers(column, table.decimal or encoder.decimal)
                if numbers is None or numbers.bad:
                    i = 0 if numbers is None else int(numbers.first_bad or 0)
                    shown = numbers.first_text if numbers is not None else "?"
                    raise DataError(
                        f"{table.where(i)}, column '{name}': '{shown}' is not a number. The "
                        "model was trained on numbers in this column; correct the cell or "
                        "leave it empty for a missing value.",
                        path=table.path, column=name, line=int(table.lines[i]))
                block = numbers.float32()
            block = block.reshape(n, -1)
            numeric[:, at:at + block.shape[1]] = block
            at += block.shape[1]
        out[encoder.numeric_input] = numeric
    for spec in encoder.categories:
        text = category_text(table.columns[spec["column"]],
                             encoder.merges.get(spec["column"], {}))
        out[spec["input"]] = category_codes(text, spec["vocabulary"])
    for spec in encoder.images:
        out[spec["input"]] = row_images(table, spec)
    return out


def row_images(table: Any, spec: dict[str, Any]) -> Any:
    """The images a column of ``table`` names (``spec``: one of ``RowEncoder.images``),
    relative to the table's folder, read as in training (``image_paths.image_column``).

    Raises:
        DataError: a cell is empty or an image missing; the message names the line.
    """
    from kbuilder.graph.settings import DataSettings
    from kbuilder.runtime.data.columns import text_values
    from kbuilder.runtime.data.image_paths import image_column

    settings = DataSettings(image_size=tuple(spec["size"]), color_mode=spec["color_mode"])
    text = text_values(table.columns[spec["column"]])
    return image_column(table, spec["column"], text, np.arange(table.num_rows), settings)


def encode_file(encoder: RowEncoder, path: Path) -> dict[str, np.ndarray]:
    """The model inputs for the rows of a table file (CSV, TSV, Parquet, Excel; its
    layout detected as for training data). A target column in it is ignored."""
    return encode_rows(encoder, read_rows(encoder, path))


def read_rows(encoder: RowEncoder, path: Path) -> Any:
    """The table file at ``path`` as ``encode_rows`` takes it (a ``tables.Table``): its
    layout detected as for training data, the categorical columns kept as text.

    Raises:
        DataError: the file cannot be read as a table; the message names file and line.
    """
    spec = parse_table_spec(f"csv:{path}")  # the format follows the file's extension
    categorical = tuple(sorted(c["column"] for c in encoder.categories))
    return read_table(spec, text_columns=categorical)


def model_raw(table: Any, settings: Any, columns: list[tuple[str, dict[str, Any]]],
              blocks: list[np.ndarray], names: list[str], missing: list[dict[str, Any]],
              kept: np.ndarray, y: np.ndarray, task: str, class_names: list[str] | None,
              notes: list[str], image_columns: list[tuple[str, Any]] = ()) -> Any:
    """``Raw`` model inputs (see the module docstring) from ``roles.encode_table``.

    Category codes are ranks in all the rows' sorted categories here; ``RowEncoder.fit_vocabularies``
    (after the split) makes them codes of the training split's vocabulary.
    """
    encoder = RowEncoder(decimal=table.decimal or ".", feature_names=list(names),
                         merges={c: m for c, m in settings.merge_map().items()},
                         class_names=list(class_names) if class_names else None)
    taken = {NUMERIC_INPUT}
    x: dict[str, np.ndarray] = {}
    if blocks:
        # Column-major: each block is one contiguous write (row-major, 20 columns of a
        # million rows took 0.25 s); the split's row selection makes row-major parts.
        numeric = np.empty((len(kept), len(names)), dtype=np.float32, order="F")
        at = 0
        for block in blocks:
            numeric[:, at:at + block.shape[1]] = block
            at += block.shape[1]
        x[NUMERIC_INPUT] = numeric
    for kind, spec in columns:
        if kind == "numeric":
            encoder.columns.append(spec)
            continue
        every, codes = category_ranks(spec.pop("text"), spec.pop("encoded", None))
        name = input_name(spec["column"], taken)
        x[name] = codes.astype(np.int32).reshape(-1, 1)
        encoder.categories.append({"column": spec["column"], "input": name,
                                   "vocabulary": every})
    if image_columns:
        import dataclasses

        from kbuilder.runtime.data.image_paths import with_image_columns

        images, _, image_notes = with_image_columns(
            table, np.empty((len(kept), 0), np.float32), list(image_columns), kept,
            dataclasses.replace(settings, input_arrays=()))
        streams = images if isinstance(images, dict) else {image_columns[0][0]: images}
        chosen = {column: node for node, column in settings.input_arrays}
        for column, stream in streams.items():
            key = chosen.get(column, column)
            if key in x:
                raise DataError(f"Column '{column}' of {table.name} names image files, but "
                                f"'{key}' is the Input of another column; rename one.",
                                path=table.path, column=column)
            x[key] = stream
            encoder.images.append({"column": column, "input": key,
                                   "size": list(stream.image_size),
                                   "channels": stream.channels,
                                   "color_mode": settings.color_mode})
        notes += image_notes
    notes.append(RAW_INPUTS_NOTE)
    return Raw(x, y, task, table.name, class_names=class_names,
               num_classes=len(class_names) if class_names else None,
               feature_names=list(names), missing=missing, notes=notes,
               row_ids=np.asarray(table.lines[kept]), row_label=table.row_label,
               row_encoder=encoder)


def trained_encoder(model_path: str | Path) -> RowEncoder | None:
    """The ``row_encoder.json`` saved next to a trained model, if any."""
    path = Path(model_path).parent / FILE_NAME
    return RowEncoder.load(path) if path.exists() else None


__all__ = ["FILE_NAME", "NUMERIC_INPUT", "RowEncoder", "encode_file", "encode_rows",
           "input_name", "model_raw", "trained_encoder"]

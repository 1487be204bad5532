"""What the data panel previews: a CSV file's columns, a few samples, the data's summary.

``describe_csv`` says what a CSV file holds before it becomes a dataset: its columns,
their types, the first rows. The panel shows it so the user can pick the target and
feature columns and mark categorical ones, even when the file cannot be loaded as chosen
yet (a column of numbers with a typo, a target with one class...). The types follow the
rules of ``kbuilder.runtime.data`` exactly — same delimiter sniffing, decoding and
missing-value markers — because the file is read by the same helpers.

``load_job`` is what the panel runs in a background thread: the CSV's columns, the
``Dataset``, its summary and a few samples (``preview_samples``: some images of each class,
or the first rows of a table).

No Qt.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kbuilder.graph.settings import DataSettings
from kbuilder.runtime.data import load_data
from kbuilder.runtime.data.dataset import DataError, Dataset, Progress, Streamed
from kbuilder.runtime.data.tables import (  # the loader's own reading rules, shared on purpose
    _is_missing,
    _parse_number,
    _read_table,
    looks_like_identifier,
)

HEAD_ROWS = 50
# Samples shown in the preview grid, and rows in the table head.
PREVIEW_IMAGES = 40
PREVIEW_ROWS = 50

# Distinct text values at most this many: listed as the column's categories.
SHOWN_CATEGORIES = 6


@dataclass(frozen=True)
class CsvColumn:
    """One column of a CSV file as the loader sees it.

    Attributes:
        name: the header's name.
        kind: ``"number"`` (every present value is a number), ``"text"`` (mostly text:
            one-hot encoded as a feature, class labels as a target), ``"mixed"`` (mostly
            numbers with some text: the loader refuses it unless marked categorical) or
            ``"empty"``.
        missing: how many cells are empty or a missing marker (``NA``, ``?``, ...).
        distinct: how many different present values.
        examples: a few present values.
        first_text: for ``"mixed"``: the first value that is not a number, and its line.
    """

    name: str
    kind: str
    missing: int
    distinct: int
    examples: tuple[str, ...] = ()
    first_text: tuple[str, int] | None = None

    @property
    def description(self) -> str:
        """The type in a few words, e.g. ``"number"``, ``"text · 3 values"``."""
        if self.kind == "text":
            return f"text · {self.distinct} value{'s' if self.distinct != 1 else ''}"
        if self.kind == "mixed" and self.first_text is not None:
            return f"number with text ('{self.first_text[0]}', line {self.first_text[1]})"
        return self.kind


@dataclass(frozen=True)
class CsvPreview:
    """The columns of a CSV file and its first rows (as text, as written)."""

    path: str
    name: str
    columns: tuple[CsvColumn, ...]
    head: tuple[tuple[str, ...], ...]
    rows: int
    delimiter: str
    head_lines: tuple[int, ...] = field(default=())

    @property
    def header(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> CsvColumn:
        return next(c for c in self.columns if c.name == name)

    def left_out(self, column: CsvColumn) -> str | None:
        """Why the loader leaves ``column`` out when no features are chosen (``None``: it
        is used). The loader's own rules, so the column table and the summary agree."""
        if column.kind == "empty":
            return "The column is empty: the loader leaves it out."
        categories = column.distinct + (1 if column.missing else 0)
        if column.kind == "text" and looks_like_identifier(categories, self.rows):
            return (f"{column.distinct} different text values, like an identifier or free "
                    "text: left out unless you tick it.")
        return None


def describe_csv(path: str | Path, head: int = HEAD_ROWS) -> CsvPreview:
    """Read a CSV file's columns with their detected types, and its first rows.

    Args:
        path: the CSV file.
        head: how many data rows to keep for the preview.

    Returns:
        A ``CsvPreview``.

    Raises:
        DataError: the file cannot be read as CSV (the message names the file and line).
    """
    table = _read_table(Path(path))
    columns = []
    for i, name in enumerate(table.header):
        cells = [row[i] for row in table.rows]
        columns.append(_describe_column(name, cells, table.lines, table.delimiter))
    return CsvPreview(
        path=str(path),
        name=table.name,
        columns=tuple(columns),
        head=tuple(tuple(row) for row in table.rows[:head]),
        rows=len(table.rows),
        delimiter=table.delimiter,
        head_lines=tuple(table.lines[:head]),
    )


def _describe_column(name: str, cells: list[str], lines: list[int],
                     delimiter: str) -> CsvColumn:
    present = [(cell, line) for cell, line in zip(cells, lines, strict=True)
               if not _is_missing(cell)]
    missing = len(cells) - len(present)
    distinct = list(dict.fromkeys(cell for cell, _ in present))
    examples = tuple(distinct[:SHOWN_CATEGORIES])
    if not present:
        return CsvColumn(name, "empty", missing, 0)
    text = [(cell, line) for cell, line in present if _parse_number(cell, delimiter) is None]
    if not text:
        kind = "number"
    elif len(text) < len(present) / 2:  # the loader's rule: a typo, not a text column
        kind = "mixed"
    else:
        kind = "text"
    return CsvColumn(name, kind, missing, len(distinct), examples,
                     text[0] if kind == "mixed" else None)


# ========================================================================= loading
@dataclass
class Samples:
    """A few samples to show: images (uint8, ``(n, h, w, 1|3)``) or a table head."""

    kind: str = "none"  # "images" | "table" | "none"
    images: np.ndarray | None = None
    sample_shape: tuple[int, ...] = ()
    labels: list[str] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)


@dataclass
class LoadResult:
    """What loading ``settings`` gave: the data, or the error (and the CSV's columns)."""

    settings: DataSettings
    dataset: Dataset | None = None
    summary: dict[str, Any] | None = None
    samples: Samples | None = None
    csv: CsvPreview | None = None
    error: DataError | None = None
    seconds: float = 0.0


def csv_path(settings: DataSettings) -> str:
    """The file of a ``csv:PATH[:target=COLUMN]`` source."""
    path, sep, _target = settings.location.rpartition(":target=")
    return path if sep and path else settings.location


def load_job(settings: DataSettings, progress: Progress | None = None) -> LoadResult:
    """Read the CSV's columns (for CSV sources), load the data, summarise it.

    A CSV without a chosen target gets its last column as the target (the loader's
    default) in ``result.settings``. Never raises for bad data: the ``DataError`` is in
    the result.
    """
    start = time.monotonic()
    result = LoadResult(settings)
    try:
        if settings.kind == "csv":
            result.csv = describe_csv(csv_path(settings))
            if settings.target is None and ":target=" not in settings.location:
                # The loader's default, made explicit: the panel shows it as the target.
                settings = dataclasses.replace(settings, target=result.csv.header[-1])
                result.settings = settings
        dataset = load_data(settings, progress)
        result.summary = dataset.summary()
        result.samples = preview_samples(dataset)
        result.dataset = dataset
    except DataError as exc:
        result.error = exc
    except (OSError, ValueError, MemoryError) as exc:
        # Not the user's data description: a disk or memory problem while reading.
        result.error = DataError(f"The data could not be read: {exc}")
    result.seconds = time.monotonic() - start
    return result


def preview_samples(ds: Dataset, images: int = PREVIEW_IMAGES,
                    rows: int = PREVIEW_ROWS) -> Samples:
    """Images (a few of each class) or the first rows of the training split."""
    x = ds.x_train
    if not isinstance(x, np.ndarray | Streamed):
        return Samples()  # several inputs: the summary lists them
    labels = [_label_text(ds, v) for v in _label_values(ds)]
    if _is_image_batch(x) or isinstance(x, Streamed):
        index = _balanced(ds, images)  # a stream reads only these images
        return Samples("images", _to_uint8(x[index]), tuple(x.shape[1:]),
                       [labels[i] for i in index])
    flat = x.reshape(len(x), -1)
    names = ds.feature_names if ds.feature_names and len(ds.feature_names) == flat.shape[1] \
        else [f"x{i}" for i in range(flat.shape[1])]
    head = flat[:rows]
    table = [[labels[i], *(_cell(v) for v in head[i])] for i in range(len(head))]
    return Samples("table", None, tuple(x.shape[1:]), labels[:rows],
                   ["label" if ds.task == "classification" else "target", *names], table)


def _is_image_batch(x: np.ndarray) -> bool:
    return x.ndim == 4 and x.shape[-1] in (1, 3, 4) and min(x.shape[1:3]) >= 4


def _label_values(ds: Dataset) -> list[Any]:
    if ds.task == "classification":
        return list(ds.labels_as_ids(ds.y_train))
    return list(np.asarray(ds.y_train).reshape(len(ds.y_train), -1)[:, 0])


def _label_text(ds: Dataset, value: Any) -> str:
    if ds.task == "classification":
        names = ds.class_names or []
        return names[int(value)] if 0 <= int(value) < len(names) else str(int(value))
    return _cell(value)


def _cell(value: Any) -> str:
    value = float(value)
    if np.isnan(value):
        return "NaN"
    return str(int(value)) if value.is_integer() and abs(value) < 1e9 else f"{value:.4g}"


def _balanced(ds: Dataset, count: int) -> np.ndarray:
    """Indices of up to ``count`` training samples, a few of each class in class order."""
    n = len(ds.y_train)
    if ds.task != "classification" or not ds.num_classes:
        return np.arange(min(n, count))
    ids = ds.labels_as_ids(ds.y_train)
    per_class = max(1, count // ds.num_classes)
    picked = [np.flatnonzero(ids == k)[:per_class] for k in range(ds.num_classes)]
    index = np.concatenate(picked) if picked else np.arange(0)
    return index[:count].astype(np.int64)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """Pixels for display: 0..1 and 0..255 data as is, anything else stretched."""
    x = np.nan_to_num(x.astype(np.float32))
    if x.shape[-1] == 4:
        x = x[..., :3]
    lo, hi = float(x.min(initial=0)), float(x.max(initial=0))
    if lo >= 0 and hi <= 1.0:
        x = x * 255.0
    elif not (lo >= 0 and hi <= 255):
        x = (x - lo) / ((hi - lo) or 1.0) * 255.0
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


__all__ = [
    "CsvColumn", "CsvPreview", "LoadResult", "Samples", "csv_path", "describe_csv",
    "load_job", "preview_samples",
]

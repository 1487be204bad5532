"""What the data panel previews: a table's columns, a few samples, the data's summary.

``describe_csv`` says what a table file holds before it becomes a dataset: its columns,
their types and roles (``roles.py``: the loader's own record, so the panel and the loader
agree), the first rows. It reads only the first rows (at most the file's first 4 MB), so
a file of gigabytes previews in about a second; the row count is then an estimate. The
panel shows it so the user can pick the target and feature columns, roles and merges,
even when the file cannot be loaded as chosen yet (a column of numbers with a typo, a
target with one class...).

``load_job`` is what the panel runs in a background thread: the table's columns, the
``Dataset``, its summary and a few samples (``preview_samples``: some images of each class,
or the first rows of a table).

No Qt.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kbuilder.graph.settings import DataSettings, SettingsError, parse_source
from kbuilder.runtime.data import load_data
from kbuilder.runtime.data.dataset import DataError, Dataset, Progress, Streamed
from kbuilder.runtime.data.roles import ColumnRole, column_roles
from kbuilder.runtime.data.tables import read_table

HEAD_ROWS = 50
# Samples shown in the preview grid, and rows in the table head.
PREVIEW_IMAGES = 40
PREVIEW_ROWS = 50
# Rows the preview reads to describe the columns (from the start of the file): a 2 GB file
# previews in about the time of reading a few megabytes.
SAMPLE_ROWS = 20_000

# Distinct text values at most this many: listed as the column's categories.
SHOWN_CATEGORIES = 6


@dataclass(frozen=True)
class CsvColumn:
    """One column of a table as the loader sees it.

    Attributes:
        name: the header's name.
        kind: ``"number"`` (every present value is a number), ``"text"`` (mostly text:
            one-hot encoded as a feature, class labels as a target), ``"mixed"`` (mostly
            numbers with some text: the loader refuses it unless marked categorical),
            ``"date"`` or ``"empty"``.
        missing: how many cells are empty or a missing marker (``NA``, ``?``, ...).
        distinct: how many different present values.
        examples: a few present values.
        first_text: for ``"mixed"``: the first value that is not a number, and its line.
        role: the column's role (``kbuilder.runtime.data.roles``): what the loader makes
            of it and why.
    """

    name: str
    kind: str
    missing: int
    distinct: int
    examples: tuple[str, ...] = ()
    first_text: tuple[str, int] | None = None
    role: ColumnRole | None = None

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
    """The columns of a table and its first rows (as text, as written).

    ``rows`` is exact when ``complete``; else it is estimated from the share of the file
    read (the preview reads the first ``SAMPLE_ROWS`` rows only).
    """

    path: str
    name: str
    columns: tuple[CsvColumn, ...]
    head: tuple[tuple[str, ...], ...]
    rows: int
    delimiter: str
    head_lines: tuple[int, ...] = field(default=())
    complete: bool = True
    sampled: int = 0  # rows read to describe the columns
    bytes_read: int = 0

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
        role = column.role
        # Image paths are no features, but used: they feed the model's image Input.
        if role is not None and not role.used and role.role not in ("target", "image_path"):
            return role.reason[0].upper() + role.reason[1:] + "."
        return None


def describe_csv(path: str | Path, head: int = HEAD_ROWS,
                 settings: DataSettings | None = None) -> CsvPreview:
    """Read a table's columns with their roles, and its first rows.

    Only the first ``SAMPLE_ROWS`` rows are read (the file's first megabytes), so even a
    file of gigabytes previews in about a second.

    Args:
        path: the file (or a table source spec, ``csv:PATH:header=none...``).
        head: how many data rows to keep for the preview.
        settings: the data settings whose reading options and roles apply.

    Returns:
        A ``CsvPreview``.

    Raises:
        DataError: the file cannot be read as a table (the message names file and line).
    """
    settings = settings or DataSettings(source=_as_source(path))
    try:
        spec = settings.table()
    except SettingsError as exc:
        raise DataError(str(exc)) from None
    table = read_table(spec, max_rows=SAMPLE_ROWS, as_text=True)
    target = settings.target or spec.target
    # The column's type as written, and its role as the user's choices make it.
    bare = dataclasses.replace(settings, categorical=(), roles=(), merges=())
    inferred = column_roles(table, bare, target)
    chosen = set(settings.categorical) | set(settings.role_overrides()) \
        | set(settings.merge_map())
    roles = column_roles(table, settings, target) if chosen else inferred
    columns = [dataclasses.replace(_column(seen), role=role)
               for seen, role in zip(inferred, roles, strict=True)]
    heads = [table.columns[n].slice(0, head).to_pylist() for n in table.header]
    rows = table.num_rows
    if not table.complete:
        rows = max(rows, table.estimated_rows)
    return CsvPreview(
        path=spec.path,
        name=table.name,
        columns=tuple(columns),
        head=tuple(tuple((v or "").strip() for v in row) for row in zip(*heads, strict=True)),
        rows=rows,
        delimiter=table.delimiter,
        head_lines=tuple(int(v) for v in table.lines[:head]),
        complete=table.complete,
        sampled=table.num_rows,
        bytes_read=table.bytes_read,
    )


def _as_source(path: str | Path) -> str:
    """A table source for ``path``: itself when it is one (``tsv:x.tsv``), else ``csv:PATH``
    (a plain path, ``C:\\data\\x.csv`` included)."""
    text = str(path)
    try:
        is_table = parse_source(text)[0] == "csv"
    except SettingsError:
        is_table = False
    return text if is_table else f"csv:{text}"


def _column(role: ColumnRole) -> CsvColumn:
    if role.inferred == "empty":
        kind = "empty"
    elif role.first_text is not None:
        kind = "mixed"
    elif role.inferred == "datetime":
        kind = "date"
    elif role.numbers:
        kind = "number"
    else:
        kind = "text"
    return CsvColumn(role.name, kind, role.missing, role.distinct, role.examples,
                     role.first_text, role)


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


def load_job(settings: DataSettings, progress: Progress | None = None,
             columns: Callable[[CsvPreview], None] | None = None) -> LoadResult:
    """Read the table's columns (for table sources), load the data, summarise it.

    A table without a chosen target gets its last column as the target (the loader's
    default) in ``result.settings``. Never raises for bad data: the ``DataError`` is in
    the result.

    Args:
        settings: the data settings.
        progress: called as ``progress(stage, done, total)`` while loading.
        columns: called with the ``CsvPreview`` as soon as the first rows are read, before
            the whole file is (a big file's columns show in about a second).
    """
    start = time.monotonic()
    result = LoadResult(settings)
    try:
        if settings.kind == "csv":
            result.csv = describe_csv(settings.table().path, settings=settings)
            if columns is not None:
                columns(result.csv)
            if settings.table().target is None:
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
    "CsvColumn", "CsvPreview", "LoadResult", "Samples", "describe_csv",
    "load_job", "preview_samples",
]

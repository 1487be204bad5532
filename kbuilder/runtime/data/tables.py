"""CSV files: read, columns chosen and encoded, each problem named by line and column."""


from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kbuilder.graph.settings import DataSettings
from kbuilder.graph.text import plural
from kbuilder.runtime.data.dataset import FLOAT32_MAX, DataError
from kbuilder.runtime.data.labels import encode_labels, infer_task
from kbuilder.runtime.data.split import Raw

MISSING_MARKERS = frozenset({"", "na", "n/a", "nan", "null", "?"})
MISSING_CATEGORY = "(missing)"
# A text column with more distinct values than this, most of them unique, is an identifier
# or free text; one-hot encoding it would only add noise.
# A text column with more distinct values than this, most of them unique, is an identifier
# or free text; one-hot encoding it would only add noise.
MAX_AUTO_CATEGORIES = 50


# ================================================================================= CSV
def _csv_location(location: str) -> tuple[str, str | None]:
    """``PATH[:target=COLUMN]`` -> (path, column or None)."""
    path, sep, target = location.rpartition(":target=")
    if sep and path:
        return path, target
    return location, None


@dataclass
class _Table:
    name: str  # the file's name, as messages show it
    path: str
    header: list[str]
    rows: list[list[str]]
    lines: list[int]  # the line each row ends on (1-based)
    delimiter: str


def load_csv(location: str, settings: DataSettings, task: str | None) -> Raw:
    path_text, spec_target = _csv_location(location)
    table = _read_table(Path(path_text))
    notes: list[str] = []
    target = settings.target or spec_target
    if target is None:
        target = table.header[-1]
        notes.append(f"No target column was chosen; using the last column '{target}'.")
    _require_columns(table, [target])
    if settings.features is not None:
        _require_columns(table, list(settings.features))
        if target in settings.features:
            raise DataError(
                f"Column '{target}' of {table.name} is both the target and a feature; "
                "the model must not see the answer. Remove it from the features.",
                path=path_text, column=target,
            )
        features = list(settings.features)
    else:
        features = [c for c in table.header if c != target]
    _require_columns(table, list(settings.categorical))

    cells = {name: [row[i] for row in table.rows] for i, name in enumerate(table.header)}
    y, task, class_names, kept, target_notes = _csv_target(table, target, cells[target], task)
    notes += target_notes
    columns, names, missing, impute = [], [], [], []
    for name in features:
        values = [cells[name][i] for i in kept]
        lines = [table.lines[i] for i in kept]
        explicit = settings.features is not None or name in settings.categorical
        encoded = _csv_feature(table, name, values, lines, name in settings.categorical,
                               explicit, notes)
        if encoded is None:
            continue
        block, block_names, missing_entry = encoded
        if missing_entry is not None:
            if missing_entry.get("filled_with") == "median":
                missing_entry["index"] = len(names)  # filled after the split, see finish
                impute.append(len(names))
            missing.append(missing_entry)
        columns.append(block)
        names += block_names
    if not columns:
        raise DataError(
            f"{table.name} has no usable feature columns besides the target '{target}'.",
            path=path_text,
        )
    x = np.concatenate(columns, axis=1).astype(np.float32)
    return Raw(
        x, y, task, table.name,
        class_names=class_names,
        num_classes=len(class_names) if class_names else None,
        feature_names=names, impute_columns=impute, missing=missing, notes=notes,
        row_ids=np.asarray([table.lines[i] for i in kept]), row_label="line",
    )


def _read_table(path: Path) -> _Table:
    """Header and rows of a CSV file, with the line of each row; rejects what is not CSV."""
    name = path.name
    if not path.exists():
        raise DataError(f"The CSV file {path} does not exist.", path=str(path))
    if path.is_dir():
        raise DataError(f"{path} is a folder, not a CSV file.", path=str(path))
    raw = path.read_bytes()
    if b"\x00" in raw[:65536]:
        raise DataError(
            f"{name} is not a text file (it contains binary data). A CSV file is text with "
            "one row per sample and a header row naming the columns.", path=str(path),
        )
    text = _decode(raw)
    if not text.strip():
        raise DataError(f"{name} is empty; a CSV file needs a header row and data rows.",
                        path=str(path))
    delimiter = _sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [cell.strip() for cell in next(reader)]
        rows, lines = [], []
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue  # blank lines (often at the end) are not samples
            if len(row) != len(header):
                raise DataError(
                    f"{name} line {reader.line_num} has {plural(len(row), 'value')} but the "
                    f"header has {plural(len(header), 'column')}. Check for a missing or extra "
                    f"'{_delimiter_name(delimiter)}' or an unclosed quote.",
                    path=str(path), line=reader.line_num,
                )
            rows.append([cell.strip() for cell in row])
            lines.append(reader.line_num)
    except csv.Error as exc:
        raise DataError(f"{name} line {reader.line_num} cannot be read as CSV: {exc}.",
                        path=str(path), line=reader.line_num) from exc
    header = [cell or f"column_{i + 1}" for i, cell in enumerate(header)]
    _check_unique(header, name, str(path))
    if not rows:
        raise DataError(f"{name} has a header row but no data rows.", path=str(path))
    return _Table(name, str(path), header, rows, lines, delimiter)


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252")  # spreadsheet exports on Windows
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _sniff_delimiter(text: str) -> str:
    sample = "\n".join(text.splitlines()[:50])
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","  # e.g. a single column: nothing to sniff


def _delimiter_name(delimiter: str) -> str:
    return {"\t": "tab"}.get(delimiter, delimiter)


def _check_unique(header: list[str], name: str, path: str) -> None:
    seen: dict[str, int] = {}
    for i, column in enumerate(header):
        if column in seen:
            raise DataError(
                f"{name} has two columns named '{column}' (columns {seen[column] + 1} and "
                f"{i + 1}); column names must be unique. Rename one of them.",
                path=path, column=column,
            )
        seen[column] = i


def _require_columns(table: _Table, columns: list[str]) -> None:
    for column in columns:
        if column not in table.header:
            raise DataError(
                f"Column '{column}' is not in {table.name}; its columns are: "
                f"{', '.join(table.header)}.",
                path=table.path, column=column,
            )


def _parse_number(cell: str, delimiter: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        pass
    if delimiter == ";" and re.fullmatch(r"[+-]?\d+,\d+", cell):
        return float(cell.replace(",", "."))  # a decimal comma (European spreadsheets)
    return None


def _float32_problem(value: float) -> str | None:
    """Why ``value`` cannot be trained on (Keras computes in float32), or ``None``."""
    if math.isinf(value):
        return "is infinite"
    if abs(value) > FLOAT32_MAX:
        return (f"is too large: models compute in 32-bit floats, which hold at most "
                f"±{FLOAT32_MAX:.1e}")
    return None


def _is_missing(cell: str) -> bool:
    return cell.lower() in MISSING_MARKERS


def _numeric_values(
    table: _Table, column: str, cells: list[str], lines: list[int], forced: bool
) -> np.ndarray | None:
    """Floats (NaN where missing) when the column is numeric; ``None`` when it is text.

    A column whose values are mostly numbers but not all is a typo, not a text column
    (unless ``forced``: then every non-number is an error).
    """
    values = np.full(len(cells), np.nan)
    bad = []
    for i, cell in enumerate(cells):
        if _is_missing(cell):
            continue
        number = _parse_number(cell, table.delimiter)
        if number is None:
            bad.append(i)
            continue
        problem = _float32_problem(number)
        if problem:
            raise DataError(
                f"{table.name} line {lines[i]}, column '{column}': {cell} {problem}. "
                "Correct the value, leave the cell empty for a missing value, or rescale "
                "the column (e.g. other units).",
                path=table.path, column=column, line=lines[i],
            )
        values[i] = number
    present = len(cells) - sum(_is_missing(c) for c in cells)
    if not bad:
        return values
    if forced or len(bad) < present / 2:
        i = bad[0]
        raise DataError(
            f"{table.name} line {lines[i]}, column '{column}': '{cells[i]}' is not a "
            "number. Correct it, leave the cell empty for a missing value, or mark the "
            "column as categorical.",
            path=table.path, column=column, line=lines[i],
        )
    return None


def _csv_target(
    table: _Table, column: str, cells: list[str], task: str | None
) -> tuple[np.ndarray, str, list[str] | None, list[int], list[str]]:
    """Labels or targets, the task, class names, rows kept (target present), notes."""
    notes = []
    kept = [i for i, cell in enumerate(cells) if not _is_missing(cell)]
    if len(kept) < len(cells):
        notes.append(f"{len(cells) - len(kept)} row(s) without a value for the target "
                     f"'{column}' were left out.")
    if not kept:
        raise DataError(f"The target column '{column}' of {table.name} has no values.",
                        path=table.path, column=column)
    present = [cells[i] for i in kept]
    lines = [table.lines[i] for i in kept]
    numbers = _numeric_values(table, column, present, lines, forced=task == "regression")
    values = np.asarray(present) if numbers is None else numbers
    task = task or infer_task(values)
    if task == "regression":
        return values.astype(np.float32), task, None, kept, notes
    ids, names, label_notes = encode_labels(values, f"{table.name} (column '{column}')")
    return ids, task, names, kept, notes + label_notes


def looks_like_identifier(categories: int, cells: int) -> bool:
    """Whether a text column of ``cells`` cells with ``categories`` different values is
    left out unless the user chooses it: more than ``MAX_AUTO_CATEGORIES`` values, most of
    them different (an identifier or free text; one-hot encoded it is only noise).

    The data panel's column table uses the same rule to show which columns are used.
    """
    return categories > MAX_AUTO_CATEGORIES and categories > cells / 2


def _csv_feature(
    table: _Table, column: str, cells: list[str], lines: list[int], categorical: bool,
    explicit: bool, notes: list[str],
) -> tuple[np.ndarray, list[str], dict[str, Any] | None] | None:
    """One feature column encoded: (block of columns, their names, missing-value entry)."""
    n_missing = sum(_is_missing(c) for c in cells)
    if n_missing == len(cells):
        notes.append(f"Column '{column}' is empty and was left out.")
        return None
    if not categorical:
        numbers = _numeric_values(table, column, cells, lines, forced=False)
        if numbers is not None:
            entry = None
            if n_missing:
                entry = {"column": column, "count": n_missing, "filled_with": "median"}
            return numbers[:, None], [column], entry
    labels = [MISSING_CATEGORY if _is_missing(c) else c for c in cells]
    categories = sorted(set(labels))
    if not explicit and looks_like_identifier(len(categories), len(cells)):
        notes.append(
            f"Column '{column}' has {len(categories)} different text values, like an "
            "identifier or free text, and was left out. Choose it as a feature or mark it "
            "categorical to use it anyway."
        )
        return None
    index = {c: i for i, c in enumerate(categories)}
    block = np.zeros((len(cells), len(categories)), dtype=np.float32)
    block[np.arange(len(cells)), [index[v] for v in labels]] = 1.0
    entry = None
    if n_missing:
        entry = {"column": column, "count": n_missing, "filled_with": MISSING_CATEGORY}
    return block, [f"{column}={c}" for c in categories], entry



"""A table's column values: text (stripped, missing markers as nulls), numbers (``Numbers``,
``as_numbers``, with the first cell that is not one), categories (``Encoded``,
``category_ranks``), the float32 limits a model computes in, and the target's values.

Each works on distinct values where a column repeats a few (a category column of a million
cells has a handful), not once per cell.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from kbuilder.graph.table_layout import MISSING_MARKERS
from kbuilder.runtime.data.arrow_numpy import from_numpy, string_scalar, strings, to_numpy
from kbuilder.runtime.data.dataset import FLOAT32_MAX, DataError
from kbuilder.runtime.data.labels import encode_labels, infer_task

if TYPE_CHECKING:
    from kbuilder.runtime.data.tables import Table

NUMBER_PATTERN = r"^[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf|infinity|nan)$"
MISSING_CATEGORY = "(missing)"
# A text column with more distinct values than this, most of them unique, is an identifier
# or free text; one-hot encoding it would only add noise.
MAX_AUTO_CATEGORIES = 50

DATE_PARTS = ("year", "month", "day_of_week", "day_of_year", "hour")


def text_values(column: Any) -> Any:
    """A text column stripped, with its missing markers as nulls (a pyarrow array)."""
    import pyarrow as pa

    if column.type != pa.string() and column.type != pa.large_string():
        import pyarrow.compute as pc

        column = pc.cast(column, pa.string())
    if not _repetitive(column):
        return _clean_text(column)
    dictionary, indices = _encoded(column)
    return _expand(_clean_text(dictionary), indices)


def _repetitive(column: Any, sample: int = 10_000) -> bool:
    """Whether the column's first cells repeat a few values (categories, labels), so
    that working on its distinct values pays; an identifier's are all different, and
    encoding them first would triple the time."""
    import pyarrow.compute as pc

    head = column.slice(0, sample)
    return len(pc.unique(head)) * 4 <= len(head)


def _clean_text(text: Any) -> Any:
    """``text`` stripped, with its missing markers as nulls."""
    import pyarrow.compute as pc

    stripped = pc.utf8_trim_whitespace(text)
    missing = pc.is_in(pc.utf8_lower(stripped), value_set=strings(sorted(MISSING_MARKERS)))
    return pc.if_else(missing, string_scalar(None), stripped)


def _encoded(column: Any) -> tuple[Any, Any]:
    """A text column as (its distinct values, each cell's index into them, null where the
    cell is null): what is done to a value is then done once per value, not per cell (a
    category column of a million cells has a handful)."""
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(column).combine_chunks()
    return encoded.dictionary, encoded.indices


def _expand(values: Any, indices: Any) -> Any:
    """Per-value strings back to one per cell (a chunked array, as the column was)."""
    import pyarrow as pa

    return pa.chunked_array([values.take(indices)], values.type)


@dataclass
class Encoded:
    """A text column (as ``text_values`` gives it) as its distinct present values, in the
    order they first occur, and each cell's index into them (-1: missing). Counting,
    one-hot encoding and numbering classes then work on a handful of values and an
    integer array, not on a million strings hashed again at every step."""

    values: list[str]
    codes: np.ndarray  # int32, one per cell

    @property
    def missing(self) -> int:
        return int(np.count_nonzero(self.codes < 0))

    def counts(self) -> dict[str, int]:
        """Present values and their counts, most frequent first (ties: first seen)."""
        tally = np.bincount(self.codes[self.codes >= 0], minlength=len(self.values))
        return dict(sorted(zip(self.values, tally.tolist(), strict=True),
                           key=lambda pair: -pair[1]))


def _encode_clean(dictionary: Any, codes: np.ndarray) -> Encoded:
    """``Encoded`` from a cleaned dictionary (which may repeat a value, 'a ' and 'a' both
    being 'a', or hold nulls, the missing markers) and each cell's index into it
    (``len(dictionary)`` for a missing cell)."""
    import pyarrow.compute as pc

    unique = pc.dictionary_encode(dictionary)
    slot = from_numpy(np.full(1, -1, str(unique.indices.type)))[0]
    remap = np.append(to_numpy(pc.fill_null(unique.indices, slot)), -1).astype(np.int32)
    return Encoded(unique.dictionary.to_pylist(), remap[codes])


def category_ranks(text: Any, encoded: Encoded | None) -> tuple[list[str], np.ndarray]:
    """A categorical column's categories, sorted, with ``(missing)`` for missing cells,
    and each cell's position among them (int64)."""
    import pyarrow.compute as pc

    if encoded is not None:
        dictionary, codes = list(encoded.values), encoded.codes
        if encoded.missing:
            if MISSING_CATEGORY not in dictionary:
                dictionary.append(MISSING_CATEGORY)
            codes = np.where(codes < 0, dictionary.index(MISSING_CATEGORY), codes)
    else:
        filled = pc.fill_null(text, string_scalar(MISSING_CATEGORY))
        unique = pc.dictionary_encode(filled).combine_chunks()
        dictionary, codes = unique.dictionary.to_pylist(), to_numpy(unique.indices)
    categories = sorted(dictionary)
    position = {c: i for i, c in enumerate(categories)}
    rank = np.asarray([position[v] for v in dictionary], dtype=np.int64)
    return categories, rank[codes]


@dataclass
class Numbers:
    """A column as numbers: ``values`` (float64, NaN where missing) and the rows whose
    cell is not a number (``bad``) with the first of them as written; ``text``: the
    column as ``text_values`` gave it (for a column read as text), and ``encoded`` the
    same as codes where the column repeats a few values.

    ``source`` is the values, or the Arrow column of floats the CSV parse made, kept as it
    is until the float64 values are asked for: a table of measurements is analysed from
    its gaps and first values and becomes float32 features in one pass, without a float64
    copy of each column (bench/data_scale.py)."""

    source: Any
    bad: int = 0
    first_bad: int | None = None
    first_text: str | None = None
    text: Any = None
    encoded: Encoded | None = None

    @property
    def values(self) -> np.ndarray:
        if not isinstance(self.source, np.ndarray):
            self.source = to_numpy(self.source)
        return self.source

    def present(self) -> int:
        """How many cells hold a number (not missing, not NaN)."""
        if isinstance(self.source, np.ndarray):
            return len(self.source) - int(np.count_nonzero(np.isnan(self.source)))
        import pyarrow.compute as pc

        nan = pc.sum(pc.is_nan(self.source)).as_py() or 0
        return len(self.source) - self.source.null_count - int(nan)

    def head(self, count: int) -> np.ndarray:
        """The first ``count`` numbers that are present (fewer if there are not so many),
        found without converting the whole column."""
        if isinstance(self.source, np.ndarray):
            values, size = self.source, count
            while True:
                head = values[:size][~np.isnan(values[:size])]
                if len(head) >= count or size >= len(values):
                    return head[:count]
                size *= 4
        found, total = [], 0
        for chunk in self.source.chunks:
            values = to_numpy(chunk.drop_null())
            values = values[~np.isnan(values)]
            found.append(values[:count - total])
            total += len(found[-1])
            if total >= count:
                break
        return np.concatenate(found) if found else np.zeros(0)

    def float32(self) -> np.ndarray:
        """The values as float32 (NaN where missing; inf beyond float32's range)."""
        if isinstance(self.source, np.ndarray):
            with np.errstate(over="ignore"):
                return self.source.astype(np.float32)
        return to_numpy(self.source, np.float32)


def as_numbers(column: Any, decimal: str = ".") -> Numbers | None:
    """The column as numbers, or ``None`` when it holds dates or is not numeric at all."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    if pa.types.is_float64(kind) and isinstance(column, pa.ChunkedArray):
        return Numbers(column)  # converted when needed (Numbers.values, .float32)
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        return Numbers(to_numpy(pc.cast(column, pa.float64())))
    if pa.types.is_decimal(kind):
        return Numbers(to_numpy(pc.cast(column, pa.float64())))
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        return None
    few = _repetitive(column)
    if few:
        dictionary, indices = _encoded(column)
    clean_values = text = _clean_text(dictionary if few else column)
    if decimal == ",":
        text = pc.replace_substring_regex(text, pattern=r"^([+-]?\d+),(\d+)$",
                                          replacement=r"\1.\2")
    # What a number looks like (Python's float() would also take '1_000'); arrow's cast
    # then parses them, as its CSV reader parses the columns it types as numbers.
    number = pc.match_substring_regex(text, NUMBER_PATTERN, ignore_case=True)
    numeric = to_numpy(pc.fill_null(number, from_numpy(np.ones(1, bool))[0]))
    parsed = pc.cast(pc.if_else(number, text, string_scalar(None)), pa.float64())
    if not few:  # cell by cell
        values = to_numpy(parsed)
        bad_mask = ~numeric
        bad = int(bad_mask.sum())
        if not bad:
            return Numbers(values, text=clean_values)
        first = int(np.flatnonzero(bad_mask)[0])
        return Numbers(values, bad, first, text[first].as_py(), clean_values)
    # One more slot for the null cells (null indices): NaN, a number (not a bad cell).
    lookup = np.append(to_numpy(parsed), np.nan)
    numeric = np.append(numeric, True)
    slot = from_numpy(np.asarray([len(dictionary)], str(indices.type)))[0]
    codes = to_numpy(pc.fill_null(indices, slot))
    values = lookup[codes]
    clean = _expand(clean_values, indices)
    bad_mask = ~numeric[codes]
    bad = int(bad_mask.sum())
    if not bad:
        return Numbers(values, text=clean)
    first = int(np.flatnonzero(bad_mask)[0])
    return Numbers(values, bad, first, text[int(codes[first])].as_py(), clean,
                   _encode_clean(clean_values, codes))


def float32_problem(value: float) -> str | None:
    """Why ``value`` cannot be trained on (Keras computes in float32), or ``None``."""
    if math.isinf(value):
        return "is infinite"
    if abs(value) > FLOAT32_MAX:
        return (f"is too large: models compute in 32-bit floats, which hold at most "
                f"±{FLOAT32_MAX:.1e}")
    return None


def check_float32(table: Table, column: str, values: np.ndarray, rows: np.ndarray | None,
                  raw: Any = None) -> None:
    """Refuse a value a float32 model cannot hold, naming its line."""
    with np.errstate(invalid="ignore"):
        over = np.flatnonzero(np.abs(values) > FLOAT32_MAX)
    if not len(over):
        return
    i = int(over[0])
    row = int(rows[i]) if rows is not None else i
    value = float(values[i])
    written = _written(raw, row) if raw is not None else None
    cell = written or (("-inf" if value < 0 else "inf") if math.isinf(value)
                       else f"{value:g}")
    problem = float32_problem(value)
    raise DataError(
        f"{table.where(row)}, column '{column}': {cell} {problem}. Correct the value, leave "
        "the cell empty for a missing value, or rescale the column (e.g. other units).",
        path=table.path, column=column, line=int(table.lines[row]),
    )


def _written(column: Any, row: int) -> str | None:
    import pyarrow as pa

    if pa.types.is_string(column.type):
        value = column[row].as_py()
        return value.strip() if value else None
    return None


def target_values(
    table: Table, column: str, merges: dict[str, str], task: str | None
) -> tuple[np.ndarray, str, list[str] | None, np.ndarray, list[str]]:
    """Labels or targets, the task, class names, rows kept (target present), notes."""
    import pyarrow.compute as pc

    notes = []
    raw = table.columns[column]
    numbers = text = encoded = None
    if not merges:
        numbers = as_numbers(raw, table.decimal)
    if numbers is not None and numbers.bad:
        present = int((~np.isnan(numbers.values)).sum()) + numbers.bad
        if task == "regression" or numbers.bad < present / 2:
            i = numbers.first_bad
            raise DataError(
                f"{table.where(i)}, column '{column}': '{numbers.first_text}' is not a "
                "number. Correct it, leave the cell empty for a missing value, or mark the "
                "column as categorical.",
                path=table.path, column=column, line=int(table.lines[i]),
            )
        text, encoded = numbers.text, numbers.encoded
        numbers = None
    if numbers is not None:
        kept = np.flatnonzero(~np.isnan(numbers.values))
    else:
        if text is None:
            text = text_values(raw)
        if merges:
            text = apply_merges(text, merges)
        kept = np.flatnonzero(encoded.codes >= 0) if encoded is not None else \
            np.flatnonzero(to_numpy(pc.is_valid(text)))
    if len(kept) < table.num_rows:
        notes.append(f"{table.num_rows - len(kept)} row(s) without a value for the target "
                     f"'{column}' were left out.")
    if not len(kept):
        raise DataError(f"The target column '{column}' of {table.name} has no values.",
                        path=table.path, column=column)
    source = f"{table.name} (column '{column}')"
    if numbers is not None:
        values = numbers.values[kept]
        check_float32(table, column, values, kept)
        task = task or infer_task(values)
        if task == "regression":
            return values.astype(np.float32), task, None, kept, notes
        ids, names, label_notes = encode_labels(values, source)
        return ids, task, names, kept, notes + label_notes
    if task == "regression":
        raise DataError(f"The target '{column}' of {table.name} holds text; it cannot be "
                        "predicted as a number.", path=table.path, column=column)
    if encoded is not None:
        uniques, codes = encoded.values, encoded.codes[kept]
    else:
        if len(kept) < table.num_rows:
            text = text.take(from_numpy(kept))
        unique = pc.dictionary_encode(text).combine_chunks()
        uniques, codes = unique.dictionary.to_pylist(), to_numpy(unique.indices)
    rank, names, label_notes = encode_labels(np.asarray(uniques, dtype=str), source)
    ids = rank[codes].astype(np.int32)
    return ids, "classification", names, kept, notes + label_notes


def apply_merges(text: Any, merges: dict[str, str]) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(text).combine_chunks()
    dictionary = [merges.get(v, v) for v in encoded.dictionary.to_pylist()]
    return pa.chunked_array([pc.take(strings(dictionary), encoded.indices)])


def looks_like_identifier(categories: int, cells: int) -> bool:
    """Whether a text column of ``cells`` cells with ``categories`` different values is
    left out unless the user chooses it: more than ``MAX_AUTO_CATEGORIES`` values, most of
    them different (an identifier or free text; one-hot encoded it is only noise).

    The data panel's column table uses the same rule to show which columns are used.
    """
    return categories > MAX_AUTO_CATEGORIES and categories > cells / 2


def date_parts(column: Any) -> tuple[list[str], np.ndarray, int]:
    """A date/time column as (part names, float64 parts (n, k), unreadable count).

    ``pandas.to_datetime`` with ISO 8601 (times with an offset are converted to UTC).
    """
    import pandas as pd
    import pyarrow as pa

    if pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
        series = pd.Series(column.to_pandas())
        stamps = pd.to_datetime(series, errors="coerce", utc=True)
        bad = 0
    else:
        series = text_values(column).to_pandas()  # arrow-backed text, not one str a cell
        stamps = pd.to_datetime(series, errors="coerce", format="ISO8601", utc=True)
        bad = int((stamps.isna() & series.notna()).sum())
    parts = {
        "year": stamps.dt.year, "month": stamps.dt.month,
        "day_of_week": stamps.dt.day_of_week, "day_of_year": stamps.dt.day_of_year,
    }
    if bool(((stamps.dt.hour.fillna(0) != 0) | (stamps.dt.minute.fillna(0) != 0)).any()):
        parts["hour"] = stamps.dt.hour + stamps.dt.minute / 60
    names = list(parts)
    block = np.stack([p.to_numpy(dtype=np.float64, na_value=np.nan) for p in parts.values()],
                     axis=1)
    return names, block, bad

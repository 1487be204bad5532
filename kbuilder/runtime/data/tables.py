"""Tables (CSV, TSV, Parquet, Excel): read, columns given roles and encoded, each problem
named by file, line and column.

The parsing is pyarrow's (multithreaded, columnar: a numeric column goes straight to a float
array, never through one Python string per cell); Excel goes through pandas + openpyxl.
What kbuilder adds is what a parser cannot know: the header row (or its absence, or a
metadata line above the data as in scikit-learn's CSV files), the encoding, the delimiter
and the decimal comma (each detected, each overridable in the data spec), the line of each
row for messages, and the role of each column (``roles.py``).
"""


from __future__ import annotations

import csv
import dataclasses
import itertools
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kbuilder.graph.settings import DataSettings, SettingsError, TableSpec
from kbuilder.graph.table_layout import (
    MISSING_MARKERS,
    Layout,
    TableLayoutError,
    check_unique,
    looks_like_header,
    read_layout,
)
from kbuilder.graph.text import plural
from kbuilder.runtime.data.arrow_numpy import from_numpy, string_scalar, strings, to_numpy
from kbuilder.runtime.data.dataset import FLOAT32_MAX, DataError
from kbuilder.runtime.data.labels import encode_labels, infer_task
from kbuilder.runtime.data.split import Raw

NUMBER_PATTERN = r"^[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf|infinity|nan)$"
MISSING_CATEGORY = "(missing)"
# A text column with more distinct values than this, most of them unique, is an identifier
# or free text; one-hot encoding it would only add noise.
MAX_AUTO_CATEGORIES = 50
_SCAN_CHUNK = 4 << 20
HEAD_BYTES = 4 << 20  # what a preview parses at most
TYPE_HEAD_BYTES = 1 << 20  # what the column types of a whole read are guessed from
# pyarrow's parallel parsing halves the wall time of a large file from two cores on (for
# about 10 % more CPU time); bench/data_scale.py, 10^6 rows: 0.95 s against 1.74 s.
PARSE_THREADS = (os.cpu_count() or 1) > 1


def _case_variants(word: str) -> list[str]:
    letters = [(c.lower(), c.upper()) if c.isalpha() else (c,) for c in word]
    return ["".join(p) for p in itertools.product(*letters)]


# pyarrow matches null values exactly: every spelling of every marker, as written.
_NULL_VALUES = sorted({v for m in MISSING_MARKERS for v in _case_variants(m)})


# ============================================================================ a table
@dataclass
class Table:
    """A table as read: one pyarrow array per column, and where each row is in the file.

    ``lines`` holds, per row, the line it ends on (CSV, 1-based, the header counted) or its
    row in the sheet (Excel) or its row number (Parquet, 1-based); ``row_label`` says which.
    """

    name: str  # the file's name, as messages show it
    path: str
    format: str
    header: list[str]
    columns: dict[str, Any]  # name -> pyarrow ChunkedArray
    lines: np.ndarray
    row_label: str = "line"
    delimiter: str = ","
    decimal: str = "."
    encoding: str | None = None
    notes: list[str] = field(default_factory=list)
    complete: bool = True  # False: a preview's first rows only
    bytes_read: int = 0
    estimated_rows: int = 0  # a preview's estimate of all the file's rows

    @property
    def num_rows(self) -> int:
        return len(self.lines)

    def where(self, row: int) -> str:
        """``"data.csv line 17"`` for messages."""
        return f"{self.name} {self.row_label} {int(self.lines[row])}"


def read_table(spec: TableSpec, *, max_rows: int | None = None,
               as_text: bool = False, text_columns: tuple[str, ...] = ()) -> Table:
    """Read the table ``spec`` names.

    Args:
        spec: the file and its reading options (``DataSettings.table()``).
        max_rows: read only about this many rows from the start (a preview); the file is
            then read only as far as needed.
        as_text: every column as text, as written (the preview shows cells as they are).
        text_columns: columns to keep as text even if they hold numbers (categorical).

    Raises:
        DataError: the file cannot be read as a table; the message names file and line.
    """
    path = Path(spec.path)
    if not path.exists():
        raise DataError(f"The {_what(spec.format)} {path} does not exist.", path=str(path))
    if path.is_dir():
        raise DataError(f"{path} is a folder, not a {_what(spec.format)}.", path=str(path))
    if spec.format == "parquet":
        return _read_parquet(spec, path, max_rows)
    if spec.format == "excel":
        return _read_excel(spec, path, max_rows)
    return _read_csv(spec, path, max_rows, as_text, text_columns)


def _what(fmt: str) -> str:
    return {"csv": "CSV file", "tsv": "TSV file", "parquet": "Parquet file",
            "excel": "Excel file"}[fmt]


# ---------------------------------------------------------------------------- CSV
def _read_csv(spec: TableSpec, path: Path, max_rows: int | None, as_text: bool,
              text_columns: tuple[str, ...]) -> Table:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    name = path.name
    size = path.stat().st_size
    try:
        layout = read_layout(spec)
    except TableLayoutError as exc:
        raise DataError(str(exc), path=exc.path, line=exc.line, column=exc.column) from None
    types: dict[str, Any] = {}
    if as_text:
        types = {n: pa.string() for n in layout.names}
    else:
        types = {n: pa.string() for n in text_columns if n in layout.names}
    skipped: list[int] = []  # rows of only delimiters/spaces, or the wrong number of values

    def invalid(row: Any) -> str:
        if not row.text.strip(" \t\r" + layout.delimiter + '"'):
            skipped.append(1)
            return "skip"  # a blank line (maybe with delimiters) is not a sample
        return "error"

    read = pacsv.ReadOptions(
        column_names=layout.names, skip_rows=layout.skip, encoding=layout.encoding,
        use_threads=max_rows is None and PARSE_THREADS,
    )
    # Scanned before the parse (the line numbers come from it): without a quote in the
    # file no value holds a newline, and pyarrow parses faster when told so.
    scan = _newline_scan(path, size) if max_rows is None else None
    parse = pacsv.ParseOptions(delimiter=layout.delimiter,
                               newlines_in_values=scan is None or scan[1],
                               invalid_row_handler=invalid)

    def converter(extra: dict[str, Any]) -> Any:
        return pacsv.ConvertOptions(
            # As text, cells stay as written (the preview shows them); text_values reads
            # the missing markers in them.
            null_values=[] if as_text else _NULL_VALUES, strings_can_be_null=not as_text,
            quoted_strings_can_be_null=not as_text,
            column_types={**types, **extra}, decimal_point=layout.decimal,
        )

    convert = converter({})
    def read_all() -> tuple[Any, bool, int, Any]:
        if max_rows is None:
            return _read_whole(path, read, parse, converter, skipped, size, as_text), True, \
                size, None
        return _read_head(path, read, parse, convert, max_rows, size)

    try:
        try:
            data, complete, bytes_read, parsed = read_all()
        except pa.ArrowInvalid as exc:
            if not ("UTF8" in str(exc) and spec.encoding is None
                    and layout.encoding == "utf8"):
                raise
            # Valid UTF-8 at the start only: a Windows export after all (as detected when
            # the first megabyte already shows it).
            layout = dataclasses.replace(layout, encoding="cp1252")
            read.encoding = "cp1252"
            skipped.clear()
            data, complete, bytes_read, parsed = read_all()
    except pa.ArrowInvalid as exc:
        raise _csv_error(name, path, layout, exc, max_rows) from None
    except (UnicodeDecodeError, pa.ArrowException) as exc:
        raise DataError(f"{name} cannot be read as a CSV file: {exc}.", path=str(path)) \
            from None
    if data.num_rows == 0 and not skipped:
        raise DataError(f"{name} has a header row but no data rows.", path=str(path))
    data, dropped = _drop_blank_rows(data)
    if data.num_rows == 0:
        raise DataError(f"{name} has a header row but no data rows.", path=str(path))
    lines = _row_lines(path, layout, data.num_rows, bool(skipped) or len(dropped) > 0, dropped,
                       size if complete else bytes_read, scan if max_rows is None else None)
    columns = {n: data.column(i) for i, n in enumerate(layout.names)}
    estimate = data.num_rows
    if not complete and parsed:  # the rows of the whole file, by the share read
        estimate = max(data.num_rows, round(parsed * size / max(1, bytes_read)))
    return Table(name, str(path), "tsv" if layout.delimiter == "\t" else "csv",
                 layout.names, columns, lines[: data.num_rows], "line", layout.delimiter,
                 layout.decimal, layout.encoding, layout.notes, complete, bytes_read,
                 estimate)


def _read_whole(path: Path, read: Any, parse: Any, converter: Any, skipped: list[int],
                size: int, as_text: bool) -> Any:
    """The whole file, with the columns that its first megabyte shows to be decimal
    numbers read as float64 straight away: pyarrow then skips its type inference for
    them (a quarter of the parse of a table of measurements). Should a later cell not be
    a number after all, the file is read again without the types, as it would have been.

    The table's buffers come from the C library's allocator, not pyarrow's default
    (mimalloc): measured on Linux (2 cores), a fresh process parsing a 145 MB file with
    threads into mimalloc spends 0.7-1.4 s of system time against 0.1-0.25 s with
    malloc, for a parse of 0.6 s of user time either way; the whole ingest of
    bench/data_scale.py at 10^6 rows takes 1.5-1.8 s of CPU instead of 1.8-2.9 s (mimalloc's
    system time varies from run to run; malloc's does not). What malloc keeps after the
    parse is given back by ``_release_free_memory``.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    pool = pa.system_memory_pool()
    floats = {} if as_text else _float_columns(path, read, parse, converter({}), size)
    table = None
    if floats:
        try:
            table = pacsv.read_csv(path, read, parse, converter(floats), memory_pool=pool)
        except pa.ArrowInvalid as exc:
            if "conversion error" not in str(exc).lower():
                raise
            skipped.clear()  # the handler is called again for the same rows
    if table is None:
        table = pacsv.read_csv(path, read, parse, converter({}), memory_pool=pool)
    _release_free_memory()
    return table


def _release_free_memory() -> None:
    """Give the memory the parse freed back to the system (glibc's ``malloc_trim``).

    The parse's threads allocate in their own malloc arenas; what they free there (the
    blocks being parsed, the growing buffers) stays resident and cannot serve the main
    thread's NumPy arrays. Trimmed, the peak RSS of bench/data_scale.py at 10^6 rows is
    553 MB instead of 757 MB (pandas: 578 MB), for 11 ms. Elsewhere than glibc: nothing.
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (musl, say)
        pass


def _float_columns(path: Path, read: Any, parse: Any, convert: Any,
                   size: int) -> dict[str, Any]:
    """The columns pyarrow reads as float64 from the file's first megabyte (none for a
    file of a few megabytes, where guessing would not pay)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    head_size = TYPE_HEAD_BYTES
    if size <= 4 * head_size:
        return {}
    with open(path, "rb") as f:
        data = f.read(head_size)
    data = data[: data.rfind(b"\n") + 1]
    head_read = pacsv.ReadOptions(column_names=read.column_names, skip_rows=read.skip_rows,
                                  encoding=read.encoding, use_threads=False)
    head_parse = pacsv.ParseOptions(delimiter=parse.delimiter,
                                    newlines_in_values=parse.newlines_in_values,
                                    invalid_row_handler=lambda row: "skip")
    try:
        table = pacsv.read_csv(pa.py_buffer(data), head_read, head_parse, convert)
    except pa.ArrowException:  # a quoted value cut in two, say: no guess
        return {}
    return {name: pa.float64() for name, kind in zip(table.column_names, table.schema.types,
                                                     strict=True) if kind == pa.float64()}


def _read_head(path: Path, read: Any, parse: Any, convert: Any, max_rows: int,
               size: int) -> tuple[Any, bool, int, int]:
    """The first ``max_rows`` rows, parsed from the file's first ``HEAD_BYTES`` only
    (cut after its last complete line); also how many rows those bytes held."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    with open(path, "rb") as f:
        data = f.read(HEAD_BYTES)
    complete = len(data) >= size
    if not complete:
        data = data[: data.rfind(b"\n") + 1] or data
    try:
        table = pacsv.read_csv(pa.py_buffer(data), read, parse, convert)
    except pa.ArrowInvalid:
        if complete:
            raise
        # A quoted value with a newline cut in two at the end: half as much is enough.
        data = data[: data.rfind(b"\n", 0, len(data) // 2) + 1]
        table = pacsv.read_csv(pa.py_buffer(data), read, parse, convert)
    parsed = table.num_rows
    return table.slice(0, max_rows), complete and parsed <= max_rows, len(data), parsed

def _delimiter_name(delimiter: str) -> str:
    return {"\t": "tab"}.get(delimiter, delimiter)


def _csv_error(name: str, path: Path, layout: Layout, exc: Exception,
               max_rows: int | None) -> DataError:
    """A pyarrow parse error as a sentence naming the line (found with Python's csv
    module: only on this error path, so its speed does not matter)."""
    text = str(exc)
    if "Expected" in text and "columns" in text:
        found = _first_ragged(path, layout)
        if found is not None:
            line, count = found
            return DataError(
                f"{name} line {line} has {plural(count, 'value')} but the header has "
                f"{plural(len(layout.names), 'column')}. Check for a missing or extra "
                f"'{_delimiter_name(layout.delimiter)}' or an unclosed quote.",
                path=str(path), line=line,
            )
    if "UTF8" in text or "utf-8" in text.lower() or "decode" in text.lower():
        return DataError(
            f"{name} is not in the {layout.encoding} encoding it seemed to be ({text}). "
            "Say which one it is, e.g. encoding=cp1252 or encoding=latin-1.", path=str(path))
    return DataError(f"{name} cannot be read as a CSV file: {text}.", path=str(path))


def _first_ragged(path: Path, layout: Layout) -> tuple[int, int] | None:
    """The first line (where its record starts) with the wrong number of values."""
    codec = "utf-8-sig" if layout.encoding == "utf8" else layout.encoding
    with open(path, encoding=codec, errors="replace", newline="") as f:
        reader = csv.reader(f, delimiter=layout.delimiter)
        start = 1
        try:
            for i, row in enumerate(reader):
                if i >= layout.skip and any(cell.strip() for cell in row) \
                        and len(row) != len(layout.names):
                    return start, len(row)
                start = reader.line_num + 1
        except csv.Error:  # a quote never closed: the value runs to the end of the file
            return start, 1
    return None


def _drop_blank_rows(data: Any) -> tuple[Any, np.ndarray]:
    """Rows whose every cell is empty are not samples (often a line of delimiters at the
    end); returns the rest and the indices of the dropped rows."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if data.num_columns == 0:
        return data, np.zeros(0, np.int64)

    def empty(column: Any) -> Any:
        gaps = pc.is_null(column)
        if pa.types.is_string(column.type):  # "" or only spaces (no strings allocated)
            blank = pc.or_kleene(pc.equal(column, string_scalar("")),
                                 pc.utf8_is_space(column))
            gaps = pc.or_kleene(gaps, blank)  # null | x: a gap
        return gaps

    # The column with the fewest gaps first: usually it has none, and no row is blank.
    fewest = min(data.columns, key=lambda c: (c.null_count, pa.types.is_string(c.type)))
    if not pc.any(empty(fewest)).as_py():
        return data, np.zeros(0, np.int64)
    blank = None
    for column in data.columns:
        gaps = empty(column)
        blank = gaps if blank is None else pc.and_kleene(blank, gaps)
    mask = to_numpy(pc.fill_null(blank, from_numpy(np.zeros(1, bool))[0]))
    if not mask.any():
        return data, np.zeros(0, np.int64)
    return data.filter(from_numpy(~mask)), np.flatnonzero(mask)


def _newline_scan(path: Path, limit: int) -> tuple[int, bool, bytes]:
    """The newlines in the first ``limit`` bytes, whether they hold a quote, their last
    byte. The file is mapped, not read (numpy counts a 150 MB file in 0.07 s where
    ``bytes.count`` over read chunks takes 0.2 s)."""
    import mmap

    if limit <= 0:
        return 0, False, b""
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        limit = min(limit, len(mapped))
        data = np.frombuffer(mapped, dtype=np.uint8, count=limit)
        newlines = 0
        for start in range(0, limit, _SCAN_CHUNK):  # a bounded comparison array
            newlines += int(np.count_nonzero(data[start:start + _SCAN_CHUNK] == 10))
        last = data[limit - 1:limit].tobytes() if limit else b""
        del data  # before the map closes
        quotes = mapped.find(b'"', 0, limit) >= 0
    return newlines, quotes, last


def _row_lines(path: Path, layout: Layout, rows: int, irregular: bool, dropped: np.ndarray,
               limit: int, scan: tuple[int, bool, bytes] | None = None) -> np.ndarray:
    """The line each row ends on.

    Counting newlines is enough when every line is a row (the usual case, checked); a file
    with quoted newlines or blank lines is scanned for the records' ends.
    """
    total = rows + len(dropped)
    data_newlines, quotes, last = scan if scan is not None else _newline_scan(path, limit)
    physical = data_newlines + (1 if last not in (b"\n", b"") else 0)
    if not quotes and not irregular and physical - (layout.first_data_line - 1) == total:
        lines = np.arange(layout.first_data_line, layout.first_data_line + total)
    else:
        lines = _scan_record_lines(path, layout, limit)
    if len(dropped):
        lines = np.delete(lines[:total], dropped)
    return lines


def _scan_record_lines(path: Path, layout: Layout, limit: int) -> np.ndarray:
    """The end line of every non-blank record after the header, with quotes respected
    (a newline inside quotes is part of a value), in chunks of bounded memory."""
    delim = ord(layout.delimiter)
    blank_bytes = np.zeros(256, dtype=bool)
    for c in b" \t\r\n\"":
        blank_bytes[c] = True
    blank_bytes[delim] = True
    ends: list[np.ndarray] = []
    counts: list[np.ndarray] = []
    in_quotes = 0
    newline_base = 0
    carry_nonblank = 0
    carry_fields = 0
    with open(path, "rb") as f:
        read = 0
        while read < limit:
            chunk = f.read(min(_SCAN_CHUNK, limit - read))
            if not chunk:
                break
            read += len(chunk)
            a = np.frombuffer(chunk, dtype=np.uint8)
            quote = a == 34
            parity = (np.cumsum(quote, dtype=np.int64) + in_quotes) & 1
            outside = parity == 0  # at a quote char itself this is after it; fine for \n
            newline = a == 10
            ends_here = np.flatnonzero(newline & outside)
            line_no = np.cumsum(newline, dtype=np.int64) + newline_base  # lines ended
            nonblank = np.cumsum(~blank_bytes[a], dtype=np.int64)
            fields = np.cumsum((a == delim) & outside, dtype=np.int64)
            if len(ends_here):
                nb = np.diff(np.concatenate([[0], nonblank[ends_here]]))
                nb[0] += carry_nonblank
                fl = np.diff(np.concatenate([[0], fields[ends_here]]))
                fl[0] += carry_fields
                ends.append(line_no[ends_here])
                counts.append(np.stack([nb, fl], axis=1))
                tail = slice(ends_here[-1] + 1, None)
                carry_nonblank = int(nonblank[-1] - nonblank[ends_here[-1]])
                carry_fields = int(fields[-1] - fields[ends_here[-1]])
                del tail
            else:
                carry_nonblank += int(nonblank[-1])
                carry_fields += int(fields[-1])
            in_quotes = int(parity[-1])
            newline_base = int(line_no[-1])
    if carry_nonblank:  # a last record without a newline
        ends.append(np.asarray([newline_base + 1]))
        counts.append(np.asarray([[carry_nonblank, carry_fields]]))
    if not ends:
        return np.zeros(0, np.int64)
    end_lines = np.concatenate(ends)
    info = np.concatenate(counts)
    # pyarrow skips empty lines and (through the handler) blank ones with the wrong number
    # of fields; blank ones with the right number become blank rows, dropped later.
    keep = (info[:, 0] > 0) | (info[:, 1] + 1 == len(layout.names))
    nonempty = end_lines >= layout.first_data_line
    return end_lines[keep & nonempty]


# ------------------------------------------------------------------- Parquet, Excel
def _read_parquet(spec: TableSpec, path: Path, max_rows: int | None) -> Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if max_rows is None:
            data = pq.read_table(path)
            complete = True
        else:
            parquet = pq.ParquetFile(path)
            batches = next(parquet.iter_batches(batch_size=max_rows), None)
            data = pa.Table.from_batches([batches]) if batches is not None else \
                parquet.schema_arrow.empty_table()
            complete = data.num_rows >= parquet.metadata.num_rows
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path.name} cannot be read as a Parquet file: {exc}.",
                        path=str(path)) from None
    names = [str(n) for n in data.column_names]
    check_unique(names, path.name, str(path))
    if data.num_rows == 0:
        raise DataError(f"{path.name} has no rows.", path=str(path))
    columns = {n: _flatten(data.column(i)) for i, n in enumerate(names)}
    return Table(path.name, str(path), "parquet", names, columns,
                 np.arange(1, data.num_rows + 1), "row", complete=complete,
                 bytes_read=path.stat().st_size)


def _flatten(column: Any) -> Any:
    """Dictionary-encoded (categorical) columns as plain values."""
    import pyarrow as pa

    if pa.types.is_dictionary(column.type):
        return column.cast(column.type.value_type)
    return column


def _read_excel(spec: TableSpec, path: Path, max_rows: int | None) -> Table:
    import pyarrow as pa

    try:
        import openpyxl  # noqa: F401  (pandas reads .xlsx through it)
    except ImportError:
        raise DataError(
            f"{path.name} is an Excel file; reading it needs the openpyxl package "
            "(pip install openpyxl), or save the sheet as CSV.", path=str(path)) from None
    import pandas as pd

    header = spec.header
    skip = (header - 1) if isinstance(header, int) else 0
    try:
        frame = pd.read_excel(
            path, sheet_name=spec.sheet if spec.sheet is not None else 0,
            header=None, skiprows=skip, nrows=None if max_rows is None else max_rows + 1,
            dtype=object, na_filter=False,
        )
    except ValueError as exc:  # an unknown sheet, among others
        raise DataError(f"{path.name}: {exc}.", path=str(path)) from None
    except Exception as exc:  # openpyxl raises its own zoo of errors for damaged files
        raise DataError(f"{path.name} cannot be read as an Excel file: {exc}.",
                        path=str(path)) from None
    cells = [[_excel_text(v) for v in row] for row in frame.itertuples(index=False)]
    if not cells:
        raise DataError(f"{path.name} has an empty sheet.", path=str(path))
    if header == "none" or (header is None and not looks_like_header(cells, ".")):
        names = [f"column_{i + 1}" for i in range(len(cells[0]))]
        body, first = cells, skip + 1
    else:
        names = [c.strip() or f"column_{i + 1}" for i, c in enumerate(cells[0])]
        body, first = cells[1:], skip + 2
    check_unique(names, path.name, str(path))
    keep = [i for i, row in enumerate(body) if any(c.strip() for c in row)]
    if not keep:
        raise DataError(f"{path.name} has a header row but no data rows.", path=str(path))
    columns = {}
    for j, n in enumerate(names):
        values = [body[i][j].strip() for i in keep]
        columns[n] = pa.chunked_array([pa.array(
            [None if v.lower() in MISSING_MARKERS else v for v in values], pa.string())])
    return Table(path.name, str(path), "excel", names, columns,
                 np.asarray([first + i for i in keep]), "row",
                 complete=max_rows is None or len(frame) <= max_rows)


def _excel_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "isoformat"):
        return value.isoformat(sep=" ") if hasattr(value, "hour") else value.isoformat()
    return str(value)


# ======================================================================= columns
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
    same as codes where the column repeats a few values."""

    values: np.ndarray
    bad: int = 0
    first_bad: int | None = None
    first_text: str | None = None
    text: Any = None
    encoded: Encoded | None = None


def as_numbers(column: Any, decimal: str = ".") -> Numbers | None:
    """The column as numbers, or ``None`` when it holds dates or is not numeric at all."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
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


# ================================================================= the CSV source
def load_csv(location: str, settings: DataSettings, task: str | None) -> Raw:
    """A table source as ``Raw`` features and target (see ``kbuilder.runtime.data``)."""
    from kbuilder.runtime.data.roles import encode_table

    try:
        spec = settings.table()
    except SettingsError as exc:
        raise DataError(str(exc)) from None
    table = read_table(spec, text_columns=settings.categorical_columns())
    return encode_table(table, settings, spec.target, task)


def require_columns(table: Table, columns: list[str]) -> None:
    for column in columns:
        if column not in table.columns:
            raise DataError(
                f"Column '{column}' is not in {table.name}; its columns are: "
                f"{', '.join(table.header)}.",
                path=table.path, column=column,
            )


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

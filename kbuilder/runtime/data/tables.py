"""Tables (CSV, TSV, Parquet, Excel) read into a ``Table``, each problem named by file, line
and column.

The parsing is pyarrow's (multithreaded, columnar: a numeric column goes straight to a float
array, never through one Python string per cell); Excel goes through pandas + openpyxl.
What kbuilder adds is what a parser cannot know: the header row (or its absence, or a
metadata line above the data as in scikit-learn's CSV files), the encoding, the delimiter
and the decimal comma (each detected, each overridable in the data spec), the line of each
row for messages, and the role of each column (``roles.py``).

The CSV parse itself (options, whole-file and head reads, line numbers, parse errors) is in
``csv_read``; what a column's values are (text, numbers, categories, the target's) is in
``columns``. This module keeps the ``Table`` and ``read_table`` (Parquet and Excel here);
``roles.load_csv`` reads a table source as ``Raw`` features and target.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kbuilder.graph.settings import TableSpec
from kbuilder.graph.table_layout import (
    MISSING_MARKERS,
    TableLayoutError,
    check_unique,
    looks_like_header,
    read_layout,
)
from kbuilder.runtime.data.csv_read import (
    NULL_VALUES,
    PARSE_THREADS,
    csv_error,
    drop_blank_rows,
    newline_scan,
    read_head,
    read_whole,
    row_lines,
)
from kbuilder.runtime.data.dataset import DataError


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
    path = existing_table_file(spec)
    if spec.format == "parquet":
        return _read_parquet(spec, path, max_rows)
    if spec.format == "excel":
        return _read_excel(spec, path, max_rows)
    return _read_csv(spec, path, max_rows, as_text, text_columns)


def existing_table_file(spec: TableSpec) -> Path:
    """The file ``spec`` names, which must exist and not be a folder.

    Raises:
        DataError: it is missing or a folder, said in a sentence naming it.
    """
    path = Path(spec.path)
    if not path.exists():
        raise DataError(f"The {_what(spec.format)} {path} does not exist.", path=str(path))
    if path.is_dir():
        raise DataError(f"{path} is a folder, not a {_what(spec.format)}.", path=str(path))
    return path


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
    scan = newline_scan(path, size) if max_rows is None else None
    parse = pacsv.ParseOptions(delimiter=layout.delimiter,
                               newlines_in_values=scan is None or scan[1],
                               invalid_row_handler=invalid)

    def converter(extra: dict[str, Any]) -> Any:
        return pacsv.ConvertOptions(
            # As text, cells stay as written (the preview shows them); text_values reads
            # the missing markers in them.
            null_values=[] if as_text else NULL_VALUES, strings_can_be_null=not as_text,
            quoted_strings_can_be_null=not as_text,
            column_types={**types, **extra}, decimal_point=layout.decimal,
        )

    convert = converter({})
    def read_all() -> tuple[Any, bool, int, Any]:
        if max_rows is None:
            return read_whole(path, read, parse, converter, skipped, size, as_text), True, \
                size, None
        return read_head(path, read, parse, convert, max_rows, size)

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
        raise csv_error(name, path, layout, exc, max_rows) from None
    except (UnicodeDecodeError, pa.ArrowException) as exc:
        raise DataError(f"{name} cannot be read as a CSV file: {exc}.", path=str(path)) \
            from None
    if data.num_rows == 0 and not skipped:
        raise DataError(f"{name} has a header row but no data rows.", path=str(path))
    data, dropped = drop_blank_rows(data)
    if data.num_rows == 0:
        raise DataError(f"{name} has a header row but no data rows.", path=str(path))
    lines = row_lines(path, layout, data.num_rows, bool(skipped) or len(dropped) > 0, dropped,
                       size if complete else bytes_read, scan if max_rows is None else None)
    columns = {n: data.column(i) for i, n in enumerate(layout.names)}
    estimate = data.num_rows
    if not complete and parsed:  # the rows of the whole file, by the share read
        estimate = max(data.num_rows, round(parsed * size / max(1, bytes_read)))
    return Table(name, str(path), "tsv" if layout.delimiter == "\t" else "csv",
                 layout.names, columns, lines[: data.num_rows], "line", layout.delimiter,
                 layout.decimal, layout.encoding, layout.notes, complete, bytes_read,
                 estimate)


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
    columns = {n: flatten_column(data.column(i)) for i, n in enumerate(names)}
    return Table(path.name, str(path), "parquet", names, columns,
                 np.arange(1, data.num_rows + 1), "row", complete=complete,
                 bytes_read=path.stat().st_size)


def flatten_column(column: Any) -> Any:
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



# ================================================================= the CSV source
def require_columns(table: Table, columns: list[str]) -> None:
    for column in columns:
        if column not in table.columns:
            raise DataError(
                f"Column '{column}' is not in {table.name}; its columns are: "
                f"{', '.join(table.header)}.",
                path=table.path, column=column,
            )

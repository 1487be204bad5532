"""CSV and TSV files read with pyarrow: the parse options from the detected layout, the
whole file (with the float columns its first megabyte shows typed up front) or its head
for a preview, blank rows dropped, each row's line number, and parse errors as sentences
naming the line.

``tables.read_table`` puts these together into a ``Table``.
"""

from __future__ import annotations

import csv
import itertools
import os
from pathlib import Path
from typing import Any

import numpy as np

from kbuilder.graph.table_layout import MISSING_MARKERS, Layout
from kbuilder.graph.text import plural
from kbuilder.runtime.data.arrow_numpy import from_numpy, string_scalar, to_numpy
from kbuilder.runtime.data.dataset import DataError

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
NULL_VALUES = sorted({v for m in MISSING_MARKERS for v in _case_variants(m)})


def read_whole(path: Path, read: Any, parse: Any, converter: Any, skipped: list[int],
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


def read_head(path: Path, read: Any, parse: Any, convert: Any, max_rows: int,
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


def csv_error(name: str, path: Path, layout: Layout, exc: Exception,
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


def drop_blank_rows(data: Any) -> tuple[Any, np.ndarray]:
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

    # A row is blank only where every column has a gap, so the columns are combined one
    # by one, stopping as soon as no row is left: typed columns first (their gaps are
    # the null bitmap; text needs a pass over its strings), fewest gaps first. A table of
    # measurements with a few gaps in each column stops after two or three bitmaps
    # (10^6 rows: 1 ms, where a text column's pass took 50 ms).
    order = sorted(data.columns, key=lambda c: (pa.types.is_string(c.type), c.null_count))
    blank = None
    for column in order:
        gaps = empty(column)
        blank = gaps if blank is None else pc.and_kleene(blank, gaps)
        if not pc.any(blank).as_py():
            return data, np.zeros(0, np.int64)
    mask = to_numpy(pc.fill_null(blank, from_numpy(np.zeros(1, bool))[0]))
    if not mask.any():
        return data, np.zeros(0, np.int64)
    return data.filter(from_numpy(~mask)), np.flatnonzero(mask)


def newline_scan(path: Path, limit: int) -> tuple[int, bool, bytes]:
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


def row_lines(path: Path, layout: Layout, rows: int, irregular: bool, dropped: np.ndarray,
               limit: int, scan: tuple[int, bool, bytes] | None = None) -> np.ndarray:
    """The line each row ends on.

    Counting newlines is enough when every line is a row (the usual case, checked); a file
    with quoted newlines or blank lines is scanned for the records' ends.
    """
    total = rows + len(dropped)
    data_newlines, quotes, last = scan if scan is not None else newline_scan(path, limit)
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

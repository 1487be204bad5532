"""A table file as blocks that can be read one at a time, in any order.

A CSV/TSV file is cut into byte ranges of about ``BLOCK_BYTES`` that end at a record's
end (a newline outside quotes: an even number of quote characters before it, which is what
RFC 4180's doubled quotes keep), and each block is parsed by pyarrow with the layout
``graph/table_layout`` detected for the whole file (encoding, delimiter, decimal, header)
and the column types of the first block. A Parquet file's blocks are its row groups.

Reading a block costs only that block's memory, and since any block can be read without
the ones before it, training can visit them in a shuffled order and read a batch's block
again (``table_stream``). Each block comes back as a ``tables.Table`` holding only its
rows, with their lines in the file, so the in-memory path's column checks and encodings
apply to it unchanged.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kbuilder.graph.settings import TableSpec
from kbuilder.graph.table_layout import TableLayoutError, read_layout
from kbuilder.runtime.data.csv_read import NULL_VALUES, PARSE_THREADS, drop_blank_rows
from kbuilder.runtime.data.dataset import DataError
from kbuilder.runtime.data.tables import Table, existing_table_file, flatten_column

BLOCK_BYTES = 8 << 20
_SCAN_BYTES = 1 << 20
# Encodings in which a newline and a quote are the bytes 10 and 34 wherever they occur,
# so that the file can be cut at byte offsets (UTF-16 cannot).
_CUTTABLE = {"utf8", "utf-8", "utf_8", "utf-8-sig", "cp1252", "windows-1252", "latin-1",
             "latin1", "iso-8859-1", "iso8859-1", "ascii", "us-ascii", "cp1250", "cp1251",
             "iso-8859-15"}


@dataclass(frozen=True)
class Block:
    """One part of the file: ``start``..``end`` (CSV: bytes; Parquet: the row group at
    ``start``), and the line (CSV) or row number (Parquet) its first record starts on."""

    index: int
    start: int
    end: int
    first_line: int


class BlockReader:
    """The blocks of one table file and a way to read each (``read``)."""

    path: Path
    name: str
    blocks: list[Block]
    format: str
    decimal: str = "."
    notes: list[str]

    def read(self, block: Block) -> Table:  # pragma: no cover - abstract
        raise NotImplementedError

    def stat(self) -> bytes:
        """What identifies the file's version (for fingerprints)."""
        info = self.path.stat()
        return f"{self.path.resolve()}:{info.st_size}:{info.st_mtime_ns}".encode()


def open_blocks(spec: TableSpec, text_columns: tuple[str, ...] = (),
                block_bytes: int = BLOCK_BYTES) -> BlockReader:
    """The block reader for the file ``spec`` names (CSV, TSV or Parquet).

    Raises:
        DataError: the file is missing, not a table, or cannot be cut into blocks.
    """
    path = existing_table_file(spec)
    if spec.format == "parquet":
        return ParquetBlocks(path)
    if spec.format == "excel":
        raise DataError(
            f"{path.name} is an Excel file, which cannot be streamed: Excel sheets are "
            "read whole. Save it as CSV or Parquet to stream it, or turn stream_table off.",
            path=str(path))
    return CsvBlocks(spec, path, text_columns, block_bytes)


# ============================================================================== CSV
class CsvBlocks(BlockReader):
    def __init__(self, spec: TableSpec, path: Path, text_columns: tuple[str, ...],
                 block_bytes: int):
        import pyarrow as pa

        self.path, self.name = path, path.name
        try:
            self.layout = read_layout(spec)
        except TableLayoutError as exc:
            raise DataError(str(exc), path=exc.path, line=exc.line, column=exc.column) \
                from None
        layout = self.layout
        if layout.encoding.lower() not in _CUTTABLE:
            raise DataError(
                f"{path.name} is in the {layout.encoding} encoding, which kbuilder cannot "
                "read in blocks. Save it as UTF-8 to stream it, or turn stream_table off.",
                path=str(path))
        self.format = "tsv" if layout.delimiter == "\t" else "csv"
        self.decimal, self.notes = layout.decimal, list(layout.notes)
        self.blocks, self.quotes = _cut(path, block_bytes)
        # The first block's column types hold for every block (integers as floats: a
        # later block may hold a decimal). Columns it has no value in are read as text.
        self.types: dict[str, Any] = {n: pa.string() for n in text_columns
                                      if n in layout.names}
        first = self._parse(self.blocks[0], None)
        for i, n in enumerate(layout.names):
            kind = first.schema.types[i]
            if n in self.types:
                continue
            if pa.types.is_integer(kind) or pa.types.is_floating(kind):
                self.types[n] = pa.float64()
            elif pa.types.is_null(kind):
                self.types[n] = pa.string()
            else:
                self.types[n] = kind

    def _parse(self, block: Block, types: dict[str, Any] | None) -> Any:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        layout = self.layout
        with open(self.path, "rb") as f:
            f.seek(block.start)
            data = f.read(block.end - block.start)
        read = pacsv.ReadOptions(column_names=layout.names,
                                 skip_rows=layout.skip if block.index == 0 else 0,
                                 encoding=layout.encoding, use_threads=PARSE_THREADS)

        def invalid(row: Any) -> str:
            if not row.text.strip(" \t\r" + layout.delimiter + '"'):
                return "skip"  # a blank line (maybe with delimiters) is not a sample
            return "error"

        parse = pacsv.ParseOptions(delimiter=layout.delimiter,
                                   newlines_in_values=self.quotes,
                                   invalid_row_handler=invalid)
        convert = pacsv.ConvertOptions(
            null_values=NULL_VALUES, strings_can_be_null=True,
            quoted_strings_can_be_null=True, column_types=types or {},
            decimal_point=layout.decimal)
        self._data = data
        try:
            return pacsv.read_csv(pa.py_buffer(data), read, parse, convert)
        except pa.ArrowInvalid as exc:
            text = str(exc)
            if types and "conversion error" in text.lower():
                raise _Retype(text) from None
            raise DataError(self._error(text, block), path=str(self.path)) from None
        except (UnicodeDecodeError, pa.ArrowException) as exc:
            raise DataError(f"{self.name} cannot be read as a CSV file near line "
                            f"{block.first_line}: {exc}.", path=str(self.path)) from None

    def _error(self, text: str, block: Block) -> str:
        if "UTF8" in text or "decode" in text.lower():
            return (f"{self.name} is not in the {self.layout.encoding} encoding it seemed "
                    f"to be (near line {block.first_line}). Say which one it is, e.g. "
                    "encoding=cp1252.")
        if "Expected" in text and "columns" in text:
            return (f"{self.name} has a line near line {block.first_line} with another "
                    f"number of values than the header's {len(self.layout.names)} columns "
                    f"({text}). Check for a missing or extra "
                    f"'{self.layout.delimiter}' or an unclosed quote.")
        return f"{self.name} cannot be read as a CSV file near line {block.first_line}: {text}."

    def read(self, block: Block) -> Table:
        import pyarrow as pa

        try:
            data = self._parse(block, self.types)
        except _Retype:
            # A cell that is not of the first block's type: read the block as text, so
            # that the column checks name its line (``as_numbers`` finds it).
            data = self._parse(block, {n: pa.string() for n in self.layout.names})
        raw = self._data
        parsed = data.num_rows
        data, dropped = drop_blank_rows(data)
        skip = self.layout.skip if block.index == 0 else 0
        lines = _block_lines(raw, self.layout, block, skip, parsed, self.quotes)
        if len(dropped):
            lines = np.delete(lines, dropped)
        columns = {n: data.column(i) for i, n in enumerate(self.layout.names)}
        return Table(self.name, str(self.path), self.format, list(self.layout.names), columns,
                     lines, "line", self.layout.delimiter, self.layout.decimal,
                     self.layout.encoding)


class _Retype(Exception):
    pass


def _cut(path: Path, block_bytes: int) -> tuple[list[Block], bool]:
    """The file's blocks (each ends after a newline outside quotes) and whether it holds
    a quote at all. Read in chunks of ``_SCAN_BYTES``, not mapped: the pages of a mapped
    file would count in the process's resident memory, all of them by the end."""
    size = path.stat().st_size
    if size == 0:
        raise DataError(f"{path.name} is empty.", path=str(path))
    blocks: list[Block] = []
    start, cut, odd, quotes = 0, block_bytes, 0, False
    newlines = 0  # before the chunk
    line = 1  # where the current block starts
    with open(path, "rb") as f:
        at = 0  # the chunk's offset in the file
        while chunk := f.read(_SCAN_BYTES):
            a = np.frombuffer(chunk, dtype=np.uint8)
            is_quote = a == 34
            ends = np.flatnonzero(a == 10)
            # Record ends: newlines outside quotes, as offsets after them (without a
            # quote in the chunk, every newline outside a quoted value is one).
            if is_quote.any() or odd:
                quotes = True
                parity = (np.cumsum(is_quote, dtype=np.int32) + odd) & 1
                good = ends[parity[ends] == 0]
                odd = int(parity[-1])
            else:
                good = ends
            after = at + good + 1
            k = np.searchsorted(after, cut)
            while k < len(after):
                end = int(after[k])
                lines_before = newlines + int(np.searchsorted(ends, good[k], "right"))
                blocks.append(Block(len(blocks), start, end, line))
                start, line, cut = end, lines_before + 1, end + block_bytes
                k = np.searchsorted(after, cut)
            newlines += len(ends)
            at += len(chunk)
    if start < size:
        blocks.append(Block(len(blocks), start, size, line))
    return blocks, quotes


def _block_lines(raw: bytes, layout: Any, block: Block, skip: int, rows: int,
                 quotes: bool) -> np.ndarray:
    """The line each of the block's ``rows`` parsed records ends on: counted when every
    line is one record (the usual case), else found by Python's csv module."""
    newlines = raw.count(b"\n") + (0 if raw.endswith(b"\n") else 1)
    first = block.first_line + (layout.first_data_line - 1 if skip else 0)
    if not quotes and newlines - (first - block.first_line) == rows:
        return np.arange(first, first + rows)
    codec = "utf-8-sig" if layout.encoding.lower() in ("utf8", "utf-8") else layout.encoding
    reader = csv.reader(io.StringIO(raw.decode(codec, errors="replace"), newline=""),
                        delimiter=layout.delimiter)
    ends = []
    for i, record in enumerate(reader):
        if i < skip or not record:
            continue
        if not any(c.strip(" \t\r\"") for c in record) \
                and len(record) != len(layout.names):
            continue  # skipped by the parser too
        ends.append(block.first_line + reader.line_num - 1)
    return np.asarray(ends[:rows] + [ends[-1] if ends else first] * (rows - len(ends)),
                      dtype=np.int64)


# ========================================================================== Parquet
class ParquetBlocks(BlockReader):
    def __init__(self, path: Path):
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.path, self.name, self.format, self.notes = path, path.name, "parquet", []
        try:
            self.file = pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"{path.name} cannot be read as a Parquet file: {exc}.",
                            path=str(path)) from None
        meta = self.file.metadata
        self.blocks, row = [], 1
        for i in range(meta.num_row_groups):
            count = meta.row_group(i).num_rows
            if count:
                self.blocks.append(Block(len(self.blocks), i, i + 1, row))
            row += count
        if not self.blocks:
            raise DataError(f"{path.name} has no rows.", path=str(path))
        self.names = [str(n) for n in self.file.schema_arrow.names]

    def read(self, block: Block) -> Table:
        data = self.file.read_row_group(block.start)
        columns = {n: flatten_column(data.column(i)) for i, n in enumerate(self.names)}
        lines = np.arange(block.first_line, block.first_line + data.num_rows)
        return Table(self.name, str(self.path), "parquet", list(self.names), columns, lines,
                     "row")

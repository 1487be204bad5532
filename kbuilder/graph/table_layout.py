"""How a CSV file is laid out: its encoding, delimiter, decimal mark and header row.

Detected from the file's first megabyte (each overridable in the data spec) by the loader
(``kbuilder.runtime.data.tables``) and by code generation, which writes the result into
a generated training script as plain settings — so a script reads the file exactly as the
run did. Pure Python (the csv module); no pandas or pyarrow here.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from kbuilder.graph.errors import GraphError
from kbuilder.graph.settings import TableSpec
from kbuilder.graph.text import plural

# Cells that mean "no value" (any case): the loader, generated scripts and the Data tab's
# table head all use these.
MISSING_MARKERS = frozenset({"", "na", "n/a", "nan", "null", "?", "-"})
SAMPLE_BYTES = 1 << 20  # what is read to detect the layout
SNIFF_LINES = 50
BINARY_PROBE = 65536


class TableLayoutError(GraphError):
    """A file that is not a table; ``path``, ``line`` and ``column`` say where."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None,
                 column: str | None = None):
        super().__init__(message)
        self.path, self.line, self.column = path, line, column


def read_layout(spec: TableSpec) -> Layout:
    """The layout of the CSV/TSV file ``spec`` names, from its first megabyte.

    Raises:
        TableLayoutError: the file is binary, empty, or its header is not usable.
    """
    path = Path(spec.path)
    with open(path, "rb") as f:
        head = f.read(SAMPLE_BYTES)
        size = f.seek(0, 2)
    if b"\x00" in head[:BINARY_PROBE]:
        raise TableLayoutError(
            f"{path.name} is not a text file (it contains binary data). A CSV file is text "
            "with one row per sample and a header row naming the columns.", path=str(path),
        )
    return _layout(spec, path, head, size)


@dataclass
class Layout:
    """What the first lines of a CSV file say about how to read it."""

    encoding: str
    delimiter: str
    decimal: str
    names: list[str]
    skip: int  # records before the data (metadata and header lines)
    first_data_line: int  # 1-based
    notes: list[str]


def _layout(spec: TableSpec, path: Path, head: bytes, size: int) -> Layout:
    name = path.name
    encoding = spec.encoding or _detect_encoding(head, size)
    try:
        text = head.decode(encoding, errors="strict" if spec.encoding is None else "replace")
    except UnicodeDecodeError:
        text = head.decode(encoding, errors="replace")
    if len(head) == SAMPLE_BYTES and "\n" in text:
        text = text[: text.rfind("\n") + 1]  # a complete last line
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise TableLayoutError(f"{name} is empty; a CSV file needs a header row and data rows.",
                        path=str(path))
    if spec.format == "tsv" and spec.delimiter is None:
        delimiter = "\t"
    else:
        delimiter = spec.delimiter or _sniff_delimiter(text)
    lines = text.splitlines()
    physical = [i for i, line in enumerate(lines) if line.strip()]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[list[str]] = []
    start = 1  # the line the record being read starts on
    try:
        for row in reader:
            if any(c.strip() for c in row):
                rows.append(row)
                if len(rows) == SNIFF_LINES:
                    break
            start = reader.line_num + 1
    except csv.Error as exc:  # e.g. a quote opened and never closed: one huge value
        raise TableLayoutError(
            f"{name} line {start} cannot be read as CSV ({exc}): look for a quote (\") "
            "that is opened there and not closed.", path=str(path), line=start) from None
    decimal = spec.decimal or _detect_decimal(rows, delimiter)
    notes: list[str] = []
    header = spec.header
    meta = 0
    if header is None:
        meta = _metadata_lines(rows)
        if meta:
            notes.append(f"The first line of {name} ('{lines[physical[0]][:60]}') looks like "
                         "a description, not column names, and was skipped; say "
                         f"header=1 to read it as the header.")
        has_header = looks_like_header(rows[meta:], decimal)
        if not has_header:
            notes.append(f"{name} has no header row (its first line holds values); its "
                         "columns are named column_1, column_2, ...; say header=1 if the "
                         "first line names the columns.")
    else:
        has_header = header != "none"
        meta = header - 1 if isinstance(header, int) else 0
    if meta >= len(rows):
        raise TableLayoutError(f"{name} has only {plural(len(rows), 'line')}; header={header} "
                        "skips them all.", path=str(path))
    width = len(rows[meta]) if rows[meta:] else 0
    if has_header:
        names = [cell.strip() or f"column_{i + 1}" for i, cell in enumerate(rows[meta])]
        check_unique(names, name, str(path))
    else:
        widths = Counter(len(r) for r in rows[meta:])
        width = max(widths, key=lambda w: (widths[w], w))
        names = [f"column_{i + 1}" for i in range(width)]
    skip = meta + (1 if has_header else 0)
    # The line the data starts on: physical lines above it (blank ones too).
    first = physical[skip] + 1 if skip < len(physical) else len(lines) + 1
    arrow_encoding = "utf8" if encoding.replace("-", "").lower() in ("utf8", "utf8sig") \
        else encoding
    return Layout(arrow_encoding, delimiter, decimal, names, _records_before(text, physical,
                   skip), first, notes)


def _records_before(text: str, physical: list[int], skip: int) -> int:
    # pyarrow's skip_rows counts lines of the file, blank ones included.
    return physical[skip - 1] + 1 if skip else 0


def _detect_encoding(head: bytes, size: int) -> str:
    """UTF-8 (with or without BOM) when the sample is valid UTF-8; else Windows' cp1252
    (spreadsheet exports), else latin-1 (which decodes anything)."""
    sample = head
    if len(head) < size:  # a character may be cut at the end of the sample
        cut = head.rfind(b"\n")
        sample = head[: cut + 1] if cut > 0 else head
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        sample.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


def _sniff_delimiter(text: str) -> str:
    sample = "\n".join(text.splitlines()[:SNIFF_LINES])
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","  # e.g. a single column: nothing to sniff


_DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+")
_DECIMAL_POINT = re.compile(r"[+-]?\d*\.\d+(?:[eE][+-]?\d+)?")


def _detect_decimal(rows: list[list[str]], delimiter: str) -> str:
    """``","`` when the numbers are written with a decimal comma (only possible when the
    delimiter is not a comma), else ``"."``."""
    if delimiter == ",":
        return "."
    cells = [c.strip() for r in rows[1:] for c in r]
    commas = sum(bool(_DECIMAL_COMMA.fullmatch(c)) for c in cells)
    points = sum(bool(_DECIMAL_POINT.fullmatch(c)) for c in cells)
    return "," if commas > points else "."


def _is_number(cell: str, decimal: str = ".") -> bool:
    cell = cell.strip()
    if decimal == "," and _DECIMAL_COMMA.fullmatch(cell):
        return True
    try:
        float(cell)
    except ValueError:
        return False
    return bool(cell) and cell.lower() not in ("nan", "inf", "-inf", "infinity")


def _metadata_lines(rows: list[list[str]]) -> int:
    """1 when the first line is a description of the file, not its header or data.

    Two cases: a first line with fewer fields than every following line (a title), and the
    line scikit-learn's CSV files start with: ``n_samples,n_features,class names...``.
    """
    if len(rows) < 3:
        return 0
    first, rest = rows[0], rows[1:]
    widths = {len(r) for r in rest}
    if len(widths) == 1 and len(first) < min(widths):
        return 1
    if (len(first) >= 2 and first[0].strip().isdigit() and first[1].strip().isdigit()
            and int(first[1]) == len(rest[0]) - 1 and int(first[0]) >= len(rest)
            and not any(_is_number(c) for c in first[2:])):
        return 1
    return 0


def looks_like_header(rows: list[list[str]], decimal: str) -> bool:
    """A first line is a header unless it holds numbers where the lines below do too."""
    if len(rows) < 2:
        return True
    first, rest = rows[0], rows[1:]
    for i, cell in enumerate(first):
        if not _is_number(cell, decimal):
            continue
        below = [r[i] for r in rest if i < len(r) and r[i].strip()]
        if below and sum(_is_number(c, decimal) for c in below) > len(below) / 2:
            return False
    return True


def check_unique(header: list[str], name: str, path: str) -> None:
    seen: dict[str, int] = {}
    for i, column in enumerate(header):
        if column in seen:
            raise TableLayoutError(
                f"{name} has two columns named '{column}' (columns {seen[column] + 1} and "
                f"{i + 1}); column names must be unique. Rename one of them.",
                path=path, column=column,
            )
        seen[column] = i



"""Arrow arrays to and from NumPy through their buffers, without pyarrow's pandas bridge.

pyarrow converts between Arrow and Python or NumPy objects (``to_numpy``, ``pa.array``,
``pa.scalar``, a Python value passed to a compute function) through its pandas layer, which
imports pandas on first use: 0.5 s of CPU and some 40 MB, a third of a large CSV's whole
ingest (bench/data_scale.py). The table loader needs only flat numbers, booleans and a few
literal strings, which these functions read and write as buffers. Dates and Excel sheets
still go through pandas, where it does the work.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_NUMPY_TYPES = {  # Arrow type name -> NumPy dtype, for the types the loader reads
    "double": np.float64, "float": np.float32, "int64": np.int64, "int32": np.int32,
    "int16": np.int16, "int8": np.int8, "uint64": np.uint64, "uint32": np.uint32,
    "uint16": np.uint16, "uint8": np.uint8,
}


def to_numpy(array: Any, dtype: Any = None) -> np.ndarray:
    """A numeric or boolean Arrow array (or chunked array) as a NumPy array.

    Missing values become NaN in a float array; other types must have none. The result may
    be a read-only view of the Arrow memory (as ``Array.to_numpy`` gives without nulls).
    With ``dtype`` (a float type, for numbers), the values are converted as they are
    copied: one new array, the same values as ``to_numpy(array).astype(dtype)``.

    Raises:
        TypeError: the type is not a number or a boolean, or an integer array has nulls.
    """
    import pyarrow as pa

    kind = array.type
    if isinstance(array, pa.ChunkedArray):
        if array.num_chunks != 1 and not pa.types.is_boolean(kind):
            return _from_chunks(array.chunks, kind, len(array), array.null_count, dtype)
        array = array.chunk(0) if array.num_chunks == 1 else array.combine_chunks()
    if pa.types.is_boolean(kind):
        if array.null_count:
            raise TypeError("a boolean array with missing values has no NumPy form")
        if not len(array):
            return np.zeros(0, dtype=bool)
        bits = np.frombuffer(array.buffers()[1], dtype=np.uint8)
        flags = np.unpackbits(bits, count=array.offset + len(array), bitorder="little")
        return flags[array.offset:].view(bool)
    own = _NUMPY_TYPES.get(str(kind))
    if own is None:
        raise TypeError(f"no NumPy form for Arrow type {kind}")
    if array.null_count or (dtype is not None and np.dtype(dtype) != np.dtype(own)):
        return _from_chunks([array], kind, len(array), array.null_count, dtype)
    if not len(array):
        return np.zeros(0, dtype=own)
    return np.frombuffer(array.buffers()[1], dtype=own, count=len(array),
                         offset=array.offset * np.dtype(own).itemsize)


def _from_chunks(chunks: list[Any], kind: Any, length: int, nulls: int,
                 into: Any = None) -> np.ndarray:
    """Numeric chunks copied into one new NumPy array (of dtype ``into``, else the chunks'
    own), NaN where a value is missing.

    One pass into NumPy's memory, where ``combine_chunks`` and ``fill_null`` would make two
    copies in pyarrow's pool: a parsed CSV column comes in about one chunk per megabyte,
    with gaps, and in a fresh process the pool's new pages cost more system time than the
    copies (bench/data_scale.py, 20 such columns of 10^6 rows: 0.1-0.4 s of CPU against
    0.1 s)."""
    dtype = _NUMPY_TYPES.get(str(kind))
    if dtype is None:
        raise TypeError(f"no NumPy form for Arrow type {kind}")
    out_dtype = np.dtype(into) if into is not None else np.dtype(dtype)
    if nulls and not np.issubdtype(out_dtype, np.floating):
        raise TypeError("an integer array with missing values has no NumPy form")
    out = np.empty(length, dtype=out_dtype)
    at = 0
    for chunk in chunks:
        n = len(chunk)
        if not n:
            continue
        dest = out[at:at + n]
        at += n
        validity, data = chunk.buffers()[:2]
        if data is None:  # no values at all: every one missing
            dest[...] = np.nan
            continue
        with np.errstate(over="ignore"):  # too large for float32: inf, as astype makes it
            dest[...] = np.frombuffer(data, dtype=dtype, count=n,
                                      offset=chunk.offset * np.dtype(dtype).itemsize)
        if chunk.null_count:  # the values under a gap are undefined: NaN, as fill_null
            bits = np.frombuffer(validity, dtype=np.uint8)
            present = np.unpackbits(bits, count=chunk.offset + n, bitorder="little")
            np.copyto(dest, np.nan, where=~present[chunk.offset:].view(bool))
    return out


def from_numpy(values: np.ndarray) -> Any:
    """A 1-D numeric NumPy array as an Arrow array (no copy when it is contiguous)."""
    import pyarrow as pa

    values = np.ascontiguousarray(values)
    if values.dtype == bool:
        bits = np.packbits(values, bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bits)])
    kind = next(k for k, d in _NUMPY_TYPES.items() if np.dtype(d) == values.dtype)
    arrow = {"double": pa.float64(), "float": pa.float32()}.get(kind) or getattr(pa, kind)()
    return pa.Array.from_buffers(arrow, len(values), [None, pa.py_buffer(values)])


def strings(values: list[str]) -> Any:
    """Python strings as an Arrow string array (e.g. the value set of ``pc.is_in``)."""
    import pyarrow as pa

    encoded = [v.encode("utf-8") for v in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    return pa.Array.from_buffers(pa.string(), len(encoded),
                                 [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))])


def string_scalar(value: str | None) -> Any:
    """An Arrow string scalar (``None``: the missing string)."""
    import pyarrow as pa

    return pa.nulls(1, pa.string())[0] if value is None else strings([value])[0]


__all__ = ["from_numpy", "string_scalar", "strings", "to_numpy"]

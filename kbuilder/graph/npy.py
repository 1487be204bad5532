"""Reading an ``.npy`` header before its data: the one place that knows numpy's format.

NumPy allocates what a header claims before it reads the data, so a header claiming
terabytes must be looked at — and refused — first. Project files (their weights) and the
user's NumPy data both read headers through ``read_header``.
"""

from __future__ import annotations

from typing import IO

import numpy as np


def read_header(stream: IO[bytes]) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype an ``.npy`` stream's header declares; the stream is left at
    the start of the data.

    Raises:
        ValueError: not an ``.npy`` header (or a damaged one).
    """
    fmt = np.lib.format
    try:
        version = fmt.read_magic(stream)
        if version == (1, 0):
            shape, _, dtype = fmt.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, _, dtype = fmt.read_array_header_2_0(stream)
        else:  # 3.0 (UTF-8 field names) has no public reader
            shape, _, dtype = fmt._read_array_header(stream, version)
    except (OSError, EOFError, SyntaxError) as exc:
        raise ValueError(str(exc) or type(exc).__name__) from exc
    return tuple(shape), dtype

"""A guard against a reference-count bug of PySide6 6.12 on Python 3.11.

PySide6 6.12.0 (abi3 wheels) returns ``None`` from C++ ``void`` methods — ``setPen``,
``update``, ``setPos``... — without taking a reference to it. On Python 3.12+ that is
harmless (``None`` is immortal, PEP 683); on 3.11 each call lowers ``None``'s reference
count by one, and after some thousands of calls (a few seconds of panning a large graph)
CPython aborts with "none_dealloc: deallocating None".

``protect_none()`` detects the leak and, only then, does what Python 3.12 does: it gives
``None`` a reference count so large that no number of such calls can bring it to zero.
``None`` is never deallocated anyway, so nothing else changes.
"""

from __future__ import annotations

import ctypes
import sys

# What 3.12 uses for immortal objects is of this order; any value far above the number of
# calls a session can make works.
_IMMORTAL_BOOST = 1 << 40

_protected = False


def _leaks_none() -> bool:
    from PySide6.QtCore import QPointF

    point = QPointF()
    set_x = point.setX
    before = sys.getrefcount(None)
    for _ in range(32):
        set_x(0.0)
    return sys.getrefcount(None) - before <= -32


def protect_none() -> bool:
    """Make ``None`` effectively immortal if this PySide6 leaks references to it.

    Returns:
        Whether the protection was applied (now or before).
    """
    global _protected
    if _protected:
        return True
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False
    if hasattr(sys, "gettotalrefcount"):
        return False  # a debug build lays objects out differently: do not touch it
    if not _leaks_none():
        return False
    refcount = ctypes.c_ssize_t.from_address(id(None))
    before = sys.getrefcount(None)
    refcount.value += _IMMORTAL_BOOST
    if sys.getrefcount(None) - before != _IMMORTAL_BOOST:  # not where we thought: undo
        refcount.value -= _IMMORTAL_BOOST
        return False
    _protected = True
    return True

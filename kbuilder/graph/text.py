"""Small helpers for the sentences kbuilder shows (no Qt, no keras)."""

from __future__ import annotations


def plural(count: int | float, noun: str, many: str | None = None,
           grouped: bool = False) -> str:
    """``count`` and ``noun`` in agreement: ``1 layer``, ``2 layers``, ``0 samples``.

    Args:
        count: how many.
        noun: the singular.
        many: the plural when it is not ``noun + "s"`` (``"classes"``, ``"matrices"``).
        grouped: write the count with thousands separators (``1,024 samples``).
    """
    number = f"{count:,}" if grouped else f"{count}"
    return f"{number} {noun if count == 1 else (many or noun + 's')}"


def quoted(text: str, limit: int = 60) -> str:
    """``text`` quoted for a one-line message: control characters escaped, long text cut."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def found(value: object) -> str:
    """A value read from a file, as a message names it (``'ten'``, ``a list``, ``null``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        text = repr(value)
        return text if len(text) <= 30 else text[:30] + "..."
    if isinstance(value, str):
        return quoted(value, 40)
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"

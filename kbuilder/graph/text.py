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

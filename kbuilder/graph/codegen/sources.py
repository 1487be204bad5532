"""The generated functions of a data section, kept as source text, by name.

The functions are kept as source text (not as functions whose source is looked up at run
time) because a packaged kbuilder carries compiled code only. Each room keeps its own
registry (``data_common``, ``data_tables``, ``data_arrays``, ``rows``); ``data_section``
merges them.
"""

from __future__ import annotations

Source = tuple[str, tuple[str, ...]]  # (the function's source, names of what it calls)


class SourceRegistry(dict[str, Source]):
    """Generated functions by name: their source and the names of the functions they call."""

    def define(self, name: str, source: str, *needs: str) -> None:
        self[name] = (source.strip("\n"), needs)

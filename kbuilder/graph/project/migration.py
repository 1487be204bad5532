"""The project format's name and version, and the upgrades of older files (``MIGRATIONS``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kbuilder import __version__
from kbuilder.graph.errors import ProjectFileError
from kbuilder.graph.project.container import PROJECT_MEMBER
from kbuilder.graph.project.records import MISSING, Reader
from kbuilder.graph.text import found as _found

FORMAT = "kbuilder-project"


FORMAT_VERSION = 1


# Upgrades of the parsed ``project.json`` from format version n to n + 1, applied in order.
# Each takes and returns the whole document; ``format_version`` is updated by the caller.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def migrate(data: dict[str, Any], source: str) -> dict[str, Any]:
    fmt = data.get("format", MISSING)
    if fmt != FORMAT:
        found = "no \"format\"" if fmt is MISSING else f"\"format\" {_found(fmt)}"
        raise ProjectFileError(
            f"{source} is not a kbuilder project ({PROJECT_MEMBER} has {found}, "
            f"expected \"{FORMAT}\")."
        )
    version = data.get("format_version", MISSING)
    if isinstance(version, bool) or not isinstance(version, int):
        Reader(source).expect(version, "format_version", "a whole number")
    if version > FORMAT_VERSION:
        made_by = data.get("kbuilder_version")
        if isinstance(made_by, str) and 0 < len(made_by) <= 40:
            needed = f"kbuilder {made_by} or newer"
        else:
            needed = "a newer kbuilder"
        raise ProjectFileError(
            f"{source} was made by a newer kbuilder (project format {version}; this "
            f"kbuilder {__version__} reads format {FORMAT_VERSION} and older): open it "
            f"with {needed}."
        )
    while version < FORMAT_VERSION:
        migration = MIGRATIONS.get(version)
        if migration is None:
            oldest = min(MIGRATIONS, default=FORMAT_VERSION)
            readable = (
                f"format {FORMAT_VERSION}" if oldest == FORMAT_VERSION
                else f"formats {oldest} to {FORMAT_VERSION}"
            )
            raise ProjectFileError(
                f"{source} uses project format {version}, which this kbuilder cannot "
                f"read (it reads {readable})."
            )
        try:
            data = migration(data)
        except Exception as exc:
            # A migration sees unvalidated content; any failure means a damaged file.
            raise ProjectFileError(
                f"{source} could not be upgraded from project format {version} "
                f"({type(exc).__name__}: {exc})."
            ) from exc
        if not isinstance(data, dict):
            raise ProjectFileError(
                f"{source} could not be upgraded from project format {version}."
            )
        version += 1
        data["format_version"] = version
    return data

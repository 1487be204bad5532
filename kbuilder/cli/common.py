"""What every subcommand shares: exit codes, ``CliError``, checks of the files it is
given, reading a project, plain-text tables.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kbuilder import files

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM, what a shell reports for a terminated command


class CliError(Exception):
    """An error the user can fix; ``main`` prints the message and returns ``exit_code``."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE, prog: str = "kbuilder"):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.prog = prog

def readable_file(path: Path) -> Path:
    if not path.exists():
        raise CliError(f"The file '{path}' does not exist.")
    if path.is_dir():
        raise CliError(f"'{path}' is a folder; expected a file.")
    if not os.access(path, os.R_OK):
        raise CliError(f"The file '{path}' cannot be read (permission denied).")
    return path


def writable_file(path: Path, suffix: str, force: bool) -> Path:
    if path.suffix.lower() != suffix:
        raise CliError(f"The output file must end in '{suffix}'; received '{path}'.")
    if path.is_dir():
        raise CliError(f"'{path}' is a folder; expected a file name ending in '{suffix}'.")
    if path.exists() and not force:
        raise CliError(f"'{path}' already exists; use --force to overwrite it.")
    problem = files.output_folder_problem(path)
    if problem:
        raise CliError(problem)
    return path


def load_project(path: Path) -> Any:
    readable_file(path)
    from kbuilder.graph.errors import ProjectFileError
    from kbuilder.graph.project import load_project

    try:
        project = load_project(path)
    except ProjectFileError as exc:
        raise CliError(str(exc)) from exc
    _note_orphans(project)
    return project


def _note_orphans(project: Any) -> None:
    """Say so when the project's runs folder holds runs its history lost (a ``train``
    killed before it could record its run)."""
    from kbuilder.graph.runs import orphaned_run_folders

    orphans = orphaned_run_folders(project.runs, project.path)
    if orphans:
        names = ", ".join(f.name for f in orphans[:3]) + (" ..." if len(orphans) > 3 else "")
        print(f"kbuilder: note: {project.path} has {len(orphans)} run folder"
              f"{'s' if len(orphans) != 1 else ''} that its history does not list ({names}"
              f"), left by a training that ended before recording its run; "
              f"'kbuilder runs {project.path} --adopt' adds them back.", file=sys.stderr)


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    # The last column (free text) is not padded, so long messages do not widen the table.
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header) - 1)]

    def line(cells: Sequence[str]) -> str:
        padded = [f"{c:<{w}}" for c, w in zip(cells, widths, strict=False)]
        return "  ".join([*padded, str(cells[-1])]).rstrip()

    rule = "  ".join("-" * w for w in widths) + "  " + "-" * len(header[-1])
    return [line(header), rule, *(line(r) for r in rows)]


def json_safe(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    return repr(value)

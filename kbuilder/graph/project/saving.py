"""Saving under the project's lock, and keeping in step with other writers of the file:
what changed on disk, merging their runs, ``add_runs``."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from kbuilder.files import (
    check_writable,
    project_lock,
    remove_stale_temporaries,
)
from kbuilder.graph import runs as run_files
from kbuilder.graph.errors import ProjectFileError
from kbuilder.graph.project.document import DiskState, Project, file_stamp
from kbuilder.graph.project.reading import load_project
from kbuilder.graph.project.writing import (
    model_digest,
    project_to_json,
    weights_to_save,
    write_atomically,
)
from kbuilder.graph.runs import RunRecord


@dataclass(frozen=True)
class DiskChanges:
    """How a project file differs from what this process last read or wrote.

    Attributes:
        new_runs: runs another writer recorded there (oldest first).
        graph_changed: the model (graph or weights) there is not the one last seen.
        disk: the project as the file holds it now.
        finished_runs: the runs' own records of runs this project holds as adopted
            placeholders (adopted while they were still training elsewhere).
    """

    new_runs: tuple[RunRecord, ...]
    graph_changed: bool
    disk: Project
    finished_runs: tuple[RunRecord, ...] = ()


def _remember_disk(project: Project, path: Path) -> None:
    project.disk = DiskState(file_stamp(path), frozenset(r.run_id for r in project.runs),
                             model_digest(project))


def _run_ids(runs: Iterable[RunRecord]) -> list[str]:
    return [r.run_id for r in runs]


def changed_on_disk(project: Project) -> bool:
    """Whether the project's file changed since this process last read or wrote it."""
    if project.path is None:
        return False
    stamp = file_stamp(project.path)
    return stamp is not None and (project.disk is None or stamp != project.disk.stamp)


def disk_changes(project: Project) -> DiskChanges | None:
    """What another writer changed in the project's file, or ``None`` when nothing did.

    Raises:
        ProjectFileError: the file cannot be read now.
    """
    if not changed_on_disk(project):
        return None
    assert project.path is not None
    disk = load_project(project.path)
    seen = set(project.disk.run_ids) if project.disk else set()
    seen.update(_run_ids(project.runs))
    new_runs = tuple(r for r in disk.runs if r.run_id not in seen)
    placeholders = {r.run_id for r in project.runs if r.adopted}
    finished = tuple(r for r in disk.runs if r.run_id in placeholders and not r.adopted)
    # Never read (a recovered autosave names its original file): nothing to compare with.
    graph_changed = (project.disk is not None and disk.disk is not None
                     and disk.disk.graph_digest != project.disk.graph_digest)
    return DiskChanges(new_runs, graph_changed, disk, finished)


def merge_runs(project: Project, changes: DiskChanges) -> list[RunRecord]:
    """Add the runs another writer recorded (``changes.new_runs``) to ``project``; the
    project stays as clean or modified as it was. Returns the runs added.

    When the model on disk is still the one last seen, the project is in step with the
    file again; otherwise ``changed_on_disk`` stays true, so a save can ask first.
    """
    added = [copy.deepcopy(r) for r in changes.new_runs]
    project.runs.extend(added)
    finished = {r.run_id: r for r in changes.finished_runs}
    for i, record in enumerate(project.runs):
        if record.adopted and record.run_id in finished:
            # Replaced in the list itself: views read the records from ``project.runs``.
            project.runs[i] = copy.deepcopy(finished[record.run_id])
    old = project.disk or DiskState(None)
    stamp = old.stamp if changes.graph_changed else _stamp_of(changes.disk)
    project.disk = DiskState(stamp, old.run_ids | set(_run_ids(changes.disk.runs)),
                             old.graph_digest)
    return added


def _stamp_of(project: Project) -> tuple[int, int, int] | None:
    return project.disk.stamp if project.disk is not None else None


def save_project(project: Project, path: str | os.PathLike[str]) -> None:
    """Write ``project`` to ``path`` atomically, then mark it clean and set its path.

    Under the project's lock: runs another process recorded in the file meanwhile are
    merged in first (when ``path`` is the project's own file), the runs' folders are
    brought beside ``path`` (``kbuilder.graph.runs.relocate_runs``) and temporary files
    of interrupted saves are removed.

    Args:
        project: the project to save.
        path: the ``.kbproj`` file to write (replaced if it exists).

    Raises:
        ProjectFileError: the project holds a value a project file cannot store, or
            ``path`` is read-only; nothing was written.
        OSError: the file could not be written; a previous file at ``path`` is intact.
    """
    path = Path(path)
    _check_writable(path)
    _check_storable(project)
    same_file = project.path is not None and _same_file(project.path, path)
    with project_lock(path):
        remove_stale_temporaries(path)
        if same_file:
            changes = _changes_or_none(project)
            if changes is not None and (changes.new_runs or changes.finished_runs):
                merge_runs(project, changes)
        relocation = run_files.relocate_runs(project.runs, project.path, path)
        try:
            write_atomically(project, path)
        except BaseException:
            relocation.undo()  # the runs stay where the project, still unsaved, finds them
            raise
        project.path = path
        _remember_disk(project, path)
    project.mark_clean()


def add_runs(path: str | os.PathLike[str], records: Sequence[RunRecord]) -> Project:
    """Record ``records`` in the project file ``path`` without losing anyone's changes.

    The file is read again under the project's lock and only the runs are added (those
    whose ``run_id`` it does not hold yet), so what other processes saved meanwhile is
    kept. Paths in the records (absolute, as ``run_record`` makes them, or relative to
    the project) are stored relative to the project. A run's own record replaces one
    adopted from its folder while it was still running (``kbuilder.graph.runs.adopt``).

    Returns:
        The project as written.

    Raises:
        ProjectFileError: the file cannot be read, is read-only, or a record cannot be
            stored; nothing was written.
        OSError: the file could not be written; the previous file is intact.
    """
    path = Path(path)
    _check_writable(path)
    with project_lock(path):
        remove_stale_temporaries(path)
        project = load_project(path)
        index = {run_id: i for i, run_id in enumerate(_run_ids(project.runs))}
        for record in records:
            stored = run_files.with_stored_paths(record, path, path)
            i = index.get(record.run_id)
            if i is None:
                project.runs.append(stored)
            elif project.runs[i].adopted and not record.adopted:
                project.runs[i] = stored  # the run's own record replaces a placeholder
        write_atomically(project, path)
        _remember_disk(project, path)
    return project


def _changes_or_none(project: Project) -> DiskChanges | None:
    try:
        return disk_changes(project)
    except ProjectFileError:
        return None  # not a readable project any more: ours replaces it


def _same_file(a: Path, b: Path) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def _check_writable(path: Path) -> None:
    problem = check_writable(path)
    if problem:
        fix = ("make it writable (chmod u+w) or save under another name" if "read-only"
               in problem else "save it somewhere else")
        raise ProjectFileError(f"Cannot save the project: {problem}; {fix}.")


def _check_storable(project: Project) -> None:
    """Fail on content a file cannot hold before anything (run folders) is moved."""
    project_to_json(project)
    weights_to_save(project)

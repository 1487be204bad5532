"""A project's training runs on disk: where their files live and how records point at them.

A run record (``kbuilder.runtime.runner.run_record``, kept in ``project.runs``) names its
folder (``run_dir``) and its files (``artifacts``: ``model``, ``checkpoint``,
``tensorboard``). The files of a saved project's runs live beside it, in
``<stem>.runs/<run_id>/``, and the record stores their paths *relative to the project
file's folder* (``cnn.runs/20250101-120000-abc123/model.keras``), so the project can be
moved or used from any working directory together with its runs folder. Runs trained
before the project was first saved live in a temporary folder
(``<tmp>/kbuilder-runs/<run_id>``) under absolute paths until the first save moves them
beside the project (``relocate_runs``).

Older projects stored absolute paths, or paths relative to the working directory of the
``kbuilder train`` that made them; ``resolve`` still finds those: absolute paths as they
are, relative ones against the project's folder first, then against the working directory.

Each run folder also holds ``run.json``, the run's record as far as it is known (written
when the run starts, completed when it ends). A run folder that no record of the project
names — its ``kbuilder train`` was killed before it could record the run — is an orphan:
``orphaned_run_folders`` finds them and ``adopt`` turns them back into records.

``RunRecord`` is the typed form of a record: ``RunRecord.from_dict`` checks the type of
each field of a record read from a file (the project checks every run when it is read, so
a run whose ``artifacts`` is a string never reaches the code that uses it).

This module is the one home of "the latest trained run" (``latest_trained``; the runs
with a trained model on disk, newest first: ``trained_runs``) and of
"a run's file, resolved against the project" (``artifact_path``). Pure Python, no Qt.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from kbuilder.graph.errors import ProjectFileError
from kbuilder.graph.text import found as _found

RUNS_SUFFIX = ".runs"
RUN_MARKER = "run.json"  # the record a run folder carries, so it can be adopted
MODEL_FILE = "model.keras"


# ------------------------------------------------------------------------ the record
@dataclass(frozen=True)
class RunRecord:
    """One training run as ``project.runs`` keeps it (``runtime.runner.run_record`` makes
    them; ``adopt`` makes them for orphaned run folders; evaluations add ``evaluations``).

    ``None`` means "not recorded": a failed run has no ``seconds``, a run that is still
    training elsewhere has no ``status``. Paths (``run_dir``, the ``artifacts`` values) are
    stored relative to the project's folder, or absolute. ``extra`` keeps the keys of a
    record written by a newer kbuilder, so that they survive a save.

    Records are frozen: code that changes one (a save moving its folder, a merge, an
    evaluation) puts a new record in its place in ``project.runs``
    (``dataclasses.replace``, ``with_paths``, ``with_evaluation``), so a view finds its run
    again by ``run_id`` rather than holding on to the object.
    """

    run_id: str
    created: str | None = None
    backend: str | None = None
    device: str | None = None
    versions: dict[str, Any] | None = None
    data: dict[str, Any] | None = None  # the run's DataSettings.to_dict()
    training: dict[str, Any] | None = None  # the run's TrainingSettings.to_dict()
    seed: int | None = None
    data_fingerprint: str | None = None
    history: dict[str, list[float | None]] | None = None  # metric -> value per epoch
    run_dir: str | None = None
    status: str | None = None  # completed, stopped, nan, failed, interrupted
    message: str | None = None
    test_metrics: dict[str, float | None] | None = None
    results: dict[str, Any] | None = None
    artifacts: dict[str, str | None] | None = None  # "model", "checkpoint", "tensorboard"
    seconds: float | None = None
    diagnosis: str | None = None
    baselines: dict[str, Any] | None = None
    traceback: str | None = None
    adopted: bool | None = None  # found in the runs folder; the run's own record replaces it
    evaluations: list[dict[str, Any]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # The keys of the object it was read from, in order, so that ``to_dict`` writes back
    # what it read (a null it held stays a null, an absent key stays absent).
    keys: tuple[str, ...] = field(default=(), compare=False, repr=False)

    @property
    def model_file(self) -> str | None:
        """The stored path of the trained model, or ``None`` when the run saved none."""
        return (self.artifacts or {}).get("model") or None

    @classmethod
    def from_dict(cls, data: Any, where: str = "run") -> RunRecord:
        """The record in ``data`` (a record's JSON object), its fields' types checked.

        Raises:
            ProjectFileError: ``data`` is not an object, or a field has the wrong type;
                the message names the field (``runs[3].artifacts must be ...``).
        """
        if not isinstance(data, Mapping):
            raise ProjectFileError(f"{where} must be an object; found {_found(data)}.")
        values: dict[str, Any] = {}
        for name, (check, expected) in _FIELD_CHECKS.items():
            value = data.get(name)
            if value is not None and not check(value):
                raise ProjectFileError(
                    f"{where}.{name} must be {expected}; found {_found(value)}.", param=name)
            values[name] = value
        if values["run_id"] is None or values["run_id"] == "":
            raise ProjectFileError(f"{where}.run_id is missing; every run has an id.",
                                   param="run_id")
        extra = {k: v for k, v in data.items() if k not in _FIELD_CHECKS}
        return cls(**values, extra=extra, keys=tuple(data))

    def with_evaluation(self, evaluation: dict[str, Any]) -> RunRecord:
        """This record with ``evaluation`` appended to its ``evaluations``."""
        return replace(self, evaluations=[*(self.evaluations or []), evaluation])

    def with_paths(self, place: Callable[[str], str]) -> RunRecord:
        """This record with ``run_dir`` and each ``artifacts`` path rewritten by ``place``."""
        artifacts = self.artifacts
        if artifacts:
            artifacts = {k: place(v) if v else v for k, v in artifacts.items()}
        return replace(self, run_dir=place(self.run_dir) if self.run_dir else self.run_dir,
                       artifacts=artifacts)

    def to_dict(self) -> dict[str, Any]:
        """The record's JSON object: the keys it was read with, in their order (then
        fields set since); for a record made in code, as ``run_record`` writes it."""
        values = {f.name: getattr(self, f.name) for f in fields(self)
                  if f.name in _FIELD_CHECKS}
        written = self.keys or _ALWAYS_WRITTEN
        out = {k: self.extra[k] if k in self.extra else values[k]
               for k in written if k in self.extra or k in values}
        out.update((k, v) for k, v in values.items() if v is not None and k not in out)
        out.update((k, v) for k, v in self.extra.items() if k not in out)
        return out


def _is_text(value: Any) -> bool:
    return isinstance(value, str)


def _is_object(value: Any) -> bool:
    return isinstance(value, dict)


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_paths(value: Any) -> bool:
    return isinstance(value, dict) and all(v is None or isinstance(v, str)
                                           for v in value.values())


def _is_history(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(v, list) and all(x is None or _is_number(x) for x in v)
        for v in value.values())


def _is_objects(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, dict) for v in value)


_TEXT = (_is_text, "a string")
_OBJECT = (_is_object, "an object")
# Each field's check and, for the message, what it expects; None is always allowed.
_FIELD_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "run_id": _TEXT, "created": _TEXT, "backend": _TEXT, "device": _TEXT,
    "versions": _OBJECT, "data": _OBJECT, "training": _OBJECT,
    "seed": (_is_whole, "a whole number"), "data_fingerprint": _TEXT,
    "history": (_is_history, "an object of lists of numbers (metric -> value per epoch)"),
    "run_dir": _TEXT, "status": _TEXT, "message": _TEXT,
    "test_metrics": _OBJECT, "results": _OBJECT,
    "artifacts": (_is_paths, 'an object of file paths, e.g. {"model": "run/model.keras"}'),
    "seconds": (_is_number, "a number"), "diagnosis": _TEXT, "baselines": _OBJECT,
    "traceback": _TEXT, "adopted": (lambda v: isinstance(v, bool), "true or false"),
    "evaluations": (_is_objects, "a list of objects"),
}
# Keys ``run_record`` writes even when their value is null.
_ALWAYS_WRITTEN = ("run_id", "created", "backend", "device", "versions", "data", "training",
                   "seed", "data_fingerprint", "history", "run_dir")


def runs_folder(project_path: str | os.PathLike[str] | None) -> Path:
    """Where a project's runs keep their files: ``model.runs/`` beside ``model.kbproj``
    (absolute); a temporary folder for a project not saved yet."""
    if project_path is None:
        return Path(tempfile.gettempdir()) / "kbuilder-runs"
    path = Path(os.path.abspath(project_path))
    return path.with_name(path.stem + RUNS_SUFFIX)


def latest_trained(runs: Sequence[RunRecord]) -> RunRecord | None:
    """The most recent run that saved a trained model (whether or not its file still
    exists: a caller says when it is missing), or ``None``."""
    for record in reversed(runs):
        if record.model_file:
            return record
    return None


def trained_runs(runs: Sequence[RunRecord], project_path: str | os.PathLike[str] | None
                 ) -> list[tuple[int, RunRecord]]:
    """The runs whose trained model is on disk, newest first, with their index in ``runs``
    (what a "which model?" choice offers; the first is the latest)."""
    return [(i, record) for i, record in reversed(list(enumerate(runs)))
            if (path := artifact_path(record, "model", project_path)) and path.is_file()]


def resolve(value: str, project_path: str | os.PathLike[str] | None) -> Path:
    """A stored path of a run, as a path that can be opened.

    Absolute paths are used as they are; relative ones are taken against the project's
    folder — or, for projects written by older kbuilders, against the working directory
    when only that finds the file.
    """
    path = Path(value)
    if path.is_absolute() or project_path is None:
        return path
    beside = Path(os.path.abspath(project_path)).parent / path
    if not beside.exists() and path.exists():
        return path.absolute()
    return beside


def artifact_path(record: RunRecord | None, key: str = "model",
                  project_path: str | os.PathLike[str] | None = None) -> Path | None:
    """The file ``artifacts[key]`` of a run, resolved against the project, or ``None`` when
    the run has none (it may be missing on disk: see ``missing_files_message``)."""
    value = ((record.artifacts if record else None) or {}).get(key)
    return resolve(value, project_path) if value else None


def run_folder(record: RunRecord, project_path: str | os.PathLike[str] | None
               ) -> Path | None:
    return resolve(record.run_dir, project_path) if record.run_dir else None


def missing_files_message(record: RunRecord,
                          project_path: str | os.PathLike[str] | None) -> str | None:
    """The sentence saying the trained model of ``record`` is gone, or ``None`` when it is
    there (or the run never had one)."""
    model = artifact_path(record, "model", project_path)
    if model is None or model.is_file():
        return None
    folder = run_folder(record, project_path)
    where = folder if folder is not None and not folder.exists() else model
    return (f"the files of run {record.run_id} are missing: {where} (its "
            "history is kept; train again to get a model)")


def stored_path(path: str | os.PathLike[str],
                project_path: str | os.PathLike[str] | None) -> str:
    """How a run's path is written in the project: relative to the project's folder when
    it lies inside it (POSIX separators), else absolute."""
    absolute = Path(os.path.abspath(path))
    if project_path is not None:
        folder = Path(os.path.abspath(project_path)).parent
        try:
            return absolute.relative_to(folder).as_posix()
        except ValueError:
            pass
    return str(absolute)


def with_stored_paths(record: RunRecord, project_path: str | os.PathLike[str] | None,
                      base: str | os.PathLike[str] | None = None) -> RunRecord:
    """``record`` with its paths stored for ``project_path``; relative paths in ``record``
    are first resolved against ``base`` (the project they were stored for)."""
    return record.with_paths(lambda value: stored_path(resolve(value, base), project_path))


def write_marker(record: RunRecord, project_path: str | os.PathLike[str] | None) -> None:
    """Keep ``record`` in its run folder as ``run.json`` (best effort: the run is recorded
    in the project anyway; the marker only lets an orphaned folder be adopted)."""
    folder = run_folder(record, project_path)
    if folder is None or not folder.is_dir():
        return
    from kbuilder.files import atomic_write

    try:
        atomic_write(folder / RUN_MARKER, json.dumps(
            with_stored_paths(record, folder / RUN_MARKER, project_path).to_dict(), indent=1))
    except (OSError, TypeError, ValueError):
        pass


# -------------------------------------------------------------------------- moving
@dataclass
class Relocation:
    """What ``relocate_runs`` did, so that a save that fails afterwards can undo it.

    Attributes:
        new_path: the project file the runs were brought beside.
        moved: ``(from, to)`` folders moved out of the temporary runs folder.
        copied: folders copied from another project's runs folder.
        runs: the project's runs, whose records were replaced in this list.
        records: ``(index in runs, the record before, its folder now)`` of each record
            rewritten.
    """

    new_path: Path
    runs: list[RunRecord] = field(default_factory=list)
    moved: list[tuple[Path, Path]] = field(default_factory=list)
    copied: list[Path] = field(default_factory=list)
    records: list[tuple[int, RunRecord, Path]] = field(default_factory=list)

    def undo(self) -> None:
        """Put folders and records back as they were. A folder that cannot be moved back
        stays where it is, and its record names it by its absolute path."""
        stuck = set()
        for source, destination in reversed(self.moved):
            try:
                shutil.move(str(destination), str(source))
            except OSError:
                stuck.add(destination)
        for folder in self.copied:
            shutil.rmtree(folder, ignore_errors=True)
        for i, before, folder in self.records:
            self.runs[i] = (with_stored_paths(self.runs[i], None, self.new_path)
                            if folder in stuck else before)


def relocate_runs(runs: list[RunRecord], old_path: str | os.PathLike[str] | None,
                  new_path: str | os.PathLike[str]) -> Relocation:
    """Bring the run folders of a project being saved as ``new_path`` beside it, and store
    their paths for it (each record rewritten is replaced in ``runs``, in place).

    Folders in the temporary runs folder (runs of a project never saved) are *moved*:
    nothing else refers to them. Folders of another saved project (Save As) are *copied*:
    the old project still names them. Folders already beside ``new_path``, and folders
    that no longer exist (the record is kept, its paths rewritten), stay as they are.

    Raises:
        OSError: a folder could not be moved or copied; what was done is undone.
    """
    target = runs_folder(new_path)
    temporary = runs_folder(None)
    done = Relocation(Path(os.path.abspath(new_path)), runs)
    try:
        for i, record in enumerate(runs):
            folder = run_folder(record, old_path)
            if folder is None:
                continue
            folder = Path(os.path.abspath(folder))
            destination = target / folder.name
            if folder.parent == target or not folder.is_dir():
                destination = folder
            elif destination.exists():
                pass  # copied there by an earlier save: keep what is there
            elif folder.parent == temporary:
                target.mkdir(parents=True, exist_ok=True)
                shutil.move(str(folder), str(destination))
                done.moved.append((folder, destination))
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copytree(folder, destination, symlinks=True)
                done.copied.append(destination)
            moved = _moved_record(record, old_path, folder, destination, new_path)
            if moved != record:
                done.records.append((i, record, destination))
                runs[i] = moved
    except BaseException:
        done.undo()
        raise
    return done


def _moved_record(record: RunRecord, old_path: Any, folder: Path, destination: Path,
                  new_path: Any) -> RunRecord:
    """``record`` with its paths inside ``folder`` moved to ``destination``, stored for
    ``new_path``."""
    def place(value: str) -> str:
        path = Path(os.path.abspath(resolve(value, old_path)))
        try:
            path = destination / path.relative_to(folder)
        except ValueError:
            pass
        return stored_path(path, new_path)

    return record.with_paths(place)


# ------------------------------------------------------------------------- orphans
def orphaned_run_folders(runs: Iterable[RunRecord],
                         project_path: str | os.PathLike[str]) -> list[Path]:
    """Folders in the project's runs folder that carry a run (``run.json``) no record of
    ``runs`` names and no live process is training into, oldest first."""
    folder = runs_folder(project_path)
    if not folder.is_dir():
        return []
    known = {r.run_id for r in runs}
    for record in runs:
        path = run_folder(record, project_path)
        if path is not None:
            known.add(path.name)
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return []
    from kbuilder.files import is_claimed

    return [entry for entry in entries
            if entry.name not in known and (entry / RUN_MARKER).is_file()
            and not is_claimed(entry)]  # not a run still training


def adopt(folder: Path) -> RunRecord | None:
    """The record of the orphaned run in ``folder`` (absolute paths, as ``run_record``
    makes them), or ``None`` when its ``run.json`` cannot be read or is not a run record.

    A run whose process was killed before it ended is ``interrupted``; its trained model
    is kept when the worker had saved it, else the last checkpoint, if any.
    """
    try:
        found = RunRecord.from_dict(
            json.loads((folder / RUN_MARKER).read_text(encoding="utf-8")), str(folder))
    except (OSError, ValueError, ProjectFileError):
        return None
    # The run's own record, should it still come, replaces this one (``adopted``).
    record = replace(with_stored_paths(found, None, folder / RUN_MARKER),
                     run_dir=stored_path(folder, None), adopted=True)
    if not record.status:
        artifacts = {}
        for key, name in (("model", MODEL_FILE), ("checkpoint", "checkpoint.keras"),
                          ("tensorboard", "logs")):
            if (folder / name).exists():
                artifacts[key] = stored_path(folder / name, None)
        if "model" not in artifacts and "checkpoint" in artifacts:
            artifacts["model"] = artifacts["checkpoint"]
        record = replace(
            record, status="interrupted", artifacts=artifacts, test_metrics={}, results={},
            message="The training process ended before it could record this run; its "
            "files were found in the project's runs folder.")
    return record

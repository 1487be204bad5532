"""The ``.kbproj`` project file (format version 1) and the in-memory ``Project``.

A project file is a ZIP archive (deflated) with two members:

``project.json``
    ``{"format": "kbuilder-project", "format_version": 1, "kbuilder_version": ...,
    "saved_at": ..., "graph": Graph.to_dict(), "view": {"positions": {node_id: [x, y]},
    "zoom": ..., "center": [x, y], "collapsed": [block ids]}, "data": {...},
    "training": {...}, "runs": [...]}``. Node positions are view data: they live on the
    graph's nodes in memory but in the ``view`` section of the file.
``weights.npz`` (only when there are weights)
    NumPy arrays under the keys ``"<node id>/<index>"``, a layer's weights in Keras order.
    Read with ``allow_pickle=False``: a project file never carries code.

Reading follows orange-canvas-core's ``readwrite``: the bytes are parsed into typed records,
the format version is checked (and older files migrated through ``MIGRATIONS``), everything
is validated — the settings by ``DataSettings`` / ``TrainingSettings``, each run by
``RunRecord.from_dict`` — and only then are live objects built. A file that fails any step raises
``ProjectFileError`` with one sentence naming the file and the place of the problem, and
nothing is loaded. Writing is atomic (``kbuilder.files.atomic_write``).

Several processes may write one project (the window, ``kbuilder train``, another CLI).
Every save holds the project's advisory lock (``kbuilder.files.project_lock``) and, when
the file changed since this process last read or wrote it, first merges the runs another
writer recorded there (runs are records keyed by ``run_id``; one that this process has
seen and removed stays removed). ``add_runs`` records runs by re-reading the file under
the lock, so a ``kbuilder train`` never overwrites what others saved meanwhile. Saves
refuse a read-only file, move the runs of a project saved for the first time beside it
(``kbuilder.graph.runs.relocate_runs``) and remove temporary files that interrupted saves
of the same file left behind.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import math
import os
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, NoReturn

import numpy as np

from kbuilder import __version__
from kbuilder.files import (
    atomic_write,
    check_writable,
    project_lock,
    remove_stale_temporaries,
)
from kbuilder.graph import runs as run_files
from kbuilder.graph.commands import History, validate_input_param, validate_name
from kbuilder.graph.errors import CycleError, ProjectFileError, UnknownLayerError
from kbuilder.graph.layout import FLOWS
from kbuilder.graph.model import GRAPH_STYLES, NODE_KINDS, Graph
from kbuilder.graph.npy import read_header
from kbuilder.graph.runs import RunRecord
from kbuilder.graph.settings import DataSettings, SettingsError, TrainingSettings
from kbuilder.graph.sweeps import SweepError, SweepSpec
from kbuilder.graph.text import found as _found
from kbuilder.graph.text import plural
from kbuilder.graph.text import quoted as _quote

FORMAT = "kbuilder-project"
FORMAT_VERSION = 1
PROJECT_MEMBER = "project.json"
WEIGHTS_MEMBER = "weights.npz"

# Limits against hostile or damaged files; far above anything kbuilder itself writes.
MAX_JSON_BYTES = 256 * 2**20
MAX_WEIGHTS_BYTES = 16 * 2**30
MAX_MEMBERS = 1000
MAX_WEIGHT_ARRAYS = 1_000_000
MAX_BLOCK_DEPTH = 32
# Each block level adds three JSON levels (graph -> nodes -> node); parameters add a few.
MAX_JSON_DEPTH = 3 * MAX_BLOCK_DEPTH + 64
MAX_ID_LENGTH = 256

# Upgrades of the parsed ``project.json`` from format version n to n + 1, applied in order.
# Each takes and returns the whole document; ``format_version`` is updated by the caller.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}

DEFAULT_VIEW: dict[str, Any] = {"zoom": 1.0, "center": [0.0, 0.0], "collapsed": []}


class Project:
    """Everything a ``.kbproj`` file holds, in memory. Plain Python, no Qt.

    Args:
        graph: the model graph (node positions included).
        history: the undo/redo history of ``graph``; a fresh, clean one by default.
        view: view-only data besides positions: ``zoom``, ``center``, ``collapsed``
            (ids of collapsed blocks) and ``flow`` (the canvas's layout: "down" or
            "right").
        data: the data settings; ``None`` while no data was chosen (``kbuilder evaluate``
            then asks for ``--data``; the Data tab shows the defaults).
        training: the training settings (the defaults by default).
        runs: run history records (``RunRecord``; written with ``to_dict``).
        weights: node id -> that layer's weights, in Keras order.
        path: where the project was last saved or loaded from.
        sweep: the hyperparameter sweep (search space and how to search), if any
            (``kbuilder.graph.sweeps``; the file's optional ``sweep`` section).

    ``modified`` is true when the history is not at its clean point or ``dirty`` was set by
    a change that is not in the history (e.g. a training setting). ``disk`` is what the
    file held when this process last read or wrote it (``None`` for a project not saved).
    """

    def __init__(
        self,
        graph: Graph,
        *,
        history: History | None = None,
        view: dict[str, Any] | None = None,
        data: DataSettings | None = None,
        training: TrainingSettings | None = None,
        runs: list[RunRecord] | None = None,
        weights: dict[str, list[np.ndarray]] | None = None,
        path: Path | None = None,
        sweep: SweepSpec | None = None,
    ):
        self.graph = graph
        self.history = history if history is not None else History()
        self.view: dict[str, Any] = {**copy.deepcopy(DEFAULT_VIEW), **(view or {})}
        self.data: DataSettings | None = data
        self.training: TrainingSettings = training if training is not None else TrainingSettings()
        self.runs: list[RunRecord] = runs if runs is not None else []
        self.weights: dict[str, list[np.ndarray]] = weights if weights is not None else {}
        self.path = path
        self.sweep: SweepSpec | None = sweep
        self.dirty = False
        self.disk: DiskState | None = None

    @classmethod
    def new(cls, graph: Graph | None = None, name: str = "model") -> Project:
        """A new, unsaved project around ``graph`` (an empty graph called ``name``)."""
        return cls(graph if graph is not None else Graph(name))

    @property
    def name(self) -> str:
        return self.graph.name

    @property
    def modified(self) -> bool:
        return self.dirty or not self.history.is_clean

    def mark_clean(self) -> None:
        """Record that the project now matches its file."""
        self.dirty = False
        self.history.mark_clean()

    def __repr__(self) -> str:
        where = self.path.name if self.path else "unsaved"
        return f"<Project '{self.name}' ({where}{', modified' if self.modified else ''})>"


# ====================================================================== on the disk
@dataclass(frozen=True)
class DiskState:
    """What a project file held when this process last read or wrote it."""

    stamp: tuple[int, int, int] | None  # (inode, size, mtime in ns) of the file
    run_ids: frozenset[str] = field(default_factory=frozenset)
    graph_digest: str = ""


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


def file_stamp(path: int | str | os.PathLike[str]) -> tuple[int, int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_ino, info.st_size, info.st_mtime_ns


def _model_digest(project: Project) -> str:
    digest = hashlib.sha256(json.dumps(
        _jsonable(project.graph.to_dict(), "graph"), sort_keys=True).encode())
    for key, array in sorted(_weights_to_save(project).items()):
        digest.update(key.encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _remember_disk(project: Project, path: Path) -> None:
    project.disk = DiskState(file_stamp(path), frozenset(_run_ids(project.runs)),
                             _model_digest(project))


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


# =========================================================================== writing
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
            _write_atomically(project, path)
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
        _write_atomically(project, path)
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
    _weights_to_save(project)


def write_recovery(project: Project, path: str | os.PathLike[str]) -> None:
    """Write ``project`` to a recovery file (same format, atomic) without marking it clean.

    Args:
        project: the project to save.
        path: the recovery file to write.

    Raises:
        ProjectFileError: the project holds a value a project file cannot store.
        OSError: the file could not be written; a previous file at ``path`` is intact.
    """
    _write_atomically(project, Path(path))


def project_to_json(project: Project) -> dict[str, Any]:
    """The content of ``project.json`` for ``project``.

    Numbers that JSON cannot hold (NaN, infinity — e.g. the loss of a diverged run) are
    stored as ``null``; NumPy scalars become Python numbers and tuples become lists.

    Raises:
        ProjectFileError: a value that JSON cannot represent, with its place.
    """
    view = {k: v for k, v in project.view.items() if k != "positions"}
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kbuilder_version": __version__,
        "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "graph": project.graph.to_dict(),
        "view": {"positions": project.graph.positions(), **view},
        "data": project.data.to_dict() if project.data is not None else {},
        "training": project.training.to_dict(),
        "runs": [record.to_dict() for record in project.runs],
    }
    if project.sweep is not None:
        document["sweep"] = project.sweep.to_dict()
    return _jsonable(document, "")


def _jsonable(value: Any, where: str) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.generic):
        return _jsonable(value.item(), where)
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if isinstance(key, bool) or not isinstance(key, str | int):
                raise ProjectFileError(
                    f"Cannot save the project: {where or 'the project'} has a key of type "
                    f"{type(key).__name__}; only text keys can be stored."
                )
            out[str(key)] = _jsonable(item, f"{where}.{key}" if where else str(key))
        return out
    if isinstance(value, list | tuple):
        return [_jsonable(item, f"{where}[{i}]") for i, item in enumerate(value)]
    raise ProjectFileError(
        f"Cannot save the project: {where} holds a value of type {type(value).__name__}, "
        "which a project file cannot store."
    )


def _weights_to_save(project: Project) -> dict[str, np.ndarray]:
    """The arrays to write, keyed ``"<node id>/<index>"``.

    Only layer nodes that own their layer are written: weights left over from a deleted
    node (kept in memory so undo can bring them back) would make the file unreadable.
    """
    owners = {
        node.id: node for _, node in project.graph.walk()
        if node.kind == "layer" and not node.shared_with
    }
    arrays: dict[str, np.ndarray] = {}
    for node_id, node_weights in project.weights.items():
        if node_id not in owners:
            continue
        for index, weight in enumerate(node_weights):
            array = np.asarray(weight)
            if array.dtype.hasobject or array.dtype.kind not in "biufc":
                raise ProjectFileError(
                    f"Cannot save the project: weight {index} of {_quote(owners[node_id].name)} "
                    f"is not numeric (dtype {array.dtype})."
                )
            arrays[f"{node_id}/{index}"] = array
    return arrays


def _write_atomically(project: Project, path: Path) -> None:
    # Everything that can fail on the project's content fails before the disk is touched.
    document = json.dumps(
        project_to_json(project), ensure_ascii=False, allow_nan=False, indent=1
    ).encode("utf-8")
    arrays = _weights_to_save(project)
    atomic_write(path, lambda f: _write_container(f, document, arrays))


def _write_container(f: IO[bytes], document: bytes, arrays: dict[str, np.ndarray]) -> None:
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(PROJECT_MEMBER, document)
        if arrays:
            with archive.open(WEIGHTS_MEMBER, "w", force_zip64=True) as member:
                np.savez(member, allow_pickle=False, **arrays)


# =========================================================================== reading
def load_project(path: str | os.PathLike[str]) -> Project:
    """Read a ``.kbproj`` file.

    Args:
        path: the project file.

    Returns:
        A clean ``Project`` whose ``path`` is ``path``.

    Raises:
        ProjectFileError: the file is missing, unreadable, damaged, from a newer kbuilder,
            or not a valid project; the message names the file and the place. Nothing
            is loaded.
    """
    path = Path(path)
    source = path.name
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            # Opening a named pipe would wait forever for a writer.
            raise ProjectFileError(f"{source} is not a file ({path}).")
        f = open(path, "rb")
        stamp = file_stamp(f.fileno())
    except FileNotFoundError:
        raise ProjectFileError(f"{source} does not exist ({path}).") from None
    except OSError as exc:
        raise ProjectFileError(f"{source} cannot be opened: {exc.strerror or exc}.") from exc
    with f, _open_archive(f, source) as archive:
        data = _parse_json_bytes(_read_member(archive, PROJECT_MEMBER, source), source)
        record = _parse_project(data, source)
        weights = _read_weights(archive, source)
    project = _build_project(record, weights, source)
    project.path = path
    project.disk = DiskState(stamp, frozenset(_run_ids(project.runs)), _model_digest(project))
    return project


def project_from_json(
    data: Any,
    source_name: str,
    weights: Mapping[str, Sequence[np.ndarray]] | None = None,
) -> Project:
    """Validate a parsed ``project.json`` (and weights) and build the ``Project``.

    ``load_project`` uses this after reading the archive.

    Args:
        data: the parsed JSON document.
        source_name: the file name to put in error messages.
        weights: node id -> arrays, as read from ``weights.npz``.

    Returns:
        A clean ``Project`` without a path.

    Raises:
        ProjectFileError: anything invalid, with its place in the document.
    """
    record = _parse_project(data, source_name)
    arrays: dict[str, list[np.ndarray]] = {}
    for node_id, node_weights in (weights or {}).items():
        arrays[node_id] = [_check_array(w, source_name, node_id, i) for i, w in
                           enumerate(node_weights)]
    return _build_project(record, arrays, source_name)


# --------------------------------------------------------------------------- archive
@contextlib.contextmanager
def _open_archive(f: IO[bytes], source: str) -> Iterator[zipfile.ZipFile]:
    try:
        archive = zipfile.ZipFile(f)
        infos = archive.infolist()
    except Exception as exc:
        # zipfile reports damaged archives through many exception types (BadZipFile,
        # EOFError, ValueError, struct.error, ...); to the user they all mean the same.
        raise ProjectFileError(
            f"{source} is not a kbuilder project (not a ZIP file, or it is truncated)."
        ) from exc
    with archive:
        if len(infos) > MAX_MEMBERS:
            raise ProjectFileError(
                f"{source} is not a kbuilder project (its ZIP archive has {len(infos)} "
                f"members; a project has at most {MAX_MEMBERS})."
            )
        for name in (PROJECT_MEMBER, WEIGHTS_MEMBER):
            if sum(info.filename == name for info in infos) > 1:
                raise ProjectFileError(f"{source} is damaged: it holds {name} twice.")
        if PROJECT_MEMBER not in archive.NameToInfo:
            raise ProjectFileError(
                f"{source} is not a kbuilder project (it has no {PROJECT_MEMBER})."
            )
        yield archive


def _read_member(archive: zipfile.ZipFile, name: str, source: str) -> bytes:
    info = archive.getinfo(name)
    # Checked before reading: the declared size bounds what zipfile will decompress.
    if info.file_size > MAX_JSON_BYTES:
        raise ProjectFileError(
            f"{source}: {name} is {_size(info.file_size)}, more than the "
            f"{_size(MAX_JSON_BYTES)} a project file may hold."
        )
    with _damaged_member(source, name), archive.open(info) as member:
        return member.read()


@contextlib.contextmanager
def _damaged_member(source: str, name: str) -> Iterator[None]:
    try:
        yield
    except ProjectFileError:
        raise
    except Exception as exc:
        # Damaged members fail inside zipfile/zlib/numpy with assorted exception types.
        # The low-level reason (bad CRC, bad header...) stays on the chained exception.
        raise ProjectFileError(
            f"{source} is damaged: {name} cannot be read (the file is corrupt or incomplete)."
        ) from exc


def _parse_json_bytes(raw: bytes, source: str) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProjectFileError(
            f"{source}: {PROJECT_MEMBER} is not UTF-8 text (invalid byte at position "
            f"{exc.start})."
        ) from None
    try:
        # NaN, Infinity and 1e999 parse as floats here and are refused, with their place,
        # by _check_plain_json.
        return json.loads(text.removeprefix("\ufeff"))
    except json.JSONDecodeError as exc:
        raise ProjectFileError(
            f"{source}: {PROJECT_MEMBER} is not valid JSON ({exc.msg} at line "
            f"{exc.lineno}, column {exc.colno})."
        ) from None
    except RecursionError:
        raise ProjectFileError(
            f"{source}: {PROJECT_MEMBER} is nested too deeply to be a project."
        ) from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise ProjectFileError(f"{source}: {PROJECT_MEMBER} is not valid JSON ({exc}).") from None


def _size(n: int) -> str:
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def _read_weights(archive: zipfile.ZipFile, source: str) -> dict[str, list[np.ndarray]]:
    """The arrays of ``weights.npz``, validated as numbers; empty when there is none."""
    info = archive.NameToInfo.get(WEIGHTS_MEMBER)
    if info is None:
        return {}
    where = f"{source}: {WEIGHTS_MEMBER}"
    if info.file_size > MAX_WEIGHTS_BYTES:
        raise ProjectFileError(
            f"{where} is {_size(info.file_size)}, more than the "
            f"{_size(MAX_WEIGHTS_BYTES)} a project file may hold."
        )
    # The npz is itself a ZIP that needs random access: copy it out of the project
    # archive into an anonymous temporary file first.
    with tempfile.TemporaryFile() as tmp:
        with _damaged_member(source, WEIGHTS_MEMBER):
            with archive.open(info) as member:
                shutil.copyfileobj(member, tmp, 2**20)
            tmp.seek(0)
            inner = zipfile.ZipFile(tmp)
        with inner, _damaged_member(source, WEIGHTS_MEMBER):
            return _read_npz(inner, source)


def _read_npz(inner: zipfile.ZipFile, source: str) -> dict[str, list[np.ndarray]]:
    infos = inner.infolist()
    if len(infos) > MAX_WEIGHT_ARRAYS:
        raise ProjectFileError(
            f"{source}: {WEIGHTS_MEMBER} holds {len(infos)} arrays, more than "
            f"{MAX_WEIGHT_ARRAYS}."
        )
    total = sum(info.file_size for info in infos)
    if total > MAX_WEIGHTS_BYTES:
        raise ProjectFileError(
            f"{source}: {WEIGHTS_MEMBER} unpacks to {_size(total)}, more than the "
            f"{_size(MAX_WEIGHTS_BYTES)} a project file may hold."
        )
    found: dict[str, dict[int, np.ndarray]] = {}
    for info in infos:
        node_id, index = _weight_key(info.filename, source)
        if index in found.setdefault(node_id, {}):
            raise ProjectFileError(
                f"{source}: {WEIGHTS_MEMBER} holds {_quote(info.filename)} twice."
            )
        found[node_id][index] = _read_npy(inner, info, source)
    weights: dict[str, list[np.ndarray]] = {}
    for node_id, by_index in found.items():
        missing = sorted(set(range(len(by_index))) - set(by_index))
        if missing:
            raise ProjectFileError(
                f"{source}: {WEIGHTS_MEMBER} lacks weight {missing[0]} of node "
                f"{_quote(node_id)} (it has {plural(len(by_index), 'weight')} numbered up to "
                f"{max(by_index)})."
            )
        weights[node_id] = [by_index[i] for i in range(len(by_index))]
    return weights


def _weight_key(member_name: str, source: str) -> tuple[str, int]:
    key = member_name.removesuffix(".npy")
    node_id, _, index = key.rpartition("/")
    if (
        not member_name.endswith(".npy")
        or not node_id
        or not index.isascii()
        or not index.isdigit()
        or len(index) > 9
        or str(int(index)) != index
    ):
        raise ProjectFileError(
            f"{source}: {WEIGHTS_MEMBER} holds {_quote(member_name)}, which is not named "
            "'<node id>/<index>'."
        )
    return node_id, int(index)


def _read_npy(inner: zipfile.ZipFile, info: zipfile.ZipInfo, source: str) -> np.ndarray:
    key = info.filename.removesuffix(".npy")
    where = f"{source}: {WEIGHTS_MEMBER} array {_quote(key)}"
    fmt = np.lib.format
    # Read the header first: numpy allocates what the header claims before reading, so
    # a header claiming terabytes must be refused before np.lib.format.read_array.
    with inner.open(info) as fp:
        try:
            shape, dtype = read_header(fp)
        except ValueError as exc:
            raise ProjectFileError(f"{where} is not a NumPy array.") from exc
    if dtype.hasobject or dtype.kind not in "biufc":
        raise ProjectFileError(f"{where} is not numeric (dtype {dtype}).")
    if math.prod(shape) * dtype.itemsize > info.file_size:
        raise ProjectFileError(f"{where} is truncated (its header claims more data).")
    with inner.open(info) as fp:
        return fmt.read_array(fp, allow_pickle=False)


def _check_array(value: Any, source: str, node_id: str, index: int) -> np.ndarray:
    array = np.asarray(value) if isinstance(value, np.ndarray | np.generic) else None
    if array is None or array.dtype.hasobject or array.dtype.kind not in "biufc":
        raise ProjectFileError(
            f"{source}: weight {index} of node {_quote(node_id)} is not a numeric array."
        )
    return array


# ------------------------------------------------------------------------ typed records
@dataclass(frozen=True)
class _EdgeRecord:
    where: str
    id: str
    src: str
    src_port: int
    dst: str
    dst_port: str


@dataclass(frozen=True)
class _NodeRecord:
    where: str
    id: str
    kind: str
    name: str
    class_name: str | None
    params: dict[str, Any]
    shared_with: str | None
    graph: _GraphRecord | None
    call_options: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The ``Node.to_dict()`` form ``Graph.from_dict`` reads."""
        data: dict[str, Any] = {"id": self.id, "kind": self.kind, "name": self.name}
        if self.kind == "layer":
            data["class_name"] = self.class_name
            if self.shared_with:
                data["shared_with"] = self.shared_with
            if self.call_options:
                data["call_options"] = self.call_options
        if self.params:
            data["params"] = self.params
        if self.graph is not None:
            data["graph"] = self.graph.to_dict()
        return data


@dataclass(frozen=True)
class _GraphRecord:
    where: str
    name: str
    nodes: tuple[_NodeRecord, ...]
    edges: tuple[_EdgeRecord, ...]
    style: str = "functional"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            **({"style": self.style} if self.style != "functional" else {}),
            "nodes": [n.to_dict() for n in self.nodes],
            "edges": [
                {"id": e.id, "src": e.src, "src_port": e.src_port, "dst": e.dst,
                 "dst_port": e.dst_port}
                for e in self.edges
            ],
        }


@dataclass(frozen=True)
class _ProjectRecord:
    graph: _GraphRecord
    view: dict[str, Any]
    data: DataSettings | None
    training: TrainingSettings
    runs: list[RunRecord]
    built: Graph  # the validated graph, not yet handed to anyone
    sweep: SweepSpec | None = None


_MISSING: Any = object()


class _Reader:
    """Typed reads of parsed JSON that fail with the file and place in the message."""

    def __init__(self, source: str):
        self.source = source

    def fail(
        self, where: str, message: str, node_id: str | None = None, param: str | None = None
    ) -> NoReturn:
        raise ProjectFileError(f"{self.source}: {where} {message}", node_id, param)

    def expect(self, value: Any, where: str, expected: str) -> NoReturn:
        if value is _MISSING:
            self.fail(where, "is missing.")
        self.fail(where, f"must be {expected}; found {_found(value)}.")

    def object(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.expect(value, where, "an object")
        return value

    def list(self, value: Any, where: str) -> list[Any]:
        if not isinstance(value, list):
            self.expect(value, where, "a list")
        return value

    def string(self, value: Any, where: str) -> str:
        if not isinstance(value, str):
            self.expect(value, where, "a string")
        return value

    def identifier(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value:
            self.expect(value, where, "a non-empty string")
        # Ids become ZIP member names in weights.npz, where control characters (a NUL
        # ends the name) would corrupt the file.
        if len(value) > MAX_ID_LENGTH or any(ord(c) < 32 or ord(c) == 127 for c in value):
            self.fail(
                where, f"must be at most {MAX_ID_LENGTH} printable characters; "
                f"found {_found(value)}."
            )
        return value

    def index(self, value: Any, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.expect(value, where, "a whole number, 0 or more")
        return value

    def number(self, value: Any, where: str) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            self.expect(value, where, "a finite number")
        return float(value)

    def point(self, value: Any, where: str) -> tuple[float, float]:
        if not isinstance(value, list) or len(value) != 2:
            self.expect(value, where, "a pair of numbers [x, y]")
        return self.number(value[0], f"{where}[0]"), self.number(value[1], f"{where}[1]")


# ----------------------------------------------------------------------------- parsing
def _parse_project(data: Any, source: str) -> _ProjectRecord:
    r = _Reader(source)
    _check_plain_json(data, source)
    if not isinstance(data, dict):
        raise ProjectFileError(
            f"{source}: {PROJECT_MEMBER} must hold a JSON object; found {_found(data)}."
        )
    data = _migrate(copy.deepcopy(data), source)

    graph = _parse_graph(r, data.get("graph", _MISSING), "graph", 0, "model")
    view_data = r.object(data.get("view", {}), "view")
    positions: dict[str, tuple[float, float]] = {}
    for node_id, point in r.object(view_data.get("positions", {}), "view.positions").items():
        positions[node_id] = r.point(point, f"view.positions{_member(node_id)}")
    view = {k: v for k, v in view_data.items() if k != "positions"}
    if "zoom" in view:
        view["zoom"] = r.number(view["zoom"], "view.zoom")
        if view["zoom"] <= 0:
            r.fail("view.zoom", f"must be more than 0; found {_found(view['zoom'])}.")
    if "center" in view:
        view["center"] = list(r.point(view["center"], "view.center"))
    if "collapsed" in view:
        collapsed = r.list(view["collapsed"], "view.collapsed")
        view["collapsed"] = [r.string(c, f"view.collapsed[{i}]") for i, c in enumerate(collapsed)]
    if "flow" in view and view["flow"] not in FLOWS:  # the canvas's layout direction
        r.fail("view.flow", f"must be one of {', '.join(FLOWS)}; found {_found(view['flow'])}.")

    settings = {key: r.object(data.get(key, {}), key) for key in ("data", "training")}
    data_settings = (_check_settings(r, DataSettings, settings["data"], "data")
                     if settings["data"] else None)  # {}: no data chosen yet
    training = _check_settings(r, TrainingSettings, settings["training"], "training")
    listed = r.list(data.get("runs", []), "runs")
    try:
        runs = [RunRecord.from_dict(run, f"runs[{i}]") for i, run in enumerate(listed)]
    except ProjectFileError as exc:
        raise ProjectFileError(f"{source}: {exc.message}", param=exc.param) from None

    sweep = None
    if "sweep" in data:  # files from before sweeps have none
        try:
            sweep = SweepSpec.from_dict(r.object(data["sweep"], "sweep"))
        except SweepError as exc:
            r.fail("sweep", f"is not valid: {exc.message}", param=exc.param)
    built = _validate_graph(r, graph, positions)
    # Stale view entries (a block deleted after it was collapsed) are harmless: drop them.
    blocks = {node.id for _, node in built.walk() if node.kind == "block"}
    view["collapsed"] = [c for c in view.get("collapsed", []) if c in blocks]
    return _ProjectRecord(graph, view, data_settings, training, runs, built, sweep)


def _check_settings(r: _Reader, cls: Any, values: dict[str, Any], section: str) -> Any:
    """The settings ``cls.from_dict`` reads from ``values``; what it refuses fails naming
    the field (``training.epochs must be a whole number >= 1; found 'ten'``)."""
    try:
        return cls.from_dict(values)
    except SettingsError as exc:
        body = exc.message.removeprefix(f"{section}: ")
        if exc.param and body.startswith(f"{exc.param} "):
            r.fail(f"{section}.{exc.param}", body.removeprefix(exc.param).lstrip(),
                   param=exc.param)
        r.fail(f"{section}.{exc.param}" if exc.param else section, f"is not valid: {body}",
               param=exc.param)
    except (TypeError, ValueError, AttributeError):
        # A value of a type the settings cannot even examine (image_size 5, roles "x"):
        # find it by checking each setting alone.
        for name, value in values.items():
            try:
                cls.from_dict({name: value})
            except SettingsError:
                pass  # a rule between settings, or the field's own rule: reported below
            except (TypeError, ValueError, AttributeError):
                r.fail(f"{section}.{name}", f"has the wrong type; found {_found(value)}.",
                       param=name)
        r.fail(section, "holds a value of the wrong type.")


def _check_plain_json(data: Any, source: str) -> None:
    """Refuse nesting deeper than ``MAX_JSON_DEPTH``, non-JSON values and non-finite numbers.

    Iterative, so that hostile nesting cannot exhaust the stack here or, later, in the
    recursive code (``copy.deepcopy``, ``json.dumps``) that handles parameter values.
    """
    stack: list[tuple[Any, int, tuple | None]] = [(data, 1, None)]
    while stack:
        value, depth, path = stack.pop()
        if isinstance(value, dict):
            for key in value:
                if not isinstance(key, str):
                    raise ProjectFileError(
                        f"{source}: {_path_text(path)} has a key of type "
                        f"{type(key).__name__}; keys must be strings."
                    )
            children = value.items()
        elif isinstance(value, list):
            children = enumerate(value)
        elif value is None or isinstance(value, str | bool):
            continue
        elif isinstance(value, int):
            # Nothing in a project needs more than 64 bits, and Python refuses to print
            # integers of thousands of digits, which every message about them would do.
            if value.bit_length() > 64:
                raise ProjectFileError(
                    f"{source}: {_path_text(path)} is a whole number too large for a "
                    "project file."
                )
            continue
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise ProjectFileError(
                    f"{source}: {_path_text(path)} is {value}; a project file may only "
                    "hold finite numbers."
                )
            continue
        else:
            raise ProjectFileError(
                f"{source}: {_path_text(path)} holds a value of type "
                f"{type(value).__name__}, which is not JSON data."
            )
        if depth > MAX_JSON_DEPTH:
            raise ProjectFileError(
                f"{source}: {_path_text(path)} is nested more than {MAX_JSON_DEPTH} levels "
                "deep; a project file is never that deep."
            )
        for key, child in children:
            stack.append((child, depth + 1, (path, key)))


def _path_text(path: tuple | None) -> str:
    keys: list[Any] = []
    while path is not None:
        path, key = path
        keys.append(key)
    text = ""
    for key in reversed(keys):
        text += f"[{key}]" if isinstance(key, int) else _member(key)
        if len(text) > 120:  # a hostile path can be thousands of levels long
            return text[:120] + "..."
    return text.removeprefix(".") or PROJECT_MEMBER


def _member(key: str) -> str:
    """``.key`` for a plain key, ``['odd key']`` for one a message could not show as is."""
    if key.isprintable() and len(key) <= 60 and not any(c in key for c in ".[]' "):
        return f".{key}"
    return f"[{_quote(key)}]"


def _migrate(data: dict[str, Any], source: str) -> dict[str, Any]:
    fmt = data.get("format", _MISSING)
    if fmt != FORMAT:
        found = "no \"format\"" if fmt is _MISSING else f"\"format\" {_found(fmt)}"
        raise ProjectFileError(
            f"{source} is not a kbuilder project ({PROJECT_MEMBER} has {found}, "
            f"expected \"{FORMAT}\")."
        )
    version = data.get("format_version", _MISSING)
    if isinstance(version, bool) or not isinstance(version, int):
        _Reader(source).expect(version, "format_version", "a whole number")
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


def _parse_graph(
    r: _Reader, value: Any, where: str, depth: int, default_name: str
) -> _GraphRecord:
    if depth > MAX_BLOCK_DEPTH:
        r.fail(where, f"is nested more than {MAX_BLOCK_DEPTH} blocks deep.")
    data = r.object(value, where)
    name = r.string(data.get("name", default_name), f"{where}.name")
    nodes = tuple(
        _parse_node(r, node, f"{where}.nodes[{i}]", depth)
        for i, node in enumerate(r.list(data.get("nodes", []), f"{where}.nodes"))
    )
    edges = tuple(
        _parse_edge(r, edge, f"{where}.edges[{i}]")
        for i, edge in enumerate(r.list(data.get("edges", []), f"{where}.edges"))
    )
    style = data.get("style", "functional")
    if style not in GRAPH_STYLES:
        r.expect(style, f"{where}.style", f"one of {', '.join(GRAPH_STYLES)}")
    return _GraphRecord(where, name, nodes, edges, style)


def _parse_node(r: _Reader, value: Any, where: str, depth: int) -> _NodeRecord:
    data = r.object(value, where)
    node_id = r.identifier(data.get("id", _MISSING), f"{where}.id")
    kind = data.get("kind", _MISSING)
    if kind not in NODE_KINDS:
        r.expect(kind, f"{where}.kind", f"one of {', '.join(NODE_KINDS)}")
    name = data.get("name", _MISSING)
    message = validate_name(name)
    if message:
        if not isinstance(name, str):
            r.expect(name, f"{where}.name", "a non-empty string")
        r.fail(f"{where}.name", f"is not a valid name: {message}", node_id)
    params = r.object(data.get("params", {}), f"{where}.params")
    class_name = shared_with = graph = None
    call_options = r.object(data.get("call_options", {}), f"{where}.call_options")
    if call_options and kind != "layer":
        r.fail(f"{where}.call_options", "is only allowed on layer nodes.", node_id)
    if kind == "layer":
        class_name = r.identifier(data.get("class_name", _MISSING), f"{where}.class_name")
        if data.get("shared_with") is not None:
            shared_with = r.identifier(data["shared_with"], f"{where}.shared_with")
    elif kind == "block":
        graph = _parse_graph(r, data.get("graph", {}), f"{where}.graph", depth + 1, name)
    return _NodeRecord(
        where, node_id, kind, name, class_name, params, shared_with, graph, call_options
    )


def _parse_edge(r: _Reader, value: Any, where: str) -> _EdgeRecord:
    data = r.object(value, where)
    return _EdgeRecord(
        where,
        r.identifier(data.get("id", _MISSING), f"{where}.id"),
        r.identifier(data.get("src", _MISSING), f"{where}.src"),
        r.index(data.get("src_port", _MISSING), f"{where}.src_port"),
        r.identifier(data.get("dst", _MISSING), f"{where}.dst"),
        r.string(data.get("dst_port", _MISSING), f"{where}.dst_port"),
    )


# -------------------------------------------------------------------------- validation
def _validate_graph(
    r: _Reader, record: _GraphRecord, positions: dict[str, tuple[float, float]]
) -> Graph:
    """Check the graph records and return the graph they describe (not yet live).

    Positions of ids that are not in the graph are ignored (stale view data).
    """
    _check_ids(r, record, {}, {})
    _check_nodes(r, record, top_level=True)
    graph = Graph.from_dict(record.to_dict(), positions)
    _check_connections(r, record, graph)
    return graph


def _check_ids(
    r: _Reader, record: _GraphRecord, nodes: dict[str, str], edges: dict[str, str]
) -> None:
    # Unique across the whole tree: positions, weights and block ports are keyed by id.
    for node in record.nodes:
        if node.id in nodes:
            r.fail(f"{node.where}.id", f"{_quote(node.id)} is already used by {nodes[node.id]}.")
        nodes[node.id] = node.where
    for edge in record.edges:
        if edge.id in edges:
            r.fail(f"{edge.where}.id", f"{_quote(edge.id)} is already used by {edges[edge.id]}.")
        edges[edge.id] = edge.where
    for node in record.nodes:
        if node.graph is not None:
            _check_ids(r, node.graph, nodes, edges)


def _check_nodes(r: _Reader, record: _GraphRecord, top_level: bool) -> None:
    by_id = {node.id: node for node in record.nodes}
    names: dict[str, str] = {}
    for node in record.nodes:
        if node.name in names:
            r.fail(
                f"{node.where}.name",
                f"{_quote(node.name)} is already used by {names[node.name]}; names must be "
                "unique within a model.",
                node.id,
            )
        names[node.name] = node.where
        if node.kind == "layer":
            _check_layer(r, node, by_id)
        elif node.kind == "input":
            _check_input(r, node, top_level)
        elif node.kind == "block":
            _check_block_options(r, node)
        elif node.params:
            r.fail(f"{node.where}.params", f"must be empty: {_quote(node.name)} is a model "
                   f"{node.kind} and has no parameters.", node.id)
        if node.graph is not None:
            _check_nodes(r, node.graph, top_level=False)
    for edge in record.edges:
        for end in ("src", "dst"):
            if getattr(edge, end) not in by_id:
                r.fail(
                    f"{edge.where}.{end}",
                    f"{_quote(getattr(edge, end))} is not a node of {record.where}.",
                )


def _check_block_options(r: _Reader, node: _NodeRecord) -> None:
    """A block's params are its freezing options (``graph/freezing.BLOCK_OPTIONS``)."""
    from kbuilder.graph.freezing import BLOCK_OPTIONS

    for name, value in node.params.items():
        if name not in BLOCK_OPTIONS:
            r.fail(f"{node.where}.params.{name}", f"is not an option of a block; a block "
                   f"has {', '.join(BLOCK_OPTIONS)}.", node.id)
        elif not isinstance(value, BLOCK_OPTIONS[name]):
            r.fail(f"{node.where}.params.{name}", "must be true or false.", node.id)


def _check_layer(r: _Reader, node: _NodeRecord, by_id: dict[str, _NodeRecord]) -> None:
    from kbuilder.graph import catalog

    try:
        spec = catalog.get(node.class_name)
    except UnknownLayerError:
        r.fail(
            f"{node.where}.class_name",
            f"{_quote(node.class_name)} of {_quote(node.name)} is not a layer type kbuilder knows.",
            node.id,
        )
    for option, value in node.call_options.items():
        message = catalog.validate_call_option(spec, option, value)
        if message:
            r.fail(f"{node.where}.call_options.{option}",
                   f"of layer {_quote(node.name)} is not valid: {_sentence(message)}", node.id)
    if node.shared_with is not None:
        owner = by_id.get(node.shared_with)
        if owner is None or owner.kind != "layer" or owner.shared_with or owner is node:
            r.fail(
                f"{node.where}.shared_with",
                f"of {_quote(node.name)} must be the id of a layer node of the same model that "
                f"owns its layer; found {_quote(node.shared_with)}.",
                node.id,
            )
        if owner.class_name != node.class_name:
            r.fail(
                f"{node.where}.class_name",
                f"of {_quote(node.name)} is {_quote(node.class_name)}, but the layer it shares "
                f"({_quote(owner.name)}) is {_quote(owner.class_name)}.",
                node.id,
            )
        if node.params:
            r.fail(
                f"{node.where}.params",
                f"must be empty: {_quote(node.name)} shares the layer (and parameters) of "
                f"{_quote(owner.name)}.",
                node.id,
            )
        return
    try:
        problems = catalog.validate_params(spec, node.params)
    except Exception as exc:
        # The catalog receives whatever the file holds; a value it cannot even examine
        # is a bad file, not a bug to crash on.
        r.fail(
            f"{node.where}.params",
            f"of layer {_quote(node.name)} cannot be checked ({type(exc).__name__}: {exc}).",
            node.id,
        )
    if problems:
        param, message = next(iter(problems.items()))
        r.fail(
            f"{node.where}.params.{param}",
            f"of layer {_quote(node.name)} is not valid: {_sentence(message)}",
            node.id,
            param,
        )


def _check_input(r: _Reader, node: _NodeRecord, top_level: bool) -> None:
    # Inside a block the shape comes from whatever feeds the block's port.
    if top_level and "shape" not in node.params:
        r.fail(
            f"{node.where}.params.shape",
            f"is missing: the model input {_quote(node.name)} needs a shape.",
            node.id,
            "shape",
        )
    for param, value in node.params.items():
        message = validate_input_param(param, value)
        if message:
            r.fail(
                f"{node.where}.params.{param}",
                f"of input {_quote(node.name)} is not valid: {_sentence(message)}",
                node.id,
                param,
            )


def _check_connections(r: _Reader, record: _GraphRecord, graph: Graph) -> None:
    """Ports and cycles, checked on the built graph so the rules are the graph's own."""
    by_id = {node.id: node for node in record.nodes}
    for edge in record.edges:
        source, target = by_id[edge.src], by_id[edge.dst]
        if source.kind == "output":
            r.fail(
                f"{edge.where}.src",
                f"is the model output {_quote(source.name)}, which has nothing to connect from.",
                source.id,
            )
        ports = [p.name for p in graph.input_ports(edge.dst)]
        if edge.dst_port not in ports:
            if not ports:
                what = " is a model input and" if target.kind == "input" else ""
                detail = f"{_quote(target.name)}{what} takes no inputs"
            else:
                detail = f"the ports of {_quote(target.name)} are {', '.join(map(_quote, ports))}"
            r.fail(
                f"{edge.where}.dst_port",
                f"{_quote(edge.dst_port)} is not an input port: {detail}.",
                target.id,
            )
    try:
        graph.topological_order()
    except CycleError as exc:
        name = graph.node(exc.node_id).name if exc.node_id in graph else "?"
        r.fail(
            f"{record.where}.edges",
            f"make a cycle through {_quote(name)}; data in a model must flow one way.",
            exc.node_id,
        )
    for node in record.nodes:
        if node.graph is not None:
            block = graph.node(node.id).subgraph
            assert block is not None
            _check_connections(r, node.graph, block)


def _sentence(message: str) -> str:
    # Validators quote the value they refused, which in a hostile file can be enormous.
    message = " ".join(message.split())
    if len(message) > 300:
        message = message[:300] + "..."
    return message if message.endswith((".", "!", "?")) else message + "."


# ---------------------------------------------------------------------------- building
def _build_project(
    record: _ProjectRecord, weights: dict[str, list[np.ndarray]], source: str
) -> Project:
    nodes = {node.id: node for _, node in record.built.walk()}
    for node_id in weights:
        node = nodes.get(node_id)
        if node is None:
            raise ProjectFileError(
                f"{source}: {WEIGHTS_MEMBER} holds weights for node {_quote(node_id)}, "
                "which is not in the model."
            )
        if node.kind != "layer" or node.shared_with:
            what = {
                "input": "is a model input", "output": "is a model output", "block": "is a block"
            }.get(node.kind, "shares another node's layer")
            raise ProjectFileError(
                f"{source}: {WEIGHTS_MEMBER} holds weights for {_quote(node.name)}, which {what} "
                "and has no weights of its own."
            )
    return Project(
        record.built,
        view=record.view,
        data=record.data,
        training=record.training,
        runs=record.runs,
        weights={node_id: list(arrays) for node_id, arrays in weights.items()},
        sweep=record.sweep,
    )

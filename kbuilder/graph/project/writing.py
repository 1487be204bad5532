"""Writing a project: ``project.json``'s content, the weights to store, the atomic write,
and the digest of the model that tells whether another writer changed it."""

from __future__ import annotations

import hashlib
import json
import math
import os
import zipfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np

from kbuilder import __version__
from kbuilder.files import atomic_write
from kbuilder.graph.errors import ProjectFileError
from kbuilder.graph.project.container import PROJECT_MEMBER, WEIGHTS_MEMBER
from kbuilder.graph.project.document import Project
from kbuilder.graph.project.migration import FORMAT, FORMAT_VERSION
from kbuilder.graph.text import quoted as _quote


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


def weights_to_save(project: Project) -> dict[str, np.ndarray]:
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


def model_digest(project: Project) -> str:
    digest = hashlib.sha256(json.dumps(
        _jsonable(project.graph.to_dict(), "graph"), sort_keys=True).encode())
    for key, array in sorted(weights_to_save(project).items()):
        digest.update(key.encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def write_recovery(project: Project, path: str | os.PathLike[str]) -> None:
    """Write ``project`` to a recovery file (same format, atomic) without marking it clean.

    Args:
        project: the project to save.
        path: the recovery file to write.

    Raises:
        ProjectFileError: the project holds a value a project file cannot store.
        OSError: the file could not be written; a previous file at ``path`` is intact.
    """
    write_atomically(project, Path(path))


def write_atomically(project: Project, path: Path) -> None:
    # Everything that can fail on the project's content fails before the disk is touched.
    document = json.dumps(
        project_to_json(project), ensure_ascii=False, allow_nan=False, indent=1
    ).encode("utf-8")
    arrays = weights_to_save(project)
    atomic_write(path, lambda f: _write_container(f, document, arrays))


def _write_container(f: IO[bytes], document: bytes, arrays: dict[str, np.ndarray]) -> None:
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(PROJECT_MEMBER, document)
        if arrays:
            with archive.open(WEIGHTS_MEMBER, "w", force_zip64=True) as member:
                np.savez(member, allow_pickle=False, **arrays)

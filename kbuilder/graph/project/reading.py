"""Reading a ``.kbproj`` file: the archive, then parsing and validation, and only then the
live ``Project``."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kbuilder.graph.errors import ProjectFileError
from kbuilder.graph.project.container import (
    PROJECT_MEMBER,
    WEIGHTS_MEMBER,
    check_array,
    open_archive,
    parse_json_bytes,
    read_member,
    read_weights,
)
from kbuilder.graph.project.document import DiskState, Project, file_stamp
from kbuilder.graph.project.parsing import parse_project
from kbuilder.graph.project.records import ProjectRecord
from kbuilder.graph.project.writing import model_digest
from kbuilder.graph.text import quoted as _quote


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
    with f, open_archive(f, source) as archive:
        data = parse_json_bytes(read_member(archive, PROJECT_MEMBER, source), source)
        record = parse_project(data, source)
        weights = read_weights(archive, source)
    project = build_project(record, weights, source)
    project.path = path
    project.disk = DiskState(stamp, frozenset(r.run_id for r in project.runs), model_digest(project))
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
    record = parse_project(data, source_name)
    arrays: dict[str, list[np.ndarray]] = {}
    for node_id, node_weights in (weights or {}).items():
        arrays[node_id] = [check_array(w, source_name, node_id, i) for i, w in
                           enumerate(node_weights)]
    return build_project(record, arrays, source_name)


def build_project(
    record: ProjectRecord, weights: dict[str, list[np.ndarray]], source: str
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

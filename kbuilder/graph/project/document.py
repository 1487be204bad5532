"""The in-memory ``Project`` and ``DiskState``, what its file held when last read or written."""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kbuilder.graph.commands import History
from kbuilder.graph.model import Graph
from kbuilder.graph.runs import RunRecord
from kbuilder.graph.settings import DataSettings, TrainingSettings
from kbuilder.graph.sweeps import SweepSpec

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


@dataclass(frozen=True)
class DiskState:
    """What a project file held when this process last read or wrote it."""

    stamp: tuple[int, int, int] | None  # (inode, size, mtime in ns) of the file
    run_ids: frozenset[str] = field(default_factory=frozenset)
    graph_digest: str = ""


def file_stamp(path: int | str | os.PathLike[str]) -> tuple[int, int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_ino, info.st_size, info.st_mtime_ns

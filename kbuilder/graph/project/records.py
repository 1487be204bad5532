"""Typed records of a parsed ``project.json`` and ``Reader``, the typed reads that fail
naming the file and the place."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NoReturn

from kbuilder.graph.errors import ProjectFileError
from kbuilder.graph.model import Graph
from kbuilder.graph.project.container import MAX_ID_LENGTH
from kbuilder.graph.runs import RunRecord
from kbuilder.graph.settings import DataSettings, TrainingSettings
from kbuilder.graph.sweeps import SweepSpec
from kbuilder.graph.text import found as _found


@dataclass(frozen=True)
class EdgeRecord:
    where: str
    id: str
    src: str
    src_port: int
    dst: str
    dst_port: str


@dataclass(frozen=True)
class NodeRecord:
    where: str
    id: str
    kind: str
    name: str
    class_name: str | None
    params: dict[str, Any]
    shared_with: str | None
    graph: GraphRecord | None
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
class GraphRecord:
    where: str
    name: str
    nodes: tuple[NodeRecord, ...]
    edges: tuple[EdgeRecord, ...]
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
class ProjectRecord:
    graph: GraphRecord
    view: dict[str, Any]
    data: DataSettings | None
    training: TrainingSettings
    runs: list[RunRecord]
    built: Graph  # the validated graph, not yet handed to anyone
    sweep: SweepSpec | None = None


MISSING: Any = object()


class Reader:
    """Typed reads of parsed JSON that fail with the file and place in the message."""

    def __init__(self, source: str):
        self.source = source

    def fail(
        self, where: str, message: str, node_id: str | None = None, param: str | None = None
    ) -> NoReturn:
        raise ProjectFileError(f"{self.source}: {where} {message}", node_id, param)

    def expect(self, value: Any, where: str, expected: str) -> NoReturn:
        if value is MISSING:
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

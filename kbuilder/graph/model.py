"""The model graph: nodes, ports and edges of a Keras Functional model.

The graph is plain Python. Views observe it through ``graph.events`` and change it only
through commands (``kbuilder.graph.commands``), which call the underscored mutators here.

Node kinds:
    ``input``   a model input (``keras.Input``); params ``shape`` (list, ``None`` for
                variable dimensions) and ``dtype``. Inside a block the shape comes from
                whatever feeds the block's port.
    ``layer``   one call of a Keras layer; ``class_name`` and ``params`` (a
                ``get_config()``-compatible dict of non-name values). A node whose
                ``shared_with`` names another layer node calls *that* node's layer again,
                sharing its weights. A ``class_name`` of ``ops.<function>`` (``ops.add``)
                is an operation between layers, e.g. ``x + 3.0`` (``kbuilder.graph.catalog.ops``).
    ``output``  marks a model output; one input port.
    ``block``   a nested model; its ``subgraph`` has its own input and output nodes, which
                become the block's ports.
"""

from __future__ import annotations

import copy
import heapq
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from kbuilder.graph.errors import (
    CycleError,
    GraphError,
    NameConflictError,
    NodeNotFoundError,
    PortError,
)
from kbuilder.graph.events import EventGroup

NodeKind = Literal["input", "layer", "output", "block"]
NODE_KINDS: tuple[str, ...] = ("input", "layer", "output", "block")

# How a graph's model is written in code: keras.Model(inputs, outputs) or keras.Sequential.
GRAPH_STYLES: tuple[str, ...] = ("functional", "sequential")

# The port name of single-input nodes (output nodes and most layers).
DEFAULT_PORT = "inputs"


def new_id() -> str:
    return uuid.uuid4().hex


def to_snake_case(name: str) -> str:
    """``BatchNormalization`` -> ``batch_normalization``, ``Conv2D`` -> ``conv2d`` (as Keras)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


@dataclass(frozen=True)
class InputPort:
    """An input port of a node as the graph sees it (resolved from the catalog)."""

    name: str
    label: str
    variadic: bool = False
    required: bool = True
    min_count: int = 1
    max_count: int | None = 1


@dataclass(frozen=True)
class Edge:
    """A connection from output ``src_port`` of ``src`` to input port ``dst_port`` of ``dst``."""

    id: str
    src: str
    src_port: int
    dst: str
    dst_port: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "src": self.src,
            "src_port": self.src_port,
            "dst": self.dst,
            "dst_port": self.dst_port,
        }


class Node:
    """One node of the graph. Read its state through properties, which return copies."""

    def __init__(
        self,
        kind: NodeKind,
        name: str,
        class_name: str | None = None,
        params: dict[str, Any] | None = None,
        *,
        id: str | None = None,
        shared_with: str | None = None,
        subgraph: Graph | None = None,
        position: tuple[float, float] = (0.0, 0.0),
        call_options: dict[str, Any] | None = None,
    ):
        if kind not in NODE_KINDS:
            raise GraphError(f"Unknown node kind '{kind}'; expected one of {NODE_KINDS}.")
        if kind == "layer" and not class_name:
            raise GraphError("A layer node needs a layer type (class_name).")
        if kind == "block" and subgraph is None:
            subgraph = Graph(name)
        self.id = id or new_id()
        self.kind: NodeKind = kind
        self._name = name
        self.class_name = class_name if kind == "layer" else None
        self._params: dict[str, Any] = copy.deepcopy(params or {})
        self.shared_with = shared_with if kind == "layer" else None
        self.subgraph = subgraph if kind == "block" else None
        # Non-tensor arguments of this one call (e.g. use_causal_mask=True); unlike params
        # they belong to the call, so two uses of a shared layer may differ.
        self._call_options: dict[str, Any] = dict(call_options or {}) if kind == "layer" else {}
        self._position = (float(position[0]), float(position[1]))

    @property
    def name(self) -> str:
        return self._name

    @property
    def params(self) -> dict[str, Any]:
        return copy.deepcopy(self._params)

    @property
    def call_options(self) -> dict[str, Any]:
        return dict(self._call_options)

    def param(self, name: str, default: Any = None) -> Any:
        return copy.deepcopy(self._params.get(name, default))

    @property
    def position(self) -> tuple[float, float]:
        return self._position

    @property
    def label(self) -> str:
        """What a view shows as the node's type."""
        if self.kind == "layer":
            # A pretrained network (applications.MobileNetV3Small) by its family's name.
            return (self.class_name or "Layer").removeprefix("applications.")
        return {"input": "Input", "output": "Output", "block": "Block"}[self.kind]

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "kind": self.kind, "name": self._name}
        if self.kind == "layer":
            data["class_name"] = self.class_name
            if self.shared_with:
                data["shared_with"] = self.shared_with
            if self._call_options:
                data["call_options"] = dict(self._call_options)
        if self._params:
            data["params"] = copy.deepcopy(self._params)
        if self.subgraph is not None:
            data["graph"] = self.subgraph.to_dict()
        return data

    def __repr__(self) -> str:
        return f"<Node {self.label} '{self._name}' {self.id[:8]}>"


class Graph:
    """A directed acyclic graph of nodes that becomes one Keras Functional model.

    Events (``graph.events``), all emitted after the change:
        node_added(node_id), node_removed(node_id), edge_added(edge_id),
        edge_removed(edge_id), node_changed(node_id, what) with ``what`` one of
        ``"params"``, ``"call_options"``, ``"name"``, ``"shared_with"``, ``"subgraph"``;
        node_moved(node_id); renamed(new_name).
    A change inside a block's subgraph is reported by the parent graph as
    ``node_changed(block_id, "subgraph")``.
    """

    def __init__(self, name: str = "model", style: str = "functional"):
        self.name = name
        # How the model was written: "sequential" for a keras.Sequential (imported), so
        # code and builds give a Sequential again while the graph stays a plain chain.
        self.style = style if style in GRAPH_STYLES else "functional"
        self._nodes: dict[str, Node] = {}
        self._edges: dict[str, Edge] = {}
        # Adjacency indexes (edge ids in global edge order) keep queries O(degree).
        self._in: dict[str, list[str]] = {}
        self._out: dict[str, list[str]] = {}
        self.events = EventGroup(
            "node_added", "node_removed", "edge_added", "edge_removed", "node_changed",
            "node_moved", "renamed",
        )
        self._parent: tuple[Graph, str] | None = None

    # ----------------------------------------------------------------- queries
    def __contains__(self, node_id: object) -> bool:
        return node_id in self._nodes

    def __len__(self) -> int:
        return len(self._nodes)

    @property
    def nodes(self) -> list[Node]:
        return list(self._nodes.values())

    @property
    def node_ids(self) -> list[str]:
        return list(self._nodes)

    @property
    def edges(self) -> list[Edge]:
        return list(self._edges.values())

    @property
    def parent(self) -> tuple[Graph, str] | None:
        """``(parent graph, block node id)`` for a block's subgraph, else ``None``."""
        return self._parent

    def node(self, node_id: str) -> Node:
        try:
            return self._nodes[node_id]
        except KeyError:
            raise NodeNotFoundError(f"There is no node with id '{node_id}'.", node_id) from None

    def edge(self, edge_id: str) -> Edge:
        try:
            return self._edges[edge_id]
        except KeyError:
            raise GraphError(f"There is no connection with id '{edge_id}'.") from None

    def has_edge(self, edge_id: str) -> bool:
        return edge_id in self._edges

    def find(self, name: str) -> Node:
        """The node called ``name``."""
        for node in self._nodes.values():
            if node.name == name:
                return node
        raise NodeNotFoundError(f"There is no node named '{name}'.")

    def edges_into(self, node_id: str, port: str | None = None) -> list[Edge]:
        """Edges into ``node_id`` (optionally one port), in connection order."""
        edges = [self._edges[i] for i in self._in.get(node_id, ())]
        return edges if port is None else [e for e in edges if e.dst_port == port]

    def edges_from(self, node_id: str) -> list[Edge]:
        return [self._edges[i] for i in self._out.get(node_id, ())]

    def edge_index(self, edge_id: str) -> int:
        return list(self._edges).index(edge_id)

    def node_index(self, node_id: str) -> int:
        return list(self._nodes).index(node_id)

    def input_nodes(self) -> list[Node]:
        return [n for n in self._nodes.values() if n.kind == "input"]

    def output_nodes(self) -> list[Node]:
        return [n for n in self._nodes.values() if n.kind == "output"]

    def sharers(self, node_id: str) -> list[Node]:
        """Nodes that call the layer of ``node_id`` again."""
        return [n for n in self._nodes.values() if n.shared_with == node_id]

    def layer_owner(self, node_id: str) -> Node:
        """The node holding the layer (and its parameters) that ``node_id`` calls."""
        node = self.node(node_id)
        return self.node(node.shared_with) if node.shared_with else node

    def names(self) -> set[str]:
        return {n.name for n in self._nodes.values()}

    def unique_name(self, base: str, exclude: str | None = None) -> str:
        """``base``, or ``base_1``, ``base_2``... — the first not used by another node."""
        taken = {n.name for n in self._nodes.values() if n.id != exclude}
        if base not in taken:
            return base
        stem = re.sub(r"_\d+$", "", base) or base
        i = 1
        while f"{stem}_{i}" in taken:
            i += 1
        return f"{stem}_{i}"

    def input_ports(self, node_id: str) -> list[InputPort]:
        """The input ports of a node, in call order."""
        node = self.node(node_id)
        if node.kind == "input":
            return []
        if node.kind == "output":
            return [InputPort(DEFAULT_PORT, "input")]
        if node.kind == "block":
            assert node.subgraph is not None
            return [InputPort(n.id, n.name) for n in node.subgraph.input_nodes()]
        from kbuilder.graph import catalog

        spec = catalog.get(self.layer_owner(node_id).class_name or "")
        return [
            InputPort(p.name, p.name, p.variadic, p.required, p.min_count, p.max_count)
            for p in spec.inputs
        ]

    def output_count(self, node_id: str) -> int | None:
        """How many outputs a node has, when the graph alone knows (else ``None``)."""
        node = self.node(node_id)
        if node.kind == "input":
            return 1
        if node.kind == "output":
            return 0
        if node.kind == "block":
            assert node.subgraph is not None
            return len(node.subgraph.output_refs())
        return None  # a layer's output count can depend on its parameters

    def output_refs(self) -> list[tuple[str, int]]:
        """The model outputs as ``(node id, output index)``.

        Output nodes define them, in node order. A graph without output nodes uses its
        sinks (nodes whose outputs feed nothing), so a half-built graph still has a model.
        """
        outs = self.output_nodes()
        if outs:
            refs = []
            for out in outs:
                for e in self.edges_into(out.id):
                    refs.append((e.src, e.src_port))
            return refs
        used = {e.src for e in self._edges.values()}
        return [
            (n.id, 0) for n in self._nodes.values()
            if n.id not in used and n.kind in ("layer", "block")
        ]

    def predecessors(self, node_id: str) -> list[str]:
        return list(dict.fromkeys(e.src for e in self.edges_into(node_id)))

    def successors(self, node_id: str) -> list[str]:
        return list(dict.fromkeys(e.dst for e in self.edges_from(node_id)))

    def topological_order(self) -> list[str]:
        """Node ids so that every edge goes forward; ties keep node order (stable)."""
        out: dict[str, list[str]] = {nid: [] for nid in self._nodes}
        for e in self._edges.values():
            out[e.src].append(e.dst)
        order = stable_topological_order(list(self._nodes), out)
        if len(order) != len(self._nodes):
            placed = set(order)
            stuck = next(nid for nid in self._nodes if nid not in placed)
            raise CycleError(
                f"The graph has a cycle through '{self._nodes[stuck].name}'.", stuck
            )
        return order

    def reaches(self, start: str, target: str) -> bool:
        """Whether data flows from ``start`` to ``target`` along edges."""
        stack, seen = [start], set()
        while stack:
            nid = stack.pop()
            if nid == target:
                return True
            if nid in seen:
                continue
            seen.add(nid)
            stack.extend(self.successors(nid))
        return False

    def walk(self) -> Iterator[tuple[Graph, Node]]:
        """Every node of this graph and of nested blocks, depth first."""
        for node in self._nodes.values():
            yield self, node
            if node.subgraph is not None:
                yield from node.subgraph.walk()

    def check_connection(self, src: str, src_port: int, dst: str, dst_port: str) -> None:
        """Raise a typed error when ``src:src_port -> dst:dst_port`` cannot be made.

        A single-input port that is already connected is not an error here: connecting
        replaces the old edge (see ``ConnectCommand``).
        """
        source, target = self.node(src), self.node(dst)
        if src == dst:
            raise CycleError(f"'{source.name}' cannot be connected to itself.", dst)
        n_out = self.output_count(src)
        if n_out == 0:
            raise PortError(
                f"'{source.name}' is a model output and has nothing to connect from.", src
            )
        if src_port < 0 or (n_out is not None and src_port >= n_out):
            raise PortError(
                f"'{source.name}' has no output {src_port}"
                + (f"; it has {n_out}." if n_out is not None else "."),
                src,
            )
        ports = {p.name: p for p in self.input_ports(dst)}
        if not ports:
            raise PortError(
                f"'{target.name}' is a model input and takes no inputs; "
                "connect into a layer instead.",
                dst,
            )
        port = ports.get(dst_port)
        if port is None:
            raise PortError(
                f"'{target.name}' has no input port '{dst_port}'; "
                f"its ports are {', '.join(ports)}.",
                dst,
            )
        if port.variadic and port.max_count is not None:
            existing = self.edges_into(dst, dst_port)
            if len(existing) >= port.max_count:
                raise PortError(
                    f"Port '{dst_port}' of '{target.name}' takes at most {port.max_count} "
                    "inputs; disconnect one first.",
                    dst,
                )
        if self.reaches(dst, src):
            raise CycleError(
                f"Connecting '{source.name}' to '{target.name}' would make a cycle: "
                f"'{target.name}' already feeds '{source.name}'.",
                dst,
            )

    # --------------------------------------------------------------- mutators
    # Called by commands only; each emits its event after the change.
    def _insert_node(self, node: Node, index: int | None = None) -> None:
        if node.id in self._nodes:
            raise GraphError(f"A node with id '{node.id}' is already in the graph.", node.id)
        if node.name in self.names():
            raise NameConflictError(
                f"Another layer is already named '{node.name}'; names must be unique.", node.id
            )
        if index is None or index >= len(self._nodes):
            self._nodes[node.id] = node
        else:
            items = list(self._nodes.items())
            items.insert(index, (node.id, node))
            self._nodes = dict(items)
        if node.subgraph is not None:
            node.subgraph._parent = (self, node.id)
        self.events.node_added.emit(node.id)
        self._notify_parent()

    def _delete_node(self, node_id: str) -> Node:
        if self._in.get(node_id) or self._out.get(node_id):
            raise GraphError("Remove a node's connections before the node.", node_id)
        node = self._nodes.pop(node_id)
        self._in.pop(node_id, None)
        self._out.pop(node_id, None)
        self.events.node_removed.emit(node_id)
        self._notify_parent()
        return node

    def _insert_edge(self, edge: Edge, index: int | None = None) -> None:
        if edge.id in self._edges:
            raise GraphError(f"A connection with id '{edge.id}' already exists.")
        self.node(edge.src), self.node(edge.dst)
        if index is None or index >= len(self._edges):
            self._edges[edge.id] = edge
            self._in.setdefault(edge.dst, []).append(edge.id)
            self._out.setdefault(edge.src, []).append(edge.id)
        else:
            items = list(self._edges.items())
            items.insert(index, (edge.id, edge))
            self._edges = dict(items)
            for nid in (edge.src, edge.dst):
                self._reindex(nid)
        self.events.edge_added.emit(edge.id)
        self._notify_parent()

    def _delete_edge(self, edge_id: str) -> Edge:
        edge = self._edges.pop(edge_id)
        self._in[edge.dst].remove(edge_id)
        self._out[edge.src].remove(edge_id)
        self.events.edge_removed.emit(edge_id)
        self._notify_parent()
        return edge

    def _reindex(self, node_id: str) -> None:
        self._in[node_id] = [i for i, e in self._edges.items() if e.dst == node_id]
        self._out[node_id] = [i for i, e in self._edges.items() if e.src == node_id]

    def _set_param(self, node_id: str, name: str, value: Any) -> None:
        """Set (or with the ``_UNSET`` marker, remove) one parameter."""
        node = self.node(node_id)
        if value is UNSET:
            node._params.pop(name, None)
        else:
            node._params[name] = copy.deepcopy(value)
        self.events.node_changed.emit(node_id, "params")
        self._notify_parent()

    def _set_params(self, node_id: str, params: dict[str, Any]) -> None:
        node = self.node(node_id)
        node._params = copy.deepcopy(params)
        self.events.node_changed.emit(node_id, "params")
        self._notify_parent()

    def _set_call_option(self, node_id: str, name: str, value: Any) -> None:
        node = self.node(node_id)
        if value is UNSET:
            node._call_options.pop(name, None)
        else:
            node._call_options[name] = value
        self.events.node_changed.emit(node_id, "call_options")
        self._notify_parent()

    def _set_name(self, node_id: str, name: str) -> None:
        node = self.node(node_id)
        if any(n.name == name for n in self._nodes.values() if n.id != node_id):
            raise NameConflictError(
                f"Another layer is already named '{name}'; names must be unique.", node_id
            )
        node._name = name
        if node.subgraph is not None:
            node.subgraph.name = name
        self.events.node_changed.emit(node_id, "name")
        self._notify_parent()

    def _set_shared_with(self, node_id: str, owner: str | None) -> None:
        self.node(node_id).shared_with = owner
        self.events.node_changed.emit(node_id, "shared_with")
        self._notify_parent()

    def _set_position(self, node_id: str, position: tuple[float, float]) -> None:
        self.node(node_id)._position = (float(position[0]), float(position[1]))
        self.events.node_moved.emit(node_id)

    def _rename_graph(self, name: str) -> None:
        self.name = name
        self.events.renamed.emit(name)

    def _notify_parent(self) -> None:
        if self._parent is not None:
            parent, block_id = self._parent
            if block_id in parent._nodes:
                parent.events.node_changed.emit(block_id, "subgraph")
                parent._notify_parent()

    # ---------------------------------------------------------- serialization
    def to_dict(self) -> dict[str, Any]:
        """The graph as JSON-safe data (positions are view data, see ``positions``)."""
        data: dict[str, Any] = {"name": self.name}
        if self.style != "functional":
            data["style"] = self.style
        data["nodes"] = [n.to_dict() for n in self._nodes.values()]
        data["edges"] = [e.to_dict() for e in self._edges.values()]
        return data

    def sequential_chain(self) -> list[Node] | None:
        """The layer nodes in order when the graph is a ``keras.Sequential`` model.

        That is a graph of style ``"sequential"`` that is still a plain chain: one input,
        each layer fed by the one before on its only port, one output, no shared layers
        and no per-call options. Otherwise ``None`` (the graph is written as Functional).
        """
        inputs, outputs = self.input_nodes(), self.output_nodes()
        if self.style != "sequential" or len(inputs) != 1 or len(outputs) != 1:
            return None
        chain, current = [], inputs[0].id
        while True:
            edges = self.edges_from(current)
            if len(edges) != 1 or edges[0].src_port != 0:
                return None
            nxt = self.node(edges[0].dst)
            if len(self.edges_into(nxt.id)) != 1:
                return None
            if nxt.kind == "output":
                break
            if nxt.kind != "layer" or nxt.shared_with or nxt.call_options or self.sharers(nxt.id):
                return None
            if (nxt.class_name or "").startswith("ops."):
                return None
            chain.append(nxt)
            current = nxt.id
        return chain if chain and len(chain) + 2 == len(self._nodes) else None

    def positions(self) -> dict[str, list[float]]:
        """Node positions of this graph and nested blocks, keyed by node id."""
        return {node.id: list(node.position) for _, node in self.walk()}

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], positions: dict[str, Any] | None = None
    ) -> Graph:
        """Build a graph from ``to_dict()`` data that ``kbuilder.graph.project`` validated."""
        graph = cls(data.get("name", "model"), data.get("style", "functional"))
        positions = positions or {}
        for nd in data.get("nodes", []):
            sub = None
            if nd["kind"] == "block":
                sub = cls.from_dict(nd.get("graph", {"name": nd["name"]}), positions)
            pos = positions.get(nd["id"], (0.0, 0.0))
            node = Node(
                nd["kind"], nd["name"], nd.get("class_name"), nd.get("params"),
                id=nd["id"], shared_with=nd.get("shared_with"), subgraph=sub,
                position=(pos[0], pos[1]), call_options=nd.get("call_options"),
            )
            graph._nodes[node.id] = node
            if sub is not None:
                sub._parent = (graph, node.id)
        for ed in data.get("edges", []):
            edge = Edge(ed["id"], ed["src"], int(ed["src_port"]), ed["dst"], ed["dst_port"])
            graph._edges[edge.id] = edge
            graph._in.setdefault(edge.dst, []).append(edge.id)
            graph._out.setdefault(edge.src, []).append(edge.id)
        return graph

    def clone_node(self, node_id: str, name: str | None = None) -> Node:
        """An independent copy of a node (same id; nested blocks copied too)."""
        node = self.node(node_id)
        data = node.to_dict()
        if name is not None:
            data["name"] = name
        positions = node.subgraph.positions() if node.subgraph is not None else {}
        positions[node.id] = list(node.position)
        return Graph.from_dict({"nodes": [data], "edges": []}, positions).node(node.id)

    def copy(self) -> Graph:
        return Graph.from_dict(self.to_dict(), self.positions())


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"

    def __copy__(self) -> _Unset:
        return self

    def __deepcopy__(self, memo: dict) -> _Unset:
        return self  # a marker: copies must stay identical to it


# Marks "parameter not set" (use the layer's default) in commands.
UNSET: Any = _Unset()


def node_ids(nodes: Iterable[Node | str]) -> list[str]:
    return [n if isinstance(n, str) else n.id for n in nodes]


def stable_topological_order(ids: list[str], successors: dict[str, list[str]]) -> list[str]:
    """Kahn's algorithm: ``ids`` so that each comes before its ``successors``; ties keep the
    order of ``ids``, so an unchanged graph always lists its nodes the same way.

    The one topological sort of kbuilder (``Graph.topological_order``, and
    ``shapes.order_with_sharing`` with its extra owner-before-sharer edges). Hand-written
    rather than networkx's ``lexicographical_topological_sort``: importing networkx costs
    about 85 ms on the window's start-up path, this sort well under a millisecond.

    Returns:
        The ordered ids; shorter than ``ids`` when there is a cycle (the ids on and after
        it are left out), which the caller reports.
    """
    rank = {nid: i for i, nid in enumerate(ids)}
    indegree = dict.fromkeys(ids, 0)
    for nid in ids:
        for dst in successors.get(nid, ()):
            indegree[dst] += 1
    ready = [(rank[nid], nid) for nid, degree in indegree.items() if degree == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, nid = heapq.heappop(ready)
        order.append(nid)
        for dst in successors.get(nid, ()):
            indegree[dst] -= 1
            if indegree[dst] == 0:
                heapq.heappush(ready, (rank[dst], dst))
    return order

"""Adding, removing and moving nodes, and connecting them: the graph's basic edits, and
``insert_after`` (a layer put after a node, taking over its connections)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from kbuilder.graph.commands.history import Command, DeferredCommand, MacroCommand
from kbuilder.graph.commands.params import validate_input_param
from kbuilder.graph.errors import (
    GraphError,
    ParamError,
    SharedLayerError,
)
from kbuilder.graph.layout import room_below
from kbuilder.graph.model import (
    DEFAULT_PORT,
    Edge,
    Graph,
    Node,
    new_id,
    to_snake_case,
)


class AddNodeCommand(Command):
    """Add ``node`` (with a unique name) to ``graph``."""

    def __init__(self, graph: Graph, node: Node, index: int | None = None):
        self.graph, self.node, self.index = graph, node, index
        self.text = f"add {node.name}"

    def do(self) -> None:
        # Checked at do-time: in a macro, earlier steps may free the name or add the owner.
        if self.node.shared_with:
            owner = self.graph.node(self.node.shared_with)
            if owner.kind != "layer" or owner.shared_with:
                raise SharedLayerError(
                    f"'{self.node.name}' can only share the layer of a layer node that "
                    "owns one.",
                    self.node.id,
                )
        self.graph._insert_node(self.node, self.index)

    def undo(self) -> None:
        self.graph._delete_node(self.node.id)


def new_layer_node(
    graph: Graph,
    class_name: str,
    params: dict[str, Any] | None = None,
    name: str | None = None,
    position: tuple[float, float] = (0.0, 0.0),
) -> Node:
    """A layer node with the catalog's defaults and a fresh, unique Keras-style name."""
    from kbuilder.graph import catalog

    spec = catalog.get(class_name)
    values = {**required_placeholders(spec), **(params or {})}
    for pname, value in values.items():
        message = catalog.validate_param(spec, pname, value)
        if message:
            raise ParamError(message, None, pname)
    base = name or _default_name(spec.class_name)
    return Node("layer", graph.unique_name(base), spec.class_name, values, position=position)


def _default_name(class_name: str) -> str:
    """Keras's name for a new layer; a pretrained network's model name, as Keras gives it."""
    from kbuilder.graph.backbones import is_backbone_class, of_class

    if is_backbone_class(class_name):  # so that its .keras file imports as this node again
        return of_class(class_name).keras_name
    return to_snake_case(class_name)


def required_placeholders(spec: Any) -> dict[str, Any]:
    """Values for the parameters a layer cannot be made without (the catalog's)."""
    from kbuilder.graph import catalog

    defaults = catalog.default_params(spec)
    return {p.name: defaults[p.name] for p in spec.params if p.required}


def new_input_node(
    graph: Graph,
    shape: Sequence[int | None],
    dtype: str = "float32",
    name: str = "input",
    position: tuple[float, float] = (0.0, 0.0),
) -> Node:
    params = {"shape": list(shape), "dtype": dtype}
    message = validate_input_param("shape", params["shape"]) or validate_input_param(
        "dtype", dtype
    )
    if message:
        raise ParamError(message)
    return Node("input", graph.unique_name(name), params=params, position=position)


def new_output_node(
    graph: Graph, name: str = "output", position: tuple[float, float] = (0.0, 0.0)
) -> Node:
    return Node("output", graph.unique_name(name), position=position)


def new_shared_node(
    graph: Graph, owner_id: str, position: tuple[float, float] | None = None
) -> Node:
    """A node that calls the layer of ``owner_id`` again, sharing its weights."""
    owner = graph.layer_owner(owner_id)
    if owner.kind != "layer":
        raise SharedLayerError(f"'{owner.name}' is not a layer and cannot be shared.", owner_id)
    from kbuilder.graph.catalog.ops import is_operation

    if is_operation(owner.class_name):
        raise SharedLayerError(
            f"'{owner.name}' is an operation ({owner.class_name}), which has no weights to "
            "share; add another operation node instead.", owner_id,
        )
    x, y = owner.position
    return Node(
        "layer",
        graph.unique_name(f"{owner.name}_shared"),
        owner.class_name,
        shared_with=owner.id,
        position=position or (x + 40.0, y + 160.0),
    )


class RemoveNodesCommand(MacroCommand):
    """Remove nodes with their connections.

    Removing a layer that other nodes share hands the layer (and its parameters) to the
    first remaining sharer, so the other uses keep working.
    """

    def __init__(self, graph: Graph, node_ids: Iterable[str]):
        ids = list(dict.fromkeys(node_ids))
        for nid in ids:
            _check_not_a_connected_block_port(graph, graph.node(nid))
        super().__init__(
            f"delete {graph.node(ids[0]).name}" if len(ids) == 1 else f"delete {len(ids)} nodes"
        )
        self.graph, self.ids = graph, ids

    def do(self) -> None:
        # Children depend on the graph at do-time, so build them once, on first do.
        if not self.children:
            self.children = self._plan()
        super().do()

    def _plan(self) -> list[Command]:
        graph, removing = self.graph, set(self.ids)
        steps: list[Command] = []
        for nid in self.ids:
            remaining = [s for s in graph.sharers(nid) if s.id not in removing]
            if remaining:
                heir = remaining[0]
                steps.append(_SetOwnerCommand(graph, heir.id, None, graph.node(nid).params))
                for other in remaining[1:]:
                    steps.append(_SetOwnerCommand(graph, other.id, heir.id))
        edges = {e.id for nid in self.ids for e in graph.edges_into(nid) + graph.edges_from(nid)}
        steps.extend(RemoveEdgeCommand(graph, eid) for eid in graph_edge_order(graph, edges))
        steps.extend(_RemoveNodeCommand(graph, nid) for nid in self.ids)
        return steps


def _check_not_a_connected_block_port(graph: Graph, node: Node) -> None:
    """Inside a block, inputs and outputs are the block's ports; keep the outside valid."""
    if graph.parent is None or node.kind not in ("input", "output"):
        return
    parent, block_id = graph.parent
    block = parent.node(block_id)
    if node.kind == "input":
        used = bool(parent.edges_into(block_id, node.id))
    else:
        index = [n.id for n in graph.output_nodes()].index(node.id)
        used = any(e.src_port >= index for e in parent.edges_from(block_id))
    if used:
        raise GraphError(
            f"'{node.name}' is a port of block '{block.name}' that is connected outside the "
            "block; disconnect it there first.",
            node.id,
        )


def graph_edge_order(graph: Graph, edge_ids: set[str]) -> list[str]:
    """``edge_ids`` from last to first in graph order, so undo restores the order."""
    return [e.id for e in reversed(graph.edges) if e.id in edge_ids]


class _RemoveNodeCommand(Command):
    def __init__(self, graph: Graph, node_id: str):
        self.graph, self.node_id = graph, node_id

    def do(self) -> None:
        self.index = self.graph.node_index(self.node_id)
        self.node = self.graph._delete_node(self.node_id)

    def undo(self) -> None:
        self.graph._insert_node(self.node, self.index)


class RemoveEdgeCommand(Command):
    def __init__(self, graph: Graph, edge_id: str):
        self.graph, self.edge_id = graph, edge_id

    def do(self) -> None:
        self.index = self.graph.edge_index(self.edge_id)
        self.edge = self.graph._delete_edge(self.edge_id)

    def undo(self) -> None:
        self.graph._insert_edge(self.edge, self.index)


class _SetOwnerCommand(Command):
    """Point a sharer at another owner, or (``owner=None``) make it own ``params``."""

    def __init__(
        self, graph: Graph, node_id: str, owner: str | None, params: dict | None = None
    ):
        self.graph, self.node_id, self.owner, self.params = graph, node_id, owner, params

    def do(self) -> None:
        node = self.graph.node(self.node_id)
        self.old_owner, self.old_params = node.shared_with, node.params
        self.graph._set_shared_with(self.node_id, self.owner)
        if self.params is not None:
            self.graph._set_params(self.node_id, self.params)

    def undo(self) -> None:
        self.graph._set_params(self.node_id, self.old_params)
        self.graph._set_shared_with(self.node_id, self.old_owner)


class MoveNodesCommand(Command):
    """Move nodes to new positions (one command per drag, pushed on mouse release)."""

    def __init__(self, graph: Graph, positions: dict[str, tuple[float, float]]):
        self.graph = graph
        self.new = {nid: (float(p[0]), float(p[1])) for nid, p in positions.items()}
        self.old = {nid: graph.node(nid).position for nid in self.new}
        self.text = "move" if len(self.new) != 1 else f"move {graph.node(next(iter(self.new))).name}"

    def do(self) -> None:
        for nid, pos in self.new.items():
            self.graph._set_position(nid, pos)

    def undo(self) -> None:
        for nid, pos in self.old.items():
            self.graph._set_position(nid, pos)


class ConnectCommand(Command):
    """Connect an output to an input port; a taken single-input port is replaced."""

    def __init__(
        self, graph: Graph, src: str, src_port: int, dst: str, dst_port: str = DEFAULT_PORT
    ):
        graph.check_connection(src, src_port, dst, dst_port)
        self.graph = graph
        self.edge = Edge(new_id(), src, int(src_port), dst, dst_port)
        self.text = f"connect {graph.node(src).name} to {graph.node(dst).name}"
        self.replaced: list[tuple[int, Edge]] = []

    def do(self) -> None:
        port = next(p for p in self.graph.input_ports(self.edge.dst) if p.name == self.edge.dst_port)
        self.replaced = []
        if not port.variadic:
            for old in self.graph.edges_into(self.edge.dst, self.edge.dst_port):
                self.replaced.append((self.graph.edge_index(old.id), old))
                self.graph._delete_edge(old.id)
        self.graph._insert_edge(self.edge)

    def undo(self) -> None:
        self.graph._delete_edge(self.edge.id)
        for index, old in reversed(self.replaced):
            self.graph._insert_edge(old, index)


class DisconnectCommand(RemoveEdgeCommand):
    def __init__(self, graph: Graph, edge_id: str):
        edge = graph.edge(edge_id)
        super().__init__(graph, edge_id)
        self.text = f"disconnect {graph.node(edge.src).name} from {graph.node(edge.dst).name}"


class RewireCommand(Command):
    """Make a connection start at another node, keeping its place among the target port's
    connections (their order matters for Concatenate and the like)."""

    def __init__(self, graph: Graph, edge_id: str, new_src: str):
        self.graph, self.old = graph, graph.edge(edge_id)
        self.new = Edge(new_id(), new_src, 0, self.old.dst, self.old.dst_port)
        self.text = "reconnect"

    def do(self) -> None:
        index = self.graph.edge_index(self.old.id)
        self.graph._delete_edge(self.old.id)
        self.graph._insert_edge(self.new, index)

    def undo(self) -> None:
        index = self.graph.edge_index(self.new.id)
        self.graph._delete_edge(self.new.id)
        self.graph._insert_edge(self.old, index)


def insert_after(graph: Graph, node_id: str, class_name: str, params: dict[str, Any],
                  times: int = 1, name: str | None = None) -> Command:
    """A command adding a layer right after ``node_id``, taking over all its connections;
    the nodes below move down to make room for it.

    Built when done (``DeferredCommand``), so several insertions after one node in one fix each
    see the graph as the previous one left it: the last one done sits right after it.
    ``times``: connections from ``node_id`` to the new layer (3 to repeat a channel).
    """
    source = graph.node(node_id)

    def build() -> Command:
        position, moves = room_below(graph, node_id)
        layer = new_layer_node(graph, class_name, params, position=position,
                               name=graph.unique_name(name) if name else None)
        steps: list[Command] = [MoveNodesCommand(graph, moves)] if moves else []
        steps.append(AddNodeCommand(graph, layer))
        steps += [RewireCommand(graph, e.id, layer.id) for e in graph.edges_from(node_id)]
        steps += [DeferredCommand(lambda: ConnectCommand(graph, node_id, 0, layer.id))
                  for _ in range(times)]
        return MacroCommand(f"add {class_name} after {source.name}", steps)

    command = DeferredCommand(build)
    command.text = f"add {class_name} after {source.name}"
    return command

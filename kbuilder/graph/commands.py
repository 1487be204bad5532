"""Every edit of a graph is a command with ``do`` and ``undo``; ``History`` keeps them.

Views never change a graph directly: they build a command and ``history.push`` it, so every
change can be undone and "modified" is simply "the history is not at its clean point".
Compound edits (remove with connections, group, paste) are ``MacroCommand``s of the simple
ones, so their undo is the simple ones' undo in reverse.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import Any

from kbuilder.graph.errors import (
    GraphError,
    HistoryError,
    NameConflictError,
    ParamError,
    SharedLayerError,
)
from kbuilder.graph.events import EventGroup
from kbuilder.graph.layout import room_below
from kbuilder.graph.model import (
    DEFAULT_PORT,
    UNSET,
    Edge,
    Graph,
    Node,
    new_id,
    to_snake_case,
)
from kbuilder.graph.text import plural


class Command:
    """An undoable edit. Subclasses set ``text`` (shown as "Undo <text>")."""

    text = "edit"

    def do(self) -> None:
        raise NotImplementedError

    def undo(self) -> None:
        raise NotImplementedError


class MacroCommand(Command):
    """Several commands done in order and undone in reverse order, as one edit.

    Children are constructed before ``do`` but may be built lazily through ``build``,
    for edits whose later steps depend on the effect of the earlier ones.
    """

    def __init__(self, text: str, children: Sequence[Command] = ()):
        self.text = text
        self.children = list(children)

    def do(self) -> None:
        done: list[Command] = []
        try:
            for child in self.children:
                child.do()
                done.append(child)
        except Exception:
            for child in reversed(done):
                child.undo()
            raise

    def undo(self) -> None:
        for child in reversed(self.children):
            child.undo()


class History:
    """The undo/redo stack of one project.

    Events: ``changed()`` after every push, undo, redo, clear or clean-point change.
    """

    def __init__(self, limit: int = 1000):
        self._done: list[Command] = []
        self._undone: list[Command] = []
        self._clean_index: int | None = 0
        self._busy = False
        self._limit = limit
        self.events = EventGroup("changed")

    def push(self, command: Command) -> Command:
        """Do ``command`` and record it. If ``do`` raises, nothing is recorded."""
        with self._guard("push"):
            command.do()
        self._done.append(command)
        self._undone.clear()
        if self._clean_index is not None and self._clean_index > len(self._done) - 1:
            self._clean_index = None  # the clean state can no longer be reached
        if len(self._done) > self._limit:
            self._done.pop(0)
            self._clean_index = None if self._clean_index in (None, 0) else self._clean_index - 1
        self.events.changed.emit()
        return command

    def undo(self) -> None:
        if not self._done:
            raise HistoryError("There is nothing to undo.")
        with self._guard("undo"):
            command = self._done[-1]
            command.undo()
        self._undone.append(self._done.pop())
        self.events.changed.emit()

    def redo(self) -> None:
        if not self._undone:
            raise HistoryError("There is nothing to redo.")
        with self._guard("redo"):
            command = self._undone[-1]
            command.do()
        self._done.append(self._undone.pop())
        self.events.changed.emit()

    @property
    def can_undo(self) -> bool:
        return bool(self._done) and not self._busy

    @property
    def can_redo(self) -> bool:
        return bool(self._undone) and not self._busy

    @property
    def undo_text(self) -> str:
        return self._done[-1].text if self._done else ""

    @property
    def redo_text(self) -> str:
        return self._undone[-1].text if self._undone else ""

    @property
    def is_clean(self) -> bool:
        return self._clean_index == len(self._done)

    def mark_clean(self) -> None:
        self._clean_index = len(self._done)
        self.events.changed.emit()

    def clear(self) -> None:
        self._done.clear()
        self._undone.clear()
        self._clean_index = 0
        self.events.changed.emit()

    def _guard(self, what: str) -> _Guard:
        if self._busy:
            # A view reacting to an event must not start another edit mid-edit (Ryven).
            raise HistoryError(f"Cannot {what} while another edit is in progress.")
        return _Guard(self)


class _Guard:
    def __init__(self, history: History):
        self.history = history

    def __enter__(self) -> None:
        self.history._busy = True

    def __exit__(self, *exc: object) -> None:
        self.history._busy = False


# --------------------------------------------------------------------------- nodes
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
        steps.extend(_RemoveEdgeCommand(graph, eid) for eid in graph_edge_order(graph, edges))
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


class _RemoveEdgeCommand(Command):
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


# --------------------------------------------------------------------------- edges
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


class DisconnectCommand(_RemoveEdgeCommand):
    def __init__(self, graph: Graph, edge_id: str):
        edge = graph.edge(edge_id)
        super().__init__(graph, edge_id)
        self.text = f"disconnect {graph.node(edge.src).name} from {graph.node(edge.dst).name}"


# ----------------------------------------------------------------------- parameters
DTYPES = (
    "float32", "float16", "bfloat16", "float64", "int8", "int16", "int32", "int64",
    "uint8", "bool", "string",
)


def validate_input_param(name: str, value: Any) -> str | None:
    """Check a parameter of an Input node; ``None`` when valid."""
    if name == "shape":
        ok = isinstance(value, list | tuple) and all(
            d is None or (isinstance(d, int) and not isinstance(d, bool) and d > 0)
            for d in value
        )
        if not ok:
            return (
                "Received an invalid value for `shape`, expected a list of positive integers "
                f"or null for a variable size (batch size excluded). Received: shape={value!r}"
            )
        return None
    if name == "dtype":
        if value not in DTYPES:
            return (
                f"Received an invalid value for `dtype`, expected one of {', '.join(DTYPES)}. "
                f"Received: dtype={value!r}"
            )
        return None
    if name == "sparse":
        return None if isinstance(value, bool) else "`sparse` must be true or false."
    return f"An Input has no parameter `{name}`; it has `shape` and `dtype`."


class SetParamCommand(Command):
    """Set one parameter (``UNSET`` restores the default).

    A node sharing another node's layer edits the owner: it is the same layer.

    Raises:
        ParamError: the value is not allowed; names node and parameter.
    """

    def __init__(self, graph: Graph, node_id: str, name: str, value: Any):
        node = graph.node(node_id)
        target = graph.layer_owner(node_id)
        if node.kind in ("output", "block"):
            raise ParamError(f"'{node.name}' has no parameters.", node_id, name)
        if value is not UNSET:
            message = _validate(graph, target, name, value)
            if message:
                raise ParamError(f"'{node.name}': {message}", node_id, name)
        elif target.kind == "layer" and _is_required(target, name):
            raise ParamError(
                f"'{node.name}': `{name}` is required and has no default to go back to.",
                node_id, name,
            )
        self.graph, self.node_id, self.name = graph, target.id, name
        self.value = copy.deepcopy(value)
        self.text = f"set {name} of {node.name}"

    def do(self) -> None:
        node = self.graph.node(self.node_id)
        self.old = node.param(self.name, UNSET) if self.name in node._params else UNSET
        self.graph._set_param(self.node_id, self.name, self.value)

    def undo(self) -> None:
        self.graph._set_param(self.node_id, self.name, self.old)


def _is_required(node: Node, name: str) -> bool:
    from kbuilder.graph import catalog

    spec = catalog.get(node.class_name or "")
    return any(p.name == name and p.required for p in spec.params)


def _validate(graph: Graph, node: Node, name: str, value: Any) -> str | None:
    if node.kind == "input":
        return validate_input_param(name, value)
    from kbuilder.graph import catalog

    return catalog.validate_param(catalog.get(node.class_name or ""), name, value)


class SetCallOptionCommand(Command):
    """Fix (or with ``UNSET`` drop) a non-tensor argument of one layer call."""

    def __init__(self, graph: Graph, node_id: str, name: str, value: Any):
        from kbuilder.graph import catalog

        node = graph.node(node_id)
        if node.kind != "layer":
            raise ParamError(f"'{node.name}' is not a layer call.", node_id, name)
        if value is not UNSET:
            spec = catalog.get(graph.layer_owner(node_id).class_name or "")
            message = catalog.validate_call_option(spec, name, value)
            if message:
                raise ParamError(f"'{node.name}': {message}", node_id, name)
        self.graph, self.node_id, self.name, self.value = graph, node_id, name, value
        self.text = f"set {name} of {node.name}"

    def do(self) -> None:
        self.old = self.graph.node(self.node_id).call_options.get(self.name, UNSET)
        self.graph._set_call_option(self.node_id, self.name, self.value)

    def undo(self) -> None:
        self.graph._set_call_option(self.node_id, self.name, self.old)


class RenameNodeCommand(Command):
    """Rename a node; the name becomes the Keras layer name, so it must be unique."""

    def __init__(self, graph: Graph, node_id: str, name: str):
        node = graph.node(node_id)
        message = validate_name(name)
        if message:
            raise ParamError(f"'{node.name}': {message}", node_id, "name")
        if any(n.name == name for n in graph.nodes if n.id != node_id):
            raise NameConflictError(
                f"Another layer is already named '{name}'; names must be unique.", node_id
            )
        self.graph, self.node_id, self.name, self.old = graph, node_id, name, node.name
        self.text = f"rename {node.name} to {name}"

    def do(self) -> None:
        self.graph._set_name(self.node_id, self.name)

    def undo(self) -> None:
        self.graph._set_name(self.node_id, self.old)


def validate_name(name: Any) -> str | None:
    if not isinstance(name, str) or not name.strip():
        return "A name cannot be empty."
    if "/" in name:
        # Keras uses "/" to build weight paths and refuses it in layer names.
        return f"A name cannot contain '/'. Received: name={name!r}"
    return None


# --------------------------------------------------------------------- group / ungroup
class GroupCommand(MacroCommand):
    """Turn the selected nodes into a block (a nested model) wired as before."""

    def __init__(self, graph: Graph, node_ids: Iterable[str], name: str = "block"):
        ids = list(dict.fromkeys(node_ids))
        selected = set(ids)
        if not ids:
            raise GraphError("Select the layers to group first.")
        for nid in ids:
            node = graph.node(nid)
            if node.kind in ("input", "output"):
                raise GraphError(
                    f"'{node.name}' is a model {node.kind}; only layers and blocks can be "
                    "grouped.",
                    nid,
                )
            related = {node.shared_with} | {s.id for s in graph.sharers(nid)}
            related.discard(None)
            if not related <= selected:
                raise SharedLayerError(
                    f"'{node.name}' shares its layer with nodes outside the selection; "
                    "select every use of a shared layer to group it.",
                    nid,
                )
        order = [nid for nid in graph.topological_order() if nid in selected]
        # The block and its graph share one name, unique in the graph (a rename keeps them
        # equal, so an undo must find them equal too).
        name = graph.unique_name(name)
        sub = Graph(name)
        # Each distinct outside source feeding the selection becomes an inner input.
        outer_in: list[tuple[str, int]] = []
        for nid in order:
            for e in graph.edges_into(nid):
                if e.src not in selected and (e.src, e.src_port) not in outer_in:
                    outer_in.append((e.src, e.src_port))
        inner: dict[tuple[str, int], str] = {}
        for src, port in outer_in:
            inp = Node("input", sub.unique_name(f"{graph.node(src).name}_in"))
            sub._insert_node(inp)
            inner[(src, port)] = inp.id
        for nid in order:
            sub._insert_node(graph.clone_node(nid))
        for e in graph.edges:
            if e.dst in selected:
                if e.src in selected:
                    sub._insert_edge(Edge(new_id(), e.src, e.src_port, e.dst, e.dst_port))
                else:
                    sub._insert_edge(
                        Edge(new_id(), inner[(e.src, e.src_port)], 0, e.dst, e.dst_port)
                    )
        # Each distinct selected output used outside becomes an inner output.
        outputs: list[tuple[str, int]] = []
        for e in graph.edges:
            if e.src in selected and e.dst not in selected and (e.src, e.src_port) not in outputs:
                outputs.append((e.src, e.src_port))
        for src, port in outputs:
            out = Node("output", sub.unique_name(f"{graph.node(src).name}_out"))
            sub._insert_node(out)
            sub._insert_edge(Edge(new_id(), src, port, out.id, DEFAULT_PORT))
        block = Node("block", name, subgraph=sub)
        xs = [graph.node(n).position for n in ids]
        block._position = (sum(p[0] for p in xs) / len(xs), sum(p[1] for p in xs) / len(xs))
        self.block_id = block.id
        children: list[Command] = [
            RemoveNodesCommand(graph, ids),
            AddNodeCommand(graph, block),
        ]
        for src, port in outer_in:
            children.append(_LazyConnect(graph, src, port, block.id, inner[(src, port)]))
        for e in graph.edges:
            if e.src in selected and e.dst not in selected:
                k = outputs.index((e.src, e.src_port))
                children.append(_LazyConnect(graph, block.id, k, e.dst, e.dst_port,
                                             _slot(graph, e)))
        super().__init__(f"group {plural(len(ids), 'node')}", children)


class _LazyConnect(Command):
    """A connection checked when done (its ends may not exist before earlier steps).

    ``slot``: its place among the connections into its port, for a connection that
    replaces one (the inputs of Concatenate, Add and the like keep their order); ``None``
    for the last place.
    """

    def __init__(self, graph: Graph, src: str, src_port: int, dst: str, dst_port: str,
                 slot: int | None = None):
        self.graph = graph
        self.edge = Edge(new_id(), src, src_port, dst, dst_port)
        self.slot = slot

    def do(self) -> None:
        siblings = self.graph.edges_into(self.edge.dst, self.edge.dst_port)
        if self.slot is not None and self.slot < len(siblings):
            index = self.graph.edge_index(siblings[self.slot].id)
            self.graph._insert_edge(self.edge, index)
        else:
            self.graph._insert_edge(self.edge)

    def undo(self) -> None:
        self.graph._delete_edge(self.edge.id)


def _slot(graph: Graph, edge: Edge) -> int:
    """The place of ``edge`` among the connections into its port."""
    return [e.id for e in graph.edges_into(edge.dst, edge.dst_port)].index(edge.id)


class UngroupCommand(MacroCommand):
    """Replace a block by its layers, wired as they were through the block's ports."""

    def __init__(self, graph: Graph, block_id: str):
        block = graph.node(block_id)
        if block.kind != "block" or block.subgraph is None:
            raise GraphError(f"'{block.name}' is not a block.", block_id)
        sub = block.subgraph
        taken = {n.name for n in graph.nodes if n.id != block_id}
        children: list[Command] = [RemoveNodesCommand(graph, [block_id])]
        # Where each inner input's data comes from outside, and where each output goes.
        feeds = {e.dst_port: (e.src, e.src_port) for e in graph.edges_into(block_id)}
        inputs = {n.id for n in sub.input_nodes()}
        outputs = sub.output_refs()
        moved: dict[str, Node] = {}
        for node in sub.nodes:
            if node.kind in ("input", "output"):
                continue
            name = _free_name(node.name, taken)
            taken.add(name)
            clone = sub.clone_node(node.id, name)
            moved[node.id] = clone
            children.append(AddNodeCommand(graph, clone))
        for e in sub.edges:
            if e.dst not in moved:
                continue
            if e.src in inputs:
                if e.src not in feeds:
                    continue  # an unconnected block input stays unconnected
                src, port = feeds[e.src]
            else:
                src, port = e.src, e.src_port
            children.append(_LazyConnect(graph, src, port, e.dst, e.dst_port))
        for e in graph.edges_from(block_id):
            src, port = outputs[e.src_port]
            if src in inputs:
                if src not in feeds:
                    continue
                src, port = feeds[src]
            children.append(_LazyConnect(graph, src, port, e.dst, e.dst_port, _slot(graph, e)))
        super().__init__(f"ungroup {block.name}", children)


# ------------------------------------------------------------------------ clipboard
def copy_fragment(graph: Graph, node_ids: Iterable[str]) -> dict[str, Any]:
    """The selected nodes and the connections among them, as JSON-safe data."""
    ids = set(node_ids)
    nodes = []
    for node in graph.nodes:
        if node.id not in ids:
            continue
        data = node.to_dict()
        if node.shared_with and node.shared_with not in ids:
            # Pasted without its owner, a shared use becomes an independent layer.
            data.pop("shared_with")
            data["params"] = graph.node(node.shared_with).params
        data["position"] = list(node.position)
        nodes.append(data)
    edges = [e.to_dict() for e in graph.edges if e.src in ids and e.dst in ids]
    return {"kind": "kbuilder-fragment", "version": 1, "nodes": nodes, "edges": edges}


def paste_command(
    graph: Graph, fragment: dict[str, Any], offset: tuple[float, float] = (40.0, 40.0)
) -> MacroCommand:
    """Add a copied fragment with fresh ids and names; ``command.node_ids`` lists them."""
    id_map = {nd["id"]: new_id() for nd in fragment["nodes"]}
    taken = graph.names()
    children: list[Command] = []
    added: list[str] = []
    for nd in fragment["nodes"]:
        name = _free_name(nd["name"], taken)
        taken.add(name)
        sub = None
        if nd["kind"] == "block":
            sub = Graph.from_dict(_fresh_ids(nd["graph"]))
        x, y = nd.get("position", (0.0, 0.0))
        node = Node(
            nd["kind"], name, nd.get("class_name"), nd.get("params"), id=id_map[nd["id"]],
            shared_with=id_map.get(nd.get("shared_with") or ""), subgraph=sub,
            position=(x + offset[0], y + offset[1]),
        )
        added.append(node.id)
        children.append(AddNodeCommand(graph, node))
    for ed in fragment["edges"]:
        children.append(
            _LazyConnect(graph, id_map[ed["src"]], ed["src_port"], id_map[ed["dst"]],
                         id_map.get(ed["dst_port"], ed["dst_port"]))
        )
    macro = MacroCommand(f"paste {plural(len(added), 'node')}", children)
    macro.node_ids = added  # type: ignore[attr-defined]
    return macro


def _free_name(name: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    i = 1
    while f"{name}_{i}" in taken:
        i += 1
    return f"{name}_{i}"


def _fresh_ids(data: dict[str, Any]) -> dict[str, Any]:
    """A subgraph dict with new node and edge ids (ports named after inner inputs follow)."""
    mapping = {nd["id"]: new_id() for nd in data.get("nodes", [])}
    nodes = []
    for nd in data.get("nodes", []):
        nd = dict(nd, id=mapping[nd["id"]])
        if nd.get("shared_with"):
            nd["shared_with"] = mapping.get(nd["shared_with"], nd["shared_with"])
        if nd["kind"] == "block":
            nd["graph"] = _fresh_ids(nd["graph"])
        nodes.append(nd)
    edges = [
        dict(ed, id=new_id(), src=mapping[ed["src"]], dst=mapping[ed["dst"]],
             dst_port=mapping.get(ed["dst_port"], ed["dst_port"]))
        for ed in data.get("edges", [])
    ]
    return {"name": data.get("name", "block"), "nodes": nodes, "edges": edges}


# ============================================================ edits built when done
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


class DeferredCommand(Command):
    """A command built when it is done (its checks need the earlier steps' effects)."""

    def __init__(self, build: Any):
        self.build, self.command = build, None

    def do(self) -> None:
        # Built once: a redo must recreate the same nodes and edges (later commands in the
        # history refer to their ids).
        if self.command is None:
            self.command = self.build()
        self.command.do()

    def undo(self) -> None:
        assert self.command is not None
        self.command.undo()

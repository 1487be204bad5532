"""Grouping nodes into a block (a nested model) and ungrouping it, wired as before."""

from __future__ import annotations

from collections.abc import Iterable

from kbuilder.graph.commands.history import Command, MacroCommand
from kbuilder.graph.commands.nodes import AddNodeCommand, RemoveNodesCommand
from kbuilder.graph.errors import (
    GraphError,
    SharedLayerError,
)
from kbuilder.graph.model import (
    DEFAULT_PORT,
    Edge,
    Graph,
    Node,
    new_id,
)
from kbuilder.graph.text import plural


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
            children.append(LazyConnect(graph, src, port, block.id, inner[(src, port)]))
        for e in graph.edges:
            if e.src in selected and e.dst not in selected:
                k = outputs.index((e.src, e.src_port))
                children.append(LazyConnect(graph, block.id, k, e.dst, e.dst_port,
                                             edge_slot(graph, e)))
        super().__init__(f"group {plural(len(ids), 'node')}", children)


class LazyConnect(Command):
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


def edge_slot(graph: Graph, edge: Edge) -> int:
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
            name = free_name(node.name, taken)
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
            children.append(LazyConnect(graph, src, port, e.dst, e.dst_port))
        for e in graph.edges_from(block_id):
            src, port = outputs[e.src_port]
            if src in inputs:
                if src not in feeds:
                    continue
                src, port = feeds[src]
            children.append(LazyConnect(graph, src, port, e.dst, e.dst_port, edge_slot(graph, e)))
        super().__init__(f"ungroup {block.name}", children)


def free_name(name: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    i = 1
    while f"{name}_{i}" in taken:
        i += 1
    return f"{name}_{i}"

"""Copying nodes with the connections among them, and pasting them as one edit."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kbuilder.graph.commands.blocks import LazyConnect, free_name
from kbuilder.graph.commands.history import Command, MacroCommand
from kbuilder.graph.commands.nodes import AddNodeCommand
from kbuilder.graph.model import (
    Graph,
    Node,
    new_id,
)
from kbuilder.graph.text import plural


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
        name = free_name(nd["name"], taken)
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
            LazyConnect(graph, id_map[ed["src"]], ed["src_port"], id_map[ed["dst"]],
                         id_map.get(ed["dst_port"], ed["dst_port"]))
        )
    macro = MacroCommand(f"paste {plural(len(added), 'node')}", children)
    macro.node_ids = added  # type: ignore[attr-defined]
    return macro


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

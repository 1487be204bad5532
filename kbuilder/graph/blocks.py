"""Repeated blocks of an imported model, found from names and topology, grouped in one edit.

Keras's applications name every layer of a repeated unit after the unit: MobileNetV2's
``block_3_expand``, ``block_3_depthwise_BN``, …, ResNet50's ``conv4_block2_1_conv``,
EfficientNet's ``block2a_dwconv``. As in Netron and Model Explorer, nodes whose names share
such a prefix are a candidate block; the topology decides whether it may be one: the
candidate must be convex (no path leaves it and comes back, or the block would feed itself)
and weakly connected, and a unit must repeat (its prefix with the numbers taken out, such as
``block_#``, names at least two candidates). Most such blocks have one entry and one exit;
``GroupCommand`` wires any other number of them as before.

``group_into_blocks`` is one undoable edit (a ``MacroCommand`` of ``GroupCommand``s, each
built when done, since each changes the connections the next one sees), followed by a
fresh layered layout of the shorter graph; ``expand_blocks`` ungroups every block again.
The nodes keep their ids, names, parameters and positions inside the block, so expanding
gives back the graph that was grouped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kbuilder.graph.commands import (
    Command,
    DeferredCommand,
    GroupCommand,
    MacroCommand,
    MoveNodesCommand,
    UngroupCommand,
)
from kbuilder.graph.errors import GraphError
from kbuilder.graph.layout import layered_positions
from kbuilder.graph.model import Graph
from kbuilder.graph.text import plural

# The unit's prefix: everything up to a "block" token and its number (and EfficientNet's
# letter): "block_3", "conv4_block2", "block2a".
_UNIT = re.compile(r"^(.*?block_?\d+[a-z]?)(?=_|$)", re.IGNORECASE)
MIN_NODES = 2


@dataclass(frozen=True)
class BlockCandidate:
    """Nodes that can become one block: its name (the shared prefix) and their ids in
    the graph's topological order."""

    name: str
    node_ids: tuple[str, ...]


def unit_prefix(name: str) -> str | None:
    """The repeated unit a layer name belongs to (``conv2_block1_1_conv`` →
    ``conv2_block1``), or ``None``."""
    match = _UNIT.match(name)
    if match is None or match.group(1) == name:
        return None
    return match.group(1)


def _stem(prefix: str) -> str:
    return re.sub(r"\d+", "#", prefix)


def find_blocks(graph: Graph) -> list[BlockCandidate]:
    """The repeated units of ``graph`` that can each be grouped into a block, in order."""
    order = graph.topological_order()
    index = {nid: i for i, nid in enumerate(order)}
    groups: dict[str, list[str]] = {}
    for nid in order:
        node = graph.node(nid)
        if node.kind not in ("layer", "block"):
            continue
        prefix = unit_prefix(node.name)
        if prefix is not None:
            groups.setdefault(prefix, []).append(nid)
    stems: dict[str, int] = {}
    for prefix in groups:
        stems[_stem(prefix)] = stems.get(_stem(prefix), 0) + 1
    found = []
    for prefix, ids in groups.items():
        if len(ids) < MIN_NODES or stems[_stem(prefix)] < 2:
            continue
        members = set(ids)
        if not _connected(graph, members) or not _convex(graph, members, index):
            continue
        if not _sharing_inside(graph, members):
            continue
        found.append(BlockCandidate(prefix, tuple(ids)))
    return found


def _connected(graph: Graph, members: set[str]) -> bool:
    start = next(iter(members))
    seen, stack = {start}, [start]
    while stack:
        nid = stack.pop()
        for nxt in (*graph.predecessors(nid), *graph.successors(nid)):
            if nxt in members and nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen == members


def _convex(graph: Graph, members: set[str], index: dict[str, int]) -> bool:
    """No path from the members through an outside node back to a member.

    Only nodes earlier (in topological order) than the last member can lead back, which
    keeps the search short on a long model.
    """
    last = max(index[n] for n in members)
    stack = [s for n in members for s in graph.successors(n)
             if s not in members and index[s] < last]
    seen = set(stack)
    while stack:
        nid = stack.pop()
        for nxt in graph.successors(nid):
            if nxt in members:
                return False
            if nxt not in seen and index[nxt] < last:
                seen.add(nxt)
                stack.append(nxt)
    return True


def _sharing_inside(graph: Graph, members: set[str]) -> bool:
    """Shared layers only among the members (a block cannot share weights outside)."""
    for nid in members:
        node = graph.node(nid)
        related = {node.shared_with} | {s.id for s in graph.sharers(nid)}
        related.discard(None)
        if not related <= members:
            return False
    return True


def _relayout(graph: Graph, flow: str) -> Command:
    def build() -> Command:
        moves = {nid: p for nid, p in layered_positions(graph, flow).items()
                 if graph.node(nid).position != p}
        return MoveNodesCommand(graph, moves) if moves else MacroCommand("arrange")

    return DeferredCommand(build)


def group_into_blocks(graph: Graph, candidates: list[BlockCandidate] | None = None,
                      flow: str = "down") -> MacroCommand:
    """One edit grouping every repeated unit of ``graph`` into a block (see the module).

    ``flow``: the direction of the layout the shorter graph gets (``layered_positions``).

    Raises:
        GraphError: no repeated units were found.
    """
    candidates = find_blocks(graph) if candidates is None else candidates
    if not candidates:
        raise GraphError(
            f"'{graph.name}' has no repeated blocks to group: none of its layer names share "
            "a numbered block prefix such as 'block_3_…' or 'conv4_block2_…'. Select "
            "layers and use Group into Block instead."
        )
    steps: list[Command] = [
        DeferredCommand(lambda c=c: GroupCommand(graph, c.node_ids, name=c.name))
        for c in candidates
    ]
    steps.append(_relayout(graph, flow))
    macro = MacroCommand(f"group into {plural(len(candidates), 'block')}", steps)
    macro.count = len(candidates)  # type: ignore[attr-defined]
    return macro


def expand_blocks(graph: Graph, flow: str = "down") -> MacroCommand:
    """One edit ungrouping every block of ``graph`` (one level), then re-arranging it.

    Raises:
        GraphError: the graph has no blocks.
    """
    ids = [n.id for n in graph.nodes if n.kind == "block"]
    if not ids:
        raise GraphError(f"'{graph.name}' has no blocks to expand.")
    steps: list[Command] = [
        DeferredCommand(lambda b=b: UngroupCommand(graph, b)) for b in ids
    ]
    steps.append(_relayout(graph, flow))
    macro = MacroCommand(f"expand {plural(len(ids), 'block')}", steps)
    macro.count = len(ids)  # type: ignore[attr-defined]
    return macro

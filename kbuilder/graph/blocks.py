"""Repeated blocks of an imported model, found from names and topology, grouped in one edit.

Keras's applications name every layer of a repeated unit after the unit: MobileNetV2's
``block_3_expand``, ``block_3_depthwise_BN``, …, ResNet50's ``conv4_block2_1_conv``,
EfficientNet's ``block2a_dwconv``. As in Netron and Model Explorer, nodes whose names share
such a prefix are a candidate block; the topology decides whether it may be one: the
candidate must be convex (no path leaves it and comes back, or the block would feed itself)
and weakly connected, and a unit must repeat (its prefix with the numbers taken out, such as
``block_#``, names at least two candidates). Most such blocks have one entry and one exit;
``GroupCommand`` wires any other number of them as before.

Models written by hand have no such names: a function called in a loop makes ``dense_3``,
``batch_normalization_3``, ``re_lu_3``, then ``dense_4``… For the layers no name groups,
the topology finds the units (``find_repeats``): in the graph's topological order (which
keeps a loop's units in sequence), a run of the same layer classes, wired the same way
inside (the same connections between the same positions, the same ports) and from
outside, repeated at least twice back to back. A run of one class alone (ten Dense layers
in a row) is a stack, not a repeated unit.

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
# The longest unit the topology looks for (a residual unit of a ResNet has 10 layers).
MAX_PERIOD = 24


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
        if not _groupable(graph, set(ids), index):
            continue
        found.append(BlockCandidate(prefix, tuple(ids)))
    named = {nid for c in found for nid in c.node_ids}
    return found + find_repeats(graph, exclude=named, order=order)


def _groupable(graph: Graph, members: set[str], index: dict[str, int]) -> bool:
    return (_connected(graph, members) and _convex(graph, members, index)
            and _sharing_inside(graph, members))


def find_repeats(graph: Graph, exclude: set[str] = frozenset(),  # type: ignore[assignment]
                 order: list[str] | None = None) -> list[BlockCandidate]:
    """Repeated units found by topology alone (see the module), outside ``exclude``.

    Each unit is named after its layer classes and its place in the run:
    ``dense_batchnormalization_relu_1``, ``…_2``.
    """
    order = graph.topological_order() if order is None else order
    index = {nid: i for i, nid in enumerate(order)}
    # The class of each layer in order; None breaks a run (inputs, outputs, named units).
    classes: list[str | None] = []
    for nid in order:
        node = graph.node(nid)
        if nid in exclude or node.kind not in ("layer", "block"):
            classes.append(None)
        else:
            classes.append(node.class_name if node.kind == "layer" else f"block:{node.name}")
    found: list[BlockCandidate] = []
    taken = graph.names()
    i = 0
    while i < len(order):
        best: list[list[str]] = []
        for period in range(MIN_NODES, MAX_PERIOD + 1):
            units = _run(graph, order, classes, index, i, period)
            if len(units) * period > len(best) * len(best[0] if best else ()):
                best = units
        if not best:
            i += 1
            continue
        stem = "_".join(dict.fromkeys(re.sub(r"\W", "", (classes[index[n]] or "")).lower()
                                      for n in best[0]))[:40]
        for k, unit in enumerate(best, 1):
            name = f"{stem}_{k}"
            while name in taken:
                name += "_"
            taken.add(name)
            found.append(BlockCandidate(name, tuple(unit)))
        i += len(best) * len(best[0])
    return found


def _run(graph: Graph, order: list[str], classes: list[str | None], index: dict[str, int],
         start: int, period: int) -> list[list[str]]:
    """The units of ``period`` layers repeated back to back from ``start`` (two or more,
    or none)."""
    motif = classes[start:start + period]
    if len(motif) < period or None in motif or len(set(motif)) < 2:
        return []
    wiring = None
    units: list[list[str]] = []
    at = start
    while classes[at:at + period] == motif:
        unit = order[at:at + period]
        unit_wiring = _wiring(graph, unit)
        if wiring is None:
            wiring = unit_wiring
        if unit_wiring != wiring or not _groupable(graph, set(unit), index):
            break
        units.append(unit)
        at += period
    return units if len(units) >= 2 else []


def _wiring(graph: Graph, unit: list[str]) -> tuple:
    """How a unit's layers are connected, by position: each input port's sources (a
    position inside, or "out" for a node outside) in connection order, and how many of
    each layer's outputs leave the unit."""
    where = {nid: i for i, nid in enumerate(unit)}
    inside = []
    for nid in unit:
        sources = tuple((e.dst_port, where.get(e.src, "out"), e.src_port)
                        for e in graph.edges_into(nid))
        leaving = sum(1 for e in graph.edges_from(nid) if e.dst not in where)
        inside.append((sources, leaving > 0))
    return tuple(inside)


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
            "a numbered block prefix such as 'block_3_…' or 'conv4_block2_…', and no run "
            "of layers repeats with the same wiring. Select layers and use Group into "
            "Block instead."
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

"""Layered ("Sugiyama-style") automatic layout: data flows top to bottom.

Each node goes to the row of its longest path from an input, so every connection points
down. A connection that skips rows (a residual shortcut, a dense concatenation) gets a
lane of its own: a virtual node on every row it crosses, which takes a place in that row
like a real node, so the connection runs beside the nodes in between instead of through
them. Connections from one node share their lane until they part. Within a row, nodes
are ordered by the mean position of their neighbours (a few sweeps of the barycentre
heuristic) to keep connections from crossing. Rows are centred on one vertical axis and
nodes sit on a grid of ``COLUMN_WIDTH`` by ``ROW_HEIGHT``, so no two nodes overlap.

Flowing "right" (left to right) turns the same layers into columns: each row becomes a
column ``FLOW_RIGHT_STEP`` apart and the places within it ``FLOW_RIGHT_SPACING`` apart,
which suits a long, narrow model on a wide screen.
"""

from __future__ import annotations

from collections.abc import Hashable

from kbuilder.graph.model import Graph

ROW_HEIGHT = 110.0
COLUMN_WIDTH = 220.0
SWEEPS = 4
# Left to right: a node (184 x 62) and room for the connection between two columns.
FLOW_RIGHT_STEP = 260.0
FLOW_RIGHT_SPACING = 100.0
FLOWS = ("down", "right")


def layered_positions(graph: Graph, flow: str = "down") -> dict[str, tuple[float, float]]:
    """Positions for every node of ``graph`` (not of nested blocks).

    Args:
        flow: ``"down"`` (inputs at the top) or ``"right"`` (inputs on the left).
    """
    if flow not in FLOWS:
        raise ValueError(f"Received an invalid value for `flow`, expected one of {FLOWS}. "
                         f"Received: flow={flow!r}")
    order = graph.topological_order()
    rank = _ranks(graph, order)
    rows: dict[int, list[Hashable]] = {}
    for nid in order:
        rows.setdefault(rank[nid], []).append(nid)
    up, down = _lanes(graph, rank, rows)
    x = {item: 0.0 for row in rows.values() for item in row}
    _place(rows, x)
    levels = sorted(rows)
    for _ in range(SWEEPS):
        for r in levels[1:]:
            _sort_row(rows[r], up, x)
        for r in reversed(levels[:-1]):
            _sort_row(rows[r], down, x)
    if flow == "right":
        return {
            item: (r * FLOW_RIGHT_STEP, x[item] * FLOW_RIGHT_SPACING)
            for r, row in rows.items()
            for item in row
            if isinstance(item, str)
        }
    return {
        item: (x[item] * COLUMN_WIDTH, r * ROW_HEIGHT)
        for r, row in rows.items()
        for item in row
        if isinstance(item, str)
    }


def _ranks(graph: Graph, order: list[str]) -> dict[str, int]:
    rank: dict[str, int] = {}
    for nid in order:
        rank[nid] = max((rank[p] + 1 for p in graph.predecessors(nid)), default=0)
    # Outputs sit on the last row so the model ends in one place.
    outputs = [n.id for n in graph.output_nodes()]
    if outputs:
        last = max(rank.values())
        for nid in outputs:
            rank[nid] = last
    return rank


def _lanes(
    graph: Graph, rank: dict[str, int], rows: dict[int, list[Hashable]]
) -> tuple[dict[Hashable, list[Hashable]], dict[Hashable, list[Hashable]]]:
    """Neighbours above and below each row item, with virtual nodes for long connections.

    The virtual node of source ``s`` on row ``r`` is ``(s, r)``; real nodes are ids.
    """
    up: dict[Hashable, list[Hashable]] = {}
    down: dict[Hashable, list[Hashable]] = {}

    def link(a: Hashable, b: Hashable) -> None:
        if b not in down.setdefault(a, []):
            down[a].append(b)
            up.setdefault(b, []).append(a)

    for edge in graph.edges:
        src, dst = edge.src, edge.dst
        previous: Hashable = src
        for r in range(rank[src] + 1, rank[dst]):
            lane = (src, r)
            if lane not in up:
                rows[r].append(lane)
            link(previous, lane)
            previous = lane
        link(previous, dst)
    return up, down


def _place(rows: dict[int, list[Hashable]], x: dict[Hashable, float]) -> None:
    """Centre each row on the vertical axis, one column per item, in row order."""
    for row in rows.values():
        offset = (len(row) - 1) / 2.0
        for i, item in enumerate(row):
            x[item] = i - offset


def _sort_row(
    row: list[Hashable], neighbours: dict[Hashable, list[Hashable]], x: dict[Hashable, float]
) -> None:
    def key(item: Hashable) -> float:
        near = neighbours.get(item)
        return sum(x[n] for n in near) / len(near) if near else x[item]

    row.sort(key=key)
    offset = (len(row) - 1) / 2.0
    for i, item in enumerate(row):
        x[item] = i - offset


def room_below(graph: Graph, node_id: str) -> tuple[tuple[float, float],
                                                  dict[str, tuple[float, float]]]:
    """Where a node inserted right after ``node_id`` goes, and the moves that make room.

    The new node goes one row below ``node_id``. Nodes lower than ``node_id`` that would
    be closer than a row to it (in its column) are in the way: every node lower than
    ``node_id`` moves down by the same amount, so the rest of the model keeps its shape
    and the new node sits a full row above the next one.

    Returns:
        ``(position, moves)``: the new node's position and ``{node id: new position}``
        for the nodes to push down (empty when nothing is in the way).
    """
    x, y = graph.node(node_id).position
    spot = (x, y + ROW_HEIGHT)
    lower = [n for n in graph.nodes if n.id != node_id and n.position[1] > y]
    shift = max((spot[1] + ROW_HEIGHT - n.position[1] for n in lower
                 if abs(n.position[0] - x) < COLUMN_WIDTH), default=0.0)
    if shift <= 0:
        return spot, {}
    return spot, {n.id: (n.position[0], n.position[1] + shift) for n in lower}


def apply_layout(graph: Graph, recursive: bool = True) -> None:
    """Move nodes to their layered positions directly (for graphs not yet in a history)."""
    for nid, pos in layered_positions(graph).items():
        graph._set_position(nid, pos)
    if recursive:
        for node in graph.nodes:
            if node.subgraph is not None:
                apply_layout(node.subgraph)

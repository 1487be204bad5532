"""Layered ("Sugiyama-style") automatic layout: data flows top to bottom.

Each node goes to the row of its longest path from an input; within a row, nodes are
ordered by the mean position of their predecessors (a few sweeps of the barycentre
heuristic) to keep edges from crossing. Rows are centred on one vertical axis.
"""

from __future__ import annotations

from kbuilder.graph.model import Graph

ROW_HEIGHT = 110.0
COLUMN_WIDTH = 220.0


def layered_positions(graph: Graph) -> dict[str, tuple[float, float]]:
    """Positions for every node of ``graph`` (not of nested blocks)."""
    order = graph.topological_order()
    rank: dict[str, int] = {}
    for nid in order:
        preds = graph.predecessors(nid)
        rank[nid] = max((rank[p] + 1 for p in preds), default=0)
    # Outputs sit on the last row so the model ends in one place.
    outputs = [n.id for n in graph.output_nodes()]
    if outputs:
        last = max(rank.values())
        for nid in outputs:
            rank[nid] = max(rank[nid], last)
    rows: dict[int, list[str]] = {}
    for nid in order:
        rows.setdefault(rank[nid], []).append(nid)
    slot = {nid: float(i) for row in rows.values() for i, nid in enumerate(row)}
    for _ in range(4):
        for r in sorted(rows)[1:]:
            _sort_row(rows[r], graph.predecessors, slot)
        for r in sorted(rows, reverse=True)[1:]:
            _sort_row(rows[r], graph.successors, slot)
    positions = {}
    for r, row in rows.items():
        offset = (len(row) - 1) / 2.0
        for i, nid in enumerate(row):
            positions[nid] = ((i - offset) * COLUMN_WIDTH, r * ROW_HEIGHT)
    return positions


def _sort_row(row: list[str], neighbours, slot: dict[str, float]) -> None:
    def key(nid: str) -> float:
        near = neighbours(nid)
        return sum(slot[n] for n in near) / len(near) if near else slot[nid]

    row.sort(key=key)
    for i, nid in enumerate(row):
        slot[nid] = float(i)


def apply_layout(graph: Graph, recursive: bool = True) -> None:
    """Move nodes to their layered positions directly (for graphs not yet in a history)."""
    for nid, pos in layered_positions(graph).items():
        graph._set_position(nid, pos)
    if recursive:
        for node in graph.nodes:
            if node.subgraph is not None:
                apply_layout(node.subgraph)

"""The automatic layout (graph/layout.py): data flows down, nothing overlaps."""

from itertools import combinations

import pytest

from kbuilder.graph.commands import History
from kbuilder.graph.layout import (
    COLUMN_WIDTH,
    FLOW_RIGHT_SPACING,
    FLOW_RIGHT_STEP,
    ROW_HEIGHT,
    apply_layout,
    layered_positions,
    room_below,
)
from kbuilder.graph.model import Graph
from tests.graph.helpers import add_input, add_layer, add_output, mlp


def residual() -> tuple[Graph, dict[str, str]]:
    """input -> a -> b -> add(b, input) -> output: one shortcut over two rows."""
    h, g = History(), Graph("residual")
    x = add_input(h, g, [8])
    a = add_layer(h, g, "Dense", x, name="a", units=8)
    b = add_layer(h, g, "Dense", a, name="b", units=8)
    s = add_layer(h, g, "Add", b, x, name="sum")
    out = add_output(h, g, s)
    return g, {"input": x, "a": a, "b": b, "sum": s, "output": out}


def two_heads() -> tuple[Graph, dict[str, str]]:
    """input -> trunk -> (short -> out1, deep1 -> deep2 -> out2)."""
    h, g = History(), Graph("two_heads")
    x = add_input(h, g, [8])
    trunk = add_layer(h, g, "Dense", x, name="trunk", units=8)
    short = add_layer(h, g, "Dense", trunk, name="short", units=2)
    deep = add_layer(h, g, "Dense", add_layer(h, g, "Dense", trunk, name="deep1", units=4),
                     name="deep2", units=2)
    return g, {"out1": add_output(h, g, short, name="out1"),
               "out2": add_output(h, g, deep, name="out2"), "short": short}


def assert_flows_down_without_overlaps(graph: Graph, positions: dict) -> None:
    assert set(positions) == set(graph.node_ids)
    for edge in graph.edges:
        assert positions[edge.src][1] < positions[edge.dst][1], edge
    for (a, pa), (b, pb) in combinations(positions.items(), 2):
        # On the grid: two nodes are a whole column or a whole row apart.
        assert (abs(pa[0] - pb[0]) >= COLUMN_WIDTH / 2 - 1e-9
                or abs(pa[1] - pb[1]) >= ROW_HEIGHT - 1e-9), (a, b)


def test_a_chain_is_one_centred_column_a_row_apart():
    g, _, ids = mlp()
    positions = layered_positions(g)
    assert_flows_down_without_overlaps(g, positions)
    order = [ids["input"], ids["dense"], ids["dense_1"], ids["output"]]
    assert [positions[n] for n in order] == [(0.0, i * ROW_HEIGHT) for i in range(4)]


def test_a_shortcut_gets_a_lane_beside_the_nodes_it_passes():
    g, ids = residual()
    positions = layered_positions(g)
    assert_flows_down_without_overlaps(g, positions)
    # a and b share their rows with the shortcut's lane: they sit half a column off the
    # axis, so the shortcut input -> sum runs beside them, not through them.
    assert abs(positions[ids["a"]][0]) == COLUMN_WIDTH / 2
    assert abs(positions[ids["b"]][0]) == COLUMN_WIDTH / 2
    assert positions[ids["sum"]][1] == 3 * ROW_HEIGHT


def test_flowing_right_turns_the_rows_into_columns():
    g, ids = residual()
    down, right = layered_positions(g), layered_positions(g, flow="right")
    for nid, (x, y) in down.items():
        assert right[nid] == (y / ROW_HEIGHT * FLOW_RIGHT_STEP,
                              x / COLUMN_WIDTH * FLOW_RIGHT_SPACING)
    for edge in g.edges:
        assert right[edge.src][0] < right[edge.dst][0]  # every connection points right
    with pytest.raises(ValueError, match="flow='up'"):
        layered_positions(g, flow="up")


def test_every_output_sits_on_the_last_row():
    g, ids = two_heads()
    positions = layered_positions(g)
    assert_flows_down_without_overlaps(g, positions)
    last = max(y for _, y in positions.values())
    assert positions[ids["out1"]][1] == positions[ids["out2"]][1] == last
    assert positions[ids["short"]][1] < last - ROW_HEIGHT  # short head: not pulled down


def test_apply_layout_moves_the_nodes_and_is_stable():
    g, ids = residual()
    apply_layout(g)
    first = g.positions()
    assert {nid: tuple(p) for nid, p in first.items()} == layered_positions(g)
    apply_layout(g)
    assert g.positions() == first


def test_room_below_pushes_only_what_is_in_the_way():
    g, _, ids = mlp()
    apply_layout(g)
    spot, moves = room_below(g, ids["dense"])
    x, y = g.node(ids["dense"]).position
    assert spot == (x, y + ROW_HEIGHT)
    # dense_1 sat exactly there: everything below dense moves down by one row.
    assert set(moves) == {ids["dense_1"], ids["output"]}
    for nid, (mx, my) in moves.items():
        old = g.node(nid).position
        assert mx == old[0] and my == old[1] + ROW_HEIGHT
    # Below the model's last node nothing is in the way.
    spot, moves = room_below(g, ids["output"])
    assert spot == (x, 4 * ROW_HEIGHT) and moves == {}

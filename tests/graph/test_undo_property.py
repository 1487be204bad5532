"""Random edit sequences: undoing them all restores an identical graph, redo replays them."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kbuilder.graph.commands import (
    AddNodeCommand,
    ConnectCommand,
    DisconnectCommand,
    GroupCommand,
    History,
    MoveNodesCommand,
    RemoveNodesCommand,
    RenameNodeCommand,
    SetParamCommand,
    UngroupCommand,
    copy_fragment,
    new_input_node,
    new_layer_node,
    new_output_node,
    new_shared_node,
    paste_command,
)
from kbuilder.graph.errors import GraphError
from tests.graph.helpers import mlp, snapshot

OPS = ["add_dense", "add_add", "add_input", "add_output", "connect", "disconnect", "remove",
       "set_units", "rename", "move", "group", "ungroup", "share", "paste"]


def apply(op: str, g, h: History, draw) -> None:
    nodes = g.nodes
    pick = lambda items: items[draw(st.integers(0, len(items) - 1))]  # noqa: E731
    if op == "add_dense":
        h.push(AddNodeCommand(g, new_layer_node(g, "Dense", {"units": draw(st.integers(1, 9))})))
    elif op == "add_add":
        h.push(AddNodeCommand(g, new_layer_node(g, "Add")))
    elif op == "add_input":
        h.push(AddNodeCommand(g, new_input_node(g, [draw(st.integers(1, 5))])))
    elif op == "add_output":
        h.push(AddNodeCommand(g, new_output_node(g)))
    elif op == "connect" and len(nodes) >= 2:
        src, dst = pick(nodes), pick(nodes)
        ports = g.input_ports(dst.id)
        if ports:
            h.push(ConnectCommand(g, src.id, 0, dst.id, pick(ports).name))
    elif op == "disconnect" and g.edges:
        h.push(DisconnectCommand(g, pick(g.edges).id))
    elif op == "remove" and nodes:
        chosen = {pick(nodes).id for _ in range(draw(st.integers(1, 3)))}
        h.push(RemoveNodesCommand(g, chosen))
    elif op == "set_units":
        dense = [n for n in nodes if n.kind == "layer" and g.layer_owner(n.id).class_name == "Dense"]
        if dense:
            h.push(SetParamCommand(g, pick(dense).id, "units", draw(st.integers(1, 99))))
    elif op == "rename" and nodes:
        h.push(RenameNodeCommand(g, pick(nodes).id, draw(st.text(min_size=1, max_size=6))))
    elif op == "move" and nodes:
        h.push(MoveNodesCommand(g, {pick(nodes).id: (draw(st.floats(-1e3, 1e3)), 2.5)}))
    elif op == "group" and nodes:
        chosen = {pick(nodes).id for _ in range(draw(st.integers(1, 3)))}
        h.push(GroupCommand(g, chosen))
    elif op == "ungroup":
        blocks = [n for n in nodes if n.kind == "block"]
        if blocks:
            h.push(UngroupCommand(g, pick(blocks).id))
    elif op == "share":
        owners = [n for n in nodes if n.kind == "layer" and not n.shared_with]
        if owners:
            h.push(AddNodeCommand(g, new_shared_node(g, pick(owners).id)))
    elif op == "paste" and nodes:
        chosen = {pick(nodes).id for _ in range(draw(st.integers(1, 3)))}
        h.push(paste_command(g, copy_fragment(g, chosen)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_edits_undo_to_identical_graph(data):
    g, h, _ = mlp()
    h.clear()
    states = [snapshot(g)]
    for _ in range(data.draw(st.integers(1, 25))):
        op = data.draw(st.sampled_from(OPS))
        depth = len(h._done)
        try:
            apply(op, g, h, data.draw)
        except GraphError:
            # A refused edit changes nothing and records nothing.
            assert snapshot(g) == states[-1] and len(h._done) == depth
            continue
        if len(h._done) > depth:
            states.append(snapshot(g))
        g.topological_order()  # never a cycle
    for expected in reversed(states[:-1]):
        h.undo()
        assert snapshot(g) == expected
    for expected in states[1:]:
        h.redo()
        assert snapshot(g) == expected


def test_a_renamed_block_undoes_to_the_name_its_group_gave_it():
    """Found by the property test: grouping when "block" is taken names the block
    "block_1" and must name its graph so too, or undoing a rename of it (which renames
    both) leaves the graph named differently than before."""
    g, h, _ = mlp()
    h.clear()
    h.push(GroupCommand(g, {g.nodes[1].id}))  # "block"
    h.push(GroupCommand(g, {g.nodes[-1].id}))  # "block" is taken: "block_1"
    block = g.nodes[-1]
    assert block.name == block.subgraph.name == "block_1"
    before = snapshot(g)
    h.push(RenameNodeCommand(g, block.id, "scan"))
    h.undo()
    assert snapshot(g) == before

"""The graph model and its commands: connection rules, names, sharing, groups, clipboard."""

import pytest

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
    new_layer_node,
    new_shared_node,
    paste_command,
)
from kbuilder.graph.errors import (
    CycleError,
    GraphError,
    HistoryError,
    NameConflictError,
    ParamError,
    PortError,
    SharedLayerError,
)
from kbuilder.graph.model import UNSET, Graph, stable_topological_order
from tests.graph.helpers import add_input, add_layer, add_output, mlp, snapshot


def test_events_fire_for_every_change():
    g, h, ids = mlp()
    seen = []
    for name in ("node_added", "node_removed", "edge_added", "edge_removed", "node_changed",
                 "node_moved"):
        getattr(g.events, name).connect(lambda *a, n=name: seen.append((n, *a)))
    h.push(SetParamCommand(g, ids["dense"], "units", 12))
    h.push(MoveNodesCommand(g, {ids["dense"]: (5, 6)}))
    h.push(RemoveNodesCommand(g, [ids["dense"]]))
    kinds = [s[0] for s in seen]
    assert kinds[:2] == ["node_changed", "node_moved"]
    assert kinds.count("edge_removed") == 2 and kinds[-1] == "node_removed"
    assert seen[0] == ("node_changed", ids["dense"], "params")


def test_cycle_is_refused_with_node_id():
    g, h, ids = mlp()
    with pytest.raises(CycleError) as err:
        ConnectCommand(g, ids["dense_1"], 0, ids["dense"], "inputs")
    assert err.value.node_id == ids["dense"]
    assert "cycle" in str(err.value)
    with pytest.raises(CycleError):
        ConnectCommand(g, ids["dense"], 0, ids["dense"], "inputs")


def test_port_errors_say_what_is_wrong():
    g, h, ids = mlp()
    with pytest.raises(PortError, match="model input and takes no inputs"):
        ConnectCommand(g, ids["dense"], 0, ids["input"], "inputs")
    with pytest.raises(PortError, match="has no input port 'query'; its ports are inputs"):
        ConnectCommand(g, ids["input"], 0, ids["dense"], "query")
    with pytest.raises(PortError, match="model output"):
        ConnectCommand(g, ids["output"], 0, ids["dense"], "inputs")
    with pytest.raises(PortError, match="no output 3"):
        ConnectCommand(g, ids["input"], 3, ids["dense"], "inputs")


def test_connecting_a_taken_single_port_replaces_the_edge_and_undo_restores_it():
    g, h, ids = mlp()
    other = add_input(h, g, [16], name="other")
    before = snapshot(g)
    h.push(ConnectCommand(g, other, 0, ids["dense"], "inputs"))
    assert [e.src for e in g.edges_into(ids["dense"])] == [other]
    h.undo()
    assert snapshot(g) == before


def test_merge_port_takes_many_inputs_in_order_and_subtract_at_most_two():
    h, g = History(), Graph()
    a = add_input(h, g, [4], name="a")
    b = add_input(h, g, [4], name="b")
    c = add_input(h, g, [4], name="c")
    cat = add_layer(h, g, "Concatenate", c, a, b)
    assert [e.src for e in g.edges_into(cat)] == [c, a, b]
    sub = add_layer(h, g, "Subtract", a, b)
    with pytest.raises(PortError, match="at most 2"):
        ConnectCommand(g, c, 0, sub, "inputs")


def test_names_are_unique_and_keras_like():
    g, h, ids = mlp()
    assert {n.name for n in g.nodes} == {"input", "dense", "dense_1", "output"}
    with pytest.raises(NameConflictError):
        RenameNodeCommand(g, ids["dense"], "dense_1")
    with pytest.raises(ParamError, match="cannot contain '/'"):
        RenameNodeCommand(g, ids["dense"], "a/b")
    h.push(RenameNodeCommand(g, ids["dense"], 'odd "name"\nwith newline'))
    assert g.node(ids["dense"]).name == 'odd "name"\nwith newline'


def test_set_param_validates_and_names_node_and_param():
    g, h, ids = mlp()
    with pytest.raises(ParamError) as err:
        SetParamCommand(g, ids["dense"], "units", 0)
    assert err.value.node_id == ids["dense"] and err.value.param == "units"
    assert "'dense'" in str(err.value) and "units" in str(err.value)
    h.push(SetParamCommand(g, ids["dense"], "units", 3))
    assert g.node(ids["dense"]).params["units"] == 3
    h.push(SetParamCommand(g, ids["dense"], "activation", UNSET))
    assert "activation" not in g.node(ids["dense"]).params
    h.undo()
    assert g.node(ids["dense"]).params["activation"] == "relu"
    with pytest.raises(ParamError, match="required"):
        SetParamCommand(g, ids["dense"], "units", UNSET)


def test_shared_node_edits_its_owner_and_inherits_the_layer_when_owner_is_removed():
    g, h, ids = mlp()
    shared = new_shared_node(g, ids["dense_1"])
    h.push(AddNodeCommand(g, shared))
    assert shared.shared_with == ids["dense_1"]
    assert g.layer_owner(shared.id).id == ids["dense_1"]
    h.push(SetParamCommand(g, shared.id, "units", 7))
    assert g.node(ids["dense_1"]).params["units"] == 7
    before = snapshot(g)
    h.push(RemoveNodesCommand(g, [ids["dense_1"]]))
    heir = g.node(shared.id)
    assert heir.shared_with is None and heir.params["units"] == 7
    h.undo()
    assert snapshot(g) == before


def test_sharing_a_sharer_is_refused():
    g, h, ids = mlp()
    shared = new_shared_node(g, ids["dense"])
    h.push(AddNodeCommand(g, shared))
    sneaky = new_layer_node(g, "Dense", {"units": 2})
    sneaky.shared_with = shared.id
    with pytest.raises(SharedLayerError):
        h.push(AddNodeCommand(g, sneaky))
    assert sneaky.id not in g


def test_group_and_ungroup_keep_wiring_and_undo():
    g, h, ids = mlp()
    before = snapshot(g)
    cmd = h.push(GroupCommand(g, [ids["dense"], ids["dense_1"]], name="head"))
    block = g.node(cmd.block_id)
    assert block.kind == "block" and block.name == "head"
    assert ids["dense"] not in g and len(g) == 3
    sub = block.subgraph
    assert [n.kind for n in sub.nodes].count("input") == 1
    assert [n.kind for n in sub.nodes].count("output") == 1
    assert g.edges_into(block.id)[0].src == ids["input"]
    assert g.edges_into(ids["output"])[0].src == block.id
    h.push(UngroupCommand(g, block.id))
    assert ids["dense"] in g and ids["dense_1"] in g and block.id not in g
    assert g.edges_into(ids["dense"])[0].src == ids["input"]
    assert g.edges_into(ids["output"])[0].src == ids["dense_1"]
    h.undo()
    h.undo()
    assert snapshot(g) == before


def test_group_refuses_inputs_and_split_sharing():
    g, h, ids = mlp()
    with pytest.raises(Exception, match="only layers and blocks"):
        GroupCommand(g, [ids["input"], ids["dense"]])
    shared = new_shared_node(g, ids["dense"])
    h.push(AddNodeCommand(g, shared))
    with pytest.raises(SharedLayerError):
        GroupCommand(g, [ids["dense"]])


def test_copy_paste_gives_fresh_ids_names_and_internal_edges():
    g, h, ids = mlp()
    fragment = copy_fragment(g, [ids["dense"], ids["dense_1"]])
    cmd = h.push(paste_command(g, fragment))
    new = [g.node(i) for i in cmd.node_ids]
    assert {n.name for n in new} == {"dense_2", "dense_1_1"} or len({n.name for n in g.nodes}) == 6
    assert len({n.name for n in g.nodes}) == len(g)
    assert len(g.edges_into(new[1].id)) == 1 and g.edges_into(new[1].id)[0].src == new[0].id
    h.undo()
    assert len(g) == 4


def test_remove_and_undo_restores_edge_order_of_merge_inputs():
    h, g = History(), Graph()
    a = add_input(h, g, [4], name="a")
    b = add_input(h, g, [4], name="b")
    d = add_layer(h, g, "Dense", a, units=4)
    add = add_layer(h, g, "Add", b, d, a)
    add_output(h, g, add)
    before = snapshot(g)
    h.push(RemoveNodesCommand(g, [d]))
    h.push(DisconnectCommand(g, g.edges_into(add)[0].id))
    h.undo()
    h.undo()
    assert snapshot(g) == before


def test_history_clean_state_and_reentrancy():
    g, h, ids = mlp()
    h.mark_clean()
    assert h.is_clean
    h.push(MoveNodesCommand(g, {ids["dense"]: (1, 2)}))
    assert not h.is_clean and h.undo_text.startswith("move")
    h.undo()
    assert h.is_clean

    refused = []

    def edit_during_edit(*_):
        try:
            h.push(MoveNodesCommand(g, {ids["dense"]: (9, 9)}))
        except HistoryError as exc:
            refused.append(exc)

    g.events.node_moved.connect(edit_during_edit)
    h.push(MoveNodesCommand(g, {ids["dense"]: (3, 4)}))
    g.events.node_moved.disconnect(edit_during_edit)
    assert refused and g.node(ids["dense"]).position == (3, 4)
    with pytest.raises(HistoryError, match="nothing to redo"):
        h.redo()


def test_failed_command_records_nothing():
    g, h, ids = mlp()
    n = len(g)
    depth = len(h._done)
    bad = new_layer_node(g, "Dense", {"units": 2}, name="dense")  # gets a unique name
    bad._name = "dense"  # force a clash
    with pytest.raises(NameConflictError):
        h.push(AddNodeCommand(g, bad))
    assert len(g) == n and len(h._done) == depth


def test_block_ports_connected_outside_cannot_be_removed_inside():
    g, h, ids = mlp()
    cmd = h.push(GroupCommand(g, [ids["dense"], ids["dense_1"]], name="head"))
    sub = g.node(cmd.block_id).subgraph
    inner_in = sub.input_nodes()[0]
    with pytest.raises(GraphError, match="port of block 'head'"):
        RemoveNodesCommand(sub, [inner_in.id])
    with pytest.raises(GraphError, match="port of block 'head'"):
        RemoveNodesCommand(sub, [sub.output_nodes()[0].id])
    h.push(RemoveNodesCommand(g, [ids["output"]]))
    h.push(RemoveNodesCommand(sub, [sub.output_nodes()[0].id]))  # nothing uses it now


def test_the_topological_order_is_stable_and_leaves_a_cycle_out():
    ids = ["e", "a", "d", "b", "c"]
    successors = {"a": ["b"], "b": ["c"], "e": ["c"], "d": []}
    order = stable_topological_order(ids, successors)
    assert order == ["e", "a", "d", "b", "c"]  # only "c" must wait; ties keep the given order
    assert stable_topological_order(list(reversed(ids)), successors) == ["d", "a", "b", "e", "c"]
    # b -> c -> b: both, and what follows them, are left out for the caller to report.
    cyclic = {"a": ["b"], "b": ["c"], "c": ["b", "d"]}
    assert stable_topological_order(["a", "b", "c", "d"], cyclic) == ["a"]


def test_a_shared_layer_s_owner_is_computed_before_its_sharer():
    from kbuilder.graph.shapes import order_with_sharing

    g, h, ids = mlp()
    # A sharer placed before its owner in node order, fed straight from the input.
    shared = new_shared_node(g, ids["dense"])
    h.push(AddNodeCommand(g, shared, index=0))
    h.push(ConnectCommand(g, ids["input"], 0, shared.id, "inputs"))
    assert g.topological_order().index(shared.id) < g.topological_order().index(ids["dense"])
    order = order_with_sharing(g)
    assert order.index(ids["dense"]) < order.index(shared.id)
    assert sorted(order) == sorted(g.node_ids)

"""Group into blocks: repeated units of imported models become blocks, and expand back."""

from __future__ import annotations

import keras
import pytest

from kbuilder.graph.blocks import expand_blocks, find_blocks, group_into_blocks, unit_prefix
from kbuilder.graph.commands import GroupCommand, History, UngroupCommand
from kbuilder.graph.errors import GraphError
from kbuilder.graph.keras_io.importer import import_file
from kbuilder.graph.model import Graph
from kbuilder.graph.shapes import ShapeInference
from tests.graph.helpers import add_input, add_layer, mlp

MODELS = {
    "MobileNetV2": lambda: keras.applications.MobileNetV2(
        input_shape=(32, 32, 3), alpha=0.35, weights=None, classes=10),
    "ResNet50": lambda: keras.applications.ResNet50(
        input_shape=(32, 32, 3), weights=None, include_top=False, pooling="avg"),
}
# Units of each architecture: MobileNetV2's block_1 … block_16; ResNet50's 3+4+6+3.
EXPECTED_BLOCKS = {"MobileNetV2": 16, "ResNet50": 16}


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """Each model saved as .keras and opened with kbuilder's importer, once."""
    folder = tmp_path_factory.mktemp("apps")
    graphs = {}
    for name, make in MODELS.items():
        path = folder / f"{name}.keras"
        make().save(path)
        graphs[name] = path
    return graphs


def flat(graph):
    """Everything of the graph but the edges' ids: nodes with their parameters, each
    input port's sources in connection order, positions."""
    nodes = {n.id: n.to_dict() for n in graph.nodes}
    ports = {}
    for e in graph.edges:
        ports.setdefault((e.dst, e.dst_port), []).append((e.src, e.src_port))
    return nodes, ports


def total_params(graph) -> int:
    inference = ShapeInference(graph)
    inference.update()
    assert inference.errors() == []
    total = inference.total_params()
    inference.close()
    return total


def test_unit_prefixes_of_keras_application_names():
    assert unit_prefix("block_3_expand_BN") == "block_3"
    assert unit_prefix("conv4_block2_1_conv") == "conv4_block2"
    assert unit_prefix("block2a_dwconv") == "block2a"
    assert unit_prefix("block_3") is None  # the unit's name alone is not inside a unit
    assert unit_prefix("dense_1") is None


def test_a_model_without_units_is_refused_with_a_reason():
    graph, _, _ = mlp()
    assert find_blocks(graph) == []
    with pytest.raises(GraphError, match="no repeated blocks"):
        group_into_blocks(graph)
    with pytest.raises(GraphError, match="no blocks to expand"):
        expand_blocks(graph)


def test_grouping_and_ungrouping_keep_the_order_of_a_concatenation():
    history = History()
    graph = Graph("m")
    x = add_input(history, graph, [4])
    a = add_layer(history, graph, "Dense", x, units=2, name="a")
    b = add_layer(history, graph, "Dense", x, units=3, name="b")
    cat = add_layer(history, graph, "Concatenate", a, b)

    def sources():
        return [graph.node(e.src).name for e in graph.edges_into(cat)]

    assert sources() == ["a", "b"]
    group = history.push(GroupCommand(graph, [a], name="first"))
    assert sources() == ["first", "b"]  # not moved behind b
    history.push(UngroupCommand(graph, group.block_id))
    assert sources() == ["a", "b"]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MODELS))
def test_group_into_blocks_and_expand_restore_the_imported_graph(imported, name):
    graph = import_file(imported[name]).graph
    before, before_positions = flat(graph), graph.positions()
    params = total_params(graph)
    history = History()

    history.push(group_into_blocks(graph))
    blocks = [n for n in graph.nodes if n.kind == "block"]
    assert len(blocks) == EXPECTED_BLOCKS[name]
    for block in blocks:
        inner = [n for n in block.subgraph.nodes if n.kind == "layer"]
        assert len(inner) >= 2
        assert all(n.name.startswith(block.name + "_") for n in inner)
        # One way in and one way out: the units are single-entry, single-exit.
        assert len(block.subgraph.input_nodes()) == 1
        assert len(block.subgraph.output_nodes()) == 1
    assert len(graph) < len(before[0]) / 3
    assert total_params(graph) == params  # the blocks hold every weight
    grouped = flat(graph)

    history.push(expand_blocks(graph))
    assert flat(graph) == before
    assert total_params(graph) == params

    history.undo()
    assert flat(graph) == grouped
    history.undo()
    assert flat(graph) == before and graph.positions() == before_positions
    history.redo()
    assert flat(graph) == grouped
    history.redo()
    assert flat(graph) == before


def loop_built_model(path):
    """A model a user writes: one residual unit (Dense, BatchNormalization, ReLU, Add)
    made by a function called four times, so its layers are named dense_1, dense_2, …"""
    def unit(x):
        y = keras.layers.Dense(8)(x)
        y = keras.layers.BatchNormalization()(y)
        y = keras.layers.ReLU()(y)
        return keras.layers.Add()([x, y])

    inp = keras.Input((8,))
    x = keras.layers.Dense(8)(inp)
    for _ in range(4):
        x = unit(x)
    keras.Model(inp, keras.layers.Dense(2)(x)).save(path)
    return import_file(path).graph


@pytest.mark.slow
def test_units_of_a_model_built_in_a_loop_are_found_by_topology_and_expand_exactly(tmp_path):
    graph = loop_built_model(tmp_path / "loop.keras")
    assert not any(unit_prefix(n.name) for n in graph.nodes)  # no block_N_ names to go by
    candidates = find_blocks(graph)
    assert [len(c.node_ids) for c in candidates] == [4, 4, 4, 4]
    assert [[graph.node(n).class_name for n in c.node_ids] for c in candidates] == \
        [["Dense", "BatchNormalization", "ReLU", "Add"]] * 4
    assert len({c.name for c in candidates}) == 4
    before, positions, params = flat(graph), graph.positions(), total_params(graph)
    history = History()

    history.push(group_into_blocks(graph))
    blocks = [n for n in graph.nodes if n.kind == "block"]
    assert len(blocks) == 4 and total_params(graph) == params
    grouped = flat(graph)
    history.push(expand_blocks(graph))
    assert flat(graph) == before
    history.undo()
    assert flat(graph) == grouped
    history.undo()
    assert flat(graph) == before and graph.positions() == positions
    history.redo()
    assert flat(graph) == grouped


def test_topology_wants_the_same_wiring_and_more_than_one_class():
    history = History()
    graph = Graph("m")
    x = add_input(history, graph, [4])
    for _ in range(6):  # a stack of one class is not a repeated unit
        x = add_layer(history, graph, "Dense", x, units=4)
    assert find_blocks(graph) == []
    # Dense → ReLU twice, then a Dense and a ReLU side by side (the ReLU fed from
    # outside): the third pair is wired differently and is left out of the run.
    for side_by_side in (False, False, True):
        d = add_layer(history, graph, "Dense", x, units=4)
        r = add_layer(history, graph, "ReLU", x if side_by_side else d)
        x = add_layer(history, graph, "Add", d, r) if side_by_side else r
    units = [[graph.node(n).class_name for n in c.node_ids] for c in find_blocks(graph)]
    assert units == [["Dense", "ReLU"], ["Dense", "ReLU"]]

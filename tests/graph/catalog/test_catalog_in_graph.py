"""Every catalog layer, placed as a node in a small graph, infers shapes and builds."""

import keras
import pytest

from kbuilder.graph.build import build_model
from kbuilder.graph.commands import AddNodeCommand, ConnectCommand, History, new_layer_node
from kbuilder.graph.model import Graph
from kbuilder.graph.shapes import ShapeInference
from tests.graph.catalog.test_catalog import IDS, SPECS, _cheap, _sample_inputs, _test_params
from tests.graph.helpers import add_input, add_output


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_layer_node_in_a_graph_infers_and_builds(spec):
    h, g = History(), Graph("one_layer")
    node = new_layer_node(g, spec.class_name, _cheap(_test_params(spec), spec))
    h.push(AddNodeCommand(g, node))
    for port, samples in _sample_inputs(spec).items():
        for i, (shape, dtype) in enumerate(samples):
            x = add_input(h, g, list(shape), dtype, name=f"{port}_{i}")
            h.push(ConnectCommand(g, x, 0, node.id, port))
    add_output(h, g, node.id)
    inf = ShapeInference(g)
    inf.update()
    result = inf.result(node.id)
    assert result.error is None, result.error
    model = build_model(g)
    built = keras.tree.flatten(model.get_layer(node.name)._inbound_nodes[0].output_tensors)
    assert [s.shape for s in result.outputs] == [tuple(t.shape) for t in built]
    assert result.params == model.get_layer(node.name).count_params()

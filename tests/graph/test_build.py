"""Graph -> keras.Model: names, shared weights, nested blocks, saved weights, errors."""

import numpy as np
import pytest

from kbuilder.graph.build import BuildError, build_model
from kbuilder.graph.commands import (
    AddNodeCommand,
    ConnectCommand,
    GroupCommand,
    History,
    new_shared_node,
)
from kbuilder.graph.model import Graph
from tests.graph.helpers import add_input, add_layer, add_output, mlp


def test_names_inputs_and_outputs_are_preserved():
    g, h, ids = mlp()
    model = build_model(g)
    assert model.name == "mlp"
    assert [layer.name for layer in model.layers] == ["input", "dense", "dense_1"]
    assert model.layers[1].get_config()["activation"] == "relu"
    assert tuple(model.output.shape) == (None, 4)


def test_shared_node_shares_weights():
    h, g = History(), Graph()
    a = add_input(h, g, [6], name="a")
    b = add_input(h, g, [6], name="b")
    d = add_layer(h, g, "Dense", a, units=3, name="twin")
    shared = new_shared_node(g, d)
    h.push(AddNodeCommand(g, shared))
    h.push(ConnectCommand(g, b, 0, shared.id, "inputs"))
    add_output(h, g, d, name="o1")
    add_output(h, g, shared.id, name="o2")
    model = build_model(g)
    assert [layer.name for layer in model.layers].count("twin") == 1
    x = np.random.default_rng(0).normal(size=(2, 6)).astype("float32")
    y1, y2 = model.predict([x, x], verbose=0)
    np.testing.assert_allclose(y1, y2)


def test_block_becomes_a_nested_model():
    g, h, ids = mlp()
    cmd = h.push(GroupCommand(g, [ids["dense"], ids["dense_1"]], name="head"))
    model = build_model(g)
    nested = model.get_layer("head")
    assert nested.__class__.__name__ in ("Functional", "Model")
    assert [layer.name for layer in nested.layers][1:] == ["dense", "dense_1"]
    assert model.count_params() == 16 * 8 + 8 + 8 * 4 + 4
    assert cmd.block_id in g


def test_saved_weights_are_set_and_checked():
    g, h, ids = mlp()
    model = build_model(g)
    weights = {ids["dense"]: [np.ones((16, 8), "float32"), np.zeros(8, "float32")]}
    rebuilt = build_model(g, weights)
    np.testing.assert_array_equal(rebuilt.get_layer("dense").get_weights()[0], 1.0)
    assert model.get_layer("dense").get_weights()[0].shape == (16, 8)
    with pytest.raises(BuildError) as err:
        build_model(g, {ids["dense"]: [np.ones((3, 3), "float32")]})
    assert err.value.node_id == ids["dense"] and "no longer fit" in str(err.value)


def test_build_error_names_the_node():
    g, h, ids = mlp()
    conv = add_layer(h, g, "Conv2D", ids["dense_1"], filters=2, kernel_size=[3, 3])
    add_output(h, g, conv, name="o2")
    with pytest.raises(BuildError) as err:
        build_model(g)
    assert err.value.node_id == conv and "conv2d" in str(err.value)


def test_graph_without_input_or_output_is_explained():
    with pytest.raises(BuildError, match="no inputs: add an Input node"):
        build_model(Graph())
    h, g = History(), Graph()
    add_input(h, g, [3])
    with pytest.raises(BuildError, match="no outputs: add an Output node"):
        build_model(g)


def test_call_options_reach_the_layer_call_and_survive_a_project_round_trip(tmp_path):
    from kbuilder.graph.commands import SetCallOptionCommand
    from kbuilder.graph.errors import ParamError
    from kbuilder.graph.project import Project, load_project, save_project
    from kbuilder.graph.shapes import ShapeInference

    h, g = History(), Graph("attn")
    x = add_input(h, g, [5, 8])
    mha = add_layer(h, g, "MultiHeadAttention", x, x, ports=["query", "value"],
                    num_heads=2, key_dim=4)
    add_output(h, g, mha)
    h.push(SetCallOptionCommand(g, mha, "use_causal_mask", True))
    h.push(SetCallOptionCommand(g, mha, "return_attention_scores", True))
    with pytest.raises(ParamError, match="not an option"):
        SetCallOptionCommand(g, mha, "colour", "red")
    inf = ShapeInference(g)
    inf.update()
    assert [s.shape for s in inf.result(mha).outputs] == [(None, 5, 8), (None, 2, 5, 5)]
    model = build_model(g)
    scores = model.get_layer("multi_head_attention")._inbound_nodes[0].arguments.kwargs
    assert scores["use_causal_mask"] is True
    save_project(Project.new(g), tmp_path / "p.kbproj")
    again = load_project(tmp_path / "p.kbproj").graph
    assert again.node(mha).call_options == {"use_causal_mask": True,
                                             "return_attention_scores": True}
    h.undo()
    assert g.node(mha).call_options == {"use_causal_mask": True}


def test_layer_with_only_some_parameters_set_builds():
    h, g = History(), Graph()
    x = add_input(h, g, [4, 4, 3])
    r = add_layer(h, g, "Rescaling", x, scale=1 / 255)
    add_output(h, g, r)
    model = build_model(g)
    assert model.get_layer("rescaling").offset == 0.0

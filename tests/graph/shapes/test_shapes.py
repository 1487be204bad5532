"""Shape inference agrees with the model Keras builds, reports errors on nodes, and is
incremental."""

import keras
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kbuilder.graph.build import build_model
from kbuilder.graph.commands import (
    AddNodeCommand,
    ConnectCommand,
    DisconnectCommand,
    GroupCommand,
    History,
    SetParamCommand,
    new_shared_node,
)
from kbuilder.graph.model import Graph
from kbuilder.graph.shapes import ShapeInference
from kbuilder.graph.templates import TEMPLATES
from tests.graph.helpers import add_input, add_layer, add_output, mlp


def keras_shapes(model) -> dict[str, list[tuple]]:
    """Output shapes per layer name of a built Functional model (first call)."""
    shapes = {}
    for layer in model.layers:
        out = layer._inbound_nodes[0].output_tensors
        shapes[layer.name] = [tuple(t.shape) for t in keras.tree.flatten(out)]
    return shapes


def assert_agrees_with_keras(graph: Graph, require_all: bool = True) -> ShapeInference:
    inf = ShapeInference(graph)
    inf.update()
    assert inf.errors() == []
    model = build_model(graph)
    expected = keras_shapes(model)
    for node in graph.nodes:
        if node.kind in ("layer", "input", "block") and not node.shared_with:
            if not require_all and node.name not in expected:
                continue  # a dangling branch is not part of the Keras model
            got = [s.shape for s in inf.result(node.id).outputs]
            assert got == expected[node.name], node.name
    if require_all:
        assert inf.total_params() == model.count_params()
    return inf


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_template_shapes_and_params_equal_keras(name):
    graph = TEMPLATES[name].build()
    assert_agrees_with_keras(graph)


def test_error_is_attached_to_the_node_and_downstream_is_blocked():
    g, h, ids = mlp()
    inf = ShapeInference(g)
    inf.update()
    x = add_input(h, g, [4, 4, 3], name="image")
    h.push(ConnectCommand(g, x, 0, ids["dense"], "inputs"))
    pool = add_layer(h, g, "GlobalAveragePooling2D", ids["input"])
    inf.update()
    r = inf.result(pool)
    assert r.error and "'global_average_pooling2d'" in r.error and "needs images" in r.error
    assert inf.result(ids["dense"]).ok  # Dense accepts (4, 4, 3)
    assert [nid for nid, _ in inf.errors()] == [pool]


def test_missing_input_and_unconnected_output_are_explained():
    h, g = History(), Graph()
    d = add_layer(h, g, "Dense", units=3)
    out = add_output(h, g, d)
    inf = ShapeInference(g)
    inf.update()
    assert "has no input" in inf.result(d).error
    assert inf.result(out).blocked and not inf.result(out).error
    h.push(DisconnectCommand(g, g.edges_into(out)[0].id))
    inf.update()
    assert "not connected" in inf.result(out).error


def test_bad_parameter_from_keras_names_the_parameter():
    g, h, ids = mlp()
    conv = add_layer(h, g, "Conv1D", ids["input"], filters=4, kernel_size=[3])
    inf = ShapeInference(g)
    inf.update()
    assert "Conv1D needs sequences" in inf.result(conv).error


def test_update_is_incremental_with_early_cutoff():
    h, g = History(), Graph()
    x = add_input(h, g, [16])
    chain = [x]
    for _ in range(30):
        chain.append(add_layer(h, g, "Dense", chain[-1], units=8))
    inf = ShapeInference(g)
    inf.update()
    assert len(inf.recomputed) == 31
    h.push(SetParamCommand(g, chain[10], "activation", "relu"))
    inf.update()
    assert inf.recomputed == [chain[10]]  # same output shape: nothing downstream
    h.push(SetParamCommand(g, chain[10], "units", 5))
    changed = inf.update()
    assert inf.recomputed == [chain[10], chain[11]]  # the next Dense's params change only
    assert changed == {chain[10], chain[11]}
    assert inf.result(chain[11]).params == 5 * 8 + 8
    h.undo()
    inf.update()
    assert inf.result(chain[11]).params == 8 * 8 + 8


def test_shared_layer_counts_weights_once_and_checks_shapes():
    h, g = History(), Graph()
    a = add_input(h, g, [6], name="a")
    b = add_input(h, g, [6], name="b")
    d = add_layer(h, g, "Dense", a, units=3)
    shared = new_shared_node(g, d)
    h.push(AddNodeCommand(g, shared))
    h.push(ConnectCommand(g, b, 0, shared.id, "inputs"))
    add = add_layer(h, g, "Add", d, shared.id)
    add_output(h, g, add)
    inf = assert_agrees_with_keras(g)
    assert inf.result(shared.id).params == 0 and inf.result(d).params == 21
    c = add_input(h, g, [5], name="c")
    h.push(ConnectCommand(g, c, 0, shared.id, "inputs"))
    inf.update()
    assert inf.result(shared.id).error  # a (None, 5) input cannot reuse 6x3 weights


def test_repeated_layers_are_built_once_and_keep_their_results(monkeypatch):
    from kbuilder.graph.shapes import inference

    built = []
    make = inference.make_layer
    monkeypatch.setattr(inference, "make_layer", lambda *a: built.append(a[0]) or make(*a))
    h, g = History(), Graph()
    x = add_input(h, g, [16])
    chain = [x]
    for _ in range(20):
        chain.append(add_layer(h, g, "Dense", chain[-1], units=16, name=None))
    inf = assert_agrees_with_keras(g, require_all=False)
    assert built.count("Dense") <= 1  # the other 19 agree on class, params and input
    assert inf.weight_shapes(chain[5]) == [(16, 16), (16,)]
    assert {inf.result(n).params for n in chain[1:]} == {16 * 16 + 16}


def test_a_remembered_layer_called_again_checks_its_new_input():
    h, g = History(), Graph()
    a = add_input(h, g, [6], name="a")
    add_layer(h, g, "Dense", a, units=3)  # the same layer, remembered
    d = add_layer(h, g, "Dense", a, units=3)
    inf = ShapeInference(g)
    inf.update()
    shared = new_shared_node(g, d)
    h.push(AddNodeCommand(g, shared))
    c = add_input(h, g, [5], name="c")
    h.push(ConnectCommand(g, c, 0, shared.id, "inputs"))
    inf.update()
    assert inf.result(shared.id).error  # a (None, 5) input cannot reuse 6x3 weights
    assert inf.result(d).ok and inf.result(d).params == 21


def test_block_shapes_and_inner_errors():
    g, h, ids = mlp()
    cmd = h.push(GroupCommand(g, [ids["dense"], ids["dense_1"]], name="head"))
    inf = assert_agrees_with_keras(g)
    assert inf.result(cmd.block_id).params == 16 * 8 + 8 + 8 * 4 + 4
    inner = g.node(cmd.block_id).subgraph
    h.push(SetParamCommand(inner, ids["dense"], "units", 2))
    inf.update()
    assert inf.result(cmd.block_id).params == 16 * 2 + 2 + 2 * 4 + 4


def test_multi_output_layer_ports():
    h, g = History(), Graph()
    x = add_input(h, g, [10, 4])
    lstm = add_layer(h, g, "LSTM", x, ports=["sequences"], units=3, return_state=True)
    out_h = add_output(h, g, lstm, name="out")
    h.push(ConnectCommand(g, lstm, 2, add_output(h, g, lstm, name="cell"), "inputs"))
    inf = ShapeInference(g)
    inf.update()
    assert [s.shape for s in inf.result(lstm).outputs] == [(None, 3)] * 3
    assert inf.result(out_h).ok
    model = build_model(g)
    assert len(model.outputs) == 2


# ------------------------------------------------------------ random valid graphs
@st.composite
def random_graph(draw):
    """A random valid graph, built with the shapes tracked so every op fits."""
    h, g = History(), Graph("random")
    tensors: list[tuple[str, tuple]] = []  # (node id, shape without batch)
    if draw(st.booleans()):
        size = draw(st.sampled_from([8, 12, 16]))
        tensors.append((add_input(h, g, [size, size, 3], name="image"), (size, size, 3)))
    tensors.append((add_input(h, g, [draw(st.integers(2, 12))], name="features"),
                    (None,)))
    tensors[-1] = (tensors[-1][0], tuple(g.node(tensors[-1][0]).param("shape")))
    for _ in range(draw(st.integers(1, 12))):
        src, shape = tensors[draw(st.integers(0, len(tensors) - 1))]
        if len(shape) == 3:
            op = draw(st.sampled_from(["conv", "pool", "flatten", "gap", "bn"]))
            if op == "conv":
                f = draw(st.integers(1, 6))
                nid = add_layer(h, g, "Conv2D", src, filters=f, kernel_size=[3, 3],
                                padding=draw(st.sampled_from(["same", "valid"])))
                pad = g.node(nid).param("padding") == "valid"
                shape = (shape[0] - 2 * pad, shape[1] - 2 * pad, f)
                if min(shape[:2]) < 3:
                    continue
            elif op == "pool" and min(shape[:2]) >= 4:
                nid = add_layer(h, g, "MaxPooling2D", src, pool_size=[2, 2])
                shape = (shape[0] // 2, shape[1] // 2, shape[2])
            elif op == "flatten":
                nid = add_layer(h, g, "Flatten", src)
                shape = (shape[0] * shape[1] * shape[2],)
            elif op == "gap":
                nid = add_layer(h, g, "GlobalAveragePooling2D", src)
                shape = (shape[2],)
            else:
                nid = add_layer(h, g, "BatchNormalization", src)
        else:
            op = draw(st.sampled_from(["dense", "dropout", "act", "ln", "merge", "concat"]))
            if op == "dense":
                units = draw(st.integers(1, 8))
                nid = add_layer(h, g, "Dense", src, units=units,
                                activation=draw(st.sampled_from(["relu", "tanh", "linear"])))
                shape = (units,)
            elif op == "dropout":
                nid = add_layer(h, g, "Dropout", src, rate=0.25)
            elif op == "act":
                nid = add_layer(h, g, "Activation", src, activation="sigmoid")
            elif op == "ln":
                nid = add_layer(h, g, "LayerNormalization", src)
            else:
                same = [t for t in tensors if t[1] == shape and t[0] != src]
                flat = [t for t in tensors if len(t[1]) == 1 and t[0] != src]
                pool = same if op == "merge" else flat
                if not pool:
                    continue
                other, oshape = pool[draw(st.integers(0, len(pool) - 1))]
                if op == "merge":
                    nid = add_layer(h, g, draw(st.sampled_from(["Add", "Multiply", "Maximum"])),
                                    src, other)
                else:
                    nid = add_layer(h, g, "Concatenate", src, other)
                    shape = (shape[0] + oshape[0],)
        tensors.append((nid, shape))
    add_output(h, g, tensors[-1][0])
    return g


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_graph())
def test_random_valid_graphs_agree_with_keras(graph):
    assert_agrees_with_keras(graph, require_all=False)


def _conv_project(path, filters: int, layers: int = 2) -> None:
    from kbuilder.graph.project import Project, save_project

    history, g = History(), Graph("big")
    x = add_input(history, g, [32, 32, 3])
    for _ in range(layers):
        x = add_layer(history, g, "Conv2D", x, filters=filters, kernel_size=3)
    add_output(history, g, add_layer(history, g, "GlobalAveragePooling2D", x))
    save_project(Project(g), path)


def test_shape_inference_counts_params_without_allocating_weights(tmp_path):
    # Two convolutions of 4,000 filters: 144 M weights, 1.2 GB as Keras's numpy backend
    # initializes them (float64 first). Counting them must allocate none.
    from tests.graph.helpers import run_measured

    _conv_project(tmp_path / "p.kbproj", filters=4000)
    rc, text, seconds, peak = run_measured("check", str(tmp_path / "p.kbproj"))
    assert rc == 0, text
    assert "144,116,000" in text  # 3*3*3*4000+4000 + 3*3*4000*4000+4000
    assert peak < 600, f"peak RSS {peak:.0f} MB"


def test_absurd_sizes_are_refused_before_anything_is_allocated(tmp_path):
    from tests.graph.helpers import run_measured

    _conv_project(tmp_path / "p.kbproj", filters=1_000_000)
    rc, text, seconds, peak = run_measured("check", str(tmp_path / "p.kbproj"))
    assert rc == 1
    assert "'conv2d': its output (None, 30, 30, 1000000) would hold 900,000,000 numbers" in text
    assert "Lower `filters`." in text
    assert peak < 600 and seconds < 30, (peak, seconds)


def test_size_limits_name_the_parameter():
    history, g = History(), Graph("m")
    x = add_input(history, g, [64])
    d = add_layer(history, g, "Dense", x, units=100_000_000)
    big = add_input(history, g, [100_000, 100_000, 3], name="photo")
    inf = ShapeInference(g)
    inf.update()
    dense = inf.result(d)
    assert dense.error_param == "units" and "its weights would hold at least 6,400,000,000 numbers" in dense.error
    assert inf.result(big).error_param == "shape"
    assert "Give it a smaller shape." in inf.result(big).error


@pytest.mark.parametrize("class_name, params, shapes, param, expected", [
    ("Conv2D", {"filters": 4, "kernel_size": 3}, [[64]], None,
     "Conv2D needs images (height, width, channels); it receives vectors (features) "
     "(None, 64). Insert a Reshape before it, or connect it to a layer or Input that gives "
     "images."),
    ("Conv1D", {"filters": 4, "kernel_size": 3}, [[4, 4, 4, 4]], None,
     "Conv1D needs sequences (steps, features); it receives volumes (depth, height, width, "
     "channels) (None, 4, 4, 4, 4). Insert a Reshape, Flatten or global pooling layer"),
    ("GlobalAveragePooling2D", {}, [[64]], None, "GlobalAveragePooling2D needs images"),
    ("Conv2D", {"filters": 4, "kernel_size": 3}, [[2, 2, 16]], "kernel_size",
     "the input (None, 2, 2, 16) is too small for this layer's kernel_size and strides: its "
     "output would have no positions left. Use padding='same'"),
    ("MaxPooling2D", {"pool_size": 4}, [[2, 2, 16]], "pool_size",
     "the input (None, 2, 2, 16) is too small for this layer's pool_size"),
    ("Add", {}, [[8], [4]], None,
     "Add combines its inputs value by value, so their shapes must match; it receives "
     "(None, 8) and (None, 4)."),
    ("Concatenate", {}, [[8], [4, 2]], "axis",
     "Concatenate joins its inputs along one axis, so their other sizes must match; it "
     "receives (None, 8) and (None, 4, 2)."),
    ("Reshape", {"target_shape": [5, 5]}, [[64]], "target_shape",
     "Reshape cannot turn (None, 64) (64 values per sample) into (5, 5)"),
])
def test_common_shape_errors_say_what_to_change(class_name, params, shapes, param, expected):
    history, g = History(), Graph("m")
    inputs = [add_input(history, g, s, name=f"in{i}") for i, s in enumerate(shapes)]
    node = add_layer(history, g, class_name, *inputs, name="x", **params)
    inf = ShapeInference(g)
    inf.update()
    result = inf.result(node)
    assert result.error.startswith(f"'x': {expected}"), result.error
    assert "ndim" not in result.error and "Received" not in result.error
    assert result.error_param == param

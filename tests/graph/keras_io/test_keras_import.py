"""Keras model -> graph + weights: real architectures, every call form, files, refusals.

Every imported model must pass shape inference, rebuild (``build_model``) with the same
layer classes, the same parameter count and the same outputs (atol 1e-5) as the original,
and do so again after a project save and load.
"""

from __future__ import annotations

import collections
import json
import zipfile

import keras
import numpy as np
import pytest
from keras import layers

from kbuilder.graph.build import build_model
from kbuilder.graph.keras_io import (
    ModelImportError,
    check_model_config,
    import_file,
    import_model,
    read_model_config,
)
from kbuilder.graph.project import (
    Project,
    load_project,
    project_from_json,
    project_to_json,
    save_project,
)
from kbuilder.graph.shapes import ShapeInference
from tests.graph.applications import APPLICATIONS

# Keras's numpy backend converts its variables in a way NumPy 2 warns about; not ours.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

# --------------------------------------------------------------------------- helpers


def leaf_layer_classes(model) -> collections.Counter:
    """Class names of every layer object, nested models opened (inputs left out)."""
    found: dict[int, str] = {}
    stack = [model]
    while stack:
        layer = stack.pop()
        for child in getattr(layer, "layers", []):
            if isinstance(child, keras.Model):
                stack.append(child)
            elif not isinstance(child, layers.InputLayer):
                found[id(child)] = type(child).__name__
    return collections.Counter(found.values())


def random_batch(model, batch: int = 2, seed: int = 0) -> list[np.ndarray]:
    """Random inputs for ``model`` (integers in [0, 10) for integer inputs)."""
    rng = np.random.default_rng(seed)
    arrays = []
    for tensor in model.inputs:
        shape = (batch, *(5 if d is None else d for d in tensor.shape[1:]))
        if "int" in str(tensor.dtype):
            arrays.append(rng.integers(0, 10, size=shape).astype(tensor.dtype))
        else:
            arrays.append(rng.normal(size=shape).astype(tensor.dtype))
    return arrays


def outputs_of(model, x: list[np.ndarray]) -> list[np.ndarray]:
    y = model(x if len(x) > 1 else x[0], training=False)
    return [keras.ops.convert_to_numpy(t) for t in keras.tree.flatten(y)]


def assert_same_outputs(original, rebuilt, x: list[np.ndarray]) -> None:
    expected, actual = outputs_of(original, x), outputs_of(rebuilt, x)
    assert len(expected) == len(actual)
    for e, a in zip(expected, actual, strict=True):
        assert np.isfinite(e).all()  # NaN equals NaN in assert_allclose: it would prove nothing
        np.testing.assert_allclose(a, e, atol=1e-5, rtol=0)


def assert_round_trip(model, tmp_path, x: list[np.ndarray] | None = None):
    """Import, infer shapes, rebuild, compare; then save, load, rebuild, compare."""
    graph, weights = import_model(model)
    inference = ShapeInference(graph)
    inference.update()
    assert inference.errors() == []
    inference.close()
    rebuilt = build_model(graph, weights)
    assert leaf_layer_classes(rebuilt) == leaf_layer_classes(model)
    assert rebuilt.count_params() == model.count_params()
    x = random_batch(model) if x is None else x
    assert_same_outputs(model, rebuilt, x)

    project = Project(graph, weights=weights)
    if model.count_params() < DISK_ROUND_TRIP_PARAMS:
        path = tmp_path / "imported.kbproj"
        save_project(project, path)
        loaded = load_project(path)
    else:
        # The same validation and JSON as a file, without deflating 100 MB of weights.
        document = json.loads(json.dumps(project_to_json(project), allow_nan=False))
        loaded = project_from_json(document, "imported.kbproj", weights)
    assert loaded.graph.to_dict() == graph.to_dict()
    assert_same_outputs(model, build_model(loaded.graph, loaded.weights), x)
    return graph


# Larger models skip the disk in the project round trip: writing their weights takes
# seconds of compression and tests nothing that a small model's file does not.
DISK_ROUND_TRIP_PARAMS = 2_000_000


def no_overlaps(graph) -> bool:
    spots = [node.position for node in graph.nodes]
    return len(set(spots)) == len(spots)


# -------------------------------------------------------------- keras.applications
@pytest.mark.parametrize("name", list(APPLICATIONS))
def test_application_round_trip(name, tmp_path):
    model = APPLICATIONS[name]()
    graph = assert_round_trip(model, tmp_path, random_batch(model, batch=1))
    # Every layer and every operation between layers (x + 3.0) is a node.
    assert len(graph) == len(model.operations) + len(model.outputs)
    assert no_overlaps(graph)


def test_operations_between_layers_become_operation_nodes(tmp_path):
    """Every form of a keras.ops call that kbuilder keeps: tensor and constant on either
    side, two tensors, whole numbers, lists of numbers, and operator spellings."""
    x = keras.Input((6,), name="x")
    d = layers.Dense(6, name="d")(x)
    a = d + 3.0
    b = 1.5 - a
    c = b * (1.0 / 6.0)
    e = 2 / keras.ops.maximum(c, 0.25)
    f = keras.ops.minimum(e, d) ** 2
    g = keras.ops.divide(f, np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], dtype="float32"))
    h = keras.ops.subtract(g, d) + layers.Dense(6, name="e")(d)
    model = keras.Model(x, h)
    graph = assert_round_trip(model, tmp_path)
    operations = [n for n in graph.nodes if (n.class_name or "").startswith("ops.")]
    described = sorted(((n.class_name, n.param("constant"), n.param("constant_first"))
                        for n in operations), key=repr)
    assert described == sorted([
        ("ops.add", 3.0, False), ("ops.subtract", 1.5, True), ("ops.multiply", 1 / 6, False),
        ("ops.maximum", 0.25, False), ("ops.true_divide", 2, True),
        ("ops.minimum", None, False), ("ops.power", 2, False),
        ("ops.divide", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], False), ("ops.subtract", None, False),
        ("ops.add", None, False),
    ], key=repr)
    assert not any(n.shared_with for n in operations)


def test_operation_node_constants_are_checked_and_required():
    from kbuilder.graph import catalog
    from kbuilder.graph.commands import AddNodeCommand, ConnectCommand, History, new_layer_node
    from kbuilder.graph.model import Graph
    from tests.graph.helpers import add_input, add_output

    spec = catalog.get("ops.multiply")
    assert catalog.validate_params(spec, {"constant": 2.0}) == {}
    assert "expected a number or a list of numbers" in catalog.validate_params(
        spec, {"constant": "import os"})["constant"]
    assert catalog.validate_params(spec, {"constant": [1, [2]]})  # ragged: not numbers
    h, g = History(), Graph("ops")
    x = add_input(h, g, [3])
    node = new_layer_node(g, "ops.multiply", {})
    h.push(AddNodeCommand(g, node))
    h.push(ConnectCommand(g, x, 0, node.id, "x"))
    add_output(h, g, node.id)
    inference = ShapeInference(g)
    inference.update()
    assert "needs a second operand" in inference.result(node.id).error
    g.node(node.id)._params["constant"] = 0.5
    inference = ShapeInference(g)
    inference.update()
    assert inference.errors() == []
    assert inference.result(node.id).outputs[0].shape == (None, 3)
    model = build_model(g)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model(np.ones((1, 3), "float32"))), [[0.5, 0.5, 0.5]])


def test_other_operations_are_refused_naming_them():
    x = keras.Input((4,))
    y = keras.ops.sin(layers.Dense(2, name="d")(x))
    with pytest.raises(ModelImportError) as info:
        import_model(keras.Model(x, y))
    message = str(info.value)
    assert "'sin' is a raw Keras operation" in message and "keras.ops.add" in message
    assert "\n" not in message


# ------------------------------------------------------------------ own models
def test_multi_input_multi_output(tmp_path):
    image = keras.Input((8, 8, 1), name="image")
    table = keras.Input((5,), name="table")
    x = layers.Conv2D(4, 3, activation="relu")(image)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    t = layers.Dense(6, activation="tanh", name="tab")(table)
    merged = layers.Concatenate(name="concatenate")([x, t])
    label = layers.Dense(3, activation="softmax", name="label")(merged)
    value = layers.Dense(1, name="value")(merged)
    model = keras.Model([image, table], [label, value], name="two_heads")
    graph = assert_round_trip(model, tmp_path)
    assert graph.name == "two_heads"
    assert [n.name for n in graph.input_nodes()] == ["image", "table"]
    assert [n.name for n in graph.output_nodes()] == ["label_output", "value_output"]
    assert graph.find("image").params == {"shape": [8, 8, 1], "dtype": "float32"}
    concat = graph.find("concatenate")
    assert [graph.node(e.src).name for e in graph.edges_into(concat.id)] == ["pool", "tab"]


def test_shared_layers_become_owner_and_sharers(tmp_path):
    a = keras.Input((6,), name="a")
    b = keras.Input((6,), name="b")
    twin = layers.Dense(6, name="twin")
    x = twin(twin(a))  # called on its own output too
    y = twin(b)
    model = keras.Model([a, b], layers.Add()([x, y]))
    graph = assert_round_trip(model, tmp_path)
    owner = graph.find("twin")
    sharers = graph.sharers(owner.id)
    assert [s.name for s in sharers] == ["twin_shared", "twin_shared_1"]
    assert all(s.params == {} and s.class_name == "Dense" for s in sharers)


def test_nested_functional_and_sequential_become_blocks(tmp_path):
    inner_in = keras.Input((4,), name="inner_in")
    h = layers.Dense(5, activation="relu", name="hidden")(inner_in)
    encoder = keras.Model(inner_in, [h, layers.Dense(2, name="side")(h)], name="encoder")
    head = keras.Sequential([layers.Dense(3, name="h1"), layers.Dense(1, name="h2")], name="head")
    x = keras.Input((4,), name="x")
    features, side = encoder(x)
    model = keras.Model(x, [head(features), side])
    graph = assert_round_trip(model, tmp_path)
    block = graph.find("encoder")
    assert block.kind == "block"
    inner = block.subgraph
    assert [n.name for n in inner.input_nodes()] == ["inner_in"]
    assert [p.name for p in graph.input_ports(block.id)] == [inner.input_nodes()[0].id]
    assert len(inner.output_nodes()) == 2
    assert graph.find("head").kind == "block"
    assert graph.find("head").subgraph.find("h2").class_name == "Dense"
    assert no_overlaps(inner)


def test_transfer_learning_model(tmp_path):
    # The usual way to reuse an application: frozen, called with training=False.
    base = keras.applications.MobileNetV2(
        input_shape=(32, 32, 3), alpha=0.35, weights=None, include_top=False
    )
    base.trainable = False
    image = keras.Input((32, 32, 3), name="image")
    x = layers.GlobalAveragePooling2D()(base(image, training=False))
    model = keras.Model(image, layers.Dense(3, activation="softmax", name="head")(x))
    graph = assert_round_trip(model, tmp_path, random_batch(model, batch=1))
    block = graph.find(base.name)
    assert block.kind == "block" and len(block.subgraph) == len(base.layers) + 1
    rebuilt = build_model(graph)
    trainable = sum(int(np.prod(w.shape)) for w in rebuilt.trainable_weights)
    assert trainable == 1280 * 3 + 3  # only the new head learns


def test_model_nested_twice_deep(tmp_path):
    core = keras.Sequential([keras.Input((3,)), layers.Dense(3, name="core_dense")], name="core")
    mid_in = keras.Input((3,))
    mid = keras.Model(mid_in, layers.ReLU()(core(mid_in)), name="mid")
    x = keras.Input((3,))
    model = keras.Model(x, mid(x))
    graph = assert_round_trip(model, tmp_path)
    assert graph.find("mid").subgraph.find("core").kind == "block"


def test_nested_model_called_twice_is_unpacked_with_shared_layers(tmp_path):
    tower_in = keras.Input((4,))
    tower = keras.Model(tower_in, layers.Dense(3, name="embed")(tower_in), name="tower")
    left, right = keras.Input((4,), name="left"), keras.Input((4,), name="right")
    distance = layers.Subtract()([tower(left), tower(right)])
    model = keras.Model([left, right], layers.Dense(1)(distance))
    graph = assert_round_trip(model, tmp_path)
    embed = graph.find("embed")
    assert [s.name for s in graph.sharers(embed.id)] == ["embed_shared"]
    assert all(n.kind != "block" for n in graph.nodes)


def test_rnn_with_mask_and_states(tmp_path):
    tokens = keras.Input((7,), dtype="int32", name="tokens")
    x = layers.Embedding(10, 8, mask_zero=True)(tokens)
    seq, h, c = layers.LSTM(6, return_sequences=True, return_state=True, name="first")(x)
    y = layers.LSTM(6, name="second")(seq, initial_state=[h, c])
    z = layers.Bidirectional(layers.GRU(4))(x)
    masked = layers.Masking(0.0)(layers.Reshape((7, 1))(layers.Rescaling(1.0)(tokens)))
    w = layers.SimpleRNN(3)(masked)
    model = keras.Model(tokens, [layers.Concatenate()([y, z, w])])
    x_batch = [np.array([[1, 2, 3, 0, 0, 0, 0], [4, 0, 5, 6, 7, 8, 9]], dtype="int32")]
    graph = assert_round_trip(model, tmp_path, x_batch)
    second = graph.find("second")
    ports = [(e.dst_port, graph.node(e.src).name, e.src_port) for e in graph.edges_into(second.id)]
    assert ports == [("sequences", "first", 0), ("initial_state", "first", 1),
                     ("initial_state", "first", 2)]
    # The mask is Keras's business: no extra nodes, no options.
    assert {n.class_name for n in graph.nodes if n.kind == "layer"} <= {
        "Embedding", "LSTM", "Bidirectional", "Masking", "Reshape", "Rescaling", "SimpleRNN",
        "Concatenate",
    }
    assert all(not n.call_options for n in graph.nodes)


def test_attention_ports_and_call_options(tmp_path):
    q = keras.Input((5, 8), name="q")
    v = keras.Input((6, 8), name="v")
    mask = keras.Input((5, 6), dtype="bool", name="mask")
    causal = layers.MultiHeadAttention(2, 4, name="causal")(q, q, key=q, use_causal_mask=True)
    cross, scores = layers.MultiHeadAttention(2, 4, name="cross")(
        q, v, attention_mask=mask, return_attention_scores=True
    )
    dot = layers.Attention(name="dot")([q, v])
    additive = layers.AdditiveAttention(name="additive")([q, v, v])
    out = layers.LayerNormalization()(layers.Add()([causal, cross, dot, additive]))
    model = keras.Model([q, v, mask], [out, scores])
    x = random_batch(model)
    x[2] = np.random.default_rng(1).random((2, 5, 6)) > 0.3
    graph = assert_round_trip(model, tmp_path, x)

    def ports(name):
        node = graph.find(name)
        return [(e.dst_port, graph.node(e.src).name) for e in graph.edges_into(node.id)]

    assert ports("causal") == [("query", "q"), ("value", "q"), ("key", "q")]
    assert graph.find("causal").call_options == {"use_causal_mask": True}
    assert ports("cross") == [("query", "q"), ("value", "v"), ("attention_mask", "mask")]
    assert graph.find("cross").call_options == {"return_attention_scores": True}
    assert ports("dot") == [("query", "q"), ("value", "v")]
    assert ports("additive") == [("query", "q"), ("value", "v"), ("key", "v")]


def test_training_call_option_is_kept():
    x = keras.Input((4,))
    model = keras.Model(x, layers.Dropout(0.5, name="mc")(x, training=True))
    graph, _ = import_model(model)
    assert graph.find("mc").call_options == {"training": True}


def test_preprocessing_layers(tmp_path):
    image = keras.Input((12, 12, 3), name="image")
    x = layers.Rescaling(1 / 255.0, offset=-0.5)(image)
    x = layers.Normalization(mean=[0.1, 0.2, 0.3], variance=[1.0, 2.0, 3.0], name="fixed")(x)
    x = layers.Resizing(10, 10)(x)
    x = layers.CenterCrop(8, 8)(x)
    x = layers.RandomFlip()(x)  # identity at inference
    x = layers.Flatten()(layers.Conv2D(2, 3)(x))
    numbers = keras.Input((3,), name="numbers")
    bins = layers.Discretization(bin_boundaries=[-1.0, 0.0, 1.0])(numbers)
    onehot = layers.CategoryEncoding(4, output_mode="multi_hot")(bins)
    codes = keras.Input((4,), dtype="int64", name="codes")
    lookup = layers.IntegerLookup(output_mode="one_hot", name="lookup")
    lookup.adapt(np.array([3, 5, 5, 8, 9]))  # Keras keeps this vocabulary as a file asset
    found = layers.Flatten()(lookup(codes))
    model = keras.Model(
        [image, numbers, codes], layers.Concatenate()([x, onehot, found])
    )
    x_batch = random_batch(model)
    x_batch[0] = np.random.default_rng(2).uniform(0, 255, size=(2, 12, 12, 3)).astype("float32")
    x_batch[2] = np.array([[3, 5, 7, 9], [8, 8, 0, 100]], dtype="int64")
    graph = assert_round_trip(model, tmp_path, x_batch)
    assert graph.find("fixed").params["mean"] == [0.1, 0.2, 0.3]
    assert graph.find("lookup").params["vocabulary"] == [-1, 5, 9, 8, 3]


def test_adapted_normalization(tmp_path):
    numbers = keras.Input((3,), name="numbers")
    adapted = layers.Normalization(name="adapted")
    adapted.adapt(np.random.default_rng(0).normal(3.0, 2.0, size=(50, 3)))
    model = keras.Model(numbers, adapted(numbers))
    graph = assert_round_trip(model, tmp_path)
    assert graph.find("adapted").params.get("mean") is None  # learned state is in weights


def test_sequential_model(tmp_path):
    model = keras.Sequential(
        [keras.Input((6,)), layers.Dense(4, activation="relu"), layers.Dense(2)], name="seq"
    )
    graph = assert_round_trip(model, tmp_path)
    assert [n.kind for n in graph.nodes] == ["input", "layer", "layer", "output"]


def test_unbuilt_sequential_is_refused():
    with pytest.raises(ModelImportError, match="has not been built"):
        import_model(keras.Sequential([layers.Dense(2)]))


def test_params_are_tidy_and_names_are_kept():
    x = keras.Input((4,), name="features")
    y = layers.Dense(
        3, kernel_initializer=keras.initializers.HeNormal(seed=7),
        kernel_regularizer=keras.regularizers.L2(0.01), name="dense_out",
    )(x)
    graph, weights = import_model(keras.Model(x, y, name="tidy"))
    params = graph.find("dense_out").params
    assert "name" not in params
    assert params["dtype"] == "float32"
    assert params["bias_initializer"] == "zeros"
    assert params["kernel_regularizer"] == "l2"  # L2(0.01) is the default
    assert params["kernel_initializer"]["class_name"] == "HeNormal"  # has a seed: kept
    assert [w.shape for w in weights[graph.find("dense_out").id]] == [(4, 3), (3,)]


ADVERSARIAL_NAMES = ["it's \"quoted\"", "back\\slash", "new\nline", "ünï cødé ✓", "class", "None"]


def test_adversarial_layer_names_survive(tmp_path):
    x = keras.Input((3,), name="def")
    h = x
    for name in ADVERSARIAL_NAMES:
        h = layers.Dense(3, name=name)(h)
    model = keras.Model(x, h, name="lambda")
    graph = assert_round_trip(model, tmp_path)
    assert [n.name for n in graph.nodes] == ["def", *ADVERSARIAL_NAMES, "output"]
    rebuilt = build_model(graph)
    assert [layer.name for layer in rebuilt.layers] == ["def", *ADVERSARIAL_NAMES]


# ------------------------------------------------------------------ refusals in memory
def test_raw_ops_are_named():
    x = keras.Input((4,))
    y = keras.ops.transpose(layers.Dense(2, name="d")(x))
    with pytest.raises(ModelImportError, match=r"'transpose(_\d+)?' is a raw Keras operation"):
        import_model(keras.Model(x, y))


def test_mask_given_by_hand_is_refused():
    x = keras.Input((5, 2))
    mask = keras.Input((5,), dtype="bool")
    y = layers.LSTM(3, name="rnn")(x, mask=mask)
    with pytest.raises(ModelImportError, match=r"'rnn' \(LSTM\) is given a mask by hand"):
        import_model(keras.Model([x, mask], y))


class Doubler(layers.Layer):
    """A custom layer, deliberately not registered."""

    def call(self, x):
        return x * 2


def test_custom_layer_class_is_named():
    x = keras.Input((4,))
    with pytest.raises(ModelImportError, match="Layer 'twice' uses the custom class 'Doubler'"):
        import_model(keras.Model(x, Doubler(name="twice")(x)))


def test_subclassed_model_is_refused():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    net = Net()
    net(np.zeros((1, 3), "float32"))
    with pytest.raises(ModelImportError, match="subclassed model"):
        import_model(net)


# ----------------------------------------------------------------------- files
def small_model(name: str = "functional") -> keras.Model:
    x = keras.Input((4,), name="x")
    return keras.Model(x, layers.Dense(2, name="d")(layers.Dense(3)(x)), name=name)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_import_file_round_trip(tmp_path, suffix):
    model = small_model()
    path = tmp_path / f"my_model{suffix}"
    model.save(path)
    project = import_file(path)
    assert project.name == "my_model"  # Keras's automatic name is replaced by the file's
    x = random_batch(model)
    assert_same_outputs(model, build_model(project.graph, project.weights), x)


def test_application_from_keras_file(tmp_path):
    model = APPLICATIONS["MobileNetV2"]()
    path = tmp_path / "mobilenet.keras"
    model.save(path)
    project = import_file(path)
    assert project.name == model.name
    assert_same_outputs(model, build_model(project.graph, project.weights), random_batch(model))


def test_masks_nesting_and_sharing_survive_a_file(tmp_path):
    # A loaded model records the mask operations saved with it rather than the masks Keras
    # attaches while loading; they must still be recognised as automatic.
    tokens = keras.Input((6,), dtype="int32", name="tokens")
    x = layers.Embedding(10, 4, mask_zero=True)(tokens)
    attended = layers.MultiHeadAttention(2, 2)(x, x, use_causal_mask=True)
    seq = layers.LSTM(3, return_sequences=True)(attended)
    masked = layers.Masking(0.0)(seq)
    head = keras.Sequential([layers.Dense(3), layers.ReLU()], name="head")
    shared = layers.Dense(2, name="shared")
    out = layers.Add()([shared(layers.GRU(4)(masked)), shared(layers.GlobalAveragePooling1D()(x))])
    model = keras.Model(tokens, head(out))
    path = tmp_path / "masked.keras"
    model.save(path)
    project = import_file(path)
    x_batch = [np.array([[1, 2, 3, 0, 0, 0], [4, 0, 5, 6, 7, 8]], dtype="int32")]
    rebuilt = build_model(project.graph, project.weights)
    assert rebuilt.count_params() == model.count_params()
    assert_same_outputs(model, rebuilt, x_batch)
    assert project.graph.find("head").kind == "block"

    # Keras 3 itself cannot read the mask operations back from the legacy format.
    legacy = tmp_path / "masked.h5"
    model.save(legacy)
    with pytest.raises(ModelImportError, match=r"\(NotEqual\) is a Keras operation.*legacy"):
        import_file(legacy)


def lambda_model() -> keras.Model:
    x = keras.Input((4,), name="x")
    y = layers.Lambda(lambda t: t + 1.0, name="my_lambda")(layers.Dense(3)(x))
    return keras.Model(x, y)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_lambda_file_is_refused_before_keras_reads_it(tmp_path, suffix, monkeypatch):
    path = tmp_path / f"risky{suffix}"
    lambda_model().save(path)

    def never(*args, **kwargs):
        raise AssertionError("Keras must not deserialize a refused file")

    monkeypatch.setattr(keras.saving, "load_model", never)
    with pytest.raises(ModelImportError) as info:
        import_file(path)
    assert str(info.value) == (
        "Layer 'my_lambda' (Lambda) contains Python code, which would run on your computer "
        "when the model is opened. Open it only if you trust where it came from: "
        "`kbuilder import --trust`."
    )


def test_trusted_lambda_file_loads_but_lambda_cannot_be_a_node(tmp_path):
    path = tmp_path / "risky.keras"
    lambda_model().save(path)
    with pytest.raises(ModelImportError) as info:
        import_file(path, trust=True)
    message = str(info.value)
    assert "Layer 'my_lambda' (Lambda) runs Python code" in message
    assert "could not be shown, edited or saved" in message


def test_code_inside_a_layer_setting_is_found():
    config = {"class_name": "Functional", "config": {"name": "m", "layers": [{
        "class_name": "Dense", "module": "keras.layers",
        "config": {"name": "d", "trainable": True, "activation": {
            "class_name": "__lambda__", "config": {"code": "..."}}},
    }]}}
    with pytest.raises(ModelImportError, match=r"Layer 'd' \(Dense\) contains Python code"):
        check_model_config(config)
    check_model_config(config, trust=True)


def test_custom_class_file_is_refused_naming_the_class(tmp_path):
    x = keras.Input((4,))
    model = keras.Model(x, Doubler(name="foo")(layers.Dense(3)(x)))
    path = tmp_path / "custom.keras"
    model.save(path)
    for trust in (False, True):
        with pytest.raises(ModelImportError, match="^Layer 'foo' uses the custom class 'Doubler'"):
            import_file(path, trust=trust)


def test_custom_function_is_refused(tmp_path):
    def my_activation(t):
        return t

    x = keras.Input((4,))
    path = tmp_path / "act.keras"
    keras.Model(x, layers.Dense(3, activation=my_activation, name="dense")(x)).save(path)
    with pytest.raises(ModelImportError, match="custom function 'my_activation'"):
        import_file(path)


def test_registered_custom_class_loads_but_is_not_a_catalog_layer(tmp_path):
    @keras.saving.register_keras_serializable(package="kbtest")
    class Tripler(layers.Layer):
        def call(self, x):
            return x * 3

    x = keras.Input((4,))
    path = tmp_path / "registered.keras"
    keras.Model(x, Tripler(name="triple")(x)).save(path)
    check_model_config(read_model_config(path))  # registered: the file is fine
    with pytest.raises(ModelImportError, match="uses the custom class 'Tripler'"):
        import_file(path)


def test_truncated_and_foreign_files_are_refused(tmp_path):
    path = tmp_path / "model.keras"
    small_model().save(path)
    data = path.read_bytes()
    cases = {
        "truncated.keras": data[: len(data) // 2],
        "text.keras": b"this is not a model",
        "empty.h5": b"",
        "text.h5": b"\x89HDF\r\n nope",
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ModelImportError, match="damaged|not a"):
            import_file(tmp_path / name)
    no_config = tmp_path / "other.keras"
    with zipfile.ZipFile(no_config, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(ModelImportError, match="has no config.json"):
        import_file(no_config)
    bad_json = tmp_path / "bad.keras"
    with zipfile.ZipFile(bad_json, "w") as archive:
        archive.writestr("config.json", "{not json")
    with pytest.raises(ModelImportError, match="not valid JSON"):
        import_file(bad_json)
    with pytest.raises(ModelImportError, match="expected a name ending in"):
        import_file(tmp_path / "model.onnx")
    with pytest.raises(ModelImportError, match="does not exist"):
        import_file(tmp_path / "missing.keras")


def test_weights_only_h5_is_refused(tmp_path):
    path = tmp_path / "only.weights.h5"
    small_model().save_weights(path)
    with pytest.raises(ModelImportError, match="holds no model, only weights"):
        import_file(path)


def test_keras_file_whose_weights_are_damaged(tmp_path):
    path = tmp_path / "model.keras"
    small_model().save(path)
    damaged = tmp_path / "damaged.keras"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(damaged, "w") as dst:
        for info in src.infolist():
            content = src.read(info)
            if info.filename.endswith(".h5"):
                content = content[: len(content) // 3]
            dst.writestr(info, content)
    with pytest.raises(ModelImportError, match="could not be loaded"):
        import_file(damaged)


# ------------------------------------------------------------------------ CLI
def test_cli_import(tmp_path, capsys):
    from kbuilder.cli import main

    model_path = tmp_path / "net.keras"
    small_model("net").save(model_path)
    out = tmp_path / "net.kbproj"
    assert main(["import", str(model_path), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "4 nodes" in printed and "23 params" in printed
    assert load_project(out).name == "net"
    assert main(["import", str(model_path), "-o", str(out)]) == 2  # exists
    assert "--force" in capsys.readouterr().err
    assert main(["import", str(model_path), "-o", str(out), "--force"]) == 0


def test_cli_import_refusal_is_one_line_exit_2(tmp_path, capsys):
    from kbuilder.cli import main

    path = tmp_path / "risky.keras"
    lambda_model().save(path)
    out = tmp_path / "risky.kbproj"
    assert main(["import", str(path), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "my_lambda" in err and "--trust" in err
    assert not out.exists()
    assert main(["import", str(path), "-o", str(out), "--trust"]) == 2
    assert "runs Python code" in capsys.readouterr().err
    assert not out.exists()


# ------------------------------------------------- one file-safety check for every use
def _zip_bomb(path, size: int = 2**30) -> None:
    """A tiny model whose weights member unpacks to ``size`` bytes of zeros (~1000:1)."""
    small = path.with_name("small.keras")
    keras.Sequential([keras.Input((4,)), layers.Dense(2)]).save(small)
    with zipfile.ZipFile(small) as src, zipfile.ZipFile(
        path, "w", zipfile.ZIP_DEFLATED, compresslevel=1
    ) as dst:
        for info in src.infolist():
            if info.filename != "model.weights.h5":
                dst.writestr(info, src.read(info))
                continue
            with dst.open(info.filename, "w", force_zip64=True) as member:
                chunk = bytes(2**24)
                for _ in range(size // len(chunk)):
                    member.write(chunk)


_LOADERS = {
    "import": "from kbuilder.graph.keras_io import import_file as load",
    "predict": "from kbuilder.runtime.inference import load_trained_model as load",
    "export": "from kbuilder.runtime.export.source import load_model as load",
}


def test_zip_bomb_is_refused_before_it_is_read_by_import_predict_and_export(tmp_path):
    from tests.graph.helpers import run_measured

    bomb = tmp_path / "bomb.keras"
    _zip_bomb(bomb)
    assert bomb.stat().st_size < 8 * 2**20
    for use, loader in _LOADERS.items():
        code = f"import sys, pathlib\n{loader}\nload(pathlib.Path(sys.argv[1]))\n"
        rc, text, seconds, peak = run_measured(str(bomb), code=code)
        assert rc == 1, (use, text)
        assert ("'bomb.keras' holds weights that unpack to 1.0 GiB, but its model has 10 "
                "parameters") in text, (use, text)
        assert peak < 600, f"{use}: peak RSS {peak:.0f} MB"


def test_member_sizes_have_a_hard_limit(tmp_path, monkeypatch):
    from kbuilder.graph.keras_io import reading

    path = tmp_path / "m.keras"
    keras.Sequential([keras.Input((4,)), layers.Dense(2)]).save(path)
    monkeypatch.setattr(reading, "MAX_OTHER_MEMBER_BYTES", 10)
    with pytest.raises(ModelImportError, match=r"'m.keras' holds '.*\.json', which unpacks"):
        import_file(path)


def test_predict_and_export_explain_a_lambda_layer(tmp_path):
    from kbuilder.graph.keras_io import NeedsTrustError
    from kbuilder.runtime.export import ExportError
    from kbuilder.runtime.export.source import load_model
    from kbuilder.runtime.inference import load_trained_model

    path = tmp_path / "risky.keras"
    lambda_model().save(path)
    expected = ("Layer 'my_lambda' (Lambda) contains Python code, which would run on your "
                "computer when the model is opened. kbuilder never runs code from a model "
                "file to predict or export;")
    with pytest.raises(ModelImportError) as info:
        load_trained_model(str(path))
    assert str(info.value).startswith(expected)
    with pytest.raises(ExportError) as export_info:
        load_model(path)
    assert str(export_info.value).startswith(expected)
    # A typed answer to "would trusting the file open it?" for the window.
    with pytest.raises(NeedsTrustError) as trust:
        import_file(path)
    assert trust.value.trust_would_help


def test_a_custom_class_needs_more_than_trust(tmp_path):
    from kbuilder.graph.keras_io import NeedsTrustError

    config = {"class_name": "Functional", "config": {"name": "m", "layers": [
        {"class_name": "Lambda", "module": "keras.layers", "config": {"name": "l"}},
        {"class_name": "Doubler", "module": "my.layers", "config": {"name": "d"}},
    ]}}
    with pytest.raises(ModelImportError) as info:
        check_model_config(config)
    assert not isinstance(info.value, NeedsTrustError)
    assert not info.value.trust_would_help  # trusting would still leave Doubler unknown


@pytest.mark.slow
def test_a_chain_longer_than_pythons_recursion_limit_goes_every_way(tmp_path):
    # Keras walks a model's graph recursively, one call per layer of the chain.
    from kbuilder.graph import codegen
    from kbuilder.graph.layout import layered_positions
    from kbuilder.graph.model import Graph

    n = 1_200
    nodes = [{"id": "in", "kind": "input", "name": "x", "params": {"shape": [2]}}]
    nodes += [{"id": f"d{i}", "kind": "layer", "name": f"d{i}", "class_name": "Dense",
               "params": {"units": 2}} for i in range(n)]
    nodes.append({"id": "out", "kind": "output", "name": "output"})
    ids = [n["id"] for n in nodes]
    edges = [{"id": f"e{i}", "src": a, "src_port": 0, "dst": b, "dst_port": "inputs"}
             for i, (a, b) in enumerate(zip(ids, ids[1:], strict=False))]
    graph = Graph.from_dict({"name": "chain", "nodes": nodes, "edges": edges})
    inference = ShapeInference(graph)
    inference.update()
    assert inference.errors() == [] and inference.total_params() == n * 6
    assert len(layered_positions(graph)) == n + 2
    assert "outputs=d1199" in codegen.generate_model_code(graph)
    model = build_model(graph)
    path = tmp_path / "chain.keras"
    model.save(path)
    project = import_file(path)
    assert sum(1 for _ in project.graph.walk()) == n + 2

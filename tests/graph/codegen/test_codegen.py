"""Graph -> Python: generated code is ruff-clean, runs, and builds the very same model.

Every case checks the round trip the way a user relies on it: the generated
``build_model()`` gives the layer classes, names, configurations and parameter count of
``kbuilder.graph.build.build_model(graph)``, and after copying the weights layer by layer
the outputs are identical. Training scripts and notebooks are run on tiny data in
subprocesses (JAX backend), all at once, while the in-process tests go on.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import keras
import numpy as np
import pytest

from kbuilder import cli
from kbuilder.graph.build import build_model
from kbuilder.graph.codegen import (
    CodegenError,
    generate_model_code,
    generate_notebook,
    generate_training_script,
    layer_args,
    literals,
    write_notebook,
)
from kbuilder.graph.commands import (
    AddNodeCommand,
    ConnectCommand,
    GroupCommand,
    History,
    SetCallOptionCommand,
    new_output_node,
    new_shared_node,
)
from kbuilder.graph.model import Graph
from kbuilder.graph.project import Project, save_project
from kbuilder.graph.settings import DataSettings, TrainingSettings
from kbuilder.graph.templates import TEMPLATES
from tests.graph.applications import APPLICATIONS
from tests.graph.helpers import add_input, add_layer, add_output

REPO = Path(__file__).resolve().parents[3]
RUFF = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
FORBIDDEN = ("from_config", "deserialize", "load_model", "json", "import kbuilder",
             "from kbuilder")


# ======================================================================================
# Helpers
# ======================================================================================


def ruff_problems(code: str, tmp_path: Path, name: str = "generated.py") -> str:
    """``ruff check`` output for ``code`` under the project's own configuration ('' = clean)."""
    if RUFF is None:
        pytest.skip("ruff is not installed")
    folder = tmp_path / f"ruff_{name.replace('.', '_')}"
    folder.mkdir(exist_ok=True)
    shutil.copy(REPO / "pyproject.toml", folder / "pyproject.toml")
    (folder / name).write_text(code, encoding="utf-8")
    result = subprocess.run(
        [RUFF, "check", "--no-cache", name], cwd=folder, capture_output=True, text=True,
    )
    return "" if result.returncode == 0 else result.stdout + result.stderr


def run_code(code: str) -> dict:
    """Execute generated code in a fresh namespace (not as ``__main__``)."""
    namespace: dict = {"__name__": "generated_model"}
    exec(compile(code, "generated_model.py", "exec"), namespace)
    return namespace


def all_layers(model) -> list:
    out = []
    for layer in model.layers:
        out.append(layer)
        if isinstance(layer, keras.Model):
            out += all_layers(layer)
    return out


def sample_inputs(model, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = []
    for tensor in model.inputs:
        shape = [2] + [4 if d is None else d for d in tensor.shape[1:]]
        if "int" in str(tensor.dtype):
            arrays.append(rng.integers(0, 10, size=shape).astype(str(tensor.dtype)))
        else:
            arrays.append(rng.normal(size=shape).astype("float32"))
    return arrays


def assert_round_trip(graph: Graph, tmp_path: Path) -> str:
    """Generate, lint, run and compare with ``build_model(graph)``; returns the code."""
    code = generate_model_code(graph)
    assert ruff_problems(code, tmp_path) == ""
    for word in FORBIDDEN:
        assert word not in code, word
    expected = build_model(graph)
    got = run_code(code)["build_model"]()
    assert got.name == expected.name
    assert [type(lay).__name__ for lay in all_layers(got)] == [
        type(lay).__name__ for lay in all_layers(expected)
    ]
    assert [lay.name for lay in all_layers(got)] == [lay.name for lay in all_layers(expected)]
    for a, b in zip(all_layers(expected), all_layers(got), strict=True):
        if not isinstance(a, keras.Model):
            assert layer_args.same(
                layer_args.comparable(b.get_config()), layer_args.comparable(a.get_config())
            ), a.name
    assert got.count_params() == expected.count_params()
    for a, b in zip(expected.layers, got.layers, strict=True):
        b.set_weights(a.get_weights())
    inputs = sample_inputs(expected)
    feed = inputs[0] if len(inputs) == 1 else inputs
    want = keras.tree.flatten(expected(feed, training=False))
    have = keras.tree.flatten(got(feed, training=False))
    assert len(want) == len(have)
    for w, h in zip(want, have, strict=True):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(h), keras.ops.convert_to_numpy(w), atol=1e-5
        )
    return code


def build_model_source(code: str) -> str:
    start = code.index("def build_model():")
    end = code.index('\n\n\nif __name__ == "__main__":')
    return code[start:end]


def layer_config(layer_cls, **kwargs) -> dict:
    """An imported layer's parameters: the full ``get_config()`` without the name."""
    config = layer_cls(**kwargs).get_config()
    config.pop("name")
    return config


# ======================================================================================
# build_model(): templates and hand-made graphs
# ======================================================================================


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_every_template_regenerates_the_same_model(name, tmp_path):
    graph = TEMPLATES[name].build()
    code = assert_round_trip(graph, tmp_path)
    assert code.startswith('"""') and "import keras\nfrom keras import layers\n" in code
    # Same graph (drawn again, with new ids) -> same bytes.
    assert generate_model_code(TEMPLATES[name].build()) == code


def test_mlp_code_reads_like_hand_written_keras():
    code = generate_model_code(TEMPLATES["mlp_classifier"].build())
    assert build_model_source(code) == textwrap.dedent('''\
        def build_model():
            """Build the model (fresh weights, not compiled)."""
            features = keras.Input(shape=(64,), name="features")
            dense = layers.Dense(128, activation="relu", name="dense")(features)
            dropout = layers.Dropout(0.2, name="dropout")(dense)
            dense_1 = layers.Dense(64, activation="relu", name="dense_1")(dropout)
            predictions = layers.Dense(10, activation="softmax", name="predictions")(dense_1)
            return keras.Model(inputs=features, outputs=predictions, name="mlp_classifier")''')


def test_only_non_default_arguments_are_written(tmp_path):
    h, g = History(), Graph("defaults")
    x = add_input(h, g, [8, 8, 3], name="image")
    c = add_layer(h, g, "Conv2D", x, name="conv", filters=4, kernel_size=[3, 3],
                  strides=[1, 1], padding="valid", activation=None)
    p1 = add_layer(h, g, "MaxPooling2D", c, name="pool", pool_size=[3, 3], strides=[2, 2])
    # strides=(2, 2) is what get_config() reports for pool_size 2: still not a default here.
    p2 = add_layer(h, g, "MaxPooling2D", c, name="pool_b", pool_size=[2, 2], strides=[1, 1])
    f = add_layer(h, g, "Flatten", p1)
    f2 = add_layer(h, g, "Flatten", p2, name="flatten_b")
    cat = add_layer(h, g, "Concatenate", f, f2)
    d = add_layer(h, g, "Dense", cat, name="dense", **layer_config(keras.layers.Dense, units=10))
    add_output(h, g, d)
    code = assert_round_trip(g, tmp_path)
    assert 'layers.Conv2D(4, 3, name="conv")(image)' in code
    assert 'layers.MaxPooling2D(3, strides=2, name="pool")(conv)' in code
    assert 'layers.MaxPooling2D(strides=1, name="pool_b")(conv)' in code
    # An imported Dense carries its full config (linear, GlorotUniform, dtype policy ...).
    assert 'layers.Dense(10, name="dense")(concatenate)' in code


def test_initializers_regularizers_and_constraints_are_readable(tmp_path):
    h, g = History(), Graph("objects")
    x = add_input(h, g, [6])
    config = layer_config(
        keras.layers.Dense, units=5,
        kernel_initializer=keras.initializers.HeNormal(seed=1),
        bias_initializer=keras.initializers.Constant(0.5),
        kernel_regularizer=keras.regularizers.L2(0.01),
        bias_regularizer=keras.regularizers.L1L2(l1=0.001, l2=0.002),
        kernel_constraint=keras.constraints.MaxNorm(3),
        bias_constraint=keras.constraints.NonNeg(),
    )
    d1 = add_layer(h, g, "Dense", x, name="dense", **config)
    d2 = add_layer(h, g, "Dense", d1, name="plain", **layer_config(
        keras.layers.Dense, units=3, kernel_initializer="he_normal"))
    add_output(h, g, d2)
    code = assert_round_trip(g, tmp_path)
    assert "kernel_initializer=keras.initializers.HeNormal(seed=1)" in code
    assert "bias_initializer=keras.initializers.Constant(value=0.5)" in code
    assert "kernel_regularizer=keras.regularizers.L2(0.01)" in code
    assert "bias_regularizer=keras.regularizers.L1L2(l1=0.001, l2=0.002)" in code
    assert "kernel_constraint=keras.constraints.MaxNorm(max_value=3)" in code
    assert 'bias_constraint="non_neg"' in code
    assert 'layers.Dense(3, kernel_initializer="he_normal", name="plain")(dense)' in code


def test_shared_layer_is_defined_once_and_called_at_each_use(tmp_path):
    h, g = History(), Graph("siamese")
    a = add_input(h, g, [6], name="left")
    b = add_input(h, g, [6], name="right")
    d = add_layer(h, g, "Dense", a, units=3, name="twin")
    shared = new_shared_node(g, d)
    h.push(AddNodeCommand(g, shared))
    h.push(ConnectCommand(g, b, 0, shared.id, "inputs"))
    dist = add_layer(h, g, "Subtract", d, shared.id)
    add_output(h, g, dist)
    code = assert_round_trip(g, tmp_path)
    assert code.count("layers.Dense(") == 1
    assert 'twin_layer = layers.Dense(3, name="twin")' in code
    assert "twin = twin_layer(left)" in code and "twin_shared = twin_layer(right)" in code
    assert "layers.Subtract(name=\"subtract\")([twin, twin_shared])" in code
    assert "inputs=[left, right]" in code


@pytest.mark.slow
def test_a_shared_backbone_is_built_once_and_called_twice(tmp_path):
    # A siamese pair: one pretrained network (frozen) applied to two images.
    h, g = History(), Graph("siamese_net")
    a = add_input(h, g, [32, 32, 3], name="left")
    b = add_input(h, g, [32, 32, 3], name="right")
    net = add_layer(h, g, "applications.MobileNetV3Small", a, weights=None, pooling="avg",
                    trainable=False)
    twin = new_shared_node(g, net)
    h.push(AddNodeCommand(g, twin))
    h.push(ConnectCommand(g, b, 0, twin.id, "inputs"))
    dist = add_layer(h, g, "Subtract", net, twin.id)
    add_output(h, g, add_layer(h, g, "Dense", dist, units=1, activation="sigmoid"))
    code = generate_model_code(g)
    assert ruff_problems(code, tmp_path) == ""
    assert code.count("keras.applications.MobileNetV3Small(") == 1
    assert "mobilenetv3small_layer.trainable = False" in code
    assert code.count("= mobilenetv3small_layer(") == 2
    # (Not assert_round_trip: the network's inner Input is named by Keras's session counter.)
    expected, got = build_model(g), run_code(code)["build_model"]()
    assert [type(layer).__name__ for layer in got.layers] == [
        type(layer).__name__ for layer in expected.layers]
    assert sum(isinstance(layer, keras.Model) for layer in got.layers) == 1
    assert got.count_params() == expected.count_params()
    assert len(got.trainable_weights) == len(expected.trainable_weights) == 2
    for mine, theirs in zip(expected.layers, got.layers, strict=True):
        theirs.set_weights(mine.get_weights())
    feed = sample_inputs(expected)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(got(feed, training=False)),
                               keras.ops.convert_to_numpy(expected(feed, training=False)),
                               atol=1e-5)


def test_nested_blocks_become_functions(tmp_path):
    h, g = History(), Graph("nested")
    x = add_input(h, g, [12])
    d1 = add_layer(h, g, "Dense", x, units=8, activation="relu")
    d2 = add_layer(h, g, "Dense", d1, units=8, activation="tanh")
    d3 = add_layer(h, g, "Dense", d2, units=4)
    add_output(h, g, d3)
    inner = h.push(GroupCommand(g, [d1, d2], name="encoder"))
    h.push(GroupCommand(g, [inner.block_id, d3], name="head"))
    code = assert_round_trip(g, tmp_path)
    assert code.index("def build_encoder():") < code.index("def build_head():") < code.index(
        "def build_model():")
    assert "encoder = build_encoder()(" in code and "head = build_head()(input_)" in code
    assert 'name="encoder")' in code and 'name="head")' in code


def test_multiple_inputs_and_outputs(tmp_path):
    h, g = History(), Graph("two_by_two")
    a = add_input(h, g, [4], name="a")
    b = add_input(h, g, [3], name="b")
    cat = add_layer(h, g, "Concatenate", a, b)
    y1 = add_layer(h, g, "Dense", cat, units=2, name="score")
    y2 = add_layer(h, g, "Dense", cat, units=1, activation="sigmoid", name="flag")
    add_output(h, g, y1, name="out_score")
    add_output(h, g, y2, name="out_flag")
    code = assert_round_trip(g, tmp_path)
    assert "keras.Model(inputs=[a, b], outputs=[score, flag]" in code
    assert 'layers.Concatenate(name="concatenate")([a, b])' in code


def test_attention_with_call_options_and_two_outputs(tmp_path):
    h, g = History(), Graph("attention")
    x = add_input(h, g, [5, 8], name="tokens")
    mha = add_layer(h, g, "MultiHeadAttention", x, x, ports=["query", "value"],
                    num_heads=2, key_dim=4, name="attention")
    h.push(SetCallOptionCommand(g, mha, "use_causal_mask", True))
    h.push(SetCallOptionCommand(g, mha, "return_attention_scores", True))
    add_output(h, g, mha, name="values")
    scores = new_output_node(g, "scores")
    h.push(AddNodeCommand(g, scores))
    h.push(ConnectCommand(g, mha, 1, scores.id))  # output 1 of the layer: the scores
    code = assert_round_trip(g, tmp_path)
    assert "attention, attention_out1 = layers.MultiHeadAttention(" in code
    assert "(tokens, tokens, use_causal_mask=True, return_attention_scores=True)" in code
    assert "outputs=[attention, attention_out1]" in code


def test_wrappers_are_written_inline(tmp_path):
    h, g = History(), Graph("wrappers")
    x = add_input(h, g, [6, 4], name="series")
    bi = add_layer(h, g, "Bidirectional", x, ports=["sequences"], name="bi", **layer_config(
        keras.layers.Bidirectional, layer=keras.layers.LSTM(5, return_sequences=True)))
    td = add_layer(h, g, "TimeDistributed", bi, name="per_step",
                   layer={"class_name": "Dense", "config": {"units": 3}})
    gru = add_layer(h, g, "Bidirectional", td, ports=["sequences"], name="bi_gru",
                    layer={"class_name": "GRU", "config": {"units": 2}}, merge_mode="sum")
    add_output(h, g, gru)
    code = assert_round_trip(g, tmp_path)
    # The imported Bidirectional's backward layer is implied by the forward one.
    assert "layers.Bidirectional(\n" in code or "layers.Bidirectional(layers.LSTM(5" in code
    assert "backward_layer" not in code and "zero_output_for_mask" not in code
    assert 'layers.TimeDistributed(layers.Dense(3), name="per_step")(bi)' in code
    assert 'layers.Bidirectional(layers.GRU(2), merge_mode="sum", name="bi_gru")' in code


def test_preprocessing_with_given_state(tmp_path):
    h, g = History(), Graph("preprocessing")
    x = add_input(h, g, [3], name="measurements")
    n = add_layer(h, g, "Normalization", x, mean=[1.0, 2.0, 3.0], variance=[4.0, 0.25, 1.0])
    disc = add_layer(h, g, "Discretization", n, bin_boundaries=[-1.0, 0.0, 1.0])
    enc = add_layer(h, g, "CategoryEncoding", disc, num_tokens=4, output_mode="count")
    r = add_layer(h, g, "Rescaling", n, scale=0.5, offset=1.0)
    cat = add_layer(h, g, "Concatenate", enc, r)
    add_output(h, g, cat)
    code = assert_round_trip(g, tmp_path)
    assert "mean=[1.0, 2.0, 3.0], variance=[4.0, 0.25, 1.0]" in code
    assert "layers.Discretization(\n        bin_boundaries=[-1.0, 0.0, 1.0]" in code


def test_layers_that_feed_no_output_are_left_out(tmp_path):
    h, g = History(), Graph("dangling")
    x = add_input(h, g, [4])
    d = add_layer(h, g, "Dense", x, units=2)
    add_layer(h, g, "Dense", x, units=7, name="unused")
    add_output(h, g, d)
    code = assert_round_trip(g, tmp_path)
    assert "unused" not in code


ADVERSARIAL = ['a"b', "it's", "back\\slash", "new\nline", "ünïcødé", "class", "def", "None",
               "a-b", "a b", "a.b", "A_B", "9lives", "__init__", "build_model", "keras",
               "tab\there", "\u202eevil", "x"]


def test_adversarial_names_give_valid_code_and_the_same_names(tmp_path):
    h, g = History(), Graph('model "quoted"\n\\ ünï')
    x = add_input(h, g, [4], name="it's \"in\"")
    prev = x
    for name in ADVERSARIAL[:-1]:
        prev = add_layer(h, g, "Dense", prev, units=3, name=name)
    # "x" twice, in two different blocks, and blocks with awkward names too.
    first = add_layer(h, g, "Dense", prev, units=3, name="x")
    block_1 = h.push(GroupCommand(g, [first], name="return")).block_id
    second = add_layer(h, g, "Dense", block_1, units=2, name="x")
    block_2 = h.push(GroupCommand(g, [second], name='blo"ck\n2')).block_id
    add_output(h, g, block_2)
    code = assert_round_trip(g, tmp_path)
    model = run_code(code)["build_model"]()
    names = {layer.name for layer in all_layers(model)}
    assert set(ADVERSARIAL) <= names and "it's \"in\"" in names
    assert model.name == 'model "quoted"\n\\ ünï'
    assert "def build_return():" in code and "def build_blo_ck_2():" in code
    assert "\u202e" not in code  # invisible control characters are escaped
    assert generate_model_code(g) == code


def test_a_graph_with_problems_is_refused():
    h, g = History(), Graph("broken")
    x = add_input(h, g, [4])
    d = add_layer(h, g, "Conv2D", x, filters=2, kernel_size=[3, 3])
    add_output(h, g, d)
    with pytest.raises(CodegenError, match="conv2d") as err:
        generate_model_code(g)
    assert err.value.node_id == d


def test_strings_are_escaped_for_any_text():
    for text in ADVERSARIAL + ["", "\x00\x7f\ud800\U0001f600", "'''\"\"\""]:
        literal = literals.string(text)
        assert eval(literal) == text  # noqa: S307 - our own literal
        assert "\n" not in literal


# ======================================================================================
# Imported Keras models: import -> code -> the original model again
# ======================================================================================


def _own_keras_model():
    """Masks, states, wrappers, attention options, sharing, nesting, several outputs."""
    layers = keras.layers
    tokens = keras.Input((7,), dtype="int32", name="tokens")
    numbers = keras.Input((3,), name="numbers")
    x = layers.Embedding(20, 8, mask_zero=True, name="embed")(tokens)
    seq, h, c = layers.LSTM(8, return_sequences=True, return_state=True, name="first")(x)
    y = layers.LSTM(8, name="second")(seq, initial_state=[h, c])
    z = layers.Bidirectional(layers.GRU(4, return_sequences=True), name="bi")(x)
    attended, scores = layers.MultiHeadAttention(2, 4, name="attention")(
        z, z, use_causal_mask=True, return_attention_scores=True
    )
    pooled = layers.GlobalAveragePooling1D(name="pool")(attended)
    shared = layers.Dense(5, activation="tanh", name="shared")
    bins = layers.Discretization(bin_boundaries=[-1.0, 0.0, 1.0], name="bins")(numbers)
    onehot = layers.Flatten(name="flat")(layers.CategoryEncoding(4, name="onehot")(bins))
    head = keras.Sequential([layers.Dense(4, activation="relu"), layers.Dense(2)], name="head")
    merged = layers.Concatenate(name="merged")([shared(y), shared(pooled), onehot])
    return keras.Model([tokens, numbers], [head(merged), scores], name="own")


def _operations_model():
    """keras.ops between layers in every form an operation node keeps."""
    x = keras.Input((6,), name="x")
    d = keras.layers.Dense(6, name="d")(x)
    a = 2.0 ** (keras.ops.maximum(d + 3.0, 0.25) * (1.0 / 6.0))
    b = ((-2.0) - keras.ops.minimum(1.5 - a, d)) ** 2
    c = keras.ops.divide(b, np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], dtype="float32"))
    return keras.Model(x, keras.ops.subtract(c, d) + 2 / keras.layers.Dense(6, name="e")(d))


# Operations between layers (MobileNetV3's x + 3.0) become Python operators; an
# application's own layer class (ConvNeXt's LayerScale) is defined in the generated module.
IMPORTED = {
    **{name: APPLICATIONS[name] for name in (
        "MobileNetV2", "EfficientNetB0", "MobileNetV3Small", "ConvNeXtTiny", "InceptionResNetV2",
    )},
    "own": _own_keras_model,
    "operations": _operations_model,
}


@pytest.mark.parametrize("name", list(IMPORTED))
def test_imported_models_regenerate_as_code(name, tmp_path):
    from kbuilder.graph.keras_io import import_model

    original = IMPORTED[name]()
    graph, _ = import_model(original)
    code = generate_model_code(graph)
    assert ruff_problems(code, tmp_path) == ""
    for word in FORBIDDEN:
        assert word not in code, word
    rebuilt = run_code(code)["build_model"]()

    def described(model):
        # A nested Sequential comes back as a Sequential (its Input is not one of its layers).
        return [(type(a).__name__, a.name)
                for a in all_layers(model) if type(a).__name__ != "InputLayer"]

    assert described(rebuilt) == described(original)
    assert rebuilt.count_params() == original.count_params()
    rng = np.random.default_rng(1)
    for a, b in zip(original.layers, rebuilt.layers, strict=True):
        # No zeros and ones for a wrong setting to hide behind (variances stay positive);
        # random kernels stay as they are (shifting all of them overflows deep models).
        weights = [w + rng.uniform(0, 0.1, size=w.shape).astype(w.dtype)
                   if w.dtype.kind == "f" and np.all((w == 0) | (w == 1)) else w
                   for w in a.get_weights()]
        if weights:
            a.set_weights(weights)
            b.set_weights(weights)
    inputs = sample_inputs(original)
    feed = inputs[0] if len(inputs) == 1 else inputs
    want = keras.tree.flatten(original(feed, training=False))
    have = keras.tree.flatten(rebuilt(feed, training=False))
    for w, h in zip(want, have, strict=True):
        assert np.isfinite(keras.ops.convert_to_numpy(w)).all()
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(h), keras.ops.convert_to_numpy(w), atol=1e-5
        )
    if name == "MobileNetV3Small":
        assert " + 3.0\n" in code and " * 0.16666666666666666\n" in code
    if name == "operations":
        assert " = (-2.0) - " in code and " = 1.5 - " in code and " = 2 / " in code
        assert " = 2.0 ** " in code and " ** 2\n" in code
        assert 'keras.ops.convert_to_tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], dtype="float32")' in code
    if name in ("ConvNeXtTiny", "InceptionResNetV2"):
        custom = "LayerScale" if name == "ConvNeXtTiny" else "CustomScaleLayer"
        assert f"class {custom}(layers.Layer):" in code and "keras.src" not in code
    # An imported layer carries its full settings; the code shows only what matters.
    layer_code = code.replace(', dtype="float32")', ")")  # a constant array is float32
    assert "trainable=True" not in code and 'dtype="float32"' not in layer_code
    assert 'activation="linear"' not in code and "glorot_uniform" not in code


# ======================================================================================
# Training scripts and notebooks
# ======================================================================================


def small_cnn_project() -> Project:
    graph = TEMPLATES["cnn_classifier"].build()
    graph.find("image")._params["shape"] = [8, 8, 1]  # digits are 8x8 images
    project = Project.new(graph)
    project.training = TrainingSettings(epochs=1, early_stopping={}, reduce_lr_on_plateau={},
                                        checkpoint={})
    return project


def csv_project(folder: Path) -> Project:
    rng = np.random.default_rng(0)
    path = folder / "flowers.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["length", "width", "colour", "species"])
        for i in range(60):
            species = ["setosa", "versicolor", "virginica"][i % 3]
            writer.writerow([f"{rng.normal(5 + i % 3):.2f}", f"{rng.normal(2):.2f}",
                             ["red", "blue"][i % 2], species])
    h, g = History(), Graph("flowers")
    x = add_input(h, g, [4], name="features")  # 2 numbers + 2 one-hot colours
    n = add_layer(h, g, "Normalization", x)  # learns its statistics: adapt() in the script
    d = add_layer(h, g, "Dense", n, units=8, activation="relu")
    y = add_layer(h, g, "Dense", d, units=3, activation="softmax", name="species")
    add_output(h, g, y)
    project = Project.new(g)
    project.data = DataSettings(f"csv:{path}", target="species", categorical=("colour",))
    project.training = TrainingSettings(epochs=1, batch_size=8, loss="categorical_crossentropy")
    return project


def images_project(folder: Path) -> Project:
    from PIL import Image

    rng = np.random.default_rng(0)
    for label in ("cats", "dogs"):
        (folder / "pictures" / label).mkdir(parents=True)
        for i in range(10):
            pixels = rng.integers(0, 255, size=(10, 10, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / "pictures" / label / f"{i}.png")
    graph = TEMPLATES["cnn_classifier"].build()
    graph.find("image")._params["shape"] = [8, 8, 3]
    project = Project.new(graph)
    project.data = DataSettings(f"images:{folder / 'pictures'}", image_size=(8, 8))
    project.training = TrainingSettings(epochs=1, batch_size=4)
    return project


def npz_project(folder: Path) -> Project:
    rng = np.random.default_rng(0)
    np.savez(folder / "arrays.npz", x=rng.normal(size=(40, 64)).astype("float32"),
             y=rng.integers(0, 10, size=40))
    project = Project.new(TEMPLATES["mlp_classifier"].build())
    project.data = DataSettings(f"npz:{folder / 'arrays.npz'}", test_split=0.25)
    project.training = TrainingSettings(epochs=1)
    return project


def fine_tune_project(folder: Path) -> Project:
    """A frozen nested block with BatchNorm, trained in two phases on 16×16 images."""
    from tests.graph.finetune_models import frozen_backbone_project

    project = frozen_backbone_project(folder, samples=24, file="tiny_images.npz")
    project.training = TrainingSettings(epochs=1, batch_size=8, fine_tune_from="conv_top",
                                        fine_tune_epochs=1)
    return project


def two_input_gaps_project(folder: Path) -> Project:
    """The multi-input template with FillMissing -> Normalization on its tabular branch,
    fitted to a file of one array per Input whose table has gaps."""
    from kbuilder.graph.commands import ConnectCommand, DisconnectCommand

    rng = np.random.default_rng(0)
    tabular = rng.normal(loc=50, scale=10, size=(48, 10)).astype("float32")
    tabular[::5, 2] = np.nan
    np.savez(folder / "two_inputs.npz", tabular=tabular, image=rng.random((48, 32, 32, 3)),
             y=np.arange(48) % 2)
    graph = TEMPLATES["multi_input"].build()
    history = History()
    tab, dense = graph.find("tabular").id, graph.find("tabular_dense").id
    (edge,) = graph.edges_into(dense)
    history.push(DisconnectCommand(graph, edge.id))
    fill = add_layer(history, graph, "FillMissing", tab, name="fill")
    norm = add_layer(history, graph, "Normalization", fill, name="norm")
    history.push(ConnectCommand(graph, norm, 0, dense, "inputs"))
    project = Project.new(graph)
    project.data = DataSettings(f"npz:{folder / 'two_inputs.npz'}")
    project.training = TrainingSettings(epochs=1, loss="binary_crossentropy")
    return project


def notebook_script(notebook) -> str:
    return "\n\n".join(c.source for c in notebook.cells if c.cell_type == "code") + "\n"


# Runs a script with the modules named in argv[1] made unimportable: kbuilder always (a
# script must stand on its own) and TensorFlow where the data needs none (keras seeds it
# when it is importable, which costs seconds per run).
_LAUNCHER = (
    "import runpy, sys; sys.modules.update(dict.fromkeys(sys.argv[1].split(','))); "
    "sys.argv = sys.argv[2:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)


class TrainingRuns:
    """Training scripts and notebooks running in subprocesses, a few at a time.

    Files collect their output (not pipes, which would stall a run until read).
    """

    def __init__(self, folder: Path, cases: dict[str, tuple]):
        self.folder, self.cases = folder, cases
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("KERAS_BACKEND", "PYTHONPATH")}
        self.env["TF_CPP_MIN_LOG_LEVEL"] = "3"
        # XLA compilation is most of a short run; runs of the same model share it.
        self.env["JAX_COMPILATION_CACHE_DIR"] = str(folder / "jax_cache")
        self.env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
        self.env["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
        self.processes: list[subprocess.Popen] = []
        self.pool = ThreadPoolExecutor(max_workers=min(len(cases), os.cpu_count() or 2))
        self.futures = {name: self.pool.submit(self._run, name) for name in cases}

    def _run(self, name: str) -> tuple:
        script, args, blocked, env = self.cases[name]
        workdir = self.folder / name
        workdir.mkdir()
        (workdir / "train.py").write_text(script, encoding="utf-8")
        out = [] if args is None else ["--output", str(workdir / "model.keras"), *args]
        with open(workdir / "stdout.txt", "w") as stdout, open(workdir / "stderr.txt",
                                                                "w") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-c", _LAUNCHER, ",".join(["kbuilder", *blocked]),
                 "train.py", *out],
                cwd=workdir, env={**self.env, **env}, stdout=stdout, stderr=stderr,
                stdin=subprocess.DEVNULL,
            )
            self.processes.append(process)
            try:
                process.wait(timeout=600)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return (process.returncode, (workdir / "stdout.txt").read_text(),
                (workdir / "stderr.txt").read_text(), workdir, script)

    def __getitem__(self, name: str) -> tuple:
        return self.futures[name].result()

    def close(self) -> None:
        for future in self.futures.values():
            future.cancel()
        for process in self.processes:
            if process.poll() is None:
                process.kill()
        self.pool.shutdown(wait=True)


@pytest.fixture(scope="module")
def training_runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("training")
    mlp = Project.new(TEMPLATES["mlp_classifier"].build())
    mlp.training = TrainingSettings(epochs=3)  # --epochs 1 must win
    no_tf = ["tensorflow"]
    runs = TrainingRuns(folder, {
        # name: (script, arguments or None, modules to block, environment)
        # In pairs, the second of each reusing the first's compiled functions.
        "mlp_digits": (generate_training_script(mlp), ["--epochs", "1"], no_tf, {}),
        "cnn_digits": (generate_training_script(small_cnn_project()), ["--epochs", "1"],
                       no_tf, {}),
        "npz": (generate_training_script(npz_project(folder)), [], no_tf, {}),
        "two_inputs_gaps": (generate_training_script(two_input_gaps_project(folder)), [],
                            [], {}),
        "notebook": (notebook_script(generate_notebook(small_cnn_project())), None, no_tf, {}),
        # Normalization (adapted here) calls TensorFlow on the JAX backend.
        "csv": (generate_training_script(csv_project(folder)), [], [], {}),
        "images": (generate_training_script(images_project(folder)), [], [], {}),
        "fine_tune": (generate_training_script(fine_tune_project(folder)), [], no_tf, {}),
        "model_module": (generate_model_code(TEMPLATES["mlp_classifier"].build()), None, [],
                         {"KERAS_BACKEND": "numpy"}),
    })
    yield runs
    runs.close()


@pytest.fixture(scope="module", autouse=True)
def _start_training_first(request):
    """Start the training runs before the module's first test, so they overlap the rest."""
    if any("training_runs" in item.fixturenames for item in request.session.items
           if item.module is request.module):
        request.getfixturevalue("training_runs")


@pytest.mark.parametrize("case", ["mlp_digits", "cnn_digits", "csv", "npz", "images",
                                  "notebook", "two_inputs_gaps", "fine_tune"])
def test_training_scripts_and_notebooks_run(case, training_runs, tmp_path):
    code, stdout, stderr, workdir, script = training_runs[case]
    assert code == 0, stderr[-3000:]
    assert (workdir / "model.keras").exists()
    assert "Saved the trained model to" in stdout
    assert "test loss:" in stdout
    assert "kbuilder" not in "".join(
        line for line in script.splitlines() if line.startswith(("import", "from"))
    )
    assert ruff_problems(script, tmp_path, f"{case}.py") == ""
    model = keras.saving.load_model(workdir / "model.keras")
    assert model.count_params() > 0


def test_a_fine_tuning_script_trains_in_two_phases_as_kbuilder_does(training_runs):
    from kbuilder.graph.codegen.fine_tuning_code import UNFREEZE_SOURCE
    from kbuilder.runtime.fine_tuning import unfreeze

    code, stdout, stderr, workdir, script = training_runs["fine_tune"]
    assert code == 0, stderr[-3000:]
    assert "backbone_model.trainable = False" in script and "training=False" in script
    assert "unfreeze(model, FINE_TUNE_FROM)" in script and "initial_epoch=args.epochs" in script
    assert "FINE_TUNE_LEARNING_RATE = 0.0001" in script and "Epoch 2/2" in stdout
    nested = keras.saving.load_model(workdir / "model.keras").get_layer("backbone")
    flags = {layer.name: layer.trainable for layer in nested.layers[1:]}
    assert flags == {"conv": False, "bn": False, "relu": False, "conv_top": True,
                     "bn_top": False}
    # The script's unfreeze and the worker's agree.
    namespace: dict = {"STATISTICS_LAYERS": ["BatchNormalization"]}
    exec(UNFREEZE_SOURCE, namespace)
    for name in ("conv_top", "backbone", "head", None):
        mine, theirs = (keras.saving.load_model(workdir / "model.keras") for _ in range(2))
        for model in (mine, theirs):
            model.get_layer("backbone").trainable = False
        namespace["unfreeze"](mine, name)
        unfreeze(theirs, name)
        assert ([w.path for w in mine.trainable_weights]
                == [w.path for w in theirs.trainable_weights]), name


def test_running_the_model_module_prints_a_summary(training_runs):
    code, stdout, stderr, _, _ = training_runs["model_module"]
    assert code == 0, stderr[-3000:]
    assert "mlp_classifier" in stdout and "17,226" in stdout


def test_training_script_follows_the_settings(training_runs):
    _, stdout, _, workdir, script = training_runs["mlp_digits"]
    assert 'os.environ["KERAS_BACKEND"] = "jax"' in script
    assert "keras.utils.set_random_seed(SEED)" in script
    assert "Epoch 1/3" not in stdout and "Epoch 2/" not in stdout  # --epochs 1 wins
    _, stdout, _, workdir, script = training_runs["cnn_digits"]
    for callback in ("EarlyStopping", "ReduceLROnPlateau", "ModelCheckpoint"):
        assert f"keras.callbacks.{callback}(" in script
    assert (workdir / "model.best.keras").exists()
    assert "INPUT_SHAPE = (8, 8, 1)" in script
    _, stdout, _, _, script = training_runs["csv"]
    assert "Classes: ['setosa', 'versicolor', 'virginica']" in stdout
    assert 'model.get_layer("normalization").adapt(x_train)' in script
    assert "import pyarrow.csv as pacsv" in script and "sklearn" not in script
    _, stdout, _, _, script = training_runs["images"]
    assert "Classes: ['cats', 'dogs']" in stdout and "from PIL import Image" in script


@pytest.mark.parametrize("data, training", [
    ({"source": "mnist"}, {"loss": "categorical_crossentropy", "mixed_precision": True}),
    ({"source": "imdb"}, {"loss": "binary_crossentropy", "tensorboard": True}),
    ({"source": "boston_housing"}, {"loss": "mean_squared_error", "device": "gpu:1"}),
    ({"source": "diabetes", "validation_split": 0.0}, {"loss": "huber", "optimizer": "lamb"}),
    ({"source": "csv:data.csv", "features": ["a", "b"]}, {"loss": "mean_absolute_error"}),
    ({"source": "npz:x.npz"}, {"loss": "categorical_crossentropy", "backend": "torch"}),
    ({"source": "images:pics", "color_mode": "grayscale"},
     {"loss": "categorical_crossentropy", "backend": "tensorflow", "tensorboard": True}),
    # Data-parallel (issue 16): the distribution's code is clean too.
    ({"source": "digits"}, {"distribute": "data-parallel", "devices": 2}),
    ({"source": "images:pics"}, {"loss": "categorical_crossentropy", "device": "gpu:0",
                                 "distribute": "data-parallel", "mixed_precision": True}),
])
def test_every_data_source_gives_a_clean_script(data, training, tmp_path):
    project = Project.new(TEMPLATES["mlp_classifier"].build())
    project.data = DataSettings.from_dict(data)
    project.training = TrainingSettings.from_dict(training)
    script = generate_training_script(project)
    assert ruff_problems(script, tmp_path) == ""
    compile(script, "train.py", "exec")
    assert generate_training_script(project) == script
    assert f'os.environ["KERAS_BACKEND"] = "{training.get("backend", "jax")}"' in script
    notebook = generate_notebook(project)
    compile(notebook_script(notebook), "notebook.py", "exec")


def test_a_two_input_script_fills_the_gaps_with_the_training_medians(training_runs):
    _, stdout, _, workdir, script = training_runs["two_inputs_gaps"]
    assert 'model.get_layer("fill").adapt(x_train[0])' in script
    assert 'model.get_layer("norm").adapt(model.get_layer("fill")(x_train[0]))' in script
    assert "raise SystemExit(" not in script.split("def main")[1]
    from kbuilder.graph.catalog.kbuilder_layers import register_all

    register_all()
    model = keras.saving.load_model(workdir / "model.keras")
    fill = model.get_layer("fill").get_weights()[0]
    assert np.isfinite(fill).all() and abs(float(fill[2]) - 50) < 10


def test_multi_input_script_stops_with_a_clear_message(tmp_path):
    project = Project.new(TEMPLATES["multi_input"].build())
    script = generate_training_script(project)
    assert ruff_problems(script, tmp_path) == ""
    assert "This model takes 2 inputs (" in script and "tabular, image" in script


def test_notebook_is_valid_and_deterministic(tmp_path):
    import nbformat

    project = small_cnn_project()
    path = tmp_path / "train.ipynb"
    write_notebook(project, path)
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    kinds = [c.cell_type for c in notebook.cells]
    assert kinds[0] == "markdown" and kinds.count("code") == 5
    assert "def build_model():" in notebook_script(notebook)
    first = path.read_bytes()
    write_notebook(small_cnn_project(), path)
    assert path.read_bytes() == first


# ======================================================================================
# kbuilder codegen
# ======================================================================================


def test_cli_writes_code_script_and_notebook(tmp_path, capsys):
    project = tmp_path / "p.kbproj"
    save_project(small_cnn_project(), project)
    assert cli.main(["codegen", str(project), "-o", str(tmp_path / "model.py")]) == 0
    code = (tmp_path / "model.py").read_text()
    assert code == generate_model_code(small_cnn_project().graph)
    assert cli.main(["codegen", str(project), "-o", str(tmp_path / "train.py"),
                     "--training-script"]) == 0
    assert "def main():" in (tmp_path / "train.py").read_text()
    assert cli.main(["codegen", str(project), "-o", str(tmp_path / "train.ipynb"),
                     "--notebook"]) == 0
    assert json.loads((tmp_path / "train.ipynb").read_text())["nbformat"] == 4
    assert "Wrote the notebook" in capsys.readouterr().out


def test_cli_refuses_unreadable_files_and_broken_graphs(tmp_path, capsys):
    out = str(tmp_path / "model.py")
    assert cli.main(["codegen", str(tmp_path / "missing.kbproj"), "-o", out]) == 2
    bad = tmp_path / "bad.kbproj"
    bad.write_text("not a zip")
    assert cli.main(["codegen", str(bad), "-o", out]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("kbuilder:") for line in err)
    assert cli.main(["codegen", str(bad), "-o", str(tmp_path / "model.txt")]) == 2
    h, g = History(), Graph("broken")
    x = add_input(h, g, [4])
    add_output(h, g, add_layer(h, g, "Conv2D", x, filters=2, kernel_size=[3, 3]))
    save_project(Project.new(g), tmp_path / "broken.kbproj")
    capsys.readouterr()
    assert cli.main(["codegen", str(tmp_path / "broken.kbproj"), "-o", out]) == 1
    assert "conv2d" in capsys.readouterr().err
    assert not Path(out).exists()
    assert cli.main(["codegen", str(bad), "-o", out, "--notebook", "--training-script"]) == 2


def test_a_sequential_model_comes_back_as_sequential_code_and_model(tmp_path):
    from kbuilder.graph.build import build_model
    from kbuilder.graph.keras_io import import_model
    from kbuilder.graph.project import Project, load_project, save_project

    original = keras.Sequential([
        keras.Input((16,), name="features"),
        keras.layers.Dense(8, activation="relu", name="hidden"),
        keras.layers.Dense(3, activation="softmax", name="classes"),
    ], name="classifier")
    graph, weights = import_model(original)
    save_project(Project(graph, weights=weights), tmp_path / "p.kbproj")
    graph = load_project(tmp_path / "p.kbproj").graph
    assert graph.style == "sequential"
    code = generate_model_code(graph)
    assert ruff_problems(code, tmp_path) == ""
    assert "keras.Sequential(" in code and "keras.Model(" not in code
    for model in (run_code(code)["build_model"](), build_model(graph, weights)):
        assert type(model) is keras.Sequential and model.name == "classifier"
        assert [(type(a).__name__, a.name) for a in model.layers] == [
            ("Dense", "hidden"), ("Dense", "classes")]
        assert model.count_params() == original.count_params()

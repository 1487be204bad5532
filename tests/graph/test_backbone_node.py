"""A pretrained network as one node: shapes and counts as Keras's own, weights from a file,
the offline message, and the round trip import -> codegen -> build."""

from __future__ import annotations

import urllib.error
from math import prod

import numpy as np
import pytest

from kbuilder.graph.backbones import BACKBONES, backbone
from kbuilder.graph.build import BuildError, build_model
from kbuilder.graph.commands import History
from kbuilder.graph.model import Graph
from kbuilder.graph.shapes import ShapeInference
from tests.graph.helpers import add_input, add_layer, add_output


def backbone_graph(family: str = "MobileNetV3Small", shape=(32, 32, 3), **params):
    """Input -> backbone -> Dense(3) -> Output; the backbone node's id."""
    history, graph = History(), Graph("transfer")
    x = add_input(history, graph, list(shape))
    node = add_layer(history, graph, f"applications.{family}", x, **params)
    head = add_layer(history, graph, "Dense", node, units=3, activation="softmax")
    add_output(history, graph, head)
    return graph, node


def inferred(graph: Graph, node_id: str):
    inference = ShapeInference(graph)
    inference.update()
    try:
        return inference.result(node_id), inference.errors()
    finally:
        inference.close()


@pytest.mark.slow
@pytest.mark.parametrize("family", BACKBONES, ids=lambda b: b.name)
def test_every_family_builds_as_one_node_with_keras_shapes_and_counts(family):
    # Built through kbuilder's own path, the weights declared only (a real build of all
    # fourteen takes minutes); the node's result comes from the table, without Keras.
    from kbuilder.graph.backbone_build import make_backbone
    from kbuilder.graph.shapes import declared_variables

    shape = (max(75, family.min_size), max(75, family.min_size) + 6, 3)
    for pooling in ("none", "avg"):
        graph, node = backbone_graph(family.name, shape, weights=None, pooling=pooling)
        result, errors = inferred(graph, node)
        assert errors == []
        with declared_variables():
            model = make_backbone(family.node_class, graph.node(node).params,
                                  graph.node(node).name, shape)
        assert model.name == graph.node(node).name == family.keras_name
        assert result.outputs[0].shape == tuple(model.output_shape)
    assert result.params == sum(prod(w.shape) for w in model.weights)
    assert result.trainable_params == sum(prod(w.shape) for w in model.trainable_weights)


def test_wrong_inputs_are_explained_on_the_node():
    graph, node = backbone_graph(shape=(8, 8, 3), weights=None)
    result, _ = inferred(graph, node)
    assert "at least 32×32" in result.error and "Resizing" in result.error
    graph, node = backbone_graph(shape=(64, 64, 1), weights="imagenet")
    result, _ = inferred(graph, node)
    assert "3 channels" in result.error


@pytest.fixture(scope="module")
def small_model():
    """MobileNetV3Small (random weights, 32×32) with a head, built by kbuilder."""
    graph, node = backbone_graph(weights=None, pooling="avg")
    return graph, node, build_model(graph)


@pytest.mark.slow
def test_a_weights_file_loads_through_the_weights_path(small_model, tmp_path):
    graph, node, model = small_model
    inner = model.get_layer(graph.node(node).name)
    path = tmp_path / "mobilenet.weights.h5"
    inner.save_weights(path)
    graph2, node2 = backbone_graph(weights=str(path), pooling="avg")
    rebuilt = build_model(graph2).get_layer(graph2.node(node2).name)
    images = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(np.asarray(inner.predict(images, verbose=0)),
                                  np.asarray(rebuilt.predict(images, verbose=0)))


def test_a_missing_weights_file_is_named():
    graph, _ = backbone_graph(weights="/nowhere/mobilenet.weights.h5")
    with pytest.raises(BuildError, match="'/nowhere/mobilenet.weights.h5'.*does not exist"):
        build_model(graph)


def test_offline_imagenet_names_the_file_the_url_and_the_folder(monkeypatch, tmp_path):
    from keras.src.backend import config
    from keras.src.utils import file_utils

    from kbuilder.graph.backbone_build import report_downloads

    monkeypatch.setattr(config, "_KERAS_DIR", str(tmp_path))
    seen = []

    def no_network(url, filename=None, reporthook=None, data=None):
        reporthook(1, 8192, 40_000)  # a first block arrives, then the line drops
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(file_utils, "urlretrieve", no_network)
    graph, _ = backbone_graph(weights="imagenet")
    with report_downloads(lambda *args: seen.append(args)), \
            pytest.raises(BuildError) as caught:
        build_model(graph)
    message = str(caught.value)
    assert "weights_mobilenet_v3_small" in message and "https://" in message
    assert str(tmp_path / "models") in message and "weights file" in message
    assert seen and seen[0][1:] == (8192, 40_000)


@pytest.mark.slow
def test_import_codegen_build_keeps_the_keras_applications_call(small_model, tmp_path):
    import keras

    from kbuilder.graph.codegen import generate_model_code
    from kbuilder.graph.keras_io import import_file

    _, _, model = small_model
    # As keras.io's guide writes it: the frozen backbone called with training=False.
    inputs = keras.Input((32, 32, 3))
    net = model.get_layer("MobileNetV3Small")
    outputs = keras.layers.Dense(2, name="head")(net(inputs, training=False))
    original = keras.Model(inputs, outputs)
    path = tmp_path / "transfer.keras"
    original.save(path)

    project = import_file(path)
    nodes = [n for _, n in project.graph.walk() if n.class_name == "applications.MobileNetV3Small"]
    assert len(nodes) == 1 and nodes[0].call_options == {"training": False}
    assert nodes[0].params == {"weights": "imagenet", "pooling": "avg"}
    assert not any(n.kind == "block" for _, n in project.graph.walk())

    code = generate_model_code(project.graph)
    assert "keras.applications.MobileNetV3Small(" in code and 'weights="imagenet"' in code
    assert "layers.Conv2D" not in code
    namespace: dict = {}
    exec(code.replace('weights="imagenet"', "weights=None"), namespace)  # offline here
    assert namespace["build_model"]().count_params() == original.count_params()

    # The project holds the weights: building downloads nothing and gives the same outputs.
    rebuilt = build_model(project.graph, project.weights)
    images = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(rebuilt.predict(images, verbose=0)),
                               np.asarray(original.predict(images, verbose=0)), atol=1e-6)


def test_summary_names_size_parameters_top1_and_input():
    text = backbone("EfficientNetV2B1").summary()
    assert "8.2M parameters" in text and "79.8%" in text and "240×240" in text


def test_doctor_lists_the_cached_backbones(monkeypatch, tmp_path):
    from kbuilder.runtime.doctor import _pretrained_weights, format_report

    models = tmp_path / "models"
    models.mkdir()
    for name in ("resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
                 "efficientnetv2-b0_notop.h5", "mnist.npz"):
        (models / name).write_bytes(b"\0" * 2048)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    weights = _pretrained_weights()
    assert weights["folder"] == str(models)
    assert [(w["network"], w["bytes"]) for w in weights["files"]] == [
        ("EfficientNetV2B0", 2048), ("ResNet50V2", 2048)]
    report = {"python": {"version": "3", "executable": "python", "platform": "linux"},
              "packages": {}, "backends": {}, "pretrained_weights": weights}
    text = format_report(report)
    assert f"Pretrained weights in {models}" in text
    assert "ResNet50V2" in text and "efficientnetv2-b0_notop.h5" in text


@pytest.mark.slow
def test_a_renamed_nested_network_is_still_recognised(tmp_path):
    # A user's model: MobileNetV2 built under a name of their own, then nested.
    import keras

    from kbuilder.graph.keras_io import import_file
    from kbuilder.runtime.preflight.adapters import model_family

    base = keras.applications.MobileNetV2(input_shape=(32, 32, 3), include_top=False,
                                          weights=None, pooling="avg", name="xray_encoder")
    base.trainable = False
    inputs = keras.Input((32, 32, 3), name="scan")
    outputs = keras.layers.Dense(2, name="head")(base(inputs, training=False))
    original = keras.Model(inputs, outputs, name="xray_model")
    path = tmp_path / "xray.keras"
    original.save(path)

    project = import_file(path)
    nodes = [n for _, n in project.graph.walk() if n.class_name == "applications.MobileNetV2"]
    assert len(nodes) == 1 and nodes[0].name == "xray_encoder"
    assert nodes[0].params == {"weights": "imagenet", "pooling": "avg", "trainable": False}
    assert nodes[0].call_options == {"training": False}
    assert model_family(project.graph).name == "MobileNetV2"
    rebuilt = build_model(project.graph, project.weights)
    assert rebuilt.get_layer("xray_encoder").trainable is False
    images = np.random.default_rng(2).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(rebuilt.predict(images, verbose=0)),
                               np.asarray(original.predict(images, verbose=0)), atol=1e-5)


@pytest.mark.slow
def test_generated_code_offline_says_which_file_to_put_where(tmp_path):
    # The exported model.py run as a script on a machine where downloads fail (here: all
    # traffic sent to a closed port), with an empty Keras cache.
    import os
    import subprocess
    import sys

    from kbuilder.graph.codegen import generate_model_code

    graph, _ = backbone_graph(weights="imagenet")
    code = generate_model_code(graph)
    assert 'with ImageNetWeights("MobileNetV3Small"):' in code
    assert "keras.applications.MobileNetV3Small(" in code
    (tmp_path / "model.py").write_text(code, encoding="utf-8")
    closed = "http://127.0.0.1:9"
    env = {**os.environ, "KERAS_BACKEND": "torch", "KERAS_HOME": str(tmp_path / "keras"),
           "HTTPS_PROXY": closed, "https_proxy": closed, "HTTP_PROXY": closed,
           "http_proxy": closed, "NO_PROXY": "", "no_proxy": ""}
    done = subprocess.run([sys.executable, "model.py"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    last = next(line for line in done.stderr.splitlines() if line.startswith("RuntimeError"))
    assert last.startswith("RuntimeError: The ImageNet weights of MobileNetV3Small "
                           "(weights_mobilenet_v3_small"), last
    assert "could not be downloaded from https://" in last
    assert str(tmp_path / "keras" / "models") in last and "weights=" in last
    # Weights that need no download: the helper stays out of the code.
    graph, _ = backbone_graph(weights=None)
    assert "ImageNetWeights" not in generate_model_code(graph)

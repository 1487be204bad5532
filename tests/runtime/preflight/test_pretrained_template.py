"""The template "image classifier from a pretrained network", fitted to image data."""

from __future__ import annotations

import pytest

from kbuilder.graph.settings import DataSettings
from kbuilder.graph.shapes import ShapeInference
from kbuilder.graph.templates import find_template, get_template
from kbuilder.runtime.preflight.fit import new_project_for_data
from tests.runtime.test_data import make_images


def _classes(graph):
    return [graph.layer_owner(n.id).class_name for n in graph.nodes if n.kind == "layer"]


@pytest.mark.parametrize("name, scaling", [
    ("pretrained_classifier", []),  # MobileNetV3Small rescales its pixels itself
    ("pretrained_classifier:MobileNetV2", ["Rescaling"]),  # to [-1, 1]
    ("pretrained_classifier:DenseNet121", ["Normalization"]),  # ImageNet's mean and std
    ("pretrained_classifier:ResNet50", ["Dense"]),  # caffe: RGB -> BGR, means subtracted
])
def test_each_family_gets_its_own_pixel_scaling_and_a_frozen_network(name, scaling):
    graph = get_template(name).build()
    classes = _classes(graph)
    network = next(n for n in graph.nodes if (n.class_name or "").startswith("applications."))
    assert classes[:len(scaling)] == scaling and classes[len(scaling)] == network.class_name
    assert network.params["weights"] == "imagenet" and network.params["trainable"] is False
    assert network.call_options == {"training": False}
    inference = ShapeInference(graph)
    inference.update()
    assert inference.errors() == []
    assert inference.result(network.id).trainable_params == 0
    inference.close()


def test_an_unknown_network_is_no_template():
    assert find_template("pretrained_classifier:AlexNet") is None


def test_fitted_to_an_image_folder_it_takes_the_data_shape_and_classes(tmp_path):
    root = make_images(tmp_path / "cells", classes=("a", "b", "c"), count=2, size=(40, 40))
    settings = DataSettings(source=f"images:{root}", image_size=(40, 40),
                            validation_split=0.0, test_split=0.0)
    project = new_project_for_data("pretrained_classifier", settings)
    graph = project.graph
    assert graph.input_nodes()[0].param("shape") == [40, 40, 3]
    assert "Rescaling" not in _classes(graph)  # not 1/255 before a self-rescaling network
    head = next(n for n in graph.nodes if n.name == "predictions")
    assert head.param("units") == 3 and head.param("activation") == "softmax"
    assert project.training.loss == "sparse_categorical_crossentropy"


def test_its_code_builds_the_network_with_keras_applications_frozen():
    from kbuilder.graph.codegen import generate_model_code

    code = generate_model_code(get_template("pretrained_classifier:MobileNetV2").build())
    assert "keras.applications.MobileNetV2(" in code and 'weights="imagenet"' in code
    assert "mobilenetv2_1_00_224_network.trainable = False" in code
    assert "mobilenetv2_1_00_224_network(preprocess_tf, training=False)" in code
    assert "layers.Conv2D" not in code  # one call, not the network's layers

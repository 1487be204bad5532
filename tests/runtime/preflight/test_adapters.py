"""Input adapters for pretrained networks: the family is recognised, the data adapted in
the model (size, grey to RGB, the family's own preprocessing), never the network."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from kbuilder.graph.backbones import preprocessing_layer
from kbuilder.graph.commands import History
from kbuilder.graph.keras_io import import_model
from kbuilder.graph.model import Graph
from kbuilder.graph.settings import DataSettings, TrainingSettings
from kbuilder.graph.shapes import make_layer
from kbuilder.runtime.data import load_data
from kbuilder.runtime.preflight import (
    AddGreyToRgb,
    AddResizing,
    ApplyAll,
    SetParam,
    apply_fix,
    check,
    errors,
)
from kbuilder.runtime.preflight.adapters import family_of_name
from kbuilder.runtime.preflight.findings import AddPreprocessing
from tests.graph.helpers import add_input, add_layer, add_output


@pytest.mark.parametrize("keras_name, family", [
    ("mobilenetv2_1.00_96", "MobileNetV2"), ("MobilenetV3small", "MobileNetV3Small"),
    ("efficientnetv2-b0", "EfficientNetV2B0"), ("resnet50v2", "ResNet50V2"),
    ("resnet50", "ResNet50"), ("inception_v3", "InceptionV3"), ("NASNet", "NASNetMobile"),
    ("convnext_tiny", "ConvNeXtTiny"), ("my_model", None),
])
def test_the_family_is_recognised_by_keras_s_model_names(keras_name, family):
    found = family_of_name(keras_name)
    assert (found.name if found else None) == family


ZERO_ONE = "0..1: the data's float32 values lie in [0, 1]"  # digits, as loaded


@pytest.mark.parametrize("style", ["tf", "torch", "caffe"])
@pytest.mark.parametrize("pixel_min, pixel_max", [(0.0, 255.0), (0.0, 1.0), (-1000.0, 3095.0)])
def test_each_style_is_keras_s_own_preprocess_input(style, pixel_min, pixel_max):
    rng = np.random.default_rng(0)
    pixels = rng.uniform(0, 255, (2, 4, 4, 3)).astype("float32")
    class_name, params = preprocessing_layer(style, pixel_max, pixel_min)
    layer = make_layer(class_name, params, "pre")
    raw = pixel_min + pixels * ((pixel_max - pixel_min) / 255.0)  # the same image, raw
    got = keras.ops.convert_to_numpy(layer(raw.astype("float32")))
    want = keras.applications.imagenet_utils.preprocess_input(pixels.copy(), mode=style)
    np.testing.assert_allclose(got, keras.ops.convert_to_numpy(want), rtol=1e-4, atol=1e-3)


@pytest.mark.slow  # imports a small MobileNetV2 (~5 s)
def test_an_imported_mobilenet_meeting_8x8_digits_gets_the_adapter_not_a_broken_network():
    base = keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35,
                                          weights=None, classes=10)
    graph, _ = import_model(base)
    image = graph.input_nodes()[0]
    first = graph.successors(image.id)[0]
    ds = load_data(DataSettings(source="digits"))  # 8×8 grey, loaded as 0..1
    findings = check(graph, ds, TrainingSettings())
    shape = next(f for f in findings if f.code == "input_shape")
    assert "pretrained MobileNetV2" in shape.message
    assert shape.fix == ApplyAll((SetParam(image.id, "shape", [8, 8, 1]),
                                  AddPreprocessing(image.id, "tf", "MobileNetV2", 1.0, 0.0,
                                                   ZERO_ONE),
                                  AddResizing(image.id, 96, 96), AddGreyToRgb(image.id)))
    assert "grey to RGB) and a Resizing layer to 96×96 and MobileNetV2's own " \
           f"preprocessing (pixels taken as {ZERO_ONE}) after it" in shape.message
    history = History()
    history.push(apply_fix(shape.fix, graph, TrainingSettings()).command)
    after = check(graph, ds, TrainingSettings())
    assert not errors(after), after
    assert not [f for f in after if f.code == "unscaled_inputs"]
    chain, node = [], image.id
    while node != first:
        node = graph.successors(node)[0]
        chain.append(graph.node(node).class_name)
    assert chain[:-1] == ["Concatenate", "Resizing", "Rescaling"]
    assert graph.find("preprocess_tf").params == {"scale": 2.0, "offset": -1.0}


def test_raw_pixels_of_the_right_size_get_the_family_s_preprocessing():
    # A stand-in for an imported ResNet50: Keras names the model "resnet50".
    history, graph = History(), Graph("resnet50")
    x = add_input(history, graph, [32, 32, 3], name="image")
    x = add_layer(history, graph, "Conv2D", x, filters=4, kernel_size=3)
    x = add_layer(history, graph, "GlobalAveragePooling2D", x)
    add_output(history, graph, add_layer(history, graph, "Dense", x, units=3,
                                         activation="softmax"))
    image = graph.input_nodes()[0]
    from kbuilder.runtime.data import dataset_from_arrays

    x = np.random.default_rng(0).uniform(0, 255, (12, 32, 32, 3)).astype("float32")
    ds = dataset_from_arrays(x, np.arange(12) % 3, source="images")
    finding = next(f for f in check(graph, ds, TrainingSettings()) if f.code == "unscaled_inputs")
    assert finding.fix == AddPreprocessing(image.id, "caffe", "ResNet50", 255.0, 0.0,
                                           "0..255: the data's float32 values lie in [0, 255]")
    assert finding.message.endswith(
        "it takes the pixels as 0..255: the data's float32 values lie in [0, 255].")
    History().push(apply_fix(finding.fix, graph, TrainingSettings()).command)
    assert graph.successors(image.id) == [graph.find("preprocess_caffe").id]
    assert not [f for f in check(graph, ds, TrainingSettings()) if f.code == "unscaled_inputs"]


@pytest.mark.parametrize("values, low, high, said", [
    (np.full((2, 4, 4, 3), 3, np.uint8), 0, 255, "the data are uint8, 8-bit images"),
    (np.linspace(0, 1, 96, dtype="float32").reshape(2, 4, 4, 3), 0, 1, "lie in [0, 1]"),
    (np.linspace(0, 200, 96).reshape(2, 4, 4, 3), 0, 255, "lie in [0, 255]"),
    # 12-bit microscope frames in uint16, standardised arrays: the range seen, said so.
    (np.linspace(0, 4095, 96).astype(np.uint16).reshape(2, 4, 4, 3), 0, 4095,
     "the range of the data's uint16 values, neither 0..1 nor 0..255"),
    (np.linspace(-2.5, 3, 96).reshape(2, 4, 4, 3), -2.5, 3, "neither 0..1 nor 0..255"),
])
def test_the_pixel_range_comes_from_the_data_s_type_and_values(values, low, high, said):
    from kbuilder.runtime.preflight.adapters import pixel_range

    found = pixel_range(values)
    assert (found.low, found.high) == (low, high)
    assert found.assumed.startswith(f"{low:g}..{high:g}: ") and said in found.assumed


def test_an_image_folder_s_uint8_pixels_are_taken_as_0_to_255():
    # MobileNetV2 ("tf"): uint8 pixels of a dark folder (all below 2) still go 0..255.
    from kbuilder.runtime.data import dataset_from_arrays

    history, graph = History(), Graph("mobilenetv2_1.00_32")
    x = add_input(history, graph, [32, 32, 3], name="image")
    x = add_layer(history, graph, "GlobalAveragePooling2D", x)
    add_output(history, graph, add_layer(history, graph, "Dense", x, units=2,
                                         activation="softmax"))
    dark = np.random.default_rng(0).integers(0, 2, (8, 32, 32, 3)).astype(np.uint8)
    ds = dataset_from_arrays(dark, np.arange(8) % 2, source="images")
    finding = next(f for f in check(graph, ds, TrainingSettings()) if f.code == "unscaled_inputs")
    assert (finding.fix.pixel_min, finding.fix.pixel_max) == (0.0, 255.0)
    assert "it takes the pixels as 0..255: the data are uint8, 8-bit images." in finding.message
    History().push(apply_fix(finding.fix, graph, TrainingSettings()).command)
    assert graph.find("preprocess_tf").params == {"scale": 1 / 127.5, "offset": -1.0}

"""A model with a pretrained network (MobileNetV3Small, random weights, 32×32, frozen)
exports to every format with parity; the generated code keeps the keras.applications
call with weights="imagenet" and its parity check downloads nothing (offline here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kbuilder.runtime import protocol as p
from kbuilder.runtime.client import TrainingRun, Worker

OUTPUTS = {"keras": "model.keras", "savedmodel": "savedmodel", "onnx": "model.onnx",
           "openvino": "model.xml", "litert": "model.tflite", "python": "python",
           "notebook": "model.ipynb"}
ORDER = ("savedmodel", "openvino", "litert", "onnx", "keras", "python", "notebook")


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    import keras

    folder = tmp_path_factory.mktemp("backbone")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3), name="image")
    net = keras.applications.MobileNetV3Small(include_top=False, weights=None,
                                              pooling="avg", input_shape=(32, 32, 3))
    net.trainable = False
    outputs = keras.layers.Dense(3, activation="softmax", name="predictions")(
        net(inputs, training=False))
    source = folder / "transfer.keras"
    keras.Model(inputs, outputs, name="transfer").save(source)
    worker = Worker("tensorflow")
    try:
        results = {f: TrainingRun(worker, p.StartExport(
            f"backbone-{f}", str(source), f, str(folder / OUTPUTS[f]), verify=True)).wait()
            for f in ORDER}
    finally:
        worker.shutdown()
    return folder, results


@pytest.mark.slow
@pytest.mark.parametrize("format", ORDER)
def test_a_backbone_model_exports_with_parity(exports, format):
    _, results = exports
    result = results[format]
    assert isinstance(result, p.Exported), getattr(result, "reason", result)
    (row,) = result.report
    assert row["verdict"] == "pass", row


@pytest.mark.slow
def test_the_exported_code_calls_keras_applications(exports):
    folder, _ = exports
    code = (folder / "python" / "model.py").read_text()
    assert "keras.applications.MobileNetV3Small(" in code and 'weights="imagenet"' in code
    assert "trainable = False" in code and "training=False" in code
    assert Path(folder / "model.ipynb").read_text().count("keras.applications.MobileNetV3Small(") >= 1

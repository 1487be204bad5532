"""A model that fills missing values and normalises inside itself exports with parity (the
converted formats, and the generated code and notebook, which define FillMissing), and its
exports fill the gaps of raw rows as the Keras model does."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from kbuilder.graph.build import build_model
from kbuilder.graph.commands import History
from kbuilder.graph.model import Graph
from kbuilder.runtime import protocol as p
from kbuilder.runtime.client import TrainingRun, Worker
from kbuilder.runtime.data import adapt_layers
from tests.graph.helpers import add_input, add_layer, add_output

# Raw rows with gaps, in units far from 0..1.
ROWS = np.array([[12.0, np.nan, 300.0],
                 [np.nan, 5.0, 600.0],
                 [17.0, 8.0, np.nan],
                 [13.0, 9.0, 900.0],
                 [np.nan, np.nan, np.nan]], dtype="float32")


def filled_model():
    h, g = History(), Graph("filled")
    x = add_input(h, g, [3], name="rows")
    f = add_layer(h, g, "FillMissing", x, name="fill")
    n = add_layer(h, g, "Normalization", f, name="norm")
    add_output(h, g, add_layer(h, g, "Dense", n, name="head", units=2))
    model = build_model(g)
    adapt_layers(model, ROWS)
    return model


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    folder = tmp_path_factory.mktemp("filled")
    model = filled_model()
    source = folder / "filled.keras"
    model.save(source)
    outputs = {"keras": folder / "out.keras", "savedmodel": folder / "savedmodel",
               "onnx": folder / "model.onnx", "python": folder / "python",
               "notebook": folder / "model.ipynb"}
    worker = Worker("tensorflow")
    try:
        results = {f: TrainingRun(worker, p.StartExport(f"fill-{f}", str(source), f, str(out),
                                                        verify=True)).wait()
                   for f, out in outputs.items()}
    finally:
        worker.shutdown()
    return model, outputs, results


@pytest.mark.parametrize("format", ["keras", "savedmodel", "onnx", "python", "notebook"])
def test_the_export_passes_its_parity_check(exports, format):
    _, outputs, results = exports
    result = results[format]
    assert isinstance(result, p.Exported), result
    assert result.report and all(r["verdict"] == "pass" for r in result.report), result.report


def test_the_exports_fill_missing_values_as_keras_does(exports):
    model, outputs, _ = exports
    want = np.asarray(model.predict(ROWS, verbose=0))
    assert np.isfinite(want).all()
    import onnxruntime

    session = onnxruntime.InferenceSession(str(outputs["onnx"]))
    name = session.get_inputs()[0].name
    np.testing.assert_allclose(session.run(None, {name: ROWS})[0], want, atol=1e-5)
    # SavedModel and .keras in TensorFlow, in a fresh process.
    code = textwrap.dedent(f"""
        import json, os
        os.environ["KERAS_BACKEND"] = "tensorflow"
        import numpy as np, tensorflow as tf
        nan = float("nan")
        rows = np.array({ROWS.tolist()!r}, dtype="float32")
        served = tf.saved_model.load({str(outputs["savedmodel"])!r})
        print(json.dumps(np.asarray(served.serve(rows)).tolist()))
        from kbuilder.graph.catalog.kbuilder_layers import register_all
        register_all()
        import keras
        model = keras.saving.load_model({str(outputs["keras"])!r})
        print(json.dumps(model.predict(rows, verbose=0).tolist()))
    """)
    out = subprocess.run([sys.executable, "-c", code],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()[-2:]
    for line in lines:
        np.testing.assert_allclose(np.reshape(json.loads(line), want.shape), want, atol=1e-5)

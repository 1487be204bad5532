"""FillMissing, kbuilder's layer that fills missing values inside the model: a palette
layer like Keras's own, built, adapted, saved, imported and written as code."""

from __future__ import annotations

import subprocess
import sys

import keras
import numpy as np
import pytest

from kbuilder.graph import catalog
from kbuilder.graph.build import build_model
from kbuilder.graph.catalog.kbuilder_layers import keras_class
from kbuilder.graph.codegen import generate_model_code
from kbuilder.graph.commands import History
from kbuilder.graph.keras_io import import_file, import_model
from kbuilder.graph.model import Graph
from kbuilder.graph.shapes import ShapeInference
from kbuilder.runtime.data import adapt_layers
from tests.graph.codegen.test_codegen import ruff_problems, run_code
from tests.graph.helpers import add_input, add_layer, add_output

ROWS = np.array([[1.0, np.nan, 30.0],
                 [np.nan, 5.0, 60.0],
                 [7.0, 8.0, np.nan],
                 [3.0, np.nan, 90.0]], dtype="float32")


def fill_graph(**fill_params) -> Graph:
    h, g = History(), Graph("filled")
    x = add_input(h, g, [3], name="measurements")
    f = add_layer(h, g, "FillMissing", x, name="fill", **fill_params)
    n = add_layer(h, g, "Normalization", f, name="norm")
    add_output(h, g, add_layer(h, g, "Dense", n, name="head", units=2))
    return g


def test_fill_missing_is_a_preprocessing_layer_of_the_palette():
    spec = catalog.get("FillMissing")
    assert spec.category == "Preprocessing" and spec.adaptable
    assert spec in catalog.all_layers()  # offered in the palette, not only found by name
    assert {p.name for p in spec.params} >= {"fill_values", "axis"}
    assert catalog.search("fill")[0].class_name == "FillMissing"


def test_the_graph_package_does_not_import_keras_for_it():
    code = ("import sys; import kbuilder.graph.catalog.kbuilder_layers, kbuilder.graph.codegen; "
            "print('keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_shapes_and_a_wrong_number_of_fill_values_are_reported():
    inference = ShapeInference(fill_graph())
    inference.update()
    assert inference.errors() == []
    graph = fill_graph()
    inference = ShapeInference(graph)
    inference.update()
    assert inference.result(graph.find("fill").id).outputs[0].shape == (None, 3)
    bad = fill_graph(fill_values=[1.0, 2.0])
    inference = ShapeInference(bad)
    inference.update()
    (problem,) = [m for nid, m in inference.errors() if nid == bad.find("fill").id]
    assert "expected 3 values (one per feature)" in problem


def test_adapting_fills_with_the_median_then_normalizes_the_filled_data():
    model = build_model(fill_graph())
    results = adapt_layers(model, ROWS)
    assert [r.layer for r in results] == ["fill", "norm"] and all(r.adapted for r in results)
    fill = model.get_layer("fill")
    np.testing.assert_array_equal(fill.get_weights()[0], [3.0, 6.5, 60.0])
    filled = np.where(np.isnan(ROWS), [3.0, 6.5, 60.0], ROWS)
    norm = model.get_layer("norm")
    np.testing.assert_allclose(norm.get_weights()[0].ravel(), filled.mean(axis=0), rtol=1e-6)
    out = keras.ops.convert_to_numpy(model.predict(ROWS, verbose=0))
    assert np.isfinite(out).all()
    # Given fill values are kept, not adapted over.
    given = build_model(fill_graph(fill_values=[0.0, -1.0, 2.0]))
    assert not adapt_layers(given, ROWS)[0].adapted
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(given.get_layer("fill")(ROWS))[1],
                                  [0.0, 5.0, 60.0])


def test_a_column_without_values_is_filled_with_zero_and_infinities_stay():
    layer = keras_class("FillMissing")()
    data = np.array([[np.nan, np.inf], [np.nan, 1.0]], dtype="float32")
    layer.adapt(data)
    np.testing.assert_array_equal(layer.get_weights()[0], [0.0, 1.0])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(data)),
                                  [[0.0, np.inf], [0.0, 1.0]])


def test_a_saved_model_imports_back_with_its_fill_values(tmp_path):
    model = build_model(fill_graph())
    adapt_layers(model, ROWS)
    path = tmp_path / "filled.keras"
    model.save(path)
    project = import_file(path)
    assert project.graph.find("fill").class_name == "FillMissing"
    rebuilt = build_model(project.graph, project.weights)
    np.testing.assert_allclose(rebuilt.predict(ROWS, verbose=0), model.predict(ROWS, verbose=0),
                               rtol=1e-6)
    graph, weights = import_model(keras.saving.load_model(path))
    rebuilt = build_model(graph, weights)
    np.testing.assert_allclose(rebuilt.predict(ROWS, verbose=0), model.predict(ROWS, verbose=0),
                               rtol=1e-6)


def test_generated_code_defines_the_class_and_builds_the_same_model(tmp_path):
    graph = fill_graph()
    code = generate_model_code(graph)
    assert ruff_problems(code, tmp_path) == ""
    assert "class FillMissing(layers.Layer):" in code
    assert "import kbuilder" not in code and "from kbuilder" not in code
    assert 'FillMissing(name="fill")' in code
    built = run_code(code)["build_model"]()
    expected = build_model(graph)
    adapt_layers(expected, ROWS)
    for a, b in zip(expected.layers, built.layers, strict=True):
        b.set_weights(a.get_weights())
        if hasattr(b, "finalize_state"):
            b.finalize_state()  # Normalization derives its working values from the weights
    np.testing.assert_allclose(built.predict(ROWS, verbose=0),
                               expected.predict(ROWS, verbose=0), rtol=1e-6)
    # The generated class is registered under kbuilder's name: its models load in kbuilder.
    path = tmp_path / "generated.keras"
    built.save(path)
    assert import_file(path).graph.find("fill").class_name == "FillMissing"


@pytest.mark.parametrize("fill_values", [None, [1.0, 2.0, 3.0]])
def test_config_round_trip(fill_values):
    cls = keras_class("FillMissing")
    layer = cls(fill_values=fill_values, name="f")
    again = cls.from_config(layer.get_config())
    assert again.get_config() == layer.get_config()

"""Operation nodes (graph/ops.py): what each computes, its shape, its code, its refusals.

Computed on Keras's numpy backend (tests/conftest.py) and compared with NumPy's own
functions; shapes on symbolic ``KerasTensor``s, as shape inference does.
"""

import keras
import numpy as np
import pytest

from kbuilder.graph.catalog.ops import OPERATIONS, expression, is_operation, keras_class

NUMPY = {"add": np.add, "subtract": np.subtract, "multiply": np.multiply,
         "divide": np.divide, "true_divide": np.true_divide, "power": np.power,
         "maximum": np.maximum, "minimum": np.minimum}

X = np.array([[0.5, 1.0, 2.0, 4.0], [1.5, 2.5, 3.0, 0.25]], dtype="float32")
Y = np.array([[2.0, 0.5, 1.0, 3.0], [0.5, 2.0, 1.5, 2.0]], dtype="float32")


def test_every_operation_is_tested_against_numpy():
    assert set(OPERATIONS) == set(NUMPY)


@pytest.mark.parametrize("function", list(OPERATIONS))
def test_an_operation_of_two_tensors_computes_what_numpy_does(function):
    layer = keras_class(f"ops.{function}").from_config({"name": function})
    got = keras.ops.convert_to_numpy(layer(X, Y))
    np.testing.assert_allclose(got, NUMPY[function](X, Y), rtol=1e-6)
    assert layer.count_params() == 0 and layer.weights == ()


@pytest.mark.parametrize("function", list(OPERATIONS))
def test_a_constant_is_the_other_operand_on_either_side(function):
    cls = keras_class(f"ops.{function}")
    right = cls(constant=3.0, name="r")
    left = cls(constant=3.0, constant_first=True, name="l")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(right(X)), NUMPY[function](X, 3.0),
                               rtol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(left(X)), NUMPY[function](3.0, X),
                               rtol=1e-6)
    # A list broadcasts per channel, as float32.
    per_channel = cls(constant=[1.0, 2.0, 0.5, 4.0])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(per_channel(X)),
                               NUMPY[function](X, np.array([1.0, 2.0, 0.5, 4.0])), rtol=1e-6)


def test_shapes_broadcast_on_symbolic_tensors():
    x = keras.KerasTensor((None, 7, 4))
    add = keras_class("ops.add")
    assert add(constant=[1.0, 2.0, 3.0, 4.0])(x).shape == (None, 7, 4)
    assert add()(x, keras.KerasTensor((None, 1, 4))).shape == (None, 7, 4)
    assert keras_class("ops.maximum")(constant=0.0)(x).shape == (None, 7, 4)


def test_the_config_round_trips_and_unknown_or_bad_values_are_refused():
    cls = keras_class("ops.subtract")
    layer = cls(constant=[1.0, 2.0], constant_first=True, name="centre")
    assert cls.from_config(layer.get_config()).get_config() == layer.get_config()
    with pytest.raises(ValueError, match="`units`"):
        cls.from_config({"name": "s", "units": 3})
    with pytest.raises(ValueError, match="constant"):
        cls(constant="three")
    with pytest.raises(ValueError, match="connect a tensor to its port `y` or set `constant`"):
        cls()(X)


def test_only_the_listed_functions_are_operations():
    assert is_operation("ops.add") and is_operation("ops.true_divide")
    for name in ("ops.eval", "ops.", "add", "Dense", "", None):
        assert not is_operation(name), name


@pytest.mark.parametrize("class_name, params, y, code", [
    ("ops.add", {"constant": 3.0}, None, "x + 3.0"),
    ("ops.subtract", {"constant": 3.0, "constant_first": True}, None, "3.0 - x"),
    ("ops.power", {"constant": -2.0, "constant_first": True}, None, "(-2.0) ** x"),
    ("ops.multiply", {}, "skip", "x * skip"),
    ("ops.maximum", {"constant": 0.0}, None, "keras.ops.maximum(x, 0.0)"),
    ("ops.add", {"constant": [1.0, 2.0]}, None,
     'x + keras.ops.convert_to_tensor([1.0, 2.0], dtype="float32")'),
])
def test_the_code_of_an_operation_reads_as_written_by_hand(class_name, params, y, code):
    assert expression(class_name, params, "x", y, repr) == code

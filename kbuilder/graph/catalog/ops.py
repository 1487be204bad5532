"""Operation nodes: a ``keras.ops`` function applied between layers (``x + 3.0``).

Keras models written with the Functional API may apply ``keras.ops`` functions to tensors
directly, e.g. MobileNetV3's hard sigmoid ``ReLU(6.0)(x + 3.0) * (1.0 / 6.0)`` or
ConvNeXt's residual ``inputs + x``. Keras records each such call as an operation in the
model's graph. kbuilder represents one as a layer node of a catalog entry named
``ops.<function>`` (``ops.add``, ``ops.multiply``...): its tensors come in on ports ``x``
and ``y``, and when ``y`` is not connected the other operand is the parameter
``constant`` (a number or a list of numbers), on the left when ``constant_first``.

Only the element-wise binary functions in ``OPERATIONS`` are allowed: a project file names
a function from this list and numbers, never code, so opening a project runs nothing
unexpected. An operation has no weights and is never shared.

Building calls the very ``keras.ops`` function on the tensors, so the rebuilt model records
the same operations as the original; generated code writes ``x + 3.0`` (or
``keras.ops.maximum(x, 0.0)``) as a person would.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

PREFIX = "ops."


@dataclass(frozen=True)
class Operation:
    """One allowed ``keras.ops`` function.

    Args:
        function: the name in ``keras.ops`` (and of the node's catalog entry after ``ops.``).
        keras_class: the class Keras records in a Functional graph for a call.
        summary: what it computes, for the palette and inspector.
        symbol: the Python operator that calls it on a ``KerasTensor``, if any.
    """

    function: str
    keras_class: str
    summary: str
    symbol: str | None = None


OPERATIONS: dict[str, Operation] = {
    op.function: op
    for op in (
        Operation("add", "Add", "Adds two tensors, or a tensor and a constant.", "+"),
        Operation("subtract", "Subtract", "Subtracts `y` (or the constant) from `x`.", "-"),
        Operation("multiply", "Multiply", "Multiplies two tensors, or a tensor by a constant.",
                  "*"),
        Operation("divide", "Divide", "Divides `x` by `y` (or by the constant)."),
        Operation("true_divide", "TrueDivide", "Divides `x` by `y` (or by the constant), as "
                  "Python's `/` does.", "/"),
        Operation("power", "Power", "Raises `x` to the power `y` (or the constant).", "**"),
        Operation("maximum", "Maximum", "The element-wise larger of two tensors, or of a "
                  "tensor and a constant."),
        Operation("minimum", "Minimum", "The element-wise smaller of two tensors, or of a "
                  "tensor and a constant."),
    )
}

# keras.src.ops.numpy class name -> function name
_BY_KERAS_CLASS = {op.keras_class: op.function for op in OPERATIONS.values()}


def is_operation(class_name: str | None) -> bool:
    """Whether a node's ``class_name`` names an operation (``ops.add``...)."""
    return bool(class_name) and class_name.startswith(PREFIX) and (
        class_name[len(PREFIX):] in OPERATIONS
    )


def operation_of(class_name: str) -> Operation:
    return OPERATIONS[class_name[len(PREFIX):]]


# -------------------------------------------------------------------------- the catalog
def catalog_specs() -> list[Any]:
    """A ``LayerSpec`` for every operation (found by name, not listed in the palette)."""
    from kbuilder.graph.catalog.specs import LayerSpec, ParamSpec, PortSpec

    doc_constant = (
        "The other operand when port `y` is not connected: a number, or a list of numbers "
        "that broadcasts against `x` (e.g. one value per channel)."
    )
    doc_first = "Whether the constant is the left operand (`3.0 - x` rather than `x - 3.0`)."
    specs = []
    for op in OPERATIONS.values():
        code = f"x {op.symbol} y" if op.symbol else f"keras.ops.{op.function}(x, y)"
        doc = (f"{op.summary}\n\nComputes `{code}` with `keras.ops.{op.function}`, as a "
               "Keras model does where it applies the function to tensors between layers. "
               "`y` is a second tensor or, when that port is not connected, `constant`.")
        specs.append(LayerSpec(
            class_name=PREFIX + op.function,
            aliases=(),
            category="Operations",
            summary=op.summary,
            doc=doc,
            params=(
                ParamSpec("constant", "json", None, required=False, nullable=True,
                          doc=doc_constant),
                ParamSpec("constant_first", "bool", False, required=False, nullable=False,
                          doc=doc_first),
            ),
            inputs=(PortSpec("x"), PortSpec("y", required=False, min_count=0)),
            api_name=PREFIX + op.function,
        ))
    return specs


def constant_problem(constant: Any) -> str | None:
    """Why ``constant`` cannot be an operation's operand, or ``None``: it must be ``None``
    (port ``y`` gives it), a finite number, or nested lists of them that make an array.
    The catalog's parameter checks say it in Keras's words for the node; this guards a
    built layer without them."""
    import numpy as np

    if constant is None:
        return None
    if not isinstance(constant, bool | list) and not isinstance(constant, int | float):
        return f"the constant is a {type(constant).__name__}, not a number or a list of numbers"
    try:
        array = np.asarray(constant, dtype=np.float64)  # ragged lists raise
    except (TypeError, ValueError):
        return "the constant's lists are not all of the same length"
    if isinstance(constant, bool) or array.size == 0 or not np.isfinite(array).all():
        return "the constant must be finite numbers"
    return None


@functools.cache
def keras_class(class_name: str) -> type:
    """The class that stands for a layer of an operation node in shape inference and build.

    ``from_config`` makes it from the node's parameters, as for a Keras layer; calling it
    calls the ``keras.ops`` function (so a Functional model records the operation).
    """
    op = operation_of(class_name)
    return type(f"{op.keras_class}Operation", (OperationCall,), {"operation": op})


class OperationCall:
    """A ``keras.ops`` function with its constant, called like a layer; it has no weights."""

    operation: Operation
    weights: tuple = ()
    trainable_weights: tuple = ()
    non_trainable_weights: tuple = ()

    def __init__(self, constant: Any = None, constant_first: bool = False,
                 name: str | None = None):
        problem = constant_problem(constant)
        if problem:
            raise ValueError(f"{PREFIX}{self.operation.function}: {problem}. Received: "
                             f"constant={constant!r}")
        self.constant = constant
        self.constant_first = bool(constant_first)
        self.name = name or self.operation.function

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> OperationCall:
        config = dict(config)
        unknown = set(config) - {"constant", "constant_first", "name"}
        if unknown:
            raise ValueError(f"Unrecognized parameter `{sorted(unknown)[0]}` for "
                             f"{PREFIX}{cls.operation.function}.")
        return cls(**config)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "constant": self.constant,
                "constant_first": self.constant_first}

    def count_params(self) -> int:
        return 0

    def __call__(self, x: Any, y: Any = None) -> Any:
        import keras

        function = getattr(keras.ops, self.operation.function)
        if y is None:
            if self.constant is None:
                raise ValueError(
                    f"{PREFIX}{self.operation.function} needs a second operand: connect a "
                    "tensor to its port `y` or set `constant`."
                )
            y = _constant_value(self.constant)
            return function(y, x) if self.constant_first else function(x, y)
        return function(x, y)


def _constant_value(constant: Any) -> Any:
    """A number stays a Python number (Keras treats it as weakly typed, like the original
    ``x + 3.0``); a list becomes a float32 array."""
    if isinstance(constant, list):
        import numpy as np

        return np.asarray(constant, dtype="float32")
    return constant


# ----------------------------------------------------------------------------- import
def parse_keras_call(op: Any, args: tuple, kwargs: dict) -> tuple[str, dict, dict] | str:
    """A recorded Keras operation call as ``(catalog name, ports, params)``, or a reason.

    Args:
        op: the Keras operation (e.g. ``keras.src.ops.numpy.Add``).
        args, kwargs: the call's arguments as Keras recorded them.

    Returns:
        ``("ops.add", {"x": [tensor]}, {"constant": 3.0, "constant_first": False})``, or a
        sentence that says why the call cannot be an operation node.
    """
    import numpy as np
    from keras.src.ops import numpy as keras_numpy

    function = _BY_KERAS_CLASS.get(type(op).__name__)
    if function is None or getattr(keras_numpy, type(op).__name__, None) is not type(op):
        allowed = ", ".join(f"keras.ops.{f}" for f in OPERATIONS)
        return (f"it applies {type(op).__name__} from keras.ops, which kbuilder cannot "
                f"represent yet (it represents {allowed})")
    if kwargs or len(args) != 2:
        return f"it calls keras.ops.{function} with arguments kbuilder cannot store"
    tensors = [_is_tensor(a) for a in args]
    if all(tensors):
        return PREFIX + function, {"x": [args[0]], "y": [args[1]]}, {
            "constant": None, "constant_first": False}
    if not any(tensors):
        return f"keras.ops.{function} is applied to constants only"
    first = not tensors[0]
    constant = args[0] if first else args[1]
    value = _plain_constant(constant)
    if value is None:
        return (f"the constant of keras.ops.{function} is a {type(constant).__name__}, not a "
                "number or an array of numbers")
    tensor = args[1] if first else args[0]
    if isinstance(value, list) and np.asarray(constant).dtype != np.float32:
        return (f"the constant array of keras.ops.{function} is "
                f"{np.asarray(constant).dtype}; kbuilder keeps constant arrays as float32")
    return PREFIX + function, {"x": [tensor]}, {"constant": value, "constant_first": first}


def _is_tensor(value: Any) -> bool:
    return hasattr(value, "_keras_history")


def _plain_constant(value: Any) -> Any:
    """A Python number or nested list of numbers for ``value``, else ``None``."""
    import numpy as np

    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, np.generic | np.ndarray) and value.dtype.kind in "iuf":
        return value.tolist() if value.size and np.isfinite(value).all() else None
    return None


# ------------------------------------------------------------------------------- code
def expression(class_name: str, params: dict[str, Any], x: str, y: str | None,
               literal: Any) -> str:
    """The Python expression of an operation node, e.g. ``conv + 3.0``.

    Args:
        class_name: the node's ``ops.<function>``.
        params: the node's parameters.
        x, y: the code of the operands (``y`` is ``None`` when the constant is used).
        literal: turns a parameter value into code (``codegen.literals.literal``).
    """
    op = operation_of(class_name)
    if y is None:
        constant = params.get("constant")
        y = literal(constant)
        if isinstance(constant, list):
            y = f'keras.ops.convert_to_tensor({y}, dtype="float32")'
        elif y.startswith("-"):
            y = f"({y})"  # -2.0 ** x would be -(2.0 ** x)
        if params.get("constant_first"):
            x, y = y, x
    if op.symbol:
        return f"{x} {op.symbol} {y}"
    return f"keras.ops.{op.function}({x}, {y})"

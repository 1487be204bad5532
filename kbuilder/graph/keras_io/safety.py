"""File safety: a model configuration is refused, before Keras deserializes anything,
when it carries Python code (a Lambda layer...) or needs a class that is neither built
into Keras nor registered with it."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from kbuilder.graph.keras_io.problems import Problem, custom_class_message, problems_error, quoted
from kbuilder.graph.model import to_snake_case

# Layer classes whose configuration carries Python code (or a pickled object), which
# Keras would run while opening the file.
CODE_LAYERS = frozenset({"Lambda", "TorchModuleWrapper", "JaxLayer", "FlaxLayer"})

# What Keras 2 wrote for TensorFlow functions applied to symbolic tensors.
_KERAS2_OPERATIONS = frozenset({"TFOpLambda", "SlicingOpLambda"})


# What a refusal of Python code in a model file tells the user to do.
TRUST_REMEDY = (
    "Open it only if you trust where it came from: `kbuilder import --trust`."
)
SAFE_MODE_REMEDY = (
    "kbuilder never runs code from a model file to predict or export; rebuild that part "
    "with built-in layers (e.g. Rescaling, Activation, Reshape) where the model is made, "
    "and save the model again."
)


def check_model_config(
    config: dict[str, Any], trust: bool = False, remedy: str = TRUST_REMEDY
) -> None:
    """Refuse a model configuration that would run code or needs unknown classes.

    Args:
        config: the configuration from ``read_model_config``.
        trust: skip the refusal of code-carrying objects (Lambda layers and the like).
        remedy: the sentence that ends a refusal of code: what the user can do.

    Raises:
        NeedsTrustError: only code-carrying objects stand in the way (``trust=True``
            would open the file); names the (first) layer concerned.
        ModelImportError: names the (first) layer concerned and the risk or class.
    """
    problems = [
        replace(p, message=f"{p.message} {remedy}") if p.code else p
        for p in _config_problems(config) if not (trust and p.code)
    ]
    if problems:
        raise problems_error(problems)


def _config_problems(config: dict[str, Any]) -> Iterator[Problem]:
    """Code-carrying objects and unknown classes in a model configuration."""
    # Iterative: a hostile file may nest deeper than Python's recursion limit allows.
    stack: list[tuple[Any, tuple[str, str]]] = [(config, ("model", "Model"))]
    while stack:
        value, layer = stack.pop()
        if isinstance(value, list):
            stack.extend((item, layer) for item in reversed(value))
            continue
        if not isinstance(value, dict):
            continue
        class_name = value.get("class_name")
        if isinstance(class_name, str):
            inner = value.get("config")
            # Layers (and models) have a name in their config; dtype policies have one too.
            if (
                isinstance(inner, dict)
                and isinstance(inner.get("name"), str)
                and not class_name.endswith("DTypePolicy")
            ):
                layer = (inner["name"], class_name)
            problem = _object_problem(value, class_name, layer)
            if problem is not None:
                yield problem
        stack.extend((item, layer) for item in reversed(list(value.values())))


def _object_problem(obj: dict[str, Any], class_name: str, layer: tuple[str, str]) -> Problem | None:
    module = obj.get("module")
    keras_module = isinstance(module, str) and (module == "keras" or module.startswith("keras."))
    layer_name, layer_class = layer
    if class_name == "__lambda__" or (
        class_name in CODE_LAYERS and (keras_module or "module" not in obj)
    ):
        return Problem(layer_name, layer_class, (
            f"Layer {quoted(layer_name)} ({layer_class}) contains Python code, which would run on "
            "your computer when the model is opened."
        ), code=True)
    if class_name.startswith("__") and class_name.endswith("__"):
        return None  # Keras's own markers for tensors, tuples, arrays...
    if class_name in _KERAS2_OPERATIONS and not keras_module:
        return Problem(layer_name, class_name, (
            f"Layer {quoted(layer_name)} ({class_name}) is a TensorFlow operation that Keras 2 "
            "recorded between layers; Keras 3, and so kbuilder, cannot open it. Make the "
            "model with layers (e.g. keras.layers.Add instead of `x + y`) and save it again."
        ))
    if class_name == "function":
        function = obj.get("config")
        if keras_module or _registered(obj.get("registered_name"), function):
            return None
        return Problem(layer_name, str(function), custom_class_message(
            layer_name, str(function), "function"
        ))
    if keras_module:
        return None
    if "module" not in obj:  # legacy .h5 configurations name classes without a module
        if _keras_class_name(class_name):
            return None
        if _keras_operation_name(class_name):
            return Problem(layer_name, class_name, (
                f"Layer {quoted(layer_name)} ({class_name}) is a Keras operation, which Keras 3 "
                "cannot read back from the legacy .h5 format (masks, as from "
                "Embedding(mask_zero=True), are stored this way). Save the model in the "
                ".keras format and open that file."
            ))
    if _registered(obj.get("registered_name"), class_name):
        return None
    return Problem(layer_name, class_name, custom_class_message(layer_name, class_name))


def _registered(*names: Any) -> bool:
    import keras

    return any(
        isinstance(n, str) and keras.saving.get_registered_object(n) is not None for n in names
    )


@functools.cache
def _keras_class_name(class_name: str) -> bool:
    """Whether a legacy configuration's class name is one of Keras's own."""
    import keras
    from keras.src import constraints, initializers, regularizers

    if class_name in ("Functional", "Model", "Sequential", "DTypePolicy", "FloatDTypePolicy"):
        return True
    if inspect.isclass(getattr(keras.layers, class_name, None)):
        return True
    return any(
        class_name in module.ALL_OBJECTS_DICT for module in (initializers, regularizers, constraints)
    )


@functools.cache
def _keras_operation_name(class_name: str) -> bool:
    """Whether a class name is that of a ``keras.ops`` operation (``NotEqual``)."""
    import keras

    return callable(getattr(keras.ops, to_snake_case(class_name), None))

"""The names Keras accepts for activations, initializers, regularizers, constraints and
dtypes (read from the installed Keras, on first use)."""

from __future__ import annotations

import functools
import inspect
from typing import Any

KERAS_OBJECT_KINDS = ("initializer", "regularizer", "constraint")
_NOT_ACTIVATIONS = frozenset({"get", "serialize", "deserialize"})
DTYPE_SUGGESTIONS = (
    "float32", "float16", "bfloat16", "float64", "mixed_float16", "mixed_bfloat16",
    "int8", "int16", "int32", "int64", "uint8", "bool", "string",
)


@functools.cache
def activation_names() -> tuple[str, ...]:
    """The `keras.activations` functions that take one tensor (plus optional arguments)."""
    import keras

    names = []
    for attr in dir(keras.activations):
        func = getattr(keras.activations, attr)
        if attr.startswith("_") or attr in _NOT_ACTIVATIONS or not callable(func):
            continue
        params = inspect.signature(func).parameters.values()
        required = [p for p in params if p.default is p.empty]
        if len(required) == 1:
            names.append(attr)
    # The usual suspects first: an editor shows the start of the list.
    common = [n for n in ("relu", "sigmoid", "softmax", "tanh", "linear", "gelu", "silu")
              if n in names]
    return (*common, *sorted(n for n in names if n not in common))


def _keras_module(kind: str) -> Any:
    if kind == "initializer":
        from keras.src import initializers as module
    elif kind == "regularizer":
        from keras.src import regularizers as module
    else:
        from keras.src import constraints as module
    return module


@functools.cache
def keras_object_classes(kind: str) -> dict[str, type]:
    """Names (snake_case and class names) of the concrete classes of one kind."""
    module = _keras_module(kind)
    base = {"initializer": "Initializer", "regularizer": "Regularizer",
            "constraint": "Constraint"}[kind]
    base_cls = module.ALL_OBJECTS_DICT[base]
    return {
        key: value
        for key, value in module.ALL_OBJECTS_DICT.items()
        if inspect.isclass(value) and value is not base_cls
    }


@functools.cache
def keras_object_names(kind: str) -> tuple[str, ...]:
    """The snake_case names that make an object of `kind` without further arguments."""
    return tuple(
        sorted(
            key
            for key, cls in keras_object_classes(kind).items()
            if key == key.lower() and makes_without_arguments(cls)
        )
    )


def makes_without_arguments(cls: type) -> bool:
    # Read the signature rather than instantiate: some (STFT) import scipy on creation.
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    return all(
        p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params
    )


@functools.cache
def dtype_names() -> frozenset[str]:
    from keras.src.backend.common import dtypes

    return frozenset(dtypes.ALLOWED_DTYPES) | {"mixed_float16", "mixed_bfloat16"}



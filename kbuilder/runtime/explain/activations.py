"""A node's output: the layer's output tensor as a Keras sub-model's output."""

from __future__ import annotations

from typing import Any

import numpy as np

from kbuilder.runtime.explain.attribution import ExplainError

BATCH = 64  # samples computed together


def find_layer(model: Any, name: str) -> Any:
    """The layer called ``name`` (a node's name is its layer's name in a built model)."""
    try:
        return model.get_layer(name)
    except ValueError:
        names = [layer.name for layer in model.layers]
        shown = ", ".join(names[:12]) + (" ..." if len(names) > 12 else "")
        raise ExplainError(f"The model has no layer '{name}'. Its layers: {shown}.") from None


def layer_outputs(model: Any, layer: Any, xs: list[np.ndarray]) -> np.ndarray:
    """The layer's output on ``xs`` (a batch per model input), as numpy."""
    import keras

    try:
        output = layer.output
    except (AttributeError, ValueError):
        raise ExplainError(f"The layer '{layer.name}' is used more than once in the model, "
                           "so it has no single output to show; choose another node.") from None
    sub = keras.Model(model.inputs, output)
    # Called directly, not through predict: predict compiles a step for each new sub-model
    # (most of the wait for one sample on JAX), a direct call runs the layers as they are.
    parts = []
    for start in range(0, len(xs[0]), BATCH):
        values = sub([x[start:start + BATCH] for x in xs], training=False)
        if isinstance(values, list | tuple):
            values = values[0]
        parts.append(np.asarray(keras.ops.convert_to_numpy(values)))
    return np.concatenate(parts)


def kind_of(shape: tuple[int, ...]) -> str:
    """How one sample's output of this shape is drawn."""
    if len(shape) == 3:
        return "image"
    if len(shape) == 2:
        return "sequence"
    if len(shape) == 1 and shape[0] > 1:
        return "vector"
    return "scalar" if len(shape) <= 1 else "tensor"


def statistics(values: np.ndarray) -> dict[str, Any]:
    """Mean, std, extremes, share of exact zeros and the units (last axis) zero on every
    sample: the dead ReLUs."""
    v = np.asarray(values, dtype=np.float64)
    units = v.reshape(-1, v.shape[-1]) if v.ndim >= 2 else v.reshape(-1, 1)
    finite = v[np.isfinite(v)]
    return {
        "mean": float(finite.mean()) if finite.size else 0.0,
        "std": float(finite.std()) if finite.size else 0.0,
        "minimum": float(finite.min()) if finite.size else 0.0,
        "maximum": float(finite.max()) if finite.size else 0.0,
        "zero_fraction": float((v == 0).mean()) if v.size else 0.0,
        "dead_units": int(np.all(units == 0, axis=0).sum()),
        "units": int(units.shape[1]),
    }

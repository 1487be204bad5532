"""A node's output: the layer's output tensor as a Keras sub-model's output; for an
attention layer also its attention weights per head."""

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


# Layers whose call takes ``return_attention_scores`` (Keras's attention layers).
ATTENTION_LAYERS = ("MultiHeadAttention", "GroupedQueryAttention")


def is_attention(layer: Any) -> bool:
    return type(layer).__name__ in ATTENTION_LAYERS


def attention_scores(model: Any, layer: Any, xs: list[np.ndarray]) -> np.ndarray:
    """An attention layer's attention weights on ``xs``: ``(samples, heads, query
    positions, key positions)``, each row summing to 1. The layer is called again on its
    own inputs in the model (their values from a sub-model, the mask and other arguments
    as in the model) with ``return_attention_scores=True``: Keras's own scores."""
    import keras

    nodes = getattr(layer, "_inbound_nodes", [])
    if len(nodes) != 1:
        raise ExplainError(f"The layer '{layer.name}' is used more than once in the model, "
                           "so it has no single attention to show; choose another node.")
    arguments = nodes[0].arguments
    tensors = list(arguments.keras_tensors)
    sub = keras.Model(model.inputs, tensors)
    parts = []
    for start in range(0, len(xs[0]), BATCH):
        values = sub([x[start:start + BATCH] for x in xs], training=False)
        values = list(values) if isinstance(values, list | tuple) else [values]
        args, kwargs = arguments.fill_in({id(t): v for t, v in zip(tensors, values,
                                                                   strict=True)})
        kwargs = {**kwargs, "return_attention_scores": True, "training": False}
        _, scores = layer(*args, **kwargs)
        parts.append(np.asarray(keras.ops.convert_to_numpy(scores)))
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

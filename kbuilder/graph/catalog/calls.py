"""Calling a catalog layer: its Keras class, the arguments of its call, its call options
and the configuration `from_config()` takes."""

from __future__ import annotations

import functools
import inspect
from typing import Any

from kbuilder.graph.catalog.overrides import PACKED_PORTS
from kbuilder.graph.catalog.registry import get
from kbuilder.graph.catalog.specs import LayerSpec, PortSpec
from kbuilder.graph.errors import UnknownLayerError


def call_arguments(spec: LayerSpec, inputs: dict[str, list]) -> tuple[list, dict]:
    """The positional and keyword arguments with which to call the Keras layer.

    Args:
        spec: the layer's catalog entry.
        inputs: the tensors connected to each port, in edge order, e.g.
            `{"inputs": [t]}`, `{"inputs": [t1, t2, t3]}` for a merge layer, or
            `{"query": [q], "value": [v]}` for attention.

    Returns:
        `(args, kwargs)` for `layer(*args, **kwargs)`: a single port gives `layer(t)`; a
        variadic port gives `layer([t1, t2, ...])`; required ports after the first are
        positional, optional ports are keywords and left out when not connected; Attention
        and AdditiveAttention get `[query, value, key]` packed into one list.

    Raises:
        ValueError: for an unknown port, a missing required port or a wrong edge count.
    """
    ports = {p.name: p for p in spec.inputs}
    unknown = [name for name in inputs if name not in ports]
    if unknown:
        raise ValueError(
            f"{spec.class_name} has no input port `{unknown[0]}`. "
            f"Its ports are: {', '.join(ports)}."
        )
    args: list = []
    kwargs: dict = {}
    for port in spec.inputs:
        tensors = list(inputs.get(port.name) or [])
        _check_count(spec, port, len(tensors))
        if not tensors:
            continue
        value = tensors if port.variadic else tensors[0]
        if port.required or spec.class_name in PACKED_PORTS:
            args.append(value)
        else:
            kwargs[port.name] = value
    if spec.class_name in PACKED_PORTS:
        args = [args]
    return args, kwargs


def keras_class(spec: LayerSpec) -> type:
    """The Keras class of a catalog entry (imports keras).

    Use this rather than `getattr(keras.layers, spec.class_name)`: Keras exports a few
    classes under an alias only (`GroupedQueryAttention` as `GroupQueryAttention`).
    """
    import keras

    from kbuilder.graph.catalog import app_layers, kbuilder_layers, ops

    if ops.is_operation(spec.class_name):
        return ops.keras_class(spec.class_name)
    if spec.class_name in app_layers.APPLICATION_LAYERS:
        return app_layers.keras_class(spec.class_name)
    if kbuilder_layers.is_kbuilder_layer(spec.class_name):
        return kbuilder_layers.keras_class(spec.class_name)
    if spec.category == "Pretrained network":
        return keras.Model  # built by keras.applications (graph/backbone_build.py)
    return getattr(keras.layers, spec.api_name or spec.class_name)


def call_option_names(spec: LayerSpec) -> tuple[str, ...]:
    """Non-tensor arguments of the layer's ``call`` a node may fix (``training``,
    ``use_causal_mask``, ``return_attention_scores``...), in signature order."""
    return _call_option_names(spec.class_name)


@functools.cache
def _call_option_names(class_name: str) -> tuple[str, ...]:
    from kbuilder.graph.backbones import is_backbone_class
    from kbuilder.graph.catalog import app_layers, ops

    if is_backbone_class(class_name):
        return ("training",)  # a nested model's call: training=False keeps BN in inference
    spec = get(class_name)
    if ops.is_operation(class_name) or class_name in app_layers.APPLICATION_LAYERS:
        return ()  # their calls take tensors only
    ports = {p.name for p in spec.inputs}
    skip = ports | {"self", "inputs", "mask", "kwargs", "args"}
    signature = inspect.signature(keras_class(spec).call)
    return tuple(
        name for name, p in signature.parameters.items()
        if name not in skip and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and (name.startswith("use_") or not name.endswith("_mask"))  # tensor masks
        and name not in ("initial_state", "constants")
    )


def validate_call_option(spec: LayerSpec, name: str, value: Any) -> str | None:
    """Check one call option; ``None`` when valid."""
    allowed = call_option_names(spec)
    if name not in allowed:
        return (
            f"`{name}` is not an option of calling {spec.class_name}; "
            f"its options are {', '.join(allowed) or 'none'}."
        )
    if value is not None and not isinstance(value, bool | int | float | str):
        return f"Call option `{name}` must be true/false, a number or text. Received: {value!r}"
    return None


def keras_config(spec: LayerSpec, params: dict[str, Any]) -> dict[str, Any]:
    """Parameters as `from_config()` takes them: nested layers get Keras's envelope.

    kbuilder writes a wrapped layer as `{"class_name": "LSTM", "config": {...}}`; Keras
    finds the class only with `"module": "keras.layers"`, which this adds at every depth
    (e.g. TimeDistributed(Bidirectional(LSTM))).
    """
    config = dict(params)
    for p in spec.params:
        value = config.get(p.name)
        if p.kind != "layer" or not isinstance(value, dict):
            continue
        inner = value.get("config", {})
        try:
            inner_spec = get(value.get("class_name", ""))
        except UnknownLayerError:
            continue  # validation reports it; Keras will say what it cannot find
        if isinstance(inner, dict):
            inner = keras_config(inner_spec, inner)
        config[p.name] = {
            "module": "keras.layers",
            "registered_name": None,
            **value,
            "class_name": inner_spec.api_name,
            "config": inner,
        }
    return config


def _check_count(spec: LayerSpec, port: PortSpec, count: int) -> None:
    if count == 0:
        if port.required:
            raise ValueError(f"{spec.class_name} needs an input on port `{port.name}`.")
        return
    low = max(port.min_count, 1)
    high = port.max_count
    if count < low or (high is not None and count > high):
        if high is None:
            wanted = f"at least {low}"
        elif low == high:
            wanted = f"exactly {low}"
        else:
            wanted = f"{low} to {high}"
        raise ValueError(
            f"{spec.class_name} takes {wanted} tensor(s) on port `{port.name}`. "
            f"Received: {count}"
        )



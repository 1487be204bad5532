"""Graph -> ``keras.Model`` through the Functional API.

Layer names are the node names; a node sharing another node's layer calls the same layer
object (so the weights are shared); a block becomes a nested ``keras.Model`` called like a
layer. Weights saved in a project are set after the model is built.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kbuilder.graph.backbone_build import WeightsUnavailableError, make_backbone
from kbuilder.graph.backbones import is_backbone_class
from kbuilder.graph.errors import GraphError
from kbuilder.graph.freezing import in_inference_mode
from kbuilder.graph.model import Graph
from kbuilder.graph.report import NO_INPUTS, NO_OUTPUTS
from kbuilder.graph.shapes import explain_exception, make_layer, order_with_sharing


class BuildError(GraphError):
    """The graph cannot become a Keras model; names the node."""


# Frames of Keras's recursive graph walk per layer of a model's longest chain, with room.
_FRAMES_PER_LAYER = 4


@contextmanager
def deep_recursion(layers: int) -> Iterator[None]:
    """Let Keras handle a model of ``layers`` layers inside the block.

    Keras walks a model's graph recursively (``keras.src.ops.function.map_graph``, one
    call per layer of the longest chain), so a chain of a few thousand layers would pass
    Python's default limit of 1,000 calls; kbuilder's own walks are iterative.
    """
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(max(previous, 1_000 + _FRAMES_PER_LAYER * layers))
    try:
        yield
    finally:
        sys.setrecursionlimit(previous)


def build_model(
    graph: Graph, weights: dict[str, list[Any]] | None = None, name: str | None = None
) -> Any:
    """Build the Keras Functional model of ``graph``.

    Args:
        graph: the graph; its output nodes (or, without any, its sinks) are the outputs.
        weights: node id -> weight arrays in Keras order, e.g. from a project file.
        name: model name; defaults to ``graph.name``.

    Returns:
        A ``keras.Model``.

    Raises:
        BuildError: a node cannot be built; the error carries its id.
    """
    import keras

    layers: dict[str, Any] = {}
    # Backbones whose weights the project holds are built without reading or downloading
    # their own (``preset``); theirs are set below like every layer's.
    preset = set(weights or ())
    with deep_recursion(sum(1 for _ in graph.walk())):
        model = _build(graph, None, layers, name or graph.name, preset)
    for node_id, arrays in (weights or {}).items():
        layer = layers.get(node_id)
        if layer is None:
            continue  # weights of a node that was deleted since
        try:
            layer.set_weights([keras.ops.convert_to_numpy(a) for a in arrays])
            if hasattr(layer, "finalize_state"):
                # Adapted preprocessing (Normalization...) derives its working values from
                # the weights here, as Keras's own loading does.
                layer.finalize_state()
        except Exception as exc:
            message, _ = explain_exception(exc, [])
            raise BuildError(
                f"The saved weights of '{layer.name}' no longer fit the layer "
                f"(its parameters changed?): {message}",
                node_id,
            ) from exc
    return model


def _build(
    graph: Graph,
    input_tensors: dict[str, Any] | None,
    layers: dict[str, Any],
    name: str,
    preset: frozenset[str] | set[str] = frozenset(),
) -> Any:
    """Build ``graph`` as a model; ``input_tensors`` gives inner input shapes for blocks."""
    import keras

    from kbuilder.graph import catalog

    chain = graph.sequential_chain()
    if chain is not None:
        return _build_sequential(graph, chain, input_tensors, layers, name)
    tensors: dict[tuple[str, int], Any] = {}
    inputs: list[Any] = []
    for nid in order_with_sharing(graph):
        node = graph.node(nid)
        try:
            if node.kind == "input":
                if input_tensors is not None:
                    outer = input_tensors.get(nid)
                    if outer is None:
                        raise BuildError(f"Block input '{node.name}' is not connected.", nid)
                    t = keras.Input(
                        shape=tuple(outer.shape[1:]), dtype=outer.dtype, name=node.name
                    )
                else:
                    t = keras.Input(
                        shape=tuple(node.param("shape") or ()),
                        dtype=node.param("dtype", "float32"),
                        name=node.name,
                    )
                inputs.append(t)
                tensors[(nid, 0)] = t
                continue
            if node.kind == "output":
                continue
            by_port = _port_tensors(graph, nid, tensors)
            if node.kind == "block":
                assert node.subgraph is not None
                inner_inputs = {port: values[0] for port, values in by_port.items()}
                sub = _build(node.subgraph, inner_inputs, layers, node.name, preset)
                ordered = [inner_inputs[n.id] for n in node.subgraph.input_nodes()]
                if node.param("trainable", True) is False:  # graph/freezing.py
                    sub.trainable = False
                # training=False keeps a frozen block's BatchNormalization in inference mode.
                call = {"training": False} if in_inference_mode(node) else {}
                out = sub(ordered[0] if len(ordered) == 1 else ordered, **call)
            else:
                owner = graph.layer_owner(nid)
                spec = catalog.get(owner.class_name or "")
                layer = layers.get(owner.id)
                if layer is None and is_backbone_class(owner.class_name):
                    layer = make_backbone(
                        spec.class_name, owner.params, owner.name,
                        tuple(by_port["inputs"][0].shape[1:]), owner.id not in preset)
                    layers[owner.id] = layer
                if layer is None:
                    layer = make_layer(spec.class_name, owner.params, owner.name)
                    layers[owner.id] = layer
                args, kwargs = catalog.call_arguments(spec, by_port)
                out = layer(*args, **kwargs, **node.call_options)
            for i, t in enumerate(keras.tree.flatten(out)):
                tensors[(nid, i)] = t
        except BuildError:
            raise
        except WeightsUnavailableError as exc:  # already a sentence saying what to do
            raise BuildError(f"'{node.name}': {exc}", nid, "weights") from exc
        except Exception as exc:
            message, param = explain_exception(exc, [])
            raise BuildError(f"'{node.name}': {message}", nid, param) from exc
    outputs = []
    for src, port in graph.output_refs():
        if (src, port) not in tensors:
            raise BuildError(
                f"'{graph.node(src).name}' has no output {port} to return.", src
            )
        outputs.append(tensors[(src, port)])
    if not inputs:
        raise BuildError(NO_INPUTS)
    if not outputs:
        raise BuildError(NO_OUTPUTS)
    return keras.Model(
        inputs=inputs[0] if len(inputs) == 1 else inputs,
        outputs=outputs[0] if len(outputs) == 1 else outputs,
        name=name,
    )


def _build_sequential(
    graph: Graph, chain: list[Any], input_tensors: dict[str, Any] | None,
    layers: dict[str, Any], name: str,
) -> Any:
    """A ``keras.Sequential`` of the chain's layers (a graph imported from one)."""
    import keras

    inp = graph.input_nodes()[0]
    if input_tensors is not None:
        outer = input_tensors.get(inp.id)
        if outer is None:
            raise BuildError(f"Block input '{inp.name}' is not connected.", inp.id)
        shape, dtype = tuple(outer.shape[1:]), outer.dtype
    else:
        shape, dtype = tuple(inp.param("shape") or ()), inp.param("dtype", "float32")
    stack = [keras.Input(shape=shape, dtype=dtype, name=inp.name)]
    for node in chain:
        try:
            layer = make_layer(node.class_name, node.params, node.name)
        except Exception as exc:
            message, param = explain_exception(exc, [])
            raise BuildError(f"'{node.name}': {message}", node.id, param) from exc
        layers[node.id] = layer
        stack.append(layer)
    try:
        return keras.Sequential(stack, name=name)
    except Exception as exc:
        message, _ = explain_exception(exc, [])
        raise BuildError(f"The model '{name}' cannot be built: {message}") from exc


def _port_tensors(
    graph: Graph, node_id: str, tensors: dict[tuple[str, int], Any]
) -> dict[str, list[Any]]:
    node = graph.node(node_id)
    by_port: dict[str, list[Any]] = {}
    for port in graph.input_ports(node_id):
        edges = graph.edges_into(node_id, port.name)
        if not edges:
            if port.required:
                raise BuildError(
                    f"'{node.name}' has no input on '{port.name}'; connect a layer to it.",
                    node_id,
                )
            continue
        values = []
        for e in edges:
            if (e.src, e.src_port) not in tensors:
                raise BuildError(
                    f"'{graph.node(e.src).name}' has no output {e.src_port} to feed "
                    f"'{node.name}'.",
                    node_id,
                )
            values.append(tensors[(e.src, e.src_port)])
        by_port[port.name] = values
    return by_port

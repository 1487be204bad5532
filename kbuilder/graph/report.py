"""The check of a whole model: every node's shapes and problems, and the model's own.

One validation for everything that turns a graph into something: ``kbuilder check``
shows it, and ``build``, ``codegen``, ``export`` and training refuse a graph it finds a
problem in, so a graph that passes the check also builds. Besides each node's result
from shape inference it checks what no single node shows: a model with no inputs or no
outputs, and saved weights whose shapes no longer fit their layers.
"""

from __future__ import annotations

from math import prod
from typing import Any

from kbuilder.graph.errors import GraphError
from kbuilder.graph.model import Graph
from kbuilder.graph.shapes import ShapeInference

NO_INPUTS = "The model has no inputs: add an Input node and connect it to the first layer."
NO_OUTPUTS = "The model has no outputs: add an Output node and connect the last layer to it."


def model_problems(graph: Graph) -> list[str]:
    """What keeps a graph from being a model at all (no inputs, no outputs)."""
    problems = []
    if not graph.input_nodes():
        problems.append(NO_INPUTS)
    if not graph.output_refs():
        problems.append(NO_OUTPUTS)
    return problems


def check_graph(graph: Graph, weights: dict[str, list[Any]] | None = None) -> dict[str, Any]:
    """Run shape inference on ``graph`` and report every node, in topological order.

    Args:
        graph: the graph.
        weights: node id -> saved weight arrays (a project's), checked against the
            shapes of the layers they belong to.

    Returns:
        A JSON-safe dict ``{"ok", "nodes", "total_params", "total_trainable_params",
        "total_flops", "errors"}``; ``errors`` lists ``{"node_id", "node", "message"}``,
        with ``node_id`` and ``node`` ``None`` for a problem of the model as a whole.
    """
    inference = ShapeInference(graph)
    try:
        inference.update()
        order = graph.topological_order()
        weight_errors = _weight_problems(graph, inference, weights or {})
    except GraphError as exc:  # e.g. a cycle: no per-node results to show
        node = graph.node(exc.node_id).name if exc.node_id in graph else None
        return {
            "ok": False, "nodes": [], "total_params": 0, "total_trainable_params": 0,
            "total_flops": 0,
            "errors": [{"node_id": exc.node_id, "node": node, "message": str(exc)}],
        }
    finally:
        inference.close()
    errors: list[dict[str, Any]] = [
        {"node_id": None, "node": None, "message": m} for m in model_problems(graph)
    ]
    nodes = []
    for node_id in order:
        node, result = graph.node(node_id), inference.result(node_id)
        error = result.error or weight_errors.get(node_id)
        nodes.append({
            "id": node_id,
            "name": node.name,
            "type": node.label,
            "outputs": [{"shape": list(t.shape), "dtype": str(t.dtype)} for t in result.outputs],
            "params": int(result.params),
            "trainable_params": int(result.trainable_params),
            "flops": None if result.flops is None else int(result.flops),
            "error": error,
            "blocked": result.blocked,
        })
        if error:
            errors.append({"node_id": node_id, "node": node.name, "message": error})
    flops = [n["flops"] for n in nodes if n["flops"] is not None]
    return {
        "ok": not errors,
        "nodes": nodes,
        "total_params": int(inference.total_params()),
        "total_trainable_params": sum(n["trainable_params"] for n in nodes),
        "total_flops": sum(flops),
        "errors": errors,
    }


def _weight_problems(
    graph: Graph, inference: ShapeInference, weights: dict[str, list[Any]]
) -> dict[str, str]:
    """Top-level node id -> why its (or an inner node's) saved weights do not fit."""
    problems: dict[str, str] = {}
    stack: list[tuple[Graph, ShapeInference | None, str | None]] = [(graph, inference, None)]
    while stack:
        sub, inf, top = stack.pop()
        for node in sub.nodes:
            where = top or node.id
            if node.kind == "block" and node.subgraph is not None:
                child = inf.block_inference(node.id) if inf is not None else None
                stack.append((node.subgraph, child, where))
                continue
            saved = weights.get(node.id)
            needed = inf.weight_shapes(node.id) if inf is not None else None
            if saved is None or needed is None or where in problems:
                continue
            message = _weights_message(node.name, [tuple(w.shape) for w in saved], needed)
            if message:
                problems[where] = message
    return problems


def _weights_message(
    name: str, saved: list[tuple[int, ...]], needed: list[tuple[int, ...]]
) -> str | None:
    fix = ("its parameters changed since they were saved. Set them back, or train the "
           "model again for new weights.")
    if len(saved) != len(needed):
        return (f"'{name}': the project holds {len(saved)} weight arrays for this layer, "
                f"which has {len(needed)}; {fix}")
    for i, (have, want) in enumerate(zip(saved, needed, strict=True)):
        if have != want:
            return (f"'{name}': saved weight {i + 1} has shape {have}, but the layer needs "
                    f"{want} ({prod(want):,} values); {fix}")
    return None

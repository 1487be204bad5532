"""``ShapeInference``: every node's outputs, incrementally, by calling Keras layers on
symbolic tensors; and the layer order and construction that model building shares."""

from __future__ import annotations

from math import prod
from typing import Any

from kbuilder.graph import layer_memo
from kbuilder.graph.backbones import is_backbone_class
from kbuilder.graph.events import EventGroup
from kbuilder.graph.flops import estimate_flops
from kbuilder.graph.model import Graph, Node, stable_topological_order
from kbuilder.graph.shapes.messages import explain_exception, explain_shape_error
from kbuilder.graph.shapes.sizes import SizeError, check_output_sizes, explain_size, symbolic_call
from kbuilder.graph.shapes.specs import NodeResult, TensorSpec

_EMPTY = NodeResult()


class ShapeInference:
    """Keeps a ``NodeResult`` for every node of ``graph``, up to date after each edit.

    Args:
        graph: the graph to follow. Its events are observed until ``close()``.
        input_specs: for a block's subgraph, the spec feeding each inner input node (by
            id); the parent's inference sets them.

    Events: ``updated(changed_ids: set[str])`` after an ``update()`` that changed results.
    """

    def __init__(self, graph: Graph, input_specs: dict[str, TensorSpec] | None = None):
        self.graph = graph
        self.input_specs: dict[str, TensorSpec] | None = input_specs
        self.events = EventGroup("updated")
        self._results: dict[str, NodeResult] = {}
        self._dirty: set[str] = set(graph.node_ids)
        self._layers: dict[str, Any] = {}  # owner node id -> built Keras layer
        self._weight_shapes: dict[str, tuple[tuple[int, ...], ...]] = {}  # by owner id
        self._sharers_of: dict[str, list[str]] = {}  # owner id -> sharing ids, per update
        self._blocks: dict[str, ShapeInference] = {}
        self._order: list[str] | None = None
        self._edge_dst = {e.id: e.dst for e in graph.edges}
        self.recomputed: list[str] = []  # node ids recomputed by the last update()
        ev = graph.events
        self._handlers = [
            (ev.node_added, self._on_node_added),
            (ev.node_removed, self._on_node_removed),
            (ev.edge_added, self._on_edge_added),
            (ev.edge_removed, self._on_edge_removed),
            (ev.node_changed, self._on_node_changed),
        ]
        for signal, handler in self._handlers:
            signal.connect(handler)

    def close(self) -> None:
        """Stop observing the graph."""
        for signal, handler in self._handlers:
            signal.disconnect(handler)
        for child in self._blocks.values():
            child.close()
        self._blocks.clear()

    # ------------------------------------------------------------------ results
    def result(self, node_id: str) -> NodeResult:
        """The last computed result of ``node_id`` (call ``update()`` first)."""
        return self._results.get(node_id, _EMPTY)

    def results(self) -> dict[str, NodeResult]:
        return dict(self._results)

    def errors(self) -> list[tuple[str, str]]:
        """``(node id, message)`` for every node with a problem of its own."""
        return [(nid, r.error) for nid, r in self._results.items() if r.error]

    def block_inference(self, block_id: str) -> ShapeInference | None:
        """The inference of a block's subgraph (to show or check inner nodes)."""
        return self._blocks.get(block_id)

    def weight_shapes(self, node_id: str) -> list[tuple[int, ...]] | None:
        """Shapes of the weights of the layer node ``node_id`` owns, in Keras order.

        ``None`` for a node that owns no layer, or whose layer could not be built.
        """
        node = self.graph.node(node_id)
        shapes = self._weight_shapes.get(node_id)
        if node.kind != "layer" or node.shared_with or shapes is None:
            return None
        return list(shapes)

    def total_params(self) -> int:
        return sum(r.params for r in self._results.values())

    def total_trainable_params(self) -> int:
        return sum(r.trainable_params for r in self._results.values())

    def total_flops(self) -> int:
        return sum(r.flops or 0 for r in self._results.values())

    # ----------------------------------------------------------------- dirtying
    def _on_node_added(self, node_id: str) -> None:
        self._order = None
        self._dirty.add(node_id)
        self._dirty_owner_of(node_id)

    def _dirty_owner_of(self, node_id: str) -> None:
        # A remembered layer has no Keras layer built; once it is called again it must be
        # built for real, so that each call is checked against the weights it made.
        owner = self.graph.node(node_id).shared_with
        if owner and owner in self.graph:
            self._dirty.add(owner)

    def _on_node_removed(self, node_id: str) -> None:
        self._order = None
        self._dirty.discard(node_id)
        self._results.pop(node_id, None)
        self._forget_layer(node_id)
        child = self._blocks.pop(node_id, None)
        if child is not None:
            child.close()

    def _on_edge_added(self, edge_id: str) -> None:
        self._order = None
        dst = self.graph.edge(edge_id).dst
        self._edge_dst[edge_id] = dst
        self._dirty.add(dst)

    def _on_edge_removed(self, edge_id: str) -> None:
        self._order = None
        dst = self._edge_dst.pop(edge_id, None)
        if dst is not None and dst in self.graph:
            self._dirty.add(dst)

    def _on_node_changed(self, node_id: str, what: str) -> None:
        if what == "shared_with":
            self._order = None
            self._dirty_owner_of(node_id)
        self._dirty.add(node_id)
        self._forget_layer(node_id)
        for sharer in self.graph.sharers(node_id):
            self._dirty.add(sharer.id)

    def set_input_specs(self, specs: dict[str, TensorSpec]) -> None:
        """Change what feeds the inner input nodes (for a block's subgraph)."""
        old = self.input_specs or {}
        self.input_specs = specs
        for nid in set(old) | set(specs):
            if old.get(nid) != specs.get(nid) and nid in self.graph:
                self._dirty.add(nid)

    # ------------------------------------------------------------------- update
    def update(self) -> set[str]:
        """Recompute what edits made dirty; returns the ids whose result changed."""
        self.recomputed = []
        if not self._dirty:
            return set()
        changed: set[str] = set()
        self._sharers_of = {}
        for n in self.graph.nodes:
            if n.shared_with:
                self._sharers_of.setdefault(n.shared_with, []).append(n.id)
        for nid in self._topological_order():
            if nid not in self._dirty:
                continue
            self._dirty.discard(nid)
            old = self._results.get(nid)
            node = self.graph.node(nid)
            if node.kind == "layer" and not node.shared_with:
                self._forget_layer(nid)  # rebuilt for the new inputs/params
            new = self._compute(node)
            self.recomputed.append(nid)
            self._results[nid] = new
            if new != old:
                changed.add(nid)
            if old is None or new.outputs != old.outputs or new.ok != old.ok:
                self._dirty.update(self.graph.successors(nid))
                self._dirty.update(self._sharers_of.get(nid, ()))
        self._dirty.clear()
        if changed:
            self.events.updated.emit(changed)
        return changed

    def _forget_layer(self, node_id: str) -> None:
        self._layers.pop(node_id, None)
        self._weight_shapes.pop(node_id, None)

    def _topological_order(self) -> list[str]:
        if self._order is None:
            self._order = order_with_sharing(self.graph)
        return self._order

    # ------------------------------------------------------------------ compute
    def _port_inputs(self, node: Node) -> tuple[dict[str, list[TensorSpec]], str | None, str | None]:
        """Specs feeding each port; or a missing-input error; or a blocked message."""
        by_port: dict[str, list[TensorSpec]] = {}
        for port in self.graph.input_ports(node.id):
            edges = self.graph.edges_into(node.id, port.name)
            if not edges:
                if port.required:
                    return {}, _missing_input_message(node, port.name), None
                continue
            if port.variadic and len(edges) < port.min_count:
                return {}, (
                    f"'{node.name}' needs at least {port.min_count} inputs on "
                    f"'{port.name}'; it has {len(edges)}. Connect more layers to it."
                ), None
            specs = []
            for e in edges:
                source = self.graph.node(e.src)
                result = self._results.get(e.src)
                if result is None or not result.ok:
                    return {}, None, f"Waiting for '{source.name}', which has a problem."
                if e.src_port >= len(result.outputs):
                    return {}, (
                        f"'{source.name}' has {len(result.outputs)} output(s); there is no "
                        f"output {e.src_port} to connect to '{node.name}'."
                    ), None
                specs.append(result.outputs[e.src_port])
            by_port[port.name] = specs
        return by_port, None, None

    def _compute(self, node: Node) -> NodeResult:
        if node.kind == "input":
            return self._compute_input(node)
        if node.kind == "output":
            edges = self.graph.edges_into(node.id)
            if not edges:
                return NodeResult(error=f"Output '{node.name}' is not connected; connect the "
                                  "layer whose result the model should return.")
            by_port, error, blocked = self._port_inputs(node)
            if error or blocked:
                return NodeResult(error=error, blocked=blocked)
            specs = tuple(by_port.get("inputs", []))
            return NodeResult(inputs=specs)
        by_port, error, blocked = self._port_inputs(node)
        flat = tuple(s for specs in by_port.values() for s in specs)
        if error or blocked:
            return NodeResult(error=error, blocked=blocked, inputs=flat)
        if node.kind == "block":
            return self._compute_block(node, by_port, flat)
        return self._compute_layer(node, by_port, flat)

    def _compute_input(self, node: Node) -> NodeResult:
        if self.input_specs is not None:
            spec = self.input_specs.get(node.id)
            if spec is None:
                return NodeResult(blocked=f"Block input '{node.name}' is not connected outside "
                                  "the block.")
            return NodeResult(outputs=(spec,))
        shape = node.param("shape")
        dtype = node.param("dtype", "float32")
        if not isinstance(shape, list) or not all(
            d is None or (isinstance(d, int) and d > 0) for d in shape
        ):
            return NodeResult(
                error=f"Input '{node.name}' needs a shape: a list of positive sizes such as "
                "[28, 28, 1] (the batch size is not included).",
                error_param="shape",
            )
        specs = (TensorSpec((None, *shape), str(dtype)),)
        try:
            check_output_sizes(specs)
        except SizeError as exc:
            message, _ = explain_size(exc, {})
            return NodeResult(
                error=f"Input '{node.name}': {message.replace(' Use smaller settings.', '')} "
                "Give it a smaller shape.",
                error_param="shape",
            )
        return NodeResult(outputs=specs)

    def _compute_layer(
        self, node: Node, by_port: dict[str, list[TensorSpec]], flat: tuple[TensorSpec, ...]
    ) -> NodeResult:
        import keras

        from kbuilder.graph import catalog

        owner = self.graph.layer_owner(node.id)
        if is_backbone_class(owner.class_name):
            return _backbone_result(node, owner, flat)
        spec = catalog.get(owner.class_name or "")
        config = owner.params
        # A layer called more than once is built for real: each call checks its inputs
        # against the weights the first call made.
        shared = bool(node.shared_with) or owner.id in self._sharers_of
        key = None if shared else layer_memo.call_key(
            catalog.keras_class(spec), config, node.call_options, by_port)
        known = layer_memo.recall(key)
        if known is not None:
            self._layers.pop(owner.id, None)
            self._weight_shapes[owner.id] = known.weight_shapes
            flops = estimate_flops(spec.class_name, config, [s.shape for s in flat],
                                   [s.shape for s in known.outputs])
            return NodeResult(known.outputs, known.params, known.trainable_params, flops,
                              inputs=flat)
        layer = self._layers.get(owner.id)
        if layer is None:
            try:
                layer = make_layer(spec.class_name, config, owner.name)
            except Exception as exc:  # Keras validates parameters in __init__
                message, param = explain_exception(exc, [p.name for p in spec.params])
                return NodeResult(error=f"'{node.name}': {message}", error_param=param,
                                  inputs=flat)
        tensors = {
            port: [keras.KerasTensor(s.shape, dtype=s.dtype) for s in specs]
            for port, specs in by_port.items()
        }
        args, kwargs = catalog.call_arguments(spec, tensors)
        kwargs.update(node.call_options)
        try:
            outputs = symbolic_call(layer, args, kwargs)
            specs = tuple(
                TensorSpec(tuple(t.shape), str(t.dtype)) for t in keras.tree.flatten(outputs)
            )
            check_output_sizes(specs)
        except SizeError as exc:
            message, param = explain_size(exc, config)
            return NodeResult(error=f"'{node.name}': {message}", error_param=param, inputs=flat)
        except Exception as exc:
            explained = explain_shape_error(exc, spec.class_name, flat)
            message, param = explained or explain_exception(exc, [p.name for p in spec.params])
            return NodeResult(error=f"'{node.name}': {message}", error_param=param, inputs=flat)
        self._layers[owner.id] = layer
        weight_shapes = tuple(tuple(int(d) for d in w.shape) for w in layer.weights)
        self._weight_shapes[owner.id] = weight_shapes
        params = trainable = 0
        if not node.shared_with:  # a shared use adds no weights of its own
            params = int(sum(prod(w.shape) for w in layer.weights))
            trainable = int(sum(prod(w.shape) for w in layer.trainable_weights))
            layer_memo.remember(key, layer_memo.LayerCall(specs, params, trainable,
                                                          weight_shapes))
        flops = estimate_flops(
            spec.class_name, config, [s.shape for s in flat], [s.shape for s in specs]
        )
        return NodeResult(specs, int(params), int(trainable), flops, inputs=flat)

    def _compute_block(
        self, node: Node, by_port: dict[str, list[TensorSpec]], flat: tuple[TensorSpec, ...]
    ) -> NodeResult:
        assert node.subgraph is not None
        specs = {port: values[0] for port, values in by_port.items()}
        child = self._blocks.get(node.id)
        if child is None or child.graph is not node.subgraph:
            if child is not None:
                child.close()
            child = ShapeInference(node.subgraph, specs)
            self._blocks[node.id] = child
        else:
            child.set_input_specs(specs)
        child.update()
        for nid, message in child.errors():
            inner = node.subgraph.node(nid)
            return NodeResult(
                error=f"Inside block '{node.name}', layer '{inner.name}': {message}",
                inputs=flat,
            )
        outputs = []
        for src, port in node.subgraph.output_refs():
            result = child.result(src)
            if not result.ok or port >= len(result.outputs):
                return NodeResult(
                    error=f"Block '{node.name}' has an output that is not computed.",
                    inputs=flat,
                )
            outputs.append(result.outputs[port])
        if not outputs:
            return NodeResult(error=f"Block '{node.name}' has no outputs.", inputs=flat)
        flops = [r.flops for r in child.results().values() if r.flops]
        frozen = node.param("trainable", True) is False  # model.trainable = False
        return NodeResult(
            tuple(outputs),
            child.total_params(),
            0 if frozen else child.total_trainable_params(),
            sum(flops) if flops else None,
            inputs=flat,
        )


def _missing_input_message(node: Node, port: str) -> str:
    if port == "inputs":
        return f"'{node.name}' has no input. Connect the output of a layer or Input to it."
    return f"'{node.name}' needs an input on '{port}'. Connect a layer's output to it."


def _backbone_result(node: Node, owner: Node, flat: tuple[TensorSpec, ...]) -> NodeResult:
    """A pretrained network's result from its family's table: building it, even
    symbolically, takes 1-10 s (measured), too slow for an edit."""
    from kbuilder.graph.backbones import input_problem, of_class, output_shape, weights_problem

    family = of_class(owner.class_name or "")
    weights = owner.param("weights", "imagenet")
    if len(flat) != 1:
        return NodeResult(error=f"'{node.name}' takes one input, a batch of images.",
                          inputs=flat)
    shape = flat[0].shape[1:]
    problem = weights_problem(weights)
    if problem:
        return NodeResult(error=f"'{node.name}': {problem}", error_param="weights", inputs=flat)
    problem = input_problem(family, shape, weights)
    if problem:
        return NodeResult(error=f"'{node.name}': {problem}", inputs=flat)
    pooling = owner.param("pooling", "avg")
    out = (TensorSpec(output_shape(family, shape, pooling), "float32"),)
    params = trainable = 0
    if not node.shared_with:
        params = family.notop_params
        trainable = family.notop_trainable if owner.param("trainable", True) else 0
    return NodeResult(out, params, trainable, None, inputs=flat)


def order_with_sharing(graph: Graph) -> list[str]:
    """Topological order in which a shared layer's owner comes before the nodes sharing it.

    The owner goes first where data flow allows, so its input shapes build the layer (as
    the first call does in Keras). A graph with a cycle gives node order; the cycle is then
    reported on the nodes.
    """
    try:
        base = graph.topological_order()
    except Exception:
        return graph.node_ids
    extra = [(n.shared_with, n.id) for n in graph.nodes if n.shared_with in graph]
    if not extra:
        return base
    succ: dict[str, list[str]] = {nid: list(graph.successors(nid)) for nid in base}
    for owner, sharer in extra:
        succ[owner].append(sharer)  # type: ignore[index]
    order = stable_topological_order(base, succ)
    return order if len(order) == len(base) else base


def make_layer(class_name: str, params: dict[str, Any], name: str) -> Any:
    """A Keras layer of ``class_name`` from kbuilder parameters (a ``get_config()`` subset)."""
    from kbuilder.graph import catalog

    spec = catalog.get(class_name)
    # Some layers' from_config (e.g. Rescaling) needs every key; unset ones take defaults.
    defaults = {p.name: p.default for p in spec.params if not p.required}
    config = catalog.keras_config(spec, {**defaults, **params})
    return catalog.keras_class(spec).from_config({**config, "name": name})

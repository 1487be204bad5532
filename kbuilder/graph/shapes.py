"""Shape inference: every node's output shapes, dtypes, parameter count and FLOPs.

Keras itself does the work: each layer is instantiated from its parameters and called on
symbolic ``keras.KerasTensor`` inputs inside a ``keras.StatelessScope``, so weights are
declared but never allocated, and the shapes agree with what ``keras.Model`` will build.

Updates are incremental. Graph events mark nodes dirty; ``update()`` recomputes dirty nodes
in topological order and passes the change on to a node's successors only when its outputs
actually changed (an "early cut-off": changing ``activation`` touches one node, changing
``units`` touches that node and the next).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from math import prod
from typing import Any

from kbuilder.graph import layer_memo
from kbuilder.graph.backbones import is_backbone_class
from kbuilder.graph.events import EventGroup
from kbuilder.graph.flops import estimate_flops
from kbuilder.graph.model import Graph, Node, stable_topological_order


@dataclass(frozen=True)
class TensorSpec:
    """Shape (batch dimension first, ``None`` for unknown sizes) and dtype of a tensor."""

    shape: tuple[int | None, ...]
    dtype: str

    def __str__(self) -> str:
        dims = ", ".join("None" if d is None else str(d) for d in self.shape)
        return f"({dims}{',' if len(self.shape) == 1 else ''})"

    def to_dict(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "dtype": self.dtype}


@dataclass(frozen=True)
class NodeResult:
    """What inference found for one node.

    ``error`` is a problem *of this node* (bad parameters, incompatible inputs, missing
    connection). ``blocked`` says the node could not be computed because an input node
    has a problem; it is not counted as an error of its own.
    """

    outputs: tuple[TensorSpec, ...] = ()
    params: int = 0
    trainable_params: int = 0
    flops: int | None = None
    error: str | None = None
    error_param: str | None = None
    blocked: str | None = None
    # Compared too: an output node shows what flows into it, so new inputs are a change
    # ``update()`` reports (successors are still dirtied only when outputs change).
    inputs: tuple[TensorSpec, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.error is None and self.blocked is None


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


# Sizes no real model reaches; anything above them is a typing slip (filters=1000000),
# refused before Keras allocates anything.
MAX_LAYER_PARAMS = 2**31  # 8 GiB of float32 weights in one layer
MAX_TENSOR_ELEMENTS = 2**28  # 1 GiB of float32 per sample in one tensor


class SizeError(ValueError):
    """A layer whose weights or output would be absurdly large; nothing was allocated.

    Args:
        what: ``"weights"`` or ``"output"``.
        shape: the shape concerned (the output's without the batch dimension).
        count: how many numbers it would hold (a layer's weights in total).
    """

    def __init__(self, what: str, shape: tuple[int | None, ...], count: int):
        super().__init__(f"{what} {shape} too large ({count:,} numbers)")
        self.what = what
        self.shape = shape
        self.count = count


class _DeclaredVariables(list):
    """Keras's list of uninitialized variables, counting them and refusing absurd sizes.

    Keras appends every variable created in a stateless scope to this list, with its
    shape known and nothing allocated; that is the last moment a size can be refused.
    """

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.count = 0

    def append(self, variable: Any) -> None:
        self.count += prod(variable.shape)
        if self.count > self.limit:
            raise SizeError("weights", tuple(variable.shape), self.count)
        super().append(variable)


@contextmanager
def declared_variables(limit: int = MAX_LAYER_PARAMS) -> Iterator[_DeclaredVariables]:
    """Create Keras variables inside the block with their shapes only, never their values.

    Yields the list of variables declared (``.count``: how many numbers they hold).

    Raises:
        SizeError: the variables declared would hold more than ``limit`` numbers.
    """
    import keras
    from keras.src.backend.common import global_state

    key = "uninitialized_variables"
    previous = global_state.get_global_attribute(key)
    declared = _DeclaredVariables(limit)
    global_state.set_global_attribute(key, declared)
    try:
        with keras.StatelessScope(initialize_variables=False):
            yield declared
    finally:
        # The variables stay uninitialized: nothing here reads their values, and another
        # scope's exit must not initialize them either.
        global_state.set_global_attribute(key, previous)


def symbolic_call(layer: Any, args: list, kwargs: dict) -> Any:
    """Call ``layer`` on KerasTensors without allocating its weights.

    The weights are declared (their shapes count the parameters) but never initialized:
    Keras would otherwise fill them with random values when the scope ends.

    Raises:
        SizeError: the layer's weights would be absurdly large.
    """
    try:
        with declared_variables():
            return layer(*args, **kwargs)
    except ValueError as exc:
        # A few layers create variables from concrete values (e.g. a given vocabulary),
        # which a stateless scope refuses; those are small, so build them for real.
        if isinstance(exc, SizeError) or "stateless scope" not in str(exc):
            raise
        return layer(*args, **kwargs)


def check_output_sizes(specs: tuple[TensorSpec, ...]) -> None:
    """Refuse an output whose one sample would hold an absurd number of values.

    Raises:
        SizeError: names the first such output.
    """
    for spec in specs:
        count = prod(d or 1 for d in spec.shape[1:])
        if count > MAX_TENSOR_ELEMENTS:
            raise SizeError("output", spec.shape[1:], count)


def explain_size(exc: SizeError, params: dict[str, Any]) -> tuple[str, str | None]:
    """The sentence for a ``SizeError``, and the parameter most likely to blame.

    The parameter is the largest whole-number setting that appears in the shape
    (``filters=1000000`` in a kernel of shape ``(3, 3, 3, 1000000)``).
    """
    dims = {d for d in exc.shape if d}
    culprits = sorted(
        (value, name) for name, value in params.items()
        if isinstance(value, int) and not isinstance(value, bool) and value in dims
    )
    param = culprits[-1][1] if culprits else None
    hint = f" Lower `{param}`." if param else " Use smaller settings."
    gib = exc.count * 4 / 2**30
    if exc.what == "weights":
        limit = f"{MAX_LAYER_PARAMS:,}"
        return (
            f"its weights would hold at least {exc.count:,} numbers ({gib:,.0f} GiB; a weight of "
            f"shape {exc.shape}), far more than any real layer (at most {limit}).{hint}",
            param,
        )
    shape = TensorSpec((None, *exc.shape), "float32")
    return (
        f"its output {shape} would hold {exc.count:,} numbers per sample ({gib:,.1f} GiB), "
        f"far more than any real model (at most {MAX_TENSOR_ELEMENTS:,}).{hint}",
        param,
    )


# What tensors of each rank (batch dimension included) hold, for messages.
_RANK_WORDS = {
    1: "single numbers",
    2: "vectors (features)",
    3: "sequences (steps, features)",
    4: "images (height, width, channels)",
    5: "volumes (depth, height, width, channels)",
}
_ELEMENTWISE = frozenset({"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"})


def _rank_words(rank: int) -> str:
    return _RANK_WORDS.get(rank, f"tensors of {rank - 1} dimensions")


def _wrong_rank(match: re.Match, class_name: str, inputs: tuple[TensorSpec, ...]):
    groups = match.groupdict()
    if groups.get("kernel") is not None:  # a convolution's kernel has input rank entries
        need, have, index = len(groups["kernel"].split(",")), len(groups["input"].split(",")), 0
    else:
        need, have, index = int(groups["need"]), int(groups["have"]), int(groups["index"] or 0)
    shape = inputs[index] if index < len(inputs) else None
    received = f"{_rank_words(have)} {shape}" if shape else _rank_words(have)
    gives = _rank_words(need).split(" (")[0]
    if have < need:
        fix = f"Insert a Reshape before it, or connect it to a layer or Input that gives {gives}."
    else:
        fix = (f"Insert a Reshape, Flatten or global pooling layer before it, or connect it "
               f"to a layer or Input that gives {gives}.")
    return f"{class_name} needs {_rank_words(need)}; it receives {received}. {fix}", None


def _too_small(match: re.Match, class_name: str, inputs: tuple[TensorSpec, ...]):
    param = "pool_size" if "pool_size" in match.string else "kernel_size"
    shape = inputs[0] if inputs else ""
    return (
        f"the input {shape} is too small for this layer's {param} and strides: its output "
        f"would have no positions left. Use padding='same', a smaller {param} or strides, "
        "or a larger input (a Resizing layer at the start of the model).",
        param,
    )


def _unequal_shapes(match: re.Match, class_name: str, inputs: tuple[TensorSpec, ...]):
    shapes = " and ".join(str(s) for s in inputs)
    if class_name == "Concatenate":
        return (
            f"Concatenate joins its inputs along one axis, so their other sizes must match; "
            f"it receives {shapes}. Reshape or Flatten the inputs so they agree, or change "
            "`axis`.",
            "axis",
        )
    return (
        f"{class_name} combines its inputs value by value, so their shapes must match; it "
        f"receives {shapes}. Make the layers feeding it produce the same shape (e.g. Dense "
        "layers with the same units).",
        None,
    )


def _reshape_size(match: re.Match, class_name: str, inputs: tuple[TensorSpec, ...]):
    shape = inputs[0] if inputs else None
    values = prod(d for d in shape.shape[1:] if d) if shape else None
    count = f" ({values:,} values per sample)" if values else ""
    return (
        f"Reshape cannot turn {shape}{count} into {match['target']}: the sizes of "
        "target_shape must multiply to the same number of values. Change target_shape "
        "(-1 lets Keras compute one size).",
        "target_shape",
    )


# Keras's raw shape errors, as a sentence with a fix: (pattern, explain(match, class name,
# input specs) -> (message, parameter)). The first matching pattern wins.
_SHAPE_ERRORS: list[tuple[re.Pattern, Any]] = [
    (re.compile(r"Input (?P<index>\d+)?.*?incompatible with the layer: expected "
                r"(?P<min>min_)?ndim=(?P<need>\d+), found ndim=(?P<have>\d+)", re.S),
     _wrong_rank),
    (re.compile(r"Kernel shape must have the same length as input, but received kernel of "
                r"shape \((?P<kernel>[^)]*)\) and input of shape \((?P<input>[^)]*)\)"),
     _wrong_rank),
    (re.compile(r"Computed output size would be zero or negative"), _too_small),
    (re.compile(r"Inputs have incompatible shapes|requires inputs with matching shapes"),
     _unequal_shapes),
    (re.compile(r"total size of the tensor must be unchanged.*?target_shape=(?P<target>\([^)]*\))",
                re.S), _reshape_size),
]


def explain_shape_error(
    exc: BaseException, class_name: str, inputs: tuple[TensorSpec, ...]
) -> tuple[str, str | None] | None:
    """A common Keras shape error as a sentence saying what to change, else ``None``."""
    text = str(exc)
    for pattern, explain in _SHAPE_ERRORS:
        match = pattern.search(text)
        if match is not None:
            return explain(match, class_name, inputs)
    return None


def _missing_input_message(node: Node, port: str) -> str:
    if port == "inputs":
        return f"'{node.name}' has no input. Connect the output of a layer or Input to it."
    return f"'{node.name}' needs an input on '{port}'. Connect a layer's output to it."


_NOISE = (
    re.compile(r"Exception encountered when calling .*", re.S),
    re.compile(r"Arguments received by .*", re.S),
)


def explain_exception(exc: BaseException, param_names: list[str]) -> tuple[str, str | None]:
    """A one-paragraph message from a Keras error, and the parameter it names, if any."""
    text = str(exc).strip() or type(exc).__name__
    for pattern in _NOISE:
        stripped = pattern.sub("", text).strip()
        if stripped:
            text = stripped
    text = re.sub(r"\s+", " ", text)
    if len(text) > 400:
        text = text[:397] + "..."
    param = None
    for candidate in re.findall(r"`(\w+)`|'(\w+)'|(\w+)=", str(exc)):
        for name in candidate:
            if name in param_names:
                param = name
                break
        if param:
            break
    return text, param

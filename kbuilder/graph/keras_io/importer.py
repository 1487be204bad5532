"""Keras model -> kbuilder graph, with its weights.

Two entry points:

``import_model(model)``
    A built Functional or Sequential ``keras.Model`` in memory -> ``(Graph, weights)``.
``import_file(path, trust=False)``
    A ``.keras`` or legacy ``.h5`` file -> ``Project``. The file's configuration is read
    and checked *before* Keras deserializes anything: a Lambda layer (or another object
    that carries Python code) is refused unless ``trust=True``, and a class that is neither
    built into Keras nor registered with it is refused in any case. Only then is the model
    loaded, with Keras's safe mode on unless the user trusts the file.

How a Keras model maps onto the graph:

- Every call of a layer is one layer node. The first call owns the layer: its params are
  the layer's ``get_config()`` without ``name`` (the node's name is the layer's name),
  with initializers, regularizers and constraints that have their default settings
  written by their short names (``"glorot_uniform"``) and dtype policies by their names
  (``"float32"``). Later calls are nodes that share it (``shared_with``).
- The tensors of a call go to the catalog's ports, the inverse of
  ``catalog.call_arguments``: a merge layer's list goes to its variadic ``inputs`` port;
  ``MultiHeadAttention(query, value, key=k)`` to ``query``, ``value`` and ``key``;
  ``Attention([q, v])`` to ``query`` and ``value``; an RNN's ``initial_state`` list to
  ``initial_state``. Non-tensor arguments that differ from the call's defaults
  (``use_causal_mask=True``, ``return_attention_scores=True``, ``training=True``)
  become the node's ``call_options``.
- Masks need no edges: Keras attaches the mask of ``Embedding(mask_zero=True)`` or
  ``Masking`` to the tensor and hands it to the next layers by itself, in the original
  model as in the rebuilt one. The operations Keras records to compute such masks are
  left out.
- A Functional or Sequential model used as a layer becomes a block whose subgraph has
  the nested model's inputs and outputs; the block's input ports are the inner input
  node ids. A nested model that is called more than once, or that shares a layer with
  the model around it, cannot be one block (blocks are not shared), so its layers are
  unpacked into the surrounding graph, sharing their weights as in Keras. A ``training``
  argument given to a nested model's call is not kept: Keras's ``fit``, ``evaluate`` and
  ``predict`` replace it anyway.
- A ``keras.ops`` call applied to tensors between layers (``x + 3.0``, ``inputs + x``) that
  Keras recorded in the Functional graph becomes an operation node (``ops.add``..., see
  ``kbuilder.graph.catalog.ops``) when it is one of the allowed element-wise functions; the layers
  that ``keras.applications`` models define for themselves (``LayerScale``,
  ``CustomScaleLayer``, see ``kbuilder.graph.catalog.app_layers``) are layers like any other.
- Layers that cannot be graph nodes (custom classes, ``Lambda``, other ``keras.ops``
  calls) make the import fail with ``ModelImportError``, which names every such layer,
  its class and why. Nothing is half-imported.
- Positions come from ``layout.apply_layout``.

Not kept: a batch size fixed by ``Input(batch_size=...)``, the dict structure of inputs
or outputs given as dicts (they become ordered lists), and compile settings (kbuilder
has its own training settings).

A ``Lambda`` layer is never imported, not even with ``trust=True``: its code could not be
shown, edited or saved in a project (a project file never carries code). Trusting the
file lets Keras load it, so the message can name every layer that stands in the way.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kbuilder.graph.keras_io.calls import (
    EXPLICIT_MASK,
    Call,
    functional_of,
    is_automatic_mask,
    is_tensor,
    parse_layer_call,
    parse_operation_call,
    style_of,
    unsupported_problem,
)
from kbuilder.graph.keras_io.params import learned_settings, plain, tidy_params
from kbuilder.graph.keras_io.problems import ModelImportError, Problem, problems_error, quoted
from kbuilder.graph.keras_io.reading import open_model_file
from kbuilder.graph.model import DEFAULT_PORT, Graph, new_id, to_snake_case
from kbuilder.graph.text import plural
from kbuilder.graph.tf_probe import no_tensorflow_probe

if TYPE_CHECKING:
    from kbuilder.graph.catalog import LayerSpec
    from kbuilder.graph.project import Project


# Keras's automatic model names; a file's name says more than these.
_GENERIC_MODEL_NAME = re.compile(r"^(functional|sequential|model)(_\d+)?$")


# ======================================================================== in memory
def import_model(
    model: Any, name: str | None = None
) -> tuple[Graph, dict[str, list[np.ndarray]]]:
    """A kbuilder graph and its weights from a built Functional or Sequential model.

    Args:
        model: a ``keras.Model`` made with the Functional API, or a built
            ``keras.Sequential`` (one that knows its input shape).
        name: the graph's name; defaults to the model's name.

    Returns:
        ``(graph, weights)``: the laid-out graph, and for every layer node that owns a
        layer with weights, copies of its weights in ``get_weights()`` order.

    Raises:
        ModelImportError: the model is not a built Functional/Sequential model, or some
            of its layers cannot be graph nodes; the message names every such layer.
    """
    from kbuilder.graph.layout import apply_layout

    functional = functional_of(model, top_level=True)
    with no_tensorflow_probe():
        importer = _Importer(functional)
        data, _ = importer.graph_data(functional, name or model.name, top_level=True)
    data.update(style_of(model))
    if importer.problems:
        raise problems_error(importer.problems)
    graph = Graph.from_dict(data)
    apply_layout(graph)
    return graph, importer.weights


@dataclass
class _Target:
    """A graph being written: its node and edge records and the names they use."""

    name: str
    own_ops: set[int] = field(default_factory=set)  # ids of the model's own operations
    nodes: list[dict[str, Any]] = field(default_factory=list)
    edges: list[dict[str, Any]] = field(default_factory=list)
    taken: set[str] = field(default_factory=set)

    def fresh_name(self, base: str) -> str:
        name, i = base, 1
        while name in self.taken:
            name, i = f"{base}_{i}", i + 1
        self.taken.add(name)
        return name

    def name_of(self, op: Any) -> str:
        """The model's own layers keep their names; unpacked ones get a free name."""
        name = _valid_name(op)
        if id(op) in self.own_ops and name is not None:
            return name
        return self.fresh_name(name or to_snake_case(type(op).__name__) or "layer")

    def connect(self, src: tuple[str, int], dst: str, port: str) -> None:
        self.edges.append(
            {"id": new_id(), "src": src[0], "src_port": src[1], "dst": dst, "dst_port": port}
        )

    def data(self) -> dict[str, Any]:
        return {"name": self.name, "nodes": self.nodes, "edges": self.edges}


# (node id, output index) of the node that produces a tensor.
_Ref = tuple[str, int]
# Where a tensor comes from when its producer could not be imported (import then fails).
_MISSING: _Ref = ("", 0)


class _Importer:
    """Writes a Functional model (and the models nested in it) as graph records."""

    def __init__(self, root: Any):
        self.problems: list[Problem] = []
        self.weights: dict[str, list[np.ndarray]] = {}
        # id(layer) -> (the target holding the owner node, owner node id)
        self._owners: dict[int, tuple[_Target, str]] = {}
        # Identical configurations (common in large models) are validated once.
        self._checked: dict[tuple[str, str], dict[str, str]] = {}
        self._unpack = _models_to_unpack(root)

    # ------------------------------------------------------------------- graphs
    def graph_data(
        self, fn: Any, name: str, top_level: bool
    ) -> tuple[dict[str, Any], list[str]]:
        """``Graph.to_dict()`` data for a model, and the ids of its input nodes.

        Inside a block the inputs have no shape: it comes from what feeds the block.
        """
        target = _Target(name)
        for op in fn.operations:
            target.own_ops.add(id(op))
            valid = _valid_name(op)
            if valid is not None:
                target.taken.add(valid)
        refs: dict[int, _Ref] = {}
        input_ids = []
        for tensor in fn.inputs:
            node_id = self._input_node(tensor, target, top_level)
            refs[id(tensor)] = (node_id, 0)
            input_ids.append(node_id)
        outputs = self._emit(fn, target, refs)
        for tensor, ref in zip(fn.outputs, outputs, strict=True):
            producer = tensor._keras_history.operation
            base = "output" if len(outputs) == 1 else f"{_valid_name(producer) or 'model'}_output"
            node_id = new_id()
            target.nodes.append({"id": node_id, "kind": "output", "name": target.fresh_name(base)})
            target.connect(ref, node_id, DEFAULT_PORT)
        return target.data(), input_ids

    def _input_node(self, tensor: Any, target: _Target, top_level: bool) -> str:
        from kbuilder.graph.commands import validate_input_param

        layer = tensor._keras_history.operation
        params: dict[str, Any] = {}
        if top_level:
            params = {"shape": list(tensor.shape[1:]), "dtype": str(tensor.dtype)}
            if getattr(tensor, "sparse", False):
                params["sparse"] = True
            for key, value in params.items():
                message = validate_input_param(key, value)
                if message:
                    self.problems.append(Problem(layer.name, "Input", (
                        f"Input {quoted(layer.name)} cannot be a kbuilder input: {message}"
                    )))
        node_id = new_id()
        target.nodes.append({
            "id": node_id, "kind": "input", "name": target.name_of(layer), "params": params,
        })
        return node_id

    def _emit(self, fn: Any, target: _Target, refs: dict[int, _Ref]) -> list[_Ref]:
        """Write the calls of ``fn`` that its outputs depend on into ``target``.

        Args:
            fn: a Functional model.
            target: the graph being written.
            refs: where the tensors already in ``target`` come from (at least ``fn``'s
                inputs), by ``id(tensor)``; extended in place.

        Returns:
            Where each of ``fn``'s outputs comes from.
        """
        for call in self._needed_calls(fn, refs):
            if call.problem is not None:
                self.problems.append(call.problem)
            elif call.kind == "layer":
                self._emit_layer(call, target, refs)
            elif call.kind == "block":
                self._emit_block(call, target, refs)
            else:
                self._emit_unpacked(call, target, refs)
        return [refs.get(id(tensor), _MISSING) for tensor in fn.outputs]

    def _connect(
        self, refs: dict[int, _Ref], tensor: Any, target: _Target, dst: str, port: str
    ) -> None:
        src = refs.get(id(tensor), _MISSING)
        if src is not _MISSING:  # else its producer has a problem, already reported
            target.connect(src, dst, port)

    def _needed_calls(self, fn: Any, refs: dict[int, _Ref]) -> list[Call]:
        """The calls ``fn``'s outputs depend on, parsed, in Keras's execution order.

        Walking back from the outputs along the tensors each call really uses leaves out
        the operations Keras records to compute masks, which need no nodes.
        """
        from keras.src.ops.function import make_node_key

        parsed: dict[int, Call] = {}
        stack = list(fn.outputs)
        while stack:
            tensor = stack.pop()
            if id(tensor) in refs:
                continue
            op, index, _ = tensor._keras_history
            node = op._inbound_nodes[index]
            if id(node) in parsed:
                continue
            if make_node_key(op, index) in fn._nodes:
                call = self._parse_call(node)
            else:  # Keras would not have built such a model; say so rather than guess
                call = Call(node, "unsupported", problem=Problem(
                    op.name, type(op).__name__,
                    f"Layer {quoted(op.name)} feeds the model from outside its graph.",
                ))
            parsed[id(node)] = call
            stack.extend(call.sources)
        order = []
        for depth in sorted(fn._nodes_by_depth, reverse=True):
            for node in fn._nodes_by_depth[depth]:
                call = parsed.get(id(node))
                if call is not None:
                    order.append(call)
        return order

    # -------------------------------------------------------------------- calls
    def _parse_call(self, node: Any) -> Call:
        import keras
        from keras.src.layers import InputLayer

        from kbuilder.graph import catalog
        from kbuilder.graph.catalog.kbuilder_layers import is_kbuilder_class
        from kbuilder.graph.errors import UnknownLayerError

        op = node.operation
        if isinstance(op, InputLayer):
            return Call(node, "unsupported", problem=Problem(op.name, "InputLayer", (
                f"Input {quoted(op.name)} is used by the model but is not one of its inputs."
            )))
        inner = functional_of(op)
        if inner is not None:
            return self._parse_model_call(node, inner)
        if not isinstance(op, keras.layers.Layer):
            return parse_operation_call(node)
        try:
            spec = catalog.get(type(op).__name__)
        except UnknownLayerError:
            spec = None
        if spec is None or (catalog.keras_class(spec) is not type(op)
                            and not is_kbuilder_class(type(op))):
            return Call(node, "unsupported", problem=unsupported_problem(op))
        return parse_layer_call(node, spec)

    def _parse_model_call(self, node: Any, inner: Any) -> Call:
        import keras

        op = node.operation
        kind = "unpack" if id(op) in self._unpack else "block"

        def refuse(message: str) -> Call:
            return Call(node, kind, problem=Problem(op.name, type(op).__name__, message))

        args, kwargs = node.arguments.args, dict(node.arguments.kwargs)
        if len(args) != 1:
            return refuse(
                f"Nested model {quoted(op.name)} is called with {len(args)} positional "
                "arguments; kbuilder connects a nested model through its inputs only."
            )
        # fit/evaluate/predict replace training=True; training=False is kept (a frozen
        # nested model's BatchNormalization stays in inference mode: graph/freezing.py).
        training = kwargs.pop("training", None)
        inference_mode = training is False
        if not is_automatic_mask(kwargs.pop("mask", None), args[0]):
            return refuse(f"Nested model {quoted(op.name)} " + EXPLICIT_MASK.format(argument="mask"))
        if kwargs:
            return refuse(
                f"Nested model {quoted(op.name)} is called with the argument `{next(iter(kwargs))}`, "
                "which kbuilder cannot store."
            )
        tensors = keras.tree.flatten(args[0])
        if len(tensors) != len(inner.inputs) or not all(map(is_tensor, tensors)):
            return refuse(
                f"Nested model {quoted(op.name)} is called with "
                f"{plural(len(tensors), 'value')} for its {plural(len(inner.inputs), 'input')}."
            )
        if kind == "block":
            backbone_call = _backbone_call(node, inner, tensors, training)
            if backbone_call is not None:
                return backbone_call
        options = {"training": False} if inference_mode else {}
        if not op.trainable:
            options["trainable"] = False
        return Call(node, kind, ports={"inputs": tensors}, inner=inner, options=options)

    # ----------------------------------------------------------------- emitting
    def _emit_layer(self, call: Call, target: _Target, refs: dict[int, _Ref]) -> None:
        op, spec = call.node.operation, call.spec
        assert spec is not None
        node_id = new_id()
        record: dict[str, Any] = {"id": node_id, "kind": "layer", "class_name": spec.class_name}
        owner = self._owners.get(id(op))
        if owner is None:
            params = call.params if call.params is not None else self._params(op, spec)
            if params is None:
                return
            record["name"] = target.name_of(op)
            record["params"] = params
            self._owners[id(op)] = (target, node_id)
            if getattr(op, "weights", None):  # operations have none
                self.weights[node_id] = _weights_of(op)
        else:
            owner_target, owner_id = owner
            if owner_target is not target:  # prevented by _models_to_unpack
                self.problems.append(Problem(op.name, spec.class_name, (
                    f"Layer {quoted(op.name)} is used both inside and outside a nested model, "
                    "which kbuilder cannot represent."
                )))
                return
            record["name"] = target.fresh_name(f"{_valid_name(op) or 'layer'}_shared")
            record["shared_with"] = owner_id
        if call.options:
            record["call_options"] = call.options
        target.nodes.append(record)
        for port, tensors in call.ports.items():
            for tensor in tensors:
                self._connect(refs, tensor, target, node_id, port)
        for i, tensor in enumerate(call.node.outputs):
            refs[id(tensor)] = (node_id, i)

    def _emit_block(self, call: Call, target: _Target, refs: dict[int, _Ref]) -> None:
        op = call.node.operation
        name = target.name_of(op)
        sub, port_ids = self.graph_data(call.inner, name, top_level=False)
        sub.update(style_of(op))
        block_id = new_id()
        record: dict[str, Any] = {"id": block_id, "kind": "block", "name": name, "graph": sub}
        if call.options:  # trainable / training (graph/freezing.py BLOCK_OPTIONS)
            record["params"] = dict(call.options)
        target.nodes.append(record)
        for tensor, port_id in zip(call.ports["inputs"], port_ids, strict=True):
            self._connect(refs, tensor, target, block_id, port_id)
        for i, tensor in enumerate(call.node.outputs):
            refs[id(tensor)] = (block_id, i)

    def _emit_unpacked(self, call: Call, target: _Target, refs: dict[int, _Ref]) -> None:
        inner = call.inner
        inner_refs = {
            id(inner_input): refs.get(id(outer), _MISSING)
            for inner_input, outer in zip(inner.inputs, call.ports["inputs"], strict=True)
        }
        outputs = self._emit(inner, target, inner_refs)
        for tensor, ref in zip(call.node.outputs, outputs, strict=True):
            refs[id(tensor)] = ref

    # ------------------------------------------------------------------- params
    def _params(self, op: Any, spec: LayerSpec) -> dict[str, Any] | None:
        """The layer's configuration as validated node params; ``None`` after a problem."""
        from kbuilder.graph import catalog

        try:
            config = op.get_config()
            config.pop("name", None)
            config.update(learned_settings(op, spec, config))
            params = tidy_params(spec, {k: plain(v, op.name, k) for k, v in config.items()})
        except ModelImportError as exc:
            self.problems.append(Problem(op.name, spec.class_name, str(exc)))
            return None
        except Exception as exc:
            self.problems.append(Problem(op.name, spec.class_name, (
                f"Layer {quoted(op.name)} ({spec.class_name}) cannot describe its settings "
                f"({type(exc).__name__}: {exc})."
            )))
            return None
        key = (spec.class_name, json.dumps(params, sort_keys=True))
        errors = self._checked.get(key)
        if errors is None:
            errors = self._checked[key] = catalog.validate_params(spec, params)
        if errors:
            self.problems.append(Problem(op.name, spec.class_name, (
                f"Layer {quoted(op.name)} ({spec.class_name}) has a setting kbuilder does not "
                f"accept: {next(iter(errors.values()))}"
            )))
            return None
        return params



def _backbone_call(node: Any, inner: Any, tensors: list[Any], training: Any) -> Call | None:
    """A nested model that is exactly a keras.applications network (include_top=False) as
    one backbone node (``weights="imagenet"``; its own weights are kept as the node's)."""
    from kbuilder.graph import catalog
    from kbuilder.graph.backbone_build import recognise

    found = recognise(inner)
    if found is None:
        return None
    params: dict[str, Any] = {"weights": "imagenet", "pooling": found.pooling}
    if not node.operation.trainable:
        params["trainable"] = False
    # Unlike a block's, a backbone's training=False is kept: it is what keeps a frozen
    # network's BatchNormalization in inference mode while the head trains.
    options = {"training": training} if isinstance(training, bool) else {}
    return Call(node, "layer", ports={"inputs": tensors}, options=options,
                spec=catalog.get(found.family.node_class), params=params)


def _weights_of(layer: Any) -> list[np.ndarray]:
    """Copies of a layer's weights in ``get_weights()`` order.

    Read from each variable's value: ``get_weights()`` itself makes NumPy 2 warn about
    Keras variables (the ``copy`` keyword of ``__array__``).
    """
    import keras

    return [np.array(keras.ops.convert_to_numpy(v.value), copy=True) for v in layer.weights]


def _valid_name(op: Any) -> str | None:
    """The operation's name when kbuilder's name rules accept it."""
    from kbuilder.graph.commands import validate_name

    name = op.name
    return name if validate_name(name) is None else None


def _models_to_unpack(root: Any) -> set[int]:
    """Ids of the nested models that cannot be blocks, because a block is not shared.

    That is a nested model called more than once, or one whose layers (at any depth) are
    also called outside it.
    """
    from keras.src.ops.function import make_node_key

    calls: dict[int, int] = {}  # id(op) -> calls kept by the models holding it
    homes: dict[int, set[int]] = {}  # id(op) -> ids of the models calling it
    ops_of: dict[int, list[Any]] = {}  # id(model) -> its operations
    nested: dict[int, list[tuple[Any, Any]]] = {}  # id(model) -> [(op, its graph)]
    stack = [root]
    while stack:
        fn = stack.pop()
        if id(fn) in ops_of:
            continue
        ops_of[id(fn)] = fn.operations
        nested[id(fn)] = []
        for op in fn.operations:
            kept = sum(
                make_node_key(op, i) in fn._nodes for i in range(len(op._inbound_nodes))
            )
            calls[id(op)] = calls.get(id(op), 0) + kept
            homes.setdefault(id(op), set()).add(id(fn))
            inner = functional_of(op)
            if inner is not None:
                nested[id(fn)].append((op, inner))
                stack.append(inner)

    @functools.cache
    def inside(fn_id: int) -> frozenset[int]:
        found = {fn_id}
        for _, inner in nested[fn_id]:
            found |= inside(id(inner))
        return frozenset(found)

    unpack = set()
    for children in nested.values():
        for op, inner in children:
            models = inside(id(inner))
            shared = any(
                homes[id(o)] - models for m in models for o in ops_of[m]
            )
            if calls[id(op)] > 1 or shared:
                unpack.add(id(op))
    return unpack


# ======================================================================== files
def import_file(path: str | Path, trust: bool = False) -> Project:
    """Open a ``.keras`` or legacy ``.h5`` model file as a new, unsaved project.

    The configuration is checked before Keras reads anything else, so a refused file
    runs no code.

    Args:
        path: the model file.
        trust: allow Lambda layers and other code-carrying objects to be loaded (they
            run Python code from the file). Lambda layers still cannot be graph nodes;
            the error then names every layer that stands in the way.

    Returns:
        A ``Project`` with the graph, the weights, and a name: the model's, or the
        file's when Keras named the model automatically ("functional_1").

    Raises:
        ModelImportError: the file is missing, damaged, not a Keras model, refused for
            safety, or holds layers kbuilder cannot represent. Nothing is imported.
    """
    from kbuilder.graph.project import Project

    path = Path(path)
    model = open_model_file(path, trust=trust)
    name = path.stem if _GENERIC_MODEL_NAME.match(model.name) else model.name
    graph, weights = import_model(model, name=name)
    return Project(graph, weights=weights)

"""Open an existing Keras model as a kbuilder graph, with its weights.

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
import inspect
import json
import math
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from kbuilder.graph.errors import GraphError
from kbuilder.graph.model import DEFAULT_PORT, Graph, new_id, to_snake_case
from kbuilder.graph.text import plural
from kbuilder.graph.tf_probe import no_tensorflow_probe

if TYPE_CHECKING:
    from kbuilder.graph.catalog import LayerSpec
    from kbuilder.graph.project import Project

# Layer classes whose configuration carries Python code (or a pickled object), which
# Keras would run while opening the file.
CODE_LAYERS = frozenset({"Lambda", "TorchModuleWrapper", "JaxLayer", "FlaxLayer"})

# What Keras 2 wrote for TensorFlow functions applied to symbolic tensors.
_KERAS2_OPERATIONS = frozenset({"TFOpLambda", "SlicingOpLambda"})

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")

# Limits against damaged or hostile files; far above any real model's configuration.
MAX_CONFIG_BYTES = 256 * 2**20
# How many other problem layers a one-line message names.
MAX_NAMED = 5

# How many operations deep a mask computation is compared (Masking uses two).
_MAX_MASK_DEPTH = 8

# Keras's automatic model names; a file's name says more than these.
_GENERIC_MODEL_NAME = re.compile(r"^(functional|sequential|model)(_\d+)?$")


class ModelImportError(GraphError):
    """A Keras model (or model file) that kbuilder cannot open; nothing was imported.

    Args:
        message: what is wrong and what to do, on one line.
        problems: one message per layer that stands in the way, when there are any.

    Attributes:
        trust_would_help: opening the file with ``trust=True`` would get past this refusal
            (only code-carrying objects stand in the way: ``NeedsTrustError``). A view asks
            the user on this, never on the message's words.
    """

    trust_would_help: ClassVar[bool] = False

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = list(problems or [])


class NeedsTrustError(ModelImportError):
    """A model file refused only because it carries Python code (a Lambda layer...).

    Opening it with ``trust=True`` would run that code; a view asks the user first.
    """

    trust_would_help: ClassVar[bool] = True


@dataclass(frozen=True)
class _Problem:
    """Why one layer cannot be imported."""

    layer: str
    class_name: str
    message: str
    code: bool = False  # the layer carries Python code (refused unless trusted)


def _problems_error(problems: list[_Problem]) -> ModelImportError:
    """One line: the first problem in full, then the names of the other layers."""
    unique = list(dict.fromkeys(problems))
    first, others = unique[0], unique[1:]
    message = first.message
    error = NeedsTrustError if all(p.code for p in unique) else ModelImportError
    if others:
        named = ", ".join(f"{_q(p.layer)} ({p.class_name})" for p in others[:MAX_NAMED])
        more = f" and {len(others) - MAX_NAMED} more" if len(others) > MAX_NAMED else ""
        count = f"{len(others)} more layer{'s' if len(others) != 1 else ''}"
        message += f" Also {count} cannot be opened: {named}{more}."
    return error(message, [p.message for p in unique])


def _q(name: Any) -> str:
    """A name in quotes for a message, control characters escaped to keep it one line."""
    text = str(name)
    if not text.isprintable():
        text = text.encode("unicode_escape").decode("ascii")
    return f"'{text}'"


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

    functional = _functional_of(model, top_level=True)
    with no_tensorflow_probe():
        importer = _Importer(functional)
        data, _ = importer.graph_data(functional, name or model.name, top_level=True)
    data.update(_style_of(model))
    if importer.problems:
        raise _problems_error(importer.problems)
    graph = Graph.from_dict(data)
    apply_layout(graph)
    return graph, importer.weights


def _style_of(model: Any) -> dict[str, str]:
    """``{"style": "sequential"}`` for a ``keras.Sequential`` model (kept in the graph)."""
    from keras.src.models.sequential import Sequential

    return {"style": "sequential"} if isinstance(model, Sequential) else {}


def _functional_of(model: Any, top_level: bool = False) -> Any:
    """The Functional graph behind a Functional or Sequential model, else ``None``.

    Raises:
        ModelImportError: at the top level, for anything without a Functional graph.
    """
    from keras.src.models.functional import Functional
    from keras.src.models.sequential import Sequential

    # A subclass that overrides `call` computes something its graph does not show.
    if isinstance(model, Sequential) and type(model).call is Sequential.call:
        if model._functional is None and top_level:
            raise ModelImportError(
                f"The Sequential model {_q(model.name)} has not been built, so its input shape "
                "is unknown. Start it with keras.Input(shape=...) or call "
                "model.build(input_shape) before importing it."
            )
        return model._functional
    if isinstance(model, Functional) and type(model).call is Functional.call:
        return model
    if top_level:
        import keras

        if isinstance(model, keras.Model):
            what = f"a subclassed model ({type(model).__name__}) whose structure is Python code"
        else:
            what = f"a {type(model).__name__}, not a Keras model"
        raise ModelImportError(
            f"Cannot open {_q(getattr(model, 'name', model))}: it is {what}. kbuilder opens "
            "models made with the Functional API or keras.Sequential."
        )
    return None


@dataclass
class _Call:
    """One call of an operation, parsed: what it becomes and which tensors feed it.

    ``kind`` is ``"layer"``, ``"block"``, ``"unpack"`` (a nested model whose layers go
    into the surrounding graph) or ``"unsupported"`` (with ``problem`` set).
    """

    node: Any  # the Keras Node
    kind: str
    ports: dict[str, list[Any]] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    problem: _Problem | None = None
    spec: LayerSpec | None = None
    inner: Any = None  # the Functional graph of a nested model
    params: dict[str, Any] | None = None  # an operation's parameters (a layer has a config)

    @property
    def sources(self) -> list[Any]:
        """The tensors this call reads (all of them when it cannot be imported)."""
        if self.problem is not None:
            return list(self.node.arguments.keras_tensors)
        return [t for tensors in self.ports.values() for t in tensors]


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
        self.problems: list[_Problem] = []
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
                    self.problems.append(_Problem(layer.name, "Input", (
                        f"Input {_q(layer.name)} cannot be a kbuilder input: {message}"
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

    def _needed_calls(self, fn: Any, refs: dict[int, _Ref]) -> list[_Call]:
        """The calls ``fn``'s outputs depend on, parsed, in Keras's execution order.

        Walking back from the outputs along the tensors each call really uses leaves out
        the operations Keras records to compute masks, which need no nodes.
        """
        from keras.src.ops.function import make_node_key

        parsed: dict[int, _Call] = {}
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
                call = _Call(node, "unsupported", problem=_Problem(
                    op.name, type(op).__name__,
                    f"Layer {_q(op.name)} feeds the model from outside its graph.",
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
    def _parse_call(self, node: Any) -> _Call:
        import keras
        from keras.src.layers import InputLayer

        from kbuilder.graph import catalog
        from kbuilder.graph.catalog.kbuilder_layers import is_kbuilder_class
        from kbuilder.graph.errors import UnknownLayerError

        op = node.operation
        if isinstance(op, InputLayer):
            return _Call(node, "unsupported", problem=_Problem(op.name, "InputLayer", (
                f"Input {_q(op.name)} is used by the model but is not one of its inputs."
            )))
        inner = _functional_of(op)
        if inner is not None:
            return self._parse_model_call(node, inner)
        if not isinstance(op, keras.layers.Layer):
            return _parse_operation_call(node)
        try:
            spec = catalog.get(type(op).__name__)
        except UnknownLayerError:
            spec = None
        if spec is None or (catalog.keras_class(spec) is not type(op)
                            and not is_kbuilder_class(type(op))):
            return _Call(node, "unsupported", problem=_unsupported(op))
        return _parse_layer_call(node, spec)

    def _parse_model_call(self, node: Any, inner: Any) -> _Call:
        import keras

        op = node.operation
        kind = "unpack" if id(op) in self._unpack else "block"

        def refuse(message: str) -> _Call:
            return _Call(node, kind, problem=_Problem(op.name, type(op).__name__, message))

        args, kwargs = node.arguments.args, dict(node.arguments.kwargs)
        if len(args) != 1:
            return refuse(
                f"Nested model {_q(op.name)} is called with {len(args)} positional "
                "arguments; kbuilder connects a nested model through its inputs only."
            )
        kwargs.pop("training", None)  # fit/evaluate/predict replace it anyway
        if not _is_automatic_mask(kwargs.pop("mask", None), args[0]):
            return refuse(f"Nested model {_q(op.name)} " + _EXPLICIT_MASK.format(argument="mask"))
        if kwargs:
            return refuse(
                f"Nested model {_q(op.name)} is called with the argument `{next(iter(kwargs))}`, "
                "which kbuilder cannot store."
            )
        tensors = keras.tree.flatten(args[0])
        if len(tensors) != len(inner.inputs) or not all(map(_is_tensor, tensors)):
            return refuse(
                f"Nested model {_q(op.name)} is called with "
                f"{plural(len(tensors), 'value')} for its {plural(len(inner.inputs), 'input')}."
            )
        return _Call(node, kind, ports={"inputs": tensors}, inner=inner)

    # ----------------------------------------------------------------- emitting
    def _emit_layer(self, call: _Call, target: _Target, refs: dict[int, _Ref]) -> None:
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
                self.problems.append(_Problem(op.name, spec.class_name, (
                    f"Layer {_q(op.name)} is used both inside and outside a nested model, "
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

    def _emit_block(self, call: _Call, target: _Target, refs: dict[int, _Ref]) -> None:
        op = call.node.operation
        name = target.name_of(op)
        sub, port_ids = self.graph_data(call.inner, name, top_level=False)
        sub.update(_style_of(op))
        block_id = new_id()
        target.nodes.append({"id": block_id, "kind": "block", "name": name, "graph": sub})
        for tensor, port_id in zip(call.ports["inputs"], port_ids, strict=True):
            self._connect(refs, tensor, target, block_id, port_id)
        for i, tensor in enumerate(call.node.outputs):
            refs[id(tensor)] = (block_id, i)

    def _emit_unpacked(self, call: _Call, target: _Target, refs: dict[int, _Ref]) -> None:
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
            config.update(_learned_settings(op, spec, config))
            params = _tidy_params(spec, {k: _plain(v, op.name, k) for k, v in config.items()})
        except ModelImportError as exc:
            self.problems.append(_Problem(op.name, spec.class_name, str(exc)))
            return None
        except Exception as exc:
            self.problems.append(_Problem(op.name, spec.class_name, (
                f"Layer {_q(op.name)} ({spec.class_name}) cannot describe its settings "
                f"({type(exc).__name__}: {exc})."
            )))
            return None
        key = (spec.class_name, json.dumps(params, sort_keys=True))
        errors = self._checked.get(key)
        if errors is None:
            errors = self._checked[key] = catalog.validate_params(spec, params)
        if errors:
            self.problems.append(_Problem(op.name, spec.class_name, (
                f"Layer {_q(op.name)} ({spec.class_name}) has a setting kbuilder does not "
                f"accept: {next(iter(errors.values()))}"
            )))
            return None
        return params


# Layers whose vocabulary, once learned with adapt(), Keras saves as a file asset
# rather than in get_config() or the weights.
_VOCABULARY_LAYERS = frozenset({"StringLookup", "IntegerLookup", "TextVectorization"})


def _learned_settings(layer: Any, spec: LayerSpec, config: dict[str, Any]) -> dict[str, Any]:
    """Settings learned with ``adapt()`` that ``get_config()`` leaves out.

    A project has no assets, so an adapted vocabulary becomes the ``vocabulary``
    setting (special tokens first, as Keras writes its asset file and as
    ``set_vocabulary`` reads it back).

    Raises:
        ModelImportError: for learned state kbuilder cannot carry.
    """
    if spec.class_name not in _VOCABULARY_LAYERS or config.get("vocabulary"):
        return {}
    if not layer.get_vocabulary(include_special_tokens=False):
        return {}  # not adapted
    if config.get("output_mode") == "tf_idf":
        raise ModelImportError(
            f"Layer {_q(layer.name)} ({spec.class_name}) learned its vocabulary and idf weights "
            "with adapt(); kbuilder cannot carry learned idf weights yet. Pass "
            "`vocabulary` and `idf_weights` to the layer where the model is made."
        )
    return {"vocabulary": layer.get_vocabulary(include_special_tokens=True)}


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
            inner = _functional_of(op)
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


# ---------------------------------------------------------------- layer calls
def _parse_operation_call(node: Any) -> _Call:
    """A ``keras.ops`` call between layers as an operation node (``ops.add``...)."""
    from kbuilder.graph import catalog
    from kbuilder.graph.catalog import ops

    op = node.operation
    parsed = ops.parse_keras_call(op, tuple(node.arguments.args), dict(node.arguments.kwargs))
    if isinstance(parsed, str):
        message = (
            f"{_q(op.name)} is a raw Keras operation between layers that kbuilder cannot "
            f"import: {parsed}. Where the model's code applies it to tensors, use a layer "
            "(e.g. keras.layers.Add, Multiply, Activation) and save the model again."
        )
        return _Call(node, "unsupported", problem=_Problem(op.name, type(op).__name__, message))
    class_name, ports, params = parsed
    return _Call(node, "layer", ports=ports, spec=catalog.get(class_name), params=params)


def _parse_layer_call(node: Any, spec: LayerSpec) -> _Call:
    """Sort a layer call's arguments into the catalog's ports and call options."""
    op = node.operation
    try:
        arguments, first = _bound_arguments(node)
        ports = _ports_of(spec, arguments, first)
        options = _options_of(spec, op, arguments, first)
    except _Refused as refusal:
        message = f"Layer {_q(op.name)} ({spec.class_name}) {refusal}"
        return _Call(node, "unsupported", problem=_Problem(op.name, spec.class_name, message))
    return _Call(node, "layer", ports=ports, options=options, spec=spec)


class _Refused(Exception):
    """A layer call kbuilder cannot store; the message continues "Layer 'x' (Class) ..."."""


def _bound_arguments(node: Any) -> tuple[dict[str, Any], str]:
    """The call's arguments by parameter name, and the name of the first parameter."""
    signature = _call_signature(type(node.operation))
    try:
        bound = signature.bind(None, *node.arguments.args, **node.arguments.kwargs)
    except TypeError as exc:
        raise _Refused(f"was called in a way kbuilder does not understand ({exc}).") from None
    names = list(signature.parameters)
    arguments = dict(bound.arguments)
    arguments.pop(names[0])  # self
    for name, p in signature.parameters.items():
        if p.kind == p.VAR_KEYWORD and name in arguments:
            arguments.update(arguments.pop(name))
        elif p.kind == p.VAR_POSITIONAL and arguments.pop(name, ()):
            raise _Refused("was called with extra positional arguments, which kbuilder "
                           "cannot store.")
    return arguments, names[1]


def _ports_of(spec: LayerSpec, arguments: dict[str, Any], first: str) -> dict[str, list[Any]]:
    """The tensors of each port (the inverse of ``catalog.call_arguments``)."""
    from kbuilder.graph import catalog

    if _takes_one_list(spec.class_name):
        # Attention([query, value, key]): one list, in port order.
        packed = arguments.get(first)
        tensors = list(packed) if isinstance(packed, list | tuple) else [packed]
        if not all(map(_is_tensor, tensors)) or len(tensors) > len(spec.inputs):
            raise _Refused(f"was called with {plural(len(tensors), 'value')}; it takes a "
                           "list of query, value and key.")
        ports = {port.name: [t] for port, t in zip(spec.inputs, tensors, strict=False)}
    else:
        ports = {}
        for i, port in enumerate(spec.inputs):
            # The first port is the call's first parameter, whatever its name.
            value = arguments.get(first if i == 0 else port.name)
            if value is None:
                continue
            tensors = list(value) if isinstance(value, list | tuple) else [value]
            if not all(map(_is_tensor, tensors)) or (len(tensors) > 1 and not port.variadic):
                raise _Refused(f"was given something other than a tensor on `{port.name}`.")
            ports[port.name] = tensors
    try:
        catalog.call_arguments(spec, ports)  # the counts the catalog allows
    except ValueError as exc:
        raise _Refused(f"cannot be connected as called: {exc}") from None
    return ports


def _options_of(
    spec: LayerSpec, op: Any, arguments: dict[str, Any], first: str
) -> dict[str, Any]:
    """The call's non-tensor arguments that differ from what Keras would fill in."""
    from kbuilder.graph import catalog

    port_names = {first, *(p.name for p in spec.inputs)}
    signature = _call_signature(type(op))
    options: dict[str, Any] = {}
    for name, value in arguments.items():
        if name in port_names:
            continue
        if name == "mask" or (name.endswith("_mask") and not name.startswith("use_")):
            # Keras hands on masks by itself; only a mask given by hand would need an edge.
            source = arguments.get(first if name == "mask" else name[: -len("_mask")])
            if _is_automatic_mask(value, source):
                continue
            raise _Refused(_EXPLICIT_MASK.format(argument=name))
        if any(map(_is_tensor, _leaves(value))):
            raise _Refused(f"is given a tensor as `{name}`, which kbuilder cannot connect.")
        parameter = signature.parameters.get(name)
        default = parameter.default if parameter is not None else None
        if value is None or _same_value(value, default):
            continue  # what Keras itself fills in
        message = catalog.validate_call_option(spec, name, value)
        if message:
            raise _Refused(f"is called with {name}={value!r}, which kbuilder cannot store: "
                           f"{message}")
        options[name] = value
    return options


@functools.cache
def _call_signature(cls: type) -> inspect.Signature:
    return inspect.signature(cls.call)


@functools.cache
def _takes_one_list(class_name: str) -> bool:
    """Whether ``catalog.call_arguments`` packs the layer's ports into one list.

    Asked of ``call_arguments`` itself (with stand-ins for tensors), so this inverse
    cannot drift from it: ``Attention([query, value, key])`` packs, ``Concatenate``'s one
    variadic port does not count.
    """
    from kbuilder.graph import catalog

    spec = catalog.get(class_name)
    probes = {p.name: [object() for _ in range(max(p.min_count, 1))] for p in spec.inputs}
    args, kwargs = catalog.call_arguments(spec, probes)
    return len(spec.inputs) > 1 and len(args) == 1 and isinstance(args[0], list) and not kwargs


def _is_tensor(value: Any) -> bool:
    from keras import KerasTensor

    return isinstance(value, KerasTensor)


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, list | tuple):
        for item in value:
            yield from _leaves(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    else:
        yield value


def _same_value(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _is_automatic_mask(mask: Any, tensors: Any) -> bool:
    """Whether ``mask`` is none, or the masks Keras attached to ``tensors`` itself.

    In a model Keras loaded from a file, the recorded mask is the output of the mask
    operations saved with the model, not the very tensor Keras attached while loading;
    it is automatic all the same when it is computed the same way.
    """
    given = list(_leaves(mask))
    if all(m is None for m in given):
        return True
    attached = [getattr(t, "_keras_mask", None) for t in _leaves(tensors)]
    return len(given) == len(attached) and all(
        g is None or _same_computation(g, a) for g, a in zip(given, attached, strict=True)
    )


def _same_computation(a: Any, b: Any, depth: int = 0) -> bool:
    """Whether two symbolic values are computed by the same operations from the same tensors.

    Layers must be the very same call; raw operations (``not_equal``, ``any``... as in
    ``compute_mask``) may be different objects with the same settings.
    """
    if a is b:
        return True
    if not (_is_tensor(a) and _is_tensor(b)):
        return type(a) is type(b) and not isinstance(a, np.ndarray) and a == b
    history_a = getattr(a, "_keras_history", None)
    history_b = getattr(b, "_keras_history", None)
    if history_a is None or history_b is None or depth > _MAX_MASK_DEPTH:
        return False
    op_a, index_a, tensor_a = history_a
    op_b, index_b, tensor_b = history_b
    import keras

    if (
        op_a is None or op_b is None or type(op_a) is not type(op_b) or tensor_a != tensor_b
        or isinstance(op_a, keras.layers.Layer)  # a layer call is only equal to itself
    ):
        return False
    config_a, config_b = op_a.get_config(), op_b.get_config()
    config_a.pop("name", None)
    config_b.pop("name", None)
    if config_a != config_b:
        return False
    args_a = op_a._inbound_nodes[index_a].arguments
    args_b = op_b._inbound_nodes[index_b].arguments
    leaves_a = list(_leaves((args_a.args, args_a.kwargs)))
    leaves_b = list(_leaves((args_b.args, args_b.kwargs)))
    return len(leaves_a) == len(leaves_b) and all(
        _same_computation(x, y, depth + 1) for x, y in zip(leaves_a, leaves_b, strict=True)
    )


_EXPLICIT_MASK = (
    "is given a mask by hand (`{argument}`). kbuilder lets Keras pass masks on by itself "
    "(from Masking or Embedding(mask_zero=True)) and cannot connect one explicitly."
)


def _unsupported(op: Any) -> _Problem:
    """Why an operation cannot be a graph node, in words a domain expert can act on."""
    import keras

    from kbuilder.graph import catalog

    cls = type(op)
    name, class_name = op.name, cls.__name__
    native = cls.__module__.startswith("keras.")
    exported = getattr(keras.layers, class_name, None) is cls
    if class_name == "Lambda" and exported:
        message = (
            f"Layer {_q(name)} (Lambda) runs Python code, which a kbuilder graph cannot hold: "
            "it could not be shown, edited or saved in a project. Replace it with built-in "
            "layers (e.g. Rescaling, Activation, Reshape) where the model is made, and save "
            "the model again."
        )
    elif not isinstance(op, keras.layers.Layer):
        message = (
            f"{_q(name)} is a raw Keras operation (keras.ops.{to_snake_case(class_name)}) "
            "between layers, not a layer; kbuilder edits layers only. Where the model's code "
            "applies keras.ops or operators such as + and * to tensors, use the matching "
            "layer (e.g. keras.layers.Add, Multiply, Activation) and save the model again."
        )
    elif isinstance(op, keras.Model):
        message = (
            f"Layer {_q(name)} is a subclassed model ({class_name}) whose structure is Python "
            "code; kbuilder can only open nested models made with the Functional API or "
            "keras.Sequential."
        )
    elif exported and class_name in catalog.EXCLUDED:
        message = f"Layer {_q(name)} ({class_name}) cannot be a graph node: {catalog.EXCLUDED[class_name]}"
    elif exported:
        message = f"Layer {_q(name)} uses the Keras class {_q(class_name)}, which kbuilder does not offer."
    elif native:
        message = (
            f"Layer {_q(name)} uses {_q(class_name)}, a class internal to Keras "
            f"({cls.__module__}) rather than one of keras.layers; kbuilder offers the "
            "layers of keras.layers only."
        )
    else:
        message = _custom_class_message(name, class_name)
    return _Problem(name, class_name, message)


def _custom_class_message(layer: str, class_name: str, what: str = "class") -> str:
    return (
        f"Layer {_q(layer)} uses the custom {what} {_q(class_name)}, which kbuilder does not "
        "know; kbuilder opens models made of built-in Keras layers. Rebuild that part "
        "with built-in layers where the model is made, and save the model again."
    )


# ------------------------------------------------------------------- parameters
def _plain(value: Any, layer: str, key: str) -> Any:
    """A configuration value as JSON-safe data (tuples as lists, numpy as Python)."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float | np.generic):
        number = value.item() if isinstance(value, np.generic) else value
        if isinstance(number, float) and not math.isfinite(number):
            raise ModelImportError(
                f"Layer {_q(layer)} has `{key}`={number}, which a project file cannot store."
            )
        return number
    if isinstance(value, np.ndarray):
        return _plain(value.tolist(), layer, key)
    if isinstance(value, list | tuple):
        return [_plain(v, layer, key) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _plain(v, layer, k) for k, v in value.items()}
    raise ModelImportError(
        f"Layer {_q(layer)} has a `{key}` of type {type(value).__name__}, which a project "
        "file cannot store."
    )


def _tidy_params(spec: LayerSpec, params: dict[str, Any]) -> dict[str, Any]:
    """Write default Keras objects and dtype policies as the names a person would type.

    ``{"class_name": "GlorotUniform", "config": {"seed": None, ...}}`` becomes
    ``"glorot_uniform"`` when its settings are the class's defaults (it is then the same
    object), and ``{"class_name": "DTypePolicy", "config": {"name": "float32"}}``
    becomes ``"float32"``.
    """
    kinds = {p.name: p.kind for p in spec.params}
    for key, value in params.items():
        if not isinstance(value, dict):
            continue
        kind = kinds.get(key)
        if kind == "dtype" and value.get("class_name") in ("DTypePolicy", "FloatDTypePolicy"):
            name = value.get("config", {}).get("name")
            if isinstance(name, str):
                params[key] = name
        elif kind in ("initializer", "regularizer", "constraint"):
            short = _short_name(kind, value)
            if short is not None:
                params[key] = short
    return params


def _short_name(kind: str, value: dict[str, Any]) -> str | None:
    module = value.get("module", "keras")
    if not isinstance(module, str) or not (module == "keras" or module.startswith("keras.")):
        return None
    defaults = _default_configs(kind).get(value.get("class_name"))
    if defaults is None or value.get("config", {}) != defaults[1]:
        return None
    return defaults[0]


@functools.cache
def _default_configs(kind: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """Class name -> (short name, default config) of the objects Keras makes by name."""
    if kind == "initializer":
        from keras.src import initializers as module
    elif kind == "regularizer":
        from keras.src import regularizers as module
    else:
        from keras.src import constraints as module
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for short, cls in sorted(module.ALL_OBJECTS_DICT.items()):
        if short != short.lower() or not inspect.isclass(cls):
            continue
        try:
            config = _plain(module.get(short).get_config(), short, short)
        except Exception:
            continue  # a base class, or one that needs arguments
        name = cls.__name__
        # Prefer the name Keras itself derives from the class ("glorot_uniform").
        if name not in found or short == to_snake_case(name):
            found[name] = (short, config)
    return found


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


def read_model_config(path: str | Path) -> dict[str, Any]:
    """The model configuration stored in a ``.keras`` or ``.h5`` file, without loading it.

    Raises:
        ModelImportError: the file cannot be read or holds no model configuration.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        raise ModelImportError(
            f"{_q(path.name)} is not a Keras model file: expected a name ending in .keras or .h5."
        )
    if not path.is_file():
        raise ModelImportError(f"{_q(path.name)} does not exist or is not a file ({path}).")
    raw = _read_keras_config(path) if suffix == ".keras" else _read_h5_config(path)
    try:
        config = json.loads(raw)
    except (ValueError, RecursionError):
        raise ModelImportError(
            f"{_q(path.name)} is damaged: its model configuration is not valid JSON."
        ) from None
    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str):
        raise ModelImportError(f"{_q(path.name)} does not hold a Keras model configuration.")
    return config


def _read_keras_config(path: Path) -> bytes:
    try:
        with zipfile.ZipFile(path) as archive:
            try:
                info = archive.getinfo("config.json")
            except KeyError:
                raise ModelImportError(
                    f"{_q(path.name)} is not a Keras model: it has no config.json."
                ) from None
            if info.file_size > MAX_CONFIG_BYTES:
                raise ModelImportError(
                    f"{_q(path.name)} has a model configuration too large to be real "
                    f"({info.file_size:,} bytes)."
                )
            return archive.read(info)
    except ModelImportError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError):
        raise ModelImportError(
            f"{_q(path.name)} is not a .keras model file, or it is damaged (incomplete "
            "download or copy?)."
        ) from None
    except OSError as exc:
        raise ModelImportError(
            f"{_q(path.name)} cannot be read: {exc.strerror or exc}."
        ) from None


def _read_h5_config(path: Path) -> bytes:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
    except (OSError, ValueError):
        raise ModelImportError(
            f"{_q(path.name)} is not an HDF5 model file, or it is damaged (incomplete "
            "download or copy?)."
        ) from None
    if raw is None:
        raise ModelImportError(
            f"{_q(path.name)} holds no model, only weights: open the model's .keras or "
            ".h5 file instead."
        )
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    if not isinstance(raw, bytes) or len(raw) > MAX_CONFIG_BYTES:
        raise ModelImportError(f"{_q(path.name)} has an unreadable model configuration.")
    return raw


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
        raise _problems_error(problems)


def _config_problems(config: dict[str, Any]) -> Iterator[_Problem]:
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


def _object_problem(obj: dict[str, Any], class_name: str, layer: tuple[str, str]) -> _Problem | None:
    module = obj.get("module")
    keras_module = isinstance(module, str) and (module == "keras" or module.startswith("keras."))
    layer_name, layer_class = layer
    if class_name == "__lambda__" or (
        class_name in CODE_LAYERS and (keras_module or "module" not in obj)
    ):
        return _Problem(layer_name, layer_class, (
            f"Layer {_q(layer_name)} ({layer_class}) contains Python code, which would run on "
            "your computer when the model is opened."
        ), code=True)
    if class_name.startswith("__") and class_name.endswith("__"):
        return None  # Keras's own markers for tensors, tuples, arrays...
    if class_name in _KERAS2_OPERATIONS and not keras_module:
        return _Problem(layer_name, class_name, (
            f"Layer {_q(layer_name)} ({class_name}) is a TensorFlow operation that Keras 2 "
            "recorded between layers; Keras 3, and so kbuilder, cannot open it. Make the "
            "model with layers (e.g. keras.layers.Add instead of `x + y`) and save it again."
        ))
    if class_name == "function":
        function = obj.get("config")
        if keras_module or _registered(obj.get("registered_name"), function):
            return None
        return _Problem(layer_name, str(function), _custom_class_message(
            layer_name, str(function), "function"
        ))
    if keras_module:
        return None
    if "module" not in obj:  # legacy .h5 configurations name classes without a module
        if _keras_class_name(class_name):
            return None
        if _keras_operation_name(class_name):
            return _Problem(layer_name, class_name, (
                f"Layer {_q(layer_name)} ({class_name}) is a Keras operation, which Keras 3 "
                "cannot read back from the legacy .h5 format (masks, as from "
                "Embedding(mask_zero=True), are stored this way). Save the model in the "
                ".keras format and open that file."
            ))
    if _registered(obj.get("registered_name"), class_name):
        return None
    return _Problem(layer_name, class_name, _custom_class_message(layer_name, class_name))


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


# A weights member may unpack to this much without the model's size being checked.
_SMALL_WEIGHTS_BYTES = 64 * 2**20
# Bytes a weights file may hold per declared parameter: float64 weights and three more
# values per weight for an optimizer's state (Adam's moments), with room to spare.
_BYTES_PER_PARAM = 40
# HDF5's own bookkeeping, per variable and per file.
_BYTES_PER_VARIABLE = 16 * 2**10
_FILE_OVERHEAD = 16 * 2**20
# Any other member (metadata, a vocabulary asset) is small in any real model.
MAX_OTHER_MEMBER_BYTES = 256 * 2**20
# No model kbuilder can edit or train has weights this large.
MAX_WEIGHTS_BYTES = 16 * 2**30


def open_model_file(
    path: str | Path, trust: bool = False, compile: bool = False,
    remedy: str = TRUST_REMEDY,
) -> Any:
    """Load a ``.keras`` or ``.h5`` model file after checking that it is safe to.

    The one way kbuilder opens model files (import, predict, evaluate, export): the
    configuration is checked for code and unknown classes, and a ``.keras`` archive's
    members for sizes its model cannot need (a "zip bomb" unpacks gigabytes of zeros
    from a few megabytes), before Keras reads anything else.

    Args:
        path: the model file.
        trust: let Lambda layers and other code-carrying objects load (their code runs).
        compile: restore the compile settings saved with the model.
        remedy: what a refusal of code tells the user to do.

    Returns:
        The ``keras.Model``.

    Raises:
        NeedsTrustError: only code in the file stands in the way.
        ModelImportError: the file is missing, damaged, refused or cannot be loaded.
    """
    from kbuilder.graph.build import deep_recursion
    from kbuilder.graph.catalog.kbuilder_layers import register_all

    register_all()  # kbuilder's own layers (FillMissing) are known classes, not custom code
    path = Path(path)
    config = read_model_config(path)
    check_model_config(config, trust=trust, remedy=remedy)
    with deep_recursion(_layer_count(config)):
        if path.suffix.lower() == ".keras":
            check_archive_sizes(path, config, trust)
        return _load_model(path, trust, compile)


def _layer_count(config: dict[str, Any]) -> int:
    """How many layer configurations a model configuration holds, at any depth."""
    count, stack = 0, [config]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            count += isinstance(value.get("class_name"), str)
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return count


def check_archive_sizes(path: Path, config: dict[str, Any], trust: bool = False) -> None:
    """Refuse a ``.keras`` archive whose members unpack to more than its model can need.

    The weights member is compared with the parameters the configuration declares
    (counted from the variables' shapes, nothing allocated) when it is large enough to
    matter; every member has a hard limit.

    Raises:
        ModelImportError: names the member, its unpacked size and what was expected.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, OSError):
        raise ModelImportError(
            f"{_q(path.name)} is not a .keras model file, or it is damaged (incomplete "
            "download or copy?)."
        ) from None
    damaged = (
        "The file is damaged or made to exhaust memory: do not open it (if it should be a "
        "real model, save it again from Keras)."
    )
    for info in members:
        weights = info.filename.endswith(".weights.h5") or info.filename.endswith(".npz")
        limit = MAX_WEIGHTS_BYTES if weights else MAX_OTHER_MEMBER_BYTES
        if info.file_size > limit:
            raise ModelImportError(
                f"{_q(path.name)} holds {_q(info.filename)}, which unpacks to "
                f"{_gib(info.file_size)} (at most {_gib(limit)} is accepted). {damaged}"
            )
        if not weights or info.file_size <= _SMALL_WEIGHTS_BYTES:
            continue
        declared = _declared_params(path, config, trust)
        if declared is None:
            continue  # cannot count: the hard limit above holds
        params, variables = declared
        expected = params * _BYTES_PER_PARAM + variables * _BYTES_PER_VARIABLE + _FILE_OVERHEAD
        if info.file_size > expected:
            raise ModelImportError(
                f"{_q(path.name)} holds weights that unpack to {_gib(info.file_size)}, but "
                f"its model has {params:,} parameters (at most {_gib(expected)} of weights). "
                f"{damaged}"
            )


def _gib(size: int) -> str:
    return f"{size / 2**30:.1f} GiB" if size >= 2**30 else f"{size / 2**20:.0f} MiB"


def _declared_params(
    path: Path, config: dict[str, Any], trust: bool
) -> tuple[int, int] | None:
    """``(parameters, variables)`` of the model a ``.keras`` configuration describes.

    The model is built from the configuration with its variables declared but never
    allocated. ``None`` when it cannot be built that way (Keras then reports why when it
    loads the file).

    Raises:
        ModelImportError: the configuration declares absurdly large weights.
    """
    import keras

    from kbuilder.graph.shapes import MAX_LAYER_PARAMS, SizeError, declared_variables

    try:
        with no_tensorflow_probe(), declared_variables(limit=4 * MAX_LAYER_PARAMS) as declared:
            keras.saving.deserialize_keras_object(config, safe_mode=not trust)
    except SizeError as exc:
        raise ModelImportError(
            f"{_q(path.name)} declares weights of {exc.count:,} numbers or more (one of "
            f"shape {exc.shape}), far more than a real model has: it is damaged or made to "
            "exhaust memory."
        ) from None
    except Exception:
        return None
    return declared.count, len(declared)


def _load_model(path: Path, trust: bool, compile: bool = False) -> Any:
    import keras

    try:
        return keras.saving.load_model(path, compile=compile, safe_mode=not trust)
    except Exception as exc:
        from kbuilder.graph.shapes import explain_exception

        message, _ = explain_exception(exc, [])
        raise ModelImportError(
            f"{_q(path.name)} could not be loaded as a Keras model: {message}"
        ) from exc

"""One call in a Keras Functional graph, parsed: the catalog ports its tensors go to, its
call options, or why it cannot be a graph node (masks, raw operations, custom classes)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from kbuilder.graph.keras_io.problems import ModelImportError, Problem, custom_class_message, quoted
from kbuilder.graph.model import to_snake_case
from kbuilder.graph.text import plural

if TYPE_CHECKING:
    from kbuilder.graph.catalog import LayerSpec


# How many operations deep a mask computation is compared (Masking uses two).
_MAX_MASK_DEPTH = 8


def style_of(model: Any) -> dict[str, str]:
    """``{"style": "sequential"}`` for a ``keras.Sequential`` model (kept in the graph)."""
    from keras.src.models.sequential import Sequential

    return {"style": "sequential"} if isinstance(model, Sequential) else {}


def functional_of(model: Any, top_level: bool = False) -> Any:
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
                f"The Sequential model {quoted(model.name)} has not been built, so its input shape "
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
            f"Cannot open {quoted(getattr(model, 'name', model))}: it is {what}. kbuilder opens "
            "models made with the Functional API or keras.Sequential."
        )
    return None


@dataclass
class Call:
    """One call of an operation, parsed: what it becomes and which tensors feed it.

    ``kind`` is ``"layer"``, ``"block"``, ``"unpack"`` (a nested model whose layers go
    into the surrounding graph) or ``"unsupported"`` (with ``problem`` set).
    """

    node: Any  # the Keras Node
    kind: str
    ports: dict[str, list[Any]] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    problem: Problem | None = None
    spec: LayerSpec | None = None
    inner: Any = None  # the Functional graph of a nested model
    params: dict[str, Any] | None = None  # an operation's parameters (a layer has a config)

    @property
    def sources(self) -> list[Any]:
        """The tensors this call reads (all of them when it cannot be imported)."""
        if self.problem is not None:
            return list(self.node.arguments.keras_tensors)
        return [t for tensors in self.ports.values() for t in tensors]


# ---------------------------------------------------------------- layer calls
def parse_operation_call(node: Any) -> Call:
    """A ``keras.ops`` call between layers as an operation node (``ops.add``...)."""
    from kbuilder.graph import catalog
    from kbuilder.graph.catalog import ops

    op = node.operation
    parsed = ops.parse_keras_call(op, tuple(node.arguments.args), dict(node.arguments.kwargs))
    if isinstance(parsed, str):
        message = (
            f"{quoted(op.name)} is a raw Keras operation between layers that kbuilder cannot "
            f"import: {parsed}. Where the model's code applies it to tensors, use a layer "
            "(e.g. keras.layers.Add, Multiply, Activation) and save the model again."
        )
        return Call(node, "unsupported", problem=Problem(op.name, type(op).__name__, message))
    class_name, ports, params = parsed
    return Call(node, "layer", ports=ports, spec=catalog.get(class_name), params=params)


def parse_layer_call(node: Any, spec: LayerSpec) -> Call:
    """Sort a layer call's arguments into the catalog's ports and call options."""
    op = node.operation
    try:
        arguments, first = _bound_arguments(node)
        ports = _ports_of(spec, arguments, first)
        options = _options_of(spec, op, arguments, first)
    except _Refused as refusal:
        message = f"Layer {quoted(op.name)} ({spec.class_name}) {refusal}"
        return Call(node, "unsupported", problem=Problem(op.name, spec.class_name, message))
    return Call(node, "layer", ports=ports, options=options, spec=spec)


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
        if not all(map(is_tensor, tensors)) or len(tensors) > len(spec.inputs):
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
            if not all(map(is_tensor, tensors)) or (len(tensors) > 1 and not port.variadic):
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
            if is_automatic_mask(value, source):
                continue
            raise _Refused(EXPLICIT_MASK.format(argument=name))
        if any(map(is_tensor, _leaves(value))):
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


def is_tensor(value: Any) -> bool:
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


def is_automatic_mask(mask: Any, tensors: Any) -> bool:
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
    if not (is_tensor(a) and is_tensor(b)):
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


EXPLICIT_MASK = (
    "is given a mask by hand (`{argument}`). kbuilder lets Keras pass masks on by itself "
    "(from Masking or Embedding(mask_zero=True)) and cannot connect one explicitly."
)


def unsupported_problem(op: Any) -> Problem:
    """Why an operation cannot be a graph node, in words a domain expert can act on."""
    import keras

    from kbuilder.graph import catalog

    cls = type(op)
    name, class_name = op.name, cls.__name__
    native = cls.__module__.startswith("keras.")
    exported = getattr(keras.layers, class_name, None) is cls
    if class_name == "Lambda" and exported:
        message = (
            f"Layer {quoted(name)} (Lambda) runs Python code, which a kbuilder graph cannot hold: "
            "it could not be shown, edited or saved in a project. Replace it with built-in "
            "layers (e.g. Rescaling, Activation, Reshape) where the model is made, and save "
            "the model again."
        )
    elif not isinstance(op, keras.layers.Layer):
        message = (
            f"{quoted(name)} is a raw Keras operation (keras.ops.{to_snake_case(class_name)}) "
            "between layers, not a layer; kbuilder edits layers only. Where the model's code "
            "applies keras.ops or operators such as + and * to tensors, use the matching "
            "layer (e.g. keras.layers.Add, Multiply, Activation) and save the model again."
        )
    elif isinstance(op, keras.Model):
        message = (
            f"Layer {quoted(name)} is a subclassed model ({class_name}) whose structure is Python "
            "code; kbuilder can only open nested models made with the Functional API or "
            "keras.Sequential."
        )
    elif exported and class_name in catalog.EXCLUDED:
        message = f"Layer {quoted(name)} ({class_name}) cannot be a graph node: {catalog.EXCLUDED[class_name]}"
    elif exported:
        message = f"Layer {quoted(name)} uses the Keras class {quoted(class_name)}, which kbuilder does not offer."
    elif native:
        message = (
            f"Layer {quoted(name)} uses {quoted(class_name)}, a class internal to Keras "
            f"({cls.__module__}) rather than one of keras.layers; kbuilder offers the "
            "layers of keras.layers only."
        )
    else:
        message = custom_class_message(name, class_name)
    return Problem(name, class_name, message)

"""Editing a node's parameters, call options and name, with the checks of each value."""

from __future__ import annotations

import copy
from typing import Any

from kbuilder.graph.commands.history import Command
from kbuilder.graph.errors import (
    NameConflictError,
    ParamError,
)
from kbuilder.graph.model import (
    UNSET,
    Graph,
    Node,
)

DTYPES = (
    "float32", "float16", "bfloat16", "float64", "int8", "int16", "int32", "int64",
    "uint8", "bool", "string",
)


def validate_input_param(name: str, value: Any) -> str | None:
    """Check a parameter of an Input node; ``None`` when valid."""
    if name == "shape":
        ok = isinstance(value, list | tuple) and all(
            d is None or (isinstance(d, int) and not isinstance(d, bool) and d > 0)
            for d in value
        )
        if not ok:
            return (
                "Received an invalid value for `shape`, expected a list of positive integers "
                f"or null for a variable size (batch size excluded). Received: shape={value!r}"
            )
        return None
    if name == "dtype":
        if value not in DTYPES:
            return (
                f"Received an invalid value for `dtype`, expected one of {', '.join(DTYPES)}. "
                f"Received: dtype={value!r}"
            )
        return None
    if name == "sparse":
        return None if isinstance(value, bool) else "`sparse` must be true or false."
    return f"An Input has no parameter `{name}`; it has `shape` and `dtype`."


class SetParamCommand(Command):
    """Set one parameter (``UNSET`` restores the default).

    A node sharing another node's layer edits the owner: it is the same layer.

    Raises:
        ParamError: the value is not allowed; names node and parameter.
    """

    def __init__(self, graph: Graph, node_id: str, name: str, value: Any):
        node = graph.node(node_id)
        target = graph.layer_owner(node_id)
        if node.kind in ("output", "block"):
            raise ParamError(f"'{node.name}' has no parameters.", node_id, name)
        if value is not UNSET:
            message = _validate(graph, target, name, value)
            if message:
                raise ParamError(f"'{node.name}': {message}", node_id, name)
        elif target.kind == "layer" and _is_required(target, name):
            raise ParamError(
                f"'{node.name}': `{name}` is required and has no default to go back to.",
                node_id, name,
            )
        self.graph, self.node_id, self.name = graph, target.id, name
        self.value = copy.deepcopy(value)
        self.text = f"set {name} of {node.name}"

    def do(self) -> None:
        node = self.graph.node(self.node_id)
        self.old = node.param(self.name, UNSET) if self.name in node._params else UNSET
        self.graph._set_param(self.node_id, self.name, self.value)

    def undo(self) -> None:
        self.graph._set_param(self.node_id, self.name, self.old)


def _is_required(node: Node, name: str) -> bool:
    from kbuilder.graph import catalog

    spec = catalog.get(node.class_name or "")
    return any(p.name == name and p.required for p in spec.params)


def _validate(graph: Graph, node: Node, name: str, value: Any) -> str | None:
    if node.kind == "input":
        return validate_input_param(name, value)
    from kbuilder.graph import catalog

    return catalog.validate_param(catalog.get(node.class_name or ""), name, value)


class SetCallOptionCommand(Command):
    """Fix (or with ``UNSET`` drop) a non-tensor argument of one layer call."""

    def __init__(self, graph: Graph, node_id: str, name: str, value: Any):
        from kbuilder.graph import catalog

        node = graph.node(node_id)
        if node.kind != "layer":
            raise ParamError(f"'{node.name}' is not a layer call.", node_id, name)
        if value is not UNSET:
            spec = catalog.get(graph.layer_owner(node_id).class_name or "")
            message = catalog.validate_call_option(spec, name, value)
            if message:
                raise ParamError(f"'{node.name}': {message}", node_id, name)
        self.graph, self.node_id, self.name, self.value = graph, node_id, name, value
        self.text = f"set {name} of {node.name}"

    def do(self) -> None:
        self.old = self.graph.node(self.node_id).call_options.get(self.name, UNSET)
        self.graph._set_call_option(self.node_id, self.name, self.value)

    def undo(self) -> None:
        self.graph._set_call_option(self.node_id, self.name, self.old)


class RenameNodeCommand(Command):
    """Rename a node; the name becomes the Keras layer name, so it must be unique."""

    def __init__(self, graph: Graph, node_id: str, name: str):
        node = graph.node(node_id)
        message = validate_name(name)
        if message:
            raise ParamError(f"'{node.name}': {message}", node_id, "name")
        if any(n.name == name for n in graph.nodes if n.id != node_id):
            raise NameConflictError(
                f"Another layer is already named '{name}'; names must be unique.", node_id
            )
        self.graph, self.node_id, self.name, self.old = graph, node_id, name, node.name
        self.text = f"rename {node.name} to {name}"

    def do(self) -> None:
        self.graph._set_name(self.node_id, self.name)

    def undo(self) -> None:
        self.graph._set_name(self.node_id, self.old)


def validate_name(name: Any) -> str | None:
    if not isinstance(name, str) or not name.strip():
        return "A name cannot be empty."
    if "/" in name:
        # Keras uses "/" to build weight paths and refuses it in layer names.
        return f"A name cannot contain '/'. Received: name={name!r}"
    return None

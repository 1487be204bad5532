"""Parsing a ``project.json`` document into records: plain JSON only, the sections
(graph, view, settings, runs, sweep) read and checked field by field."""

from __future__ import annotations

import copy
import math
from typing import Any

from kbuilder.graph.commands import validate_name
from kbuilder.graph.errors import ProjectFileError
from kbuilder.graph.layout import FLOWS
from kbuilder.graph.model import GRAPH_STYLES, NODE_KINDS
from kbuilder.graph.project.container import MAX_BLOCK_DEPTH, MAX_JSON_DEPTH, PROJECT_MEMBER
from kbuilder.graph.project.migration import migrate
from kbuilder.graph.project.records import (
    MISSING,
    EdgeRecord,
    GraphRecord,
    NodeRecord,
    ProjectRecord,
    Reader,
)
from kbuilder.graph.project.validation import validate_graph
from kbuilder.graph.runs import RunRecord
from kbuilder.graph.settings import DataSettings, SettingsError, TrainingSettings
from kbuilder.graph.sweeps import SweepError, SweepSpec
from kbuilder.graph.text import found as _found
from kbuilder.graph.text import quoted as _quote


def parse_project(data: Any, source: str) -> ProjectRecord:
    r = Reader(source)
    _check_plain_json(data, source)
    if not isinstance(data, dict):
        raise ProjectFileError(
            f"{source}: {PROJECT_MEMBER} must hold a JSON object; found {_found(data)}."
        )
    data = migrate(copy.deepcopy(data), source)

    graph = _parse_graph(r, data.get("graph", MISSING), "graph", 0, "model")
    view_data = r.object(data.get("view", {}), "view")
    positions: dict[str, tuple[float, float]] = {}
    for node_id, point in r.object(view_data.get("positions", {}), "view.positions").items():
        positions[node_id] = r.point(point, f"view.positions{_member(node_id)}")
    view = {k: v for k, v in view_data.items() if k != "positions"}
    if "zoom" in view:
        view["zoom"] = r.number(view["zoom"], "view.zoom")
        if view["zoom"] <= 0:
            r.fail("view.zoom", f"must be more than 0; found {_found(view['zoom'])}.")
    if "center" in view:
        view["center"] = list(r.point(view["center"], "view.center"))
    if "collapsed" in view:
        collapsed = r.list(view["collapsed"], "view.collapsed")
        view["collapsed"] = [r.string(c, f"view.collapsed[{i}]") for i, c in enumerate(collapsed)]
    if "flow" in view and view["flow"] not in FLOWS:  # the canvas's layout direction
        r.fail("view.flow", f"must be one of {', '.join(FLOWS)}; found {_found(view['flow'])}.")

    settings = {key: r.object(data.get(key, {}), key) for key in ("data", "training")}
    data_settings = (_check_settings(r, DataSettings, settings["data"], "data")
                     if settings["data"] else None)  # {}: no data chosen yet
    training = _check_settings(r, TrainingSettings, settings["training"], "training")
    listed = r.list(data.get("runs", []), "runs")
    try:
        runs = [RunRecord.from_dict(run, f"runs[{i}]") for i, run in enumerate(listed)]
    except ProjectFileError as exc:
        raise ProjectFileError(f"{source}: {exc.message}", param=exc.param) from None

    sweep = None
    if "sweep" in data:  # files from before sweeps have none
        try:
            sweep = SweepSpec.from_dict(r.object(data["sweep"], "sweep"))
        except SweepError as exc:
            r.fail("sweep", f"is not valid: {exc.message}", param=exc.param)
    built = validate_graph(r, graph, positions)
    # Stale view entries (a block deleted after it was collapsed) are harmless: drop them.
    blocks = {node.id for _, node in built.walk() if node.kind == "block"}
    view["collapsed"] = [c for c in view.get("collapsed", []) if c in blocks]
    return ProjectRecord(graph, view, data_settings, training, runs, built, sweep)


def _check_settings(r: Reader, cls: Any, values: dict[str, Any], section: str) -> Any:
    """The settings ``cls.from_dict`` reads from ``values``; what it refuses fails naming
    the field (``training.epochs must be a whole number >= 1; found 'ten'``)."""
    try:
        return cls.from_dict(values)
    except SettingsError as exc:
        body = exc.message.removeprefix(f"{section}: ")
        if exc.param and body.startswith(f"{exc.param} "):
            r.fail(f"{section}.{exc.param}", body.removeprefix(exc.param).lstrip(),
                   param=exc.param)
        r.fail(f"{section}.{exc.param}" if exc.param else section, f"is not valid: {body}",
               param=exc.param)
    except (TypeError, ValueError, AttributeError):
        # A value of a type the settings cannot even examine (image_size 5, roles "x"):
        # find it by checking each setting alone.
        for name, value in values.items():
            try:
                cls.from_dict({name: value})
            except SettingsError:
                pass  # a rule between settings, or the field's own rule: reported below
            except (TypeError, ValueError, AttributeError):
                r.fail(f"{section}.{name}", f"has the wrong type; found {_found(value)}.",
                       param=name)
        r.fail(section, "holds a value of the wrong type.")


def _check_plain_json(data: Any, source: str) -> None:
    """Refuse nesting deeper than ``MAX_JSON_DEPTH``, non-JSON values and non-finite numbers.

    Iterative, so that hostile nesting cannot exhaust the stack here or, later, in the
    recursive code (``copy.deepcopy``, ``json.dumps``) that handles parameter values.
    """
    stack: list[tuple[Any, int, tuple | None]] = [(data, 1, None)]
    while stack:
        value, depth, path = stack.pop()
        if isinstance(value, dict):
            for key in value:
                if not isinstance(key, str):
                    raise ProjectFileError(
                        f"{source}: {_path_text(path)} has a key of type "
                        f"{type(key).__name__}; keys must be strings."
                    )
            children = value.items()
        elif isinstance(value, list):
            children = enumerate(value)
        elif value is None or isinstance(value, str | bool):
            continue
        elif isinstance(value, int):
            # Nothing in a project needs more than 64 bits, and Python refuses to print
            # integers of thousands of digits, which every message about them would do.
            if value.bit_length() > 64:
                raise ProjectFileError(
                    f"{source}: {_path_text(path)} is a whole number too large for a "
                    "project file."
                )
            continue
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise ProjectFileError(
                    f"{source}: {_path_text(path)} is {value}; a project file may only "
                    "hold finite numbers."
                )
            continue
        else:
            raise ProjectFileError(
                f"{source}: {_path_text(path)} holds a value of type "
                f"{type(value).__name__}, which is not JSON data."
            )
        if depth > MAX_JSON_DEPTH:
            raise ProjectFileError(
                f"{source}: {_path_text(path)} is nested more than {MAX_JSON_DEPTH} levels "
                "deep; a project file is never that deep."
            )
        for key, child in children:
            stack.append((child, depth + 1, (path, key)))


def _path_text(path: tuple | None) -> str:
    keys: list[Any] = []
    while path is not None:
        path, key = path
        keys.append(key)
    text = ""
    for key in reversed(keys):
        text += f"[{key}]" if isinstance(key, int) else _member(key)
        if len(text) > 120:  # a hostile path can be thousands of levels long
            return text[:120] + "..."
    return text.removeprefix(".") or PROJECT_MEMBER


def _member(key: str) -> str:
    """``.key`` for a plain key, ``['odd key']`` for one a message could not show as is."""
    if key.isprintable() and len(key) <= 60 and not any(c in key for c in ".[]' "):
        return f".{key}"
    return f"[{_quote(key)}]"


def _parse_graph(
    r: Reader, value: Any, where: str, depth: int, default_name: str
) -> GraphRecord:
    if depth > MAX_BLOCK_DEPTH:
        r.fail(where, f"is nested more than {MAX_BLOCK_DEPTH} blocks deep.")
    data = r.object(value, where)
    name = r.string(data.get("name", default_name), f"{where}.name")
    nodes = tuple(
        _parse_node(r, node, f"{where}.nodes[{i}]", depth)
        for i, node in enumerate(r.list(data.get("nodes", []), f"{where}.nodes"))
    )
    edges = tuple(
        _parse_edge(r, edge, f"{where}.edges[{i}]")
        for i, edge in enumerate(r.list(data.get("edges", []), f"{where}.edges"))
    )
    style = data.get("style", "functional")
    if style not in GRAPH_STYLES:
        r.expect(style, f"{where}.style", f"one of {', '.join(GRAPH_STYLES)}")
    return GraphRecord(where, name, nodes, edges, style)


def _parse_node(r: Reader, value: Any, where: str, depth: int) -> NodeRecord:
    data = r.object(value, where)
    node_id = r.identifier(data.get("id", MISSING), f"{where}.id")
    kind = data.get("kind", MISSING)
    if kind not in NODE_KINDS:
        r.expect(kind, f"{where}.kind", f"one of {', '.join(NODE_KINDS)}")
    name = data.get("name", MISSING)
    message = validate_name(name)
    if message:
        if not isinstance(name, str):
            r.expect(name, f"{where}.name", "a non-empty string")
        r.fail(f"{where}.name", f"is not a valid name: {message}", node_id)
    params = r.object(data.get("params", {}), f"{where}.params")
    class_name = shared_with = graph = None
    call_options = r.object(data.get("call_options", {}), f"{where}.call_options")
    if call_options and kind != "layer":
        r.fail(f"{where}.call_options", "is only allowed on layer nodes.", node_id)
    if kind == "layer":
        class_name = r.identifier(data.get("class_name", MISSING), f"{where}.class_name")
        if data.get("shared_with") is not None:
            shared_with = r.identifier(data["shared_with"], f"{where}.shared_with")
    elif kind == "block":
        graph = _parse_graph(r, data.get("graph", {}), f"{where}.graph", depth + 1, name)
    return NodeRecord(
        where, node_id, kind, name, class_name, params, shared_with, graph, call_options
    )


def _parse_edge(r: Reader, value: Any, where: str) -> EdgeRecord:
    data = r.object(value, where)
    return EdgeRecord(
        where,
        r.identifier(data.get("id", MISSING), f"{where}.id"),
        r.identifier(data.get("src", MISSING), f"{where}.src"),
        r.index(data.get("src_port", MISSING), f"{where}.src_port"),
        r.identifier(data.get("dst", MISSING), f"{where}.dst"),
        r.string(data.get("dst_port", MISSING), f"{where}.dst_port"),
    )

"""Validating the graph records before anything is built: unique ids and names, known
layers with valid parameters, inputs, ports and cycles."""

from __future__ import annotations

from kbuilder.graph.commands import validate_input_param
from kbuilder.graph.errors import CycleError, UnknownLayerError
from kbuilder.graph.model import Graph
from kbuilder.graph.project.records import GraphRecord, NodeRecord, Reader
from kbuilder.graph.text import quoted as _quote


def validate_graph(
    r: Reader, record: GraphRecord, positions: dict[str, tuple[float, float]]
) -> Graph:
    """Check the graph records and return the graph they describe (not yet live).

    Positions of ids that are not in the graph are ignored (stale view data).
    """
    _check_ids(r, record, {}, {})
    _check_nodes(r, record, top_level=True)
    graph = Graph.from_dict(record.to_dict(), positions)
    _check_connections(r, record, graph)
    return graph


def _check_ids(
    r: Reader, record: GraphRecord, nodes: dict[str, str], edges: dict[str, str]
) -> None:
    # Unique across the whole tree: positions, weights and block ports are keyed by id.
    for node in record.nodes:
        if node.id in nodes:
            r.fail(f"{node.where}.id", f"{_quote(node.id)} is already used by {nodes[node.id]}.")
        nodes[node.id] = node.where
    for edge in record.edges:
        if edge.id in edges:
            r.fail(f"{edge.where}.id", f"{_quote(edge.id)} is already used by {edges[edge.id]}.")
        edges[edge.id] = edge.where
    for node in record.nodes:
        if node.graph is not None:
            _check_ids(r, node.graph, nodes, edges)


def _check_nodes(r: Reader, record: GraphRecord, top_level: bool) -> None:
    by_id = {node.id: node for node in record.nodes}
    names: dict[str, str] = {}
    for node in record.nodes:
        if node.name in names:
            r.fail(
                f"{node.where}.name",
                f"{_quote(node.name)} is already used by {names[node.name]}; names must be "
                "unique within a model.",
                node.id,
            )
        names[node.name] = node.where
        if node.kind == "layer":
            _check_layer(r, node, by_id)
        elif node.kind == "input":
            _check_input(r, node, top_level)
        elif node.kind == "block":
            _check_block_options(r, node)
        elif node.params:
            r.fail(f"{node.where}.params", f"must be empty: {_quote(node.name)} is a model "
                   f"{node.kind} and has no parameters.", node.id)
        if node.graph is not None:
            _check_nodes(r, node.graph, top_level=False)
    for edge in record.edges:
        for end in ("src", "dst"):
            if getattr(edge, end) not in by_id:
                r.fail(
                    f"{edge.where}.{end}",
                    f"{_quote(getattr(edge, end))} is not a node of {record.where}.",
                )


def _check_block_options(r: Reader, node: NodeRecord) -> None:
    """A block's params are its freezing options (``graph/freezing.BLOCK_OPTIONS``)."""
    from kbuilder.graph.freezing import BLOCK_OPTIONS

    for name, value in node.params.items():
        if name not in BLOCK_OPTIONS:
            r.fail(f"{node.where}.params.{name}", f"is not an option of a block; a block "
                   f"has {', '.join(BLOCK_OPTIONS)}.", node.id)
        elif not isinstance(value, BLOCK_OPTIONS[name]):
            r.fail(f"{node.where}.params.{name}", "must be true or false.", node.id)


def _check_layer(r: Reader, node: NodeRecord, by_id: dict[str, NodeRecord]) -> None:
    from kbuilder.graph import catalog

    try:
        spec = catalog.get(node.class_name)
    except UnknownLayerError:
        r.fail(
            f"{node.where}.class_name",
            f"{_quote(node.class_name)} of {_quote(node.name)} is not a layer type kbuilder knows.",
            node.id,
        )
    for option, value in node.call_options.items():
        message = catalog.validate_call_option(spec, option, value)
        if message:
            r.fail(f"{node.where}.call_options.{option}",
                   f"of layer {_quote(node.name)} is not valid: {_sentence(message)}", node.id)
    if node.shared_with is not None:
        owner = by_id.get(node.shared_with)
        if owner is None or owner.kind != "layer" or owner.shared_with or owner is node:
            r.fail(
                f"{node.where}.shared_with",
                f"of {_quote(node.name)} must be the id of a layer node of the same model that "
                f"owns its layer; found {_quote(node.shared_with)}.",
                node.id,
            )
        if owner.class_name != node.class_name:
            r.fail(
                f"{node.where}.class_name",
                f"of {_quote(node.name)} is {_quote(node.class_name)}, but the layer it shares "
                f"({_quote(owner.name)}) is {_quote(owner.class_name)}.",
                node.id,
            )
        if node.params:
            r.fail(
                f"{node.where}.params",
                f"must be empty: {_quote(node.name)} shares the layer (and parameters) of "
                f"{_quote(owner.name)}.",
                node.id,
            )
        return
    try:
        problems = catalog.validate_params(spec, node.params)
    except Exception as exc:
        # The catalog receives whatever the file holds; a value it cannot even examine
        # is a bad file, not a bug to crash on.
        r.fail(
            f"{node.where}.params",
            f"of layer {_quote(node.name)} cannot be checked ({type(exc).__name__}: {exc}).",
            node.id,
        )
    if problems:
        param, message = next(iter(problems.items()))
        r.fail(
            f"{node.where}.params.{param}",
            f"of layer {_quote(node.name)} is not valid: {_sentence(message)}",
            node.id,
            param,
        )


def _check_input(r: Reader, node: NodeRecord, top_level: bool) -> None:
    # Inside a block the shape comes from whatever feeds the block's port.
    if top_level and "shape" not in node.params:
        r.fail(
            f"{node.where}.params.shape",
            f"is missing: the model input {_quote(node.name)} needs a shape.",
            node.id,
            "shape",
        )
    for param, value in node.params.items():
        message = validate_input_param(param, value)
        if message:
            r.fail(
                f"{node.where}.params.{param}",
                f"of input {_quote(node.name)} is not valid: {_sentence(message)}",
                node.id,
                param,
            )


def _check_connections(r: Reader, record: GraphRecord, graph: Graph) -> None:
    """Ports and cycles, checked on the built graph so the rules are the graph's own."""
    by_id = {node.id: node for node in record.nodes}
    for edge in record.edges:
        source, target = by_id[edge.src], by_id[edge.dst]
        if source.kind == "output":
            r.fail(
                f"{edge.where}.src",
                f"is the model output {_quote(source.name)}, which has nothing to connect from.",
                source.id,
            )
        ports = [p.name for p in graph.input_ports(edge.dst)]
        if edge.dst_port not in ports:
            if not ports:
                what = " is a model input and" if target.kind == "input" else ""
                detail = f"{_quote(target.name)}{what} takes no inputs"
            else:
                detail = f"the ports of {_quote(target.name)} are {', '.join(map(_quote, ports))}"
            r.fail(
                f"{edge.where}.dst_port",
                f"{_quote(edge.dst_port)} is not an input port: {detail}.",
                target.id,
            )
    try:
        graph.topological_order()
    except CycleError as exc:
        name = graph.node(exc.node_id).name if exc.node_id in graph else "?"
        r.fail(
            f"{record.where}.edges",
            f"make a cycle through {_quote(name)}; data in a model must flow one way.",
            exc.node_id,
        )
    for node in record.nodes:
        if node.graph is not None:
            block = graph.node(node.id).subgraph
            assert block is not None
            _check_connections(r, node.graph, block)


def _sentence(message: str) -> str:
    # Validators quote the value they refused, which in a hostile file can be enormous.
    message = " ".join(message.split())
    if len(message) > 300:
        message = message[:300] + "..."
    return message if message.endswith((".", "!", "?")) else message + "."

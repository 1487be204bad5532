"""The model module: ``build_model()`` and a function per block (nested model).

Variables are named after the layers, a shared layer is defined once and called at each
use, and long calls are wrapped as a formatter would.
"""

from __future__ import annotations

import builtins
import keyword
import re
import textwrap
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kbuilder.graph.backbone_build import (
    IMAGENET_HELPER,
    IMAGENET_HELPER_SOURCE,
    code_expression,
    downloads_imagenet,
)
from kbuilder.graph.backbones import backbone, is_backbone_class
from kbuilder.graph.catalog import ops
from kbuilder.graph.catalog.app_layers import APPLICATION_LAYERS, class_source
from kbuilder.graph.catalog.kbuilder_layers import KBUILDER_LAYERS
from kbuilder.graph.catalog.kbuilder_layers import class_source as kbuilder_class_source
from kbuilder.graph.codegen.data_section import DEFINED_NAMES as DATA_NAMES
from kbuilder.graph.codegen.layer_args import layer_expression
from kbuilder.graph.codegen.literals import (
    INDENT,
    LINE_LENGTH,
    CodegenError,
    docstring,
    literal,
    quote_text,
    string,
)
from kbuilder.graph.freezing import in_inference_mode, is_frozen
from kbuilder.graph.model import Graph, Node, to_snake_case
from kbuilder.graph.tf_probe import no_tensorflow_probe


def generate_model_code(graph: Graph) -> str:
    """A Python module whose ``build_model()`` returns the Keras model of ``graph``.

    The model is the one ``kbuilder.graph.build.build_model(graph)`` gives, layer for layer
    (same classes, names, configurations and connections), with fresh weights.

    Args:
        graph: a graph without errors (see ``ShapeInference``).

    Returns:
        The source code, ending in a newline.

    Raises:
        CodegenError: the graph has problems; the message lists them.
    """
    functions = model_functions(graph)
    header = docstring(
        f"The Keras model {quote_text(graph.name)}, written out by kbuilder.",
        "`build_model()` returns the model with freshly initialised weights (the trained\n"
        "weights are kept in the kbuilder project, or load them with `model.load_weights`).",
    )
    parts = [
        header,
        "import keras\nfrom keras import layers",
        *functions.definitions,
        'if __name__ == "__main__":\n    build_model().summary()',
    ]
    return parts[0] + "\n\n" + "\n\n\n".join(parts[1:]) + "\n"



# Names the generated functions use besides their own variables: a variable must never
# shadow them. Module-level names of the training script are kept free as well.
_RESERVED = frozenset({
    "keras", "layers", "np", "numpy", "os", "argparse", "importlib", "main", "model",
    "make_callbacks", "checkpoint_path", "logs_folder", "build_model", IMAGENET_HELPER,
    *DATA_NAMES,
    *APPLICATION_LAYERS, *KBUILDER_LAYERS,
})
_TAKEN_BY_PYTHON = frozenset(
    {*keyword.kwlist, *keyword.softkwlist, *dir(builtins)}
)


@dataclass
class ModelFunctions:
    """``definitions``: block functions (innermost first), then ``build_model``."""

    definitions: list[str]
    graph: Graph
    input_shapes: list[tuple[int | None, ...]]
    input_dtypes: list[str]
    output_count: int


def model_functions(graph: Graph) -> ModelFunctions:
    # Comparing configurations with Keras's defaults goes through its serializer, which
    # would import TensorFlow (seconds) on the first code generation of a session.
    with no_tensorflow_probe():
        return _model_functions_of(graph)


def _model_functions_of(graph: Graph) -> ModelFunctions:
    from kbuilder.graph.report import model_problems
    from kbuilder.graph.shapes import ShapeInference

    for message in model_problems(graph):
        raise CodegenError(message)
    inference = ShapeInference(graph)
    try:
        inference.update()
        problems = [(nid, message) for nid, message in inference.errors()]
        if problems:
            listed = "; ".join(f"'{graph.node(nid).name}': {msg}" for nid, msg in problems[:5])
            raise CodegenError(
                f"The model has {len(problems)} problem{'s' if len(problems) > 1 else ''} "
                f"to fix before it can be written as code: {listed}",
                problems[0][0],
            )
        function_names = _function_names(graph)
        used = sorted({n.class_name for _, n in graph.walk() if n.class_name} & set(
            APPLICATION_LAYERS))
        definitions: list[str] = [class_source(name) for name in used]
        own = sorted({n.class_name for _, n in graph.walk() if n.class_name} & set(
            KBUILDER_LAYERS))
        definitions += [kbuilder_class_source(name) for name in own]
        if any(is_backbone_class(n.class_name) and downloads_imagenet(n.params)
               for _, n in graph.walk()):
            definitions.append(IMAGENET_HELPER_SOURCE)
        _write_function(graph, inference, "build_model", graph.name, function_names,
                        definitions, top_level=True)
        inputs = graph.input_nodes()
        return ModelFunctions(
            definitions=definitions,
            graph=graph,
            input_shapes=[inference.result(n.id).outputs[0].shape[1:] for n in inputs],
            input_dtypes=[inference.result(n.id).outputs[0].dtype for n in inputs],
            output_count=len(graph.output_refs()),
        )
    finally:
        inference.close()


def _function_names(graph: Graph) -> dict[int, str]:
    """A function name for every block's subgraph (by ``id()``), unique and deterministic."""
    taken = set(_RESERVED) | _TAKEN_BY_PYTHON
    names: dict[int, str] = {}

    def visit(g: Graph) -> None:
        for node in g.nodes:
            if node.kind == "block" and node.subgraph is not None:
                base = "build_" + _identifier(node.name, "block")
                names[id(node.subgraph)] = _unique(base.rstrip("_"), taken)
                visit(node.subgraph)

    visit(graph)
    return names


class _Names:
    """Variable names of one function: valid, not reserved, unique, deterministic."""

    def __init__(self, reserved: Iterable[str]):
        self.taken = set(reserved) | _RESERVED | _TAKEN_BY_PYTHON

    def new(self, base: str) -> str:
        return _unique(base, self.taken)


def _unique(base: str, taken: set[str]) -> str:
    name = base if base not in _TAKEN_BY_PYTHON and base not in _RESERVED else base + "_"
    if name in taken:
        i = 2
        while f"{base}_{i}" in taken:
            i += 1
        name = f"{base}_{i}"
    taken.add(name)
    return name


def _identifier(name: str, fallback: str) -> str:
    """A lower-case ASCII identifier that reads like ``name`` (``"Conv 1/a"`` -> ``conv_1_a``)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    text = re.sub(r"\W+", "_", ascii_name).strip("_").lower()
    if not text:
        text = fallback
    elif text[0].isdigit():
        text = f"{fallback}_{text}"
    return text


class _Code(str):
    """A piece of code (a variable name) passed through ``catalog.call_arguments``."""


def _write_function(
    graph: Graph,
    inference: Any,
    function_name: str,
    model_name: str,
    function_names: dict[int, str],
    definitions: list[str],
    top_level: bool,
) -> None:
    """Append the function building ``graph`` (after the functions of its blocks)."""
    from kbuilder.graph import catalog
    from kbuilder.graph.shapes import order_with_sharing

    chain = graph.sequential_chain()
    if chain is not None:
        _write_sequential(graph, inference, chain, function_name, model_name, definitions,
                          top_level)
        return
    names = _Names(function_names.values())
    needed = _needed_nodes(graph)
    outputs: dict[tuple[str, int], str] = {}  # (node id, output index) -> variable
    layer_objects: dict[str, str] = {}  # owner node id -> variable of a shared layer
    inputs: list[str] = []
    body: list[str] = []
    for nid in order_with_sharing(graph):
        node = graph.node(nid)
        result = inference.result(nid)
        if node.kind == "input":
            var = names.new(_identifier(node.name, "input"))
            outputs[(nid, 0)] = var
            inputs.append(var)
            body.append(_input_line(node, var, None if top_level else result.outputs[0]))
            continue
        if node.kind == "output":
            continue
        uses = [nid, *(s.id for s in graph.sharers(nid))] if node.kind == "layer" else []
        if sum(1 for use in uses if use in needed) > 1:
            # A layer called more than once is one object; its variable holds the layer.
            owner_var = names.new(_identifier(node.name, "layer") + "_layer")
            layer_objects[nid] = owner_var
            spec = catalog.get(node.class_name or "")
            if is_backbone_class(spec.class_name):  # one network, its weights shared
                body += _network_lines(node, owner_var, code_expression(
                    spec.class_name, node.params, node.name, result.inputs[0].shape[1:],
                    literal))
                if node.param("trainable", True) is False:
                    body.append(f"{owner_var}.trainable = False")
            else:
                body += wrapped(f"{owner_var} = ",
                                layer_expression(spec, node.params, node.name))
        if nid not in needed:
            continue  # feeds no output: Keras leaves it out of the model as well
        targets = _output_variables(node, len(result.outputs), names)
        for i, var in enumerate(targets):
            outputs[(nid, i)] = var
        target = ", ".join(targets)
        if node.kind == "block":
            assert node.subgraph is not None
            inner_name = function_names[id(node.subgraph)]
            _write_function(node.subgraph, inference.block_inference(nid), inner_name,
                            node.name, function_names, definitions, top_level=False)
            arguments = []
            for inner in node.subgraph.input_nodes():
                edge = graph.edges_into(nid, inner.id)[0]
                arguments.append(outputs[(edge.src, edge.src_port)])
            argument = arguments[0] if len(arguments) == 1 else f"[{', '.join(arguments)}]"
            frozen, inference_mode = is_frozen(graph, nid), in_inference_mode(node)
            if frozen or inference_mode:  # as build.py does (graph/freezing.py)
                block_var = names.new(_identifier(node.name, "block") + "_model")
                body.append(f"{block_var} = {inner_name}()")
                if frozen:
                    body.append(f"{block_var}.trainable = False")
                mode = ", training=False" if inference_mode else ""
                body.append(f"{target} = {block_var}({argument}{mode})")
                continue
            body.append(f"{target} = {inner_name}()({argument})")
            continue
        owner = graph.layer_owner(nid)
        spec = catalog.get(owner.class_name or "")
        by_port = {
            port.name: [_Code(outputs[(e.src, e.src_port)])
                        for e in graph.edges_into(nid, port.name)]
            for port in graph.input_ports(nid)
        }
        if is_backbone_class(spec.class_name):
            # The keras.applications call itself, not its hundreds of layers.
            expression = code_expression(spec.class_name, owner.params, owner.name,
                                         result.inputs[0].shape[1:], literal)
            options = "".join(f", {k}={literal(v)}" for k, v in node.call_options.items())
            shared = layer_objects.get(owner.id)
            if shared is not None:
                body.append(f"{target} = {shared}({by_port['inputs'][0]}{options})")
            elif owner.param("trainable", True) is False:  # frozen, as the project trains it
                network = names.new(f"{target}_network")
                body += _network_lines(owner, network, expression)
                body.append(f"{network}.trainable = False")
                body.append(f"{target} = {network}({by_port['inputs'][0]}{options})")
            else:
                body += _network_lines(owner, target, expression,
                                       tail=f"({by_port['inputs'][0]}{options})")
            continue
        if ops.is_operation(spec.class_name):
            y = by_port.get("y")
            expression = ops.expression(spec.class_name, owner.params, by_port["x"][0],
                                        y[0] if y else None, literal)
            body += wrapped(f"{target} = ", expression)
            continue
        args, kwargs = catalog.call_arguments(spec, {k: v for k, v in by_port.items() if v})
        call = [_call_value(a) for a in args]
        call += [f"{k}={_call_value(v)}" for k, v in kwargs.items()]
        call += [f"{k}={literal(v)}" for k, v in node.call_options.items()]
        layer = layer_objects.get(owner.id)
        if layer is None:
            layer = layer_expression(spec, owner.params, owner.name)
        body += wrapped(f"{target} = ", layer, tail=f"({', '.join(call)})")
    refs = [outputs[ref] for ref in graph.output_refs()]
    returned = _model_call(inputs, refs, model_name)
    body += wrapped("return ", returned)
    doc = (
        '"""Build the model (fresh weights, not compiled)."""' if top_level
        else f'"""Build the block {quote_text(model_name)} as a nested model."""'
    )
    definitions.append(
        f"def {function_name}():\n" + textwrap.indent("\n".join([doc, *body]), INDENT)
    )


def _network_lines(node: Node, target: str, expression: str, tail: str = "") -> list[str]:
    """``target = keras.applications.<Name>(...)``; inside ``with ImageNetWeights(...):``
    when Keras downloads its ImageNet weights (offline: a message saying what to do)."""
    if not downloads_imagenet(node.params):
        return wrapped(f"{target} = ", expression, tail=tail)
    family = backbone((node.class_name or "").split(".", 1)[1])
    lines = wrapped(f"{target} = ", expression, tail=tail, depth=2)
    return [f"with {IMAGENET_HELPER}({literal(family.name)}):",
            *(INDENT + line for line in lines)]


def _needed_nodes(graph: Graph) -> set[str]:
    """Nodes the model outputs depend on (the rest Keras leaves out of the model)."""
    stack = [src for src, _ in graph.output_refs()]
    seen: set[str] = set()
    while stack:
        nid = stack.pop()
        if nid in seen:
            continue
        seen.add(nid)
        stack.extend(graph.predecessors(nid))
    return seen


def _output_variables(node: Node, count: int, names: _Names) -> list[str]:
    base = _identifier(node.name, to_snake_case(node.class_name or node.kind) or "x")
    first = names.new(base)
    return [first] + [names.new(f"{base}_out{i}") for i in range(1, count)]


def _write_sequential(
    graph: Graph, inference: Any, chain: list[Node], function_name: str, model_name: str,
    definitions: list[str], top_level: bool,
) -> None:
    """Append the function building a Sequential graph as ``keras.Sequential([...])``."""
    from kbuilder.graph import catalog

    inp = graph.input_nodes()[0]
    outer = None if top_level else inference.result(inp.id).outputs[0]
    items = [_input_expression(inp, outer)] + [
        layer_expression(catalog.get(n.class_name or ""), n.params, n.name) for n in chain
    ]
    body = ["return keras.Sequential(", f"{INDENT}["]
    for item in items:
        body += [f"{INDENT * 2}{line}" for line in wrapped("", item, ",", depth=3)]
    body += [f"{INDENT}],", f"{INDENT}name={string(model_name)},", ")"]
    doc = (
        '"""Build the model (fresh weights, not compiled)."""' if top_level
        else f'"""Build the block {quote_text(model_name)} as a nested model."""'
    )
    definitions.append(
        f"def {function_name}():\n" + textwrap.indent("\n".join([doc, *body]), INDENT)
    )


def _input_line(node: Node, var: str, outer: Any) -> str:
    """``keras.Input``; inside a block, shaped like what feeds the block (as ``build``)."""
    return "\n".join(wrapped(f"{var} = ", _input_expression(node, outer)))


def _input_expression(node: Node, outer: Any) -> str:
    if outer is not None:
        shape, dtype = tuple(outer.shape[1:]), str(outer.dtype)
    else:
        shape = tuple(node.param("shape") or ())
        dtype = str(node.param("dtype", "float32"))
    args = [f"shape={literal(shape)}"]
    if dtype != "float32":
        args.append(f"dtype={string(dtype)}")
    args.append(f"name={string(node.name)}")
    return f"keras.Input({', '.join(args)})"


def _model_call(inputs: list[str], outputs: list[str], name: str) -> str:
    ins = inputs[0] if len(inputs) == 1 else f"[{', '.join(inputs)}]"
    outs = outputs[0] if len(outputs) == 1 else f"[{', '.join(outputs)}]"
    return f"keras.Model(inputs={ins}, outputs={outs}, name={string(name)})"


def _call_value(value: Any) -> str:
    if isinstance(value, _Code):
        return str(value)
    if isinstance(value, list | tuple):
        return f"[{', '.join(_call_value(v) for v in value)}]"
    return literal(value)


# ---------------------------------------------------------------------- line layout
def wrapped(prefix: str, expression: str, tail: str = "", depth: int = 1) -> list[str]:
    """``prefix + expression + tail`` as lines, the arguments of a long call on their own.

    Lines are measured as they will stand, ``depth`` indentation levels deep.
    """
    line = f"{prefix}{expression}{tail}"
    if len(INDENT * depth + line) <= LINE_LENGTH or not expression.endswith(")"):
        return [line]
    head, args = _split_arguments(expression)
    if head is None or not args:
        return [line]
    return _split_call(prefix + head, args, tail, depth)


def _split_call(head: str, args: list[str], tail: str, depth: int = 1) -> list[str]:
    joined = INDENT + ", ".join(args)
    if len(INDENT * depth + joined) <= LINE_LENGTH:
        return [f"{head}(", joined, f"){tail}"]
    return [f"{head}(", *(f"{INDENT}{a}," for a in args), f"){tail}"]


def _split_arguments(expression: str) -> tuple[str | None, list[str]]:
    """``"f(a, g(b, c), d)"`` -> ``("f", ["a", "g(b, c)", "d"])``; top-level commas only."""
    start = expression.index("(")
    if not expression.endswith(")"):
        return None, []
    inner = expression[start + 1 : -1]
    args, depth, current, quote, escaped = [], 0, [], None, False
    for ch in inner:
        if quote:
            current.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
            continue
        if ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            args.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    if "".join(current).strip():
        args.append("".join(current).strip())
    return expression[:start], args

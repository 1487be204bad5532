"""Graph -> readable Python: a ``build_model()`` module, a training script, a notebook.

The code is what a Keras user would write by hand: ``keras.Input`` and ``keras.layers``
calls through the Functional API, with only the arguments that differ from Keras's
defaults, variables named after the layers, a shared layer defined once and called at each
use, and every block (nested model) in a function of its own. It never loads a file nor
deserializes a config, so it can be read, reviewed and edited; weights travel separately.

Which arguments are "default" is decided by Keras itself: a parameter is left out when its
value is the signature's default or the value ``get_config()`` reports for the default
(imported models carry full configs such as ``activation="linear"``), and the layer is then
built both ways to confirm that leaving them out gives the same configuration.

Output is deterministic: the same graph gives the same bytes.

Example:

>>> from kbuilder.graph.templates import get_template
>>> code = generate_model_code(get_template("mlp_classifier").build())
>>> print(code.split("def build_model():")[1].splitlines()[3])
    dense = layers.Dense(128, activation="relu", name="dense")(features)
"""

from __future__ import annotations

import builtins
import copy
import functools
import json
import keyword
import os
import re
import textwrap
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kbuilder.graph.catalog import ops
from kbuilder.graph.catalog.app_layers import APPLICATION_LAYERS, class_source
from kbuilder.graph.catalog.kbuilder_layers import KBUILDER_LAYERS
from kbuilder.graph.catalog.kbuilder_layers import class_source as kbuilder_class_source
from kbuilder.graph.codegen_data import DEFINED_NAMES as DATA_NAMES
from kbuilder.graph.codegen_rows import RowEncoding
from kbuilder.graph.errors import GraphError, UnknownLayerError
from kbuilder.graph.model import Graph, Node, to_snake_case
from kbuilder.graph.tf_probe import no_tensorflow_probe

# The code style of generated files (the project's own ruff line length).
LINE_LENGTH = 99
INDENT = "    "


class CodegenError(GraphError):
    """The graph cannot be written as code (it has problems); names the first node."""


# ======================================================================================
# Public API
# ======================================================================================


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
    functions = _model_functions(graph)
    header = _docstring(
        f"The Keras model {_quote_text(graph.name)}, written out by kbuilder.",
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


def generate_training_script(project: Any, rows: RowEncoding | None = None) -> str:
    """A standalone script that loads the data, builds, trains, evaluates and saves the model.

    It follows the project's data and training settings and imports only keras, numpy and
    what its data source needs (scikit-learn for its datasets, ``csv`` for CSV files,
    Pillow for image folders), never kbuilder. Its ``load_data()`` prepares the data exactly
    as a kbuilder run does (see ``codegen_data``), so both train on the same arrays. Run it
    as ``python train.py [--epochs N] [--output M.keras]``. A table in "model" encoding
    also gives ``encode_rows``, ``predict_csv`` and ``--predict RAW.csv [-o OUT.csv]``:
    predictions on raw rows of the file (``codegen_rows``).

    Args:
        project: a ``kbuilder.graph.project.Project``; its ``DataSettings`` (``None``:
            the defaults) and ``TrainingSettings``.
        rows: the trained run's row encoder (a table in "model" encoding), written out as
            the settings of ``encode_rows``; ``None``: learned from the data.

    Returns:
        The source code, ending in a newline.

    Raises:
        CodegenError: the graph has problems.
        SettingsError: a data or training setting is not valid.
    """
    plan = _TrainingPlan.of(project, rows)
    predicts = plan.data_section.predicts
    parts = [
        _docstring(
            f"Train the Keras model {_quote_text(project.graph.name)} as set up in kbuilder.",
            textwrap.fill(f"Data: {plan.data_description}.", LINE_LENGTH - 11) + "\n"
            "Usage: python THIS_FILE [--epochs N] [--output model.keras]"
            + (" [--data PATH]" if plan.data_path_kind else "")
            + ("\n       python THIS_FILE --predict RAW.csv [--model M.keras] [-o OUT.csv]"
               if predicts else ""),
        ),
        plan.setup_code(),
        plan.settings_code(),
        *plan.model.definitions,
        *plan.data_definitions(),
        plan.callbacks_definition(),
        plan.main_definition(),
        'if __name__ == "__main__":\n    main()',
    ]
    # One blank line after the docstring and after the imports (as isort wants), two
    # between definitions.
    head = parts[0] + "\n\n" + parts[1] + "\n\n" + parts[2]
    return "\n\n\n".join([head, *parts[3:]]) + "\n"


def generate_notebook(project: Any, rows: RowEncoding | None = None) -> Any:
    """The training script as a Jupyter notebook (``nbformat`` version 4).

    Cells: an introduction, setup (backend, imports, settings), data, model, training, and
    evaluation with saving (and, for a table in "model" encoding, predictions on raw rows).
    Running the code cells in order reproduces the script's run.

    Args:
        project: a ``kbuilder.graph.project.Project``.
        rows: the trained run's row encoder, as for ``generate_training_script``.

    Returns:
        An ``nbformat.NotebookNode``.

    Raises:
        CodegenError: the graph has problems.
        SettingsError: a data or training setting is not valid.
    """
    import nbformat.v4 as nbf

    plan = _TrainingPlan.of(project, rows)
    cells = [
        nbf.new_markdown_cell(source) if kind == "markdown" else nbf.new_code_cell(source)
        for kind, source in plan.notebook_cells()
    ]
    for index, cell in enumerate(cells):
        cell["id"] = f"cell-{index}"  # nbformat makes random ids; same project, same file
    notebook = nbf.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {
        "name": "python3", "display_name": "Python 3", "language": "python",
    }
    notebook.metadata["language_info"] = {"name": "python"}
    return notebook


def write_notebook(project: Any, path: str | os.PathLike[str],
                   rows: RowEncoding | None = None) -> None:
    """Write ``generate_notebook(project, rows)`` to ``path`` atomically.

    Raises:
        CodegenError: the graph has problems.
        OSError: the file could not be written; a previous file at ``path`` is intact.
    """
    import nbformat

    from kbuilder.files import atomic_write

    text = nbformat.writes(generate_notebook(project, rows), version=4)
    atomic_write(path, text if text.endswith("\n") else text + "\n")


# ======================================================================================
# The model functions
# ======================================================================================

# Names the generated functions use besides their own variables: a variable must never
# shadow them. Module-level names of the training script are kept free as well.
_RESERVED = frozenset({
    "keras", "layers", "np", "numpy", "os", "argparse", "importlib", "main", "model",
    "make_callbacks", "checkpoint_path", "logs_folder", "build_model", *DATA_NAMES,
    *APPLICATION_LAYERS, *KBUILDER_LAYERS,
})
_TAKEN_BY_PYTHON = frozenset(
    {*keyword.kwlist, *keyword.softkwlist, *dir(builtins)}
)


@dataclass
class _ModelFunctions:
    """``definitions``: block functions (innermost first), then ``build_model``."""

    definitions: list[str]
    graph: Graph
    input_shapes: list[tuple[int | None, ...]]
    input_dtypes: list[str]
    output_count: int


def _model_functions(graph: Graph) -> _ModelFunctions:
    # Comparing configurations with Keras's defaults goes through its serializer, which
    # would import TensorFlow (seconds) on the first code generation of a session.
    with no_tensorflow_probe():
        return _model_functions_of(graph)


def _model_functions_of(graph: Graph) -> _ModelFunctions:
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
        _write_function(graph, inference, "build_model", graph.name, function_names,
                        definitions, top_level=True)
        inputs = graph.input_nodes()
        return _ModelFunctions(
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
            body += _wrapped(f"{owner_var} = ", _layer_expression(spec, node.params, node.name))
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
            body.append(f"{target} = {inner_name}()({argument})")
            continue
        owner = graph.layer_owner(nid)
        spec = catalog.get(owner.class_name or "")
        by_port = {
            port.name: [_Code(outputs[(e.src, e.src_port)])
                        for e in graph.edges_into(nid, port.name)]
            for port in graph.input_ports(nid)
        }
        if ops.is_operation(spec.class_name):
            y = by_port.get("y")
            expression = ops.expression(spec.class_name, owner.params, by_port["x"][0],
                                        y[0] if y else None, _literal)
            body += _wrapped(f"{target} = ", expression)
            continue
        args, kwargs = catalog.call_arguments(spec, {k: v for k, v in by_port.items() if v})
        call = [_call_value(a) for a in args]
        call += [f"{k}={_call_value(v)}" for k, v in kwargs.items()]
        call += [f"{k}={_literal(v)}" for k, v in node.call_options.items()]
        layer = layer_objects.get(owner.id)
        if layer is None:
            layer = _layer_expression(spec, owner.params, owner.name)
        body += _wrapped(f"{target} = ", layer, tail=f"({', '.join(call)})")
    refs = [outputs[ref] for ref in graph.output_refs()]
    returned = _model_call(inputs, refs, model_name)
    body += _wrapped("return ", returned)
    doc = (
        '"""Build the model (fresh weights, not compiled)."""' if top_level
        else f'"""Build the block {_quote_text(model_name)} as a nested model."""'
    )
    definitions.append(
        f"def {function_name}():\n" + textwrap.indent("\n".join([doc, *body]), INDENT)
    )


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
        _layer_expression(catalog.get(n.class_name or ""), n.params, n.name) for n in chain
    ]
    body = ["return keras.Sequential(", f"{INDENT}["]
    for item in items:
        body += [f"{INDENT * 2}{line}" for line in _wrapped("", item, ",", depth=3)]
    body += [f"{INDENT}],", f"{INDENT}name={_string(model_name)},", ")"]
    doc = (
        '"""Build the model (fresh weights, not compiled)."""' if top_level
        else f'"""Build the block {_quote_text(model_name)} as a nested model."""'
    )
    definitions.append(
        f"def {function_name}():\n" + textwrap.indent("\n".join([doc, *body]), INDENT)
    )


def _input_line(node: Node, var: str, outer: Any) -> str:
    """``keras.Input``; inside a block, shaped like what feeds the block (as ``build``)."""
    return "\n".join(_wrapped(f"{var} = ", _input_expression(node, outer)))


def _input_expression(node: Node, outer: Any) -> str:
    if outer is not None:
        shape, dtype = tuple(outer.shape[1:]), str(outer.dtype)
    else:
        shape = tuple(node.param("shape") or ())
        dtype = str(node.param("dtype", "float32"))
    args = [f"shape={_literal(shape)}"]
    if dtype != "float32":
        args.append(f"dtype={_string(dtype)}")
    args.append(f"name={_string(node.name)}")
    return f"keras.Input({', '.join(args)})"


def _model_call(inputs: list[str], outputs: list[str], name: str) -> str:
    ins = inputs[0] if len(inputs) == 1 else f"[{', '.join(inputs)}]"
    outs = outputs[0] if len(outputs) == 1 else f"[{', '.join(outputs)}]"
    return f"keras.Model(inputs={ins}, outputs={outs}, name={_string(name)})"


def _call_value(value: Any) -> str:
    if isinstance(value, _Code):
        return str(value)
    if isinstance(value, list | tuple):
        return f"[{', '.join(_call_value(v) for v in value)}]"
    return _literal(value)


# ---------------------------------------------------------------------- line layout
def _wrapped(prefix: str, expression: str, tail: str = "", depth: int = 1) -> list[str]:
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


# ======================================================================================
# Layer constructors with only the arguments that matter
# ======================================================================================

# Optional parameters Keras users pass positionally (after the required ones).
_POSITIONAL_OPTIONAL = frozenset({"pool_size"})
# Spatial tuples that Keras broadcasts from one number: (3, 3) is written 3.
_SCALAR_TUPLES = frozenset({"kernel_size", "strides", "pool_size", "dilation_rate", "size"})
_MISSING = object()


def _layer_expression(spec: Any, params: dict[str, Any], name: str | None) -> str:
    """``layers.Conv2D(32, 3, padding="same", name="conv2d")``."""
    kept = _essential_params(spec.class_name, params)
    return _render_layer(spec, kept, name)


def _render_layer(spec: Any, kept: dict[str, Any], name: str | None) -> str:
    specs = {p.name: p for p in spec.params}
    positional: list[str] = []
    keywords: list[str] = []
    for index, (pname, value) in enumerate(kept.items()):
        p = specs.get(pname)
        text = _param_value(p, value)
        leading = index == len(positional) and p is not None and (
            p.required or pname in _POSITIONAL_OPTIONAL
        ) and spec.params[index].name == pname
        if leading:
            positional.append(text)
        elif pname.isidentifier() and not keyword.iskeyword(pname):
            keywords.append(f"{pname}={text}")
        else:
            keywords.append(f"**{{{_string(pname)}: {text}}}")
    if name is not None:
        keywords.append(f"name={_string(name)}")
    # An application's own layer class is defined in the generated module itself.
    defined_here = spec.class_name in APPLICATION_LAYERS or spec.class_name in KBUILDER_LAYERS
    module = "" if defined_here else "layers."
    return f"{module}{spec.api_name or spec.class_name}({', '.join(positional + keywords)})"


def _essential_params(class_name: str, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters to write, in signature order: those that differ from the defaults.

    A wrapped layer's value becomes ``{"class_name", "config"}`` with its own essential
    parameters. Leaving out a value other than the signature's default is confirmed with
    Keras: the layer built from what is kept must have the configuration of the layer built
    from everything.
    """
    try:
        key = json.dumps(params, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):
        return _find_essential_params(class_name, params)
    # Models repeat layers with equal settings (every BatchNormalization of a ResNet).
    return copy.deepcopy(_essential_params_cached(class_name, key))


@functools.lru_cache(maxsize=4096)
def _essential_params_cached(class_name: str, key: str) -> dict[str, Any]:
    return _find_essential_params(class_name, json.loads(key))


def _find_essential_params(class_name: str, params: dict[str, Any]) -> dict[str, Any]:
    from kbuilder.graph import catalog

    spec = catalog.get(class_name)
    order = {p.name: i for i, p in enumerate(spec.params)}
    defaults = _normalised_defaults(spec.class_name)
    specs = {p.name: p for p in spec.params}
    kept: dict[str, Any] = {}
    to_confirm = False
    for pname, value in params.items():
        p = specs.get(pname)
        if p is not None and not p.required:
            if _same(value, p.default):
                continue  # what the signature does anyway: safe to leave out
            default = defaults.get(pname, _MISSING)
            if (
                _same(value, default) or _same_object(value, default)
                or _same_policy(value, default) or _same_named(p.kind, value, default)
            ):
                to_confirm = True
                continue
        if p is not None and p.kind == "layer" and isinstance(value, dict):
            value = _essential_wrapped(value)
            to_confirm = True
        kept[pname] = value
    if to_confirm:
        kept = _confirmed(spec, params, kept)
    kept = _without_derived(spec, kept, defaults)
    if any(p.kind == "layer" for p in spec.params):
        kept = _without_implied(spec, kept)
    return dict(sorted(kept.items(), key=lambda kv: order.get(kv[0], len(order))))


def _essential_wrapped(value: dict[str, Any]) -> dict[str, Any]:
    from kbuilder.graph import catalog

    config = value.get("config") or {}
    try:
        inner = catalog.get(value.get("class_name", ""))
    except UnknownLayerError:
        return value
    settings = {k: v for k, v in config.items() if k != "name"}
    essential = _essential_params(inner.class_name, settings)
    if "name" in config:
        essential["name"] = config["name"]
    return {"class_name": inner.class_name, "config": essential}


def _confirmed(spec: Any, params: dict[str, Any], kept: dict[str, Any]) -> dict[str, Any]:
    """``kept``, plus whatever leaving out changed the configuration Keras reports."""
    full = _layer_config(spec, params)
    if full is None:
        return dict(params)
    kept = dict(kept)
    for _ in range(len(params) + 1):
        got = _layer_config(spec, kept)
        if got is not None and _same(got, full):
            return kept
        omitted = [k for k in params if k not in kept]
        if not omitted:
            break
        differing = [
            k for k in omitted
            if got is None or not _same(got.get(k, _MISSING), full.get(k, _MISSING))
        ]
        # A difference in a derived key (strides from pool_size) names no parameter:
        # then keep everything rather than guess.
        for k in differing or omitted:
            kept[k] = params[k]
    # Still different: only the wrapped layers' shortened configs are left to blame.
    return dict(params)


def _without_derived(spec: Any, kept: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """Leave out values Keras derives from other arguments when they are not given.

    ``get_config()`` writes MultiHeadAttention's ``value_dim`` as ``key_dim`` and
    pooling ``strides`` as ``pool_size``; written out again they are noise. Only such
    parameters (whose reported default differs from the signature's) are tried, and one
    is left out only when the layer's configuration stays the same.
    """
    specs = {p.name: p for p in spec.params}
    candidates = [
        k for k in kept
        if k in specs and k in defaults and not specs[k].required
        and specs[k].kind != "layer" and not _same(specs[k].default, defaults[k])
    ]
    if not candidates:
        return kept
    target = _layer_config(spec, kept)
    for k in candidates:
        trial = {name: v for name, v in kept.items() if name != k}
        got = _layer_config(spec, trial)
        if target is not None and got is not None and _same(got, target):
            kept = trial
    return kept


def _without_implied(spec: Any, kept: dict[str, Any]) -> dict[str, Any]:
    """Leave out what a wrapper implies: the backward layer Bidirectional derives from the
    forward one, or the forward layer's ``zero_output_for_mask``, which Bidirectional sets.
    """
    target = _layer_config(spec, kept)
    if target is None:
        return kept

    def same_without(trial: dict[str, Any]) -> bool:
        got = _layer_config(spec, trial)
        return got is not None and _same(got, target)

    wrapped = [p for p in spec.params if p.kind == "layer" and p.name in kept]
    for p in wrapped:
        if not p.required and same_without({k: v for k, v in kept.items() if k != p.name}):
            kept = {k: v for k, v in kept.items() if k != p.name}
    for p in wrapped:
        value = kept.get(p.name)
        if not isinstance(value, dict) or not isinstance(value.get("config"), dict):
            continue
        inner = _spec_or_none(value.get("class_name"))
        inner_specs = {q.name: q for q in inner.params} if inner is not None else {}
        for key in list(value["config"]):
            q = inner_specs.get(key)
            if q is None or q.required:
                continue
            config = {k: v for k, v in value["config"].items() if k != key}
            trial = {**kept, p.name: {**value, "config": config}}
            if same_without(trial):
                kept, value = trial, trial[p.name]
    return kept


def _spec_or_none(class_name: Any) -> Any:
    from kbuilder.graph import catalog

    try:
        return catalog.get(str(class_name))
    except UnknownLayerError:
        return None


def _layer_config(spec: Any, params: dict[str, Any]) -> dict[str, Any] | None:
    """The ``get_config()`` of the layer that the constructor call with ``params`` makes.

    Omitted arguments take the signature's defaults, as in the generated call (some
    ``from_config`` methods, such as Rescaling's, need every key). Names of wrapped layers
    are removed. ``None`` when Keras refuses the parameters.
    """
    from kbuilder.graph.shapes import make_layer

    defaults = {p.name: p.default for p in spec.params if not p.required}
    try:
        config = make_layer(spec.class_name, {**defaults, **params}, "probe").get_config()
    except Exception:
        return None
    return _comparable(config)


@functools.cache
def _normalised_defaults(class_name: str) -> dict[str, Any]:
    """What ``get_config()`` reports for each optional parameter left at its default."""
    from kbuilder.graph import catalog

    spec = catalog.get(class_name)
    placeholders = catalog.PLACEHOLDERS.get(spec.class_name, {})
    required = {p.name: p.default for p in spec.params if p.required}
    values = {**required, **catalog.default_params(spec)}
    values = {k: v for k, v in values.items() if k in placeholders or k in required}
    config = _layer_config(spec, values) or {}
    return {
        k: v for k, v in config.items()
        if k not in placeholders and k not in required and k != "name"
    }


def _same_object(value: Any, default: Any) -> bool:
    """Whether a serialized Keras object is the default one, though written differently.

    Files from other Keras versions list other keys (``GlorotUniform`` without
    ``input_axes``): only the keys both sides name are compared.
    """
    if not (isinstance(value, dict) and isinstance(default, dict)):
        return False
    if value.get("class_name") != default.get("class_name") or "class_name" not in value:
        return False
    mine, theirs = value.get("config") or {}, default.get("config") or {}
    if not (isinstance(mine, dict) and isinstance(theirs, dict)):
        return False
    return all(_same(v, theirs[k]) for k, v in mine.items() if k in theirs)


def _same_named(kind: str, value: Any, default: Any) -> bool:
    """``"random_uniform"`` where ``get_config()`` reports a default ``RandomUniform``."""
    if kind not in ("initializer", "regularizer", "constraint") or not isinstance(value, str):
        return False
    from kbuilder.graph import catalog

    cls = catalog.keras_object_classes(kind).get(value)
    config = _default_object_config(cls) if cls is not None else None
    if config is None:
        return False
    return _same_object({"class_name": cls.__name__, "config": config}, default)


def _same_policy(value: Any, default: Any) -> bool:
    """``"float32"`` where ``get_config()`` reports the ``DTypePolicy`` of that name."""
    return (
        isinstance(value, str) and isinstance(default, dict)
        and default.get("class_name") in ("DTypePolicy", "FloatDTypePolicy")
        and (default.get("config") or {}).get("name") == value
    )


def _comparable(value: Any) -> Any:
    """Tuples as lists; names of wrapped layers dropped (Keras generates them), and the
    input shapes a saved wrapped layer was built for (it is built again when called)."""
    if isinstance(value, dict):
        out = {k: _comparable(v) for k, v in value.items() if k != "build_config"}
        if isinstance(value.get("config"), dict) and str(
            value.get("module", "")
        ).startswith("keras.layers"):
            out["config"].pop("name", None)
        return out
    if isinstance(value, list | tuple):
        return [_comparable(v) for v in value]
    return value


def _same(a: Any, b: Any) -> bool:
    """Equality that keeps True apart from 1 and lists equal to tuples."""
    if a is _MISSING or b is _MISSING:
        return a is b
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple | dict) or isinstance(b, list | tuple | dict):
        return False
    try:
        return bool(a == b)
    except Exception:
        return False


# ======================================================================================
# Values as Python source
# ======================================================================================


def _param_value(p: Any, value: Any) -> str:
    """A parameter value as code, in the form its kind reads best."""
    kind = p.kind if p is not None else None
    if kind in ("initializer", "regularizer", "constraint") and isinstance(value, dict):
        return _keras_object(kind, value)
    if kind == "dtype" and isinstance(value, dict):
        return _literal((value.get("config") or {}).get("name"))
    if kind == "layer" and isinstance(value, dict):
        return _wrapped_layer(value)
    if kind == "tuple" and isinstance(value, list | tuple):
        if p.name in _SCALAR_TUPLES and p.accepts_scalar and value and len(set(
                map(repr, value))) == 1 and not isinstance(value[0], list | tuple):
            return _literal(value[0])
        return _literal(_as_tuples(value))
    if kind == "shape" and isinstance(value, list | tuple):
        return _literal(tuple(value))
    return _literal(value)


def _as_tuples(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_as_tuples(v) for v in value)
    return value


def _wrapped_layer(value: dict[str, Any]) -> str:
    from kbuilder.graph import catalog

    config = dict(value.get("config") or {})
    name = config.pop("name", None)
    inner = catalog.get(value["class_name"])
    return _render_layer(inner, config, name)


@functools.cache
def _keras_object_module(kind: str) -> Any:
    import keras

    return {"initializer": keras.initializers, "regularizer": keras.regularizers,
            "constraint": keras.constraints}[kind]


def _keras_object(kind: str, value: dict[str, Any]) -> str:
    """``"he_normal"``, ``keras.initializers.HeNormal(seed=1)``, ``keras.regularizers.L2(0.01)``."""
    import inspect

    from kbuilder.graph import catalog

    classes = catalog.keras_object_classes(kind)
    cls = classes.get(str(value.get("class_name")))
    module = _keras_object_module(kind)
    config = value.get("config") or {}
    if cls is None or getattr(module, cls.__name__, None) is not cls:
        # Project validation refuses these; never fall back to a config Keras would load.
        raise CodegenError(
            f"The {kind} {value.get('class_name')!r} is not one that Keras ships, so it "
            "cannot be written as code."
        )
    default = _default_object_config(cls)
    path = f"keras.{kind}s.{cls.__name__}"
    if kind == "regularizer":
        # The strength is the point of a regularizer: always write it.
        items = dict(config)
    else:
        items = {
            k: v for k, v in config.items()
            if default is None or not _same(_comparable(v), _comparable(default.get(k, v)))
        }
        short = _short_name(kind, cls)
        if not items and default is not None and short is not None:
            return _string(short)
    params = list(inspect.signature(cls.__init__).parameters)[1:]
    if kind == "regularizer" and len(items) == 1 and params[:1] == list(items):
        return f"{path}({_literal(next(iter(items.values())))})"
    return f"{path}({', '.join(f'{k}={_literal(v)}' for k, v in items.items())})"


@functools.cache
def _default_object_config_cached(cls: type) -> dict[str, Any] | None:
    try:
        return cls().get_config()
    except Exception:
        return None


def _default_object_config(cls: type) -> dict[str, Any] | None:
    config = _default_object_config_cached(cls)
    return copy.deepcopy(config) if config is not None else None


def _short_name(kind: str, cls: type) -> str | None:
    """The snake_case name under which Keras knows ``cls`` (``HeNormal`` -> ``he_normal``)."""
    from kbuilder.graph import catalog

    names = sorted(
        k for k, v in catalog.keras_object_classes(kind).items()
        if v is cls and k == k.lower()
    )
    preferred = to_snake_case(cls.__name__)
    if preferred in names:
        return preferred
    return names[0] if names else None


def _literal(value: Any) -> str:
    """Python source for a JSON-like value (tuples stay tuples)."""
    if value is None or isinstance(value, bool | int):
        return repr(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return f'float("{value}")'
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, tuple):
        items = [_literal(v) for v in value]
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    if isinstance(value, list):
        return f"[{', '.join(_literal(v) for v in value)}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in value.items()) + "}"
    raise CodegenError(f"A value of type {type(value).__name__} cannot be written as code.")


_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _string(text: str) -> str:
    """A double-quoted literal that is valid for any text (quotes, newlines, unicode)."""
    return f'"{_escape(text)}"'


def _escape(text: str) -> str:
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else
                       f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return "".join(out)


def _quote_text(name: str) -> str:
    """A name inside prose (docstrings, comments): quoted and escaped, one line."""
    return f'"{_escape(name)}"'


def _docstring(summary: str, body: str = "") -> str:
    text = summary if not body else f"{summary}\n\n{body}"
    return f'"""{text}\n"""' if body else f'"""{text}"""'


# ======================================================================================
# Training scripts and notebooks
# ======================================================================================

# Losses that take class labels (so labels are mapped to 0..n-1), and those of them that
# take one-hot rows.
_CLASS_LOSSES = frozenset({
    "sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy",
    "categorical_hinge", "hinge", "squared_hinge",
})
_ONE_HOT_LOSSES = frozenset({"categorical_crossentropy", "categorical_hinge"})
_OPTIMIZERS = {
    "adam": "Adam", "adamw": "AdamW", "sgd": "SGD", "rmsprop": "RMSprop", "adagrad": "Adagrad",
    "adadelta": "Adadelta", "adamax": "Adamax", "nadam": "Nadam", "ftrl": "Ftrl",
    "lion": "Lion", "lamb": "Lamb",
}
# The layers whose state the training run learns from the training data (``adapt``) when
# the project gives none, as kbuilder's own training does.
_ADAPTED = {"Normalization": "mean", "Discretization": "bin_boundaries",
            "FillMissing": "fill_values"}
# Layers after which the data is still the input's, only cleaner (see runtime.data.adapt).
_PASS_THROUGH = frozenset({"FillMissing"})

@dataclass
class _TrainingPlan:
    """What a training script or notebook needs to know, decided once."""

    name: str
    data: Any  # DataSettings
    training: Any  # TrainingSettings
    model: _ModelFunctions
    adapted: list[tuple[str, str]] = field(default_factory=list)
    rows: RowEncoding | None = None  # the trained run's row encoder (model encoding)

    @classmethod
    def of(cls, project: Any, rows: RowEncoding | None = None) -> _TrainingPlan:
        from kbuilder.graph.settings import DataSettings

        data = project.data or DataSettings()
        training = project.training
        model = _model_functions(project.graph)
        if rows is not None and (data.kind != "csv" or data.table_encoding != "model"
                                 or rows.input_names
                                 != {n.name for n in project.graph.input_nodes()}):
            rows = None  # trained for other data or another model: learned from the data
        plan = cls(project.graph.name, data, training, model, rows=rows)
        plan.adapted = plan._layers_to_adapt()
        return plan

    # ------------------------------------------------------------------ facts
    @property
    def kind(self) -> str:
        from kbuilder.graph.settings import SKLEARN_DATASETS

        kind = self.data.kind
        if kind == "builtin":
            return "sklearn" if self.data.location in SKLEARN_DATASETS else "keras"
        return kind

    @property
    def data_path_kind(self) -> bool:
        return self.kind in ("csv", "npz", "images")

    @property
    def class_labels(self) -> bool:
        return self.training.loss in _CLASS_LOSSES

    @property
    def one_hot(self) -> bool:
        return self.training.loss in _ONE_HOT_LOSSES

    @property
    def has_validation(self) -> bool:
        return self.data.validation_split > 0

    @property
    def has_test(self) -> bool:
        return self.kind == "keras" or self.data.test_split > 0

    @property
    def data_description(self) -> str:
        d, name = self.data, self.data.location
        split = (f"{_percent(d.validation_split)} of the samples validate after each epoch "
                 f"and {_percent(d.test_split)} are held out for the final test")
        if self.kind == "sklearn":
            return f"the scikit-learn dataset {_quote_text(name)}; {split}"
        if self.kind == "keras":
            return (f"the Keras dataset {_quote_text(name)} (downloaded on first use) with "
                    f"its own test set; {_percent(d.validation_split)} of its training "
                    "samples validate after each epoch")
        what = {"csv": "the CSV file", "npz": "the NumPy file", "images": "the image folder"}
        return f"{what[self.kind]} {_quote_text(name)}; {split}"

    def _layers_to_adapt(self) -> list[tuple[str, str]]:
        """``(layer name, data expression)`` of the top-level layers that learn state from
        the data of a model input they take straight, or through a ``FillMissing``
        (adapted on the filled data), in the order a run adapts them."""
        graph = self.model.graph
        inputs = graph.input_nodes()
        if len(inputs) > 1 and not self.arrays_by_input:
            return []
        data_of: dict[str, str] = {}  # node id -> the expression of the data it gives
        for i, node in enumerate(inputs):
            data_of[node.id] = f"x_train[{i}]" if len(inputs) > 1 else "x_train"
        adapted = []
        for node in map(graph.node, graph.topological_order()):  # FillMissing first
            sources = [e.src for e in graph.edges_into(node.id)]
            if len(sources) != 1 or sources[0] not in data_of or node.shared_with:
                continue
            data = data_of[sources[0]]
            state = _ADAPTED.get(node.class_name or "")
            if state is not None and node.params.get(state) is None:
                adapted.append((node.name, data))
            if node.class_name in _PASS_THROUGH:
                data_of[node.id] = f"model.get_layer({_string(node.name)})({data})"
        return adapted

    @property
    def arrays_by_input(self) -> bool:
        """Whether the data gives one array per model input (by name): a NumPy file for a
        model of several inputs, or with arrays chosen for the inputs."""
        if self.kind == "csv" and self.data.table_encoding == "model":
            return True  # a table's raw numbers and category codes, by Input name
        return self.kind == "npz" and (len(self.model.graph.input_nodes()) > 1
                                       or bool(self.data.input_arrays)
                                       or bool(self.data.output_arrays))

    # ----------------------------------------------------------------- setup
    def setup_code(self, script: bool = True) -> str:
        from kbuilder.graph.codegen_data import _import_order

        section = self.data_section
        stdlib = {"import os", *section.stdlib}
        if script:
            stdlib.add("import argparse")
        if self.training.tensorboard:
            stdlib.add("import importlib.util")
        lines = sorted(stdlib, key=_import_order)
        lines += [
            "",
            "# Keras reads the backend when it is first imported, so choose it before that.",
            f'os.environ["KERAS_BACKEND"] = {_string(self.training.backend)}',
        ]
        device = self.training.device
        if device == "cpu":
            lines.append('os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # train on the CPU')
        else:
            lines.append(f'os.environ.setdefault("CUDA_VISIBLE_DEVICES", '
                         f'{_string(device.split(":")[1])})  # the GPU chosen in kbuilder')
        third = {"import keras", "from keras import layers", *section.third_party}
        lines += ["", *sorted(third, key=_import_order)]
        return "\n".join(lines)

    def settings_code(self) -> str:
        t = self.training
        shape = self.model.input_shapes[0] if self.model.input_shapes else ()
        if self.arrays_by_input:
            names = [n.name for n in self.model.graph.input_nodes()]
            shapes = {n: tuple(s) for n, s in zip(names, self.model.input_shapes, strict=True)}
            shape_line = ("# One sample of each model input (no batch dimension), by Input name.\n"
                          f"INPUT_SHAPES = {_literal(shapes)}")
        else:
            shape_line = (f"INPUT_SHAPE = {_literal(tuple(shape))}  "
                          "# one sample as the model takes it (no batch dimension)")
        lines = [
            "# Settings from the kbuilder project.",
            f"SEED = {t.seed}  # seed of the weights' initialisation, shuffling and dropout",
            f"EPOCHS = {t.epochs}",
            f"BATCH_SIZE = {t.batch_size}",
            f"LEARNING_RATE = {_literal(float(t.learning_rate))}",
            shape_line,
            *self.data_section.settings,
        ]
        return "\n".join(lines)

    # ------------------------------------------------------------------ data
    @functools.cached_property
    def data_section(self) -> Any:
        from kbuilder.graph.codegen_data import data_section

        inputs_count = len(self.model.graph.input_nodes())
        in_model = self.data.table_encoding == "model"  # several inputs, all from columns
        if self.kind == "csv" and ((inputs_count > 1 and not in_model) or any(
                role == "image_path" for _, role in self.data.roles)):
            # Not yet: the script would need the image-path column's streaming reader.
            raise CodegenError(
                "kbuilder cannot write a training script yet for a table that feeds "
                f"{'several inputs' if inputs_count > 1 else 'an image Input'} (a column of "
                "image paths), because generated scripts do not yet read the images such a "
                "column names; train it in kbuilder or with `kbuilder train`, and export "
                "the trained model instead.")
        inputs = ([n.name for n in self.model.graph.input_nodes()] if self.arrays_by_input
                  else None)
        outputs = ([n.name for n in self.model.graph.output_nodes()] if self.arrays_by_input
                   else None)
        return data_section(self.data, self.kind, self.training.loss if self.one_hot else None,
                            input_names=inputs, rows=self.rows, output_names=outputs)

    @property
    def targets_by_output(self) -> bool:
        """Whether the data gives one target per model output (a NumPy file)."""
        from kbuilder.graph.codegen_data import targets_by_output

        return self.arrays_by_input and targets_by_output(
            self.data, [n.name for n in self.model.graph.output_nodes()])

    def count(self, split: str) -> str:
        """The expression of the number of samples of a split (``train``, ``val``, ``test``)."""
        # Targets per output are a list (one array each): count the first input's rows.
        return f"len(x_{split}[0])" if self.targets_by_output else f"len(y_{split})"

    def data_definitions(self) -> list[str]:
        return list(self.data_section.definitions)

    def load_statement(self, path_expr: str = "DATA_PATH") -> str:
        call = f"load_data({path_expr})" if self.data_path_kind else "load_data()"
        fit = "fit_to_inputs" if self.arrays_by_input else "fit_to_input"
        lines = [f"(x_train, y_train), (x_val, y_val), (x_test, y_test) = {call}"]
        if not self.data_section.streams:
            lines.append(f"x_train, x_val, x_test = ({fit}(x) for x in "
                         "(x_train, x_val, x_test))")
        if self.targets_by_output:
            lines.append("y_train, y_val, y_test = (fit_targets(y) for y in "
                         "(y_train, y_val, y_test))")
        if self.one_hot and self.targets_by_output:
            lines += ["for i, targets in enumerate(zip(y_train, y_val, y_test, strict=True)):",
                      '    if targets[0].dtype.kind in "iu":  # class ids; values stay values',
                      "        y_train[i], y_val[i], y_test[i] = one_hot(*targets)"]
        elif self.one_hot:
            lines.append("y_train, y_val, y_test = one_hot(y_train, y_val, y_test)")
        if self.data_section.streams:  # image files: read batch by batch while training
            lines += [
                "train_batches = ImageBatches(x_train, y_train, shuffle=True)",
                "val_batches = ImageBatches(x_val, y_val) if len(x_val) else None",
                "test_batches = ImageBatches(x_test, y_test)",
            ]
        lines.append('print("Samples for training, validation and test:", '
                     f"({self.count('train')}, {self.count('val')}, {self.count('test')}))")
        return "\n".join(lines)

    def mismatch_lines(self) -> list[str]:
        """A clear stop when the data cannot feed the model as it is."""
        graph = self.model.graph
        inputs = [n.name for n in graph.input_nodes()]
        if len(inputs) > 1 and not self.arrays_by_input:
            message = (
                f"This model takes {len(inputs)} inputs ({', '.join(inputs)}), but the data "
                "gives one array per sample. Edit load_data() to give one array per input, "
                "then remove this stop."
            )
        elif self.model.output_count > 1 and not self.targets_by_output:
            message = (
                f"This model has {self.model.output_count} outputs, but the data gives one "
                "target per sample. Edit load_data() to give one target array per output, "
                "then remove this stop."
            )
        else:
            return []
        chunks = textwrap.wrap(message, 72)
        literals = [_string(c + " ") for c in chunks[:-1]] + [_string(chunks[-1])]
        return ["raise SystemExit(", *(INDENT + lit for lit in literals), ")"]

    # ----------------------------------------------------------------- model
    def prepare_model_lines(self) -> list[str]:
        lines = []
        if self.training.mixed_precision:
            policy = "mixed_float16" if self.training.device.startswith("gpu") else "mixed_bfloat16"
            lines.append(f'keras.config.set_dtype_policy("{policy}")  # mixed precision')
        lines.append("model = build_model()")
        if self.adapted:
            lines.append("# Layers without given statistics learn them from the training data.")
            # Streamed images: the first 2048 training images, as kbuilder adapts them.
            streamed = "fit_to_input(read_images(x_train[:2048]))"
            lines += [f"model.get_layer({_string(n)}).adapt("
                      f"{streamed if self.data_section.streams else data})"
                      for n, data in self.adapted]
        return lines

    def compile_lines(self) -> list[str]:
        t = self.training
        optimizer = _OPTIMIZERS[t.optimizer]
        return [
            "model.compile(",
            f"    optimizer=keras.optimizers.{optimizer}(learning_rate=LEARNING_RATE),",
            f"    loss={_string(t.loss)},",
            f"    metrics={_literal(self.metrics)},",
            ")",
        ]

    @property
    def metrics(self) -> list[Any]:
        """The metrics as compile takes them: one list per output when there are several
        (as kbuilder's training gives them)."""
        if self.model.output_count > 1:
            return [list(self.training.metrics) for _ in range(self.model.output_count)]
        return list(self.training.metrics)

    def callbacks_definition(self) -> str:
        t = self.training
        monitor = "val_loss" if self.has_validation else "loss"
        calls = ["keras.callbacks.TerminateOnNaN()"]
        if t.early_stopping is not None:
            options = {"monitor": monitor, "patience": 3, "restore_best_weights": True,
                       **t.early_stopping}
            calls.append(_callback("EarlyStopping", [], options))
        if t.reduce_lr_on_plateau is not None:
            options = {"monitor": monitor, "factor": 0.5, "patience": 2,
                       **t.reduce_lr_on_plateau}
            calls.append(_callback("ReduceLROnPlateau", [], options))
        if t.checkpoint is not None:
            options = {"monitor": monitor, "save_best_only": True, **t.checkpoint}
            calls.append(_callback("ModelCheckpoint", ["checkpoint_path(output)"], options))
        body = ["def make_callbacks(output):",
                '    """The callbacks set in kbuilder."""',
                "    callbacks = ["]
        for call in calls:
            lines = _wrapped("", call, depth=2)
            body += [INDENT * 2 + line for line in lines[:-1]] + [INDENT * 2 + lines[-1] + ","]
        body.append("    ]")
        if t.tensorboard:
            body += [
                '    if importlib.util.find_spec("tensorboard") is None:',
                '        print("TensorBoard is not installed (pip install tensorboard), so '
                'no logs are written.")',
                "    else:",
                "        callbacks.append(keras.callbacks.TensorBoard(log_dir=logs_folder(output)))",
            ]
        body.append("    return callbacks")
        parts = []
        if t.checkpoint is not None:
            parts.append(
                "def checkpoint_path(output):\n"
                '    """Where the checkpoint callback keeps the best model: next to the '
                'output."""\n'
                '    return os.path.splitext(output)[0] + ".best.keras"'
            )
        if t.tensorboard:
            parts.append(
                "def logs_folder(output):\n"
                '    """Where TensorBoard logs go: `logs` next to the output (run '
                '`tensorboard --logdir` on it)."""\n'
                '    return os.path.join(os.path.dirname(output) or ".", "logs")'
            )
        parts.append("\n".join(body))
        return "\n\n\n".join(parts)

    def fit_lines(self, epochs: str, output: str) -> list[str]:
        lines = self.compile_lines()
        if self.data_section.streams:
            data = ["    train_batches,", "    validation_data=val_batches,"]
        else:
            data = ["    x_train,", "    y_train,",
                    f"    validation_data=(x_val, y_val) if {self.count('val')} else None,"]
        lines += [
            "model.fit(",
            *data,
            f"    epochs={epochs},",
            *([] if self.data_section.streams else ["    batch_size=BATCH_SIZE,"]),
            f"    callbacks=make_callbacks({output}),",
            ")",
        ]
        return lines

    def evaluate_lines(self, output: str) -> list[str]:
        lines = []
        checkpoint = self.training.checkpoint
        if checkpoint is not None and checkpoint.get("save_best_only", True):
            lines += [
                "# Go on with the best epoch's weights (the checkpoint), not the last epoch's.",
                f"if os.path.exists(checkpoint_path({output})):",
                f"    model.load_weights(checkpoint_path({output}))",
            ]
        if self.has_test:
            data = ("test_batches," if self.data_section.streams
                    else "x_test, y_test, batch_size=BATCH_SIZE,")
            lines += [
                f"if {self.count('test')}:",
                f"    results = model.evaluate({data} return_dict=True, verbose=0)",
            ]
            lines += [
                "    for name, value in results.items():",
                '        print(f"test {name}: {value:.4f}")',
            ]
        lines += [
            f"model.save({output})",
            f'print(f"Saved the trained model to {{{output}}}")',
        ]
        return lines

    # ---------------------------------------------------------------- script
    def main_definition(self) -> str:
        lines = [
            "def main():",
            "    parser = argparse.ArgumentParser(",
            f"        description={_string('Train the model ' + self.name + ' as set up in kbuilder.')}",
            "    )",
            '    parser.add_argument("--epochs", type=int, default=EPOCHS, '
            'help="default: %(default)s")',
        ]
        predicts = self.data_section.predicts
        if predicts:  # -o names the predictions too
            lines += [
                "    parser.add_argument(",
                '        "-o", "--output",',
                '        help="where to save the trained model (default: model.keras), or with '
                '--predict "',
                '        "the predictions (default: RAW.predictions.csv)",',
                "    )",
            ]
        else:
            lines.append('    parser.add_argument("--output", default="model.keras", '
                         'help="where to save the trained model")')
        if self.data_path_kind:
            lines.append('    parser.add_argument("--data", default=DATA_PATH, '
                         'help="default: %(default)s")')
        if predicts:
            lines += [
                '    parser.add_argument("--predict", metavar="RAW.csv",',
                '                        help="predict on raw rows of a table file with a '
                'trained model instead of training")',
                '    parser.add_argument("--model", default=TRAINED_MODEL,',
                '                        help="the trained model --predict uses (default: '
                '%(default)s)")',
            ]
        lines.append("    args = parser.parse_args()")
        if predicts:
            lines += [INDENT + line for line in self.predict_lines()]
            lines.append('    args.output = args.output or "model.keras"')
        lines += ["", "    keras.utils.set_random_seed(SEED)"]
        body = [
            *self.mismatch_lines(),
            *self.load_statement("args.data").splitlines(),
            *self.prepare_model_lines(),
            "model.summary()",
            *self.fit_lines("args.epochs", "args.output"),
            *self.evaluate_lines("args.output"),
        ]
        lines += [INDENT + line if line else "" for line in body]
        return "\n".join(lines)

    def predict_lines(self) -> list[str]:
        """``main``'s ``--predict``: the trained model's predictions on raw rows."""
        return [
            "if args.predict:",
            "    if not (NUMERIC_COLUMNS or VOCABULARIES):  # no trained run's encoder: the data's",
            "        load_data(args.data)",
            "    predictions = predict_csv(load_trained(args.model), args.predict)",
            '    output = args.output or os.path.splitext(args.predict)[0] + ".predictions.csv"',
            "    save_csv(predictions, output)",
            '    print(f"Wrote {len(predictions)} predictions to {output}")',
            "    return",
        ]

    # -------------------------------------------------------------- notebook
    def notebook_intro(self) -> str:
        t = self.training
        return "\n".join([
            f"# Training {_markdown_text(self.name)}",
            "",
            "Written out by kbuilder. Run the cells in order to build, train, evaluate and "
            "save the model as set up in the project.",
            "",
            f"- **Data:** {_markdown_text(self.data_description)}.",
            f"- **Training:** {t.optimizer} (learning rate {t.learning_rate:g}), loss "
            f"`{t.loss}`, metrics {', '.join(f'`{m}`' for m in t.metrics) or 'none'}; "
            f"{t.epochs} epoch{'s' if t.epochs != 1 else ''} of batches of {t.batch_size}; "
            f"seed {t.seed}.",
            f"- **Backend:** {t.backend} on {t.device}. Keras reads the backend when it is "
            "first imported: restart the kernel after changing it.",
        ])

    def notebook_cells(self) -> list[tuple[str, str]]:
        """``(cell type, source)`` pairs of the notebook."""
        data_code = "\n\n\n".join(self.data_definitions()) + "\n\n\n" + "\n".join(
            [*self.mismatch_lines(), self.load_statement()]
        )
        return [
            ("markdown", self.notebook_intro()),
            ("code", self.setup_code(script=False) + "\n\n" + self.settings_code()
             + '\nOUTPUT = "model.keras"  # where the trained model is saved'
             + "\n\nkeras.utils.set_random_seed(SEED)"),
            ("markdown", "## Data\n\n" + _markdown_text(_sentence(self.data_description))),
            ("code", data_code),
            ("markdown", "## Model\n\n`build_model()` builds the model layer by layer with "
             "Keras's Functional API."),
            ("code", "\n\n\n".join(self.model.definitions) + "\n\n\n"
             + "\n".join([*self.prepare_model_lines(), "model.summary()"])),
            ("markdown", "## Training"),
            ("code", self.callbacks_definition() + "\n\n\n"
             + "\n".join(self.fit_lines("EPOCHS", "OUTPUT"))),
            ("markdown", "## Evaluation and saving"),
            ("code", "\n".join(self.evaluate_lines("OUTPUT"))),
            *(self.predict_cells() if self.data_section.predicts else []),
        ]

    def predict_cells(self) -> list[tuple[str, str]]:
        return [
            ("markdown", "## Predictions on raw rows\n\n`predict_csv` reads a table file laid "
             "out like the training data (the target column may be left out) and gives the "
             "model's prediction for each row; `encode_rows` is the one step outside the "
             "model, from raw rows to its inputs (category codes)."),
            ("code", "\n".join([
                "RAW_ROWS = DATA_PATH  # a table file of rows to predict on",
                "predictions = predict_csv(model, RAW_ROWS)",
                'save_csv(predictions, "predictions.csv")',
                "predictions.head()",
            ])),
        ]


def _callback(name: str, args: list[str], options: dict[str, Any], extra: str = "") -> str:
    items = list(args) + [
        f"{k}={_literal(v)}" for k, v in options.items() if str(k).isidentifier()
    ]
    if extra:
        items.append(extra)
    return f"keras.callbacks.{name}({', '.join(items)})"


def _percent(fraction: float) -> str:
    return f"{fraction * 100:g} %"


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


def _markdown_text(text: str) -> str:
    """Text that Markdown shows as it is (one line, markup characters escaped)."""
    text = " ".join(text.split())
    return re.sub(r"([\\`*_\[\]|<>])", r"\\\1", text)

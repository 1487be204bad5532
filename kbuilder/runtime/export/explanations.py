"""Why a conversion failed, in words: the missing package, the operators or layers a format
cannot express, and what to do instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from kbuilder.runtime.export.report import LAYER_ADVICE, PACKAGES, ExportError
from kbuilder.runtime.export.source import Source, all_layers, on_tensorflow
from kbuilder.runtime.export_formats import ExportFormat


def conversion_error(exc: BaseException, spec: ExportFormat, source: Source) -> ExportError:
    """A sentence a domain expert can act on, from a converter's error."""
    package = missing_package(exc)
    if package:
        return ExportError(f"Exporting to {spec.title} needs the Python package '{package}', "
                           f"which is not installed. Install it with: pip install {package}")
    text = str(exc)
    ops = _operators_in_text(text)
    names, classes = layers_in_text(text, source.model)
    if not names and ops:
        names, classes = _layers_running(source, ops)
    if names or ops:
        return not_expressible(spec, names, classes, ops)
    from kbuilder.graph.shapes import explain_exception

    message, _ = explain_exception(exc, [])
    return ExportError(f"The export to {spec.title} failed: {message}")


def not_expressible(
    spec: ExportFormat, names: list[str], classes: list[str], ops: list[str]
) -> ExportError:
    op_text = (f": it has no equivalent for the TensorFlow operation{'s' if len(ops) > 1 else ''}"
               f" {', '.join(ops)}" if ops else "")
    if names:
        listed = ", ".join(f"'{n}' ({c})" for n, c in zip(names, classes, strict=True))
        head = (f"{spec.title} cannot express the layer{'s' if len(names) > 1 else ''} "
                f"{listed}{op_text}.")
    else:
        head = f"{spec.title} cannot express an operation of this model{op_text}."
    advice = next((LAYER_ADVICE[c] for c in classes if c in LAYER_ADVICE), None)
    tail = (f" Choose another format, or {advice}." if advice
            else " Choose another format, or replace the layer.")
    return ExportError(head + tail, names)


def missing_package(exc: BaseException) -> str | None:
    for error in _chain(exc):
        if not isinstance(error, ImportError):
            continue
        module = getattr(error, "name", None) or ""
        match = re.search(r"No module named '([\w.]+)'|requires the ([\w.]+) module", str(error))
        if match:
            module = match.group(1) or match.group(2)
        top = module.split(".")[0]
        if top:
            return PACKAGES.get(top, top.replace("_", "-"))
    return None


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _operators_in_text(text: str) -> list[str]:
    """Operator names in a converter's error: ``'tf.StringLower' op``, ``No conversion
    rule found for operations: A, B``, ``No Op registered for X``, ``Conversion failed for
    Loop-15``."""
    found: list[str] = []
    patterns = [r"'tf\.(\w+)' op", r"No Op registered for (\w+)",
                r"Conversion (?:is )?failed for:? ([\w-]+)",
                r"-- (\w+) with a message"]
    for pattern in patterns:
        found += re.findall(pattern, text)
    for group in re.findall(r"No conversion rule found for operations: ([^\n]+)", text):
        found += [op.strip() for op in group.split(",")]
    cleaned = [re.sub(r"-\d+$", "", op) for op in found if op]
    return sorted(set(cleaned))


def layers_in_text(text: str, model: Any) -> tuple[list[str], list[str]]:
    """The model's layers named by TensorFlow scopes in ``text``, with their class names.

    Inside a traced function TensorFlow numbers every scope (layer ``lstm`` runs in
    ``model_1/lstm_1/...``, layer ``dense_1`` in ``dense_1_1/``), so a segment is first
    read without its number.
    """
    layers = dict(all_layers(model))
    names: list[str] = []
    for segment in re.findall(r"([\w.\-]+)/", text):
        for candidate in (re.sub(r"_\d+$", "", segment), segment):
            if candidate in layers:
                if candidate not in names:
                    names.append(candidate)
                break
    return names, [type(layers[n]).__name__ for n in names]


def _layers_running(source: Source, ops: list[str]) -> tuple[list[str], list[str]]:
    """The layers whose traced TensorFlow graph holds the operations ``ops`` (for
    converters that name the operation but not where it is)."""
    if not on_tensorflow():
        return [], []
    graph = source.trace().function.get_concrete_function().graph.as_graph_def()
    nodes = [*graph.node, *(n for f in graph.library.function for n in f.node_def)]
    wanted = set(ops)
    text = "\n".join(n.name for n in nodes if n.op in wanted)
    return layers_in_text(text, source.model)

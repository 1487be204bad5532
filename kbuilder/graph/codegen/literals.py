"""Values as Python source: literals, strings, prose quotes, docstrings, import order.

Every room of the code generator writes values through these, so that one value is
always written the same way (the output is deterministic).
"""

from __future__ import annotations

from typing import Any

from kbuilder.graph.errors import GraphError

LINE_LENGTH = 99
INDENT = "    "


class CodegenError(GraphError):
    """The graph cannot be written as code (it has problems); names the first node."""



class SourceCode(str):
    """Code written as it is where a value would be (``hp["dense.units"]`` in a sweep
    script)."""


def literal(value: Any) -> str:
    """Python source for a JSON-like value (tuples stay tuples)."""
    if isinstance(value, SourceCode):
        return str(value)
    if value is None or isinstance(value, bool | int):
        return repr(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return f'float("{value}")'
        return repr(value)
    if isinstance(value, str):
        return string(value)
    if isinstance(value, tuple):
        items = [literal(v) for v in value]
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    if isinstance(value, list):
        return f"[{', '.join(literal(v) for v in value)}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in value.items()) + "}"
    raise CodegenError(f"A value of type {type(value).__name__} cannot be written as code.")


_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def string(text: str) -> str:
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


def quote_text(name: str) -> str:
    """A name inside prose (docstrings, comments): quoted and escaped, one line."""
    return f'"{_escape(name)}"'


def docstring(summary: str, body: str = "") -> str:
    text = summary if not body else f"{summary}\n\n{body}"
    return f'"""{text}\n"""' if body else f'"""{text}"""'




def import_order(line: str) -> tuple[int, str]:
    """isort's order: ``import x`` lines before ``from x import y``, each by module name."""
    return (line.startswith("from "), line.split()[1].lower())


def set_literal(values: tuple[str, ...]) -> str:
    """A set of plain strings as source, sorted (the same set, the same text)."""
    return "{" + ", ".join(f'"{v}"' for v in sorted(values)) + "}"

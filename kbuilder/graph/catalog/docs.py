"""Reading Keras docstrings: dedenting, the `Args:` entries, the first sentence."""

from __future__ import annotations

import functools
import re


def dedent_doc(doc: str) -> str:
    """Dedent a docstring whose first line is not indented.

    Unlike `inspect.cleandoc`, lines at column 0 inside the body (Keras puts some code
    fences there) do not stop the rest from being dedented.
    """
    lines = doc.expandtabs().splitlines()
    if not lines:
        return ""
    indents = [len(line) - len(line.lstrip()) for line in lines[1:] if line.strip()]
    indents = [i for i in indents if i > 0]
    margin = min(indents) if indents else 0
    body = [line[margin:] if line[:margin].isspace() else line.lstrip() for line in lines[1:]]
    return "\n".join([lines[0].strip(), *body]).strip()


_ARG_LINE = re.compile(r"^\*{0,2}([A-Za-z_][A-Za-z0-9_]*)\s*(?:\([^)]*\))?:(?:\s+(.*))?$")


@functools.cache
def class_arg_docs(klass: type) -> dict[str, str]:
    doc = klass.__dict__.get("__doc__")
    return _parse_args_section(dedent_doc(doc)) if isinstance(doc, str) else {}


def _parse_args_section(doc: str) -> dict[str, str]:
    """The `Args:` entries of a Google-style docstring, whitespace-normalised."""
    entries: dict[str, str] = {}
    lines = doc.splitlines()
    start = next(
        (i for i, line in enumerate(lines) if line.strip() in ("Args:", "Arguments:")), None
    )
    if start is None:
        return entries
    header_indent = len(lines[start]) - len(lines[start].lstrip())
    entry_indent = None
    current = None
    for line in lines[start + 1 :]:
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if indent <= header_indent:
            break
        if entry_indent is None:
            entry_indent = indent
        match = _ARG_LINE.match(line.strip())
        # Keras has a few entries indented one space off; continuations are deeper.
        if match and abs(indent - entry_indent) <= 1:
            current = match.group(1)
            entries[current] = match.group(2) or ""
        elif indent < entry_indent:
            break
        elif current is not None:
            entries[current] += " " + line.strip()
    return {k: " ".join(v.split()) for k, v in entries.items()}


# "e.g." or "a.k.a." end in a period without ending the sentence.
_ABBREVIATION = re.compile(r"(?:\b\w\.){2,}$|\b(?:al|etc|vs|approx)\.$")


def first_sentence(doc: str) -> str:
    paragraph = " ".join(doc.split("\n\n", 1)[0].split())
    for match in re.finditer(r"[.!?](?=\s|$)", paragraph):
        candidate = paragraph[: match.end()]
        if not _ABBREVIATION.search(candidate):
            return re.sub(r"\.{2,}$", ".", candidate)
    return paragraph



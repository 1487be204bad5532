"""Why a Keras model cannot be opened: the errors, one record per layer in the way, and
the one-line message that names them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from kbuilder.graph.errors import GraphError

# How many other problem layers a one-line message names.
MAX_NAMED = 5


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
class Problem:
    """Why one layer cannot be imported."""

    layer: str
    class_name: str
    message: str
    code: bool = False  # the layer carries Python code (refused unless trusted)


def problems_error(problems: list[Problem]) -> ModelImportError:
    """One line: the first problem in full, then the names of the other layers."""
    unique = list(dict.fromkeys(problems))
    first, others = unique[0], unique[1:]
    message = first.message
    error = NeedsTrustError if all(p.code for p in unique) else ModelImportError
    if others:
        named = ", ".join(f"{quoted(p.layer)} ({p.class_name})" for p in others[:MAX_NAMED])
        more = f" and {len(others) - MAX_NAMED} more" if len(others) > MAX_NAMED else ""
        count = f"{len(others)} more layer{'s' if len(others) != 1 else ''}"
        message += f" Also {count} cannot be opened: {named}{more}."
    return error(message, [p.message for p in unique])


def quoted(name: Any) -> str:
    """A name in quotes for a message, control characters escaped to keep it one line."""
    text = str(name)
    if not text.isprintable():
        text = text.encode("unicode_escape").decode("ascii")
    return f"'{text}'"


def custom_class_message(layer: str, class_name: str, what: str = "class") -> str:
    return (
        f"Layer {quoted(layer)} uses the custom {what} {quoted(class_name)}, which kbuilder does not "
        "know; kbuilder opens models made of built-in Keras layers. Rebuild that part "
        "with built-in layers where the model is made, and save the model again."
    )

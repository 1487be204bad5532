"""Commands, compound commands and the undo/redo ``History`` that keeps them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kbuilder.graph.errors import HistoryError
from kbuilder.graph.events import EventGroup


class Command:
    """An undoable edit. Subclasses set ``text`` (shown as "Undo <text>")."""

    text = "edit"

    def do(self) -> None:
        raise NotImplementedError

    def undo(self) -> None:
        raise NotImplementedError


class MacroCommand(Command):
    """Several commands done in order and undone in reverse order, as one edit.

    Children are constructed before ``do`` but may be built lazily through ``build``,
    for edits whose later steps depend on the effect of the earlier ones.
    """

    def __init__(self, text: str, children: Sequence[Command] = ()):
        self.text = text
        self.children = list(children)

    def do(self) -> None:
        done: list[Command] = []
        try:
            for child in self.children:
                child.do()
                done.append(child)
        except Exception:
            for child in reversed(done):
                child.undo()
            raise

    def undo(self) -> None:
        for child in reversed(self.children):
            child.undo()


class DeferredCommand(Command):
    """A command built when it is done (its checks need the earlier steps' effects)."""

    def __init__(self, build: Any):
        self.build, self.command = build, None

    def do(self) -> None:
        # Built once: a redo must recreate the same nodes and edges (later commands in the
        # history refer to their ids).
        if self.command is None:
            self.command = self.build()
        self.command.do()

    def undo(self) -> None:
        assert self.command is not None
        self.command.undo()


class History:
    """The undo/redo stack of one project.

    Events: ``changed()`` after every push, undo, redo, clear or clean-point change.
    """

    def __init__(self, limit: int = 1000):
        self._done: list[Command] = []
        self._undone: list[Command] = []
        self._clean_index: int | None = 0
        self._busy = False
        self._limit = limit
        self.events = EventGroup("changed")

    def push(self, command: Command) -> Command:
        """Do ``command`` and record it. If ``do`` raises, nothing is recorded."""
        with self._guard("push"):
            command.do()
        self._done.append(command)
        self._undone.clear()
        if self._clean_index is not None and self._clean_index > len(self._done) - 1:
            self._clean_index = None  # the clean state can no longer be reached
        if len(self._done) > self._limit:
            self._done.pop(0)
            self._clean_index = None if self._clean_index in (None, 0) else self._clean_index - 1
        self.events.changed.emit()
        return command

    def undo(self) -> None:
        if not self._done:
            raise HistoryError("There is nothing to undo.")
        with self._guard("undo"):
            command = self._done[-1]
            command.undo()
        self._undone.append(self._done.pop())
        self.events.changed.emit()

    def redo(self) -> None:
        if not self._undone:
            raise HistoryError("There is nothing to redo.")
        with self._guard("redo"):
            command = self._undone[-1]
            command.do()
        self._done.append(self._undone.pop())
        self.events.changed.emit()

    @property
    def can_undo(self) -> bool:
        return bool(self._done) and not self._busy

    @property
    def can_redo(self) -> bool:
        return bool(self._undone) and not self._busy

    @property
    def undo_text(self) -> str:
        return self._done[-1].text if self._done else ""

    @property
    def redo_text(self) -> str:
        return self._undone[-1].text if self._undone else ""

    @property
    def is_clean(self) -> bool:
        return self._clean_index == len(self._done)

    def mark_clean(self) -> None:
        self._clean_index = len(self._done)
        self.events.changed.emit()

    def clear(self) -> None:
        self._done.clear()
        self._undone.clear()
        self._clean_index = 0
        self.events.changed.emit()

    def _guard(self, what: str) -> _Guard:
        if self._busy:
            # A view reacting to an event must not start another edit mid-edit (Ryven).
            raise HistoryError(f"Cannot {what} while another edit is in progress.")
        return _Guard(self)


class _Guard:
    def __init__(self, history: History):
        self.history = history

    def __enter__(self) -> None:
        self.history._busy = True

    def __exit__(self, *exc: object) -> None:
        self.history._busy = False

"""A minimal observer mechanism for the Qt-free model (napari-style named events)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("kbuilder.events")


class Signal:
    """A list of callbacks called in connection order when the signal is emitted."""

    def __init__(self, name: str):
        self.name = name
        self._callbacks: list[Callable[..., Any]] = []

    def connect(self, callback: Callable[..., Any]) -> Callable[..., Any]:
        if callback not in self._callbacks:
            self._callbacks.append(callback)
        return callback

    def disconnect(self, callback: Callable[..., Any]) -> None:
        if callback in self._callbacks:
            self._callbacks.remove(callback)

    def emit(self, *args: Any) -> None:
        # Iterate over a copy: a callback may disconnect itself. An observer that fails
        # is logged, not propagated: a broken view must not leave the model half-edited.
        for callback in list(self._callbacks):
            try:
                callback(*args)
            except Exception:
                log.exception("Observer %r of %s failed", callback, self.name)

    def __repr__(self) -> str:
        return f"<Signal {self.name} ({len(self._callbacks)} connected)>"


class EventGroup:
    """A namespace of signals, e.g. ``graph.events.node_added.connect(f)``."""

    def __init__(self, *names: str):
        for name in names:
            setattr(self, name, Signal(name))

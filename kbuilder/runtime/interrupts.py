"""Ctrl+C while a long job runs: counted, not raised.

A ``KeyboardInterrupt`` raised in the middle of reading a worker message or inside one of
Optuna's trial threads leaves things half done; both the CLI's job loop and a sweep would
rather count the presses and act on them at a safe point (once: stop; twice: kill).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any


class CountInterrupts:
    """Within ``with``, SIGINT only increments ``count`` (and calls ``on_press(count)``).

    The handler can only be installed from the main thread; elsewhere the block runs with
    the signal handling unchanged.
    """

    def __init__(self, on_press: Callable[[int], Any] | None = None) -> None:
        self.count = 0
        self._on_press = on_press
        self._previous: Any = None

    def __enter__(self) -> CountInterrupts:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.count += 1
        if self._on_press is not None:
            self._on_press(self.count)

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

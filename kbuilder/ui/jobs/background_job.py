"""Background work in the window: the one way the UI runs something off the GUI thread.

``QtBackgroundJob`` runs one function at a time in a thread and hands its result back on
the GUI thread; a job started while another runs makes the older result outdated (it is
dropped when it arrives), so a panel always shows what the latest state gives. The data
panel's preview and fit, the model's save, the code view's generation and the Train tab's
pre-flight check all run through it. (Worker processes have their own idiom,
``worker_job.QtWorkerJob``; training runs go through ``run_controller``.)

No numpy here: this module is imported when the window starts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, Signal

# Progress reports from a job's thread: at most one per this many seconds.
PROGRESS_INTERVAL = 0.1

Progress = Callable[[str, int, "int | None"], None]


class _Relay(QObject):
    """Carries a job's messages to the GUI thread (queued: it lives on the GUI thread)."""

    done = Signal(int, object)
    progressed = Signal(int, str, int, object)


class QtBackgroundJob(QObject):
    """Runs ``work(progress)`` in a thread; only the latest job's result is delivered.

    Signals:
        finished(result): the latest job ended; ``result`` is what ``work`` returned, or
            the exception it raised.
        progressed(stage, done, total): the latest job reports progress (``total`` may be
            ``None``); at most about ten a second.
    """

    finished = Signal(object)
    progressed = Signal(str, int, object)

    def __init__(self, name: str, parent: QObject | None = None):
        super().__init__(parent)
        self.name = name
        self._generation = 0
        self._busy = False
        # No parent: a thread may outlive the panel; the relay stays alive with the thread
        # and its connection to a deleted job is simply dropped.
        self._relay = _Relay()
        self._relay.done.connect(self._on_done)
        self._relay.progressed.connect(self._on_progress)

    @property
    def busy(self) -> bool:
        """Whether the latest job is still running."""
        return self._busy

    def start(self, work: Callable[[Progress], Any]) -> None:
        self._generation += 1
        self._busy = True
        generation, relay = self._generation, self._relay
        last = [0.0]

        def progress(stage: str, done: int, total: int | None) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_INTERVAL or (total is not None and done >= total):
                last[0] = now
                _emit(relay.progressed, generation, stage, done, total)

        def run() -> None:
            try:
                result = work(progress)
            except Exception as exc:  # handed to the panel, which says what went wrong
                result = exc
            _emit(relay.done, generation, result)

        threading.Thread(target=run, name=f"kbuilder-{self.name}", daemon=True).start()

    def cancel(self) -> None:
        """Forget the running job: its result will be dropped."""
        self._generation += 1
        self._busy = False

    def wait(self, timeout: float = 60.0) -> bool:
        """Process events until the latest job has delivered its result (tests, selftest)."""
        deadline = time.monotonic() + timeout
        while self._busy and time.monotonic() < deadline:
            QCoreApplication.processEvents()
            time.sleep(0.005)
        QCoreApplication.processEvents()
        return not self._busy

    def _on_done(self, generation: int, result: object) -> None:
        if generation != self._generation:
            return
        self._busy = False
        self.finished.emit(result)

    def _on_progress(self, generation: int, stage: str, done: int, total: object) -> None:
        if generation == self._generation:
            self.progressed.emit(stage, done, total)


def _emit(signal: Any, *args: Any) -> None:
    try:
        signal.emit(*args)
    except RuntimeError:  # the application is shutting down
        pass


__all__ = ["QtBackgroundJob"]

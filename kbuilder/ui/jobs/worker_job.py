"""One request (evaluation, prediction, export) run in a worker process, watched from Qt.

Starting a worker blocks until the new process dials back (a fraction of a second, more on
a busy machine), so that part runs in a plain thread; afterwards a ``QTimer`` on the GUI
thread polls the job's events without waiting (``TrainingRun.next_event(0)``). The window
therefore never waits on a worker, and a worker that dies becomes a ``failed`` signal with
the runtime's reason.

The worker is kept after the job, so the next request on the same backend (a second
export of the same model, say) skips the backend's import; ``shutdown()`` ends it.
"""

from __future__ import annotations

import threading
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from kbuilder.runtime import protocol as p
from kbuilder.runtime.client import TrainingRun, Worker, WorkerError

POLL_MS = 50
# Events handled per timer tick at most: a burst of log lines must not hold the GUI.
EVENTS_PER_TICK = 50


class QtWorkerJob(QObject):
    """Runs one request at a time on a (kept) worker.

    Signals:
        event_received(message): any message of the job (log lines, ready, ...).
        succeeded(message): the job's result (``Evaluated``, ``Exported``, ``Predicted``).
        failed(reason): the job failed or its worker could not start or died.
    """

    event_received = Signal(object)
    succeeded = Signal(object)
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.worker: Worker | None = None
        self.job: TrainingRun | None = None
        self._starting: threading.Thread | None = None
        self._start_error: str | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._poll)

    @property
    def busy(self) -> bool:
        return self._timer.isActive()

    def start(self, request: p.Message, backend: str, device: str = "cpu") -> None:
        """Send ``request`` to a worker of ``backend``; the outcome comes as a signal.

        Raises:
            RuntimeError: a job is already running (the views disable their buttons).
        """
        if self.busy:
            raise RuntimeError("A worker job is already running.")
        worker = self.worker
        if worker is not None and (worker.backend, worker.device) != (backend, device):
            self._retire(worker)
            worker = None
        self.job, self._start_error = None, None
        self._starting = threading.Thread(
            target=self._start_in_background, args=(worker, request, backend, device),
            name="kbuilder-worker-start", daemon=True)
        self._starting.start()
        self._timer.start()

    def _start_in_background(self, worker: Worker | None, request: p.Message, backend: str,
                             device: str) -> None:
        try:
            if worker is None or not worker.alive:
                worker = Worker(backend, device, yield_to_window=True)
            self.worker = worker
            self.job = TrainingRun(worker, request)  # type: ignore[arg-type]
        except (WorkerError, OSError) as exc:
            self._start_error = str(exc)

    def _poll(self) -> None:
        if self._starting is not None:
            if self._starting.is_alive():
                return
            self._starting = None
            if self._start_error is not None or self.job is None:
                self._finish_failed(self._start_error or "The worker could not be started.")
                return
        job = self.job
        assert job is not None
        for _ in range(EVENTS_PER_TICK):
            message = job.next_event(0)
            if message is None:
                return
            self.event_received.emit(message)
            if job.result is not None:
                self._timer.stop()
                if isinstance(job.result, p.Failed):
                    self._finish_failed(job.result.reason)
                else:
                    self.succeeded.emit(job.result)
                return

    def _finish_failed(self, reason: str) -> None:
        self._timer.stop()
        worker = self.worker
        if worker is not None and not worker.alive:
            self.worker = None
        self.failed.emit(reason)

    def cancel(self) -> None:
        """End a running job now: its worker is killed (exports and evaluations cannot
        stop half-way)."""
        if not self.busy:
            return
        self._timer.stop()
        if self._starting is not None:
            self._starting.join()
            self._starting = None
        if self.worker is not None:
            self.worker.kill()
            self.worker = None

    def shutdown(self) -> None:
        """Cancel what runs and end the kept worker (in the background: a worker takes a
        moment to exit)."""
        self.cancel()
        if self.worker is not None:
            self._retire(self.worker)
            self.worker = None

    @staticmethod
    def _retire(worker: Any) -> None:
        threading.Thread(target=worker.shutdown, name="kbuilder-worker-shutdown",
                         daemon=True).start()

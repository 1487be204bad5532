"""The bridge between a training worker and the window: typed Qt signals on the GUI thread.

Everything that can block — starting a worker process, waiting for it to dial in and
import its backend, shutting it down — runs on one background thread, in order, so the
pool of warm workers is never touched by two threads at once. The GUI thread only polls
the running ``TrainingRun`` with ``next_event(timeout=0)`` from a timer, a bounded number
of messages per tick, so a burst of events never stalls the window; the worker already
coalesces batch messages to about 20 per second.
"""

from __future__ import annotations

import importlib.util
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from kbuilder.graph.runs import RunRecord
from kbuilder.graph.settings import BACKENDS, DataSettings, TrainingSettings
from kbuilder.runtime import protocol as p
from kbuilder.runtime.client import TrainingRun, Worker, WorkerError, WorkerPool
from kbuilder.runtime.distribution import is_distributed
from kbuilder.runtime.runner import run_record, start_run

POLL_MS = 20
# Per timer tick: at most this many messages or this much time, whichever comes first.
MAX_MESSAGES_PER_TICK = 200
MAX_SECONDS_PER_TICK = 0.008

IDLE, STARTING, RUNNING, PAUSED, STOPPING = "idle", "starting", "running", "paused", "stopping"


def installed_backends() -> list[str]:
    """The training backends installed here, found without importing them (seconds each)."""
    return [b for b in BACKENDS if importlib.util.find_spec(b) is not None]


class QtRunController(QObject):
    """Starts, watches and controls one training run at a time, and keeps a warm worker.

    Signals:
        state_changed(state): ``idle``, ``starting``, ``running``, ``paused`` or
            ``stopping``.
        run_started(message): the worker prepared the data and the model (``RunStarted``).
        batch_ended(message): a ``BatchEnd`` (about 20 per second at most).
        epoch_ended(message): an ``EpochEnd`` with train and validation metrics.
        phase_started(message): a ``PhaseStarted`` (a fine-tuning run's second phase).
        log_received(level, text): a log line of the worker.
        run_finished(record): the run ended with a model (completed, stopped or NaN);
            ``record`` is the ``run_record`` for ``project.runs``.
        run_failed(reason, record): the run failed or its worker died; ``record`` is the
            run's record, or ``None`` when no run could be started at all.
        devices_found(backend, devices): a worker of ``backend`` listed its devices.
        worker_silent(seconds): the running worker has sent nothing, not even a heartbeat,
            for ``seconds`` (emitted once a second while that lasts); ``0`` when it is
            heard again. It is stopped (SIGSTOP), hung or starved: offer Stop and Kill.
    """

    state_changed = Signal(str)
    run_started = Signal(object)
    batch_ended = Signal(object)
    epoch_ended = Signal(object)
    phase_started = Signal(object)  # a PhaseStarted: a fine-tuning run's second phase
    log_received = Signal(str, str)
    progress_received = Signal(object)  # p.Progress: e.g. pretrained weights downloading
    run_finished = Signal(object)
    run_failed = Signal(str, object)
    devices_found = Signal(str, object)
    worker_silent = Signal(float)
    _started = Signal(object, object)  # (run, error) from the background thread
    _ready = Signal(str, object)  # (backend, devices) from the background thread

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kbuilder-runs")
        self._pool = WorkerPool(yield_to_window=True)
        self._warm_key: tuple[str, str] | None = None  # what the settings select
        self._pool_key: tuple[str, str] | None = None  # what the pool holds (thread's)
        self._closed = False
        self.state = IDLE
        self.run: TrainingRun | None = None
        self.started: p.RunStarted | None = None
        self.last_record: RunRecord | None = None
        self._silent_told = 0  # the whole seconds of silence last reported
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._poll)
        self._started.connect(self._on_started)
        self._ready.connect(self.devices_found)

    # ----------------------------------------------------------------- workers
    def warm(self, backend: str, device: str = "cpu") -> None:
        """Keep a worker of ``backend`` on ``device`` imported and waiting.

        Only one warm worker is kept: the one the settings select. While a run trains,
        warming waits until it ends (an import would take CPU from the training).
        """
        if self._closed or backend not in installed_backends():
            return
        key = (backend, device)
        if key == self._warm_key:
            return
        self._warm_key = key
        if self.state == IDLE:
            self._submit(self._warm_now, key)

    def _warm_now(self, key: tuple[str, str]) -> None:
        """(background) Replace the pool by one holding a worker for ``key``; list devices."""
        if self._pool_key != key:
            old, self._pool = self._pool, WorkerPool(yield_to_window=True)
            _in_background(old.shutdown)
        self._pool_key = key
        worker = self._pool.warm(*key)
        try:
            ready = worker.wait_ready()
        except WorkerError:
            return  # reported when a run asks for this worker
        self._emit(self._ready, key[0], list(ready.devices))

    def _submit(self, fn, *args) -> Future | None:
        if self._closed:
            return None
        return self._executor.submit(fn, *args)

    # ------------------------------------------------------------------ a run
    @property
    def busy(self) -> bool:
        return self.state != IDLE

    def start(self, project: Any, data: DataSettings, training: TrainingSettings) -> None:
        """Start training ``project`` (its graph, weights and path are copied now)."""
        if self.busy or self._closed:
            return
        snapshot = SimpleNamespace(graph=project.graph.copy(), weights=dict(project.weights),
                                   path=project.path)
        self.started, self.run, self.last_record = None, None, None
        self._set_state(STARTING)
        self._warm_key = (training.backend, training.device)
        self._submit(self._start_now, snapshot, data, training)

    def _start_now(self, snapshot: Any, data: DataSettings, training: TrainingSettings) -> None:
        """(background) Take the warm worker (or start one) and send it the run."""
        key = (training.backend, training.device)
        try:
            if is_distributed(training):
                # Its own worker, whose environment shows it all its devices.
                worker = None
            elif self._pool_key == key:
                worker = self._pool.take(*key, rewarm=False)
            else:
                worker = Worker(*key, yield_to_window=True)
            run = start_run(snapshot, data, training, worker=worker, yield_to_window=True)
        except (WorkerError, OSError, ValueError) as exc:
            self._emit(self._started, None, str(exc) or type(exc).__name__)
            return
        self._emit(self._started, run, None)

    def _on_started(self, run: TrainingRun | None, error: str | None) -> None:
        if run is None:
            self._set_state(IDLE)
            self.run_failed.emit(f"The training worker could not be started: {error}", None)
            self._rewarm()
            return
        if self._closed:
            run.kill()
            return
        self.run = run
        self._set_state(RUNNING)
        self._timer.start()

    def pause(self) -> None:
        if self.run is not None and self.state == RUNNING:
            self.run.pause()
            self._set_state(PAUSED)

    def resume(self) -> None:
        if self.run is not None and self.state == PAUSED:
            self.run.resume()
            self._set_state(RUNNING)

    def stop(self) -> None:
        """End after the current batch; the model and the history are kept."""
        if self.run is not None and self.state in (RUNNING, PAUSED):
            self.run.stop()
            self._set_state(STOPPING)

    def kill(self) -> None:
        """The last resort: end the worker process now (the run fails, the app goes on)."""
        if self.run is not None:
            # The poll then reads what the worker sent before, and a ``Failed`` saying it
            # was killed, with the history so far.
            self.run.kill()

    # ----------------------------------------------------------------- events
    def _poll(self) -> None:
        run = self.run
        if run is None:
            self._timer.stop()
            return
        deadline = time.perf_counter() + MAX_SECONDS_PER_TICK
        for _ in range(MAX_MESSAGES_PER_TICK):
            message = run.next_event(0)
            if message is None:
                break
            self._dispatch(run, message)
            if run.result is not None or time.perf_counter() > deadline:
                break
        if run.result is not None:
            self._end(run)
        else:
            self._check_heartbeat(run)

    @property
    def unresponsive(self) -> bool:
        """Whether the running worker has been silent too long (see ``worker_silent``)."""
        return self.run is not None and self.run.unresponsive

    def _check_heartbeat(self, run: TrainingRun) -> None:
        seconds = int(run.silent_seconds) if run.unresponsive else 0
        if seconds != self._silent_told:
            self._silent_told = seconds
            self.worker_silent.emit(float(seconds))

    def _dispatch(self, run: TrainingRun, message: p.Message) -> None:
        if isinstance(message, p.RunStarted):
            self.started = message
            self.run_started.emit(message)
        elif isinstance(message, p.BatchEnd):
            self.batch_ended.emit(message)
        elif isinstance(message, p.EpochEnd):
            self.epoch_ended.emit(message)
        elif isinstance(message, p.PhaseStarted):
            self.phase_started.emit(message)
        elif isinstance(message, p.LogLine):
            self.log_received.emit(message.level, message.text)
        elif isinstance(message, p.Progress):
            self.progress_received.emit(message)

    def _end(self, run: TrainingRun) -> None:
        self._timer.stop()
        if self._silent_told:
            self._silent_told = 0
            self.worker_silent.emit(0.0)
        record = run_record(run, self.started)
        self.last_record = record
        self.run = None
        self._set_state(IDLE)
        _in_background(run.worker.shutdown)  # one process per run; its job is done
        if isinstance(run.result, p.Failed):
            self.run_failed.emit(run.result.reason, record)
        else:
            self.run_finished.emit(record)
        self._rewarm()

    def _rewarm(self) -> None:
        key, self._warm_key = self._warm_key, None
        if key is not None:
            self.warm(*key)

    def wait_idle(self, timeout: float = 120.0) -> bool:
        """Process events until no run is active (tests, selftest); ``True`` if idle."""
        from PySide6.QtCore import QCoreApplication, QEventLoop

        deadline = time.monotonic() + timeout
        while self.busy and time.monotonic() < deadline:
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
            time.sleep(0.005)
        return not self.busy

    # --------------------------------------------------------------- closing
    def shutdown(self) -> None:
        """Kill the running worker and the warm one; nothing more will start."""
        if self._closed:
            return
        self._closed = True
        self._timer.stop()
        if self.run is not None:
            self.run.kill()
            self.run.worker.close()  # no poll will read the end of the connection now
            self.run = None
        self._executor.shutdown(wait=False, cancel_futures=True)
        _in_background(self._pool.shutdown)
        self.state = IDLE

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.state_changed.emit(state)

    @staticmethod
    def _emit(signal, *args) -> None:
        try:
            signal.emit(*args)
        except RuntimeError:  # the controller was deleted while the thread worked
            pass


def _in_background(fn) -> None:
    """Run ``fn`` (a worker's or pool's shutdown, which may wait seconds) off the GUI."""
    threading.Thread(target=fn, name="kbuilder-worker-exit", daemon=True).start()

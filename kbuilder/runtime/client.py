"""The app's side of the workers: start, talk to, watch and kill worker processes.

A worker is a separate Python process (``python -m kbuilder.runtime.worker``) with its
backend and device fixed in its environment. It connects back over a local socket
protected by a random key. The app never shares memory or objects with it, so a worker
that crashes, is killed or runs out of memory cannot take the app down: the connection
closes, and ``TrainingRun`` turns that into a ``Failed`` message with the reason and the
history received so far.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection, Listener
from pathlib import Path
from typing import Any

from kbuilder.processes import process_alive
from kbuilder.runtime import protocol as p
from kbuilder.runtime.devices import cache_dir, worker_environment

CONNECT_TIMEOUT = 120.0  # a cold backend import can take a while on a busy machine
# How far below the window's priority its workers run, so that it answers first when both
# want the CPU (worst event-loop delay while training 37-42 ms instead of 56-73 ms on two
# cores). Only with a window: against any other busy program it costs the worker most of
# its CPU share (measured on a loaded 2-core machine: 0.51x the steps/s of the same script
# at niceness 0).
WINDOW_NICENESS = 10
# Logs of workers that did not exit cleanly (crashed, killed, or whose app died) stay for
# a look afterwards, the newest this many; the rest are deleted when a worker starts.
MAX_WORKER_LOGS = 20
# A busy worker sends a heartbeat every second (protocol.HEARTBEAT_SECONDS); after this
# long without any message it is taken to be stopped or hung, and the user is told.
HEARTBEAT_TIMEOUT = 10.0
RUN_LOG_NAME = "worker.log"  # a training run's part of its worker's log, in its run folder


class WorkerError(RuntimeError):
    """A worker could not be started or reached."""


class Worker:
    """One worker process and its connection.

    Args:
        backend: ``jax``, ``tensorflow`` or ``torch``.
        device: ``cpu`` or ``gpu:N``.
        environment: more variables for the worker (``None``: removed), set after the
            backend's and device's (``runtime.distribution.worker_environment``).
        yield_to_window: the window's workers run below its priority
            (``WINDOW_NICENESS``) and spin less between operations (see
            ``devices.worker_environment``), so that the window answers first. Without a
            window (the CLI) a worker runs like a plain training script.
    """

    def __init__(self, backend: str, device: str = "cpu", yield_to_window: bool = False,
                 environment: dict[str, str | None] | None = None):
        self.backend, self.device = backend, device
        self.yield_to_window = yield_to_window
        niceness = WINDOW_NICENESS if yield_to_window else 0
        self.ready: p.WorkerReady | None = None
        self.log_path = new_log_path(backend)
        key = secrets.token_bytes(32)
        family = "AF_PIPE" if sys.platform == "win32" else "AF_UNIX"
        self._listener = Listener(family=family, authkey=key)
        env = {**os.environ, **worker_environment(backend, device, yield_to_window),
               "KBUILDER_WORKER_KEY": key.hex(), "PYTHONUNBUFFERED": "1"}
        for name, value in (environment or {}).items():  # e.g. runtime.distribution's
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-X", "faulthandler", "-m", "kbuilder.runtime.worker",
                 "--backend", backend, "--device", device,
                 "--address", str(self._listener.address), "--niceness", str(niceness)],
                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )
        self._connection: Connection | None = None

    @property
    def connection(self) -> Connection:
        """The connection, accepted on first use (the worker dials in once it starts)."""
        if self._connection is None:
            self._connection = self._accept()
        return self._connection

    def _accept(self) -> Connection:
        # Listener.accept() blocks with no timeout; poll the socket so a worker that dies
        # while importing its backend is noticed instead of hanging the app.
        import select
        import socket

        sock: socket.socket | None = getattr(
            getattr(self._listener, "_listener", None), "_socket", None
        )
        if sock is None:  # Windows named pipes: no socket to poll
            return self._listener.accept()
        deadline = time.monotonic() + CONNECT_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise WorkerError(self.death_reason())
            readable, _, _ = select.select([sock], [], [], 0.2)
            if readable:
                return self._listener.accept()
        self.kill()
        raise WorkerError(f"The {self.backend} worker did not start within "
                          f"{CONNECT_TIMEOUT:.0f} s.")

    def send(self, message: p.Message) -> None:
        try:
            self.connection.send_bytes(p.encode(message))
        except OSError as exc:
            raise WorkerError(f"The worker is gone ({exc}).") from exc

    def receive(self, timeout: float | None = None) -> p.Message | None:
        """The next message, or ``None`` after ``timeout`` seconds.

        Raises:
            EOFError: the worker closed the connection (it exited or died).
        """
        conn = self.connection
        if timeout is not None and not conn.poll(timeout):
            return None
        try:
            return p.decode(conn.recv_bytes())
        except OSError as exc:
            raise EOFError(str(exc)) from exc

    def wait_ready(self, timeout: float = CONNECT_TIMEOUT) -> p.WorkerReady:
        """Block until the worker has imported its backend."""
        if self.ready is not None:
            return self.ready
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                message = self.receive(timeout=0.2)
            except EOFError:
                raise WorkerError(self.death_reason()) from None
            if isinstance(message, p.WorkerReady):
                self.ready = message
                return message
            if isinstance(message, p.Failed):
                raise WorkerError(message.reason)
        raise WorkerError(f"The {self.backend} worker was not ready within {timeout:.0f} s.")

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self, close: bool = True) -> None:
        """The last resort: end the process now.

        Args:
            close: also close the connection. ``False`` leaves it open, so what the worker
                sent before it died can still be read, then the end of the connection.
        """
        if self.alive:
            self.process.kill()
        self.process.wait()
        if close:
            self.close()

    def shutdown(self, timeout: float = 10.0) -> None:
        """Ask the worker to exit; kill it if it does not.

        The log of a worker that exits cleanly is deleted (what a training run printed was
        copied to its run folder); one that had to be killed keeps its log.
        """
        if self.alive and self._connection is not None:
            try:
                self.send(p.Shutdown())
                self.process.wait(timeout)
            except (WorkerError, subprocess.TimeoutExpired):
                pass
        self.kill()
        if self.process.returncode == 0:
            self.log_path.unlink(missing_ok=True)

    def log_size(self) -> int:
        """How many bytes the log holds now (where the output of the next job starts)."""
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def copy_log(self, start: int, target: Path) -> None:
        """Copy the log from byte ``start`` on to ``target`` (best effort: logs are help,
        not results)."""
        try:
            with self.log_path.open("rb") as source, target.open("wb") as out:
                source.seek(start)
                shutil.copyfileobj(source, out)
        except OSError:
            pass

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
        self._listener.close()

    def death_reason(self) -> str:
        """A sentence about how the process ended, with the end of its log."""
        code = self.process.wait()
        if code < 0:
            name = signal.Signals(-code).name
            if -code == signal.SIGKILL:
                what = ("was killed (SIGKILL) — by the Kill button, or by the system because "
                        "it ran out of memory")
            elif -code == signal.SIGSEGV:
                what = "crashed (segmentation fault, SIGSEGV)"
            else:
                what = f"ended on signal {name}"
        else:
            what = f"exited unexpectedly with code {code}"
        tail = self.log_tail()
        return f"The {self.backend} worker process {what}." + (f"\n{tail}" if tail else "")

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])


def log_folder() -> Path:
    """Where worker logs live: ``logs/`` in kbuilder's per-user cache folder."""
    return cache_dir() / "logs"


def new_log_path(backend: str) -> Path:
    """A new, empty log file for a worker of ``backend``, after pruning old logs.

    The name holds the app's process id, so that logs of apps still running (whose
    workers may still write to them) are never pruned.
    """
    folder = log_folder()
    folder.mkdir(parents=True, exist_ok=True)
    prune_logs(folder)
    fd, name = tempfile.mkstemp(prefix=f"kbuilder-{backend}-{os.getpid()}-", suffix=".log",
                                dir=folder)
    os.close(fd)
    return Path(name)


def prune_logs(folder: Path, keep: int = MAX_WORKER_LOGS) -> list[Path]:
    """Delete all but the ``keep`` newest worker logs of apps that no longer run.

    Returns:
        The deleted files.
    """
    logs = []
    for path in folder.glob("kbuilder-*.log"):
        try:
            logs.append((path.stat().st_mtime, path))
        except OSError:
            continue  # deleted meanwhile by another app
    old = [path for _, path in sorted(logs, reverse=True)[keep:]
           if not _app_running(path)]
    for path in old:
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass
    return old


def _app_running(log: Path) -> bool:
    """Whether the app that started the worker of ``log`` still runs (per the name)."""
    parts = log.stem.split("-")  # kbuilder-<backend>-<pid>-<random>
    if len(parts) < 4 or not parts[2].isdigit():
        return False
    # Windows: unknown, taken as gone (and Windows refuses to delete a log still open).
    return process_alive(int(parts[2]), unknown=sys.platform != "win32")


class WorkerPool:
    """Keeps one warm worker per (backend, device), so Train starts without an import.

    Args:
        yield_to_window: passed to every ``Worker`` it starts.
    """

    def __init__(self, yield_to_window: bool = False) -> None:
        self._idle: dict[tuple[str, str], Worker] = {}
        self.yield_to_window = yield_to_window

    def warm(self, backend: str, device: str = "cpu") -> Worker:
        """Start a worker in the background if none is waiting."""
        key = (backend, device)
        worker = self._idle.get(key)
        if worker is None or not worker.alive:
            worker = self._idle[key] = Worker(backend, device, self.yield_to_window)
        return worker

    def take(self, backend: str, device: str = "cpu", rewarm: bool = True) -> Worker:
        """A worker for a run (warm if one waits) and, optionally, a new warm one behind it."""
        worker = self.warm(backend, device)
        del self._idle[(backend, device)]
        if rewarm:
            self.warm(backend, device)
        return worker

    def shutdown(self) -> None:
        for worker in self._idle.values():
            worker.shutdown()
        self._idle.clear()


class TrainingRun:
    """One run on one worker, seen from the app: send controls, iterate over events.

    ``events()`` yields every message until (and including) ``Finished`` or ``Failed``; a
    worker that dies yields a synthesized ``Failed`` with the history received so far.
    Heartbeats are not yielded: they only move ``last_heard``, so that ``unresponsive``
    says when the worker has been silent for ``heartbeat_timeout`` seconds.
    """

    heartbeat_timeout = HEARTBEAT_TIMEOUT

    def __init__(
        self, worker: Worker,
        request: p.StartTraining | p.StartEvaluation | p.StartPrediction | p.StartExport
        | p.StartExplanation | p.StartActivations,
    ):
        self.worker, self.request = worker, request
        self.history: dict[str, list[float | None]] = {}
        self.result: p.Finished | p.Failed | None = None
        self.ready_seconds: float | None = None
        self.sent_at = time.perf_counter()
        self.killed = False  # kill() ended the worker: its death is reported as a kill
        self._log_start = worker.log_size()  # this job's output starts here in the log
        self.last_heard = time.monotonic()
        self.stop_requested_at: float | None = None
        worker.send(request)

    @classmethod
    def start(cls, worker: Worker, graph: dict, data: dict, training: dict, run_dir: str,
              weights_path: str | None = None, run_id: str | None = None) -> TrainingRun:
        request = p.StartTraining(run_id or uuid.uuid4().hex[:12], graph, data, training,
                                  run_dir, weights_path)
        return cls(worker, request)

    def stop(self) -> None:
        if self.stop_requested_at is None:
            self.stop_requested_at = time.monotonic()
        self._control(p.StopRequested())

    @property
    def silent_seconds(self) -> float:
        """Seconds since the worker last sent anything (a heartbeat at least, normally)."""
        return time.monotonic() - self.last_heard

    @property
    def unresponsive(self) -> bool:
        """Whether the run is still open but the worker has been silent too long: it was
        stopped (SIGSTOP), hangs, or the machine is swamped."""
        return self.result is None and self.silent_seconds >= self.heartbeat_timeout

    def pause(self) -> None:
        self._control(p.PauseRequested())

    def resume(self) -> None:
        self._control(p.ResumeRequested())

    def kill(self) -> None:
        """End the worker now (the run's model is lost). The events that follow are what
        it sent before, then a ``Failed`` saying it was killed, with the history so far."""
        if self.result is not None:
            self.worker.kill()
            return
        self.killed = True
        self.worker.kill(close=False)

    def _control(self, message: p.Message) -> None:
        try:
            self.worker.send(message)
        except WorkerError:
            pass  # already gone; events() reports how

    def events(self, poll: float = 0.1) -> Iterator[p.Message]:
        while self.result is None:
            message = self.next_event(poll)
            if message is not None:
                yield message

    def next_event(self, timeout: float = 0.0) -> p.Message | None:
        """One event if one arrives within ``timeout`` (for a GUI timer), else ``None``."""
        if self.result is not None:
            return None
        try:
            message = self.worker.receive(timeout=timeout)
        except EOFError:
            message = p.Failed(self.request.run_id, self._death_reason(), history=self.history)
        except p.ProtocolError as exc:
            message = p.Failed(self.request.run_id, str(exc), history=self.history)
        if message is None:
            if not self.worker.alive and not self.worker.connection.poll():
                message = p.Failed(self.request.run_id, self._death_reason(),
                                   history=self.history)
            else:
                return None
        self.last_heard = time.monotonic()
        if isinstance(message, p.Heartbeat):
            return None
        if isinstance(message, p.WorkerReady):
            self.worker.ready = message
        elif isinstance(message, p.EpochEnd):
            for key, value in message.logs.items():
                self.history.setdefault(key, []).append(value)
        elif isinstance(message, p.Failed) and not message.history:
            message = p.Failed(message.run_id, message.reason, message.traceback, self.history)
        if isinstance(message, p.Finished | p.Failed | p.Evaluated | p.Predicted | p.Exported
                      | p.Explained | p.ActivationsReady):
            self.result = message
            if self.killed:
                self.worker.close()  # kept open only to read the worker's last messages
            if isinstance(self.request, p.StartTraining):
                self.worker.copy_log(self._log_start, Path(self.request.run_dir) / RUN_LOG_NAME)
        return message

    def _death_reason(self) -> str:
        if self.killed:
            return (f"The run was killed (Kill): its {self.worker.backend} worker process was "
                    "ended before the run finished, so the model it was training is lost.")
        return self.worker.death_reason()

    def wait(self, on_event: Callable[[p.Message], Any] | None = None) -> p.Message:
        for message in self.events():
            if on_event is not None:
                on_event(message)
        assert self.result is not None
        return self.result

"""The worker process: imports one backend, then trains on request and reports events.

Started by ``kbuilder.runtime.client`` as ``python -m kbuilder.runtime.worker`` with the
backend and device fixed in its environment before anything imports keras. It connects
back to the app over a local socket (``multiprocessing.connection``) and speaks only the
messages of ``kbuilder.runtime.protocol``. A reader thread receives requests, so Stop and
Pause are seen while ``fit`` runs on the main thread (cooperative cancellation: the
progress callback checks the flags after every batch). A heartbeat thread tells the app,
while the worker is busy, that the process still runs (see ``protocol.Heartbeat``).
"""

from __future__ import annotations

import argparse
import os
import queue
import signal
import sys
import threading
import time
import traceback
from typing import Any

from kbuilder.runtime import protocol as p

# Batch messages are coalesced so that sending never slows training down.
BATCH_MESSAGE_INTERVAL = 0.05


class Channel:
    """The worker's end of the connection: thread-safe sends, a reader thread for requests."""

    def __init__(self, connection: Any):
        self.connection = connection
        self._send_lock = threading.Lock()
        self.requests: queue.Queue[p.Message] = queue.Queue()
        self.stop = threading.Event()
        self.resume = threading.Event()
        self.resume.set()
        self.closed = threading.Event()
        # Set while the worker imports its backend or works on a request: then heartbeats
        # go out. An idle worker stays silent, so that a warm worker nobody reads from does
        # not fill the connection.
        self.busy = threading.Event()
        self.busy.set()
        threading.Thread(target=self._read, name="kbuilder-requests", daemon=True).start()
        threading.Thread(target=self._beat, name="kbuilder-heartbeat", daemon=True).start()

    def _beat(self) -> None:
        # Independent of the main thread: a long batch or a slow save still beats (it
        # releases the GIL between Python steps); a stopped process (SIGSTOP) or one stuck
        # holding the GIL does not, and that is what the app detects.
        while not self.closed.wait(p.HEARTBEAT_SECONDS):
            if self.busy.is_set():
                self.send(p.Heartbeat())

    def send(self, message: p.Message) -> None:
        data = p.encode(message)
        with self._send_lock:
            try:
                self.connection.send_bytes(data)
            except OSError:
                self.closed.set()  # the app went away; the main loop exits

    def _read(self) -> None:
        while True:
            try:
                message = p.decode(self.connection.recv_bytes())
            except (EOFError, OSError):
                # The app closed the connection (or died): stop whatever runs and exit.
                self.closed.set()
                self.stop.set()
                self.resume.set()
                self.requests.put(p.Shutdown())
                return
            if isinstance(message, p.StopRequested):
                self.stop.set()
                self.resume.set()
            elif isinstance(message, p.PauseRequested):
                self.resume.clear()
            elif isinstance(message, p.ResumeRequested):
                self.resume.set()
            else:
                self.requests.put(message)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kbuilder-worker")
    parser.add_argument("--backend", required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--address", required=True)
    parser.add_argument("--niceness", type=int, default=0)
    args = parser.parse_args(argv)
    # Ctrl+C in a terminal reaches the whole process group, the worker too; the app
    # decides what it means (stop after the batch, then kill), so it must not end a run
    # half-way here.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if args.niceness and hasattr(os, "nice"):
        os.nice(args.niceness)  # see client.Worker
    from multiprocessing.connection import Client

    authkey = bytes.fromhex(os.environ.pop("KBUILDER_WORKER_KEY"))
    connection = Client(args.address, authkey=authkey)
    channel = Channel(connection)
    try:
        ready = warm_up(args.backend, args.device)
    except Exception as exc:
        channel.send(p.Failed(None, f"The {args.backend} backend could not be loaded: {exc}",
                              traceback.format_exc()))
        return 1
    channel.send(ready)
    while not channel.closed.is_set():
        channel.busy.clear()
        request = channel.requests.get()
        channel.busy.set()
        if isinstance(request, p.Shutdown):
            break
        channel.stop.clear()
        channel.resume.set()
        if isinstance(request, p.StartTraining):
            run_training(request, channel, args.backend, args.device)
        elif isinstance(request, p.StartEvaluation | p.StartPrediction):
            run_inference(request, channel)
        elif isinstance(request, p.StartExport):
            run_export(request, channel)
        elif isinstance(request, p.StartExplanation | p.StartActivations):
            run_explain(request, channel)
    return 0


def warm_up(backend: str, device: str) -> p.WorkerReady:
    """Import everything a run needs, so pressing Train reaches the first batch fast."""
    started = time.perf_counter()
    import keras

    if keras.backend.backend() != backend:
        raise RuntimeError(
            f"keras was imported with the {keras.backend.backend()} backend instead of {backend}."
        )
    from kbuilder.graph import catalog
    from kbuilder.graph.build import build_model  # noqa: F401
    from kbuilder.runtime import data  # noqa: F401
    from kbuilder.runtime.devices import visible_devices
    from kbuilder.runtime.distribution import initialize_hosts

    initialize_hosts()  # one of several hosts: join them before any device is used
    if backend == "openvino":
        _openvino_in_float32()

    catalog.all_layers()
    import sklearn.datasets  # noqa: F401  (the built-in datasets)

    return p.WorkerReady(
        backend=backend,
        device=device,
        pid=os.getpid(),
        versions=library_versions(backend),
        devices=visible_devices(backend),
        import_seconds=round(time.perf_counter() - started, 3),
    )


def _openvino_in_float32() -> None:
    """Make Keras's OpenVINO backend compute float32 models in float32.

    On CPUs with bfloat16 units OpenVINO runs float32 models in bfloat16 unless a precision
    is asked for, which moves predicted probabilities by ~1e-3; Keras's backend compiles
    with ``openvino.compile_model(model, "CPU")`` and no configuration (keras 3.15).
    """
    import openvino

    compile_model = openvino.compile_model

    def compile_in_float32(model: Any, device_name: str | None = "AUTO",
                           config: dict[str, Any] | None = None) -> Any:
        return compile_model(model, device_name,
                             {"INFERENCE_PRECISION_HINT": "f32", **(config or {})})

    openvino.compile_model = compile_in_float32


def library_versions(backend: str) -> dict[str, str]:
    import keras
    import numpy

    from kbuilder import __version__

    module = {"jax": "jax", "tensorflow": "tensorflow", "torch": "torch",
              "openvino": "openvino"}[backend]
    return {
        "kbuilder": __version__,
        "python": sys.version.split()[0],
        "keras": keras.__version__,
        "numpy": numpy.__version__,
        backend: sys.modules[module].__version__ if module in sys.modules else "?",
    }


def run_training(request: p.StartTraining, channel: Channel, backend: str, device: str) -> None:
    """One run, from data to a saved model; every outcome ends in Finished or Failed."""
    from kbuilder.graph.settings import INFERENCE_BACKENDS

    if backend in INFERENCE_BACKENDS:
        channel.send(p.Failed(request.run_id, (
            f"The {backend} backend only runs trained models (predictions); it cannot "
            "train. Train with jax, tensorflow or torch, then predict with "
            f"`--backend {backend}`.")))
        return
    progress: ProgressReporter | None = None
    # Into the log (stdout), whose part for this run the app copies to the run folder.
    print(f"kbuilder worker {os.getpid()}: training run {request.run_id} on {backend} "
          f"({device}) in {request.run_dir}", flush=True)
    try:
        from kbuilder.graph.backbone_build import report_downloads
        from kbuilder.runtime.training import prepare_run

        # A pretrained network's ImageNet weights may be downloaded while the model is built.
        with report_downloads(download_reporter(request.run_id, channel)):
            run = prepare_run(request, backend, device)
        channel.send(run.started_message())
        if run.left_out:
            channel.send(p.LogLine(request.run_id, "info", (
                f"{run.left_out} training rows left out so that every device gets the "
                "same number of samples.")))
        progress = ProgressReporter(request.run_id, channel, run)
        run.fit(progress)
        status, message = progress.outcome()
        finished = run.finish(status, message, progress.history, progress.first_loss)
        print(f"kbuilder worker: run {request.run_id} {status}: {finished.message}",
              flush=True)
        channel.send(finished)
    except Exception as exc:
        from kbuilder.graph.shapes import explain_exception

        reason, _ = explain_exception(exc, [])
        channel.send(p.Failed(
            request.run_id, reason, traceback.format_exc(),
            progress.history if progress else {},
        ))


def download_reporter(run_id: str, channel: Channel):
    """A ``report_downloads`` callback sending ``Progress`` ("downloading <file>", bytes),
    at most ~10 a second and always the last one."""
    last = [0.0]

    def report(file: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.1 or (total is not None and done >= total):
            last[0] = now
            channel.send(p.Progress(run_id, f"downloading {file}", done, total))

    return report


def run_inference(request: p.StartEvaluation | p.StartPrediction, channel: Channel) -> None:
    """Evaluate or predict with a saved model; ends in Evaluated/Predicted or Failed."""
    try:
        from kbuilder.runtime import inference

        if isinstance(request, p.StartEvaluation):
            channel.send(inference.run_evaluation(request))
        else:
            def progress(done: int, total: int | None) -> None:
                channel.send(p.Progress(request.run_id, "predicting", done, total))

            channel.send(inference.run_prediction(request, progress))
    except Exception as exc:
        from kbuilder.graph.shapes import explain_exception

        reason, _ = explain_exception(exc, [])
        channel.send(p.Failed(request.run_id, reason, traceback.format_exc()))


def run_explain(request: p.StartExplanation | p.StartActivations, channel: Channel) -> None:
    """An explanation or a layer's output; ends in Explained/ActivationsReady or Failed."""
    try:
        from kbuilder.runtime.explain import ExplainError, job
        from kbuilder.runtime.inference import InferenceError

        try:
            channel.send(job.run_explanation(request) if isinstance(request, p.StartExplanation)
                         else job.run_activations(request))
        except (ExplainError, InferenceError) as exc:  # already a sentence for the user
            channel.send(p.Failed(request.run_id, str(exc), traceback.format_exc()))
    except Exception as exc:
        from kbuilder.graph.shapes import explain_exception

        reason, _ = explain_exception(exc, [])
        channel.send(p.Failed(request.run_id, reason, traceback.format_exc()))


def run_export(request: p.StartExport, channel: Channel) -> None:
    """Export a model (and check it against Keras); ends in Exported or Failed."""
    try:
        from kbuilder.runtime.export import ExportError
        from kbuilder.runtime.export import run_export as export

        channel.send(export(request))
    except ExportError as exc:  # already a sentence for the user
        channel.send(p.Failed(request.run_id, str(exc), traceback.format_exc()))
    except Exception as exc:
        from kbuilder.graph.shapes import explain_exception

        reason, _ = explain_exception(exc, [])
        channel.send(p.Failed(request.run_id, f"The export failed: {reason}",
                              traceback.format_exc()))


class ProgressReporter:
    """Turns Keras callback calls into protocol events and applies Stop/Pause."""

    def __init__(self, run_id: str, channel: Channel, run: Any):
        self.run_id, self.channel, self.run = run_id, channel, run
        self.history: dict[str, list[float | None]] = {}
        self.stopped = False
        self.nan = False
        self.first_loss: float | None = None  # the first batch's, before any learning
        self._last_sent = 0.0
        self._step = 0
        self._epoch = 0
        self._epoch_started = time.perf_counter()
        self._fit_started = time.perf_counter()
        self._samples_done = 0

    def callback_list(self, model: Any, callbacks: list[Any], epochs: int) -> Any:
        """A Keras ``CallbackList`` that reads batch results only when it reports them.

        Keras's own list converts every batch's logs to Python numbers, which makes the
        training loop wait for each step's results (on JAX ~10-30% of a small model's
        throughput). This list converts them only for the ~20 batches per second it sends
        and for callbacks that really have a batch hook.
        """
        import keras
        from keras.src.utils import python_utils

        reporter = self

        # The hooks use `model` from this closure, never `self.model`: on JAX that property
        # syncs the whole training state back to the model, which every batch would cost.
        class _Callback(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                reporter._fit_started = time.perf_counter()

            def on_epoch_begin(self, epoch, logs=None):
                reporter._epoch = epoch
                reporter._epoch_started = time.perf_counter()

            def on_train_batch_begin(self, batch, logs=None):
                reporter.batch_begin(model)

            def on_epoch_end(self, epoch, logs=None):
                reporter.epoch_end(model, epoch, logs or {})

        class _ReportingList(keras.callbacks.CallbackList):
            def on_train_batch_end(self, batch, logs=None):
                hooks = self._batch_hooks
                report = reporter.wants_batch(batch)
                if report or hooks:
                    logs = python_utils.pythonify_logs(logs)
                    if report:
                        reporter.batch_end(model, batch, logs)
                    for callback in hooks:
                        callback.on_train_batch_end(batch, logs=logs)
                else:
                    reporter.count_batch(batch)

        callback_list = _ReportingList(
            [_Callback(), *callbacks], add_history=True, add_progbar=False, model=model,
            verbose=0, epochs=epochs, steps=self.run.steps_per_epoch,
        )
        callback_list._batch_hooks = [c for c in callback_list.callbacks if _has_batch_hook(c)]
        return callback_list

    def _rate_and_eta(self) -> tuple[float, float | None]:
        elapsed = max(time.perf_counter() - self._fit_started, 1e-9)
        rate = self._samples_done / elapsed
        remaining = self.run.total_steps - self._step
        eta = remaining * elapsed / max(self._step, 1) if self._step else None
        return rate, eta

    def count_batch(self, batch: int) -> None:
        self._step = self._epoch * self.run.steps_per_epoch + batch + 1
        self._samples_done = self._step * self.run.batch_size

    def wants_batch(self, batch: int) -> bool:
        """Whether this batch is reported: ~20 per second, and every epoch's last one."""
        last_of_epoch = batch + 1 >= self.run.steps_per_epoch
        return last_of_epoch or time.perf_counter() - self._last_sent >= BATCH_MESSAGE_INTERVAL

    def batch_end(self, model: Any, batch: int, logs: dict[str, Any]) -> None:
        self.count_batch(batch)
        self._last_sent = time.perf_counter()
        loss = logs.get("loss")
        if loss is not None and not _finite(loss):
            self.nan = True
            model.stop_training = True
        elif loss is not None and self.first_loss is None:
            self.first_loss = float(loss)
        rate, eta = self._rate_and_eta()
        self.channel.send(p.BatchEnd(
            self.run_id, self._epoch, batch, self._step - 1, p.jsonable(dict(logs)),
            round(rate, 2), eta,
        ))
        self.check_controls(model)

    def batch_begin(self, model: Any) -> None:
        """On the training thread: the place where a pause can hold training."""
        if not self.channel.resume.is_set():
            self.channel.send(p.LogLine(self.run_id, "info", "Paused."))
            paused = time.perf_counter()
            self.channel.resume.wait()
            # A pause is not training time: the epoch's seconds, the throughput, the time
            # left and the run's duration all leave it out.
            held = time.perf_counter() - paused
            self._epoch_started += held
            self._fit_started += held
            self.run.started += held
            self.channel.send(p.LogLine(self.run_id, "info", "Resumed."))
        self.check_controls(model)

    def check_controls(self, model: Any) -> None:
        if self.channel.stop.is_set():
            self.stopped = True
            model.stop_training = True

    def epoch_end(self, model: Any, epoch: int, logs: dict[str, Any]) -> None:
        values = p.jsonable(dict(logs))
        for key, value in values.items():
            self.history.setdefault(key, []).append(value)
        rate, eta = self._rate_and_eta()
        self.channel.send(p.EpochEnd(
            self.run_id, epoch, values, _learning_rate(model),
            round(time.perf_counter() - self._epoch_started, 3), round(rate, 2), eta,
        ))

    def phase_started(self, phase: int, epoch: int, learning_rate: float, unfrozen: str,
                      trainable_params: int) -> None:
        """A fine-tuning run's second phase begins (the dashboard marks the epoch)."""
        self.channel.send(p.PhaseStarted(self.run_id, phase, epoch, float(learning_rate),
                                         unfrozen, int(trainable_params)))
        self.channel.send(p.LogLine(
            self.run_id, "info", f"Phase {phase} from epoch {epoch + 1}: fine-tuning "
            f"{unfrozen} ({trainable_params:,} trainable parameters) at learning rate "
            f"{learning_rate:g}."))

    def outcome(self) -> tuple[str, str]:
        if self.nan:
            return "nan", (
                "Training stopped: the loss became NaN (not a number). Try a smaller "
                "learning rate, scale the inputs, or check the data for missing values."
            )
        if self.stopped:
            return "stopped", "Stopped by the user; the model keeps what it learned so far."
        return "completed", "Training completed."


def _has_batch_hook(callback: Any) -> bool:
    from keras.src import utils

    return not (utils.is_default(callback.on_train_batch_end)
                and utils.is_default(callback.on_batch_end))


def _finite(value: Any) -> bool:
    try:
        import math

        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return True


def _learning_rate(model: Any) -> float | None:
    try:
        import keras

        lr = model.optimizer.learning_rate
        return float(keras.ops.convert_to_numpy(lr))
    except Exception:
        return None


if __name__ == "__main__":
    sys.exit(main())

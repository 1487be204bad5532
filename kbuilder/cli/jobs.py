"""Running a request in a worker process from the command line: waiting for its result,
showing its events, and Ctrl+C (once: stop it; twice: kill it).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from kbuilder.cli.common import EXIT_PROBLEMS, CliError


def run_in_worker(request: Any, backend: str) -> Any:
    """Run an evaluation/prediction request in a worker; its result or a CliError."""
    from kbuilder.runtime import protocol as msg
    from kbuilder.runtime.client import TrainingRun, Worker, WorkerError

    try:
        worker = Worker(backend)
        job = TrainingRun(worker, request)
        result, interrupted = wait_for_job(job)
    except WorkerError as exc:
        raise CliError(str(exc), EXIT_PROBLEMS) from exc
    worker.shutdown()
    if interrupted:
        raise KeyboardInterrupt  # the worker is gone; say "interrupted", exit 130
    if isinstance(result, msg.Failed):
        raise CliError(result.reason, EXIT_PROBLEMS)
    return result


def wait_for_job(job: Any, on_event: Callable[[Any], Any] | None = None,
                  say: Callable[[str], Any] | None = None,
                  on_stop: Callable[[], Any] | None = None) -> tuple[Any, bool]:
    """Wait for a worker job's result, saying when the worker stops answering.

    Ctrl+C asks a training run to stop after the current batch (its model is kept); a
    second Ctrl+C, a stop the worker leaves unanswered for ``job.heartbeat_timeout``
    seconds, or a Ctrl+C during any other job kills the worker. A killed job ends in a
    ``Failed`` with the history received so far, so the run can still be recorded, and
    no worker process is left behind. ``on_stop`` is called when the stop is sent.

    Returns:
        The result message, and whether Ctrl+C was pressed.
    """
    from kbuilder.runtime import protocol as msg
    from kbuilder.runtime.interrupts import CountInterrupts

    def tell(text: str) -> None:
        (say or (lambda t: print(t, file=sys.stderr)))(f"kbuilder: {text}")

    training = isinstance(job.request, msg.StartTraining)
    seen, silent_told = 0, False
    with CountInterrupts() as interrupts:
        while job.result is None:
            try:
                message = job.next_event(0.1)
                if message is not None and on_event is not None:
                    on_event(message)
            except KeyboardInterrupt:  # raised by a handler of another signal (SIGTERM)
                interrupts.count += 1
            if interrupts.count > seen:
                seen = interrupts.count
                if seen == 1 and training:
                    if on_stop is not None:
                        on_stop()
                    job.stop()
                    tell("stopping after the current batch (the model is kept); press "
                         "Ctrl+C again to kill the worker.")
                elif not job.killed:
                    job.kill()
                    tell("killed the worker.")
            timeout = job.heartbeat_timeout
            if job.unresponsive and not job.killed:
                stopped_at = job.stop_requested_at
                if stopped_at is not None and time.monotonic() - stopped_at >= timeout:
                    job.kill()
                    tell(f"the worker did not answer the stop for {timeout:.0f} s; killed it.")
                elif not silent_told:
                    silent_told = True
                    tell(f"the {job.worker.backend} worker has not answered for "
                         f"{timeout:.0f} s (it may be stopped or hung). Press Ctrl+C to "
                         + ("stop the run, twice to kill the worker." if training
                            else "kill it."))
            elif silent_told and not job.unresponsive:
                silent_told = False
                tell("the worker answers again.")
    return job.result, seen > 0

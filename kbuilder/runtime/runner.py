"""Train a project in a worker and record the run: what the CLI and the GUI both call.

``start_run`` prepares the request (graph, settings, initial weights) and starts it on a
worker; ``run_record`` turns the outcome into the ``RunRecord`` kept in ``project.runs`` —
enough to reproduce the run: settings, backend, device, library versions, seed, data
fingerprint, curves, test metrics and the trained model's path. Both also leave the
record, as far as it is known, in the run folder (``run.json``), so that a run whose
process was killed before recording it can be adopted back into the project
(``kbuilder.graph.runs``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

from kbuilder import files
from kbuilder.graph import runs
from kbuilder.graph.errors import ProjectFileError
from kbuilder.graph.runs import RunRecord, runs_folder
from kbuilder.graph.settings import DataSettings, TrainingSettings
from kbuilder.runtime import distribution
from kbuilder.runtime import protocol as p
from kbuilder.runtime.client import TrainingRun, Worker, WorkerPool
from kbuilder.runtime.distribution import Hosts

__all__ = ["run_record", "runs_folder", "start_run"]

# Run folders this process is training into (claimed until the run is recorded), so that
# no other process takes one for the folder of a killed run (``runs.orphaned_run_folders``).
_claims: dict[str, object] = {}


def start_run(
    project: Any,
    data: DataSettings,
    training: TrainingSettings,
    worker: Worker | None = None,
    pool: WorkerPool | None = None,
    run_dir: Path | None = None,
    hosts: Hosts | None = None,
    yield_to_window: bool = False,
) -> TrainingRun:
    """Start training ``project.graph`` with its weights on a (warm, if any) worker.

    A data-parallel run (or one host of several, ``hosts``) gets a worker of its own whose
    environment shows it its devices (``runtime.distribution``); the pool's warm workers
    see one device.

    Raises:
        DistributionError: the run cannot be distributed as asked (before any worker).
    """
    distribution.check(training, hosts)
    run_id = dt.datetime.now().strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    run_dir = Path(run_dir or runs_folder(project.path) / run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    claim = _claims[str(run_dir.absolute())] = files.claim_folder(run_dir)
    try:
        weights_path = None
        if project.weights:
            import numpy as np  # here, not at the top: the GUI imports this module as it starts

            weights_path = str(run_dir / "initial_weights.npz")
            np.savez(weights_path, **{
                f"{node_id}/{i}": np.asarray(a)
                for node_id, arrays in project.weights.items() for i, a in enumerate(arrays)
            })
        if worker is None and (hosts is not None or distribution.is_distributed(training)):
            worker = Worker(training.backend, training.device, yield_to_window,
                            environment=distribution.worker_environment(training, hosts))
        if worker is None:
            worker = (pool.take(training.backend, training.device) if pool
                      else Worker(training.backend, training.device))
        request = p.StartTraining(run_id, project.graph.to_dict(), data.to_dict(),
                                  training.to_dict(), str(run_dir.absolute()), weights_path)
        runs.write_marker(RunRecord.from_dict(p.jsonable({
            "run_id": run_id, "created": dt.datetime.now().isoformat(timespec="seconds"),
            "backend": training.backend, "device": training.device, "data": request.data,
            "training": request.training, "seed": request.training.get("seed"),
            "run_dir": request.run_dir})), None)
        return TrainingRun(worker, request)
    except BaseException:
        _claims.pop(str(run_dir.absolute()), None)
        files.release_claim(claim)
        raise


def run_record(run: TrainingRun, started: p.RunStarted | None) -> RunRecord:
    """The record of a finished (or failed) run for ``project.runs``; its paths are
    absolute (a save stores them relative to the project)."""
    result = run.result
    request = run.request
    ready = run.worker.ready
    record: dict[str, Any] = {
        "run_id": request.run_id,
        "created": dt.datetime.now().isoformat(timespec="seconds"),
        "backend": run.worker.backend,
        "device": run.worker.device,
        "versions": ready.versions if ready else {},
        "data": request.data,
        "training": request.training,
        "seed": request.training.get("seed"),
        "data_fingerprint": started.data_fingerprint if started else None,
        "history": run.history,
        "run_dir": request.run_dir,
    }
    if isinstance(result, p.Finished):
        record.update(status=result.status, message=result.message,
                      test_metrics=result.test_metrics, results=result.results,
                      artifacts=result.artifacts, seconds=result.seconds,
                      diagnosis=result.diagnosis, baselines=result.baselines)
    elif isinstance(result, p.Failed):
        record.update(status="failed", message=result.reason, test_metrics={}, results={},
                      artifacts={}, traceback=result.traceback[-4000:])
    # Through JSON's types (numpy numbers, tuples) and the record's checks, as if read.
    try:
        made = RunRecord.from_dict(p.jsonable(record))
    except ProjectFileError as exc:
        # A worker's result the record cannot hold (a bug, not the user's): keep the run,
        # its settings and curves, and say what was dropped, rather than lose it all.
        record.update(status="failed", test_metrics={}, results={}, artifacts={},
                      diagnosis=None, baselines=None,
                      message=f"kbuilder could not record this run's results ({exc}); "
                              "its curves are kept. Please report this.")
        made = RunRecord.from_dict(p.jsonable(record))
    runs.write_marker(made, None)
    claim = _claims.pop(request.run_dir, None)
    if claim is not None:
        files.release_claim(claim)
    return made

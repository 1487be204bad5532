"""What a sweep's study holds, read for the CLI and the Sweep view: the best trial and its
run (``record_best`` adds it to the project's history), and a snapshot of every trial
(``read_snapshot``, which a view calls every few seconds off the GUI thread).

The engine that runs the trials is ``kbuilder.runtime.sweep``.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

from kbuilder.graph import runs as run_files
from kbuilder.graph.runs import RunRecord
from kbuilder.runtime.sweep import open_storage, open_study, study_plan


# ------------------------------------------------------------------ the best run
def best_trial(study: Any) -> Any | None:
    from optuna.trial import TrialState

    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.value is not None]
    if not done:
        return None
    maximize = study.direction.name == "MAXIMIZE"
    return (max if maximize else min)(done, key=lambda t: t.value)


def best_run(study: Any, project_path: str | os.PathLike[str]) -> tuple[Any, RunRecord | None,
                                                                       str]:
    """The best trial, the run record of its trained model (read from its run folder),
    and, when there is no record, why."""
    trial = best_trial(study)
    if trial is None:
        return None, None, "no trial has completed"
    stored = trial.user_attrs.get("run_dir")
    if not stored:
        return trial, None, f"trial {trial.number} left no run folder"
    folder = run_files.resolve(stored, project_path)
    host = trial.user_attrs.get("host")
    record = run_files.adopt(folder) if folder.is_dir() else None
    if record is None:
        where = f" on {host}" if host and host != socket.gethostname() else ""
        return trial, None, (f"the run of trial {trial.number} is in {folder}{where}, which "
                             "this machine cannot read")
    return trial, record, ""


def record_best(study: Any, project_path: str | os.PathLike[str]) -> tuple[Any, RunRecord | None,
                                                                          str]:
    """Add the best trial's run to the project's history (under the project's lock; a
    run already there is not added twice)."""
    from dataclasses import replace

    from kbuilder.graph.project import add_runs

    trial, record, why = best_run(study, project_path)
    if record is not None:
        values = ", ".join(f"{k}={v!r}" for k, v in trial.params.items())
        record = replace(record, adopted=None, message=(
            f"The best trial ({trial.number}) of the sweep {study.study_name!r}: {values}. "
            + (record.message or "")).strip())
        add_runs(project_path, [record])
    return trial, record, why


# ------------------------------------------------------------------ what a view shows
@dataclass(frozen=True)
class TrialRow:
    """One trial as the Sweep view lists it."""

    number: int
    state: str  # complete, pruned, failed, running, waiting
    value: float | None
    params: dict[str, Any]
    seconds: float | None
    history: dict[str, list[float | None]]
    run_dir: str | None
    error: str | None
    host: str | None


@dataclass(frozen=True)
class SweepSnapshot:
    """A study read once: its trials, the best one, the parameters' importances."""

    study: str
    metric: str
    direction: str
    target: int  # the finished trials the sweep aims at
    trials: tuple[TrialRow, ...]
    best: int | None  # the best trial's number
    importances: dict[str, float]  # parameter -> importance (fANOVA), {} until known
    importance_note: str = ""

    def counts(self) -> dict[str, int]:
        found = {"complete": 0, "pruned": 0, "failed": 0, "running": 0, "waiting": 0}
        for row in self.trials:
            found[row.state] += 1
        return found


# (storage, study) -> (complete trials, importances, note): a view reads a study every few
# seconds, and fANOVA (a random forest) is only worth redoing when a trial completed.
_IMPORTANCES: dict[tuple[str, str], tuple[int, dict[str, float], str]] = {}
_STATES = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running",
           "WAITING": "waiting"}


def read_snapshot(storage_url: str, name: str, importances: bool = True) -> SweepSnapshot:
    """Read the study ``name`` (for a view: off the GUI thread).

    Raises:
        SweepError: the storage cannot be opened or has no such kbuilder study.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(storage_url)
    study = open_study(storage, name, None, None)
    plan = study_plan(study)
    trials = study.get_trials(deepcopy=False)
    # Optuna's retry callback queues a copy of a trial whose process died (stale heartbeat,
    # or kill -9 seen by ``fail_dead_local_trials``) with the failed numbers in its history.
    retried_as = {t.system_attrs["retry_history"][-1]: t.number for t in trials
                  if t.system_attrs.get("retry_history")}
    rows = []
    for t in trials:
        seconds = t.user_attrs.get("seconds")
        if seconds is None and t.datetime_start is not None:
            end = t.datetime_complete
            import datetime as dt

            seconds = ((end or dt.datetime.now()) - t.datetime_start).total_seconds()
        error = t.user_attrs.get("error")
        if error is None and t.number in retried_as:
            error = (f"its process ended or stopped answering while it ran; it was tried "
                     f"again as trial {retried_as[t.number]} with the same values")
        rows.append(TrialRow(t.number, _STATES[t.state.name], t.value, dict(t.params), seconds,
                             dict(t.user_attrs.get("history") or {}),
                             t.user_attrs.get("run_dir"), error, t.user_attrs.get("host")))
    best = best_trial(study)
    found: dict[str, float] = {}
    note = ""
    complete = [r for r in rows if r.state == "complete"]
    cached = _IMPORTANCES.get((storage_url, name))
    if importances and cached is not None and cached[0] == len(complete):
        found, note = cached[1], cached[2]  # fANOVA again only when a trial completed
    elif importances and len(complete) >= 3:
        try:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                found = {k: float(v) for k, v in
                         optuna.importance.get_param_importances(study).items()}
        except (RuntimeError, ValueError, ZeroDivisionError) as exc:
            note = f"importances not available: {exc}"
    elif importances:
        note = "importances need 3 complete trials"
    if importances:
        _IMPORTANCES[(storage_url, name)] = (len(complete), found, note)
    return SweepSnapshot(name, plan.spec.metric, plan.spec.objective_direction,
                         plan.spec.trials, tuple(rows), best.number if best else None,
                         found, note)

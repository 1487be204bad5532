"""Hyperparameter sweeps on Optuna: a sweep is an Optuna study, each trial a kbuilder run.

``SweepPlan`` is what every process of a study needs besides the project file: the search
space and how to search (``graph.sweeps.SweepSpec``), the data and training settings. It
is stored in the study's user attributes, so ``kbuilder sweep-worker`` on another machine
joins with only the storage URL, the study name and its copy of the project file.

``Sweep.run`` runs trials, ``parallel`` at a time, each in a kbuilder worker process (the
same ``start_run``/``TrainingRun`` as ``kbuilder train``; a slot keeps its worker warm
from one trial to the next). The worker's ``EpochEnd`` messages feed the pruner
(``trial.report``; a pruned trial's run is stopped after its current batch). Each trial
leaves its run folder under the project's runs folder (``sweep-<study>/trial-N-...``) and
its curves, run folder and host in the trial's user attributes.

Storage: an SQLite file beside the project by default (``<project>.sweeps.db``), any
SQLAlchemy URL (PostgreSQL, MySQL) or ``journal:PATH`` (Optuna's journal file, for a
shared file system). A coordinator that was killed leaves its trial RUNNING: trials on
a database send heartbeats, and one silent for the grace period is failed and tried again
with the same values (Optuna's ``RetryHeartbeatStaleTrialCallback``); a trial whose process
on this machine is gone is failed and retried at once, on any storage.

When the sweep ends, ``sweep_results.record_best`` adds the best trial's run to the project's history
(``project.add_runs``, under the project's lock).
"""

from __future__ import annotations

import math
import os
import queue
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kbuilder.graph import runs as run_files
from kbuilder.graph.settings import DataSettings, TrainingSettings
from kbuilder.graph.sweeps import (
    SweepError,
    SweepSpec,
    apply_to_graph,
    apply_training,
    split_values,
)
from kbuilder.processes import process_alive
from kbuilder.runtime.interrupts import CountInterrupts

PLAN_ATTR = "kbuilder_plan"  # the study's user attribute holding the SweepPlan
DEFAULT_HEARTBEAT = 10  # seconds between a running trial's heartbeats (database storage)
# A trial that has not answered for this many heartbeats is taken to be dead.
GRACE_HEARTBEATS = 3
MAX_RETRIES = 2  # how often a trial that died with its process is tried again
# A run whose worker says nothing for this long is killed (its trial fails).
SILENT_KILL_SECONDS = 120.0


@dataclass(frozen=True)
class SweepPlan:
    """Everything a process joining the study needs besides the project's graph."""

    spec: SweepSpec
    data: DataSettings
    training: TrainingSettings
    project_name: str  # the project file's name, to check a joiner has the same project
    graph_digest: str  # the graph the sweep started from (a joiner warns when it differs)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import replace

        # Where the study lives is known to whoever reads it (and may hold a password).
        spec = replace(self.spec, storage=None, study=None)
        return {"spec": spec.to_dict(), "data": self.data.to_dict(),
                "training": self.training.to_dict(), "project_name": self.project_name,
                "graph_digest": self.graph_digest}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SweepPlan:
        return cls(SweepSpec.from_dict(data["spec"]), DataSettings.from_dict(data["data"]),
                   TrainingSettings.from_dict(data["training"]), data["project_name"],
                   data.get("graph_digest", ""))


def graph_digest(graph: Any) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps(graph.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


def default_storage(project_path: str | os.PathLike[str]) -> str:
    """The SQLite file beside the project: ``P.sweeps.db`` for ``P.kbproj``."""
    path = Path(project_path).absolute()
    return f"sqlite:///{path.with_name(path.stem + '.sweeps.db')}"


def default_study_name(project_path: str | os.PathLike[str]) -> str:
    return Path(project_path).stem


def project_study(project_path: str | os.PathLike[str], spec: SweepSpec | None
                  ) -> tuple[str, str]:
    """Where the project's sweep lives: the storage URL and study name its sweep section
    names, else the defaults (the SQLite file beside the project, the file's stem)."""
    return ((spec.storage if spec is not None and spec.storage else None)
            or default_storage(project_path),
            (spec.study if spec is not None and spec.study else None)
            or default_study_name(project_path))


def storage_missing(url: str) -> str | None:
    """Why a view need not open ``url`` yet: its SQLite or journal file does not exist
    (no sweep has run there). ``None`` for a file that exists and for a database server,
    which only opening it can tell."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
    elif url.startswith("journal:"):
        path = Path(url.removeprefix("journal:")).expanduser()
    else:
        return None
    return None if path.exists() else f"{path.name} does not exist yet"


def open_storage(url: str, heartbeat: int = DEFAULT_HEARTBEAT) -> Any:
    """An Optuna storage for ``url``: an SQLAlchemy URL or ``journal:PATH``.

    Raises:
        SweepError: the URL names a database that cannot be reached or a driver that is
            not installed, in a sentence.
    """
    import optuna

    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend

        path = Path(url.removeprefix("journal:")).expanduser()
        if not path.parent.is_dir():
            raise SweepError(f"The folder of the journal file {path} does not exist; create it "
                             "or give another journal:PATH.")
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        # Several processes write one SQLite file: wait for its lock instead of failing.
        engine_kwargs = {"connect_args": {"timeout": 120}}
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # heartbeats are "experimental" in Optuna
            return optuna.storages.RDBStorage(
                url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat,
                grace_period=heartbeat * GRACE_HEARTBEATS,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                    max_retry=MAX_RETRIES))
    except ImportError as exc:
        raise SweepError(f"The storage {_safe_url(url)} needs a database driver that is not "
                         f"installed ({exc.__cause__ or exc}); PostgreSQL uses psycopg2 "
                         "(postgresql+psycopg2://...), MySQL pymysql.") from exc
    except Exception as exc:  # sqlalchemy's OperationalError, ArgumentError, ...
        first = (str(exc).strip().splitlines() or [""])[0]
        raise SweepError(f"Cannot open the sweep storage {_safe_url(url)}: {first}") from exc


def _safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    head, at, tail = url.rpartition("@")
    if not at or "://" not in head:
        return url
    scheme, _, credentials = head.partition("://")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{tail}"


def make_sampler(spec: SweepSpec, graph: Any, seed: int | None = None) -> Any:
    import optuna

    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if spec.sampler == "grid":
        return optuna.samplers.GridSampler({p.label(graph): p.grid() for p in spec.params},
                                           seed=seed)
    if spec.sampler == "cmaes":
        import importlib.util

        if importlib.util.find_spec("cmaes") is None:
            raise SweepError("The CMA-ES sampler needs the 'cmaes' package, which is not "
                             "installed (pip install cmaes); or use --sampler tpe.")
        if all(p.kind == "choice" for p in spec.params):
            raise SweepError("CMA-ES samples numeric ranges, and every swept value here is a "
                             "choice; use --sampler tpe or grid.")
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    return optuna.samplers.TPESampler(seed=seed)


def make_pruner(spec: SweepSpec, epochs: int) -> Any:
    import optuna

    if spec.pruner == "none":
        return optuna.pruners.NopPruner()
    if spec.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 1),
                                              reduction_factor=3)
    # Compare with a few finished trials, from the second epoch on (the first is noisy).
    return optuna.pruners.MedianPruner(n_startup_trials=min(5, max(2, spec.trials // 4)),
                                       n_warmup_steps=1)


def suggest(trial: Any, param: Any, label: str) -> Any:
    if param.kind == "choice":
        return trial.suggest_categorical(label, list(param.choices))
    if param.kind == "int":
        return trial.suggest_int(label, int(param.low), int(param.high), log=param.log)
    return trial.suggest_float(label, float(param.low), float(param.high), log=param.log)


@dataclass(frozen=True)
class TrialOutcome:
    """What a finished trial says, for the CLI's line per trial."""

    number: int
    state: str  # "complete", "pruned", "failed"
    value: float | None
    values: dict[str, Any]
    seconds: float
    message: str = ""
    epoch: int | None = None  # the epoch a pruned trial stopped at


class TrialFailed(Exception):
    """A trial's run failed (the model, the data, the worker); the sweep goes on."""


def open_study(storage: Any, name: str, plan: SweepPlan | None, graph: Any) -> Any:
    """Create the study ``name`` (with ``plan``) or load it; a loaded study keeps its own
    plan (``plan`` may then be ``None``: a joining worker).

    Raises:
        SweepError: no such study to join, or it was not made by kbuilder.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    existing = {s.study_name for s in optuna.get_all_study_summaries(storage,
                                                                     include_best_trial=False)}
    if name not in existing:
        if plan is None:
            raise SweepError(f"The storage has no study named {name!r}; start the sweep with "
                             "'kbuilder sweep P.kbproj --storage URL --study NAME' first"
                             + (f" (it holds {', '.join(sorted(existing))})." if existing
                                else "."))
        study = optuna.create_study(storage=storage, study_name=name,
                                    direction=plan.spec.objective_direction)
        study.set_user_attr(PLAN_ATTR, plan.to_dict())
        return study
    study = optuna.load_study(study_name=name, storage=storage)
    if PLAN_ATTR not in study.user_attrs:
        raise SweepError(f"The study {name!r} was not made by kbuilder (it has no sweep plan); "
                         "give another --study name.")
    if plan is not None:
        saved = SweepPlan.from_dict(study.user_attrs[PLAN_ATTR])
        if saved.spec.params != plan.spec.params or saved.spec.metric != plan.spec.metric:
            raise SweepError(f"The study {name!r} already exists with another search space or "
                             "metric; resume it with the same ranges, or give a new --study "
                             "name.")
        if saved.spec.trials != plan.spec.trials:  # --trials may grow a resumed sweep
            study.set_user_attr(PLAN_ATTR, {**saved.to_dict(),
                                            "spec": {**saved.spec.to_dict(),
                                                     "trials": plan.spec.trials}})
    return study


def study_plan(study: Any) -> SweepPlan:
    return SweepPlan.from_dict(study.user_attrs[PLAN_ATTR])


def counts(study: Any) -> dict[str, int]:
    """Trials by state: complete, pruned, failed, running, waiting."""
    found = {"complete": 0, "pruned": 0, "failed": 0, "running": 0, "waiting": 0}
    names = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed",
             "RUNNING": "running", "WAITING": "waiting"}
    for trial in study.get_trials(deepcopy=False):
        found[names[trial.state.name]] += 1
    return found


def fail_dead_local_trials(study: Any) -> list[int]:
    """Fail (and queue again with the same values) the RUNNING trials whose process on
    this machine is gone — a coordinator killed with ``kill -9`` — without waiting for
    their heartbeats to go stale. Returns their numbers.

    Only Optuna's public API: the trial is told FAIL and queued again by Optuna's own
    retry callback; the Sweep view says why from the retry's ``retry_history``.
    """
    import warnings

    import optuna
    from optuna.trial import TrialState

    host = socket.gethostname()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "experimental" in Optuna
        retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES)
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        attrs = trial.user_attrs
        if attrs.get("host") != host or process_alive(attrs.get("pid")):
            continue
        try:
            ended = study.tell(trial.number, state=TrialState.FAIL)
        except (RuntimeError, optuna.exceptions.UpdateFinishedTrialError):
            continue  # it finished meanwhile, or another process failed it first
        failed.append(trial.number)
        retry(study, ended)
    return failed


class Sweep:
    """Runs trials of one study in kbuilder workers, ``parallel`` at a time.

    Args:
        project: the loaded project (its graph and weights; its path places the run folders).
        study: the Optuna study (``open_study``).
        parallel: trials at a time on this machine, one worker process each.
        devices: the device of each slot (``["gpu:0", "gpu:1"]``: one trial per GPU);
            by default every slot uses the plan's training device.
        on_trial: called (from a trial's thread) with each ``TrialOutcome``.
    """

    def __init__(self, project: Any, study: Any, parallel: int = 1,
                 devices: list[str] | None = None,
                 on_trial: Callable[[TrialOutcome], Any] | None = None):
        self.project, self.study = project, study
        self.plan = study_plan(study)
        self.parallel = max(1, parallel)
        base = self.plan.training.device
        self.devices = devices or [base] * self.parallel
        self.on_trial = on_trial
        self._slots: queue.Queue[int] = queue.Queue()
        for slot in range(self.parallel):
            self._slots.put(slot)
        self._workers: dict[int, Any] = {}
        self._runs: dict[int, Any] = {}  # slot -> the TrainingRun it trains now
        self._lock = threading.Lock()
        self.stopping = False
        self.failures = 0
        self._swept_nodes = bool(self.plan.spec.swept_nodes())

    # ------------------------------------------------------------------ the loop
    def run(self, trials: int | None = None) -> dict[str, int]:
        """Run trials until the study has ``plan.spec.trials`` finished ones (complete or
        pruned, all processes together), at most ``trials`` here; returns ``counts``."""
        import optuna
        from optuna.trial import TrialState

        fail_dead_local_trials(self.study)
        target = self.plan.spec.trials
        done = counts(self.study)
        remaining = target - done["complete"] - done["pruned"]
        if trials is not None:
            remaining = min(remaining, trials)
        if remaining <= 0:
            return done
        self.study.sampler = make_sampler(self.plan.spec, self.project.graph)
        self.study.pruner = make_pruner(self.plan.spec, self.plan.training.epochs)
        callbacks = [optuna.study.MaxTrialsCallback(
            target, states=(TrialState.COMPLETE, TrialState.PRUNED)), self._give_up,
            self._stop_when_asked]
        with CountInterrupts(self._interrupted):
            try:
                self.study.optimize(self._objective, n_trials=remaining,
                                    n_jobs=self.parallel, callbacks=callbacks,
                                    catch=(TrialFailed,), gc_after_trial=False)
            finally:
                self.close()
        if self.stopping:
            raise KeyboardInterrupt  # stopped by Ctrl+C (or SIGINT): the caller says so
        return counts(self.study)

    def _interrupted(self, presses: int) -> None:
        """Ctrl+C once stops the trials after their current batch; twice kills them."""
        if presses == 1:
            self.stop()
        else:
            self.kill()

    def _give_up(self, study: Any, trial: Any) -> None:
        """Stop when trial after trial fails and none ever completed (a model or data
        that cannot train): there is no point in going on."""
        from optuna.trial import TrialState

        if trial.state == TrialState.FAIL:
            self.failures += 1
        if self.failures >= max(3, 2 * self.parallel) and not study.get_trials(
                deepcopy=False, states=(TrialState.COMPLETE,)):
            study.stop()

    def _stop_when_asked(self, study: Any, trial: Any) -> None:
        """After each trial: end the optimization loop once ``stop`` was asked for.
        ``Study.stop`` only works from a trial's thread (an objective or a callback), not
        from the signal handler that sets ``stopping``."""
        if self.stopping:
            study.stop()

    def stop(self) -> None:
        """Stop every running trial after its current batch and start no new one (Ctrl+C);
        the stopped trials are queued again with their values, so a resume trains them.
        The loop ends from the trials' threads: each stopped trial's callback (and an
        objective that starts meanwhile) calls ``Study.stop``."""
        self.stopping = True
        with self._lock:
            for run in self._runs.values():
                run.stop()

    def kill(self) -> None:
        """End every running trial's worker now (a second Ctrl+C)."""
        self.stop()
        with self._lock:
            for run in self._runs.values():
                run.kill()

    def close(self) -> None:
        with self._lock:
            workers, self._workers = list(self._workers.values()), {}
        for worker in workers:
            worker.shutdown()

    def _objective(self, trial: Any) -> float:
        if self.stopping:
            trial.study.stop()  # no trial after this one
            raise TrialFailed("the sweep was stopped before this trial started")
        slot = self._slots.get()
        try:
            return self._run_trial(trial, slot)
        finally:
            self._slots.put(slot)

    def _worker(self, slot: int) -> Any:
        from kbuilder.runtime.client import Worker

        worker = self._workers.get(slot)
        if worker is None or not worker.alive:
            worker = Worker(self.plan.training.backend, self.devices[slot % len(self.devices)])
            with self._lock:
                self._workers[slot] = worker
        return worker

    def _run_trial(self, trial: Any, slot: int) -> float:
        import optuna

        from kbuilder.graph.errors import GraphError
        from kbuilder.graph.settings import SettingsError
        from kbuilder.runtime import protocol as p
        from kbuilder.runtime.client import WorkerError
        from kbuilder.runtime.runner import run_record, start_run

        begun = time.monotonic()
        plan, graph = self.plan, self.project.graph
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        if trial.user_attrs.get("error"):  # a retry carries its predecessor's attributes
            trial.set_user_attr("error", None)
        values = {p_.label(graph): suggest(trial, p_, p_.label(graph)) for p_ in plan.spec.params}
        node_values, setting_values = split_values(plan.spec, values, graph)
        try:
            trial_graph = apply_to_graph(graph, node_values)
            training = apply_training(plan.training, setting_values)
        except (GraphError, SettingsError) as exc:
            return self._fail(trial, values, begun, f"its values do not fit the model: {exc}")
        training = TrainingSettings.from_dict({
            **training.to_dict(), "device": self.devices[slot % len(self.devices)]})
        project_path = Path(self.project.path).absolute()
        folder = (run_files.runs_folder(project_path) / f"sweep-{self.study.study_name}"
                  / f"trial-{trial.number:04d}-{os.getpid()}")
        # Changing a layer's size changes the shapes of its weights and its neighbours':
        # such trials start from fresh weights; only training settings keep the project's.
        subject = _TrialProject(project_path, trial_graph,
                                {} if self._swept_nodes else self.project.weights)
        try:
            run = start_run(subject, plan.data, training, worker=self._worker(slot),
                            run_dir=folder)
        except WorkerError as exc:
            return self._fail(trial, values, begun, str(exc))
        with self._lock:
            self._runs[slot] = run
        if self.stopping:
            run.stop()
        trial.set_user_attr("run_dir", run_files.stored_path(folder, project_path))
        started, pruned_at = None, None
        metric = plan.spec.metric
        try:
            while run.result is None:
                message = run.next_event(0.2)
                if isinstance(message, p.RunStarted):
                    started = message
                elif isinstance(message, p.EpochEnd) and pruned_at is None:
                    value = message.logs.get(metric)
                    if isinstance(value, int | float) and math.isfinite(value):
                        trial.report(float(value), message.epoch)
                        if trial.should_prune():
                            pruned_at = message.epoch
                            run.stop()
                if run.silent_seconds > SILENT_KILL_SECONDS and not run.killed:
                    run.kill()
        finally:
            with self._lock:
                self._runs.pop(slot, None)
        record = run_record(run, started)
        trial.set_user_attr("history", record.history)
        trial.set_user_attr("run_id", record.run_id)
        trial.set_user_attr("seconds", round(time.monotonic() - begun, 2))
        result = run.result
        if isinstance(result, p.Failed):
            if self.stopping:  # killed by a second Ctrl+C: trained again on resume
                self.study.enqueue_trial(values)
            return self._fail(trial, values, begun, result.reason)
        if pruned_at is not None:
            self._tell(TrialOutcome(trial.number, "pruned", None, values,
                                    time.monotonic() - begun, epoch=pruned_at))
            raise optuna.TrialPruned(f"pruned at epoch {pruned_at + 1}")
        if self.stopping:
            self.study.enqueue_trial(values)  # trained again, from the start, on resume
            return self._fail(trial, values, begun, "the sweep was stopped during this trial "
                              "(it is queued again with the same values)")
        curve = record.history.get(metric) or []
        value = curve[-1] if curve else None
        if not isinstance(value, int | float) or not math.isfinite(value):
            known = ", ".join(sorted(record.history)) or "none"
            why = (f"the metric {metric} was not reported (the run reported {known}); choose "
                   "one of those with --metric" if not curve else
                   f"{metric} ended as {value} (the training diverged)")
            return self._fail(trial, values, begun, why)
        self._tell(TrialOutcome(trial.number, "complete", float(value), values,
                                time.monotonic() - begun))
        return float(value)

    def _fail(self, trial: Any, values: dict[str, Any], begun: float, reason: str) -> float:
        trial.set_user_attr("error", reason[:2000])
        self._tell(TrialOutcome(trial.number, "failed", None, values,
                                time.monotonic() - begun, reason))
        raise TrialFailed(reason)

    def _tell(self, outcome: TrialOutcome) -> None:
        if self.on_trial is not None:
            self.on_trial(outcome)


@dataclass
class _TrialProject:
    """What ``start_run`` reads of a project, for one trial's graph."""

    path: Path
    graph: Any
    weights: dict[str, list[Any]]


def preflight_space(spec: SweepSpec, graph: Any, dataset: Any, training: TrainingSettings
                    ) -> list[Any]:
    """The pre-flight errors (data against model) at the extremes of each range — e.g. an
    output layer's units that no longer match the classes — as ``SpaceProblem``s; the
    shapes alone are ``graph.sweeps.check_space``'s."""
    from kbuilder.graph.errors import GraphError
    from kbuilder.graph.settings import SettingsError
    from kbuilder.graph.sweeps import SpaceProblem
    from kbuilder.runtime.preflight import check

    problems = []
    for p in spec.params:
        label = p.label(graph)
        for value in p.extremes():
            try:
                if p.node_id is None:
                    trial_graph, trial = graph, apply_training(training, {p.param: value})
                else:
                    trial_graph, trial = apply_to_graph(graph, {(p.node_id, p.param): value}), \
                        training
            except (GraphError, SettingsError):
                continue  # check_space says why
            errors = [f for f in check(trial_graph, dataset, trial) if f.severity == "error"]
            if errors:
                problems.append(SpaceProblem(
                    label, p.node_id, p.param, value,
                    f"The range of {label} fails the pre-flight check at {value!r}: "
                    f"{errors[0].message.rstrip('.')}. Narrow the range to values that work."))
    return problems

"""The subcommands of hyperparameter sweeps: ``sweep`` (start or resume a study) and
``sweep-worker`` (join one from any machine that has the project file).

The engine is ``kbuilder.runtime.sweep``; the search space ``kbuilder.graph.sweeps``.
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from typing import Any

from kbuilder.cli.common import EXIT_OK, EXIT_PROBLEMS, CliError, load_project
from kbuilder.cli.project import add_image_options, print_errors
from kbuilder.graph.settings import BACKENDS
from kbuilder.graph.sweeps import DIRECTIONS, PRUNERS, SAMPLERS


def add_sweep(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="a hyperparameter sweep (an Optuna study), trials in "
                       "worker processes; run it again to resume")
    p.add_argument("project", type=Path, metavar="P.kbproj")
    p.add_argument("--trials", type=int, help="finished trials to aim at, all workers "
                   "together (default: the project's sweep setting, else 20)")
    _add_parallel(p)
    p.add_argument("--storage", metavar="URL",
                   help="sqlite:///F.db, postgresql+psycopg2://USER:PASSWORD@HOST/DB, "
                   "journal:PATH (default: the storage the project's sweep names, chosen in "
                   "the Sweep tab, else an SQLite file beside the project)")
    p.add_argument("--study", metavar="NAME",
                   help="default: the project's sweep's study, else the project's name")
    p.add_argument("--param", action="append", default=[], metavar="NODE.PARAM=LOW..HIGH[:log]",
                   help="a range to sweep (added to the project's); training settings too: "
                   "learning_rate=1e-4..1e-2:log, batch_size=16..128")
    p.add_argument("--choice", action="append", default=[], metavar="NODE.PARAM=a,b,c",
                   help="values to choose from, e.g. dense.activation=relu,tanh or "
                   "optimizer=adam,sgd")
    p.add_argument("--sampler", choices=SAMPLERS, help="default: tpe")
    p.add_argument("--pruner", choices=PRUNERS, help="stops poor trials early; default: median")
    p.add_argument("--metric", help="the validation metric to optimize (default: val_loss)")
    p.add_argument("--direction", choices=DIRECTIONS,
                   help="default: minimize for losses and errors, else maximize")
    p.add_argument("--backend", choices=BACKENDS, help="default: the project's training setting")
    p.add_argument("--device", help="cpu or gpu:N for every trial")
    p.add_argument("--data", metavar="SPEC", help="as for 'kbuilder train'")
    p.add_argument("--epochs", type=int, help="epochs per trial (the pruner may stop sooner)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--learning-rate", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--save-space", action="store_true",
                   help="also save the ranges and sweep settings in the project file")
    p.add_argument("--no-record", action="store_true",
                   help="do not add the best trial's run to the project's history")
    p.add_argument("--script", type=Path, metavar="sweep.py",
                   help="write the sweep as a standalone Optuna script instead of running it")
    add_image_options(p)
    p.set_defaults(run=_cmd_sweep)


def add_sweep_worker(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep-worker", help="join a sweep's study from this machine "
                       "(needs the project file and the study's storage)")
    p.add_argument("project", type=Path, nargs="?", metavar="P.kbproj",
                   help="this machine's copy of the project (default: the file of that name "
                   "in the current folder)")
    p.add_argument("--storage", required=True, metavar="URL")
    p.add_argument("--study", required=True, metavar="NAME")
    p.add_argument("--trials", type=int, help="at most this many trials from this worker")
    _add_parallel(p)
    p.set_defaults(run=_cmd_sweep_worker)


def _add_parallel(p: argparse.ArgumentParser) -> None:
    p.add_argument("--parallel", type=int, default=1, metavar="K",
                   help="trials at a time on this machine, each in its own worker process")
    p.add_argument("--devices", metavar="LIST",
                   help="the device of each parallel trial, e.g. gpu:0,gpu:1 (one per GPU)")
    p.add_argument("--heartbeat", type=int, default=10, metavar="SECONDS",
                   help="how often a running trial tells the database it is alive; one silent "
                   "for 3 heartbeats is taken as crashed and tried again (default: 10)")


def _cmd_sweep(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from kbuilder.cli.training import _load_dataset, _preflight_ok, _run_settings
    from kbuilder.graph.report import check_graph
    from kbuilder.graph.sweeps import SweepError, SweepSpec, check_space, merged, parse_range
    from kbuilder.runtime import sweep as engine

    project = load_project(args.project)
    _check_parallel(args)
    spec = project.sweep or SweepSpec()
    try:
        extra = ([parse_range(t, project.graph) for t in args.param]
                 + [parse_range(t, project.graph, choice=True) for t in args.choice])
        spec = merged(spec, extra)
        options = {"trials": args.trials, "sampler": args.sampler, "pruner": args.pruner,
                   "metric": args.metric, "direction": args.direction}
        spec = replace(spec, **{k: v for k, v in options.items() if v is not None})
        spec.validate()
    except SweepError as exc:
        raise CliError(str(exc)) from exc
    if not spec.params:
        raise CliError(f"Nothing to sweep: {args.project} has no ranges; give some with "
                       "--param NODE.PARAM=LOW..HIGH or --choice NODE.PARAM=a,b,c.")
    data, training = _run_settings(project, args)
    report = check_graph(project.graph, project.weights)
    if not report["ok"]:
        print_errors("The model cannot be trained", report["errors"], args.project)
        return EXIT_PROBLEMS
    problems = check_space(spec, project.graph, training)
    for problem in problems:
        print(f"kbuilder: error: {problem.message}", file=sys.stderr)
    if problems:
        return EXIT_PROBLEMS
    if spec.metric.startswith("val_") and not data.validation_split:
        raise CliError(f"The sweep optimizes {spec.metric}, but the data has no validation "
                       "split; set one (e.g. 0.2) in the Data tab, or choose --metric loss.")
    dataset = _load_dataset(data)
    if not _preflight_ok(project.graph, dataset, training):
        return EXIT_PROBLEMS
    problems = engine.preflight_space(spec, project.graph, dataset, training)
    for problem in problems:
        print(f"kbuilder: error: {problem.message}", file=sys.stderr)
    if problems:
        return EXIT_PROBLEMS
    if args.save_space:
        _save_space(args.project, spec)
    if args.script is not None:
        return _write_script(project, data, training, spec, args.script)
    saved_url, saved_name = engine.project_study(args.project, spec)  # the sweep section's
    storage_url = args.storage or saved_url
    name = args.study or saved_name
    plan = engine.SweepPlan(spec, data, training, Path(args.project).name,
                            engine.graph_digest(project.graph))
    try:
        storage = engine.open_storage(storage_url, args.heartbeat)
        study = engine.open_study(storage, name, plan, project.graph)
    except SweepError as exc:
        raise CliError(str(exc)) from exc
    before = engine.counts(study)
    if before["complete"] + before["pruned"]:
        print(f"Resuming the study {name!r}: {_counts_text(before)}.")
        saved = engine.study_plan(study)
        if (saved.data, saved.training) != (data, training):
            print(f"kbuilder: note: the study {name!r} keeps the data and training settings "
                  "it started with; give a new --study name to sweep with other ones.",
                  file=sys.stderr)
    print(f"Sweeping {', '.join(p.label(project.graph) for p in spec.params)} of "
          f"{args.project}: {spec.trials} trials, {args.parallel} at a time, on "
          f"{training.backend}; {spec.metric} is {spec.objective_direction}d "
          f"({spec.sampler} sampler, {spec.pruner} pruner).")
    code = _run(project, study, args, trials=None)
    if code != EXIT_OK:
        return code
    if not args.no_record:
        try:
            from kbuilder.runtime.sweep_results import record_best

            trial, record, why = record_best(study, args.project)
        except OSError as exc:
            print(f"kbuilder: warning: the best run was not recorded: {exc}", file=sys.stderr)
            return EXIT_OK
        if record is not None:
            print(f"Recorded the best trial ({trial.number}) as run {record.run_id} in "
                  f"{args.project}.")
        else:
            print(f"kbuilder: note: no run recorded: {why}.", file=sys.stderr)
    return EXIT_OK


def _cmd_sweep_worker(args: argparse.Namespace) -> int:
    from kbuilder.graph.sweeps import SweepError
    from kbuilder.runtime import sweep as engine

    _check_parallel(args)
    try:
        storage = engine.open_storage(args.storage, args.heartbeat)
        study = engine.open_study(storage, args.study, None, None)
    except SweepError as exc:
        raise CliError(str(exc)) from exc
    plan = engine.study_plan(study)
    path = args.project or Path(plan.project_name)
    project = load_project(path)
    if engine.graph_digest(project.graph) != plan.graph_digest:
        print(f"kbuilder: warning: the model in {path} differs from the one the sweep "
              "started from; this worker's trials train this file's model.", file=sys.stderr)
    print(f"Joining the study {args.study!r} ({_counts_text(engine.counts(study))}) with "
          f"{args.parallel} trial{'s' if args.parallel != 1 else ''} at a time.")
    return _run(project, study, args, trials=args.trials)


def _check_parallel(args: argparse.Namespace) -> None:
    if args.parallel < 1:
        raise CliError(f"--parallel must be 1 or more; received {args.parallel}.")
    if args.heartbeat < 1:
        raise CliError(f"--heartbeat must be 1 second or more; received {args.heartbeat}.")
    if args.devices:
        from kbuilder.graph.settings import SettingsError, TrainingSettings

        for device in args.devices.split(","):
            try:
                TrainingSettings(device=device.strip()).validate()
            except SettingsError as exc:
                raise CliError(f"--devices: {exc.message.removeprefix('training: ')}") from exc


def _run(project: Any, study: Any, args: argparse.Namespace, trials: int | None) -> int:
    from kbuilder.runtime import sweep as engine

    lock = threading.Lock()

    def show(outcome: engine.TrialOutcome) -> None:
        values = ", ".join(f"{k}={_short(v)}" for k, v in outcome.values.items())
        if outcome.state == "complete":
            what = f"{engine.study_plan(study).spec.metric} {outcome.value:.4f}"
        elif outcome.state == "pruned":
            what = f"pruned after epoch {(outcome.epoch or 0) + 1}"
        else:
            what = f"failed: {outcome.message}"
        with lock:
            print(f"trial {outcome.number}: {what}  ({values})  {outcome.seconds:.1f} s",
                  flush=True)

    devices = [d.strip() for d in args.devices.split(",")] if args.devices else None
    sweep = engine.Sweep(project, study, args.parallel, devices, on_trial=show)
    try:
        done = sweep.run(trials)
    except KeyboardInterrupt:
        print("kbuilder: interrupted; the finished trials are kept in the study; run the "
              "same command again to resume.", file=sys.stderr)
        raise
    print(f"The study {study.study_name!r} has {_counts_text(done)}.")
    from kbuilder.runtime.sweep_results import best_trial

    best = best_trial(study)
    if best is not None:
        values = ", ".join(f"{k}={_short(v)}" for k, v in best.params.items())
        print(f"Best: trial {best.number}, {engine.study_plan(study).spec.metric} "
              f"{best.value:.4f} ({values}).")
        return EXIT_OK
    if done["complete"] == 0 and done["failed"]:
        failed = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("error")]
        reason = failed[-1].user_attrs["error"] if failed else "see the trials' logs"
        print(f"kbuilder: no trial completed; the last failed because {reason}",
              file=sys.stderr)
        return EXIT_PROBLEMS
    return EXIT_OK


def _counts_text(counts: dict[str, int]) -> str:
    from kbuilder.graph.text import plural

    parts = [plural(counts["complete"], "complete trial")]
    for key in ("pruned", "failed", "running"):
        if counts[key]:
            parts.append(f"{counts[key]} {key}")
    return ", ".join(parts)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _write_script(project: Any, data: Any, training: Any, spec: Any, path: Path) -> int:
    from kbuilder.cli.common import writable_file
    from kbuilder.files import atomic_write
    from kbuilder.graph.codegen import CodegenError
    from kbuilder.graph.codegen.sweep_script import generate_sweep_script

    writable_file(path, ".py", force=True)
    subject = _with_settings(project, data, training)
    try:
        code = generate_sweep_script(subject, spec)
    except CodegenError as exc:
        raise CliError(str(exc), EXIT_PROBLEMS) from exc
    atomic_write(path, code)
    print(f"Wrote the sweep of {project.graph.name!r} as an Optuna script to {path} "
          f"(run: python {path} --trials {spec.trials}).")
    return EXIT_OK


def _with_settings(project: Any, data: Any, training: Any) -> Any:
    """The project with the settings the sweep runs with (--data, --epochs, ...)."""
    from kbuilder.graph.project import Project

    return Project(project.graph, data=data, training=training, path=project.path)


def _save_space(path: Path, spec: Any) -> None:
    from kbuilder.graph.errors import ProjectFileError
    from kbuilder.graph.project import load_project as read
    from kbuilder.graph.project import save_project

    try:
        project = read(path)
        project.sweep = spec
        save_project(project, path)  # merges runs others recorded meanwhile
    except (OSError, ProjectFileError) as exc:
        raise CliError(f"Could not save the sweep in {path}: "
                       f"{getattr(exc, 'strerror', None) or exc}.") from exc

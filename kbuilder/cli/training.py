"""The subcommands that train and use a model: ``train``, ``evaluate``, ``predict``, ``runs``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kbuilder.cli.common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    EXIT_TERMINATED,
    CliError,
    load_project,
    readable_file,
    table,
    writable_file,
)
from kbuilder.cli.jobs import run_in_worker, wait_for_job
from kbuilder.cli.project import add_image_options, image_settings, print_errors
from kbuilder.graph.runs import RunRecord
from kbuilder.graph.settings import BACKENDS, INFERENCE_BACKENDS
from kbuilder.graph.text import plural


# ---------------------------------------------------------------------------- train
def add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a project in a background worker")
    p.add_argument("project", type=Path, metavar="P.kbproj")
    p.add_argument("--backend", choices=BACKENDS,
                   help="default: the project's training setting")
    p.add_argument("--device", help="cpu or gpu:N (see `kbuilder doctor`)")
    p.add_argument("--data", metavar="SPEC",
                   help="digits|iris|...|mnist|csv:PATH[:target=COLUMN][:header=none|N]"
                        "[:delimiter=;|tab|,][:decimal=,][:encoding=NAME][:stream=yes|no|auto]"
                        "|tsv:PATH|"
                        "parquet:PATH|excel:PATH[:sheet=NAME]|npz:PATH|images:DIR")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--learning-rate", type=float)
    p.add_argument("--seed", type=int)
    add_distribution_options(p)
    p.add_argument("--fine-tune-from", metavar="LAYER",
                   help="two-phase training: then unfreeze from this layer or block on")
    p.add_argument("--fine-tune-epochs", type=int, metavar="N",
                   help="epochs of the second phase (0: none)")
    p.add_argument("--fine-tune-lr", type=float, metavar="X",
                   help="learning rate of the second phase (default: learning rate / 10)")
    p.add_argument("-o", "--output", type=Path, metavar="trained.keras",
                   help="also save the trained model here")
    p.add_argument("--history", type=Path, metavar="H.json", help="write the run record as JSON")
    p.add_argument("--no-save", action="store_true",
                   help="do not record the run in the project file")
    add_image_options(p)
    p.set_defaults(run=_cmd_train)


def add_distribution_options(p: argparse.ArgumentParser) -> None:
    from kbuilder.graph.settings import DISTRIBUTIONS

    group = p.add_argument_group(
        "data-parallel training (JAX)",
        "--batch-size is the global batch, split evenly over all devices of all hosts. "
        "Several hosts: run the same command on each, with its own --process-id.")
    group.add_argument("--distribute", choices=DISTRIBUTIONS,
                       help="data-parallel: a copy of the model on each device, the batch "
                       "split between them (default: the project's setting)")
    group.add_argument("--devices", type=_devices, metavar="N|all",
                       help="devices per host for data-parallel (on cpu, the host is split "
                       "into N devices; on gpu:K, GPUs K..K+N-1)")
    group.add_argument("--coordinator", metavar="HOST:PORT",
                       help="several hosts: the address of process 0, reachable from all")
    group.add_argument("--num-processes", type=int, metavar="N",
                       help="several hosts: how many processes (hosts) train together")
    group.add_argument("--process-id", type=int, metavar="I",
                       help="several hosts: this host's number, 0..N-1 (0: the coordinator)")


_ALL = "all"


def _devices(text: str) -> int | str:
    if text == _ALL:
        return _ALL
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise argparse.ArgumentTypeError(f"expected a number of devices >= 1 or 'all', not {text!r}")


def hosts_from_args(args: argparse.Namespace) -> Any:
    """The ``runtime.distribution.Hosts`` the command line describes, or ``None``."""
    given = {"--coordinator": args.coordinator, "--num-processes": args.num_processes,
             "--process-id": args.process_id}
    if all(v is None for v in given.values()):
        return None
    missing = [name for name, v in given.items() if v is None]
    if missing:
        raise CliError(f"Training on several hosts needs --coordinator, --num-processes "
                       f"and --process-id together; {' and '.join(missing)} missing.")
    from kbuilder.runtime.distribution import Hosts

    return Hosts(args.coordinator, args.num_processes, args.process_id)


def _cmd_train(args: argparse.Namespace) -> int:
    project = load_project(args.project)
    _check_train_outputs(args)
    data, training = _run_settings(project, args)
    hosts = hosts_from_args(args)
    from kbuilder.runtime.distribution import DistributionError, check

    try:
        check(training, hosts)
    except DistributionError as exc:
        raise CliError(str(exc)) from exc
    from kbuilder.graph.report import check_graph

    report = check_graph(project.graph, project.weights)
    if not report["ok"]:
        print_errors("The model cannot be trained", report["errors"], args.project)
        return EXIT_PROBLEMS
    from kbuilder.graph.stream_choice import data_line

    line = data_line(data)  # streamed or read whole, and why, before the reading starts
    if line:
        print(line, flush=True)
    dataset = _load_dataset(data)
    if not _preflight_ok(project.graph, dataset, training):
        return EXIT_PROBLEMS
    from kbuilder.runtime import protocol as msg
    from kbuilder.runtime.client import WorkerError
    from kbuilder.runtime.runner import run_record, start_run

    try:
        run = start_run(project, data, training, hosts=hosts)
    except WorkerError as exc:
        raise CliError(str(exc), EXIT_PROBLEMS) from exc
    started: list[Any] = []

    def on_event(message: Any) -> None:
        if isinstance(message, msg.RunStarted):
            started.append(message)
        progress.show(message)

    with _TrainingProgress(training) as progress, _TerminateAsInterrupt() as terminate:
        # A first Ctrl+C (or SIGTERM) stops cleanly and keeps the model; once stopping, a
        # SIGTERM must not lose the run (disarm), a second Ctrl+C kills the worker.
        result, _ = wait_for_job(run, on_event, progress.console.print,
                                  on_stop=terminate.disarm)
    record = run_record(run, started[0] if started else None)
    run.worker.shutdown()
    _finish_training(project, args, record)
    if terminate.received:
        print(f"kbuilder: terminated (SIGTERM): the run was stopped after its current batch"
              f"{'' if args.no_save else f' and recorded in {args.project}'}.",
              file=sys.stderr)
        return EXIT_TERMINATED
    if isinstance(result, msg.Failed):
        print(f"kbuilder: training failed: {result.reason}", file=sys.stderr)
        return EXIT_PROBLEMS
    print(result.message)
    for name, value in result.test_metrics.items():
        print(f"  test {name}: {value if value is None else round(value, 4)}")
    return EXIT_OK if result.status in ("completed", "stopped") else EXIT_PROBLEMS


class _TerminateAsInterrupt:
    """While training, SIGTERM stops the run like Ctrl+C: after the current batch, with
    the run recorded. Later SIGTERMs are ignored until the run is recorded (SIGKILL still
    ends the process; its run folder can then be adopted: ``kbuilder runs --adopt``)."""

    def __init__(self) -> None:
        self.received = False
        self._armed = True  # raise on the first SIGTERM; once training ended, only note it

    def __enter__(self) -> _TerminateAsInterrupt:
        import signal

        if hasattr(signal, "SIGTERM"):
            with contextlib.suppress(ValueError):  # not the main thread (embedded)
                signal.signal(signal.SIGTERM, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        first = not self.received
        self.received = True
        if first and self._armed:
            raise KeyboardInterrupt

    def disarm(self) -> None:
        """From now on SIGTERM is only noted (the run is being stopped and recorded)."""
        self._armed = False

    def __exit__(self, *exc: object) -> None:
        # The handler stays, noting SIGTERM only: the run is recorded after this block.
        self.disarm()


def _check_train_outputs(args: argparse.Namespace) -> None:
    """Refuse, before training, outputs that could not be written after it."""
    if not args.no_save:
        from kbuilder.files import check_writable

        problem = check_writable(args.project)
        if problem:
            raise CliError(f"The run could not be recorded: {problem}. Make it writable "
                           "(chmod u+w), or train with --no-save.")
    if args.output is not None:
        writable_file(args.output, ".keras", force=True)
    if args.history is not None:
        _writable_output(args.history, "--history")


def _writable_output(path: Path, option: str) -> Path:
    if path.is_dir():
        raise CliError(f"{option} '{path}' is a folder; expected a file name.")
    folder = path.parent
    if not folder.is_dir():
        raise CliError(f"The folder {folder} (of {option} {path}) does not exist; create it "
                       "first.")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise CliError(f"{option} '{path}' cannot be written (permission denied).")
    return path


def _run_settings(project: Any, args: argparse.Namespace) -> tuple[Any, Any]:
    from kbuilder.graph.settings import DataSettings, SettingsError, TrainingSettings, spec_fields

    # No data in the project: new settings, where a table streams when it would not fit.
    data = project.data.to_dict() if project.data is not None else {"stream_table": "auto"}
    if args.data:
        data.update(spec_fields(args.data))
    data.update(image_settings(args))
    overrides = {
        "backend": args.backend, "device": args.device, "epochs": args.epochs,
        "batch_size": args.batch_size, "learning_rate": args.learning_rate, "seed": args.seed,
        "distribute": getattr(args, "distribute", None),
        # Commands without these options (kbuilder sweep) keep the project's settings.
        "fine_tune_from": getattr(args, "fine_tune_from", None),
        "fine_tune_epochs": getattr(args, "fine_tune_epochs", None),
        "fine_tune_learning_rate": getattr(args, "fine_tune_lr", None),
    }
    if overrides["fine_tune_from"] is not None and overrides["fine_tune_epochs"] is None \
            and not project.training.fine_tunes:
        overrides["fine_tune_epochs"] = project.training.epochs  # as many as the first phase
    devices = getattr(args, "devices", None)
    training = {**project.training.to_dict(),
                **{k: v for k, v in overrides.items() if v is not None}}
    if devices is not None:
        training["devices"] = None if devices == _ALL else devices
    try:
        return DataSettings.from_dict(data), TrainingSettings.from_dict(training)
    except SettingsError as exc:
        raise CliError(str(exc)) from exc


def _load_dataset(data: Any) -> Any:
    from kbuilder.runtime.data import DataError, load_data

    try:
        return load_data(data)
    except DataError as exc:
        raise CliError(str(exc)) from exc


def _preflight_ok(graph: Any, dataset: Any, training: Any) -> bool:
    """Print the pre-flight findings; ``False`` when an error forbids training."""
    from kbuilder.runtime.preflight import check

    findings = check(graph, dataset, training)
    for finding in findings:
        print(f"kbuilder: {finding.severity}: {finding.message}", file=sys.stderr)
    return not any(f.severity == "error" for f in findings)


def _finish_training(project: Any, args: argparse.Namespace, record: RunRecord) -> None:
    """Record the run first; then the side outputs, each of which may fail with a warning
    without losing the run."""
    from kbuilder.files import atomic_path, atomic_write

    if not args.no_save:
        from kbuilder.graph.errors import ProjectFileError
        from kbuilder.graph.project import add_runs

        try:
            # Re-read and merged under the project's lock: others' changes are kept.
            add_runs(project.path, [record])
        except (OSError, ProjectFileError) as exc:
            print(f"kbuilder: warning: the run was not recorded in {project.path}: "
                  f"{getattr(exc, 'strerror', None) or exc} (its files are in "
                  f"{record.run_dir}).", file=sys.stderr)
    model = record.model_file
    if args.output is not None and model:
        import shutil

        try:
            with atomic_path(args.output, ".tmp.keras") as tmp:
                shutil.copyfile(model, tmp)
        except OSError as exc:
            print(f"kbuilder: warning: could not write {args.output}: "
                  f"{exc.strerror or exc}; the model is in {model}.", file=sys.stderr)
    if args.history is not None:
        try:
            atomic_write(args.history, json.dumps(record.to_dict(), indent=2))
        except OSError as exc:
            print(f"kbuilder: warning: could not write {args.history}: "
                  f"{exc.strerror or exc}.", file=sys.stderr)


class _TrainingProgress:
    """A progress bar (rich) for steps, and a line per epoch."""

    def __init__(self, training: Any):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), console=self.console,
            disable=not self.console.is_terminal,
        )
        self.task: Any = None
        self.download: Any = None
        self.epochs = training.total_epochs  # both phases of a fine-tuning run
        self.batch_size = training.batch_size
        self.distributed = training.distribute != "none"

    def __enter__(self) -> _TrainingProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def show(self, message: Any) -> None:
        from kbuilder.runtime import protocol as msg

        if isinstance(message, msg.RunStarted):
            share = " (this host's share)" if message.processes > 1 else ""
            self.console.print(
                f"Training on {message.backend} ({message.device}): "
                f"{message.train_samples} training{share}, {message.val_samples} validation, "
                f"{message.test_samples} test samples.", soft_wrap=True)
            if self.distributed:
                from kbuilder.graph.distribution import batch_split

                split = batch_split(self.batch_size, message.devices, message.processes)
                self.console.print(f"Data-parallel: {split}", soft_wrap=True)
            self.task = self.progress.add_task(
                "epoch 1", total=message.steps_per_epoch * message.epochs, rate="")
        elif isinstance(message, msg.BatchEnd) and self.task is not None:
            loss = message.logs.get("loss")
            self.progress.update(
                self.task, completed=message.step + 1,
                description=f"epoch {message.epoch + 1}/{self.epochs}"
                + (f" loss {loss:.4f}" if isinstance(loss, float) else ""),
                rate=f"{message.samples_per_second:,.0f} samples/s")
        elif isinstance(message, msg.EpochEnd):
            logs = "  ".join(f"{k} {v:.4f}" for k, v in message.logs.items()
                             if isinstance(v, float))
            self.console.print(f"epoch {message.epoch + 1}/{self.epochs}: {logs} "
                               f"({message.seconds:.1f} s)", soft_wrap=True)
        elif isinstance(message, msg.PhaseStarted):
            self.console.print(f"--- phase {message.phase} (fine-tuning) from epoch "
                               f"{message.epoch + 1} ---")
        elif isinstance(message, msg.LogLine):
            self.console.print(message.text)
        elif isinstance(message, msg.Progress):  # e.g. pretrained weights downloading
            if self.download is None:
                self.download = self.progress.add_task(message.stage, total=message.total,
                                                       rate="")
            self.progress.update(self.download, completed=message.done, total=message.total)

# ------------------------------------------------------------------ evaluate/predict
def add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="test metrics, confusion matrix and per-class scores")
    p.add_argument("model", type=Path, metavar="M.keras|P.kbproj",
                   help="a trained model, or a project (its latest trained run)")
    p.add_argument("--data", metavar="SPEC", help="default: the project's data")
    p.add_argument("--split", choices=("train", "val", "test"), default="test")
    p.add_argument("--backend", choices=BACKENDS, default="jax")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(run=_cmd_evaluate)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from kbuilder.runtime import protocol as msg

    model_path, data = _trained_model_and_data(args.model, args.data)
    if data is None:
        raise CliError("Say which data to evaluate on with --data SPEC.")
    request = msg.StartEvaluation("evaluate", str(model_path), data.to_dict(), args.split)
    result = run_in_worker(request, args.backend)
    if args.json:
        print(json.dumps({"split": result.split, "samples": result.samples,
                          "metrics": result.metrics, "results": result.results}, indent=2))
        return EXIT_OK
    print(plural(result.samples, f"{result.split} sample"))
    for name, value in result.metrics.items():
        print(f"  {name}: {value if value is None else round(value, 4)}")
    results = result.results
    if results.get("task") == "classification":
        rows = [[r["class"], f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}",
                 str(r["support"])] for r in results["per_class"]]
        print("\n".join(table(["class", "precision", "recall", "f1", "support"], rows)))
        print("\n".join(_confusion_lines(results["class_names"], results["confusion_matrix"])))
    return EXIT_OK


def _confusion_lines(names: Sequence[str], matrix: Sequence[Sequence[int]]) -> list[str]:
    """The confusion matrix with the true class per row and the predicted one per column,
    both named (long names cut to keep the columns narrow)."""
    corner = "true \\ predicted"
    label_width = min(max(len(corner), *(len(n) for n in names)), 20)
    width = max(5, min(max(len(n) for n in names), 10),
                len(str(max((max(row) for row in matrix), default=0))))

    def cut(name: str, size: int) -> str:
        return name if len(name) <= size else name[:size - 1] + "…"

    header = f"  {corner:<{label_width}}  " + " ".join(
        f"{cut(n, width):>{width}}" for n in names)
    rows = [f"  {cut(n, label_width):<{label_width}}  " + " ".join(f"{v:>{width}d}" for v in r)
            for n, r in zip(names, matrix, strict=True)]
    return ["confusion matrix (rows: true class, columns: predicted class):", header, *rows]


def add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="predictions of a trained model, written as CSV")
    p.add_argument("model", type=Path, metavar="M.keras|P.kbproj")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--input", type=Path, metavar="FILE",
                        help="inputs: .npy, .npz (array x), a numeric CSV with a header, or "
                        "a folder of images")
    source.add_argument("--data", metavar="SPEC", help="predict on the test split of SPEC")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="predictions.csv")
    p.add_argument("--backend", choices=BACKENDS + INFERENCE_BACKENDS, default="jax",
                   help="openvino: Keras's OpenVINO inference backend (CPU; it cannot train)")
    p.set_defaults(run=_cmd_predict)


def _cmd_predict(args: argparse.Namespace) -> int:
    from kbuilder.runtime import protocol as msg

    model_path, data = _trained_model_and_data(args.model, args.data)
    if args.input is not None and not args.input.is_dir():  # a folder: images
        readable_file(args.input)
    elif args.input is None and data is None:
        raise CliError("Give the inputs with --input FILE or --data SPEC.")
    request = msg.StartPrediction(
        "predict", str(model_path), str(args.output),
        str(args.input) if args.input else None, data.to_dict() if data else None)
    result = run_in_worker(request, args.backend)
    what = f" for {result.split}" if result.split else ""
    print(f"Wrote {result.samples} predictions{what} to {result.output_path}.")
    return EXIT_OK


def _trained_model_and_data(path: Path, spec: str | None) -> tuple[Path, Any]:
    """The .keras file to use and the data settings (from --data or the project)."""
    from kbuilder.graph.settings import DataSettings, SettingsError, spec_fields

    readable_file(path)
    data: dict[str, Any] | None = None
    if path.suffix.lower() == ".kbproj":
        project = load_project(path)
        path = latest_model(project, path)
        data = project.data.to_dict() if project.data is not None else None
    elif path.suffix.lower() not in (".keras", ".h5"):
        raise CliError(f"Expected a .keras model or a .kbproj project; received '{path}'.")
    if spec:
        data = {**(data or {"stream_table": "auto"}), **spec_fields(spec)}
    try:
        return path, DataSettings.from_dict(data) if data else None
    except SettingsError as exc:
        raise CliError(str(exc)) from exc


def latest_model(project: Any, path: Path) -> Path:
    """The trained ``.keras`` of the project's latest trained run, or a CliError."""
    from kbuilder.graph import runs

    record = runs.latest_trained(project.runs)
    if record is None:
        raise CliError(f"{path} has no trained run yet; train it with "
                       f"'kbuilder train {path}' or give a .keras file.")
    missing = runs.missing_files_message(record, path)
    if missing:
        raise CliError(f"In {path}, {missing}.", EXIT_PROBLEMS)
    model = runs.artifact_path(record, "model", path)
    assert model is not None
    return readable_file(model)

# ----------------------------------------------------------------------------- runs
def add_runs(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("runs", help="the training runs of a project (and runs to adopt)")
    p.add_argument("project", type=Path, metavar="P.kbproj")
    p.add_argument("--adopt", action="store_true",
                   help="add run folders that the history does not list (left by a "
                   "training that was killed) back to the project")
    p.set_defaults(run=_cmd_runs)


def _cmd_runs(args: argparse.Namespace) -> int:
    from kbuilder.graph import runs
    from kbuilder.graph.errors import ProjectFileError
    from kbuilder.graph.project import add_runs, load_project

    readable_file(args.project)
    try:
        project = load_project(args.project)
    except ProjectFileError as exc:
        raise CliError(str(exc)) from exc
    orphans = runs.orphaned_run_folders(project.runs, args.project)
    if args.adopt and orphans:
        adopted = [record for record in map(runs.adopt, orphans) if record is not None]
        try:
            project = add_runs(args.project, adopted)
        except (OSError, ProjectFileError) as exc:
            raise CliError(f"Could not add the runs to {args.project}: "
                           f"{getattr(exc, 'strerror', None) or exc}.") from exc
        print(f"Added {len(adopted)} run{'s' if len(adopted) != 1 else ''} back to "
              f"{args.project}.")
        orphans = runs.orphaned_run_folders(project.runs, args.project)
    rows = []
    for index, record in enumerate(project.runs):
        missing = runs.missing_files_message(record, args.project)
        model = runs.artifact_path(record, "model", args.project)
        rows.append([f"#{index + 1}", record.run_id, record.backend or "?",
                     record.status or "?",
                     "files missing" if missing else str(model or "-")])
    if rows:
        print("\n".join(table(["run", "id", "backend", "status", "model"], rows)))
    else:
        print(f"{args.project} has no runs yet.")
    for folder in orphans:
        print(f"Not in the history: {folder} (add it with --adopt)")
    return EXIT_OK

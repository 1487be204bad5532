"""The ``export`` subcommand: a trained model to a deployment format or to code.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from kbuilder.cli.common import EXIT_OK, EXIT_PROBLEMS, CliError, load_project, readable_file, table
from kbuilder.cli.jobs import run_in_worker
from kbuilder.cli.project import print_errors
from kbuilder.cli.training import latest_model
from kbuilder.runtime.export_formats import FORMATS


def add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a model to a deployment format or to code")
    p.add_argument("model", type=Path, metavar="M.keras|P.kbproj",
                   help="a model, or a project (its latest trained run; without one, its "
                   "untrained model)")
    p.add_argument("--format", required=True, choices=tuple(FORMATS))
    p.add_argument("-o", "--output", required=True, type=Path, metavar="OUT",
                   help="M.keras, a SavedModel folder, M.onnx, M.xml (M.bin is written "
                   "beside it), M.tflite, a folder for python, N.ipynb")
    p.add_argument("--verify", action="store_true",
                   help="load the export in its own runtime and compare it with Keras on a "
                   "random batch; an export that does not match is not written")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(run=_cmd_export)


def _cmd_export(args: argparse.Namespace) -> int:
    from kbuilder.runtime import protocol as msg
    from kbuilder.runtime.export import ExportError, check_output, export_backend

    try:
        output = check_output(args.format, args.output)
    except ExportError as exc:
        raise CliError(str(exc)) from exc
    model_path, project_path, source = _export_source(args.model)
    print(source, file=sys.stderr if args.json else sys.stdout)
    request = msg.StartExport("export", model_path, args.format, str(output), args.verify,
                              project_path)
    # The converted formats need TensorFlow; the others run on any backend, and Keras runs
    # a model eagerly fastest on TensorFlow (JAX compiles every operation on first use).
    result = run_in_worker(request, export_backend(args.format) or "tensorflow")
    if args.json:
        print(json.dumps({"format": result.format, "output": result.output,
                          "files": result.files, "report": result.report,
                          "notes": result.notes}, indent=2))
        return EXIT_OK
    count = len(result.files)
    print(f"Wrote {result.output} ({count} file{'s' if count != 1 else ''}).")
    for note in result.notes:
        print(f"Note: {note}")
    if result.report:
        print("\n".join(_parity_table(result.report)))
    else:
        print("Not compared with Keras; add --verify to check the export on a random batch.")
    return EXIT_OK


def _export_source(path: Path) -> tuple[str | None, str | None, str]:
    """``(model_path, project_path, sentence)``: what `export` exports, and what it says."""
    readable_file(path)
    suffix = path.suffix.lower()
    if suffix in (".keras", ".h5"):
        return str(path), None, f"Exporting the model in {path}."
    if suffix != ".kbproj":
        raise CliError(f"Expected a .keras model or a .kbproj project; received '{path}'.")
    from kbuilder.graph.runs import latest_trained

    project = load_project(path)
    run = latest_trained(project.runs)
    if run is not None:
        model = latest_model(project, path)
        return str(model), str(path), (
            f"Exporting the model trained in run {run.run_id} of {path} "
            f"({run.backend or '?'}, {run.status or '?'}).")
    from kbuilder.graph.report import check_graph

    report = check_graph(project.graph, project.weights)
    if not report["ok"]:
        print_errors("The model cannot be exported", report["errors"], path)
        raise CliError("Fix the problems above first.", EXIT_PROBLEMS)
    weights = "with the project's weights" if project.weights else "with fresh weights"
    return None, str(path), (f"{path} has no trained run: exporting its untrained model "
                             f"({weights}).")


def _parity_table(rows: list[dict[str, Any]]) -> list[str]:
    def number(value: Any) -> str:
        return "-" if value is None else f"{value:.2e}"

    cells = [[r["format"], r["runtime"], number(r["max_abs_diff"]), number(r["tolerance"]),
              r["verdict"] + (f" ({r['note']})" if r.get("note") else "")] for r in rows]
    return table(["format", "runtime", "max abs diff", "tolerance", "verdict"], cells)

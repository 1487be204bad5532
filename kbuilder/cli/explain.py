"""The subcommands that look inside a trained model: ``explain`` (Grad-CAM, integrated
gradients, saliency, permutation importance) and ``activations`` (a layer's output).
Both run in a worker on the chosen backend (``runtime.explain``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from kbuilder.cli.common import EXIT_OK, CliError, readable_file, table
from kbuilder.cli.jobs import run_in_worker
from kbuilder.graph.settings import BACKENDS

GRADIENT_BACKENDS = BACKENDS  # jax, tensorflow, torch: each has a gradient


def _add_common(p: argparse.ArgumentParser, samples: str) -> None:
    p.add_argument("model", type=Path, metavar="M.keras|P.kbproj",
                   help="a trained model, or a project (its latest trained run)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--input", type=Path, metavar="FILE",
                        help="samples: .npy/.npz, a table (raw rows for a model trained on "
                        "one), an image or a folder of images")
    source.add_argument("--data", metavar="SPEC",
                        help="samples from SPEC's test split (default: the project's data)")
    p.add_argument("--samples", type=int, metavar="N",
                   help=f"how many samples (0: all from --first; default {samples})")
    p.add_argument("--first", type=int, default=0, metavar="I",
                   help="start at sample I (0-based) of the file or split")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="DIR",
                   help="folder for the arrays, pictures and the description (created)")
    p.add_argument("--backend", choices=GRADIENT_BACKENDS, default="jax")


def add_explain(sub: argparse._SubParsersAction) -> None:
    from kbuilder.runtime.explain.records import METHODS

    p = sub.add_parser("explain", help="why a trained model predicts what it does: Grad-CAM, "
                       "integrated gradients, saliency, permutation importance")
    _add_common(p, "8; permutation: the whole validation split")
    p.add_argument("--method", required=True, choices=METHODS)
    p.add_argument("--layer", metavar="NAME",
                   help="Grad-CAM's layer (default: the last convolution)")
    p.add_argument("--steps", type=int, default=32, metavar="N",
                   help="integrated gradients' steps from the all-zero baseline (default 32)")
    p.add_argument("--class", dest="target", type=int, metavar="K",
                   help="explain class K (0-based) instead of each sample's predicted class")
    p.add_argument("--repeats", type=int, default=5, metavar="N",
                   help="permutation importance: shuffles per feature (default 5)")
    p.set_defaults(run=_cmd_explain)


def add_activations(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("activations", help="a layer's output on samples (PNG + NPY)")
    _add_common(p, "1")
    p.add_argument("--layer", required=True, metavar="NAME", help="the layer (node) name")
    p.set_defaults(run=_cmd_activations)


def _model_and_samples(args: argparse.Namespace) -> tuple[Path, Any]:
    from kbuilder.cli.training import _trained_model_and_data

    model_path, data = _trained_model_and_data(args.model, args.data)
    if args.input is not None and not args.input.is_dir():
        readable_file(args.input)
    elif args.input is None and data is None:
        raise CliError("Give the samples with --input FILE or --data SPEC.")
    if (args.samples or 0) < 0 or args.first < 0:
        raise CliError("--samples and --first must be 0 or more.")
    from kbuilder import files

    problem = files.output_folder_problem(args.output / "explanation.json")
    if problem and not args.output.exists():
        args.output.mkdir(parents=True, exist_ok=True)
        problem = files.output_folder_problem(args.output / "explanation.json")
    if problem:
        raise CliError(problem)
    return model_path, data


def _cmd_explain(args: argparse.Namespace) -> int:
    from kbuilder.runtime import protocol as msg
    from kbuilder.runtime.explain import Explanation

    model_path, data = _model_and_samples(args)
    if args.method == "permutation" and args.input is not None:
        raise CliError("Permutation importance needs the true labels: give --data SPEC (its "
                       "validation split is used), not --input.")
    samples = args.samples if args.samples is not None else (
        0 if args.method == "permutation" else 8)
    request = msg.StartExplanation(
        "explain", str(model_path), args.method, str(args.output),
        str(args.input) if args.input else None, data.to_dict() if data else None,
        samples, args.first, args.layer, args.steps, args.target, args.repeats)
    result = run_in_worker(request, args.backend)
    record = Explanation.from_dict(result.explanation)
    for line in describe(record):
        print(line)
    print(f"Wrote {len(record.files) + 1} files to {args.output} "
          "(explanation.json says what they are).")
    return EXIT_OK


def describe(record: Any) -> list[str]:
    """What an ``Explanation`` is, in a few lines for the terminal."""
    lines = [f"{record.method} on {record.backend}, {record.data}."]
    if record.layer:
        lines.append(f"Layer: {record.layer}.")
    if record.baseline:
        lines.append(f"Baseline: {record.baseline}; {record.steps} steps; largest "
                     f"completeness error {record.completeness_error:.3g}.")
    if record.targets:
        lines.append("Explained classes: " + ", ".join(record.target_names[:10])
                     + (" ..." if len(record.targets) > 10 else "") + f" (score: {record.score}).")
    if record.method == "permutation":
        lines.append(f"{record.metric} without shuffling: {record.metric_value:.4g}; "
                     f"{record.repeats} shuffles per feature (seed {record.seed}).")
    if record.features and record.importance:
        ranked = sorted(zip(record.features, record.importance, strict=True),
                        key=lambda r: -abs(r[1]))[:10]
        lines += table(["feature", "importance"], [[n, f"{v:.4g}"] for n, v in ranked])
    return lines


def _cmd_activations(args: argparse.Namespace) -> int:
    from kbuilder.runtime import protocol as msg
    from kbuilder.runtime.explain import ActivationStats

    model_path, data = _model_and_samples(args)
    request = msg.StartActivations(
        "activations", args.layer, str(args.output), str(model_path),
        inputs_path=str(args.input) if args.input else None,
        data=data.to_dict() if data else None, samples=args.samples if args.samples is not None else 1, first=args.first)
    result = run_in_worker(request, args.backend)
    s = ActivationStats.from_dict(result.activations)
    print(f"{s.layer} ({s.layer_class}) on {s.backend}, {s.data}: output {s.shape} per "
          f"sample ({s.kind}).")
    print(f"mean {s.mean:.4g}, std {s.std:.4g}, min {s.minimum:.4g}, max {s.maximum:.4g}, "
          f"{s.zero_fraction:.1%} zeros; {s.dead_units} of {s.units} units zero on every "
          "sample.")
    if s.attention_shape:
        print(f"attention weights {s.attention_shape} per sample (heads, queries, keys), "
              "each query's weights summing to 1.")
    print("Wrote " + ", ".join(str(Path(f).name) for f in s.files.values())
          + f" to {args.output}.")
    return EXIT_OK

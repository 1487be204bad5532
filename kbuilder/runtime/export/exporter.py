"""Exporting: check the destination, convert in a staging folder, check parity, publish.
"""

from __future__ import annotations

import os
from pathlib import Path

from kbuilder import files
from kbuilder.graph.errors import GraphError
from kbuilder.runtime import protocol as p
from kbuilder.runtime.export.converters import EXPORTERS
from kbuilder.runtime.export.explanations import conversion_error
from kbuilder.runtime.export.parity import check_parity, parity_failure
from kbuilder.runtime.export.report import VERIFY_BATCH, ExportError, ExportReport
from kbuilder.runtime.export.source import Source
from kbuilder.runtime.export.staging import publish, staging_folder
from kbuilder.runtime.export_formats import FILE_SUFFIXES, FORMATS, ExportFormat


def export_backend(format: str) -> str | None:
    """The backend an export worker for ``format`` must run; ``None``: any backend."""
    return "tensorflow" if _format(format).converted else None


def check_output(format: str, output: str | os.PathLike[str]) -> Path:
    """``output`` as a path, once it suits ``format`` and its folder can be written.

    Raises:
        ExportError: an unknown format, a wrong suffix, a missing or read-only folder.
    """
    spec = _format(format)
    path = Path(output)
    suffix = path.suffix.lower()
    if spec.suffix and suffix != spec.suffix:
        raise ExportError(f"An export to {spec.title} is written to a file ending in "
                          f"'{spec.suffix}'; received '{path}'.")
    if not spec.suffix:
        if suffix in FILE_SUFFIXES:
            raise ExportError(f"An export to {spec.title} is a folder; give a folder name "
                              f"without the file suffix '{path.suffix}' (received '{path}').")
        if path.is_file():
            raise ExportError(f"'{path}' is a file; an export to {spec.title} is a folder.")
    elif path.is_dir():
        raise ExportError(f"'{path}' is a folder; give a file name ending in '{spec.suffix}'.")
    problem = files.output_folder_problem(path)
    if problem:
        raise ExportError(problem)
    return path


def export_model(
    model_path: str | os.PathLike[str] | None,
    format: str,
    output: str | os.PathLike[str],
    verify: bool = True,
    batch: int | None = None,
    project_path: str | os.PathLike[str] | None = None,
) -> ExportReport:
    """Export a model to ``format`` at ``output``; call it inside a worker.

    Args:
        model_path: the ``.keras`` (or ``.h5``) model; ``None`` builds the model of the
            project at ``project_path`` with the project's weights.
        format: a key of ``FORMATS``.
        output: the file (or folder, for ``savedmodel`` and ``python``) to write.
        verify: run the parity check; an export that fails it is not written.
        batch: samples in the parity check's batch (default ``VERIFY_BATCH``).
        project_path: a ``.kbproj`` whose graph, data and training settings the ``python``
            and ``notebook`` exports are written from (a ``.keras`` model is imported
            otherwise).

    Returns:
        The report: the files written and, when verified, the parity table.

    Raises:
        ExportError: the export failed or differs from Keras; the message says why, names
            the layers a format cannot express and the package to install when one is
            missing. Nothing was written at ``output``.
    """
    spec = _format(format)
    destination = check_output(format, output)
    if model_path is None and project_path is None:
        raise ExportError("Give a model file or a project to export.")
    source = Source.load(model_path, project_path)
    report = ExportReport(format, str(destination), [])
    with staging_folder(destination) as stage:
        staged = stage / destination.name
        try:
            files = EXPORTERS[spec.name](source, staged, report)
        except ExportError:
            raise
        except GraphError as exc:  # code generation and import explain themselves
            raise ExportError(f"The export to {spec.title} failed: {exc}") from exc
        except Exception as exc:
            raise conversion_error(exc, spec, source) from exc
        files += _row_encoder_files(source, stage, destination, report)
        if verify:
            row = check_parity(spec, staged, source, batch or VERIFY_BATCH)
            report.rows.append(row)
            if not row.passed:
                raise ExportError(parity_failure(spec, row, destination))
        report.files = [str(f) for f in publish(files, stage, destination)]
    return report


def _row_encoder_files(source: Source, stage: Path, destination: Path,
                       report: ExportReport) -> list[Path]:
    """The trained model's ``row_encoder.json`` (a table in "model" encoding) written
    next to the export, with a note saying how a raw row becomes the model's inputs."""
    from kbuilder.runtime.data.row_encoder import trained_encoder

    encoder = trained_encoder(source.model_path) if source.model_path else None
    if encoder is None:
        return []
    staged = encoder.save(stage / f"{destination.stem}.row_encoder.json")
    categories = ", ".join(f"'{c['input']}' (column '{c['column']}')"
                           for c in encoder.categories) or "none"
    report.notes.append(
        f"The model takes raw table rows through {staged.name}: input "
        f"'{encoder.numeric_input}' is float32 (n, {len(encoder.feature_names)}) of the "
        f"columns {', '.join(encoder.feature_names)} in that order, in the file's units, "
        "NaN where missing (yes/no as 1/0, dates as the listed parts); each categorical "
        f"input ({categories}) is int32 (n, 1): 1 + the value's position in its "
        "'vocabulary' (a missing value is '(missing)'), 0 for a value not in it. Filling, "
        "scaling and one-hot encoding happen inside the model. In Python: "
        "kbuilder.runtime.data.row_encoder.encode_file(RowEncoder.load(path), 'rows.csv').")
    for spec in encoder.images:
        height, width = spec["size"]
        report.notes.append(
            f"Column '{spec['column']}' names image files (relative to the table's folder) "
            f"for the model's image input: uint8 (n, {height}, {width}, {spec['channels']}), "
            f"each image resized to {height}x{width} ({spec['color_mode']}, bilinear); the "
            "model's Rescaling scales the pixels.")
    return [staged]


def run_export(request: p.StartExport) -> p.Exported:
    """The worker's handling of a ``StartExport`` request."""
    report = export_model(request.model_path, request.format, request.output,
                          request.verify, project_path=request.project_path)
    return p.Exported(request.run_id, request.format, report.output, report.files,
                      report.row_dicts(), report.notes)

def _format(name: str) -> ExportFormat:
    spec = FORMATS.get(name)
    if spec is None:
        raise ExportError(f"Unknown export format '{name}'; choose one of "
                          f"{', '.join(FORMATS)}.")
    return spec

"""A run's details as the Results tab shows them: its reproducibility details and its
test figure beside the simple baselines (HTML for a ``QTextBrowser``), and what kind of
inputs it predicts on. No widgets: the page (``results_page``) puts them on screen."""

from __future__ import annotations

import html
from typing import Any

from kbuilder.graph import runs as run_files
from kbuilder.graph.runs import RunRecord
from kbuilder.graph.settings import data_fields
from kbuilder.ui.results.run_format import duration_text, when_text
from kbuilder.ui.shell import theme


def details_html(record: RunRecord, label: str, project_path: Any = None) -> str:
    """The run's reproducibility details as one HTML table, in sections; file paths are
    resolved against the project file ``project_path``."""
    muted = theme.colors().muted.name()
    rows: list[str] = []

    def section(title: str, items: list[tuple[str, Any]]) -> None:
        rows.append(f"<tr><td colspan=2 style='padding:10px 0 2px 0'><b>{html.escape(title)}"
                    "</b></td></tr>")
        rows.extend(f"<tr><td style='padding:1px 16px 1px 0; color:{muted}'>"
                    f"{html.escape(str(k))}</td><td>{html.escape(_plain(v))}</td></tr>"
                    for k, v in items)

    training = dict(record.training or {})
    data = dict(record.data or {})
    section("Run", [("run id", record.run_id), ("status", record.status),
                    ("message", record.message), ("backend", record.backend),
                    ("device", record.device), ("seed", record.seed),
                    ("duration", duration_text(record.seconds))])
    # Only the settings that apply to the run's kind of data (no image size for a CSV).
    applies = data_fields(str(data.get("source") or ""))
    section("Data", [("source", data.pop("source", None)),
                     ("fingerprint (SHA-256)", record.data_fingerprint),
                     *sorted((k, v) for k, v in data.items()
                             if v not in (None, [], (), {}) and k in applies)])
    section("Training settings",
            [(k, v) for k, v in training.items() if v not in (None, {}, [])])
    from kbuilder.runtime.baseline import Baselines  # numpy: not before the window shows

    base = Baselines.from_dict(record.baselines)
    if base is not None:
        section(f"Baselines ({base.metric}, {base.split} split)", [
            ("this model", _figure(base.model)), (base.trivial_label, _figure(base.trivial)),
            (base.linear_label, _figure(base.linear) if base.linear is not None
             else base.linear_note),
            *([("linear model fitted on", f"{base.linear_rows} training rows in "
                f"{base.linear_seconds:.2f} s")] if base.linear is not None else [])])
    section("Library versions", sorted((record.versions or {}).items()))
    artifacts = record.artifacts or {}
    if artifacts or record.run_dir:
        files = [(key, run_files.artifact_path(record, key, project_path))
                 for key in sorted(artifacts)]
        missing = run_files.missing_files_message(record, project_path)
        section("Files", [("run folder", run_files.run_folder(record, project_path)), *files,
                          *([("missing", missing)] if missing else [])])
    title = f"Run {label} — {when_text(record.created)}"
    text = (f"<h3>{html.escape(title)}</h3><table cellspacing=0>{''.join(rows)}</table>")
    if record.traceback:
        text += ("<p><b>Error</b></p>"
                 f"<pre>{html.escape(str(record.traceback)[-2000:])}</pre>")
    return text


def baseline_html(record: RunRecord) -> str:
    """The run's test figure beside the trivial and linear baselines
    (``runtime.baseline``), with the diagnosis when the model does not beat them; ``""``
    for a run without baselines (no test split, an older run)."""
    from kbuilder.runtime.baseline import Baselines  # numpy: not before the window shows

    base = Baselines.from_dict(record.baselines)
    if base is None:
        return ""
    colors = theme.colors()
    cells = [("this model", base.model), (base.trivial_label, base.trivial)]
    if base.linear is not None:
        cells.append((base.linear_label, base.linear))
    row = "".join(
        f"<td style='padding:2px 18px 2px 0'><span style='color:{colors.muted.name()}'>"
        f"{html.escape(name, quote=False)}</span><br><b>{_figure(value)}</b></td>"
        for name, value in cells)
    title = (f"Compared with simple baselines — {html.escape(base.metric)} on the "
             f"{html.escape(base.split)} split ({base.samples} samples)")
    text = f"<b>{title}</b><table cellspacing=0><tr>{row}</tr></table>"
    if base.linear_note:
        text += (f"<p style='color:{colors.muted.name()}'>No {html.escape(base.linear_label)}"
                 f": {html.escape(base.linear_note, quote=False)}</p>")
    if base.beaten:
        text += "<p>The model beats these baselines.</p>"
    else:
        if base.verdict == "not_better_than_linear":
            verdict = f"The model does not beat the {base.linear_label}."
        else:
            guess = "guessing" if base.task == "classification" else "predicting"
            verdict = (f"The model does no better than always {guess} "
                       f"{base.trivial_label.removeprefix('always ')}.")
        diagnosis = str(record.diagnosis or "")
        text += (f"<p style='color:{colors.warning.name()}'><b>{html.escape(verdict, quote=False)}"
                 f"</b> {html.escape(diagnosis, quote=False)}</p>")
    return text


def takes_images(record: RunRecord) -> bool:
    """Whether the run was trained on images (a folder of them, or a built-in set of
    images): it then predicts on images too."""
    from kbuilder.graph.settings import BUILTIN_IMAGE_DATASETS, DataSettings, SettingsError

    try:
        settings = DataSettings.from_dict(dict(record.data or {}))
    except SettingsError:
        return False
    return settings.kind == "images" or (settings.kind == "builtin"
                                         and settings.location in BUILTIN_IMAGE_DATASETS)


def _figure(value: Any) -> str:
    if not isinstance(value, int | float):
        return "—"
    return f"{value:.2f}" if abs(value) < 100 else f"{value:,.1f}"


def _plain(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(_plain(v) for v in value) or "—"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_plain(v)}" for k, v in value.items()) or "—"
    return str(value)

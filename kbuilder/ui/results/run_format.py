"""How runs and their numbers read in the Results tab and the Export dialog.

Plain functions of a run record (``kbuilder.runtime.runner.run_record``), no widgets, so
the tab's pieces agree on names and formats.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from kbuilder.graph.runs import RunRecord, artifact_path

# Keras's long metric names, as people write them.
SHORT_NAMES = {"mean_absolute_error": "MAE", "mean_squared_error": "MSE",
               "root_mean_squared_error": "RMSE", "mean_absolute_percentage_error": "MAPE",
               "sparse_categorical_accuracy": "accuracy", "categorical_accuracy": "accuracy",
               "binary_accuracy": "accuracy"}
# The protocol's split names (``StartEvaluation.split``) as sentences say them.
SPLIT_NAMES = {"test": "test", "val": "validation", "validation": "validation",
               "train": "training"}


def metric_name(name: str) -> str:
    return SHORT_NAMES.get(name, name.replace("_", " "))


def format_metric(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.1f}"
    return str(value)


def run_label(index: int) -> str:
    """The short name of the ``index``-th run (0-based, oldest first): ``#1``, ``#2``…"""
    return f"#{index + 1}"


def model_path(record: RunRecord | None, project_path: Any = None) -> str | None:
    """The trained ``.keras`` of a run, when it has one on disk (its stored path is
    resolved against the project file ``project_path``)."""
    path = artifact_path(record, "model", project_path)
    return str(path) if path is not None and path.is_file() else None


def key_metric(metrics: dict[str, Any]) -> tuple[str, Any] | None:
    """The metric that says most about a run: the first that is not a loss."""
    for name, value in metrics.items():
        if "loss" not in name:
            return name, value
    return next(iter(metrics.items()), None)


def epochs_text(record: RunRecord) -> str:
    """Epochs run out of those planned, e.g. ``12/40`` after early stopping."""
    history = record.history or {}
    done = max((len(v) for v in history.values()), default=0)
    planned = (record.training or {}).get("epochs")
    return f"{done}/{planned}" if planned else str(done)


def duration_text(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return "—"
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def when_text(created: Any) -> str:
    try:
        return dt.datetime.fromisoformat(str(created)).strftime("%d %b %Y %H:%M")
    except ValueError:
        return str(created or "—")

"""Run records made by really training, shared by the Results and Export tests.

Training happens once per run folder (the session's ``run_folder`` fixture, in
``tests/ui/conftest.py``), on one JAX worker: two runs of the CNN template on digits (two
learning rates, two epochs each) and one run of the MLP template on the diabetes regression
data. The records' files lie in the folder the caller passed. Each caller gets fresh
projects holding deep copies of the records, so a test that deletes a run does not change
another test's project.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

# (what, run folder) -> records: another folder trains again, into that folder.
_cache: dict[tuple[str, Path], Any] = {}


def _train(project: Any, worker: Any, run_dir: Path, **overrides: Any) -> dict[str, Any]:
    from kbuilder.graph.settings import DataSettings
    from kbuilder.runtime import protocol as p
    from kbuilder.runtime.runner import run_record, start_run

    training = dataclasses.replace(project.training, **{"backend": "jax", "epochs": 2,
                                                        **overrides})
    training.validate()
    run = start_run(project, project.data or DataSettings(), training, worker=worker,
                    run_dir=run_dir)
    started = None
    for message in run.events():
        if isinstance(message, p.RunStarted):
            started = message
    assert isinstance(run.result, p.Finished), getattr(run.result, "reason", run.result)
    return run_record(run, started)


def _projects() -> tuple[Any, Any]:
    from kbuilder.graph.settings import DataSettings
    from kbuilder.runtime.preflight import new_project_for_data

    return (new_project_for_data("cnn_classifier", DataSettings(source="digits")),
            new_project_for_data("mlp_classifier", DataSettings(source="diabetes")))


def trained_projects(folder: Path) -> tuple[Any, Any]:
    """``(digits CNN project with 2 runs, diabetes MLP project with 1 run)``."""
    key = ("records", Path(folder))
    if key not in _cache:
        from kbuilder.runtime.client import Worker

        digits, diabetes = _projects()
        worker = Worker("jax")
        try:
            _cache[key] = (
                [_train(digits, worker, folder / "run1", learning_rate=1e-3),
                 _train(digits, worker, folder / "run2", learning_rate=3e-3)],
                [_train(diabetes, worker, folder / "run3", epochs=3)],
            )
        finally:
            worker.shutdown()
    digits, diabetes = _projects()
    digits.runs, diabetes.runs = copy.deepcopy(_cache[key])
    return digits, diabetes


def trained_table_project(folder: Path) -> tuple[Any, Path]:
    """``(project, csv)``: the MLP template fitted to a generated penguins CSV (its
    preprocessing in the model, ``table_encoding="model"``) with one 3-epoch run on JAX."""
    from kbuilder.graph.settings import DataSettings
    from kbuilder.runtime.preflight import new_project_for_data
    from tests.runtime.penguins import penguins_csv

    key = ("table", Path(folder))
    if key not in _cache:
        from kbuilder.runtime.client import Worker

        table = penguins_csv(folder / "penguins.csv", missing=20)
        project = new_project_for_data(
            "mlp_classifier", DataSettings(source=f"csv:{table}:target=species"))
        worker = Worker("jax")
        try:
            _cache[key] = (table, _train(project, worker, folder / "table-run", epochs=3))
        finally:
            worker.shutdown()
    table, record = _cache[key]
    project = new_project_for_data("mlp_classifier",
                                   DataSettings(source=f"csv:{table}:target=species"))
    project.runs = [copy.deepcopy(record)]
    return project, table

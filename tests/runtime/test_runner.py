"""The record of a finished run, as the runner writes it into the project."""

from __future__ import annotations

from types import SimpleNamespace

from kbuilder.runtime import protocol as p
from kbuilder.runtime.runner import run_record


def _run(tmp_path, result: p.Message, history: dict) -> SimpleNamespace:
    request = p.StartTraining("r1", {}, {"source": "iris"}, {"epochs": 2, "seed": 3},
                              str(tmp_path / "r1"))
    worker = SimpleNamespace(backend="jax", device="cpu", ready=None)
    return SimpleNamespace(result=result, request=request, worker=worker, history=history)


def test_a_finished_run_is_recorded_with_its_results(tmp_path):
    finished = p.Finished("r1", "completed", "done", {"loss": [1.0, 0.5]}, {"accuracy": 0.9},
                          {}, {"model": str(tmp_path / "r1" / "model.keras")}, 1.5)
    record = run_record(_run(tmp_path, finished, {"loss": [1.0, 0.5]}), None)
    assert record.status == "completed" and record.test_metrics == {"accuracy": 0.9}
    assert record.seed == 3 and record.history == {"loss": [1.0, 0.5]}


def test_results_the_record_cannot_hold_keep_the_run_and_say_so(tmp_path):
    # A worker bug: an artifact that is not a path. The run, its settings and curves stay.
    finished = p.Finished("r1", "completed", "done", {"loss": [1.0]}, {"accuracy": 0.9},
                          {}, {"model": 7}, 1.5)  # artifacts must be paths
    record = run_record(_run(tmp_path, finished, {"loss": [1.0, 0.5]}), None)
    assert record.status == "failed"
    assert "could not record this run's results" in record.message
    assert "artifacts" in record.message
    assert record.history == {"loss": [1.0, 0.5]} and record.training["epochs"] == 2

"""The window never loses what the user did (issue 12, items 1-3 and 5-6): Save Model as
.keras saves the trained model, runs other programs record are merged in, a model changed
on disk is not overwritten without asking, read-only files are refused, orphaned runs are
offered back, runs move beside the project on its first save."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from kbuilder.graph import runs
from kbuilder.graph.project import add_runs, load_project, save_project
from tests.ui.trained_runs import trained_projects


def weights_of(path: Path) -> list[np.ndarray]:
    import keras

    return keras.saving.load_model(path, compile=False).get_weights()


def test_save_model_as_keras_saves_the_latest_trained_run(qtbot, window, run_folder,
                                                          tmp_path):
    digits, _ = trained_projects(run_folder)
    window.set_project(digits)
    target = tmp_path / "trained.keras"
    window.dialogs.save_path = str(target)
    window.dialogs.choice = 0  # what is offered first: the latest trained run
    started = time.monotonic()
    window.export_action.trigger()
    assert time.monotonic() - started < 1.0  # the window does not wait for the copy
    qtbot.waitUntil(lambda: not window.model_saver.busy, timeout=30_000)
    assert not window.dialogs.errors
    (message, choices), = window.dialogs.asked_choice
    assert choices[0].startswith("The model trained in run #2 (the latest)")
    assert choices[-1].startswith("The model being edited")
    assert "run #2" in window.statusBar().currentMessage()
    latest = runs.artifact_path(runs.latest_trained(digits.runs), "model", digits.path)
    saved, trained = weights_of(target), weights_of(latest)
    assert len(saved) == len(trained)
    assert all(np.array_equal(a, b) for a, b in zip(saved, trained, strict=True))
    # Not the untrained model: fresh weights differ from the trained ones.
    window.dialogs.choice = len(choices) - 1
    untrained = tmp_path / "untrained.keras"
    window.dialogs.save_path = str(untrained)
    started = time.monotonic()
    window.export_action.trigger()  # built in a worker: the window does not wait either
    assert time.monotonic() - started < 1.0
    qtbot.waitUntil(lambda: not window.model_saver.busy, timeout=180_000)
    assert untrained.is_file(), window.dialogs.errors
    assert "model being edited" in window.statusBar().currentMessage()
    assert not all(np.array_equal(a, b) for a, b in
                   zip(weights_of(untrained), trained, strict=True))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trained.keras", "untrained.keras"]


def fake_run(folder: Path, run_id: str) -> runs.RunRecord:
    run_dir = folder / run_id
    run_dir.mkdir(parents=True)
    (run_dir / "model.keras").write_bytes(b"not really a model")
    record = {"run_id": run_id, "status": "completed", "backend": "jax",
              "created": "2026-01-01T10:00:00", "history": {"loss": [1.0, 0.5]},
              "run_dir": str(run_dir), "artifacts": {"model": str(run_dir / "model.keras")}}
    (run_dir / runs.RUN_MARKER).write_text(json.dumps(record))
    return runs.RunRecord.from_dict(record)


@pytest.fixture
def saved(mlp_window, tmp_path):
    path = tmp_path / "p.kbproj"
    mlp_window.dialogs.save_path = str(path)
    assert mlp_window.save()
    return mlp_window, path


def test_runs_recorded_by_another_program_are_merged_in(saved):
    window, path = saved
    record = fake_run(runs.runs_folder(path), "other-1")
    add_runs(path, [record])  # what `kbuilder train` does when its run ends
    window.check_disk()  # the window's timer does this every two seconds
    assert [r.run_id for r in window.project.runs] == ["other-1"]
    assert "1 run recorded in p.kbproj by another program" in (
        window.statusBar().currentMessage())
    assert not window.doc.modified  # nothing of the window's own to save
    window._show_page(window.results_page)
    assert window.results_page.table.rowCount() == 1
    window._show_page(window.editor)
    # Saving a change of the window's own keeps that run, and asks nothing.
    window._on_settings_changed()
    assert window.save() and not window.dialogs.asked_confirm
    assert [r.run_id for r in load_project(path).runs] == ["other-1"]


def test_a_model_changed_on_disk_is_not_overwritten_without_asking(saved):
    window, path = saved
    other = load_project(path)
    other.graph.name = "edited_elsewhere"
    save_project(other, path)
    add_runs(path, [fake_run(runs.runs_folder(path), "other-2")])
    window.check_disk()
    assert "changed by another program" in window.statusBar().currentMessage()
    window._on_settings_changed()  # an unsaved change in the window
    window.dialogs.confirm = False
    assert not window.save()
    assert window.dialogs.asked_confirm[-1][0] == "The project changed on disk"
    assert load_project(path).graph.name == "edited_elsewhere"
    window.dialogs.confirm = True
    assert window.save()
    on_disk = load_project(path)
    assert on_disk.graph.name != "edited_elsewhere"
    assert [r.run_id for r in on_disk.runs] == ["other-2"]  # its run kept


def test_saving_a_read_only_project_says_so(saved):
    window, path = saved
    path.chmod(0o444)
    before = path.read_bytes()
    window._on_settings_changed()
    assert not window.save()
    title, message = window.dialogs.errors[-1]
    assert title == "Could not save the project" and "read-only" in message
    assert path.read_bytes() == before and window.doc.modified


def test_orphaned_runs_are_offered_back_when_the_project_opens(saved, make_window):
    _, path = saved
    fake_run(runs.runs_folder(path), "killed-1")
    (runs.runs_folder(path) / "killed-1" / runs.RUN_MARKER).write_text(json.dumps(
        {"run_id": "killed-1", "backend": "jax", "run_dir": "."}))  # as the run started
    window = make_window()
    assert window.open_project(path)
    title, message = window.dialogs.asked_confirm[-1]
    assert title == "Runs missing from the history" and "killed-1" in message
    (record,) = window.project.runs
    assert record.status == "interrupted" and window.doc.modified
    assert runs.artifact_path(record, "model", path).is_file()
    assert window.save()
    assert [r.run_id for r in load_project(path).runs] == ["killed-1"]


def test_first_save_brings_the_runs_beside_the_project(mlp_window, tmp_path, monkeypatch):
    monkeypatch.setattr(runs.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    record = fake_run(runs.runs_folder(None), "before-save")
    mlp_window.project.runs.append(record)
    path = tmp_path / "first.kbproj"
    mlp_window.dialogs.save_path = str(path)
    assert mlp_window.save()
    (stored,) = load_project(path).runs
    assert stored.model_file == "first.runs/before-save/model.keras"
    assert (tmp_path / "first.runs" / "before-save" / "model.keras").is_file()
    assert not (tmp_path / "tmp" / "kbuilder-runs" / "before-save").exists()


def test_a_run_whose_folder_is_gone_says_so_and_keeps_its_history(saved):
    window, path = saved
    record = fake_run(runs.runs_folder(path), "gone-1")
    add_runs(path, [record])
    window.check_disk()
    import shutil

    shutil.rmtree(runs.runs_folder(path) / "gone-1")
    window._show_page(window.results_page)
    page = window.results_page
    assert page.table.rowCount() == 1  # the history is kept
    text = page.details.toPlainText()
    assert "the files of run gone-1 are missing" in text
    assert str(runs.runs_folder(path) / "gone-1") in text
    assert not page.open_button.isEnabled()


def test_an_evaluation_lands_on_its_run_after_a_save_replaced_the_record(
        mlp_window, tmp_path, monkeypatch):
    from kbuilder.runtime import protocol as p

    monkeypatch.setattr(runs.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    record = fake_run(runs.runs_folder(None), "evaluated-1")
    mlp_window.project.runs.append(record)
    mlp_window._show_page(mlp_window.results_page)
    page = mlp_window.results_page
    page._evaluating = record  # as an evaluation started on it does
    mlp_window.dialogs.save_path = str(tmp_path / "p.kbproj")
    assert mlp_window.save()  # the run's folder moves: its record is replaced
    page._on_evaluated(p.Evaluated("evaluated-1", "test", 3, {"accuracy": 0.5}, {}))
    (now,) = mlp_window.project.runs
    assert now.run_dir == "p.runs/evaluated-1"  # the moved record, not the old one
    assert [e["split"] for e in now.evaluations] == ["test"] and mlp_window.doc.modified
    page._evaluating = now
    mlp_window.project.runs.clear()  # deleted while it was being evaluated
    page._on_evaluated(p.Evaluated("evaluated-1", "val", 3, {"accuracy": 0.5}, {}))
    assert mlp_window.project.runs == []

"""Runs on disk (issue 12, items 2, 3, 6, 10): saves merge what other writers recorded,
run folders move beside the project and their paths follow it, read-only files are
refused, interrupted saves' temporary files are cleaned up under the project lock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from kbuilder.files import check_writable, lock_path
from kbuilder.graph import runs
from kbuilder.graph.errors import ProjectFileError
from kbuilder.graph.project import (
    Project,
    add_runs,
    changed_on_disk,
    disk_changes,
    load_project,
    save_project,
)


def fake_run(folder: Path, run_id: str | None = None) -> runs.RunRecord:
    """A run record (absolute paths, as ``run_record`` makes them) with a model file."""
    run_id = run_id or f"run-{uuid.uuid4().hex[:8]}"
    run_dir = folder / run_id
    run_dir.mkdir(parents=True)
    (run_dir / "model.keras").write_bytes(b"model of " + run_id.encode())
    record = {"run_id": run_id, "status": "completed", "run_dir": str(run_dir),
              "artifacts": {"model": str(run_dir / "model.keras")}}
    (run_dir / runs.RUN_MARKER).write_text(json.dumps(record))
    return runs.RunRecord.from_dict(record)


def test_first_save_moves_the_runs_beside_the_project(tmp_path, monkeypatch):
    monkeypatch.setattr(runs.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    project = Project.new()
    record = fake_run(runs.runs_folder(None))
    project.runs.append(record)
    path = tmp_path / "work" / "p.kbproj"
    path.parent.mkdir()
    save_project(project, path)
    stored = load_project(path).runs[0]
    assert stored.model_file == f"p.runs/{record.run_id}/model.keras"
    assert stored.run_dir == f"p.runs/{record.run_id}"
    assert project.runs[0] == stored  # the project's own record rewritten too
    assert not Path(record.run_dir).exists()  # moved out of the temporary folder
    # Used from another working directory, after the project and its runs moved.
    (tmp_path / "work").rename(tmp_path / "moved")
    monkeypatch.chdir(tmp_path)
    moved = load_project(tmp_path / "moved" / "p.kbproj")
    model = runs.artifact_path(runs.latest_trained(moved.runs), "model", moved.path)
    assert model.read_bytes() == b"model of " + record.run_id.encode()


def test_save_as_copies_the_runs_of_a_saved_project(tmp_path):
    project = Project.new()
    first = tmp_path / "a.kbproj"
    save_project(project, first)
    add_runs(first, [fake_run(runs.runs_folder(first))])
    project = load_project(first)
    save_project(project, tmp_path / "b.kbproj")
    a, b = load_project(first).runs[0], load_project(tmp_path / "b.kbproj").runs[0]
    assert a.model_file.startswith("a.runs/")
    assert b.model_file.startswith("b.runs/")
    assert runs.artifact_path(a, "model", first).is_file()  # the old project keeps its own
    assert runs.artifact_path(b, "model", tmp_path / "b.kbproj").is_file()


def test_old_absolute_and_working_directory_paths_still_resolve(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    absolute = fake_run(tmp_path / "anywhere")
    relative = fake_run(tmp_path / "cwd.runs")
    relative = replace(relative, artifacts={"model": os.path.relpath(relative.model_file)})
    project_path = tmp_path / "sub" / "p.kbproj"
    assert runs.artifact_path(absolute, "model", project_path).is_file()
    assert runs.artifact_path(relative, "model", project_path).is_file()
    gone = runs.RunRecord("x1", run_dir="p.runs/x1", artifacts={"model": "p.runs/x1/m.keras"})
    message = runs.missing_files_message(gone, project_path)
    assert message.startswith("the files of run x1 are missing: ")
    assert str(project_path.parent / "p.runs" / "x1") in message


def test_a_save_keeps_runs_another_process_recorded(tmp_path):
    path = tmp_path / "p.kbproj"
    window = Project.new()
    mine = fake_run(tmp_path / "elsewhere")
    window.runs.append(mine)
    save_project(window, path)
    theirs = fake_run(runs.runs_folder(path))
    add_runs(path, [theirs])  # what `kbuilder train` does at the end of a run
    assert changed_on_disk(window)
    changes = disk_changes(window)
    assert [r.run_id for r in changes.new_runs] == [theirs.run_id]
    assert not changes.graph_changed
    window.view["zoom"] = 3.0
    window.runs.clear()  # the user deleted their run: it must stay deleted
    save_project(window, path)
    saved = load_project(path)
    assert [r.run_id for r in saved.runs] == [theirs.run_id]
    assert saved.view["zoom"] == 3.0


def test_graph_changes_on_disk_are_detected(tmp_path):
    path = tmp_path / "p.kbproj"
    save_project(Project.new(), path)
    window = load_project(path)
    other = load_project(path)
    other.graph.name = "renamed"
    save_project(other, path)
    assert disk_changes(window).graph_changed


def test_a_read_only_project_is_refused(tmp_path):
    path = tmp_path / "p.kbproj"
    save_project(Project.new(), path)
    path.chmod(0o444)
    before = path.read_bytes()
    with pytest.raises(ProjectFileError, match="read-only; make it writable"):
        save_project(load_project(path), path)
    with pytest.raises(ProjectFileError, match="read-only"):
        add_runs(path, [fake_run(tmp_path / "r")])
    assert path.read_bytes() == before
    assert "read-only" in check_writable(path)


def test_stale_temporary_files_are_removed_by_the_next_save(tmp_path):
    path = tmp_path / "p.kbproj"
    save_project(Project.new(), path)
    stale = [tmp_path / ".p.kbproj.0123456789ab.tmp", tmp_path / ".p.kbproj.ba9876543210.tmp"]
    for file in stale:
        file.write_bytes(b"half a project")
    unrelated = tmp_path / ".other.kbproj.0123456789ab.tmp"
    unrelated.write_bytes(b"another project's save in progress")
    save_project(load_project(path), path)
    assert not any(file.exists() for file in stale)
    assert unrelated.exists()


def test_a_save_waits_for_another_writer_holding_the_lock(tmp_path):
    path = tmp_path / "p.kbproj"
    save_project(Project.new(), path)
    in_progress = tmp_path / ".p.kbproj.aaaaaaaaaaaa.tmp"
    code = (f"import time; from filelock import FileLock\n"
            f"with FileLock({str(lock_path(path))!r}):\n"
            f"    open({str(in_progress)!r}, 'wb').write(b'x'); print('held', flush=True)\n"
            f"    time.sleep(1.5)\n")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    assert in_progress.exists()
    started = time.monotonic()
    save_project(load_project(path), path)
    assert time.monotonic() - started > 0.5  # waited for the other writer
    holder.wait(10)


def test_a_failed_first_save_leaves_the_runs_where_they_were(tmp_path, monkeypatch):
    monkeypatch.setattr(runs.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    project = Project.new()
    record = fake_run(runs.runs_folder(None))
    project.runs.append(record)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("kbuilder.graph.project.writing._write_container", disk_full)
    with pytest.raises(OSError):
        save_project(project, tmp_path / "p.kbproj")
    assert project.runs[0] is record
    assert Path(record.model_file).is_file()
    assert not (tmp_path / "p.runs").exists() or not any((tmp_path / "p.runs").iterdir())


def test_a_folder_still_training_is_no_orphan_and_its_record_replaces_an_adopted_one(
        tmp_path):
    from kbuilder.files import claim_folder, release_claim

    path = tmp_path / "p.kbproj"
    save_project(Project.new(), path)
    record = fake_run(runs.runs_folder(path))
    folder = Path(record.run_dir)
    claim = claim_folder(folder)  # what start_run does until the run is recorded
    assert runs.orphaned_run_folders([], path) == []
    release_claim(claim)  # as when the training process dies
    (orphan,) = runs.orphaned_run_folders([], path)
    add_runs(path, [runs.adopt(orphan)])
    assert load_project(path).runs[0].adopted
    add_runs(path, [replace(record, status="completed")])  # the run's own record, later
    (stored,) = load_project(path).runs
    assert stored.status == "completed" and stored.adopted is None
    assert "adopted" not in stored.to_dict()

"""Nothing a user did is lost by `kbuilder train` (issue 12, items 2-6): concurrent
writers, paths that survive moving the project, side outputs that fail, SIGTERM and
SIGKILL, read-only projects. Real `kbuilder` processes on a real JAX worker, iris data,
one epoch."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kbuilder import cli
from kbuilder.graph import runs
from kbuilder.graph.project import load_project, save_project

REPO = Path(__file__).resolve().parents[2]


def run(*argv) -> int:
    return cli.main([str(a) for a in argv])


def kbuilder(*argv, cwd: Path | None = None, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    return subprocess.Popen([sys.executable, "-m", "kbuilder", *map(str, argv)], cwd=cwd,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kwargs)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    path = tmp_path / "iris.kbproj"
    assert run("new", "--template", "mlp_classifier", "--data", "iris", "-o", path) == 0
    return path


def train_args(path: Path, epochs: int = 1) -> list:
    return ["train", path, "--backend", "jax", "--epochs", epochs, "--batch-size", 16]


def test_two_trains_on_one_project_record_both_runs(project):
    first, second = kbuilder(*train_args(project)), kbuilder(*train_args(project))
    for proc in (first, second):
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    runs = load_project(project).runs
    assert len(runs) == 2 and len({r.run_id for r in runs}) == 2


def wait_for_epoch(proc: subprocess.Popen, lines: list[str]) -> None:
    """Collect the process's stderr in the background; return once an epoch ended."""
    seen = threading.Event()

    def read() -> None:
        for line in proc.stderr:
            lines.append(line)
            if line.startswith("epoch "):
                seen.set()
        seen.set()

    threading.Thread(target=read, daemon=True).start()
    assert seen.wait(240), "".join(lines)


def test_a_change_saved_during_training_is_kept(project):
    proc = kbuilder(*train_args(project, epochs=400))
    lines: list[str] = []
    wait_for_epoch(proc, lines)
    (folder,) = runs.runs_folder(project).iterdir()
    assert (folder / runs.RUN_MARKER).is_file()
    assert runs.orphaned_run_folders([], project) == []  # still training: not offered
    other = load_project(project)  # another writer (the window, another CLI) saves
    other.view["zoom"] = 2.5
    other.training = dataclasses.replace(other.training, epochs=7)
    save_project(other, project)
    proc.send_signal(signal.SIGINT)  # stop the run after its batch
    proc.wait(120)
    saved = load_project(project)
    assert saved.view["zoom"] == 2.5 and saved.training.epochs == 7
    assert len(saved.runs) == 1, "".join(lines)


def test_sigterm_stops_and_records_the_run(project):
    proc = kbuilder(*train_args(project, epochs=400))
    lines: list[str] = []
    wait_for_epoch(proc, lines)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(120) == 143
    time.sleep(0.2)
    assert "terminated (SIGTERM)" in "".join(lines) and "recorded in" in "".join(lines)
    (record,) = load_project(project).runs
    assert record.status == "stopped"
    assert Path(project.parent / record.model_file).is_file()


def test_a_killed_train_leaves_a_run_folder_that_can_be_adopted(project, capsys):
    proc = kbuilder(*train_args(project, epochs=400), start_new_session=True)
    lines: list[str] = []
    wait_for_epoch(proc, lines)
    os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its worker
    proc.wait(60)
    assert load_project(project).runs == []
    capsys.readouterr()
    assert run("check", project) == 0
    assert "1 run folder that its history does not list" in capsys.readouterr().err
    assert run("runs", project, "--adopt") == 0
    assert "Added 1 run back" in capsys.readouterr().out
    (record,) = load_project(project).runs
    assert record.status == "interrupted" and record.backend == "jax"
    assert record.run_dir.startswith("iris.runs/")
    assert (project.parent / record.run_dir).is_dir()


def test_output_paths_are_checked_before_training(project, capsys):
    missing = project.parent / "no" / "such" / "h.json"
    assert run(*train_args(project), "--history", missing) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (project.parent / "iris.runs").exists()  # refused before training


def test_a_failing_side_output_never_drops_the_run(project, capsys, monkeypatch):
    import kbuilder.files

    def disk_full(path, content):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(kbuilder.files, "atomic_write", disk_full)
    assert run(*train_args(project), "--history", project.parent / "h.json") == 0
    assert "could not write" in capsys.readouterr().err
    assert len(load_project(project).runs) == 1


def test_a_read_only_project_is_refused_before_training(project, capsys):
    before = project.read_bytes()
    project.chmod(0o444)
    assert run(*train_args(project)) == 2
    err = capsys.readouterr().err
    assert "read-only" in err and "--no-save" in err
    assert project.read_bytes() == before and not (project.parent / "iris.runs").exists()


def test_run_paths_follow_the_project_when_it_moves(project, tmp_path, capsys,
                                                    monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run(*train_args(Path(project.name))) == 0
    (record,) = load_project(project).runs
    assert record.model_file.startswith("iris.runs/")
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    project.rename(moved / project.name)
    (tmp_path / "iris.runs").rename(moved / "iris.runs")
    monkeypatch.chdir(REPO)  # another working directory
    capsys.readouterr()
    assert run("evaluate", moved / project.name, "--json") == 0
    assert json.loads(capsys.readouterr().out)["samples"] == 30
    # The run folder deleted: said as such, the history kept.
    import shutil

    shutil.rmtree(moved / "iris.runs")
    assert run("evaluate", moved / project.name) == 1
    err = capsys.readouterr().err
    assert f"the files of run {record.run_id} are missing" in err
    assert len(load_project(moved / project.name).runs) == 1

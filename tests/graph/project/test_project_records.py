"""Typed project records (issue 14, Deliver 1): a project's data and training settings
and its runs are checked when the file is read; a wrong value is a ProjectFileError that
names the section and field, and nothing is loaded."""

from __future__ import annotations

import copy
import dataclasses
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from kbuilder import cli
from kbuilder.graph.errors import ProjectFileError
from kbuilder.graph.project import Project, load_project, project_to_json, save_project
from kbuilder.graph.runs import RunRecord
from kbuilder.graph.settings import DataSettings, TrainingSettings

# What kbuilder 0.x (project format 1) wrote for a project trained twice: a finished run,
# a failed one and one adopted from its folder. Written out literally, not produced by
# the code under test, so that a change of the stored form shows.
OLD_RUN = {
    "run_id": "20250101-120000-abc123", "created": "2025-01-01T12:00:00",
    "backend": "jax", "device": "cpu", "versions": {"keras": "3.8.0", "jax": "0.5.0"},
    "data": {"source": "iris", "validation_split": 0.2, "test_split": 0.2, "seed": 0},
    "training": {"backend": "jax", "epochs": 2, "metrics": ["accuracy"]}, "seed": 0,
    "data_fingerprint": "9f2c", "history": {"loss": [1.1, None], "accuracy": [0.3, 0.5]},
    "run_dir": "model.runs/20250101-120000-abc123", "status": "completed",
    "message": "Training finished.", "test_metrics": {"accuracy": 0.5},
    "results": {"confusion": [[1, 0], [0, 1]]},
    "artifacts": {"model": "model.runs/20250101-120000-abc123/model.keras"},
    "seconds": 1.5, "diagnosis": "", "baselines": {},
    "evaluations": [{"split": "test", "samples": 30, "metrics": {"accuracy": 0.5}}],
}
OLD_FAILED = {
    "run_id": "20250101-130000-def456", "created": "2025-01-01T13:00:00", "backend": "torch",
    "device": "cpu", "versions": {}, "data": {}, "training": {}, "seed": None,
    "data_fingerprint": None, "history": {}, "run_dir": "model.runs/20250101-130000-def456",
    "status": "failed", "message": "out of memory", "test_metrics": {}, "results": {},
    "artifacts": {}, "traceback": "Traceback ...",
}
GONE = "/no-such-folder/kbuilder-run"  # a folder that no longer exists: it stays as it is
OLD_ADOPTED = {"run_id": "20250101-140000-aaa111", "run_dir": GONE, "adopted": True,
               "status": "interrupted", "artifacts": {"model": f"{GONE}/model.keras"},
               "test_metrics": {}, "results": {}, "message": "ended early"}


def old_document() -> dict[str, Any]:
    return {
        "format": "kbuilder-project", "format_version": 1, "kbuilder_version": "0.1.0",
        "saved_at": "2025-01-01T15:00:00+00:00",
        "graph": {"name": "model", "nodes": [], "edges": []},
        "view": {"positions": {}, "zoom": 1.0, "center": [0.0, 0.0], "collapsed": []},
        "data": {"source": "csv:data/iris.csv", "target": "species", "roles": [["a", "ignore"]],
                 "input_arrays": {"image": "pixels"}},
        "training": {"backend": "torch", "epochs": 3, "metrics": ["accuracy"],
                     "early_stopping": {"patience": 2}},
        "runs": [copy.deepcopy(OLD_RUN), copy.deepcopy(OLD_FAILED), copy.deepcopy(OLD_ADOPTED)],
    }


def write_project(path: Path, document: dict[str, Any]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("project.json", json.dumps(document))
    return path


def with_value(section: str, key: str | None, value: Any) -> dict[str, Any]:
    document = old_document()
    if key is None:
        document[section] = value
    else:
        document[section][key] = value
    return document


def with_run(index: int, key: str, value: Any) -> dict[str, Any]:
    document = old_document()
    document["runs"][index][key] = value
    return document


HOSTILE = [
    # (document, the place named, words of the sentence)
    (with_value("training", "epochs", "ten"), "training.epochs",
     "must be a whole number >= 1; found 'ten'"),
    (with_value("training", "backend", "cobol"), "training.backend",
     "must be one of jax, tensorflow, torch; found 'cobol'"),
    (with_value("training", "learning_rate", [1]), "training.learning_rate", "must be a number"),
    (with_value("training", "metrics", 5), "training.metrics", "has the wrong type; found 5"),
    (with_value("training", "early_stopping", "yes"), "training.early_stopping",
     "must be off (null) or a set of options"),
    (with_value("training", "momentum", 0.9), "training.momentum", "unknown setting"),
    (with_value("training", None, [1, 2]), "training", "must be an object; found a list"),
    (with_value("data", "source", 5), "data.source", "found 5"),
    (with_value("data", "source", "cobol:x"), "data.source", "unknown data source 'cobol:x'"),
    (with_value("data", "image_size", 5), "data.image_size", "has the wrong type; found 5"),
    (with_value("data", "validation_split", "half"), "data.validation_split",
     "must be a fraction"),
    (with_value("data", "roles", [["a", "nonsense"]]), "data.roles", "found 'nonsense'"),
    (with_value("data", "input_arrays", 3), "data.input_arrays", "must map node names"),
    (with_value("data", None, "iris"), "data", "must be an object; found 'iris'"),
    (with_value("runs", None, {"a": 1}), "runs", "must be a list; found an object"),
    (with_value("runs", None, "run-1"), "runs", "must be a list; found 'run-1'"),
    (with_run(0, "artifacts", "model.keras"), "runs[0].artifacts",
     "must be an object of file paths"),
    (with_run(0, "artifacts", {"model": 3}), "runs[0].artifacts", "found an object"),
    (with_run(1, "history", {"loss": "low"}), "runs[1].history",
     "must be an object of lists of numbers"),
    (with_run(1, "seconds", "fast"), "runs[1].seconds", "must be a number; found 'fast'"),
    (with_run(2, "adopted", "yes"), "runs[2].adopted", "must be true or false"),
    (with_run(2, "run_id", 7), "runs[2].run_id", "must be a string; found 7"),
    (with_run(0, "evaluations", [1]), "runs[0].evaluations", "must be a list of objects"),
    (with_run(0, "run_id", ""), "runs[0].run_id", "is missing"),
]


@pytest.mark.parametrize(("document", "place", "words"), HOSTILE,
                         ids=[f"{place}-{i}" for i, (_, place, _) in enumerate(HOSTILE)])
def test_hostile_sections_name_the_field(tmp_path: Path, document: dict[str, Any],
                                         place: str, words: str) -> None:
    path = write_project(tmp_path / "model.kbproj", document)
    with pytest.raises(ProjectFileError) as caught:
        load_project(path)
    message = str(caught.value)
    assert message.startswith(f"model.kbproj: {place} "), message
    assert words in message
    assert "\n" not in message


def test_a_runs_entry_that_is_not_an_object_is_refused(tmp_path: Path) -> None:
    document = old_document()
    document["runs"].insert(1, 3)
    with pytest.raises(ProjectFileError, match=r"runs\[1\] must be an object; found 3"):
        load_project(write_project(tmp_path / "model.kbproj", document))


def test_an_old_project_opens_and_saves_the_same_sections(tmp_path: Path) -> None:
    document = old_document()
    path = write_project(tmp_path / "model.kbproj", document)
    project = load_project(path)
    assert project.data == DataSettings("csv:data/iris.csv", target="species",
                                        roles=(("a", "ignore"),),
                                        input_arrays=(("image", "pixels"),),
                                        stream_table=False)  # saved before "auto"
    assert project.training == TrainingSettings(backend="torch", epochs=3,
                                                early_stopping={"patience": 2})
    assert [run.to_dict() for run in project.runs] == document["runs"]
    assert all(isinstance(run, RunRecord) for run in project.runs)
    save_project(project, path)
    with zipfile.ZipFile(path) as archive:
        saved = json.loads(archive.read("project.json"))
    assert saved["runs"] == document["runs"] and saved["graph"] == document["graph"]
    # The settings are written in full (the defaults too); they read back the same.
    assert saved["training"] == project.training.to_dict()
    assert saved["data"] == {**project.data.to_dict(), "input_arrays": {"image": "pixels"}}
    assert load_project(path).data == project.data
    assert load_project(path).training == project.training
    assert saved["format_version"] == document["format_version"]


def test_an_empty_project_still_opens(tmp_path: Path) -> None:
    path = tmp_path / "empty.kbproj"
    save_project(Project.new(), path)
    loaded = load_project(path)
    assert (loaded.data, loaded.training, loaded.runs) == (None, TrainingSettings(), [])
    with zipfile.ZipFile(path) as archive:
        assert json.loads(archive.read("project.json"))["data"] == {}  # none chosen


@pytest.mark.parametrize("record", [OLD_RUN, OLD_FAILED, OLD_ADOPTED])
def test_run_record_round_trips_the_json_of_today(record: dict[str, Any]) -> None:
    typed = RunRecord.from_dict(record, "runs[0]")
    assert typed.to_dict() == record  # the same keys (none added as null) and values
    assert list(typed.to_dict()) == list(record)  # in the same order
    changed = dataclasses.replace(typed, status="stopped", seconds=2.0)
    assert changed.to_dict() == {**record, "status": "stopped", "seconds": 2.0}


def test_a_run_record_made_in_code_writes_what_run_record_writes() -> None:
    made = RunRecord("r1", backend="jax", status="completed").to_dict()
    assert made == {"run_id": "r1", "created": None, "backend": "jax", "device": None,
                    "versions": None, "data": None, "training": None, "seed": None,
                    "data_fingerprint": None, "history": None, "run_dir": None,
                    "status": "completed"}


def test_run_record_keeps_keys_of_a_newer_kbuilder() -> None:
    typed = RunRecord.from_dict({**OLD_RUN, "energy_kwh": 0.2}, "runs[0]")
    assert typed.extra == {"energy_kwh": 0.2}
    assert typed.to_dict()["energy_kwh"] == 0.2


def test_run_record_fields_are_typed() -> None:
    typed = RunRecord.from_dict(OLD_RUN, "runs[0]")
    assert typed.model_file == OLD_RUN["artifacts"]["model"]
    assert typed.seconds == 1.5 and typed.status == "completed"
    assert RunRecord.from_dict(OLD_FAILED).model_file is None
    with pytest.raises(ProjectFileError, match=r"^runs\[4\]\.status must be a string") as caught:
        RunRecord.from_dict({**OLD_RUN, "status": ["done"]}, "runs[4]")
    assert caught.value.param == "status"


def test_what_a_save_writes_a_load_reads(tmp_path: Path) -> None:
    project = Project.new()
    project.training = TrainingSettings(epochs=4, backend="torch")
    project.runs = [RunRecord.from_dict(copy.deepcopy(OLD_RUN))]
    save_project(project, tmp_path / "a.kbproj")
    loaded = load_project(tmp_path / "a.kbproj")
    assert loaded.training == project.training
    assert project_to_json(loaded)["training"] == project.training.to_dict()


@pytest.mark.parametrize("command", [["evaluate"], ["predict", "-o", "p.csv"],
                                     ["export", "--format", "keras", "-o", "m.keras"],
                                     ["check"], ["train"]], ids=lambda c: c[0])
def test_cli_on_a_hostile_project_says_the_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    document = with_value("training", "epochs", "ten")
    document["runs"][2]["artifacts"] = "model.keras"  # the first problem is reported
    path = write_project(tmp_path / "hostile.kbproj", document)
    code = cli.main([*command, str(path)])
    out, err = capsys.readouterr()
    assert code != 0
    assert "training.epochs must be a whole number >= 1; found 'ten'" in err
    assert "Traceback" not in out + err and "AttributeError" not in out + err
    assert "unexpected error" not in out + err


def test_trained_runs_are_those_with_a_model_on_disk_newest_first(tmp_path: Path) -> None:
    from kbuilder.graph.runs import latest_trained, trained_runs

    project = tmp_path / "model.kbproj"
    records = []
    for i, has_file in enumerate((True, False, True)):
        folder = tmp_path / "model.runs" / f"r{i}"
        folder.mkdir(parents=True)
        if has_file:
            (folder / "model.keras").write_bytes(b"x")
        records.append(RunRecord(f"r{i}", artifacts={"model": f"model.runs/r{i}/model.keras"}))
    records.append(RunRecord("failed", artifacts={}))
    assert [(i, r.run_id) for i, r in trained_runs(records, project)] == [(2, "r2"), (0, "r0")]
    assert latest_trained(records).run_id == "r2"
    assert trained_runs(records[1:2], project) == []
    assert latest_trained(records[1:2]).run_id == "r1"  # its file missing: said by callers

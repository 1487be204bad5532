"""Search spaces (graph/sweeps.py): records, the project file, checks at the extremes, undo."""

import json
import zipfile

import pytest

from kbuilder.graph.commands import History
from kbuilder.graph.errors import ProjectFileError
from kbuilder.graph.model import Graph
from kbuilder.graph.project import Project, load_project, save_project
from kbuilder.graph.settings import TrainingSettings
from kbuilder.graph.sweeps import (
    SetSweepCommand,
    SweepError,
    SweepParam,
    SweepSpec,
    apply_training,
    apply_values_command,
    check_space,
    parse_range,
)
from tests.graph.helpers import add_input, add_layer, add_output, mlp


def cnn() -> tuple[Graph, dict[str, str]]:
    """Input 8x8x1 -> Conv2D (valid) -> Flatten -> Dense(3) -> Output."""
    history = History()
    g = Graph("cnn")
    x = add_input(history, g, [8, 8, 1])
    conv = add_layer(history, g, "Conv2D", x, name="conv", filters=4, kernel_size=3)
    flat = add_layer(history, g, "Flatten", conv)
    drop = add_layer(history, g, "Dropout", flat, name="drop", rate=0.2)
    head = add_layer(history, g, "Dense", drop, name="head", units=3, activation="softmax")
    add_output(history, g, head)
    return g, {"conv": conv, "drop": drop, "head": head}


def test_spaces_round_trip_through_the_project_file(tmp_path):
    g, ids = cnn()
    spec = SweepSpec(params=(
        parse_range("conv.filters=4..32:log", g),
        parse_range("learning_rate=1e-4..1e-2:log", g),
        parse_range("head.activation=softmax,sigmoid", g, choice=True),
        parse_range("early_stopping.patience=2..6", g),
    ), sampler="random", pruner="hyperband", metric="val_accuracy", trials=12)
    assert spec.params[0] == SweepParam("filters", ids["conv"], "int", 4, 32, True)
    assert spec.params[1].kind == "float" and spec.params[1].node_id is None
    assert spec.objective_direction == "maximize"
    project = Project(g, sweep=spec)
    path = tmp_path / "p.kbproj"
    save_project(project, path)
    again = load_project(path)
    assert again.sweep == spec
    assert [p.label(again.graph) for p in again.sweep.params] == [
        "conv.filters", "learning_rate", "head.activation", "early_stopping.patience"]
    assert again.sweep.swept_nodes() == {ids["conv"], ids["head"]}


def test_a_file_without_a_sweep_opens_and_a_bad_sweep_is_refused_naming_it(tmp_path):
    g, _, _ = mlp()
    path = tmp_path / "old.kbproj"
    save_project(Project(g), path)
    assert load_project(path).sweep is None
    document = json.loads(zipfile.ZipFile(path).read("project.json"))
    assert "sweep" not in document  # files from before sweeps look the same
    document["sweep"] = {"params": [{"param": "learning_rate", "kind": "float",
                                     "low": 0.1, "high": 0.01}]}
    bad = tmp_path / "bad.kbproj"
    with zipfile.ZipFile(bad, "w") as archive:
        archive.writestr("project.json", json.dumps(document))
    with pytest.raises(ProjectFileError, match="bad.kbproj: sweep is not valid: The range of "
                       "learning_rate goes from 0.1 to 0.01: the low end must be below"):
        load_project(bad)


@pytest.mark.parametrize("text, choice, message", [
    ("learning_rate=0.1..0.01", False, "low end must be below the high end"),
    ("learning_rate=0..0.1:log", False, "log scale, so it must start above 0"),
    ("head.units=2.5..8", False, None),  # a float range of a whole-number parameter...
    ("nosuch.units=1..4", False, "no node named 'nosuch'"),
    ("momentum=0.1..0.9", False, "neither a training setting"),
    ("optimizer=0.1..0.9", False, "takes a range of kind choice"),
    ("head.activation=relu,relu", True, "repeat a value"),
    ("head.units", False, "Expected NODE.PARAM=LOW..HIGH"),
])
def test_invalid_ranges_are_refused_with_the_reason(text, choice, message):
    g, _ = cnn()
    if message is None:
        problems = check_space(SweepSpec((parse_range(text, g),)), g, TrainingSettings())
        assert problems and "head.units fails at 2.5" in problems[0].message
        return
    with pytest.raises(SweepError, match=message):
        parse_range(text, g, choice=choice)


def test_ranges_are_checked_at_their_extremes_against_the_model():
    g, ids = cnn()
    spec = SweepSpec((
        parse_range("conv.kernel_size=2..12", g),  # 12 > 8: no output left
        parse_range("drop.rate=0.0..1.0", g),  # a rate of 1 drops everything
        parse_range("head.units=2..16", g),  # fine
        parse_range("batch_size=0..64", g),  # 0 is not a batch size
        SweepParam("units", "gone-node", "int", 1, 4),
    ))
    problems = check_space(spec, g, TrainingSettings())
    found = {(p.label, p.value) for p in problems}
    assert ("conv.kernel_size", 12) in found and ("conv.kernel_size", 2) not in found
    assert ("drop.rate", 1.0) in found and ("drop.rate", 0.0) not in found
    assert not any(label == "head.units" for label, _ in found)
    assert ("batch_size", 0) in found
    gone = next(p for p in problems if p.node_id == "gone-node")
    assert "no longer in the model" in gone.message
    conv = next(p for p in problems if p.label == "conv.kernel_size")
    assert conv.node_id == ids["conv"] and "fails at 12" in conv.message
    assert "Narrow the range" in conv.message


def test_editing_the_space_and_applying_a_trial_are_undoable_commands():
    g, ids = cnn()
    project = Project(g)
    first = SweepSpec((parse_range("head.units=2..16", g),))
    project.history.push(SetSweepCommand(project, first, "sweep head.units"))
    second = first.with_param(parse_range("head.units=4..8", g))
    project.history.push(SetSweepCommand(project, second))
    assert project.sweep.params[0].high == 8 and project.modified
    project.history.undo()
    assert project.sweep == first
    project.history.undo()
    assert project.sweep is None and not project.modified
    project.history.push(apply_values_command(g, {(ids["head"], "units"): 7,
                                                  (ids["conv"], "filters"): 9}))
    assert g.node(ids["head"]).params["units"] == 7 and g.node(ids["conv"]).params["filters"] == 9
    project.history.undo()
    assert g.node(ids["head"]).params["units"] == 3 and g.node(ids["conv"]).params["filters"] == 4


def test_training_values_apply_to_the_settings():
    training = apply_training(TrainingSettings(), {"learning_rate": 0.01, "optimizer": "sgd",
                                                   "early_stopping.patience": 3})
    assert training.learning_rate == 0.01 and training.optimizer == "sgd"
    assert training.early_stopping == {"patience": 3}


def test_grid_values_of_each_kind():
    assert SweepParam("units", "n", "int", 2, 5).grid() == [2, 3, 4, 5]
    assert SweepParam("learning_rate", None, "float", 1e-4, 1e-2, True).grid() == pytest.approx(
        [1e-4, 10**-3.5, 1e-3, 10**-2.5, 1e-2])
    assert SweepParam("optimizer", None, "choice", choices=("adam", "sgd")).grid() == [
        "adam", "sgd"]


def test_the_sweeps_storage_and_study_round_trip_and_are_checked(tmp_path):
    from kbuilder.graph.sweeps import SweepError, SweepSpec
    from kbuilder.runtime.sweep import SweepPlan, project_study, storage_missing

    project = Project.new(mlp()[0])
    project.sweep = SweepSpec(storage="journal:/shared/s.journal", study="lr")
    save_project(project, tmp_path / "p.kbproj")
    again = load_project(tmp_path / "p.kbproj").sweep
    assert (again.storage, again.study) == ("journal:/shared/s.journal", "lr")
    assert project_study(tmp_path / "p.kbproj", again) == ("journal:/shared/s.journal", "lr")
    url, name = project_study(tmp_path / "p.kbproj", SweepSpec())
    assert url == f"sqlite:///{tmp_path / 'p.sweeps.db'}" and name == "p"
    assert storage_missing(url) == "p.sweeps.db does not exist yet"
    assert storage_missing("postgresql+psycopg2://kb@db/s") is None  # only opening tells
    with pytest.raises(SweepError, match="storage must be text"):
        SweepSpec.from_dict({"storage": 3})
    # The study's copy of the plan leaves out where it lives (a URL may hold a password).
    from kbuilder.graph.settings import DataSettings

    plan = SweepPlan(again, DataSettings(), TrainingSettings(), "p.kbproj", "")
    assert "storage" not in plan.to_dict()["spec"]

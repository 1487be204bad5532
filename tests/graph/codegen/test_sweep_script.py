"""A sweep exported as a standalone Optuna script (graph/codegen/sweep_script.py)."""

import os

import optuna
import pytest

from kbuilder.graph.codegen import CodegenError
from kbuilder.graph.codegen.sweep_script import generate_sweep_script
from kbuilder.graph.project import Project
from kbuilder.graph.settings import DataSettings, TrainingSettings
from kbuilder.graph.sweeps import SweepSpec, parse_range
from kbuilder.graph.templates import get_template


def iris_project():
    from kbuilder.graph.commands import SetParamCommand

    graph = get_template("mlp_classifier").build()
    SetParamCommand(graph, graph.find("features").id, "shape", [4]).do()
    SetParamCommand(graph, graph.find("predictions").id, "units", 3).do()
    return Project(graph, data=DataSettings(source="iris"),
                   training=TrainingSettings(epochs=2, early_stopping={"patience": 4}))


def defined(script):
    namespace = {"__name__": "generated_sweep"}
    saved = dict(os.environ)
    try:
        exec(compile(script, "sweep.py", "exec"), namespace)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return namespace


def test_the_script_suggests_the_space_and_builds_the_trials_model():
    project = iris_project()
    g = project.graph
    spec = SweepSpec((parse_range("dense.units=8..64:log", g),
                      parse_range("dense_1.activation=relu,tanh", g, choice=True),
                      parse_range("learning_rate=1e-4..1e-2:log", g),
                      parse_range("optimizer=adam,sgd", g, choice=True),
                      parse_range("early_stopping.patience=2..5", g)),
                     metric="val_accuracy", sampler="random", trials=7)
    script = generate_sweep_script(project, spec)
    assert "import optuna" in script and "TRIALS = 7" in script
    assert 'layers.Dense(hp["dense.units"], activation="relu", name="dense")' in script
    assert 'patience=hp["early_stopping.patience"]' in script
    assert "optimizer_class(learning_rate=hp[\"learning_rate\"])" in script
    assert 'DIRECTION = "maximize"' in script and "RandomSampler()" in script
    space = defined(script)
    values = space["suggest"](optuna.trial.FixedTrial({
        "dense.units": 9, "dense_1.activation": "tanh", "learning_rate": 1e-3,
        "optimizer": "sgd", "early_stopping.patience": 3}))
    assert values["dense.units"] == 9 and values["optimizer"] == "sgd"
    model = space["build_model"](values)
    assert model.get_layer("dense").units == 9
    assert model.get_layer("dense_1").get_config()["activation"] == "tanh"
    callbacks = space["make_callbacks"]("x.keras", values)
    assert any(getattr(c, "patience", None) == 3 for c in callbacks)
    # The same data preparation as the training script: load_data is that script's.
    (x_train, y_train), (x_val, y_val), _ = space["load_data"]()
    assert x_train.shape[1] == 4 and len(y_val) == 30


def test_a_swept_layer_inside_a_block_is_refused_in_words():
    project = iris_project()
    spec = SweepSpec((parse_range("learning_rate=1e-4..1e-2", project.graph),))
    bad = SweepSpec((spec.params[0].__class__("units", "not-a-top-level-node", "int", 2, 4),))
    assert "def suggest" in generate_sweep_script(project, spec)
    with pytest.raises(CodegenError, match="inside a block"):
        generate_sweep_script(project, bad)

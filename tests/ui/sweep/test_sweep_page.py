"""The Sweep tab: the trials of a study (made here with Optuna, no training), its plots, a
trial's curves, applying its values with undo, settings as undoable edits."""

from pathlib import Path

import optuna
import pytest
from PySide6.QtCore import Qt

from kbuilder.graph.project import load_project, save_project
from kbuilder.graph.sweeps import SweepSpec, parse_range
from kbuilder.runtime import sweep as engine
from kbuilder.ui.testing import type_into
from tests.postgres_server import postgres_server

SHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"


def make_study(project, spec, url=None, name=None):
    """A study as ``kbuilder sweep`` leaves it: the plan, finished trials with curves (in
    the project's default storage, or ``url``)."""
    from kbuilder.graph.settings import DataSettings

    plan = engine.SweepPlan(spec, project.data or DataSettings(), project.training,
                            project.path.name, "")
    storage = engine.open_storage(url or engine.default_storage(project.path))
    study = engine.open_study(storage, name or engine.default_study_name(project.path), plan,
                              project.graph)
    units = optuna.distributions.IntDistribution(8, 128, log=True)
    rate = optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)
    act = optuna.distributions.CategoricalDistribution(["relu", "tanh"])
    import math

    for i in range(8):
        u, lr, a = 8 * (i + 1), 1e-4 * 10 ** (i / 4), ("relu", "tanh")[i % 2]
        value = 0.3 + abs(math.log10(lr) + 2.5) * 0.2 + (0.05 if a == "tanh" else 0)
        state = optuna.trial.TrialState.PRUNED if i == 5 else optuna.trial.TrialState.COMPLETE
        study.add_trial(optuna.trial.create_trial(
            state=state, value=None if i == 5 else value,
            params={"dense.units": u, "learning_rate": lr, "dense_1.activation": a},
            distributions={"dense.units": units, "learning_rate": rate,
                           "dense_1.activation": act},
            intermediate_values={0: value + 0.5, 1: value + 0.2},
            user_attrs={"history": {"loss": [value + 0.6, value + 0.1],
                                    "val_loss": [value + 0.5, value],
                                    "accuracy": [0.5, 0.8], "val_accuracy": [0.45, 0.75]},
                        "seconds": 3.0 + i, "host": "here", "pid": 1}))
    return study


@pytest.fixture
def swept(mlp_window, tmp_path):
    window = mlp_window
    path = tmp_path / "mlp.kbproj"
    g = window.project.graph
    window.project.sweep = SweepSpec((parse_range("dense.units=8..128:log", g),
                                      parse_range("learning_rate=1e-4..1e-2:log", g),
                                      parse_range("dense_1.activation=relu,tanh", g,
                                                  choice=True)), trials=10)
    save_project(window.project, path)
    make_study(window.project, window.project.sweep)
    return window


def test_the_sweep_tab_shows_the_trials_plots_and_a_trials_curves(swept, qtbot):
    window = swept
    page = window.sweep_page
    window._show_page(page)
    qtbot.waitUntil(lambda: page.snapshot is not None, timeout=30000)
    assert page.table.rowCount() == 8
    assert "7 complete trials, 1 pruned of 10" in page.status.text()
    assert "best: trial 6, val_loss 0.3000" in page.status.text()
    assert "dense.units: 8 .. 128 (log)" in page.space_label.text()
    headers = [page.table.horizontalHeaderItem(c).text() for c in range(page.table.columnCount())]
    assert headers[:4] == ["Trial", "State", "val_loss", "Seconds"]
    # Sorting by the metric puts the best trial first, the pruned one (no value) last.
    page.table.sortItems(2, Qt.SortOrder.AscendingOrder)
    assert page.table.item(0, 0).text() == "6 ★"
    assert page.table.item(7, 1).text() == "pruned"
    assert set(page.snapshot.importances) == {"dense.units", "learning_rate",
                                              "dense_1.activation"}
    page.pick(3)
    assert "trial 3" in page.curves_plot.plotItem.titleLabel.text
    assert len(page.curves_plot.plotItem.listDataItems()) == 4  # loss, val_loss, acc, val_acc
    assert len(page.parallel_plot.plotItem.listDataItems()) == 7
    window.resize(1400, 860)
    qtbot.wait(200)
    SHOTS.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(SHOTS / "sweep_tab.png"))


def test_applying_a_trials_values_is_one_undoable_edit(swept, qtbot):
    window = swept
    page = window.sweep_page
    window._show_page(page)
    qtbot.waitUntil(lambda: page.snapshot is not None, timeout=30000)
    page.pick(1)  # dense.units 16, learning rate 1e-4 * 10**0.25, tanh
    dense = window.project.graph.find("dense")
    before = window.project.training.learning_rate
    assert page.apply_button.isEnabled() and page.apply_picked()
    assert window.project.graph.node(dense.id).params["units"] == 16
    assert window.project.graph.find("dense_1").params["activation"] == "tanh"
    assert window.project.training.learning_rate == pytest.approx(1e-4 * 10 ** 0.25)
    window.doc.undo()
    assert window.project.graph.node(dense.id).params["units"] == 128
    assert window.project.training.learning_rate == before
    # A sweep setting is an edit too.
    page.sampler.setCurrentText("random")
    assert window.project.sweep.sampler == "random"
    window.doc.undo()
    assert window.project.sweep.sampler == "tpe"


def test_start_runs_kbuilder_sweep_on_the_saved_file(swept, qtbot, monkeypatch):
    page = swept.sweep_page
    swept._show_page(page)
    started = []

    class FakeProcess:
        def __init__(self, argv, **kwargs):
            started.append((argv, kwargs))

        def poll(self):
            return None

    monkeypatch.setattr("kbuilder.ui.sweep.sweep_page.start_process", FakeProcess)
    page.parallel.setValue(2)
    assert page.start()
    argv, kwargs = started[0]
    assert argv[1:4] == ["-m", "kbuilder", "sweep"] and argv[4] == str(swept.project.path)
    assert argv[-4:] == ["--trials", "10", "--parallel", "2"]
    assert kwargs["start_new_session"]  # the sweep outlives the window
    assert page.stop_button.isEnabled() and not page.start_button.isEnabled()
    assert load_project(swept.project.path).sweep.trials == 10
    # A range that breaks the model is flagged before anything starts.
    page.process = None
    from kbuilder.graph.sweeps import SetSweepCommand

    bad = swept.project.sweep.with_param(parse_range("dense.units=0..8", swept.project.graph))
    swept.doc.edit(lambda: SetSweepCommand(swept.project, bad))
    save_project(swept.project, swept.project.path)
    assert not page.start() and len(started) == 1
    assert "The range of dense.units fails at 0" in page.status.text()


def test_a_parameter_becomes_a_range_from_the_inspector_and_is_marked(mlp_window, qtbot,
                                                                      monkeypatch):
    from kbuilder.graph.sweeps import SweepParam
    from kbuilder.ui.shell import sweep_range

    window = mlp_window
    dense = window.project.graph.find("dense")
    window.editor.scene.select_nodes([dense.id])
    inspector = window.inspector
    qtbot.waitUntil(lambda: "units" in inspector.rows)
    asked = []

    def answer(parent, node_id, param, current, existing):
        asked.append((node_id, param.name, current, existing))
        return SweepParam("units", node_id, "int", 16, 256, True)

    monkeypatch.setattr(sweep_range, "ask_range", answer)
    assert inspector.ask_sweep("units")
    assert asked == [(dense.id, "units", 128, None)]
    assert window.project.sweep.params == (SweepParam("units", dense.id, "int", 16, 256, True),)
    assert inspector.rows["units"].label.text() == "units ⟳"
    assert "Swept: 16 .. 256 (log)" in inspector.rows["units"].label.toolTip()
    item = window.editor.scene.nodes[dense.id]
    assert item.swept == "units 16 .. 256 (log)" and "Swept in the sweep" in item.toolTip()
    window.resize(1280, 800)
    qtbot.wait(100)
    SHOTS.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(SHOTS / "sweep_inspector.png"))
    window.doc.undo()
    assert window.project.sweep is None
    assert inspector.rows["units"].label.text() == "units" and item.swept == ""


def test_the_range_dialog_says_why_a_range_is_refused(qapp):
    from kbuilder.graph import catalog
    from kbuilder.ui.shell.sweep_range import QtRangeDialog

    units = next(p for p in catalog.get("Dense").params if p.name == "units")
    dialog = QtRangeDialog("n1", units, 64, None)
    assert (dialog.low.value(), dialog.high.value()) == (32, 128)
    dialog.low.setValue(200)
    dialog._accept()
    assert dialog.result_param is None and "low end must be below" in dialog.error.text()
    activation = next(p for p in catalog.get("Dense").params if p.name == "activation")
    choice = QtRangeDialog("n1", activation, "relu", None)
    choice.choices.setText("relu, tanh, gelu")
    assert choice.made().choices == ("relu", "tanh", "gelu")


def test_a_training_setting_becomes_a_range_from_the_sweep_tab(mlp_window, monkeypatch):
    from kbuilder.graph.sweeps import SweepParam
    from kbuilder.ui.shell import sweep_range

    window = mlp_window
    page = window.sweep_page
    window._show_page(page)

    def answer(parent, node_id, param, current, existing):
        assert (node_id, param.name, param.kind) == (None, "optimizer", "choice")
        assert "sgd" in param.choices
        return SweepParam("optimizer", None, "choice", choices=("adam", "sgd"))

    monkeypatch.setattr(sweep_range, "ask_range", answer)
    assert page.ask_setting("optimizer")
    assert window.project.sweep.find(None, "optimizer").choices == ("adam", "sgd")
    assert "optimizer: 'adam' | 'sgd'" in page.space_label.text()
    assert page.set_param(None, "optimizer", None)
    assert window.project.sweep.params == ()
    window.doc.undo()
    window.doc.undo()
    assert window.project.sweep is None


def spec_of(window):
    g = window.project.graph
    return SweepSpec((parse_range("dense.units=8..128:log", g),
                      parse_range("learning_rate=1e-4..1e-2:log", g),
                      parse_range("dense_1.activation=relu,tanh", g, choice=True)), trials=10)


@pytest.mark.slow
def test_the_sweep_tab_follows_a_study_in_a_journal_file(mlp_window, qtbot, tmp_path):
    window = mlp_window
    window.project.sweep = spec_of(window)
    save_project(window.project, tmp_path / "mlp.kbproj")
    journal = tmp_path / "shared" / "sweep.journal"
    journal.parent.mkdir()
    page = window.sweep_page
    window._show_page(page)
    assert "No sweep has run in this storage yet" in page.status.text()
    # The user picks the journal file (another machine writes it) and names the study.
    window.dialogs.open_path = str(journal)
    page.journal_button.click()
    type_into(page.study_edit, "shared-study")
    assert window.project.sweep.storage == f"journal:{journal}"
    assert window.project.sweep.study == "shared-study"
    assert page.storage() == (f"journal:{journal}", "shared-study")
    assert "does not exist yet" in page.status.text()
    study = make_study(window.project, window.project.sweep, f"journal:{journal}",
                       "shared-study")
    qtbot.waitUntil(lambda: page.snapshot is not None, timeout=30000)
    assert page.table.rowCount() == 8
    assert "shared-study: 7 complete trials, 1 pruned of 10" in page.status.text()
    # Followed live: a trial finished elsewhere appears at the next reading.
    trial = study.ask()
    study.tell(trial, 0.25)
    qtbot.waitUntil(lambda: page.table.rowCount() == 9, timeout=30000)
    # Remembered in the project's sweep section (an undoable edit like the others).
    save_project(window.project, window.project.path)
    again = load_project(window.project.path).sweep
    assert (again.storage, again.study) == (f"journal:{journal}", "shared-study")
    assert "storage" not in SweepSpec().to_dict()  # a default sweep's section as before
    window.doc.undo()
    window.doc.undo()
    assert window.project.sweep.storage is None and page.storage_edit.text() == ""


@pytest.fixture
def postgres():
    yield from postgres_server()


@pytest.mark.slow
def test_the_sweep_tab_shows_a_study_on_postgresql(mlp_window, qtbot, tmp_path, postgres):
    window = mlp_window
    window.project.sweep = spec_of(window)
    save_project(window.project, tmp_path / "mlp.kbproj")
    make_study(window.project, window.project.sweep, postgres, "pg-view")
    page = window.sweep_page
    window._show_page(page)
    type_into(page.storage_edit, postgres)
    type_into(page.study_edit, "pg-view")
    qtbot.waitUntil(lambda: page.snapshot is not None, timeout=30000)
    assert page.table.rowCount() == 8
    assert "pg-view: 7 complete trials, 1 pruned of 10" in page.status.text()

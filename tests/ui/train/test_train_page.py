"""The Train tab: real (tiny) training from the GUI on each backend, stop, a killed worker,
settings refused inline and a pre-flight that keeps a bad run from starting.

Each test opens the MLP template (its Input fits the digits data) and trains in real
worker processes; 1–2 epochs of digits at a large batch size keep every run short.
"""

from __future__ import annotations

import dataclasses
import os
import signal
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from kbuilder.graph.commands import SetParamCommand
from kbuilder.ui.jobs.run_controller import installed_backends
from kbuilder.ui.testing import type_into

RUN_TIMEOUT_MS = 150_000  # a cold backend import on a busy 2-core machine, then the run


def train_page(window, backend: str = "jax", epochs: int = 1, batch_size: int = 64):
    window._show_page(window.train_page)
    page = window.train_page
    page.backend.setCurrentIndex(page.backend.findData(backend))
    page.epochs.setValue(epochs)
    page.batch_size.setValue(batch_size)
    return page


def click(button) -> None:
    from PySide6.QtTest import QTest

    assert button.isEnabled(), button.text()
    QTest.mouseClick(button, Qt.MouseButton.LeftButton)


def wait_for_epochs(qtbot, page, epochs: int = 1) -> None:
    """Until this run (not the one before) has drawn batch points and ``epochs`` epochs."""
    qtbot.waitUntil(lambda: page.controller.state == "running"
                    and page.dashboard.point_counts()["loss/batch"] > 0
                    and page.dashboard.point_counts()["loss/train"] >= epochs,
                    timeout=RUN_TIMEOUT_MS)


@pytest.mark.parametrize("backend", installed_backends())
def test_train_from_the_gui_records_the_run_and_draws_curves(mlp_window, qtbot, backend):
    window = mlp_window
    page = train_page(window, backend, epochs=2)
    assert window.project.training.backend == backend
    with qtbot.waitSignal(page.run_recorded, timeout=RUN_TIMEOUT_MS) as recorded:
        click(page.train_button)
        assert not page.train_button.isEnabled() and not window.train_action.isEnabled()
    record = recorded.args[0]
    assert record.status == "completed", record.message
    assert record.backend == backend and record.training["epochs"] == 2
    assert window.project.runs[-1] is record
    assert 0 <= record.test_metrics["accuracy"] <= 1
    assert Path(record.model_file).is_file()
    # The curves themselves hold the points (not only the buffers behind them).
    plots = page.dashboard.plots
    assert len(plots["loss"].curves["batch"].xData) >= 2
    assert list(plots["loss"].curves["train"].xData) == [1, 2]
    assert len(plots["accuracy"].curves["val"].yData) == 2
    assert len(plots["learning rate"].curves["train"].yData) == 2
    assert page.dashboard.progress.value() == 1000
    assert "Epoch 2/2" in page.dashboard.console.toPlainText()
    assert page.train_button.isEnabled() and window.train_action.isEnabled()
    assert window.isWindowModified()  # the run is part of the project now


def test_a_killed_worker_shows_a_message_then_a_new_run_stops_keeping_its_model(
        mlp_window, qtbot):
    window = mlp_window
    page = train_page(window, "jax", epochs=500, batch_size=16)
    click(page.train_button)
    wait_for_epochs(qtbot, page)
    # As the system's out-of-memory killer would.
    with qtbot.waitSignal(page.run_recorded, timeout=RUN_TIMEOUT_MS) as recorded:
        os.kill(page.controller.run.worker.process.pid, signal.SIGKILL)
    record = recorded.args[0]
    assert record.status == "failed" and "killed" in record.message
    assert len(record.history["loss"]) >= 1  # the history received before the death
    assert window.dialogs.errors and "killed" in window.dialogs.errors[-1][1]
    assert page.banner.isVisible() and "killed" in page.banner_text.text()
    assert page.train_button.isEnabled() and window.train_action.isEnabled()
    # Still usable: a setting and a model edit both go through.
    type_into(page.learning_rate, "0.01")
    assert window.project.training.learning_rate == 0.01
    dense = window.doc.graph.find("predictions").id
    window.doc.edit(lambda: SetParamCommand(window.doc.graph, dense, "units", 10))
    # A new run starts (on the worker warmed after the death) and Stop keeps its model.
    click(page.train_button)
    wait_for_epochs(qtbot, page)
    with qtbot.waitSignal(page.run_recorded, timeout=RUN_TIMEOUT_MS) as recorded:
        window.stop_action.trigger()  # the toolbar's Stop
    record = recorded.args[0]
    assert record.status == "stopped"
    assert 1 <= len(record.history["loss"]) < 500
    assert Path(record.model_file).is_file()
    assert "Stopped" in page.dashboard.status.text()
    assert page.train_button.isEnabled()
    assert [r.status for r in window.project.runs] == ["failed", "stopped"]


def test_invalid_settings_are_refused_inline(mlp_window, qtbot):
    window = mlp_window
    page = train_page(window)
    before = window.project.training
    for text in ("fast", "0", "20"):
        type_into(page.learning_rate, text)
        error = page.errors["learning_rate"]
        assert error.isVisible() and "learning_rate" in error.text(), text
        assert window.project.training == before
    type_into(page.learning_rate, "0.003")
    assert not page.errors["learning_rate"].isVisible()
    assert window.project.training.learning_rate == 0.003

    # Validation plus test data must leave something to train on (test split is 0.2).
    data_before = window.project.data
    type_into(page.validation_split, "0.9")
    assert page.errors["validation_split"].isVisible()
    assert "validation_split + test_split" in page.errors["validation_split"].text()
    assert window.project.data == data_before
    type_into(page.validation_split, "0.25")
    assert window.project.data.validation_split == 0.25
    assert not page.errors["validation_split"].isVisible()

    # Callbacks land in the project as TrainingSettings describes them.
    page.early_stopping.setChecked(True)
    page.es_patience.setValue(4)
    assert window.project.training.early_stopping == {"patience": 4}
    page.metrics.item(page.metrics.count() - 1).setCheckState(Qt.CheckState.Checked)
    assert window.project.training.metrics[-1] == "r2_score"


def test_settings_changed_elsewhere_show_when_the_tab_is_shown(mlp_window):
    window = mlp_window
    window.project.training = dataclasses.replace(window.project.training, batch_size=48,
                                                  loss="categorical_crossentropy")
    window._show_page(window.train_page)
    assert window.train_page.batch_size.value() == 48
    assert window.train_page.loss.currentData() == "categorical_crossentropy"


def test_preflight_errors_keep_the_run_from_starting(mlp_window, qtbot):
    window = mlp_window
    graph = window.doc.graph
    dense = graph.find("predictions").id
    window.doc.edit(lambda: SetParamCommand(graph, dense, "units", 4))  # 10 digit classes
    page = train_page(window)
    click(page.train_button)
    qtbot.waitUntil(lambda: not page.running, timeout=60_000)
    assert page.banner.isVisible() and page.data_button.isVisible()
    assert "predictions" in page.banner_text.text()
    assert page.controller.state == "idle" and page.controller.run is None
    assert window.project.runs == []
    click(page.data_button)
    assert window.current_page() is window.data_page


def test_closing_during_a_run_asks_then_stops_it_keeping_its_model(mlp_window, qtbot):
    window = mlp_window
    page = train_page(window, "jax", epochs=500, batch_size=16)
    click(page.train_button)
    wait_for_epochs(qtbot, page)
    window.dialogs.stop_training = False  # Cancel: the window and the run go on
    window.close()
    assert window.dialogs.asked_stop_training == 1
    assert window.isVisible() and page.controller.state == "running"
    assert not window.dialogs.asked_unsaved
    window.dialogs.stop_training = True  # Stop & Close
    window.dialogs.unsaved = "discard"
    with qtbot.waitSignal(page.run_recorded, timeout=RUN_TIMEOUT_MS) as recorded:
        window.close()
        assert window.isVisible()  # open until the run is recorded
        assert page.controller.state == "stopping"
    record = recorded.args[0]
    assert record.status == "stopped"
    assert Path(record.model_file).is_file()
    assert window.project.runs[-1] is record
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=10_000)
    assert window.dialogs.asked_stop_training == 2
    assert window.dialogs.asked_unsaved  # the new run is a change: saving it was offered


def test_the_kill_button_ends_a_stopping_run_with_a_message(mlp_window, qtbot):
    window = mlp_window
    page = train_page(window, "jax", epochs=500, batch_size=16)
    click(page.train_button)
    wait_for_epochs(qtbot, page)
    assert not page.kill_button.isEnabled()  # Stop first: it keeps the model
    click(page.stop_button)
    with qtbot.waitSignal(page.run_recorded, timeout=RUN_TIMEOUT_MS) as recorded:
        click(page.kill_button)  # before the stop's test evaluation and model save end
    record = recorded.args[0]
    assert record.status == "failed" and "killed (Kill)" in record.message
    assert len(record.history["loss"]) >= 1
    assert window.dialogs.errors and "killed" in window.dialogs.errors[-1][1]
    assert page.train_button.isEnabled()


def test_a_pause_is_not_training_time_and_the_state_text_has_one_source(mlp_window, qtbot):
    """Issue 12 item 26: "Elapsed" kept counting while paused and the epoch spanning a
    pause was logged with the pause in it; during start-up the heading ("Starting a
    worker…") and the line beside the buttons ("Training…") disagreed; the stopped
    heading said "Stopped" twice."""
    window = mlp_window
    page = train_page(window, "jax", epochs=500, batch_size=64)
    said = []  # (state, RunStarted received, heading, hint) after each change
    epochs = []

    def record_state(*_args) -> None:
        said.append((page.controller.state, page.controller.started is not None,
                     page.dashboard.status.text(), page.state_label.text()))

    page.controller.state_changed.connect(record_state)
    page.controller.run_started.connect(record_state)
    page.controller.epoch_ended.connect(epochs.append)
    click(page.train_button)
    wait_for_epochs(qtbot, page, 2)

    click(page.pause_button)
    qtbot.waitUntil(lambda: "Paused." in page.dashboard.console.toPlainText(), timeout=30_000)
    paused_in = len(epochs)  # the pause holds the epoch after the last one ended
    elapsed, shown = page.dashboard.elapsed, page.dashboard.elapsed_label[1].text()
    qtbot.wait(3000)
    assert page.dashboard.elapsed == elapsed  # the clock stands still
    assert page.dashboard.elapsed_label[1].text() == shown
    click(page.pause_button)  # Resume
    qtbot.waitUntil(lambda: len(epochs) > paused_in + 1, timeout=RUN_TIMEOUT_MS)
    spanning = epochs[paused_in]
    assert spanning.seconds < 2.0, [e.seconds for e in epochs]  # not the 3 s of the pause
    with qtbot.waitSignal(page.run_recorded, timeout=RUN_TIMEOUT_MS) as recorded:
        click(page.stop_button)
    assert recorded.args[0].status == "stopped"

    # Before the worker reported the run started, nothing said it was training.
    early = [(h, t) for state, started, h, t in said if state != "idle" and not started]
    assert early and all("Training" not in h + t for h, t in early), early
    assert any(h.startswith("Starting a JAX worker") for h, _ in early)
    training = [h for state, started, h, _ in said if state == "running" and started]
    assert training and all(h == "Training on JAX (CPU)" for h in training), said
    # The outcome is said once, not repeated by the heading, the hint or the log.
    heading, hint = page.dashboard.status.text(), page.state_label.text()
    assert heading.lower().count("stopped") == 1, heading
    assert "stopped" not in hint.lower()
    assert page.dashboard.console.toPlainText().lower().count("stopped") == 1


def test_a_stopped_worker_is_reported_and_can_be_killed(mlp_window, qtbot, monkeypatch):
    # Issue 12 item 12: a stopped (SIGSTOP) or hung worker left the window waiting forever
    # with no word.
    from kbuilder.runtime.client import TrainingRun

    monkeypatch.setattr(TrainingRun, "heartbeat_timeout", 1.5)
    window = mlp_window
    page = train_page(window, "jax", epochs=500, batch_size=16)
    click(page.train_button)
    wait_for_epochs(qtbot, page)
    worker = page.controller.run.worker
    os.kill(worker.process.pid, signal.SIGSTOP)
    try:
        qtbot.waitUntil(lambda: "has not answered for" in page.state_label.text(),
                        timeout=20_000)
        assert page.stop_button.isEnabled() and page.kill_button.isEnabled()
        with qtbot.waitSignal(page.run_recorded, timeout=RUN_TIMEOUT_MS) as recorded:
            click(page.kill_button)
    finally:
        if worker.alive:
            os.kill(worker.process.pid, signal.SIGCONT)
            worker.kill()
    record = recorded.args[0]
    assert record.status == "failed" and len(record.history["loss"]) >= 1
    assert not worker.alive
    assert "has not answered" not in page.state_label.text()


def test_a_run_that_learned_nothing_says_why(mlp_window, qtbot):
    # Issue 12 item 16: a learning rate of 9.9 ended in "Finished" and nothing more.
    window = mlp_window
    page = train_page(window, "jax", epochs=2, batch_size=64)
    type_into(page.learning_rate, "9.9")
    with qtbot.waitSignal(page.run_recorded, timeout=RUN_TIMEOUT_MS) as recorded:
        click(page.train_button)
    record = recorded.args[0]
    assert record.status == "completed"
    assert "learning rate 9.9 is probably too high" in record.diagnosis
    # The heading says how it ended; the hint beside the buttons says why it learned nothing.
    assert "probably too high" in page.state_label.text()


def test_a_new_project_starts_with_an_empty_train_page(mlp_window):
    """The dashboard shows the open project's runs only: a run shown for the last project
    (curves, log, progress, outcome) is gone when another project is opened."""
    from kbuilder.runtime import protocol as p

    w = mlp_window
    page = w.train_page
    w._show_page(page)
    empty_status = page.dashboard.status.text()
    c = page.controller
    c.run_started.emit(p.RunStarted(run_id="r1", backend="jax", device="cpu", epochs=15,
                                    steps_per_epoch=4, train_samples=200, val_samples=20,
                                    test_samples=20, data_fingerprint="x"))
    for epoch in range(15):
        c.epoch_ended.emit(p.EpochEnd(run_id="r1", epoch=epoch, logs={"loss": 0.5},
                                      learning_rate=1e-3, seconds=0.1,
                                      samples_per_second=2000.0, eta_seconds=0.0))
    page.dashboard.on_ended("completed", "Finished — test accuracy 0.961")
    page.state_label.setText("Finished.")
    assert not page.dashboard.empty and "0.961" in page.dashboard.console.toPlainText()

    assert w.new_from_template("cnn_classifier")
    d = page.dashboard
    assert d.empty
    assert d.console.toPlainText() == ""
    assert d.status.text() == empty_status
    assert d.progress.value() == 0 and d.epoch_label[1].text() == "—"
    assert page.state_label.text() == ""
    assert w.results_page.doc is w.doc and not w.doc.project.runs

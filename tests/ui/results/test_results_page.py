"""The Results tab on runs made by really training (JAX, digits and diabetes, 2–3 epochs):
the list, overlaid curves, details, evaluation, evaluate again, open and delete."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PySide6.QtCore import Qt

from kbuilder.graph.runs import RunRecord
from kbuilder.ui.testing import click
from tests.ui.trained_runs import trained_projects


@pytest.fixture
def results(window, run_folder):
    """The window showing the digits project's two runs in the Results tab."""
    digits, _ = trained_projects(run_folder)
    window.set_project(digits)
    window._show_page(window.results_page)
    page = window.results_page
    yield window, page
    page.shutdown_workers()


def click_row(page, row: int, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    table = page.table
    rect = table.visualRect(table.model().index(row, 1))
    click(table.viewport(), rect.center(), modifiers)


def test_every_run_is_listed_newest_first(results):
    window, page = results
    runs = window.project.runs
    assert page.table.rowCount() == 2
    rows = [[page.table.item(r, c).text() for c in range(page.table.columnCount())]
            for r in range(2)]
    assert [r[0] for r in rows] == ["#2", "#1"]
    for row in rows:
        assert row[2] == "jax · cpu"
        assert row[3] == "2/2"
        assert row[4] == "completed"
        assert row[5].startswith("accuracy 0.")
    newest = runs[1]
    assert rows[0][5] == f"accuracy {newest.test_metrics['accuracy']:.4f}"


def test_selecting_two_runs_overlays_their_curves(results):
    window, page = results
    click_row(page, 0)
    click_row(page, 1, Qt.KeyboardModifier.ControlModifier)
    assert len(page.selected_run_ids()) == 2
    runs = window.project.runs
    keys = {"loss", "val_loss", "accuracy", "val_accuracy"}
    assert set(page.curves) == {(r.run_id, k) for r in runs for k in keys}
    for record in runs:
        for key in keys:
            x, y = page.curves[(record.run_id, key)].getData()
            assert list(x) == [1, 2]
            assert np.allclose(y, record.history[key])
    # Loss curves on the loss plot, the others on the metrics plot; one colour per run.
    assert len(page.loss_plot.listDataItems()) == 4
    assert len(page.metric_plot.listDataItems()) == 4
    colours = {r.run_id: page.curves[(r.run_id, "loss")].opts["pen"].color().name()
               for r in runs}
    assert len(set(colours.values())) == 2
    legend = [label.text for _sample, label in page.loss_plot.legend.items]
    assert "#1 loss" in legend and "#2 validation loss" in legend

    click_row(page, 0)  # a plain click selects one run again
    assert {run_id for run_id, _ in page.curves} == {runs[1].run_id}


def test_details_show_what_reproduces_the_run(results):
    window, page = results
    record = window.project.runs[1]
    text = page.details.toPlainText()
    assert "seed" in text and "0" in text
    assert f"keras\t{record.versions['keras']}" in text or \
        record.versions["keras"] in text
    assert record.versions["jax"] in text
    assert record.data_fingerprint in text
    assert "digits" in text and "learning_rate" in text and "0.003" in text
    assert "image_size" not in text and "color_mode" not in text  # not an image folder


@pytest.mark.parametrize(("source", "shown", "hidden"), [
    ("digits", (), ("image_size", "color_mode", "target")),
    ("csv:/data/patients.csv", ("target", "outcome"), ("image_size", "color_mode")),
    ("images:/data/pets", ("image_size", "32, 32", "color_mode"), ("target",)),
])
def test_run_details_list_only_the_data_settings_that_apply(qapp, source, shown, hidden):
    """Issue 12 item 26: a tabular or digits run listed image settings."""
    from kbuilder.graph.settings import DataSettings
    from kbuilder.ui.results.run_details import details_html

    data = {**DataSettings().to_dict(), "source": source, "target": "outcome",
            "image_size": [32, 32]}
    text = details_html(RunRecord("r", data=data, training={}), "#1")
    for name in shown:
        assert name in text, name
    for name in hidden:
        assert name not in text, name
    assert "validation_split" in text and "seed" in text


def test_confusion_matrix_and_samples_of_the_test_split(results):
    from kbuilder.graph.settings import DataSettings
    from kbuilder.runtime.data import load_data

    window, page = results
    view = page.evaluation
    test_size = len(load_data(DataSettings(source="digits")).y_test)
    matrix = view.confusion.matrix
    assert matrix.shape == (10, 10)
    assert matrix.sum() == test_size
    assert view.confusion.class_names == [str(i) for i in range(10)]
    assert view.confusion.cell_text(3, 3) == str(matrix[3, 3])
    assert view.per_class.rowCount() == 10
    support = sum(int(view.per_class.item(i, 4).text()) for i in range(10))
    assert support == test_size
    record = window.project.runs[1]
    accuracy = record.test_metrics["accuracy"]
    assert np.isclose(np.trace(matrix) / matrix.sum(), accuracy, atol=1e-3)
    # The sample images with their true and predicted labels.
    tiles = view.samples.tiles
    assert len(tiles) == 20
    assert all(t.image_label is not None and not t.image_label.pixmap().isNull()
               for t in tiles)
    first = record.results["samples"][0]
    assert f"true <b>{first['true']}</b>" in tiles[0].text_label.text()
    assert f"predicted <b>{first['predicted']}</b>" in tiles[0].text_label.text()
    view.grab()  # paints the heatmap (its counts and class names) without error


def test_open_model_emits_the_trained_file(results, qtbot):
    window, page = results
    edited = window.project
    record = edited.runs[1]
    assert not edited.weights  # the project's own model was never trained
    assert page.open_button.isEnabled()
    window.dialogs.unsaved = "discard"
    with qtbot.waitSignal(page.open_model_requested, timeout=1000) as signal:
        click(page.open_button, page.open_button.rect().center())
    assert signal.args == [record.model_file]
    # The window opened it: a new, unsaved project of the trained CNN, with its weights.
    opened = window.project
    assert opened is not edited and opened.path is None and opened.runs == []
    assert opened.weights
    assert any(n.class_name == "Conv2D" for _, n in opened.graph.walk())


def test_a_run_without_a_model_cannot_be_opened(results):
    window, page = results
    window.project.runs[0] = dataclasses.replace(window.project.runs[0], artifacts={})
    page.refresh()
    click_row(page, 1)
    assert not page.open_button.isEnabled()


def test_delete_asks_first(results):
    window, page = results
    click_row(page, 1)  # run #1
    window.dialogs.confirm = False
    click(page.delete_button, page.delete_button.rect().center())
    assert window.dialogs.asked_confirm and len(window.project.runs) == 2
    window.dialogs.confirm = True
    click(page.delete_button, page.delete_button.rect().center())
    assert [page.table.item(0, 0).text()] == ["#1"]
    assert len(window.project.runs) == 1 and page.table.rowCount() == 1
    assert window.isWindowModified()


def test_regression_run_shows_errors_and_scatter(window, run_folder):
    _, diabetes = trained_projects(run_folder)
    window.set_project(diabetes)
    window._show_page(window.results_page)
    page = window.results_page
    view = page.evaluation
    assert view.regression.isVisibleTo(view) and not view.classification.isVisibleTo(view)
    results = diabetes.runs[0].results
    x, y = view.scatter.getData()
    assert len(x) == len(load_test_targets()) and np.allclose(x, results["scatter"]["true"])
    assert np.allclose(y, results["scatter"]["predicted"])
    assert "MAE" in view.metrics_label.text() or "mae" in view.metrics_label.text()
    assert view.regression_samples.rowCount() == 20


def load_test_targets():
    from kbuilder.graph.settings import DataSettings
    from kbuilder.runtime.data import load_data

    return load_data(DataSettings(source="diabetes")).y_test


def test_evaluate_again_on_the_validation_split(results, qtbot):
    from kbuilder.graph.settings import DataSettings
    from kbuilder.runtime.data import load_data

    window, page = results
    view = page.evaluation
    view.split_combo.setCurrentIndex(view.split_combo.findData("val"))
    click(view.evaluate_button, view.evaluate_button.rect().center())
    assert view.busy.isVisibleTo(view) and not view.evaluate_button.isEnabled()
    # The window keeps working while the worker evaluates.
    window._show_page(window.editor)
    window._show_page(window.results_page)
    qtbot.waitUntil(lambda: not page.job.busy, timeout=120_000)
    assert not view.status.text().startswith("The evaluation failed"), view.status.text()
    record = window.project.runs[1]
    evaluation = record.evaluations[-1]
    assert evaluation["split"] == "val"
    val_size = len(load_data(DataSettings(source="digits")).y_val)
    assert evaluation["samples"] == val_size
    assert view.confusion.matrix.sum() == val_size
    assert "validation split" in view.title.text()
    assert window.isWindowModified()


def test_a_run_recorded_while_the_tab_is_hidden_shows_when_it_is_opened(window, run_folder,
                                                                        qtbot):
    import copy

    digits, _ = trained_projects(run_folder)
    window.set_project(digits)
    window._show_page(window.train_page)
    page = window.results_page
    record = dataclasses.replace(copy.deepcopy(digits.runs[0]), run_id="just-recorded")
    digits.runs.append(record)
    window.train_page.run_recorded.emit(record)  # as the Train tab does when a run ends
    # Nothing built or drawn for a tab nobody looks at: that stalled the window.
    assert not page._built
    window._show_page(page)
    assert page.table.rowCount() == 3 and page.selected_run_ids() == ["just-recorded"]
    qtbot.waitUntil(lambda: "Run #3" in page.evaluation.title.text(), timeout=5000)
    assert {run_id for run_id, _key in page.curves} == {"just-recorded"}
    # While the tab shows, a new run is selected at once.
    again = dataclasses.replace(copy.deepcopy(digits.runs[1]), run_id="second")
    digits.runs.append(again)
    window.train_page.run_recorded.emit(again)
    assert page.current_run_id() == "second" and "Run #4" in page.evaluation.title.text()


def test_the_baselines_show_above_the_evaluation(results):
    """Issue 13 item 5: a test figure beside always guessing and a logistic regression."""
    window, page = results
    click_row(page, 0)
    record = page.record(page.current_run_id())
    base = record.baselines
    text = page.baseline.text()
    assert page.baseline.isVisibleTo(page)
    assert "Compared with simple baselines — accuracy on the test split" in text
    assert f"<b>{base['model']:.2f}</b>" in text and f"<b>{base['linear']:.2f}</b>" in text
    assert "this model" in text and "always '" in text and "logistic regression" in text
    if base["verdict"] == "better":
        assert "The model beats these baselines." in text
    else:  # two epochs: the digits CNN may not reach a logistic regression yet
        assert ("The model does not beat the logistic regression." in text
                or "The model does no better than always guessing '" in text)
        assert record.diagnosis[:40] in text
    assert f"{base['linear_rows']} training rows in" in page.details.toPlainText()
    # An older run, recorded before baselines existed, shows none.
    runs = window.project.runs
    runs[runs.index(record)] = dataclasses.replace(record, baselines=None)
    page._show_current()
    assert not page.baseline.isVisibleTo(page)


def test_a_regression_run_is_compared_with_the_mean(window, run_folder):
    _, diabetes = trained_projects(run_folder)
    window.set_project(diabetes)
    window._show_page(window.results_page)
    page = window.results_page
    record = diabetes.runs[0]
    text = page.baseline.text()
    assert "mean absolute error on the test split" in text
    assert "always the mean" in text and "ridge regression" in text
    mae = record.results["mae"]
    assert f"<b>{mae:.2f}</b>" in text if mae < 100 else f"<b>{mae:,.1f}</b>" in text
    # Three epochs of an MLP on diabetes do not beat a ridge regression: flagged.
    assert record.baselines["verdict"] != "better"
    assert ("The model does not beat the ridge regression." in text
            or "The model does no better than always predicting the mean." in text)
    assert record.diagnosis and "ridge regression" in record.diagnosis

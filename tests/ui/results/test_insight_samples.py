"""The Inside view's samples and refreshes (issue 17), driven as a user does: a sample
from a file (an image; a row of a table file) and an edited row of a table's columns;
the node's output computed again after an edit of the graph (after a pause) and when a
run finishes; the project's current weights with no run chosen; permutation importance
of a table in "model" encoding with a bar per original column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kbuilder.graph.commands import SetParamCommand
from kbuilder.ui.testing import click
from tests.ui.trained_runs import trained_projects, trained_table_project

SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"


def open_inside(window, project):
    window.set_project(project)
    window._show_page(window.results_page)
    page = window.results_page
    page.ensure_built()
    page.tabs.setCurrentWidget(page.insight)
    return page, page.insight


def press(button, view, qtbot) -> None:
    assert button.isEnabled()
    click(button, button.rect().center())
    assert view.job.busy
    qtbot.waitUntil(lambda: not view.job.busy, timeout=180_000)


def computed(view, qtbot) -> None:
    qtbot.waitUntil(lambda: view.job.busy, timeout=10_000)
    qtbot.waitUntil(lambda: not view.job.busy, timeout=180_000)


@pytest.mark.slow
def test_a_table_sample_from_a_file_an_edited_row_and_a_bar_per_column(window, run_folder,
                                                                       qtbot):
    project, table = trained_table_project(run_folder)
    page, view = open_inside(window, project)
    try:
        chooser = view.chooser
        # The first Dense layer: it sees every column.
        dense = next(n.name for n in window.doc.project.graph.nodes
                     if n.class_name == "Dense")
        view.layer.setCurrentText(dense)
        # A row of a table file with the training file's columns.
        assert chooser.choose_file(str(table))
        view.sample.setValue(3)
        press(view.output_button, view, qtbot)
        stats = view.result.activations
        assert stats["data"] == "sample 3 of penguins.csv", view.caption.text()
        from_file = np.load(stats["files"]["values"])[0]
        # The same row, edited by hand: the training file's columns, filled from row 3.
        chooser.source.setCurrentIndex(2)
        assert chooser.editor.isVisibleTo(view) and "species" not in chooser.columns
        chooser.fill_from_row(3)
        row = chooser.row()
        assert row["island"] and row["bill_length_mm"]
        press(view.output_button, view, qtbot)
        assert view.result.activations["data"] == "sample 1 of edited_row.csv"
        assert np.allclose(np.load(view.result.activations["files"]["values"])[0], from_file,
                           atol=1e-5)
        column = chooser.columns.index("body_mass_g")
        chooser.editor.item(0, column).setText(str(float(row["body_mass_g"] or 4000) + 3000))
        qtbot.wait(100)  # the caption's new lines laid out
        window.grab().save(str(SCREENSHOTS / "inside_edited_row.png"))
        press(view.output_button, view, qtbot)
        edited = np.load(view.result.activations["files"]["values"])[0]
        assert not np.allclose(edited, from_file, atol=1e-3)  # the edit reached the model
        # Permutation importance: one bar per original column, not one "numeric" bar.
        press(view.importance_button, view, qtbot)
        features = view.result.explanation["features"]
        assert "numeric" not in features and {"bill_length_mm", "body_mass_g", "island",
                                              "sex"} <= set(features), features
        qtbot.wait(100)
        window.grab().save(str(SCREENSHOTS / "inside_feature_importance_columns.png"))
        # The project's current weights with no run chosen.
        page.select_runs([])
        qtbot.waitUntil(lambda: view.record is None, timeout=10_000)
        chooser.source.setCurrentIndex(0)
        view.weights.setCurrentIndex(1)
        press(view.output_button, view, qtbot)
        stats = view.result.activations
        assert stats["weights"].startswith("the project's"), stats["weights"]
        assert stats["data"].startswith("sample 3 of the test split")
    finally:
        page.shutdown_workers()


@pytest.mark.slow
def test_an_image_file_a_graph_edit_and_a_finished_run_refresh_the_output(window, run_folder,
                                                                          qtbot, tmp_path):
    from PIL import Image

    digits, _ = trained_projects(run_folder)
    page, view = open_inside(window, digits)
    try:
        names = [view.layer.itemText(i) for i in range(view.layer.count())]
        conv = next(n for n in names if "conv" in n.lower())
        view.layer.setCurrentText(conv)
        picture = tmp_path / "seven.png"
        Image.fromarray((np.random.default_rng(0).uniform(0, 255, (8, 8))).astype("uint8"),
                        "L").save(picture)
        assert view.chooser.choose_file(str(picture))
        assert not view.sample.isEnabled()  # one image: no row to choose
        press(view.output_button, view, qtbot)
        assert view.result.activations["data"] == "sample 1 of seven.png", view.caption.text()
        assert view.result.activations["kind"] == "image"
        # The project's weights: an edit of the graph computes the output again, once
        # the edits pause.
        view.chooser.source.setCurrentIndex(0)
        view.weights.setCurrentIndex(1)
        press(view.output_button, view, qtbot)
        before = view.result.activations
        assert before["minimum"] >= 0  # a ReLU
        graph = window.doc.project.graph
        node = next(n for n in graph.nodes if n.name == conv)
        window.doc.edit(lambda: SetParamCommand(graph, node.id, "activation", "linear"))
        assert view.edit_timer.isActive() and not view.job.busy  # waits for a pause
        computed(view, qtbot)
        after = view.result.activations
        # No ReLU now: negative values (the zeros left are all-zero patches of the
        # digit's border, times weights, plus a zero bias).
        assert after["layer"] == conv and after["minimum"] < 0, after
        # A run finishes (recorded, then shown): the view looks into its model.
        view.weights.setCurrentIndex(0)
        press(view.output_button, view, qtbot)
        import dataclasses

        finished = dataclasses.replace(page.runs[0], run_id="just-finished")
        window.doc.project.runs.append(finished)
        page.show_run("just-finished")
        computed(view, qtbot)
        assert view.result.run_id == "just-finished"
    finally:
        page.shutdown_workers()


@pytest.mark.slow
def test_an_attention_layers_weights_per_head(qtbot, tmp_path):
    from kbuilder.graph.project import Project
    from kbuilder.graph.settings import DataSettings
    from kbuilder.graph.templates import _Draw
    from kbuilder.ui.results.insight_view import QtInsightView

    d = _Draw("attention")
    tokens = d.input([6, 4], name="tokens")
    attention = d.layer("MultiHeadAttention", tokens, tokens, ports=["query", "value"],
                        name="attention", num_heads=2, key_dim=4)
    pooled = d.layer("GlobalAveragePooling1D", attention, name="pool")
    d.output(d.layer("Dense", pooled, name="classes", units=3, activation="softmax"))
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "seq.npz", x=rng.normal(size=(20, 6, 4)).astype("float32"),
             y=rng.integers(0, 3, 20))
    project = Project(d.graph, data=DataSettings(source=f"npz:{tmp_path / 'seq.npz'}"))
    view = QtInsightView()
    qtbot.addWidget(view)
    view.resize(760, 520)
    view.show()
    try:
        # No run: the project's model, freshly initialised, on its data's test split.
        view.set_run(None, None, ["attention", "pool", "classes"], False, project)
        view.weights.setCurrentIndex(1)
        view.layer.setCurrentText("attention")
        press(view.output_button, view, qtbot)
        stats = view.result.activations
        assert stats["attention_shape"] == [2, 6, 6], view.caption.text()
        scores = np.load(stats["files"]["attention"])
        assert np.allclose(scores.sum(axis=-1), 1, atol=1e-5)
        assert "attention weights, one map per head" in view.caption.text()
        assert not view.picture.pixmap().isNull()
        qtbot.wait(100)
        view.grab().save(str(SCREENSHOTS / "inside_attention_heads.png"))
    finally:
        view.shutdown()

"""Predict on a file in the Results tab (issue 13), as a user does: a run's model (the MLP
fitted to a raw penguins CSV, trained on JAX) on new raw rows — with an unseen category and
empty cells — shows what `kbuilder predict` writes for the same file; the predictions save
as CSV; a file the model cannot take says why in a sentence."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from kbuilder import cli
from kbuilder.ui.testing import click
from tests.ui.trained_runs import trained_table_project


@pytest.fixture
def results(window, run_folder):
    project, table = trained_table_project(run_folder)
    window.set_project(project)
    window._show_page(window.results_page)
    page = window.results_page
    yield window, page, table
    page.shutdown_workers()


def read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def write_rows(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def new_rows(table: Path, folder: Path) -> Path:
    """The first 30 rows of the training file without their species, and one row of an
    island never seen in training with an empty measurement and an empty sex."""
    with open(table, newline="") as handle:
        header, *body = list(csv.reader(handle))
    at = header.index("species")
    rows = [[c for i, c in enumerate(r) if i != at] for r in body[:30]]
    rows.append(["Atlantis", "41.0", "", "200.0", "4100.0", ""])
    return write_rows(folder / "new penguins.csv", [h for h in header if h != "species"],
                      rows)


def predict(page, qtbot, path: Path, window) -> None:
    window.dialogs.open_path = str(path)
    click(page.predict_button, page.predict_button.rect().center())
    view = page.predictions
    assert page.tabs.currentWidget() is view
    assert view.progress.isVisibleTo(view) and view.busy
    # The window keeps working while the worker predicts.
    window._show_page(window.editor)
    window._show_page(window.results_page)
    qtbot.waitUntil(lambda: not view.busy, timeout=180_000)


def test_predicting_on_raw_rows_shows_what_kbuilder_predict_writes(results, qtbot, tmp_path):
    window, page, table = results
    view = page.predictions
    assert page.predict_button.isEnabled()
    rows = new_rows(table, tmp_path)
    predict(page, qtbot, rows, window)
    assert view.status.objectName() == "muted", view.status.text()
    assert view.status.text() == "31 predictions for the rows of new penguins.csv."
    assert view.title.text() == "Run #1 on new penguins.csv"
    # Each prediction beside its row: the line and the input's first columns.
    assert view.header[:5] == ["line", "island", "bill_length_mm", "bill_depth_mm",
                               "flipper_length_mm"]
    assert view.header[5:7] == ["predicted", "confidence"]
    assert view.column("line") == [str(n) for n in range(2, 33)]
    assert view.column("island")[-1] == "Atlantis"
    assert view.column("bill_depth_mm")[-1] == ""  # empty as in the file

    model = page.record(page.current_run_id()).model_file
    out = tmp_path / "cli.csv"
    assert cli.main(["predict", model, "--input", str(rows), "-o", str(out),
                     "--backend", "jax"]) == 0
    expected = read(out)
    assert len(expected) == view.table.rowCount() == 31
    assert view.column("predicted") == [r["predicted"] for r in expected]
    probabilities = [k for k in expected[0] if k.startswith("p_")]
    assert sorted(probabilities) == ["p_Adelie", "p_Chinstrap", "p_Gentoo"]
    for name in ["confidence", *probabilities]:
        assert view.column(name) == [f"{float(r[name]):.4f}" for r in expected], name
        c = view.header.index(name)
        shown = [float(view.table.item(i, c).data(Qt.ItemDataRole.UserRole)) for i in range(31)]
        assert shown == pytest.approx([float(r[name]) for r in expected], abs=1e-6)
    # Most of the known rows are predicted right after 3 epochs (it learned something).
    with open(table, newline="") as handle:
        truth = [r["species"] for r in list(csv.DictReader(handle))[:30]]
    right = sum(a == b for a, b in zip(view.column("predicted"), truth, strict=False))
    assert right >= 20, (right, view.column("predicted"), truth)

    # Save as CSV: every prediction, with the row columns, where the user says.
    window.dialogs.save_path = str(tmp_path / "saved")
    assert view.save_button.isEnabled()
    click(view.save_button, view.save_button.rect().center())
    saved = read(tmp_path / "saved.csv")
    assert view.status.text().startswith("Saved 31 predictions to")
    assert [r["predicted"] for r in saved] == [r["predicted"] for r in expected]
    assert [r["line"] for r in saved] == [str(n) for n in range(2, 33)]
    assert not list(tmp_path.glob(".saved.csv.*"))  # no temporary file left behind


def test_a_file_the_model_cannot_take_says_why(results, qtbot, tmp_path):
    window, page, table = results
    view = page.predictions
    with open(table, newline="") as handle:
        header, *body = list(csv.reader(handle))
    # A column the model needs is missing.
    at = header.index("island")
    missing = write_rows(tmp_path / "no island.csv", [h for h in header if h != "island"],
                         [[c for i, c in enumerate(r) if i != at] for r in body[:5]])
    predict(page, qtbot, missing, window)
    text = view.status.text()
    assert view.status.objectName() == "errorLabel"
    assert text.startswith("The prediction failed: ") and "island" in text, text
    assert "Traceback" not in text and "File \"" not in text
    assert not view.save_button.isEnabled() and view.table.rowCount() == 0
    # A bad number: the sentence names the line and the column.
    bad = [list(r) for r in body[:5]]
    bad[2][header.index("body_mass_g")] = "heavy"
    predict(page, qtbot, write_rows(tmp_path / "bad.csv", header, bad), window)
    text = view.status.text()
    assert view.status.objectName() == "errorLabel"
    assert "line 4" in text and "body_mass_g" in text and "heavy" in text, text
    assert "Traceback" not in text


def test_the_menu_action_asks_for_a_file_and_cancelling_does_nothing(results):
    window, page, _table = results
    window.dialogs.open_path = ""  # the user closes the file dialog
    window.predict_file_action.trigger()
    assert not page.predictions.busy and page.predictions.table.rowCount() == 0
    assert window.current_page() is page


@pytest.mark.slow
def test_an_image_run_predicts_on_a_folder_of_images(window, qtbot, tmp_path):
    """A run trained on an image folder asks for a folder and predicts on every image in
    it (sub-folders too), each named by its file, as `kbuilder predict --input DIR`."""
    import numpy as np

    from kbuilder.graph.settings import DataSettings
    from kbuilder.runtime.client import Worker
    from kbuilder.runtime.preflight import new_project_for_data
    from tests.runtime.test_data import write_png
    from tests.runtime.test_image_streaming import image_folder
    from tests.ui.trained_runs import _train

    settings = DataSettings(source=f"images:{image_folder(tmp_path / 'images', 36, 3)}",
                            image_size=(16, 16))
    project = new_project_for_data("cnn_classifier", settings)
    worker = Worker("jax")
    try:
        project.runs = [_train(project, worker, tmp_path / "run", epochs=1, batch_size=12)]
    finally:
        worker.shutdown()
    window.set_project(project)
    window._show_page(window.results_page)
    page = window.results_page
    new = tmp_path / "new"
    write_png(new / "dark.png", np.full((8, 8, 3), 40, np.uint8))
    write_png(new / "more" / "light.png", np.full((8, 8, 3), 230, np.uint8))
    window.dialogs.folder_path = str(new)
    window.dialogs.open_path = str(tmp_path / "not asked.csv")
    window.dialogs.choice = 0  # "The images in a folder"
    view = page.predictions
    try:
        click(page.predict_button, page.predict_button.rect().center())
        qtbot.waitUntil(lambda: not view.busy, timeout=180_000)
        assert view.status.text() == "2 predictions for the images in new.", view.status.text()
        assert [Path(f).name for f in view.column("file")] == ["dark.png", "light.png"]
        assert set(view.column("predicted")) <= {"class_0", "class_1", "class_2"}
        from_folder = {k: view.column(f"p_class_{k}") for k in range(3)}
        # One image file: the same numbers as that image had in the folder.
        window.dialogs.choice, window.dialogs.open_path = 1, str(new / "dark.png")
        click(page.predict_button, page.predict_button.rect().center())
        qtbot.waitUntil(lambda: not view.busy, timeout=180_000)
        assert view.status.text() == "1 prediction for dark.png.", view.status.text()
        assert {k: view.column(f"p_class_{k}") for k in range(3)} == {
            k: column[:1] for k, column in from_folder.items()}
    finally:
        page.shutdown_workers()
    assert window.dialogs.asked_choice[0] == ("Predict on:", [
        "The images in a folder", "One image file", "A NumPy array of images (.npy, .npz)"])
    out = tmp_path / "cli.csv"
    model = project.runs[0].model_file
    assert cli.main(["predict", model, "--input", str(new), "-o", str(out)]) == 0
    expected = read(out)
    for k in range(3):  # the CLI, given a model file only, names the classes 0, 1, 2
        assert from_folder[k] == [f"{float(r[f'p_{k}']):.4f}" for r in expected]

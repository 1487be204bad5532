"""The Data tab, driven as a user does: choose data, see it, fix what does not fit."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from kbuilder.graph.commands import SetParamCommand
from kbuilder.graph.settings import DataSettings, TrainingSettings

SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"
CSV_GOOD = """age,colour,size,label
23,red,1.5,yes
35,blue,,no
41,red,2.5,yes
19,green,0.5,no
52,blue,3.0,yes
33,red,1.0,no
28,green,2.0,yes
47,blue,1.5,no
39,red,2.5,yes
25,green,1.0,no
"""


def open_data_tab(window):
    page = window.data_page
    window._show_page(page)
    assert page.wait(120)
    return page


def choose_kind(page, kind: str) -> None:
    page.source.kind_combo.setCurrentIndex(page.source.kind_combo.findData(kind))


def column_rows(page) -> dict[str, str]:
    """Column name -> detected type, as the column table shows them."""
    model = page.source.table.columns
    return {model.item(r, 0).text(): model.item(r, 1).text() for r in range(model.rowCount())}


def test_digits_preview_shows_images_and_class_counts(qtbot, mlp_window):
    page = open_data_tab(mlp_window)

    assert page.error is None
    assert page.samples_view.currentWidget() is page.grid
    samples = page.grid.samples
    assert samples.rowCount() >= 30
    first = samples.item(0)
    assert first.data(Qt.ItemDataRole.UserRole) == (8, 8, 1)
    assert not first.icon().pixmap(64, 64).isNull()
    labels = {samples.item(r).text() for r in range(samples.rowCount())}
    assert labels == {str(d) for d in range(10)}  # a few of every class
    assert page.class_counts.names == [str(d) for d in range(10)]
    assert sum(page.class_counts.totals()) == 1797
    text = page.summary_label.text()
    assert "10 classes" in text and "(8, 8, 1)" in text and "1,797" in text
    # Looking at the default data is no change to the project.
    assert mlp_window.project.data is None
    assert not mlp_window.doc.modified

    # A tabular built-in: a table head with the feature names; the choice is stored.
    with qtbot.waitSignal(page.data_changed, timeout=60_000):
        page.source.dataset_combo.setCurrentIndex(page.source.dataset_combo.findData("iris"))
        assert page.wait(60)
    assert page.samples_view.currentWidget() is page.table
    header = page.table.table.header
    assert header[0] == "label" and "petal length (cm)" in header
    assert page.table.table.rowCount() == 50
    assert mlp_window.project.data.source == "iris"
    assert mlp_window.isWindowModified()


def test_csv_columns_types_and_target(qtbot, mlp_window, tmp_path):
    path = tmp_path / "people.csv"
    path.write_text(CSV_GOOD)
    page = open_data_tab(mlp_window)
    mlp_window.dialogs.open_path = str(path)
    choose_kind(page, "csv")
    qtbot.mouseClick(page.source.table.csv_choose, Qt.MouseButton.LeftButton)
    assert page.wait(60)

    assert page.error is None, page.error
    rows = column_rows(page)
    assert rows == {"age": "number", "colour": "text · 3 values",
                    "size": "number · 1 missing", "label": "text · 2 values"}
    assert page.source.table.target_combo.currentData() == "label"  # the last column by default
    data = mlp_window.project.data
    assert data.source == f"csv:{path}" and data.target == "label"
    assert "2 classes (no, yes)" in page.summary_label.text()
    assert "column 'size': 1 value(s), filled with" in page.summary_label.text()
    # The table head is the file as written, the missing cell marked.
    assert page.samples_view.currentWidget() is page.table
    assert page.table.table.header == ["age", "colour", "size", "label"]
    assert page.table.table.data(page.table.table.index(1, 2),
                                 Qt.ItemDataRole.ToolTipRole) == "missing value"

    # Predict the colour instead, leave age out and treat size as a category.
    page.source.table.target_combo.setCurrentIndex(page.source.table.target_combo.findData("colour"))
    page.source.table.columns.item(0, 2).setCheckState(Qt.CheckState.Unchecked)  # "Use" of age
    page.source.table.columns.item(2, 3).setCheckState(Qt.CheckState.Checked)  # "Categorical" of size
    assert page.wait(60)
    assert page.error is None, page.error
    data = mlp_window.project.data
    assert data.target == "colour"
    assert data.features == ("size", "label")
    assert data.categorical == ("size",)
    assert "3 classes (blue, green, red)" in page.summary_label.text()
    assert "size=(missing)" in page.summary_label.text()  # the category of the empty cell


def test_columns_the_loader_leaves_out_are_shown_unticked(qtbot, mlp_window, tmp_path):
    """An identifier column: the table, the summary and the loader agree it is not used,
    and ticking it makes it a feature."""
    path = tmp_path / "patients.csv"
    rows = [f"P{i:04d},{20 + i % 50},,{'yes' if i % 3 else 'no'}" for i in range(120)]
    path.write_text("patient_id,age,notes,label\n" + "\n".join(rows) + "\n")
    page = open_data_tab(mlp_window)
    mlp_window.dialogs.open_path = str(path)
    choose_kind(page, "csv")
    qtbot.mouseClick(page.source.table.csv_choose, Qt.MouseButton.LeftButton)
    assert page.wait(60)
    assert page.error is None, page.error
    model = page.source.table.columns
    use = {model.item(r, 0).text(): model.item(r, 2) for r in range(model.rowCount())}
    assert use["patient_id"].checkState() == Qt.CheckState.Unchecked
    assert "identifier" in use["patient_id"].toolTip()
    assert use["notes"].checkState() == Qt.CheckState.Unchecked  # empty
    assert use["age"].checkState() == Qt.CheckState.Checked
    summary = page.summary_label.text()
    assert "'patient_id'" in summary and "left out" in summary
    assert mlp_window.project.data.features is None  # the loader's defaults
    # Ticking it uses it: an explicit choice of features.
    use["patient_id"].setCheckState(Qt.CheckState.Checked)
    assert page.wait(60)
    assert page.error is None, page.error
    assert mlp_window.project.data.features == ("patient_id", "age")
    assert "like an identifier" not in page.summary_label.text()


def test_bad_csv_is_explained_and_keeps_the_data_in_use(qtbot, mlp_window, tmp_path):
    page = open_data_tab(mlp_window)
    page.source.dataset_combo.setCurrentIndex(page.source.dataset_combo.findData("wine"))
    assert page.wait(60)
    before = mlp_window.project.data
    assert before.source == "wine"

    bad = tmp_path / "bad.csv"
    bad.write_text("height,weight,label\n1.5,60,a\n1.7,70,b\n1.6,sixty,a\n1.8,80,b\n"
                   "1.4,50,a\n1.9,90,b\n")
    mlp_window.dialogs.open_path = str(bad)
    choose_kind(page, "csv")
    qtbot.mouseClick(page.source.table.csv_choose, Qt.MouseButton.LeftButton)
    assert page.wait(60)

    assert page.error is not None
    assert page.error_box.isVisible()
    message = page.error_label.text()
    assert "line 4, column 'weight': 'sixty' is not a number" in message
    assert "line 4" in page.error_where.text() and "'weight'" in page.error_where.text()
    assert "still using wine" in page.error_where.text()
    assert mlp_window.project.data == before  # nothing changed
    assert page.dataset.source == "wine"
    # The columns are listed anyway, the culprit marked, so it can be fixed here.
    assert column_rows(page)["weight"] == "number with text ('sixty', line 4)"

    # Marking the column categorical makes the file usable.
    page.source.table.columns.item(1, 3).setCheckState(Qt.CheckState.Checked)
    assert page.wait(60)
    assert page.error is None and not page.error_box.isVisible()
    assert mlp_window.project.data.categorical == ("weight",)

    # A target without values: said so, and "Back to ..." restores the data in use.
    empty = tmp_path / "no_target.csv"
    empty.write_text("a,b,y\n1,2,\n3,4,\n5,6,\n")
    before = mlp_window.project.data
    mlp_window.dialogs.open_path = str(empty)
    qtbot.mouseClick(page.source.table.csv_choose, Qt.MouseButton.LeftButton)
    assert page.wait(60)
    assert "The target column 'y' of no_target.csv has no values" in page.error_label.text()
    assert mlp_window.project.data == before
    qtbot.mouseClick(page.restore_button, Qt.MouseButton.LeftButton)
    assert not page.error_box.isVisible()
    assert page.source.table.csv_path.text() == str(bad)
    assert column_rows(page)["weight"].startswith("number with text")


def test_download_failure_keeps_the_previous_choice(qtbot, mlp_window, monkeypatch):
    from kbuilder.runtime import data

    def offline(name, progress):
        raise data.builtin._download_error(name, OSError("[Errno -2] Name or service not known"))

    monkeypatch.setattr(data.builtin, "load_keras", offline)  # no network in tests, either way
    page = open_data_tab(mlp_window)
    page.source.dataset_combo.setCurrentIndex(page.source.dataset_combo.findData("mnist"))
    assert page.wait(60)
    assert "Could not download MNIST (no internet connection?)" in page.error_label.text()
    assert page.dataset.source == "digits"
    assert mlp_window.project.data is None
    assert page.samples_view.currentWidget() is page.grid  # digits still shown


def test_a_finding_names_the_node_and_its_fix_is_one_undoable_edit(qtbot, mlp_window):
    doc = mlp_window.doc
    head = doc.graph.find("predictions")
    doc.edit(lambda: SetParamCommand(doc.graph, head.id, "units", 3))
    page = open_data_tab(mlp_window)

    (finding,) = [f for f in page.findings if f.code == "softmax_units"]
    assert finding.node_id == head.id
    (row,) = [r for r in page.checks.rows if r.finding is finding]
    assert row.about.text() == "Layer 'predictions'"
    assert "3 softmax units" in row.message.text()
    assert row.fix_button.isVisible() and "to 10" in row.fix_button.text()
    assert "1 problem" in page.checks.status.text()

    depth = len(doc.history._done)
    qtbot.mouseClick(row.fix_button, Qt.MouseButton.LeftButton)
    assert doc.graph.node(head.id).param("units") == 10
    assert len(doc.history._done) == depth + 1
    assert page.wait(60)
    assert not [f for f in page.findings if f.severity == "error"]
    assert "No problems found" in page.checks.status.text()

    assert page.undo_button.isVisible()  # undo right here, the checks follow the model
    qtbot.mouseClick(page.undo_button, Qt.MouseButton.LeftButton)
    assert doc.graph.node(head.id).param("units") == 3
    assert len(doc.history._done) == depth
    assert page.wait(60)
    assert [f.code for f in page.findings] == ["softmax_units"]

    # "Show in model" selects the node in the editor.
    row = page.checks.rows[0]
    qtbot.mouseClick(row.show_button, Qt.MouseButton.LeftButton)
    assert mlp_window.current_page() is mlp_window.editor
    assert mlp_window.editor.selected_node_ids() == [head.id]


def test_training_fixes_and_fitting_the_model_to_the_data(qtbot, mlp_window):
    doc = mlp_window.doc
    head = doc.graph.find("predictions")
    doc.edit(lambda: SetParamCommand(doc.graph, head.id, "units", 3))
    mlp_window.project.training = TrainingSettings(loss="categorical_crossentropy")
    page = open_data_tab(mlp_window)
    codes = {f.code for f in page.findings}
    assert "softmax_units" in codes

    # The fit: output units, activation and loss, the model part undoable at once.
    assert page.checks.fit_button.isEnabled()
    depth = len(doc.history._done)
    with qtbot.waitSignal(page.data_changed):
        qtbot.mouseClick(page.checks.fit_button, Qt.MouseButton.LeftButton)
    assert doc.graph.node(head.id).param("units") == 10
    assert mlp_window.project.training.loss == "sparse_categorical_crossentropy"
    assert len(doc.history._done) == depth + 1
    assert page.wait(60)
    assert not [f for f in page.findings if f.severity == "error"]
    assert not page.checks.fit_button.isEnabled()  # nothing left to fit
    # The page's Undo reverts the model edit and the loss it chose.
    with qtbot.waitSignal(page.data_changed):
        qtbot.mouseClick(page.undo_button, Qt.MouseButton.LeftButton)
    assert doc.graph.node(head.id).param("units") == 3
    assert mlp_window.project.training == TrainingSettings(loss="categorical_crossentropy")
    assert len(doc.history._done) == depth
    assert page.wait(60)
    assert page.checks.fit_button.isEnabled()

    # A fix that changes the data settings: no validation data -> a split of 0.2.
    page.source.validation_spin.setValue(0.0)
    assert page.wait(60)
    assert mlp_window.project.data.validation_split == 0
    (finding,) = [f for f in page.findings if f.code == "no_validation"]
    (row,) = [r for r in page.checks.rows if r.finding is finding]
    assert row.about.text() == "Training settings"
    qtbot.mouseClick(row.fix_button, Qt.MouseButton.LeftButton)
    assert page.wait(60)
    assert mlp_window.project.data.validation_split == pytest.approx(0.2)
    assert page.source.validation_spin.value() == pytest.approx(0.2)
    assert "no_validation" not in {f.code for f in page.findings}
    qtbot.mouseClick(page.undo_button, Qt.MouseButton.LeftButton)  # a settings-only fix
    assert page.wait(60)
    assert mlp_window.project.data.validation_split == 0
    assert page.source.validation_spin.value() == 0


def test_data_settings_are_saved_and_reopened_with_the_project(qtbot, mlp_window,
                                                              make_window, tmp_path):
    page = open_data_tab(mlp_window)
    page.source.dataset_combo.setCurrentIndex(page.source.dataset_combo.findData("breast_cancer"))
    page.source.validation_spin.setValue(0.25)
    page.source.seed_spin.setValue(7)
    assert page.wait(60)
    # Splits that leave nothing to train on: said at once, nothing stored.
    page.source.test_spin.setValue(0.8)
    page.apply_controls()
    assert "must leave some data for training" in page.error_label.text()
    assert page.error_box.isVisible()
    page.source.test_spin.setValue(0.2)
    page.apply_controls()
    assert not page.error_box.isVisible()
    saved = mlp_window.project.data
    assert saved == DataSettings(
        source="breast_cancer", validation_split=0.25, seed=7)
    path = tmp_path / "model.kbproj"
    assert mlp_window.save_as(path)

    other = make_window()
    assert other.open_project(path)
    page = open_data_tab(other)
    assert other.project.data == saved
    assert page.source.dataset_combo.currentData() == "breast_cancer"
    assert page.source.validation_spin.value() == pytest.approx(0.25)
    assert page.source.seed_spin.value() == 7
    assert page.dataset.source == "breast_cancer"
    assert not other.doc.modified  # loading what was saved changes nothing


def test_numpy_file_and_image_folder(qtbot, mlp_window, tmp_path):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    npz = tmp_path / "arrays.npz"
    np.savez(npz, x=rng.normal(size=(40, 6)).astype("float32"), y=np.arange(40) % 2)
    page = open_data_tab(mlp_window)
    mlp_window.dialogs.open_path = str(npz)
    choose_kind(page, "npz")
    qtbot.mouseClick(page.source.npz_choose, Qt.MouseButton.LeftButton)
    assert page.wait(60)
    assert page.error is None, page.error
    assert mlp_window.project.data.source == f"npz:{npz}"
    assert page.samples_view.currentWidget() is page.table
    assert page.table.table.header == ["label", "x0", "x1", "x2", "x3", "x4", "x5"]
    assert "(6,) float32" in page.summary_label.text()

    folder = tmp_path / "shapes"
    for k, name in enumerate(("circles", "squares")):
        (folder / name).mkdir(parents=True)
        for i in range(3):
            pixels = np.full((10, 12, 3), 60 * (i + 1) + 40 * k, dtype=np.uint8)
            Image.fromarray(pixels).save(folder / name / f"{i}.png")
    mlp_window.dialogs.folder_path = str(folder)
    choose_kind(page, "images")
    page.source.height_spin.setValue(16)
    page.source.width_spin.setValue(20)
    page.source.color_combo.setCurrentIndex(page.source.color_combo.findData("grayscale"))
    qtbot.mouseClick(page.source.images_choose, Qt.MouseButton.LeftButton)
    assert page.wait(60)
    assert page.error is None, page.error
    data = mlp_window.project.data
    assert data.source == f"images:{folder}"
    assert data.image_size == (16, 20) and data.color_mode == "grayscale"
    assert page.samples_view.currentWidget() is page.grid
    item = page.grid.samples.item(0)
    assert item.data(Qt.ItemDataRole.UserRole) == (16, 20, 1)
    assert {page.grid.samples.item(r).text() for r in range(page.grid.samples.rowCount())} \
        == {"circles", "squares"}
    assert page.class_counts.names == ["circles", "squares"]
    # The input takes the images' shape, then the raw pixels (0..255) are found and the
    # fix adds a Rescaling layer after the input, undoably.
    (shape,) = [f for f in page.findings if f.code == "input_shape"]
    assert page.apply_fix(shape)
    assert mlp_window.doc.graph.find("features").param("shape") == [16, 20, 1]
    assert page.wait(60)
    (unscaled,) = [f for f in page.findings if f.code == "unscaled_inputs"]
    (row,) = [r for r in page.checks.rows if r.finding is unscaled]
    assert "Add Rescaling after 'features'" in row.fix_button.text()
    qtbot.mouseClick(row.fix_button, Qt.MouseButton.LeftButton)
    graph = mlp_window.doc.graph
    (rescaling,) = [n for n in graph.nodes if n.class_name == "Rescaling"]
    assert graph.predecessors(rescaling.id) == [graph.find("features").id]
    assert page.wait(60)
    assert "unscaled_inputs" not in {f.code for f in page.findings}
    qtbot.mouseClick(page.undo_button, Qt.MouseButton.LeftButton)
    assert not [n for n in graph.nodes if n.class_name == "Rescaling"]


def test_a_model_for_larger_images_is_adapted_to_the_data_in_one_click(qtbot, window):
    """96×96 RGB model, 8×8 grey digits: the fix adds Resizing and grey-to-RGB after the
    input (setting the input to 8×8 would break the convolutions)."""
    from kbuilder.graph.project import Project
    from tests.runtime.preflight.test_preflight import deep_rgb_cnn

    window.set_project(Project.new(deep_rgb_cnn()))
    doc = window.doc
    page = open_data_tab(window)
    (row,) = [r for r in page.checks.rows if r.finding.code == "input_shape"]
    assert "Resizing layer to 96×96" in row.message.text()
    assert row.fix_button.isVisible()
    assert "Resize to 96×96" in row.fix_button.toolTip()
    depth = len(doc.history._done)
    qtbot.mouseClick(row.fix_button, Qt.MouseButton.LeftButton)
    assert len(doc.history._done) == depth + 1
    assert page.wait(60)
    assert not [f for f in page.findings if f.severity == "error"]
    resize = doc.graph.find("resizing")
    shown = window.editor.scene.nodes[resize.id]
    assert shown.shape_text == "(None, 96, 96, 3)" and shown.status == "ok"
    # Nothing drawn on top of anything else.
    rects = [i.sceneBoundingRect().adjusted(8, 20, -8, -20)
             for i in window.editor.scene.nodes.values()]
    assert not any(a.intersects(b) for i, a in enumerate(rects) for b in rects[i + 1:])
    qtbot.mouseClick(page.undo_button, Qt.MouseButton.LeftButton)
    assert len(doc.history._done) == depth and "resizing" not in doc.graph.names()


def test_column_roles_are_shown_overridable_and_messy_categories_merge(qtbot, mlp_window,
                                                                       tmp_path):
    """The Role column says what kbuilder makes of each column and why; a role chosen
    there is stored and used; spellings of one category merge in one click, and back."""
    rows = ["patient_id,visit,sex,weight,outcome"]
    sexes = ["M", "male", "Male", "female", "F", "female"]
    for i in range(60):
        rows.append(f"{1000 + i},2024-0{1 + i % 9}-1{i % 10},{sexes[i % 6]},"
                    f"{60 + i % 17},{'ab'[i % 2]}")
    path = tmp_path / "clinic.csv"
    path.write_text("\n".join(rows) + "\n")
    page = open_data_tab(mlp_window)
    mlp_window.dialogs.open_path = str(path)
    choose_kind(page, "csv")
    qtbot.mouseClick(page.source.table.csv_choose, Qt.MouseButton.LeftButton)
    assert page.wait(60)
    assert page.error is None, page.error

    visit = page.source.table.role_combo("visit")
    assert visit.currentText() == "auto: date" and "day of week" in visit.toolTip()
    assert page.source.table.role_combo("patient_id").currentText() == "auto: identifier"
    assert "identifier" in page.source.table.role_combo("patient_id").toolTip()
    assert "visit.month" in page.dataset.feature_names

    # The user leaves the date out.
    visit.setCurrentIndex(visit.findData("ignore"))
    assert page.wait(60)
    assert mlp_window.project.data.roles == (("visit", "ignore"),)
    assert not any(n.startswith("visit") for n in page.dataset.feature_names)

    # Messy spellings of sex are pointed out, merged in one click...
    assert page.source.table.merge_button.isVisible()
    assert "'M', 'Male' → 'male'" in page.source.table.merge_note.text()
    assert {"sex=M", "sex=Male", "sex=F"} <= set(page.dataset.feature_names)
    qtbot.mouseClick(page.source.table.merge_button, Qt.MouseButton.LeftButton)
    assert page.wait(60)
    assert ("sex", "M", "male") in mlp_window.project.data.merges
    assert [n for n in page.dataset.feature_names if n.startswith("sex=")] == \
        ["sex=female", "sex=male"]
    # ...and unmerged the same way.
    assert page.source.table.merge_button.text().startswith("Undo")
    qtbot.mouseClick(page.source.table.merge_button, Qt.MouseButton.LeftButton)
    assert page.wait(60)
    assert mlp_window.project.data.merges == ()
    assert "sex=M" in page.dataset.feature_names


def test_fitting_the_model_to_an_unscaled_table_adds_normalization(qtbot, mlp_window,
                                                                   tmp_path):
    """Issue 13 item 5: "Fit the model to this data" acts on the unscaled-features
    warning: a Normalization right after the Input, adapted when training starts."""
    from tests.runtime.penguins import penguins_csv

    path = penguins_csv(tmp_path / "penguins.csv")
    page = open_data_tab(mlp_window)
    mlp_window.dialogs.open_path = str(path)
    choose_kind(page, "csv")
    qtbot.mouseClick(page.source.table.csv_choose, Qt.MouseButton.LeftButton)
    assert page.wait(60) and page.error is None, page.error
    page.source.table.target_combo.setCurrentIndex(page.source.table.target_combo.findData("species"))
    assert page.wait(60)
    assert "unscaled_features" in {f.code for f in page.findings}
    assert page.checks.fit_button.isEnabled()
    # The button says what the fit will build (not the flat plan of the data as loaded).
    tip = page.checks.fit_button.toolTip()
    assert "Normalization added after 'features'" not in tip
    assert ("4 columns of numbers ('bill_length_mm', 'bill_depth_mm', 'flipper_length_mm',"
            " 'body_mass_g') enter Input 'numeric' through FillMissing and Normalization"
            in tip), tip
    assert "Each categorical column ('island', 'sex') gets its own int32 Input and a " \
        "CategoryEncoding (one-hot)" in tip, tip
    assert "'predictions' set to 3 unit(s) with softmax" in tip and \
        tip.endswith("One undoable edit."), tip
    doc = mlp_window.doc
    depth = len(doc.history._done)
    qtbot.mouseClick(page.checks.fit_button, Qt.MouseButton.LeftButton)
    # The table is read again in the background: the page says so, the window stays usable.
    assert page.fitter.busy and page.progress.isVisibleTo(page)
    assert "again with its preprocessing in the model" in page.status.text()
    assert not page.checks.fit_button.isEnabled()
    mlp_window._show_page(mlp_window.editor)
    mlp_window._show_page(page)
    assert page.wait(60)
    assert len(doc.history._done) == depth + 1  # one undoable edit
    assert page.status.text().startswith("Fitted the model to the data: "), page.status.text()
    graph = mlp_window.doc.graph
    # The table's preprocessing is in the model: raw numbers through FillMissing and
    # Normalization, each category through its own Input and a CategoryEncoding.
    assert mlp_window.doc.project.data.table_encoding == "model"
    (fill,) = graph.successors(graph.find("numeric").id)
    assert graph.node(fill).class_name == "FillMissing"
    assert [graph.node(n).class_name for n in graph.successors(fill)] == ["Normalization"]
    assert graph.find("island_one_hot").class_name == "CategoryEncoding"
    assert "unscaled_features" not in {f.code for f in page.findings}
    assert not page.checks.fit_button.isEnabled()  # nothing left to fit
    # The page's Undo reverts the model edit and the encoding together.
    qtbot.mouseClick(page.undo_button, Qt.MouseButton.LeftButton)
    assert page.wait(60)
    assert len(doc.history._done) == depth
    assert [n.name for n in graph.input_nodes()] == ["features"]
    assert "table_encoding" not in mlp_window.doc.project.data.to_dict()


def test_image_folder_options_and_fitting_with_augmentation(qtbot, window, tmp_path):
    """The Data tab's image options reach the project's data settings; fitting the CNN
    template with "augmentation" ticked adds Rescaling and the augmentation layers."""
    import numpy as np
    from PIL import Image

    folder = tmp_path / "shapes"
    for k, name in enumerate(("circles", "squares")):
        (folder / name).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(np.full((10, 10, 3), 50 + 100 * k, np.uint8)).save(
                folder / name / f"{i}.png")
    assert window.new_from_template("cnn_classifier")
    page = open_data_tab(window)
    window.dialogs.folder_path = str(folder)
    choose_kind(page, "images")
    page.source.height_spin.setValue(12)
    page.source.width_spin.setValue(12)
    qtbot.mouseClick(page.source.skip_bad_check, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(page.source.cache_check, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(page.source.images_choose, Qt.MouseButton.LeftButton)
    assert page.wait(60)
    assert page.error is None, page.error
    data = window.project.data
    assert data.skip_bad_images is True and data.cache_images is True
    assert page.samples_view.currentWidget() is page.grid  # read only what it shows
    qtbot.mouseClick(page.source.augment_check, Qt.MouseButton.LeftButton)
    assert "Augmentation added" in page.checks.fit_button.toolTip()
    qtbot.mouseClick(page.checks.fit_button, Qt.MouseButton.LeftButton)
    graph = window.doc.graph
    chain, node = [], graph.input_nodes()[0].id
    for _ in range(4):
        node = graph.successors(node)[0]
        chain.append(graph.node(node).class_name)
    assert chain == ["Rescaling", "RandomFlip", "RandomRotation", "RandomZoom"]
    assert graph.input_nodes()[0].param("shape") == [12, 12, 3]


def test_a_model_of_two_inputs_gets_its_arrays_chosen_fitted_and_trained(qtbot, window,
                                                                         tmp_path):
    """The multi-input template on a file whose image array is not named after the Input:
    the user picks it for the Input, fits the model and trains, all in the app."""
    import numpy as np

    from tests.ui.train.test_train_page import RUN_TIMEOUT_MS, click, train_page

    rng = np.random.default_rng(0)
    tabular = rng.normal(size=(48, 4)).astype("float32")
    np.savez(tmp_path / "visits.npz", tabular=tabular, pixels=rng.random((48, 6, 6, 3)),
             y=(tabular[:, 0] > 0).astype("int64"))
    assert window.new_from_template("multi_input")
    page = open_data_tab(window)
    window.dialogs.open_path = str(tmp_path / "visits.npz")
    choose_kind(page, "npz")
    qtbot.mouseClick(page.source.npz_choose, Qt.MouseButton.LeftButton)
    assert page.wait(120)
    mapping = page.source.array_mapping
    assert set(mapping.combos) == {("input", "tabular"), ("input", "image"),
                                   ("output", "output")}
    # Without a choice the Input 'image' has no array of its name: the checks say so.
    assert any(f.code == "input_without_data" for f in page.findings), page.findings
    combo = mapping.combos[("input", "image")]
    assert [combo.itemText(i) for i in range(combo.count())] == [
        "automatic", "tabular", "pixels", "y"]
    with qtbot.waitSignal(page.data_changed, timeout=60_000):
        combo.setCurrentIndex(combo.findData("pixels"))
        assert page.wait(120)
    assert window.project.data.input_arrays == (("image", "pixels"),)
    assert page.error is None and set(page.dataset.x_train) == {"tabular", "image"}
    assert page.checks.fit_button.isEnabled(), page.checks.fit_button.toolTip()
    assert page.fit_model()
    assert window.doc.graph.find("image").param("shape") == [6, 6, 3]
    assert page.wait(60)
    assert not [f for f in page.findings if f.severity == "error"], page.findings

    train = train_page(window, "jax", epochs=1, batch_size=16)
    with qtbot.waitSignal(train.run_recorded, timeout=RUN_TIMEOUT_MS) as recorded:
        click(train.train_button)
    record = recorded.args[0]
    assert record.status == "completed", record.message
    assert record.data["input_arrays"] == {"image": "pixels"}


def test_streaming_a_table_is_a_reading_option_saved_with_the_project(
        qtbot, mlp_window, make_window, tmp_path, monkeypatch):
    """"Stream" is automatic for a new table (decided by the file's size against the
    computer's memory, said in a note), or the user's "Stream from disk" / "Read whole";
    the choice is saved with the project and a reopened project shows it."""
    from kbuilder.graph import stream_choice

    path = tmp_path / "people.csv"
    path.write_text(CSV_GOOD)
    page = open_data_tab(mlp_window)
    mlp_window.dialogs.open_path = str(path)
    choose_kind(page, "csv")
    qtbot.mouseClick(page.source.table.csv_choose, Qt.MouseButton.LeftButton)
    assert page.wait(60)
    assert page.error is None, page.error
    combo, note = page.source.table.stream_combo, page.source.table.stream_note
    assert combo.currentData() == "auto" and mlp_window.project.data.stream_table == "auto"
    assert "second pass" in combo.toolTip() and "first block" in combo.toolTip()
    assert note.isVisibleTo(page.source)
    assert note.text().startswith("people.csv is read whole into memory: the file is")
    assert "stratified" in page.source.split_note.text()

    # A computer with hardly any memory: the same file streams, and the note says why.
    monkeypatch.setattr(stream_choice, "computer_memory", lambda: path.stat().st_size)
    combo.setCurrentIndex(combo.findData(False))
    combo.setCurrentIndex(combo.findData("auto"))
    assert note.text().startswith("people.csv streams from disk: the file is")
    assert "more than a quarter of this computer's" in note.text()
    page.source.grab().save(str(SCREENSHOTS / "data_stream_auto.png"))

    combo.setCurrentIndex(combo.findData(True))
    page.apply_controls()
    assert page.wait(60)
    assert page.error is None, page.error
    assert mlp_window.project.data.stream_table is True
    assert mlp_window.project.data.table().stream is True
    assert "not stratified" in page.source.split_note.text()  # split by each row's line
    combo.setCurrentIndex(combo.findData(False))
    page.apply_controls()
    assert page.wait(60)
    assert mlp_window.project.data.stream_table is False
    assert note.text() == "people.csv is read whole into memory, as chosen."
    combo.setCurrentIndex(combo.findData(True))
    page.apply_controls()
    assert page.wait(60)
    saved = mlp_window.project.data
    assert saved.stream_table is True
    project = tmp_path / "model.kbproj"
    assert mlp_window.save_as(project)

    other = make_window()
    assert other.open_project(project)
    page = open_data_tab(other)
    assert other.project.data == saved
    assert page.source.table.stream_combo.currentData() is True
    assert not other.doc.modified  # loading what was saved changes nothing

"""The Data tab on a table with a column of image paths: the tabular + image template is
given its columns, fitted and trained in the app, as a user does."""

from __future__ import annotations

from PySide6.QtCore import Qt

from tests.runtime.image_rows import write_image_rows
from tests.ui.data.test_data_page import choose_kind, open_data_tab
from tests.ui.train.test_train_page import RUN_TIMEOUT_MS, click, train_page


def test_a_table_with_image_paths_fits_and_trains_the_multi_input_template(qtbot, window,
                                                                         tmp_path):
    path = write_image_rows(tmp_path / "study", n=40)
    assert window.new_from_template("multi_input")
    page = open_data_tab(window)
    window.dialogs.open_path = str(path)
    choose_kind(page, "csv")
    qtbot.mouseClick(page.source.table.csv_choose, Qt.MouseButton.LeftButton)
    assert page.wait(120) and page.error is None, page.error
    source = page.source
    assert source.table.target_combo.currentData() == "label"
    combo = source.table.role_combo("scan")
    assert combo.currentText() == "auto: image file"
    assert combo.findData("image_path") >= 0  # choosable by hand too
    assert source.table.column_mapping.isVisibleTo(source)
    image_combo = source.table.column_mapping.combos[("input", "image")]
    assert [image_combo.itemText(i) for i in range(image_combo.count())] == [
        "automatic", "features", "scan"]
    assert set(page.dataset.x_train) == {"features", "scan"}
    # Automatic pairing by shape: no Input without data, only shapes to fit.
    codes = {f.code for f in page.findings if f.severity == "error"}
    assert "input_without_data" not in codes and "input_shape" in codes, page.findings
    assert page.fit_model()
    assert page.wait(60)
    assert not [f for f in page.findings if f.severity == "error"], page.findings
    graph = window.doc.graph  # the table's preprocessing in the model, beside the images
    assert window.project.data.table_encoding == "model"
    assert graph.find("numeric").param("shape") == [2]
    after = {n.name: graph.node(graph.successors(n.id)[0]).class_name
             for n in graph.input_nodes()}
    assert after == {"numeric": "FillMissing", "site": "CategoryEncoding",
                     "image": "Rescaling"}
    # Choosing the Inputs by hand is stored with the project (the mapping shows the
    # fitted model's Inputs now).
    image_combo = source.table.column_mapping.combos[("input", "image")]
    assert image_combo.findData("scan") >= 0
    with qtbot.waitSignal(page.data_changed, timeout=60_000):
        image_combo.setCurrentIndex(image_combo.findData("scan"))
        assert page.wait(120)
    assert window.project.data.input_arrays == (("image", "scan"),)
    assert page.error is None, page.error
    # The other Input still takes the other columns, paired by shape.
    assert not [f for f in page.findings if f.severity == "error"], page.findings

    train = train_page(window, "jax", epochs=1, batch_size=8)
    with qtbot.waitSignal(train.run_recorded, timeout=RUN_TIMEOUT_MS) as recorded:
        click(train.train_button)
    record = recorded.args[0]
    assert record.status == "completed", record.message
    assert record.test_metrics["accuracy"] is not None

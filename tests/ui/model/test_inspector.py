"""The inspector, driven by typing: validation as you type, commands, undo, nested layers."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from kbuilder.ui.testing import click_node, field, type_into


def select(window, name: str, graph=None) -> str:
    graph = graph or window.doc.graph
    nid = graph.find(name).id
    click_node(window.editor, nid)
    assert window.inspector.node_id == nid
    return nid


def test_typing_a_value_is_one_command_and_the_canvas_follows(mlp_window):
    w = mlp_window
    dense = select(w, "dense")
    n = len(w.doc.history._done)
    type_into(field(w, "units"), "100")
    assert w.doc.graph.node(dense).param("units") == 100
    assert len(w.doc.history._done) == n + 1
    assert w.doc.history.undo_text == "set units of dense"
    assert w.editor.scene.nodes[dense].shape_text == "(None, 100)"
    assert w.isWindowModified()
    assert "(None, 100)" in w.inspector._result_label.text()


def test_an_invalid_value_shows_the_error_and_changes_nothing(mlp_window):
    w = mlp_window
    dropout = select(w, "dropout")
    rate = field(w, "rate")
    row = w.inspector.rows["rate"]
    n = len(w.doc.history._done)
    rate.setFocus()
    QTest.keyClick(rate, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClicks(rate, "1.5")
    # Validated as typed, before Enter.
    assert row.error.isVisible()
    assert "`rate`" in row.error.text() and "1.5" in row.error.text()
    QTest.keyClick(rate, Qt.Key.Key_Return)
    assert w.doc.graph.node(dropout).param("rate") == 0.2
    assert len(w.doc.history._done) == n
    type_into(rate, "abc")
    assert "not a number" in row.error.text()
    type_into(rate, "0.35")
    assert not row.error.isVisible()
    assert w.doc.graph.node(dropout).param("rate") == 0.35


def test_undo_and_redo_update_the_form_in_place(mlp_window):
    w = mlp_window
    select(w, "dense")
    units = field(w, "units")
    type_into(units, "7")
    w.undo_action.trigger()
    assert field(w, "units") is units  # the same form, updated, not rebuilt
    assert units.value() == 128
    w.redo_action.trigger()
    assert units.value() == 7


def test_renaming_checks_uniqueness(mlp_window):
    w = mlp_window
    dense = select(w, "dense")
    name = w.inspector.name_edit
    type_into(name, "dropout")
    assert "already named 'dropout'" in w.inspector.name_error.text()
    assert w.doc.graph.node(dense).name == "dense"
    type_into(name, "hidden")
    assert w.doc.graph.node(dense).name == "hidden"
    assert w.editor.scene.nodes[dense].name == "hidden"
    assert not w.inspector.name_error.isVisible()


def test_choices_checkboxes_and_reset_to_default(mlp_window):
    w = mlp_window
    dense = select(w, "dense")
    activation = w.inspector.rows["activation"]
    activation.editor.combo.setCurrentText("tanh")
    activation.editor.combo.lineEdit().editingFinished.emit()
    assert w.doc.graph.node(dense).param("activation") == "tanh"
    use_bias = field(w, "use_bias")
    use_bias.click()
    assert w.doc.graph.node(dense).param("use_bias") is False
    assert w.editor.scene.nodes[dense].params_text == "8,192 params"
    row = w.inspector.rows["use_bias"]
    assert row.reset_button.isVisible()
    row.reset_button.click()
    assert "use_bias" not in w.doc.graph.node(dense).params  # back to Keras's default


def test_tuple_editor_for_kernel_size(window):
    w = window
    assert w.new_from_template("cnn_classifier")
    conv = select(w, "conv2d")
    spins = w.inspector.rows["kernel_size"].editor.spins
    assert [s.value() for s in spins] == [3, 3]
    type_into(spins[1].lineEdit(), "5")
    assert w.doc.graph.node(conv).param("kernel_size") == [3, 5]
    assert w.editor.scene.nodes[conv].params_text == f"{(3 * 5 * 1 + 1) * 32:,} params"


def test_input_shape_is_typed_as_a_list(mlp_window):
    w = mlp_window
    features = select(w, "features")
    type_into(field(w, "shape"), "28, 28")
    assert w.doc.graph.node(features).param("shape") == [28, 28]
    dense = w.doc.graph.find("dense").id
    assert w.editor.scene.nodes[dense].shape_text == "(None, 28, 128)"
    type_into(field(w, "shape"), "0, 3")
    assert "positive" in w.inspector.rows["shape"].error.text()
    assert w.doc.graph.node(features).param("shape") == [28, 28]


def test_nested_layer_editor_for_a_wrapper(window):
    w = window
    assert w.new_from_template("text_classifier")
    bidi = select(w, "bidirectional")
    editor = w.inspector.rows["layer"].editor
    assert editor.combo.currentText() == "LSTM"
    type_into(editor._rows["units"].editor.focus_widget(), "16")
    assert w.doc.graph.node(bidi).param("layer") == {"class_name": "LSTM",
                                                     "config": {"units": 16}}
    assert w.editor.scene.nodes[bidi].shape_text == "(None, 32)"
    editor.combo.setCurrentIndex(editor.combo.findData("GRU"))
    value = w.doc.graph.node(bidi).param("layer")
    assert value["class_name"] == "GRU"
    assert "units" in editor._rows and "reset_after" in editor._rows
    w.undo_action.trigger()
    assert w.doc.graph.node(bidi).param("layer")["class_name"] == "LSTM"
    assert editor.combo.currentText() == "LSTM"


def test_a_shared_layer_edits_its_owner(mlp_window):
    w = mlp_window
    dense = w.doc.graph.find("dense_1").id
    w.editor.share_layer(dense)
    (shared,) = w.editor.selected_node_ids()
    assert w.inspector.node_id == shared
    type_into(field(w, "units"), "9")
    assert w.doc.graph.node(dense).param("units") == 9

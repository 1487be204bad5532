"""Freezing from the inspector and the canvas: one undoable edit, drawn frozen, counted in
the summary as Keras counts it."""

from __future__ import annotations

import os

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMenu

from kbuilder.graph.project import Project
from kbuilder.ui.testing import click_node
from tests.graph.finetune_models import tiny_backbone_graph


def test_freezing_a_block_from_the_inspector_and_the_canvas(window, qtbot):
    graph, _ = tiny_backbone_graph()
    window.set_project(Project.new(graph))
    graph = window.doc.graph
    block = graph.find("backbone").id
    click_node(window.editor, block)
    box = window.inspector.trainable_box
    assert box is not None and box.isChecked()
    assert not window.inspector.inference_box.isChecked()
    done = len(window.doc.history._done)
    box.click()  # frozen: one edit
    assert len(window.doc.history._done) == done + 1
    item = window.editor.scene.nodes[block]
    assert item.frozen == "frozen" and item.params_text.endswith("❄")
    assert window.inspector.inference_box.isChecked()  # frozen blocks: training=False
    inference = window.doc.inference
    assert inference.total_trainable_params() == 15  # the head only
    window.summary.refresh()  # (it refreshes on a timer while shown)
    assert "<b>Trainable:</b> 15 &nbsp; <b>Non-trainable:</b> 292" in \
        window.summary.totals.text()
    if os.environ.get("KBUILDER_SCREENSHOTS"):  # docs/screenshots/frozen.png
        window.editor.fit()
        window.summary.refresh()
        window.grab().save(os.path.join(os.environ["KBUILDER_SCREENSHOTS"], "frozen.png"))
    # The canvas menu offers to unfreeze, and from a layer of the block.
    window.editor._context_menu(block, window.editor.mapToGlobal(window.editor.rect().center()))
    menu = next(m for m in window.editor.findChildren(QMenu) if m.isVisible())
    texts = [a.text() for a in menu.actions()]
    menu.close()
    assert "Unfreeze (trainable)" in texts and "Unfreeze from layer…" in texts
    assert "Unfreeze the top layers…" in texts
    assert "Freeze (not trainable)" not in texts
    window.editor.unfreeze_from(block, "conv_top")
    assert item.frozen == "partly"
    assert inference.total_trainable_params() == 148 + 15
    window.undo_action.trigger()
    window.editor.unfreeze_top(block, 2)  # conv_top and bn_top (BatchNorm stays frozen)
    assert inference.total_trainable_params() == 148 + 15
    window.undo_action.trigger()
    window.undo_action.trigger()
    assert item.frozen == "" and window.inspector.trainable_box.isChecked()
    # A layer: frozen from the inspector too.
    head = graph.find("head").id
    click_node(window.editor, head)
    window.inspector.trainable_box.click()
    assert graph.node(head).param("trainable") is False
    assert window.editor.scene.nodes[head].frozen == "frozen"


def test_the_summary_says_per_row_whether_the_weights_train(window, qtbot):
    # As Keras's summary(show_trainable=True): Y / N per layer, "-" without weights.
    from pathlib import Path

    graph, _ = tiny_backbone_graph()
    window.set_project(Project.new(graph))
    graph = window.doc.graph
    summary = window.summary

    def column() -> dict[str, str]:
        summary.refresh()
        model = summary.model
        header = model.headerData(5, Qt.Orientation.Horizontal)
        assert header == "Trainable"
        return {model.data(model.index(r, 0)): model.data(model.index(r, 5))
                for r in range(model.rowCount())}

    assert column() == {"image": "-", "backbone": "Y", "pool": "-", "head": "Y",
                        "output": "-"}
    click_node(window.editor, graph.find("head").id)
    window.inspector.trainable_box.click()
    window.editor.unfreeze_from(graph.find("backbone").id, "conv_top")
    rows = column()
    assert (rows["backbone"], rows["head"]) == ("partly", "N")
    model = summary.model
    tip = model.data(model.index(model.row_of(graph.find("head").id), 5),
                     Qt.ItemDataRole.ToolTipRole)
    assert "Frozen" in tip
    window.summary_dock.raise_()
    window.resize(1300, 800)
    qtbot.waitUntil(summary.isVisible)
    summary.refresh()
    shots = Path(__file__).resolve().parents[3] / "docs" / "screenshots"
    shots.mkdir(exist_ok=True)
    summary.grab().save(str(shots / "summary-trainable.png"))

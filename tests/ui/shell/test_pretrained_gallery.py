"""The start page's pretrained networks and the palette's "Pretrained network" category."""

from __future__ import annotations

from pathlib import Path

SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"


def test_a_pretrained_network_row_opens_its_template(window, qtbot):
    w = window
    table = w.gallery.pretrained
    rows = {table.topLevelItem(i).text(0): table.topLevelItem(i)
            for i in range(table.topLevelItemCount())}
    assert {"MobileNetV3Small", "EfficientNetV2B3", "ConvNeXtTiny", "NASNetMobile"} <= set(rows)
    row = rows["EfficientNetV2B0"]
    assert [row.text(c) for c in range(1, 5)] == ["7.2M", "27 MB", "78.7%", "224×224×3"]
    SCREENSHOTS.mkdir(exist_ok=True)
    w.gallery.ensureWidgetVisible(table)
    w.gallery.grab().save(str(SCREENSHOTS / "pretrained-gallery.png"))
    table.itemActivated.emit(row, 0)
    qtbot.waitUntil(lambda: w.current_page() is w.editor)
    names = {item.name for item in w.editor.scene.nodes.values()}
    assert "efficientnetv2-b0" in names and "predictions" in names
    palette = w.palette
    entry = palette.item("MobileNetV3Small")
    assert entry is not None and entry.parent().text(0) == "Pretrained network"
    w.grab().save(str(SCREENSHOTS / "pretrained-model.png"))


def test_the_train_tab_shows_a_weights_download(window):
    from kbuilder.runtime import protocol as p

    page = window.train_page
    page.controller.progress_received.emit(
        p.Progress("run1", "downloading weights_mobilenet_v3_small.h5", 3 * 2**20, 10 * 2**20))
    assert page.dashboard.status.text() == "Downloading weights_mobilenet_v3_small.h5…"
    assert page.state_label.text() == "3.0 of 10.0 MB"


def test_a_backbone_node_shows_its_keras_layers(window, qtbot):
    w = window
    assert w.new_from_template("pretrained_classifier")
    graph = w.doc.project.graph
    node = next(n for n in graph.nodes if n.class_name == "applications.MobileNetV3Small")
    # Double-clicking the network on the canvas does what "Show its layers" does.
    from PySide6.QtCore import Qt

    view, item = w.editor.view, w.editor.scene.nodes[node.id]
    view.centerOn(item)
    spot = view.mapFromScene(item.sceneBoundingRect().center())
    qtbot.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, pos=spot)
    qtbot.waitUntil(lambda: w.inspector.network_dialog is not None)
    dialog = w.inspector.network_dialog
    assert w.inspector.node_id == node.id and dialog.windowTitle() == f"Layers of {node.name}"
    assert dialog.job.wait(120)
    names = [dialog.tree.topLevelItem(i).text(0) for i in range(dialog.tree.topLevelItemCount())]
    assert len(names) > 100 and "expanded_conv_project" in names
    assert "layers, as keras.applications builds them" in dialog.status.text()
    dialog.grab().save(str(SCREENSHOTS / "pretrained-layers.png"))
    dialog.close()

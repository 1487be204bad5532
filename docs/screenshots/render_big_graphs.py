"""Render the big-graph screenshots: an imported MobileNetV2 with the overview and find,
grouped into blocks, laid out left to right, and far out (nodes drawn as plain blocks).

Run: .venv/bin/python docs/screenshots/render_big_graphs.py
Writes overview-find.png, group-into-blocks.png, layout-left-to-right.png and
far-out-blocks.png beside this file. MobileNetV2 (alpha 0.35, 32x32, weights=None) is
saved as .keras and opened through kbuilder's importer, as File › Import does.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from render import HERE, new_window, settle  # the README's renderer, beside this file

from kbuilder.ui.app import create_application


def main() -> None:
    import keras

    app = create_application()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = folder / "mobilenet_v2.keras"
        keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, weights=None,
                                       classes=10).save(path)
        window = new_window(folder)
        assert window.import_model(str(path))
        settle(app, window)
        editor = window.editor

        window.find_action.trigger()
        editor.find_bar.field.setText("block_5_depthwise")
        settle(app, window)
        window.grab().save(str(HERE / "overview-find.png"))
        editor.find_bar.close_bar()

        window.group_blocks_action.trigger()
        graph = window.doc.graph
        editor.scene.select_nodes([graph.find("block_3").id])
        editor.view.set_zoom(0.6)
        editor.view.centerOn(editor.scene.nodes[graph.find("block_3").id])
        settle(app, window)
        window.grab().save(str(HERE / "group-into-blocks.png"))
        window.undo_action.trigger()
        settle(app, window)

        window.flow_right_action.trigger()
        editor.view.set_zoom(0.6)
        editor.view.centerOn(editor.scene.nodes[graph.find("block_2_add").id])
        settle(app, window)
        window.grab().save(str(HERE / "layout-left-to-right.png"))
        window.undo_action.trigger()
        settle(app, window)  # the scene's bounds follow the undone arrangement

        editor.view.set_zoom(0.1)
        editor.view.centerOn(editor.scene.nodes[graph.find("block_8_add").id])
        settle(app, window)
        window.grab().save(str(HERE / "far-out-blocks.png"))
        window.dialogs.unsaved = "discard"
        window.close()
    for name in ("overview-find", "group-into-blocks", "layout-left-to-right",
                 "far-out-blocks"):
        print("written", HERE / f"{name}.png")


if __name__ == "__main__":
    main()

"""Operation nodes (``x + 3.0`` between layers of an imported model) in the editor."""

from __future__ import annotations

import os
from pathlib import Path

from kbuilder.graph.project import save_project
from kbuilder.ui.testing import click_node, field, type_into

SHOTS = os.environ.get("KBUILDER_SHOTS")  # a folder: save screenshots there to look at


def imported_project(tmp_path: Path) -> Path:
    """MobileNetV3's hard sigmoid, ``ReLU6(x + 3.0) * (1 / 6)``, imported from Keras."""
    import keras

    from kbuilder.graph.keras_io import import_model

    x = keras.Input((4,), name="features")
    d = keras.layers.Dense(4, name="dense")(x)
    y = keras.layers.ReLU(6.0, name="relu6")(d + 3.0) * (1.0 / 6.0)
    graph, weights = import_model(keras.Model(x, y, name="hard_sigmoid"))
    from kbuilder.graph.project import Project

    path = tmp_path / "hard_sigmoid.kbproj"
    save_project(Project(graph, weights=weights), path)
    return path


def test_an_operation_node_shows_and_its_constant_is_editable(window, tmp_path):
    assert window.open_project(imported_project(tmp_path))
    graph = window.doc.graph
    add = next(n for n in graph.nodes if n.class_name == "ops.add")
    click_node(window.editor, add.id)
    assert window.inspector.node_id == add.id
    item = window.editor.scene.nodes[add.id]
    assert item.shape_text == "(None, 4)"
    if SHOTS:
        window.grab().save(str(Path(SHOTS) / "operation_node.png"))
    constant = field(window, "constant")
    type_into(constant, "2.5")
    assert graph.node(add.id).param("constant") == 2.5
    assert window.doc.history.undo_text == f"set constant of {add.name}"
    type_into(constant, '"import os"')
    assert graph.node(add.id).param("constant") == 2.5  # refused: not a number
    assert "list of numbers" in window.inspector.rows["constant"].error.text()

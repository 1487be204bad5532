"""Big graphs, driven as a user would: the overview, find (Ctrl+F), group repeated blocks,
the layout's direction and a readable fit."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtTest import QTest

from kbuilder.graph.commands import ConnectCommand, new_input_node, new_layer_node, new_output_node
from kbuilder.graph.layout import apply_layout
from kbuilder.graph.model import Graph
from kbuilder.ui.model.canvas.editor import FIT_ZOOM, READABLE_ZOOM
from kbuilder.ui.testing import click, drag

UNITS = 12


def units_graph(units: int = UNITS) -> Graph:
    """Input → ``units`` × (block_N_dense → block_N_bn → block_N_relu) → Output, named as
    keras.applications names its repeated units."""
    graph = Graph("units")
    prev = new_input_node(graph, [8], name="input")
    graph._insert_node(prev)
    prev_id = prev.id
    for n in range(1, units + 1):
        for suffix, cls, params in (("dense", "Dense", {"units": 8}),
                                    ("bn", "BatchNormalization", {}), ("relu", "ReLU", {})):
            node = new_layer_node(graph, cls, params, name=f"block_{n}_{suffix}")
            graph._insert_node(node)
            ConnectCommand(graph, prev_id, 0, node.id).do()
            prev_id = node.id
    out = new_output_node(graph)
    graph._insert_node(out)
    ConnectCommand(graph, prev_id, 0, out.id).do()
    apply_layout(graph)
    return graph


@pytest.fixture
def units_window(window):
    from kbuilder.graph.project import Project

    window.set_project(Project.new(units_graph()))
    return window


def view_center(editor) -> QPointF:
    view = editor.view
    return view.mapToScene(view.viewport().rect().center())


def test_a_tall_model_opens_and_fits_readable_at_its_input(units_window):
    w = units_window
    editor, view = w.editor, w.editor.view
    w.zoom_out_action.trigger()
    w.fit_action.trigger()
    assert view.zoom >= FIT_ZOOM  # never a blank column at 5 %
    visible = view.mapToScene(view.viewport().rect()).boundingRect()
    assert visible.contains(editor.scene.nodes[w.doc.graph.find("input").id].sceneBoundingRect())
    assert editor.minimap.isVisible()


def test_dragging_in_the_overview_moves_the_view_there(units_window):
    w = units_window
    editor = w.editor
    minimap = editor.minimap
    output = editor.scene.nodes[w.doc.graph.find("output").id]
    target = minimap.to_map(output.scenePos()).toPoint()
    start = minimap.to_map(view_center(editor)).toPoint()
    drag(minimap, start, target)
    center = view_center(editor)
    assert abs(center.y() - output.scenePos().y()) < 30
    # The frame of the visible region follows: it now holds the output.
    assert minimap.visible_region().contains(output.scenePos())
    click(minimap, minimap.to_map(editor.scene.nodes[w.doc.graph.find("input").id]
                                  .scenePos()).toPoint())
    assert minimap.visible_region().contains(
        editor.scene.nodes[w.doc.graph.find("input").id].scenePos())
    w.overview_action.trigger()
    assert not minimap.isVisible()


def test_find_jumps_to_each_layer_matching_a_name_or_a_type(units_window):
    w = units_window
    editor = w.editor
    editor.view.setFocus()
    QTest.keyClick(editor.view, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    bar = editor.find_bar
    assert bar.isVisible() and bar.field.hasFocus()
    QTest.keyClicks(bar.field, "block_7_bn")
    graph = w.doc.graph
    assert editor.selected_node_ids() == [graph.find("block_7_bn").id]
    assert bar.count.text() == "1 of 1"
    assert editor.view.zoom >= READABLE_ZOOM
    node = editor.scene.nodes[graph.find("block_7_bn").id]
    assert editor.view.mapToScene(editor.view.viewport().rect()).boundingRect().contains(
        node.sceneBoundingRect())

    bar.field.selectAll()
    QTest.keyClicks(bar.field, "relu")  # a type: every ReLU, in data-flow order
    assert bar.count.text() == f"1 of {UNITS}"
    assert editor.selected_node_ids() == [graph.find("block_1_relu").id]
    QTest.keyClick(bar.field, Qt.Key.Key_Return)
    assert editor.selected_node_ids() == [graph.find("block_2_relu").id]
    assert bar.count.text() == f"2 of {UNITS}"
    QTest.keyClick(bar.field, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    QTest.keyClick(bar.field, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    assert editor.selected_node_ids() == [graph.find(f"block_{UNITS}_relu").id]  # wraps
    bar.field.selectAll()
    QTest.keyClicks(bar.field, "nothing like this")
    assert bar.count.text() == "no match"
    QTest.keyClick(bar.field, Qt.Key.Key_Escape)
    assert not bar.isVisible()


def test_group_repeated_blocks_then_find_inside_one_and_expand_them(units_window):
    w = units_window
    editor = w.editor
    graph = w.doc.graph
    before = {n.id: n.to_dict() for n in graph.nodes}
    w.group_blocks_action.trigger()
    blocks = [n for n in graph.nodes if n.kind == "block"]
    assert [b.name for b in blocks] == [f"block_{n}" for n in range(1, UNITS + 1)]
    assert len(editor.scene.nodes) == UNITS + 2
    assert "Grouped 12 repeated units" in w.statusBar().currentMessage()
    assert w.expand_blocks_action.isEnabled()

    # Find reaches inside the blocks: the match's block opens.
    w.find_action.trigger()
    QTest.keyClicks(editor.find_bar.field, "block_5_relu")
    assert editor.block_path == [graph.find("block_5").id]
    assert editor.selected_node_ids() == [graph.find("block_5").subgraph.find("block_5_relu").id]
    QTest.keyClick(editor.find_bar.field, Qt.Key.Key_Escape)
    editor.leave_block()

    w.expand_blocks_action.trigger()
    assert {n.id: n.to_dict() for n in graph.nodes} == before
    assert len(editor.scene.nodes) == len(before)
    w.undo_action.trigger()
    assert len(editor.scene.nodes) == UNITS + 2
    w.undo_action.trigger()
    assert {n.id: n.to_dict() for n in graph.nodes} == before
    w.redo_action.trigger()
    assert sum(n.kind == "block" for n in graph.nodes) == UNITS


def test_the_layout_flows_left_to_right_as_one_undoable_edit(units_window):
    w = units_window
    editor = w.editor
    graph = w.doc.graph
    first, second = graph.find("block_1_dense").id, graph.find("block_1_bn").id
    positions = graph.positions()
    w.flow_right_action.trigger()
    assert w.doc.project.view["flow"] == "right"
    a, b = graph.node(first).position, graph.node(second).position
    assert b[0] > a[0] and b[1] == a[1]  # the next layer is to the right
    item = editor.scene.nodes[second]
    port = item.inputs["inputs"].scenePos()
    assert port.x() < item.scenePos().x() and port.y() == pytest.approx(item.scenePos().y())
    w.undo_action.trigger()
    assert w.doc.project.view["flow"] == "down"
    assert graph.positions() == positions
    assert item.inputs["inputs"].scenePos().y() < item.scenePos().y()  # back on top


def test_far_out_nodes_are_plain_blocks(units_window):
    from PySide6.QtGui import QImage, QPainter

    from kbuilder.ui.shell import theme

    editor = units_window.editor
    view = editor.view
    item = editor.scene.nodes[units_window.doc.graph.find("block_6_bn").id]

    def pixel_at_node(zoom: float):
        view.set_zoom(zoom)
        view.centerOn(item)
        image = QImage(view.viewport().size(), QImage.Format.Format_ARGB32)
        image.fill(0)
        painter = QPainter(image)
        view.render(painter)
        painter.end()
        return image.pixelColor(view.mapFromScene(item.scenePos() + QPointF(20, 0)))

    c = theme.colors()
    assert pixel_at_node(1.0) == c.node  # the card (its text is left of the centre)
    assert pixel_at_node(0.08) == c.node_border  # a plain block


def test_the_layout_direction_is_saved_with_the_project(units_window, tmp_path):
    from kbuilder.graph.project import load_project, save_project

    w = units_window
    w.flow_right_action.trigger()
    save_project(w.project, tmp_path / "units.kbproj")
    reopened = load_project(tmp_path / "units.kbproj")
    assert reopened.view["flow"] == "right"
    w.set_project(reopened)
    assert w.editor.flow == "right"
    item = w.editor.scene.nodes[reopened.graph.find("block_1_bn").id]
    assert item.inputs["inputs"].scenePos().x() < item.scenePos().x()  # ports on the sides


def test_a_big_graph_far_out_is_one_picture_and_its_items_come_back(units_window,
                                                                     monkeypatch):
    from PySide6.QtGui import QImage, QPainter

    from kbuilder.ui.model.canvas import scene as scene_module
    from kbuilder.ui.shell import theme

    monkeypatch.setattr(scene_module, "FAR_MIN_NODES", 10)  # the units graph counts as big
    editor = units_window.editor
    view, scene = editor.view, editor.scene
    item = scene.nodes[units_window.doc.graph.find("block_6_bn").id]
    view.set_zoom(0.08)
    view.centerOn(item)
    assert scene.far
    image = QImage(view.viewport().size(), QImage.Format.Format_ARGB32)
    image.fill(0)
    painter = QPainter(image)
    view.render(painter)
    painter.end()
    # The picture draws the node's block where the item would be.
    assert image.pixelColor(view.mapFromScene(item.scenePos() + QPointF(40, 0))) \
        == theme.colors().node_border
    units_window.find_action.trigger()
    QTest.keyClicks(editor.find_bar.field, "block_6_bn")  # find zooms in: items again
    assert not scene.far and item.isVisible() and item.isSelected()


def test_far_out_a_click_selects_the_node_under_the_picture_and_a_double_click_zooms_to_it(
        units_window, monkeypatch):
    from PySide6.QtCore import QEvent

    from kbuilder.ui.model.canvas import scene as scene_module
    from kbuilder.ui.model.canvas.view import NODE_ZOOM
    from kbuilder.ui.testing import send_mouse

    monkeypatch.setattr(scene_module, "FAR_MIN_NODES", 10)
    editor = units_window.editor
    view, scene, graph = editor.view, editor.scene, units_window.doc.graph
    target, other = graph.find("block_6_bn").id, graph.find("block_2_bn").id
    view.set_zoom(0.08)
    view.centerOn(scene.nodes[target])
    assert scene.far
    at = view.mapFromScene(scene.nodes[target].scenePos() + QPointF(40, 0))
    before = graph.node(target).position
    drag(view.viewport(), at, at + QPoint(30, 30))  # far out a press picks, never drags
    assert scene.selected_node_ids() == [target]
    assert graph.node(target).position == before
    click(view.viewport(), view.mapFromScene(scene.nodes[other].scenePos()),
          Qt.KeyboardModifier.ControlModifier)
    assert set(scene.selected_node_ids()) == {target, other}  # Ctrl adds
    click(view.viewport(), at)
    assert scene.selected_node_ids() == [target]
    send_mouse(view.viewport(), QEvent.Type.MouseButtonDblClick, at)
    assert not scene.far and view.zoom == pytest.approx(NODE_ZOOM)
    offset = view_center(editor) - scene.nodes[target].scenePos()
    assert abs(offset.x()) < 3 and abs(offset.y()) < 3  # centred on it, to a pixel
    assert scene.selected_node_ids() == [target]

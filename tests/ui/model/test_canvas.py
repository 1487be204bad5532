"""The canvas, driven with the mouse: drops, connections, selection, moves, blocks."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from kbuilder.graph.commands import (
    AddNodeCommand,
    ConnectCommand,
    MoveNodesCommand,
    SetParamCommand,
    new_input_node,
    new_layer_node,
    new_output_node,
)
from kbuilder.graph.model import Graph
from kbuilder.graph.project import Project
from kbuilder.ui.model.canvas.port_item import Highlight
from kbuilder.ui.model.canvas.view import NODE_MIME
from kbuilder.ui.testing import (
    LEFT,
    click,
    click_node,
    connect_by_drag,
    drag,
    drop_mime,
    ensure_visible,
    node_point,
    port_point,
    send_mouse,
)


def drop_layer(window, class_name: str, offset: QPoint | None = None) -> str:
    """Drag ``class_name`` from the palette onto the canvas; the new node's id."""
    offset = offset if offset is not None else QPoint(180, 0)
    view = window.editor.view
    before = set(window.doc.graph.node_ids)
    mime = window.palette.mime_for(class_name)
    assert mime.hasFormat(NODE_MIME)
    assert drop_mime(view, mime, view.viewport().rect().center() + offset)
    (new,) = set(window.doc.graph.node_ids) - before
    return new


def node_id(window, name: str) -> str:
    return window.doc.graph.find(name).id


def item(window, name_or_id: str):
    graph = window.doc.graph
    nid = name_or_id if name_or_id in graph else graph.find(name_or_id).id
    return window.editor.scene.nodes[nid]


# ----------------------------------------------------------------------- dropping
def test_dropping_a_palette_entry_adds_the_layer_where_it_was_dropped(mlp_window):
    w = mlp_window
    view = w.editor.view
    point = view.viewport().rect().center() + QPoint(180, 20)
    expected = view.mapToScene(point)
    new = drop_layer(w, "Dropout", QPoint(180, 20))
    node = w.doc.graph.node(new)
    assert node.class_name == "Dropout"
    assert abs(node.position[0] - expected.x()) <= 1 and abs(node.position[1] - expected.y()) <= 1
    shown = item(w, new)
    assert shown.isSelected()
    assert shown.status == "warning"  # not connected yet: a to-do, not an error
    assert "no input" in shown.badge.toolTip()
    assert w.inspector.node_id == new
    w.undo_action.trigger()
    assert new not in w.doc.graph and new not in w.editor.scene.nodes


def test_dropping_something_else_is_refused(mlp_window):
    from PySide6.QtCore import QMimeData

    mime = QMimeData()
    mime.setText("Dense")
    n = len(mlp_window.doc.graph)
    view = mlp_window.editor.view
    assert not drop_mime(view, mime, view.viewport().rect().center())
    assert len(mlp_window.doc.graph) == n


def test_double_clicking_a_palette_entry_adds_it_below_the_selection(mlp_window):
    w = mlp_window
    click_node(w.editor, node_id(w, "predictions"))
    entry = w.palette.item("Softmax")
    w.palette.tree.itemActivated.emit(entry, 0)
    new = w.editor.selected_node_ids()[0]
    assert w.doc.graph.node(new).class_name == "Softmax"
    # Added below the selected layer and connected to it.
    assert [e.src for e in w.doc.graph.edges_into(new)] == [node_id(w, "predictions")]


def test_palette_search_filters_by_name_and_description(window):
    palette = window.palette
    palette.search.setText("conv2d")
    shown = palette.visible_titles()
    assert "Conv2D" in shown and "Dense" not in shown
    palette.search.setText("densely-connected")  # words of Dense's description
    assert palette.visible_titles() == ["Dense"]
    palette.search.clear()
    assert "Dense" in palette.visible_titles()
    assert "Just your regular densely-connected" in palette.item("Dense").toolTip(0)


# --------------------------------------------------------------------- connecting
def test_connecting_by_dragging_from_an_output_to_an_input(mlp_window):
    w = mlp_window
    new = drop_layer(w, "Dense")
    src = node_id(w, "dense_1")
    connect_by_drag(w.editor, src, 0, new, "inputs")
    (edge,) = w.doc.graph.edges_into(new)
    assert (edge.src, edge.src_port, edge.dst_port) == (src, 0, "inputs")
    assert item(w, new).shape_text == "(None, 32)"
    assert item(w, new).status == "ok"
    edge_item = w.editor.scene.edges[edge.id]
    assert "(None, 64)" in w.editor.scene.describe_edge(edge_item)
    assert "connect" in w.doc.history.undo_text
    w.undo_action.trigger()
    assert not w.doc.graph.edges_into(new)
    assert edge.id not in w.editor.scene.edges


def test_dragging_from_an_input_port_to_an_output_connects_too(mlp_window):
    w = mlp_window
    new = drop_layer(w, "Dense")
    src = node_id(w, "dropout")
    ensure_visible(w.editor, [src, new])
    drag(w.editor.view.viewport(), port_point(w.editor, new, False, "inputs"),
         port_point(w.editor, src, True, 0))
    assert [e.src for e in w.doc.graph.edges_into(new)] == [src]


def test_valid_targets_are_highlighted_while_dragging(mlp_window):
    w = mlp_window
    editor = w.editor
    dense, head = node_id(w, "dense"), node_id(w, "predictions")
    ensure_visible(editor, [dense, head])
    viewport = editor.view.viewport()
    start = port_point(editor, head, True, 0)
    send_mouse(viewport, QEvent.Type.MouseButtonPress, start)
    send_mouse(viewport, QEvent.Type.MouseMove, start + QPoint(40, 40),
               Qt.MouseButton.NoButton, LEFT)
    assert editor.view.connecting
    ports = editor.scene.nodes
    assert ports[node_id(w, "output")].inputs["inputs"].highlight is Highlight.VALID
    assert ports[dense].inputs["inputs"].highlight is Highlight.INVALID  # a cycle
    assert ports[head].inputs["inputs"].highlight is Highlight.INVALID  # itself
    # Hovering an invalid port says why, before releasing.
    send_mouse(viewport, QEvent.Type.MouseMove, port_point(editor, dense, False, "inputs"),
               Qt.MouseButton.NoButton, LEFT)
    assert "cycle" in w.statusBar().currentMessage()
    send_mouse(viewport, QEvent.Type.MouseButtonRelease, start + QPoint(300, 0))
    assert not editor.view.connecting
    assert all(p.highlight is Highlight.NONE for n in ports.values() for p in n.inputs.values())


def test_an_invalid_connection_is_refused_with_the_reason(mlp_window):
    w = mlp_window
    n_edges = len(w.doc.graph.edges)
    undo_text = w.doc.history.undo_text
    connect_by_drag(w.editor, node_id(w, "predictions"), 0, node_id(w, "dense"), "inputs")
    assert len(w.doc.graph.edges) == n_edges
    assert w.doc.history.undo_text == undo_text
    message = w.statusBar().currentMessage()
    assert "would make a cycle" in message and "predictions" in message


def test_a_wrong_connection_shows_an_error_badge_with_the_message(mlp_window):
    w = mlp_window
    conv = drop_layer(w, "Conv2D")
    connect_by_drag(w.editor, node_id(w, "features"), 0, conv, "inputs")
    shown = item(w, conv)
    assert shown.status == "error"
    assert shown.badge.isVisible()
    message = w.doc.inference.result(conv).error
    assert message and shown.badge.toolTip() == message
    assert "Conv2D needs images" in message and "Insert a Reshape" in message
    assert "⚠ 1 problem" in w._problems_label.text()
    w.editor.scene.clearSelection()
    w._problems_label.linkActivated.emit("problems")
    assert w.editor.selected_node_ids() == [conv]
    assert "Conv2D needs images" in w.statusBar().currentMessage()


# ---------------------------------------------------------------------- selecting
def test_rubber_band_selects_the_nodes_inside(mlp_window):
    w = mlp_window
    editor = w.editor
    editor.fit()
    viewport = editor.view.viewport()
    rect = viewport.rect()
    drag(viewport, rect.topLeft() + QPoint(2, 2), rect.bottomRight() - QPoint(2, 2))
    assert set(editor.selected_node_ids()) == set(w.doc.graph.node_ids)
    assert w.inspector.node_id is None  # several nodes: the inspector says so


def test_moving_selected_nodes_is_one_undoable_command(mlp_window):
    w = mlp_window
    editor = w.editor
    a, b = node_id(w, "dense"), node_id(w, "dropout")
    before = {nid: w.doc.graph.node(nid).position for nid in (a, b)}
    click_node(editor, a)
    click_node(editor, b, Qt.KeyboardModifier.ControlModifier)
    assert set(editor.selected_node_ids()) == {a, b}
    n_commands = len(w.doc.history._done)
    start = node_point(editor, b)
    drag(editor.view.viewport(), start, start + QPoint(120, 0), steps=8)
    assert len(w.doc.history._done) == n_commands + 1
    zoom = editor.view.zoom
    for nid in (a, b):
        x, y = w.doc.graph.node(nid).position
        assert abs(x - (before[nid][0] + 120 / zoom)) <= 2 and y == before[nid][1]
        assert editor.scene.nodes[nid].pos() == QPointF(x, y)
    w.undo_action.trigger()
    for nid in (a, b):
        assert w.doc.graph.node(nid).position == before[nid]
        assert editor.scene.nodes[nid].pos() == QPointF(*before[nid])


def test_delete_cut_copy_and_paste(mlp_window):
    w = mlp_window
    graph = w.doc.graph
    dropout = node_id(w, "dropout")
    click_node(w.editor, dropout)
    w.copy_action.trigger()
    w.delete_action.trigger()
    assert dropout not in graph and dropout not in w.editor.scene.nodes
    assert len(w.editor.scene.edges) == len(graph.edges) == 3
    w.undo_action.trigger()
    assert dropout in graph and len(w.editor.scene.edges) == 5
    w.paste_action.trigger()
    (pasted,) = w.editor.selected_node_ids()
    copy = graph.node(pasted)
    assert copy.name == "dropout_1" and copy.params == graph.node(dropout).params
    x, y = graph.node(dropout).position
    assert copy.position == (x + 40, y + 40)
    # Cutting a connection alone: select the edge, Delete.
    edge = graph.edges_into(node_id(w, "output"))[0]
    w.editor.scene.clearSelection()
    w.editor.scene.edges[edge.id].setSelected(True)
    w.delete_action.trigger()
    assert not graph.has_edge(edge.id)


def test_select_all_and_auto_arrange_as_one_command(mlp_window):
    w = mlp_window
    graph = w.doc.graph
    for nid in graph.node_ids:  # scatter the nodes
        w.doc.edit(lambda nid=nid: MoveNodesCommand(
            graph, {nid: (hash(nid) % 500, hash(nid) % 300)}))
    scattered = graph.positions()
    n_commands = len(w.doc.history._done)
    w.arrange_action.trigger()
    assert len(w.doc.history._done) == n_commands + 1
    ys = [graph.find(n).position[1] for n in
          ("features", "dense", "dropout", "dense_1", "predictions", "output")]
    assert ys == sorted(ys) and len(set(ys)) == 6  # top to bottom, one row each
    w.undo_action.trigger()
    assert graph.positions() == scattered
    w.select_all_action.trigger()
    assert len(w.editor.selected_node_ids()) == len(graph)


# -------------------------------------------------------------------- zoom, blocks
def test_wheel_zooms_and_fit_shows_everything(mlp_window):
    view = mlp_window.editor.view
    before = view.zoom
    center = view.viewport().rect().center()
    event = QWheelEvent(QPointF(center), QPointF(view.viewport().mapToGlobal(center)),
                        QPoint(), QPoint(0, 240), Qt.MouseButton.NoButton,
                        Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(view.viewport(), event)
    assert view.zoom > before
    mlp_window.zoom_out_action.trigger()
    mlp_window.fit_action.trigger()
    visible = view.mapToScene(view.viewport().rect()).boundingRect()
    assert visible.contains(mlp_window.editor.scene.nodes_rect())
    assert mlp_window._zoom_label.text().endswith("%")


def test_a_block_opens_on_double_click_and_edits_reach_the_model(window):
    w = window
    assert w.new_from_template("transformer_encoder")
    editor = w.editor
    block = node_id(w, "encoder_block")
    assert item(w, block).kind == "block"
    assert item(w, block).shape_text == "(None, 64, 32)"
    ensure_visible(editor, [block])
    point = node_point(editor, block)
    send_mouse(editor.view.viewport(), QEvent.Type.MouseButtonDblClick, point)
    assert editor.block_path == [block]
    inner = w.doc.graph.node(block).subgraph
    assert set(editor.scene.nodes) == set(inner.node_ids)
    ffn = inner.find("ffn_1").id
    assert editor.scene.nodes[ffn].shape_text == "(None, 64, 64)"
    # Edit inside the block: the inner node and the block's totals follow.
    params = w.doc.inference.result(block).params
    w.doc.edit(lambda: SetParamCommand(inner, ffn, "units", 16))
    assert editor.scene.nodes[ffn].shape_text == "(None, 64, 16)"
    assert w.doc.inference.result(block).params < params
    w.leave_block_action.trigger()
    assert editor.block_path == [] and block in editor.scene.nodes
    # Undo inside or outside the block goes through the one history.
    w.undo_action.trigger()
    assert w.doc.inference.result(block).params == params


def test_edge_tooltip_and_hover(mlp_window):
    w = mlp_window
    edge = w.doc.graph.edges_into(node_id(w, "dropout"))[0]
    text = w.editor.scene.describe_edge(w.editor.scene.edges[edge.id])
    assert text.startswith("dense → dropout") and "(None, 128) float32" in text


# ------------------------------------------------------------------ large graphs
def chain(n: int) -> Project:
    graph = Graph("chain")
    x = new_input_node(graph, [16], position=(0, 0))
    graph._insert_node(x)
    prev = x.id
    for i in range(n - 2):
        node = new_layer_node(graph, "Dense", {"units": 16}, position=(0, 110 * (i + 1)))
        graph._insert_node(node)
        ConnectCommand(graph, prev, 0, node.id).do()
        prev = node.id
    out = new_output_node(graph, position=(0, 110 * (n - 1)))
    AddNodeCommand(graph, out).do()
    ConnectCommand(graph, prev, 0, out.id).do()
    return Project.new(graph)


def test_one_edit_on_a_large_graph_updates_only_the_changed_nodes(window, monkeypatch):
    from kbuilder.ui.model.canvas.node_item import QtNodeItem

    project = chain(400)
    window.set_project(project)
    assert len(window.editor.scene.nodes) == 400
    calls: list[str] = []
    original = QtNodeItem.set_result

    def counting(self, *args):
        calls.append(self.node_id)
        return original(self, *args)

    monkeypatch.setattr(QtNodeItem, "set_result", counting)
    graph = project.graph
    layer = graph.node_ids[200]
    window.doc.edit(lambda: SetParamCommand(graph, layer, "units", 8))
    # The edited node and the next one (its input shape changed), nothing else.
    assert set(calls) == {layer, graph.node_ids[201]}
    assert len(window.editor.scene.nodes) == 400


def test_clicking_the_background_clears_the_selection(mlp_window):
    w = mlp_window
    click_node(w.editor, node_id(w, "dense"))
    assert w.editor.selected_node_ids()
    click(w.editor.view.viewport(), QPoint(5, 5))
    assert not w.editor.selected_node_ids()
    assert w.inspector.node_id is None


# ------------------------------------------------------------------ shown results
def test_an_empty_model_shows_shapes_and_params_once_layers_are_added(window):
    """An empty graph is falsy (it has a length): the canvas must still get its inference."""
    w = window
    assert w.new_from_template("")
    inp = drop_layer(w, "Input", QPoint(0, -150))
    w.doc.edit(lambda: SetParamCommand(w.doc.graph, inp, "shape", [8]))
    click_node(w.editor, inp)
    w.palette.tree.itemActivated.emit(w.palette.item("Dense"), 0)
    dense = w.editor.selected_node_ids()[0]
    w.palette.tree.itemActivated.emit(w.palette.item("Output"), 0)
    out = w.editor.selected_node_ids()[0]
    assert [e.src for e in w.doc.graph.edges_into(out)] == [dense]
    units = w.doc.graph.node(dense).param("units")
    assert item(w, inp).shape_text == "(None, 8)"
    assert item(w, dense).shape_text == f"(None, {units})"
    assert item(w, dense).params_text == f"{8 * units + units:,} params"
    assert item(w, out).shape_text == f"(None, {units})"
    assert all(item(w, n).status == "ok" for n in (inp, dense, out))
    # A problem shows its badge too: Conv2D on vectors.
    conv = drop_layer(w, "Conv2D", QPoint(220, 0))
    w.doc.edit(lambda: ConnectCommand(w.doc.graph, inp, 0, conv, "inputs"))
    assert item(w, conv).status == "error" and item(w, conv).badge.isVisible()


def test_the_output_node_follows_the_layer_feeding_it(mlp_window):
    from kbuilder.ui.testing import field, type_into

    w = mlp_window
    out = next(n.id for n in w.doc.graph.nodes if n.kind == "output")
    head = node_id(w, "predictions")
    click_node(w.editor, head)
    for units in (5, 10):
        type_into(field(w, "units"), str(units))
        assert item(w, head).shape_text == f"(None, {units})"
        assert item(w, out).shape_text == f"(None, {units})"
        assert f"Model output: (None, {units})" in item(w, out).toolTip()


def test_palette_search_lists_exact_and_prefix_matches_first(window):
    palette = window.palette
    palette.search.setText("dropout")
    shown = palette.ordered_titles()
    assert shown[0] == "Dropout" and shown.index("Dropout") < shown.index("AlphaDropout")
    palette.search.setText("norm")  # no name starts so: a word start beats a substring
    shown = palette.ordered_titles()
    assert shown[0] == "Normalization" and "BatchNormalization" in shown[:8]
    palette.search.setText("dense")
    assert palette.ordered_titles()[0] == "Dense"
    palette.search.setText("out")
    assert palette.ordered_titles()[0] == "Output"
    # Enter adds the best match.
    palette.search.setText("dropout")
    added = []
    palette.add_requested.connect(added.append)
    palette.search.returnPressed.emit()
    assert added == [{"kind": "layer", "class_name": "Dropout"}]
    # Clearing the search restores the catalog's order, categories expanded as before.
    palette.search.clear()
    titles = palette.ordered_titles()
    assert titles[:2] == ["Input", "Output"]
    assert titles.index("AlphaDropout") < titles.index("Dropout") or \
        palette.item("Dropout").parent() is not palette.item("AlphaDropout").parent()


def test_long_similar_names_stay_distinguishable_and_the_tooltip_has_the_full_name(window):
    from kbuilder.graph.commands import RenameNodeCommand

    w = window
    assert w.new_from_template("")
    names = ["block_3_expanded_conv_depthwise_BN", "block_3_expanded_conv_depthwise_relu",
             "block_3_expanded_conv_project_BN"]
    ids = []
    for i, name in enumerate(names):
        nid = drop_layer(w, "Dense", QPoint(0, -200 + 100 * i))
        w.doc.edit(lambda nid=nid, name=name: RenameNodeCommand(w.doc.graph, nid, name))
        ids.append(nid)
    shown = [item(w, nid).shown_name for nid in ids]
    assert len(set(shown)) == 3, shown
    for nid, name, text in zip(ids, names, shown, strict=True):
        assert "…" in text and text.endswith(name[-3:])
        assert name in item(w, nid).toolTip()

"""The canvas editor: the view of one graph (the model, or a block inside it) and its edits.

Every gesture becomes a command pushed on the project's history through the document.
Blocks (nested models) are shown collapsed, as one node; double-clicking one opens its
subgraph in the same canvas, with a breadcrumb bar to go back up.

For big graphs: an overview in the corner (``QtMinimap``), a find bar (Ctrl+F) that
jumps to a layer by name or type, also inside blocks, "group into blocks" for the
repeated units of an imported model (``graph/blocks.py``), and a layout that flows down
or right (kept in the project's view section; changing it is one undoable edit).
"""

from __future__ import annotations

import json

from PySide6.QtCore import QMimeData, QPoint, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMenu,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from kbuilder.graph.backbones import is_backbone_class
from kbuilder.graph.blocks import expand_blocks, group_into_blocks
from kbuilder.graph.commands import (
    AddNodeCommand,
    Command,
    ConnectCommand,
    DisconnectCommand,
    GroupCommand,
    MacroCommand,
    MoveNodesCommand,
    RemoveNodesCommand,
    UngroupCommand,
    copy_fragment,
    new_input_node,
    new_layer_node,
    new_output_node,
    new_shared_node,
    paste_command,
)
from kbuilder.graph.errors import GraphError
from kbuilder.graph.freezing import block_layers, freezable, is_frozen, set_trainable
from kbuilder.graph.freezing import unfreeze_from as unfreeze_from_command
from kbuilder.graph.freezing import unfreeze_top as unfreeze_top_command
from kbuilder.graph.layout import layered_positions
from kbuilder.graph.model import Graph
from kbuilder.graph.text import plural
from kbuilder.ui.document import QtDocument
from kbuilder.ui.model.canvas.find_bar import QtFindBar
from kbuilder.ui.model.canvas.minimap import QtMinimap
from kbuilder.ui.model.canvas.scene import QtGraphScene
from kbuilder.ui.model.canvas.view import QtGraphView
from kbuilder.ui.shell import icons, theme

FRAGMENT_MIME = "application/x-kbuilder-fragment"
DEFAULT_INPUT_SHAPE = [32]
# A model opens fitted to the canvas when it fits whole at FIT_ZOOM or more (every
# template but the residual CNN fits a 1280x800 window; node text is drawn from 0.4 on,
# see node_item.paint). A taller one opens at its top, at READABLE_ZOOM.
FIT_ZOOM = 0.42
READABLE_ZOOM = 0.75
FLOW_NAMES = {"down": "top to bottom", "right": "left to right"}


class _FlowCommand(Command):
    """Change the direction the canvas lays data out in (the project's ``view["flow"]``)."""

    def __init__(self, editor: QtCanvasEditor, view: dict, flow: str):
        self.editor, self.view, self.flow = editor, view, flow
        self.before = view.get("flow", "down")
        self.text = f"arrange {FLOW_NAMES[flow]}"

    def do(self) -> None:
        self.view["flow"] = self.flow
        self.editor.scene.set_flow(self.flow)

    def undo(self) -> None:
        self.view["flow"] = self.before
        self.editor.scene.set_flow(self.before)


class QtCanvasEditor(QWidget):
    """The canvas of the open document.

    Signals:
        selection_changed(): the selected nodes changed (read ``selected_node_ids``).
        graph_changed(): another graph is shown (entered or left a block).
        network_activated(node_id): a pretrained network was double-clicked (show its
            layers, as the inspector's "Show its layers" does).
        status_message(text): hints and refusals for the status bar.
    """

    selection_changed = Signal()
    graph_changed = Signal()
    network_activated = Signal(str)
    status_message = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.doc: QtDocument | None = None
        self._path: list[str] = []  # block ids from the model down to the shown graph
        self.scene = QtGraphScene(self)
        self.view = QtGraphView(self.scene, self)
        self._crumbs = self._build_breadcrumbs()
        self.find_bar = QtFindBar(self)
        self.minimap = QtMinimap(self.view, self.scene)
        self._matches: list[tuple[tuple[str, ...], str]] = []  # (block path, node id)
        self._match = 0
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self._crumbs)
        layout.addWidget(self.find_bar)
        layout.addWidget(self.view, 1)
        self.find_bar.search.connect(self.find)
        self.find_bar.step.connect(self.find_step)
        self.find_bar.closed.connect(self.view.setFocus)
        self._rect_timer = QTimer(self, singleShot=True, interval=0)
        self._rect_timer.timeout.connect(self._update_scene_rect)
        self.scene.structure_changed.connect(self._rect_timer.start)
        # An arrangement, or its undo, can move the whole model (left to right and back).
        self.scene.nodes_moved.connect(self._rect_timer.start)
        theme.manager().changed.connect(self._on_theme)
        self.scene.selectionChanged.connect(self.selection_changed)
        v = self.view
        v.node_dropped.connect(self.add_node_from_payload)
        v.connect_requested.connect(self.connect_ports)
        v.nodes_moved.connect(self.move_nodes)
        v.node_activated.connect(self._on_node_activated)
        v.context_menu_requested.connect(self._context_menu)
        v.status_message.connect(self.status_message)

    def _build_breadcrumbs(self) -> QFrame:
        bar = QFrame(self)
        bar.setFrameShape(QFrame.Shape.StyledPanel)
        row = QHBoxLayout(bar)
        row.setContentsMargins(6, 3, 6, 3)
        self._up_button = QToolButton(bar)
        self._up_button.setText("Up")
        self._up_button.setToolTip("Back to the enclosing model (Backspace)")
        self._up_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self._up_button.setIcon(icons.icon("up"))
        self._up_button.clicked.connect(self.leave_block)
        self._crumb_label = QLabel(bar)
        row.addWidget(self._up_button)
        row.addWidget(self._crumb_label, 1)
        bar.hide()
        return bar

    def _on_theme(self) -> None:
        self._up_button.setIcon(icons.icon("up"))

    # --------------------------------------------------------------- document
    def set_document(self, doc: QtDocument | None) -> None:
        if self.doc is not None:
            self.doc.results_changed.disconnect(self._on_results)
            self.doc.history_changed.disconnect(self._on_history)
            self.doc.edit_failed.disconnect(self.status_message)
        self.doc = doc
        self._path = []
        self._matches = []
        flow = doc.project.view.get("flow", "down") if doc is not None else "down"
        self.scene.set_flow(flow if flow in FLOW_NAMES else "down")
        if doc is not None:
            doc.results_changed.connect(self._on_results)
            doc.history_changed.connect(self._on_history)
            doc.edit_failed.connect(self.status_message)
        self._show_current()

    @property
    def graph(self) -> Graph | None:
        """The graph shown: the model's, or the subgraph of the block that is open."""
        if self.doc is None:
            return None
        graph = self.doc.graph
        for block_id in self._path:
            node = graph.node(block_id)
            assert node.subgraph is not None
            graph = node.subgraph
        return graph

    @property
    def block_path(self) -> list[str]:
        return list(self._path)

    def _show_current(self) -> None:
        graph = self.graph
        inference = self._inference_for(graph)
        self.scene.set_graph(graph, inference)
        self._update_breadcrumbs()
        self._update_scene_rect()
        self.minimap.rebuild()
        self.fit_on_open()
        self.graph_changed.emit()
        self.selection_changed.emit()

    def _inference_for(self, graph: Graph | None):
        # ``is not None``, never truthiness: an empty Graph is falsy (it has a length),
        # and a model started empty must still get its shapes (issue 12, item 17).
        if self.doc is None or graph is None:
            return None
        return self.doc.inference_for(graph)

    def _update_breadcrumbs(self) -> None:
        if not self._path or self.doc is None:
            self._crumbs.hide()
            return
        names, graph = [self.doc.graph.name], self.doc.graph
        for block_id in self._path:
            node = graph.node(block_id)
            names.append(node.name)
            assert node.subgraph is not None
            graph = node.subgraph
        self._crumb_label.setText("  ›  ".join(names) + "   (block: edits apply to every use)")
        self._crumbs.show()

    def _on_results(self, ids: set) -> None:
        if not self._path:
            self.scene.apply_results(ids)
        else:
            # A block's inference may have been rebuilt; inner graphs are small.
            self.scene.set_inference(self._inference_for(self.graph))

    def _on_history(self) -> None:
        if self._path and not self._path_valid():
            self._path = []
            self._show_current()

    def _path_valid(self) -> bool:
        graph = self.doc.graph if self.doc else None
        for block_id in self._path:
            if graph is None or block_id not in graph:
                return False
            graph = graph.node(block_id).subgraph
        return graph is not None and graph is self.scene.graph

    def _update_scene_rect(self) -> None:
        rect = self.scene.nodes_rect()
        if rect.isEmpty():
            rect = QRectF(-400, -300, 800, 600)
        # Room around the model to pan into and to drop new layers.
        self.scene.setSceneRect(rect.adjusted(-3000, -3000, 3000, 3000))

    # ---------------------------------------------------------------- blocks
    def enter_block(self, block_id: str) -> None:
        graph = self.graph
        if graph is None or block_id not in graph or graph.node(block_id).kind != "block":
            return
        self._path.append(block_id)
        self._show_current()

    def leave_block(self) -> None:
        if self._path:
            left = self._path.pop()
            self._show_current()
            self.scene.select_nodes([left])

    def _on_node_activated(self, node_id: str) -> None:
        graph = self.graph
        if graph is None or node_id not in graph:
            return
        if graph.node(node_id).kind == "block":
            self.enter_block(node_id)
        elif is_backbone_class(graph.layer_owner(node_id).class_name):
            self.network_activated.emit(node_id)

    # ----------------------------------------------------------------- edits
    def _edit(self, make) -> object | None:
        return self.doc.edit(make) if self.doc is not None else None

    def add_node_from_payload(self, payload: dict, scene_pos: QPointF) -> str | None:
        """Add the node a palette entry describes at ``scene_pos``; returns its id."""
        graph = self.graph
        if graph is None:
            return None
        pos = (round(scene_pos.x()), round(scene_pos.y()))
        kind = payload.get("kind")

        def make():
            if kind == "input":
                node = new_input_node(graph, DEFAULT_INPUT_SHAPE, position=pos)
            elif kind == "output":
                node = new_output_node(graph, position=pos)
            elif kind == "layer":
                node = new_layer_node(graph, str(payload.get("class_name")), position=pos)
            else:
                raise GraphError(f"Cannot add a node of kind '{kind}'.")
            make.node_id = node.id  # type: ignore[attr-defined]
            return AddNodeCommand(graph, node)

        if self._edit(make) is None:
            return None
        node_id = make.node_id  # type: ignore[attr-defined]
        self.scene.select_nodes([node_id])
        self.view.setFocus()
        return node_id

    def add_node_at_center(self, payload: dict) -> str | None:
        """Add a node where the user is looking (palette double-click)."""
        center = self.view.mapToScene(self.view.viewport().rect().center())
        graph = self.graph
        selected = self.scene.selected_node_ids()
        if graph is not None:
            # Below the selected node, if one is, so adding a chain of layers is quick.
            if len(selected) == 1:
                x, y = graph.node(selected[0]).position
                center = QPointF(x, y + 110)
        node_id = self.add_node_from_payload(payload, center)
        if node_id is not None and graph is not None and len(selected) == 1:
            self._auto_connect(selected[0], node_id)
        return node_id

    def _auto_connect(self, src: str, dst: str) -> None:
        graph = self.graph
        assert graph is not None
        ports = graph.input_ports(dst)
        if ports and graph.output_count(src) != 0:
            try:
                graph.check_connection(src, 0, dst, ports[0].name)
            except GraphError:
                return
            self.connect_ports(src, 0, dst, ports[0].name)
            self.scene.select_nodes([dst])

    def connect_ports(self, src: str, src_port: int, dst: str, dst_port: str) -> bool:
        graph = self.graph
        if graph is None:
            return False
        done = self._edit(lambda: ConnectCommand(graph, src, src_port, dst, dst_port))
        if done is not None:
            self.status_message.emit(f"Connected {graph.node(src).name} → {graph.node(dst).name}")
        return done is not None

    def move_nodes(self, positions: dict) -> None:
        graph = self.graph
        if graph is None:
            return
        # Snap to whole pixels: positions go to the project file.
        snapped = {nid: (round(x), round(y)) for nid, (x, y) in positions.items()}
        if self._edit(lambda: MoveNodesCommand(graph, snapped)) is None:
            self.scene.set_graph(graph, self.scene.inference)  # put items back

    def delete_selection(self) -> None:
        graph = self.graph
        if graph is None:
            return
        nodes = self.scene.selected_node_ids()
        edges = [e for e in self.scene.selected_edge_ids() if graph.has_edge(e)]
        removed = set(nodes)
        edges = [e for e in edges if not {graph.edge(e).src, graph.edge(e).dst} & removed]
        if not nodes and not edges:
            return

        def make():
            children = [DisconnectCommand(graph, e) for e in edges]
            if nodes:
                children.append(RemoveNodesCommand(graph, nodes))
            if len(children) == 1:
                return children[0]
            return MacroCommand(f"delete {plural(len(nodes) + len(edges), 'item')}", children)

        self._edit(make)

    def select_all(self) -> None:
        self.scene.select_nodes(self.scene.nodes)

    def selected_node_ids(self) -> list[str]:
        return self.scene.selected_node_ids()

    # -------------------------------------------------------------- clipboard
    def copy_selection(self) -> bool:
        graph = self.graph
        ids = self.scene.selected_node_ids()
        if graph is None or not ids:
            return False
        fragment = copy_fragment(graph, ids)
        mime = QMimeData()
        mime.setData(FRAGMENT_MIME, json.dumps(fragment).encode())
        mime.setText(", ".join(graph.node(i).name for i in ids))
        QGuiApplication.clipboard().setMimeData(mime)
        self.status_message.emit(f"Copied {len(ids)} node{'s' if len(ids) != 1 else ''}")
        return True

    def cut_selection(self) -> None:
        if self.copy_selection():
            self.delete_selection()

    def can_paste(self) -> bool:
        mime = QGuiApplication.clipboard().mimeData()
        return mime is not None and mime.hasFormat(FRAGMENT_MIME)

    def paste(self) -> list[str]:
        graph = self.graph
        mime = QGuiApplication.clipboard().mimeData()
        if graph is None or mime is None or not mime.hasFormat(FRAGMENT_MIME):
            return []
        try:
            fragment = json.loads(bytes(mime.data(FRAGMENT_MIME).data()).decode())
        except (ValueError, UnicodeDecodeError):
            return []
        command = self._edit(lambda: paste_command(graph, fragment, offset=(40.0, 40.0)))
        ids = list(getattr(command, "node_ids", []))
        self.scene.select_nodes(ids)
        return ids

    # --------------------------------------------------------------- layout
    def arrange(self) -> None:
        """Auto-arrange (layered layout) as one undoable move."""
        graph = self.graph
        if graph is None or not len(graph):
            return
        try:
            positions = layered_positions(graph, self.flow)
        except GraphError as exc:
            self.status_message.emit(str(exc))
            return
        changed = {nid: p for nid, p in positions.items() if graph.node(nid).position != p}
        if changed:
            self._edit(lambda: MoveNodesCommand(graph, changed))
        self._update_scene_rect()
        self.view.fit()

    @property
    def flow(self) -> str:
        """Where data flows on the canvas: ``"down"`` or ``"right"``."""
        return self.scene.flow

    def set_flow(self, flow: str) -> None:
        """Lay the model (and every block inside it) out flowing ``flow``, as one edit."""
        doc = self.doc
        if doc is None or flow == self.flow:
            return

        def make():
            steps: list[Command] = [_FlowCommand(self, doc.project.view, flow)]
            graphs = [doc.graph] + [n.subgraph for _, n in doc.graph.walk()
                                    if n.subgraph is not None]
            for graph in graphs:
                moves = {nid: p for nid, p in layered_positions(graph, flow).items()
                         if graph.node(nid).position != p}
                if moves:
                    steps.append(MoveNodesCommand(graph, moves))
            return MacroCommand(f"arrange {FLOW_NAMES[flow]}", steps)

        if self._edit(make) is not None:
            self._update_scene_rect()
            self.fit()

    def fit(self) -> None:
        """The whole graph when it is readable whole, else where its data starts."""
        self.fit_on_open()

    def show_overview(self, visible: bool) -> None:
        self.minimap.setVisible(visible)

    def zoom_in(self) -> None:
        self.view.zoom_by(1.25)

    def zoom_out(self) -> None:
        self.view.zoom_by(0.8)

    def group_selection(self) -> None:
        graph = self.graph
        ids = self.scene.selected_node_ids()
        if graph is None or not ids:
            return
        command = self._edit(lambda: GroupCommand(graph, ids, name=graph.unique_name("block")))
        if command is not None:
            self.scene.select_nodes([command.block_id])  # type: ignore[attr-defined]

    def ungroup(self, block_id: str) -> None:
        graph = self.graph
        if graph is not None:
            self._edit(lambda: UngroupCommand(graph, block_id))

    def group_repeated_blocks(self) -> int:
        """Group the repeated units of the shown graph into blocks; how many."""
        graph = self.graph
        if graph is None:
            return 0
        command = self._edit(lambda: group_into_blocks(graph, flow=self.flow))
        if command is None:
            return 0
        count = command.count  # type: ignore[attr-defined]
        self._update_scene_rect()
        self.fit()
        self.status_message.emit(
            f"Grouped {plural(count, 'repeated unit')} into blocks: double-click one to "
            "open it, Expand All Blocks (or Undo) to see every layer again.")
        return count

    def expand_all_blocks(self) -> int:
        """Ungroup every block of the shown graph (one level); how many."""
        graph = self.graph
        if graph is None:
            return 0
        command = self._edit(lambda: expand_blocks(graph, flow=self.flow))
        if command is None:
            return 0
        count = command.count  # type: ignore[attr-defined]
        self._update_scene_rect()
        self.fit()
        self.status_message.emit(f"Expanded {plural(count, 'block')}.")
        return count

    # ------------------------------------------------------------------ find
    def show_find(self) -> None:
        self.find_bar.open_bar()

    def find_matches(self, text: str) -> list[tuple[tuple[str, ...], str]]:
        """``(block path, node id)`` of each node whose name or type contains ``text``
        (any case), in data-flow order, the nodes inside a block right after it."""
        if self.doc is None or not text.strip():
            return []
        needle = text.strip().lower()
        found: list[tuple[tuple[str, ...], str]] = []

        def visit(graph: Graph, path: tuple[str, ...]) -> None:
            for nid in graph.topological_order():
                node = graph.node(nid)
                kinds = (node.name, node.label, node.class_name or "")
                if any(needle in k.lower() for k in kinds):
                    found.append((path, nid))
                if node.subgraph is not None:
                    visit(node.subgraph, (*path, nid))

        visit(self.doc.graph, ())
        return found

    def find(self, text: str) -> int:
        """Find ``text`` and show the first match; the number of matches."""
        self._matches = self.find_matches(text)
        self._match = 0
        if self._matches:
            self._show_match()
        self.find_bar.set_count(self._match, len(self._matches))
        return len(self._matches)

    def find_step(self, forward: bool = True) -> None:
        """Show the next (or previous) match, wrapping around."""
        if not self._matches:
            return
        self._match = (self._match + (1 if forward else -1)) % len(self._matches)
        self._show_match()
        self.find_bar.set_count(self._match, len(self._matches))

    def _show_match(self) -> None:
        path, node_id = self._matches[self._match]
        if list(path) != self._path:
            self._path = list(path)  # the match is inside a block: open it
            self._show_current()
        item = self.scene.nodes.get(node_id)
        if item is None:
            return
        self.scene.select_nodes([node_id])
        if self.view.zoom < READABLE_ZOOM:
            self.view.set_zoom(READABLE_ZOOM)
        self.view.centerOn(item)
        self.view.zoom_changed.emit(self.view.zoom)

    def share_layer(self, node_id: str) -> None:
        graph = self.graph
        if graph is None:
            return

        def make():
            node = new_shared_node(graph, node_id)
            make.node_id = node.id  # type: ignore[attr-defined]
            return AddNodeCommand(graph, node)

        if self._edit(make) is not None:
            self.scene.select_nodes([make.node_id])  # type: ignore[attr-defined]

    # -------------------------------------------------------------- freezing
    def set_trainable_selection(self, trainable: bool, node_ids: list[str] | None = None
                                ) -> None:
        """Freeze or unfreeze the selected layers and blocks (one undoable edit)."""
        graph = self.graph
        ids = node_ids if node_ids is not None else self.scene.selected_node_ids()
        if graph is None or not ids:
            return
        command = set_trainable(graph, ids, trainable)
        if command is not None:
            self._edit(lambda: command)

    def unfreeze_from(self, block_id: str, layer_name: str | None = None) -> None:
        """Make a block trainable from one of its layers on (asked when not given)."""
        graph = self.graph
        if graph is None:
            return
        if layer_name is None:
            names = [n.name for n in block_layers(graph.node(block_id))][::-1]  # top first
            layer_name, ok = QInputDialog.getItem(
                self, "Unfreeze from layer", f"Layers of '{graph.node(block_id).name}' from "
                "the top; this one and those above it will learn:", names, 0, False)
            if not ok:
                return
        self._edit(lambda: unfreeze_from_command(graph, block_id, layer_name))

    def unfreeze_top(self, block_id: str, count: int | None = None) -> None:
        """Make the block's top ``count`` layers trainable (asked when not given)."""
        graph = self.graph
        if graph is None:
            return
        if count is None:
            total = len(block_layers(graph.node(block_id)))
            count, ok = QInputDialog.getInt(
                self, "Unfreeze the top layers", f"How many of the {total} layers of "
                f"'{graph.node(block_id).name}', counted from the top, should learn?",
                min(20, total), 1, total)
            if not ok:
                return
        self._edit(lambda: unfreeze_top_command(graph, block_id, count))

    # -------------------------------------------------------------- view data
    def store_view(self, view: dict) -> None:
        """Zoom and centre into the project's view section (at the model level)."""
        if self._path:
            return
        center = self.view.mapToScene(self.view.viewport().rect().center())
        view["zoom"] = round(self.view.zoom, 4)
        view["center"] = [round(center.x(), 1), round(center.y(), 1)]

    def fit_on_open(self) -> None:
        """The whole model when it fits readably, else where its data starts (its inputs)
        at a readable zoom; the overview shows the rest."""
        self.view.fit(min_zoom=FIT_ZOOM)
        if self.view.zoom <= FIT_ZOOM + 1e-6:  # too big to fit whole
            self.view.fit(min_zoom=READABLE_ZOOM, start=self._inputs_rect())

    def _inputs_rect(self) -> QRectF:
        rect = QRectF()
        graph = self.graph
        for node in graph.input_nodes() if graph is not None else []:
            item = self.scene.nodes.get(node.id)
            if item is not None:
                rect = rect.united(item.sceneBoundingRect())
        return rect

    def restore_view(self, view: dict) -> None:
        zoom, center = view.get("zoom"), view.get("center")
        if isinstance(zoom, int | float) and zoom > 0 and isinstance(center, list) \
                and len(center) == 2 and (zoom, center) != (1.0, [0.0, 0.0]):
            self.view.set_zoom(float(zoom))
            self.view.centerOn(QPointF(float(center[0]), float(center[1])))
        else:
            self.fit_on_open()

    # ------------------------------------------------------------ context menu
    def _context_menu(self, node_id: str, global_pos: QPoint) -> None:
        graph = self.graph
        if graph is None:
            return
        menu = QMenu(self)
        selected = self.scene.selected_node_ids()
        if node_id and node_id in graph:
            node = graph.node(node_id)
            if node.kind == "block":
                menu.addAction("Open block", lambda: self.enter_block(node_id))
                menu.addAction("Ungroup", lambda: self.ungroup(node_id))
            if node.kind == "layer":
                menu.addAction("Call again with shared weights",
                               lambda: self.share_layer(node_id))
            if any(graph.node(n).kind in ("layer", "block") for n in selected):
                menu.addAction("Group into block", self.group_selection)
            targets = [n for n in (selected if node_id in selected else [node_id])
                       if freezable(graph, n)]
            if targets:
                menu.addSeparator()
                if any(not is_frozen(graph, n) for n in targets):
                    menu.addAction("Freeze (not trainable)",
                                   lambda: self.set_trainable_selection(False, targets))
                if any(is_frozen(graph, n) for n in targets) or node.kind == "block":
                    menu.addAction("Unfreeze (trainable)",
                                   lambda: self.set_trainable_selection(True, targets))
            if node.kind == "block":
                menu.addAction("Unfreeze from layer…", lambda: self.unfreeze_from(node_id))
                menu.addAction("Unfreeze the top layers…", lambda: self.unfreeze_top(node_id))
            menu.addSeparator()
            menu.addAction("Cut", self.cut_selection)
            menu.addAction("Copy", self.copy_selection)
        paste = menu.addAction("Paste", self.paste)
        paste.setEnabled(self.can_paste())
        if selected or self.scene.selected_edge_ids():
            menu.addAction("Delete", self.delete_selection)
        menu.addSeparator()
        if not node_id:
            menu.addAction("Group repeated blocks", self.group_repeated_blocks)
            if any(n.kind == "block" for n in graph.nodes):
                menu.addAction("Expand all blocks", self.expand_all_blocks)
            menu.addSeparator()
        menu.addAction("Auto-arrange", self.arrange)
        other = "right" if self.flow == "down" else "down"
        menu.addAction(f"Arrange {FLOW_NAMES[other]}", lambda: self.set_flow(other))
        menu.addAction("Fit to view", self.fit)
        if self._path:
            menu.addAction("Back up to the enclosing model", self.leave_block)
        menu.popup(global_pos)

"""The canvas scene: a projection of one graph (orange-canvas-core's ``set_scheme``).

``set_graph`` builds an item for every node and edge, then follows the graph's events:
``node_added`` adds an item, ``edge_removed`` removes one, ``node_changed`` refreshes one.
Shape-inference results reach only the items whose ids ``ShapeInference.update()``
reported, so one edit never rebuilds the scene. Items never change the graph; the view
turns gestures into commands.

Far out (``set_far``, below ``FAR_ZOOM`` on a graph of ``FAR_MIN_NODES`` nodes or more)
the view paints the whole graph as one pixmap (a block per node, a hairline per
connection), drawn once per zoom level and blitted (``draw_far``) instead of the items:
thousands of nodes in view cost one blit per frame instead of a pixmap and a paint call
per item. The items stay in the scene, so a click far out picks the node under it.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable
from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen, QPixmap
from PySide6.QtWidgets import QGraphicsScene

from kbuilder.graph.freezing import frozen_state, in_inference_mode, is_frozen
from kbuilder.graph.model import Graph, Node
from kbuilder.graph.shapes import NodeResult, ShapeInference
from kbuilder.graph.text import plural
from kbuilder.ui.model.canvas.edge_item import QtEdgeItem
from kbuilder.ui.model.canvas.node_item import HEIGHT, WIDTH, PortInfo, QtNodeItem
from kbuilder.ui.model.canvas.port_item import Highlight, QtPortItem
from kbuilder.ui.shell import theme

FAR_ZOOM = 0.12
FAR_MIN_NODES = 2000


@dataclass
class _FarGeometry:
    bounds: QRectF
    lines: QPainterPath
    blocks: list[QRectF]
    accents: list[tuple[QColor, list[QRectF]]]


def shape_text(result: NodeResult) -> str:
    """``(None, 128)``; several outputs joined; the input's shape for an output node."""
    specs = result.outputs or result.inputs
    return "  ".join(str(s) for s in specs)


def count_text(n: int) -> str:
    """A compact count: 950, 8.3k, 1.2M, 3.4G."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}".replace(".0" + unit, unit)
    return str(n)


def layer_count(graph: Graph) -> int:
    return sum(1 for _, n in graph.walk() if n.kind == "layer")


class QtGraphScene(QGraphicsScene):
    """Shows ``graph`` with results from ``inference``.

    Signals:
        structure_changed(): nodes or edges were added or removed (for the scene rect).
        nodes_moved(): nodes of the graph moved (a drag, an arrangement, an undo).
    """

    structure_changed = Signal()
    nodes_moved = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.BspTreeIndex)
        self.graph: Graph | None = None
        self.inference: ShapeInference | None = None
        self.nodes: dict[str, QtNodeItem] = {}
        self.edges: dict[str, QtEdgeItem] = {}
        self._handlers: list = []
        self._highlighted: list[QtPortItem] = []
        self._selected: set[str] = set()
        self._building = False  # set_graph is adding every item
        self.flow = "down"  # where data flows: "down" or "right" (the ports follow)
        self._bounds: QRectF | None = None  # nodes_rect(), until nodes change
        self._far = False
        # The far-out picture, until nodes change or the zoom does.
        self._geometry: _FarGeometry | None = None
        self._picture: QPixmap | None = None
        self._picture_scale = 0.0
        self._rescale_due = False
        self._rescale = QTimer(self, singleShot=True, interval=150)
        self._rescale.timeout.connect(self._rescale_now)
        self.selectionChanged.connect(self._on_selection_changed)

    # ------------------------------------------------------------------ graph
    def set_graph(self, graph: Graph | None, inference: ShapeInference | None) -> None:
        """Show ``graph`` (``None``: nothing), replacing what was shown."""
        self._disconnect()
        self.clearSelection()
        self.clear()
        self.nodes.clear()
        self.edges.clear()
        self._highlighted.clear()
        self._selected = set()
        self._bounds = None
        self._far, self._picture, self._geometry = False, None, None
        self.graph, self.inference = graph, inference
        if graph is None:
            return
        ev = graph.events
        self._handlers = [
            (ev.node_added, self._on_node_added),
            (ev.node_removed, self._on_node_removed),
            (ev.edge_added, self._on_edge_added),
            (ev.edge_removed, self._on_edge_removed),
            (ev.node_changed, self._on_node_changed),
            (ev.node_moved, self._on_node_moved),
        ]
        for signal, handler in self._handlers:
            signal.connect(handler)
        self._building = True  # ports are marked connected once, after every edge
        try:
            for node in graph.nodes:
                self._add_node(node)
            for edge in graph.edges:
                self._add_edge(edge.id)
        finally:
            self._building = False
        for item in self.nodes.values():
            self._update_port_marks(item)
        self.apply_results()
        self.structure_changed.emit()

    def set_inference(self, inference: ShapeInference | None) -> None:
        self.inference = inference
        self.apply_results()

    def _disconnect(self) -> None:
        for signal, handler in self._handlers:
            signal.disconnect(handler)
        self._handlers = []

    def detach(self) -> None:
        """Stop following the graph (the scene is going away)."""
        self._disconnect()

    # -------------------------------------------------------------- node items
    def _add_node(self, node: Node) -> QtNodeItem:
        item = QtNodeItem(node.id)
        item.flow = self.flow
        self._refresh_identity(item, node)
        item.setPos(QPointF(*node.position))
        self.addItem(item)
        self.nodes[node.id] = item
        self._bounds = None
        self._stale_picture()
        return item

    def _refresh_identity(self, item: QtNodeItem, node: Node) -> None:
        assert self.graph is not None
        graph = self.graph
        if node.kind == "layer":
            owner = graph.layer_owner(node.id)
            category = _category(owner.class_name or "")
            type_text = node.label + (" (shared)" if node.shared_with else "")
        elif node.kind == "block":
            category, type_text = "Block", "Block"
        else:
            category = type_text = node.label
        item.set_identity(node.name, type_text, category, node.kind)
        ports = [PortInfo(p.name, p.variadic, p.required) for p in graph.input_ports(node.id)]
        item.set_ports(ports, self._output_count(node.id))
        if not self._building:
            self._update_port_marks(item)

    def _output_count(self, node_id: str) -> int:
        assert self.graph is not None
        known = self.graph.output_count(node_id)
        if known is not None:
            return known
        result = self.inference.result(node_id) if self.inference is not None else None
        used = max((e.src_port + 1 for e in self.graph.edges_from(node_id)), default=1)
        return max(len(result.outputs) if result is not None else 0, used, 1)

    def _on_node_added(self, node_id: str) -> None:
        assert self.graph is not None
        self._add_node(self.graph.node(node_id))
        self.structure_changed.emit()

    def _on_node_removed(self, node_id: str) -> None:
        item = self.nodes.pop(node_id, None)
        self._bounds = None
        self._stale_picture()
        if item is not None:
            for edge in list(item.edges):
                self._drop_edge_item(edge)
            self.removeItem(item)
        self.structure_changed.emit()

    def _on_node_changed(self, node_id: str, what: str) -> None:
        item = self.nodes.get(node_id)
        if item is not None and self.graph is not None and node_id in self.graph:
            self._refresh_identity(item, self.graph.node(node_id))
            for edge in item.edges:
                edge.update_path()
            if what == "name":
                self._apply_result(item)

    def _on_node_moved(self, node_id: str) -> None:
        item = self.nodes.get(node_id)
        if item is not None and self.graph is not None:
            pos = QPointF(*self.graph.node(node_id).position)
            if item.pos() != pos:
                item.setPos(pos)
                self._bounds = None
                self._stale_picture()
                for edge in item.edges:
                    edge.update_path()
                self.nodes_moved.emit()

    # ----------------------------------------------------------------- far out
    @property
    def far(self) -> bool:
        """Whether the graph is drawn as one picture (see the module)."""
        return self._far

    def set_far(self, far: bool) -> None:
        """Draw the graph as one picture (``True``, for a big graph) or as its items.

        The items stay in the scene, shown: the view paints the picture instead of them
        (QtGraphView.paintEvent), so switching costs nothing per item (hiding 20,000 items
        took a tenth of a second, on every fit from far out) and a click far out still
        finds the node under it."""
        far = far and len(self.nodes) >= FAR_MIN_NODES
        if far == self._far:
            return
        # The picture is kept (it is dropped when nodes change): going far out again at
        # the same zoom blits it at once.
        self._far = far
        self.update()

    def _stale_picture(self) -> None:
        self._picture = None
        self._geometry = None
        if self._far:
            self.update()

    def _rescale_now(self) -> None:
        self._rescale_due = True
        self.update()

    def _far_geometry(self) -> _FarGeometry:
        """What the picture draws, in scene coordinates: every connection as one path,
        a block per node and its category strip, grouped by colour."""
        if self._geometry is None:
            c = theme.colors()
            lines = QPainterPath()
            for edge in self.edges.values():
                lines.addPath(edge.curve)
            blocks, accents = [], {}
            for item in self.nodes.values():
                p = item.pos()
                x, y = p.x() - WIDTH / 2, p.y() - HEIGHT / 2
                blocks.append(QRectF(x, y, WIDTH, HEIGHT))
                colour = c.error if item.status == "error" else item.accent
                accents.setdefault(colour.rgba(), (QColor(colour), []))[1].append(
                    QRectF(x, y, WIDTH * 0.3, HEIGHT))
            self._geometry = _FarGeometry(self.nodes_rect(), lines, blocks,
                                          list(accents.values()))
        return self._geometry

    def _far_pixmap(self, scale: float) -> QPixmap:
        """The picture at ``scale`` device pixels per scene unit (drawn once per zoom)."""
        if self._picture is None or abs(self._picture_scale - scale) > 1e-9:
            geometry = self._far_geometry()
            c = theme.colors()
            size = geometry.bounds.size() * scale
            pixmap = QPixmap(max(1, math.ceil(size.width())), max(1, math.ceil(size.height())))
            pixmap.fill(Qt.GlobalColor.transparent)
            painter = QPainter(pixmap)
            painter.scale(scale, scale)
            painter.translate(-geometry.bounds.topLeft())
            painter.setPen(QPen(c.edge, 0))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawPath(geometry.lines)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(c.node_border)
            painter.drawRects(geometry.blocks)
            for colour, rects in geometry.accents:
                painter.setBrush(colour)
                painter.drawRects(rects)
            painter.end()
            self._picture, self._picture_scale = pixmap, scale
        return self._picture

    def draw_far(self, painter: QPainter) -> None:
        """Paint the far-out picture (``painter`` maps scene to device coordinates) and
        mark the selected nodes on it."""
        transform = painter.worldTransform()
        scale = transform.m11()
        bounds = self._far_geometry().bounds
        if self._picture is not None and abs(self._picture_scale - scale) > 1e-9 \
                and not self._rescale_due:
            # Zooming: stretch the last picture, and draw it anew once the zoom rests.
            painter.drawPixmap(bounds, self._picture, QRectF(self._picture.rect()))
            self._rescale.start()
        else:
            self._rescale_due = False
            pixmap = self._far_pixmap(scale)
            corner = transform.map(bounds.topLeft())
            painter.save()
            painter.resetTransform()  # a blit in device pixels, not a scaled drawing
            painter.drawPixmap(QPointF(round(corner.x()), round(corner.y())), pixmap)
            painter.restore()
        selected = [self.nodes[n] for n in self._selected if n in self.nodes]
        if selected:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(theme.colors().selection)
            for item in selected:
                painter.drawRect(item.sceneBoundingRect())

    def set_flow(self, flow: str) -> None:
        """Put every node's ports where data flowing ``flow`` enters and leaves it."""
        if flow == self.flow:
            return
        self.flow = flow
        for item in self.nodes.values():
            item.set_flow(flow)
        for edge in self.edges.values():
            edge.update_path()
        self._stale_picture()

    def update_edges(self, node_ids: Iterable[str]) -> None:
        """Re-route the edges of nodes that moved (the view calls it while dragging)."""
        self._bounds = None
        self._stale_picture()
        done: set = set()
        for nid in node_ids:
            item = self.nodes.get(nid)
            if item is None:
                continue
            for edge in item.edges:
                if edge not in done:
                    done.add(edge)
                    edge.update_path()

    def _on_selection_changed(self) -> None:
        # Edges of selected nodes are highlighted: repaint those whose ends changed.
        selected = set(self.selected_node_ids())
        for nid in selected ^ self._selected:
            item = self.nodes.get(nid)
            if item is not None:
                for edge in item.edges:
                    edge.update()
        self._selected = selected
        if self._far:
            self.update()  # the picture marks the selected nodes

    # -------------------------------------------------------------- edge items
    def _add_edge(self, edge_id: str) -> None:
        assert self.graph is not None
        edge = self.graph.edge(edge_id)
        src, dst = self.nodes.get(edge.src), self.nodes.get(edge.dst)
        if src is None or dst is None:
            return
        if edge.src_port >= len(src.outputs):
            self._refresh_identity(src, self.graph.node(edge.src))
        item = QtEdgeItem(edge_id, src, edge.src_port, dst, edge.dst_port)
        src.edges.add(item)
        dst.edges.add(item)
        item.update_path()
        self.addItem(item)
        self.edges[edge_id] = item
        self._stale_picture()
        if not self._building:
            self._update_port_marks(src)
            self._update_port_marks(dst)

    def _drop_edge_item(self, item: QtEdgeItem) -> None:
        self.edges.pop(item.edge_id or "", None)
        for end in (item.src, item.dst):
            if end is not None:
                end.edges.discard(item)
        if item.scene() is self:
            self.removeItem(item)

    def _on_edge_added(self, edge_id: str) -> None:
        self._add_edge(edge_id)
        self.structure_changed.emit()

    def _on_edge_removed(self, edge_id: str) -> None:
        self._stale_picture()
        item = self.edges.get(edge_id)
        if item is not None:
            self._drop_edge_item(item)
            for end in (item.src, item.dst):
                if end is not None and end.node_id in self.nodes:
                    self._update_port_marks(end)
        self.structure_changed.emit()

    def _update_port_marks(self, item: QtNodeItem) -> None:
        used_in = {e.dst_port for e in item.edges if e.dst is item}
        used_out = {e.src_port for e in item.edges if e.src is item}
        for port in item.inputs.values():
            port.set_connected(port.key in used_in)
        for port in item.outputs:
            port.set_connected(port.key in used_out)

    # ----------------------------------------------------------------- results
    def apply_results(self, ids: Iterable[str] | None = None) -> None:
        """Show the inference results of ``ids`` (default: every node)."""
        if ids is None:
            ids = list(self.nodes)
        recoloured = False
        for nid in ids:
            item = self.nodes.get(nid)
            if item is not None:
                before = item.status
                self._apply_result(item)
                recoloured |= item.status != before
        if recoloured:
            self._stale_picture()  # an error colours the node's block red

    def _apply_result(self, item: QtNodeItem) -> None:
        if self.graph is None or item.node_id not in self.graph:
            return
        node = self.graph.node(item.node_id)
        result = self.inference.result(node.id) if self.inference is not None else NodeResult()
        n_out = self._output_count(node.id)
        if n_out != len(item.outputs):
            item.set_ports([PortInfo(p.name, p.variadic, p.required)
                            for p in self.graph.input_ports(node.id)], n_out)
            self._update_port_marks(item)
            for edge in item.edges:
                edge.update_path()
        status, message = "ok", ""
        if result.error:
            message = result.error
            status = "warning" if self._is_unconnected(node) else "error"
        elif result.blocked:
            status, message = "blocked", result.blocked
        text = shape_text(result) if result.ok else ("—" if result.blocked else "no output: see ⚠")
        if node.kind == "input":
            details = str(node.param("dtype", "float32"))
        elif node.kind == "output":
            details = "model output"
        elif node.kind == "block":
            assert node.subgraph is not None
            n = layer_count(node.subgraph)
            details = f"{plural(n, 'layer')} · {count_text(result.params)} params"
        elif result.params:
            details = plural(result.params, 'param', grouped=True)
        else:
            details = ""
        frozen = frozen_state(self.graph, node.id)
        if frozen:  # at the end: the details are elided from the left
            details = f"{details} ❄" if details else "❄ frozen"
        item.set_frozen(frozen)
        item.set_result(text, details, status, message,
                        lambda: self._node_tooltip(node, result))

    def set_swept(self, swept: dict[str, str]) -> None:
        """Mark the nodes whose parameters a sweep varies (node id -> their ranges)."""
        for node_id, item in self.nodes.items():
            item.set_swept(swept.get(node_id, ""))

    def _is_unconnected(self, node: Node) -> bool:
        """A required input that is not connected yet: a to-do, not a mistake."""
        assert self.graph is not None
        if node.kind == "output":
            return not self.graph.edges_into(node.id)
        return any(p.required and not self.graph.edges_into(node.id, p.name)
                   for p in self.graph.input_ports(node.id))

    def _node_tooltip(self, node: Node, result: NodeResult) -> str:
        rows = [f"<b>{html.escape(node.name)}</b> — {html.escape(node.label)}"]
        if result.outputs:
            shapes = ", ".join(f"{s} {s.dtype}" for s in result.outputs)
            rows.append(f"Output: {html.escape(shapes)}")
        elif node.kind == "output" and result.inputs:
            shapes = ", ".join(f"{s} {s.dtype}" for s in result.inputs)
            rows.append(f"Model output: {html.escape(shapes)}")
        if result.params:
            rows.append(f"Parameters: {result.params:,} (trainable {result.trainable_params:,})")
        if self.graph is not None and is_frozen(self.graph, node.id):
            rows.append("Frozen: its weights do not learn (right-click, Unfreeze).")
        if in_inference_mode(node):
            rows.append("Called with training=False: its BatchNormalization uses its "
                        "moving statistics.")
        if result.flops:
            rows.append(f"FLOPs: {result.flops:,}")
        if node.kind == "block":
            rows.append("<i>Double-click to open the block.</i>")
        problem = result.error or result.blocked
        if problem:
            rows.append(f"<span style='color:#d1242f'>{html.escape(problem)}</span>")
        return "<br>".join(rows)

    # ------------------------------------------------------------- descriptions
    def helpEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        # Node tooltips are written when asked (QtNodeItem.write_tooltip); Qt reads them.
        for item in self.items(event.scenePos()):
            while item is not None and not isinstance(item, QtNodeItem):
                item = item.parentItem()
            if item is not None:
                item.write_tooltip()
                break
        super().helpEvent(event)

    def describe_edge(self, item: QtEdgeItem) -> str:
        """The tensor flowing along an edge, for its tooltip."""
        if self.graph is None or item.src is None or item.dst is None:
            return ""
        src = self.graph.node(item.src.node_id)
        dst = self.graph.node(item.dst.node_id)
        text = f"{src.name} → {dst.name}"
        if item.dst_port not in ("inputs", ""):
            text += f" ({item.dst_port})"
        result = self.inference.result(src.id) if self.inference is not None else None
        if result is not None and item.src_port < len(result.outputs):
            spec = result.outputs[item.src_port]
            text += f"\nTensor: {spec} {spec.dtype}"
        else:
            text += "\nTensor shape unknown"
        return text

    def describe_port(self, port: QtPortItem) -> str:
        if self.graph is None or port.node_id not in self.graph:
            return ""
        node = self.graph.node(port.node_id)
        result = self.inference.result(node.id) if self.inference is not None else None
        if port.is_output:
            text = f"Output {port.key} of {node.name}"
            if result is not None and isinstance(port.key, int) and port.key < len(result.outputs):
                spec = result.outputs[port.key]
                text += f": {spec} {spec.dtype}"
            return text + "\nDrag to an input port to connect."
        info = next((p for p in self.graph.input_ports(node.id) if p.name == port.key), None)
        text = f"Input '{port.key}' of {node.name}"
        if info is not None:
            if info.variadic:
                text += " (takes several connections)"
            elif not info.required:
                text += " (optional)"
        return text

    # ------------------------------------------------------------- connecting
    def valid_targets(self, src_id: str, src_port: int) -> set[tuple[str, str]]:
        """Input ports that ``src_id:src_port`` may connect to (``check_connection``
        gives the reason for the others)."""
        graph = self.graph
        if graph is None or graph.output_count(src_id) == 0:
            return set()
        upstream = _reachable(src_id, graph.predecessors)
        valid = set()
        for nid in self.nodes:
            if nid in upstream:  # includes src itself: a cycle
                continue
            for port in graph.input_ports(nid):
                if port.variadic and port.max_count is not None:
                    if len(graph.edges_into(nid, port.name)) >= port.max_count:
                        continue
                valid.add((nid, port.name))
        return valid

    def valid_sources(self, dst_id: str) -> set[tuple[str, int]]:
        """Output ports that may connect to an input port of ``dst_id``."""
        graph = self.graph
        if graph is None:
            return set()
        downstream = _reachable(dst_id, graph.successors)
        valid = set()
        for nid, item in self.nodes.items():
            if nid in downstream or graph.output_count(nid) == 0:
                continue
            for port in item.outputs:
                valid.add((nid, int(port.key)))
        return valid

    def highlight_targets(self, targets: set[tuple[str, str]], src_id: str) -> None:
        """Mark input ports valid or invalid for the connection being dragged."""
        self.clear_highlights()
        for nid, item in self.nodes.items():
            for name, port in item.inputs.items():
                port.set_highlight(Highlight.VALID if (nid, name) in targets else
                                   Highlight.INVALID)
                self._highlighted.append(port)

    def highlight_sources(self, sources: set[tuple[str, int]]) -> None:
        self.clear_highlights()
        for nid, item in self.nodes.items():
            for port in item.outputs:
                port.set_highlight(Highlight.VALID if (nid, int(port.key)) in sources else
                                   Highlight.INVALID)
                self._highlighted.append(port)

    def clear_highlights(self) -> None:
        for port in self._highlighted:
            if port.scene() is self:
                port.set_highlight(Highlight.NONE)
        self._highlighted.clear()

    # -------------------------------------------------------------- selection
    def selected_node_ids(self) -> list[str]:
        return [i.node_id for i in self.selectedItems() if isinstance(i, QtNodeItem)]

    def selected_edge_ids(self) -> list[str]:
        return [i.edge_id for i in self.selectedItems()
                if isinstance(i, QtEdgeItem) and i.edge_id]

    def select_nodes(self, ids: Iterable[str]) -> None:
        wanted = set(ids)
        self.blockSignals(True)
        try:
            self.clearSelection()
            for nid in wanted:
                item = self.nodes.get(nid)
                if item is not None:
                    item.setSelected(True)
        finally:
            self.blockSignals(False)
        self.selectionChanged.emit()

    def moved_positions(self) -> dict[str, tuple[float, float]]:
        """Nodes whose item was dragged away from the graph's position."""
        if self.graph is None:
            return {}
        moved = {}
        for nid in self.selected_node_ids():  # only selected nodes can be dragged
            item = self.nodes[nid]
            pos = item.pos()
            x, y = self.graph.node(nid).position
            if abs(pos.x() - x) > 1e-6 or abs(pos.y() - y) > 1e-6:
                moved[nid] = (pos.x(), pos.y())
        return moved

    def nodes_rect(self) -> QRectF:
        """The bounds of every node; kept until nodes are added, removed or moved (fit,
        the overview and the scene's bounds all ask, and 10,000 nodes take 0.1 s)."""
        if self._bounds is None:
            rect = QRectF()
            for item in self.nodes.values():
                rect = rect.united(item.sceneBoundingRect())
            self._bounds = rect
        return QRectF(self._bounds)

    def refresh_theme(self) -> None:
        self._stale_picture()
        for item in self.nodes.values():
            item.refresh_theme()
            self._apply_result(item)
        for edge in self.edges.values():
            edge.update()
        self.update()


def _reachable(start: str, neighbours) -> set[str]:
    seen = {start}
    stack = [start]
    while stack:
        for nxt in neighbours(stack.pop()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


_CATEGORIES: dict[str, str] = {}  # class -> category, once known (read per node on open)


def _category(class_name: str) -> str:
    from kbuilder.graph import catalog

    if class_name in _CATEGORIES:
        return _CATEGORIES[class_name]
    try:
        category = catalog.get(class_name).category
    except Exception:  # an unknown class is shown, with its error, not hidden
        return "Other"
    _CATEGORIES[class_name] = category
    return category

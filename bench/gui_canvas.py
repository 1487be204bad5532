"""Frame time of the canvas on a 10,000-node graph, offscreen (goal: <= 16 ms per frame).

The graph: one Input, ten branches of Dense layers, a Concatenate and an Output, laid out
by the layered layout (``--nodes`` in all; 10,000 by default). The canvas (the real editor
widget, 1600x1000, with its overview) is panned step by step; each step's frame is
rendered synchronously (``viewport().repaint()``, the whole viewport, the worst case) and
timed:
    pan at 100 %       readable zoom, about 40 nodes in view
    scroll at 100 %    Qt's incremental scrolling (only the exposed strip is painted)
    fit to view        Fit to View (Ctrl+0) from far out, and its frame: it lands on a
                       readable zoom at the inputs, the overview shows the rest
    pan far out        5 %, thousands of nodes in view: one picture of the graph (below
                       12 % a graph of 2,000 nodes or more is drawn as one pixmap)
Also, once: the layout, shape inference, the first show (building the scene, the
overview and the first frame: what opening an imported model costs after the import
itself), and one parameter edit end to end (command, shape inference, updating the two
nodes that changed).

Run: .venv/bin/python bench/gui_canvas.py [--nodes N] [--frames N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("KERAS_BACKEND", "numpy")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtWidgets import QApplication  # noqa: E402

from kbuilder.graph.commands import (  # noqa: E402
    ConnectCommand,
    SetParamCommand,
    new_input_node,
    new_layer_node,
    new_output_node,
)
from kbuilder.graph.layout import apply_layout  # noqa: E402
from kbuilder.graph.model import Graph  # noqa: E402
from kbuilder.graph.project import Project  # noqa: E402
from kbuilder.ui.document import QtDocument  # noqa: E402
from kbuilder.ui.model.canvas.editor import QtCanvasEditor  # noqa: E402
from kbuilder.ui.model.canvas.view import MIN_ZOOM  # noqa: E402
from kbuilder.ui.shell import theme  # noqa: E402

BRANCHES = 10


def big_graph(n: int) -> Graph:
    graph = Graph("big")
    inp = new_input_node(graph, [16])
    graph._insert_node(inp)
    per_branch = (n - 3) // BRANCHES
    ends = []
    for _ in range(BRANCHES):
        prev = inp.id
        for _ in range(per_branch):
            node = new_layer_node(graph, "Dense", {"units": 16})
            graph._insert_node(node)
            ConnectCommand(graph, prev, 0, node.id).do()
            prev = node.id
        ends.append(prev)
    concat = new_layer_node(graph, "Concatenate")
    graph._insert_node(concat)
    for end in ends:
        ConnectCommand(graph, end, 0, concat.id).do()
    out = new_output_node(graph)
    graph._insert_node(out)
    ConnectCommand(graph, concat.id, 0, out.id).do()
    return graph


def frames(app: QApplication, editor: QtCanvasEditor, count: int, dx: int, dy: int,
           full: bool = True) -> list[float]:
    view = editor.view
    h, v = view.horizontalScrollBar(), view.verticalScrollBar()
    times = []
    for i in range(count):
        sign = 1 if (i // 20) % 2 == 0 else -1  # back and forth, staying on the graph
        start = time.perf_counter()
        h.setValue(h.value() + sign * dx)
        v.setValue(v.value() + sign * dy)
        if full:
            view.viewport().repaint()
        else:
            app.processEvents()
        times.append((time.perf_counter() - start) * 1000)
    return times


def report(label: str, times: list[float]) -> None:
    times = sorted(times)
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    print(f"  {label:<34} median {statistics.median(times):6.2f} ms   p95 {p95:6.2f} ms"
          f"   max {times[-1]:6.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--frames", type=int, default=120)
    args = parser.parse_args()

    app = QApplication.instance() or QApplication([])
    theme.install(app)
    graph = big_graph(args.nodes)
    t = time.perf_counter()
    apply_layout(graph)
    layout = time.perf_counter() - t
    doc = QtDocument(Project.new(graph))
    t = time.perf_counter()
    doc.update_shapes()
    infer = time.perf_counter() - t
    editor = QtCanvasEditor()
    editor.resize(1600, 1000)
    editor.show()
    app.processEvents()
    t = time.perf_counter()
    editor.set_document(doc)
    app.processEvents()
    build = time.perf_counter() - t
    t = time.perf_counter()
    editor.view.viewport().repaint()
    first_frame = time.perf_counter() - t
    t = time.perf_counter()
    editor.minimap.rebuild()
    overview = time.perf_counter() - t
    print(f"canvas with {len(graph)} nodes and {len(graph.edges)} connections (offscreen, "
          f"1600x1000):")
    print(f"  layered layout                     {layout * 1000:8.1f} ms (once, on import)")
    print(f"  shape inference, whole graph       {infer * 1000:8.1f} ms (once, on open)")
    print(f"  building the scene and overview    {build * 1000:8.1f} ms (once, on open)")
    print(f"  first frame                        {first_frame * 1000:8.1f} ms (once, on open)")
    print(f"  first show after import            {(build + first_frame) * 1000:8.1f} ms "
          "(scene, overview, first frame)")
    print(f"  overview redrawn (after a move)    {overview * 1000:8.1f} ms")

    view = editor.view
    view.set_zoom(1.0)
    view.centerOn(editor.scene.nodes[graph.node_ids[len(graph) // 2]])
    frames(app, editor, 10, 30, 20)  # warm the item caches at this zoom
    report("pan at 100 % (full repaint)", frames(app, editor, args.frames, 30, 20))
    report("scroll at 100 % (incremental)", frames(app, editor, args.frames, 30, 20, False))
    for label, start in (("fit to view from 15 %", 0.15),
                         ("fit to view from 5 % (leaves the picture)", MIN_ZOOM)):
        fits = []
        for _ in range(10):
            view.set_zoom(start)
            view.viewport().repaint()
            app.processEvents()
            t = time.perf_counter()
            editor.fit()
            view.viewport().repaint()
            fits.append((time.perf_counter() - t) * 1000)
        report(f"{label}, to {view.zoom * 100:.0f} %", fits)
    view.set_zoom(MIN_ZOOM)
    view.centerOn(editor.scene.nodes[graph.node_ids[len(graph) // 2]])
    in_view = len(view.items(view.viewport().rect()))
    frames(app, editor, 10, 4, 4)
    report(f"pan far out ({view.zoom * 100:.0f} %, {in_view} items in view)",
           frames(app, editor, args.frames, 4, 4))

    middle = graph.node_ids[len(graph) // 2]
    edits = []
    for units in (8, 24, 12, 20, 16):
        t = time.perf_counter()
        doc.edit(lambda u=units: SetParamCommand(graph, middle, "units", u))
        app.processEvents()
        edits.append((time.perf_counter() - t) * 1000)
    report("one edit, end to end", edits)
    print("  goal: <= 16 ms per frame; <= 50 ms per edit")


if __name__ == "__main__":
    main()

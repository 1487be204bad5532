"""Median time from one parameter edit to updated shapes, on large graphs.

Goal (issue 2): <= 50 ms on a 1,000-node graph and on a 200-node branching graph.
Run: .venv/bin/python bench/shape_update.py [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "numpy")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kbuilder.graph.commands import (  # noqa: E402
    AddNodeCommand,
    ConnectCommand,
    History,
    SetParamCommand,
    new_input_node,
    new_layer_node,
    new_output_node,
)
from kbuilder.graph.model import Graph  # noqa: E402
from kbuilder.graph.shapes import ShapeInference  # noqa: E402


def add(g: Graph, h: History, class_name: str, *sources: str, **params) -> str:
    node = new_layer_node(g, class_name, params)
    h.push(AddNodeCommand(g, node))
    for src in sources:
        h.push(ConnectCommand(g, src, 0, node.id, "inputs"))
    return node.id


def chain_graph(n: int) -> tuple[Graph, History, list[str]]:
    """Input -> n-2 Dense layers -> Output."""
    h, g = History(), Graph("chain")
    x = new_input_node(g, [32])
    h.push(AddNodeCommand(g, x))
    ids = [x.id]
    for _ in range(n - 2):
        ids.append(add(g, h, "Dense", ids[-1], units=32))
    out = new_output_node(g)
    h.push(AddNodeCommand(g, out))
    h.push(ConnectCommand(g, ids[-1], 0, out.id, "inputs"))
    return g, h, ids


def branching_graph(n: int) -> tuple[Graph, History, list[str]]:
    """Residual-style: Dense branches joined by Add, repeated until n nodes."""
    h, g = History(), Graph("branching")
    x = new_input_node(g, [32])
    h.push(AddNodeCommand(g, x))
    ids, trunk = [x.id], x.id
    while len(g) < n - 5:
        a = add(g, h, "Dense", trunk, units=32, activation="relu")
        b = add(g, h, "Dense", a, units=32)
        c = add(g, h, "Dense", trunk, units=32)
        trunk = add(g, h, "Add", b, c, trunk)
        ids += [a, b, c, trunk]
    out = new_output_node(g)
    h.push(AddNodeCommand(g, out))
    h.push(ConnectCommand(g, trunk, 0, out.id, "inputs"))
    return g, h, ids


def measure(g: Graph, h: History, node_id: str, repeats: int) -> tuple[float, float, int]:
    inf = ShapeInference(g)
    t0 = time.perf_counter()
    inf.update()
    full = time.perf_counter() - t0
    times, recomputed = [], 0
    for i in range(repeats):
        t0 = time.perf_counter()
        h.push(SetParamCommand(g, node_id, "units", 16 + (i % 2) * 8))
        inf.update()
        times.append(time.perf_counter() - t0)
        recomputed = len(inf.recomputed)
    return statistics.median(times), full, recomputed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=21)
    args = parser.parse_args()
    import keras

    print(f"keras {keras.__version__}, backend {keras.backend.backend()}")
    for label, (g, h, ids) in (
        ("1,000-node chain", chain_graph(1000)),
        ("200-node branching", branching_graph(200)),
    ):
        mid = next(i for i in ids[len(ids) // 2:] if g.node(i).class_name == "Dense")
        median, full, recomputed = measure(g, h, mid, args.repeats)
        print(
            f"{label:>20}: {len(g)} nodes, full inference {full * 1000:.0f} ms; "
            f"edit 'units' -> shapes updated: median {median * 1000:.1f} ms "
            f"({recomputed} nodes recomputed, {args.repeats} repeats; goal <= 50 ms)"
        )


if __name__ == "__main__":
    main()

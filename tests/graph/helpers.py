"""Small graph builders shared by the graph tests."""

from __future__ import annotations

from typing import Any

from kbuilder.graph.commands import (
    AddNodeCommand,
    ConnectCommand,
    History,
    new_input_node,
    new_layer_node,
    new_output_node,
)
from kbuilder.graph.model import Graph


def add_layer(history: History, graph: Graph, class_name: str, *sources: str,
              ports: list[str] | None = None, name: str | None = None, **params: Any) -> str:
    node = new_layer_node(graph, class_name, params, name)
    history.push(AddNodeCommand(graph, node))
    for i, src in enumerate(sources):
        history.push(ConnectCommand(graph, src, 0, node.id, ports[i] if ports else "inputs"))
    return node.id


def add_input(history: History, graph: Graph, shape, dtype: str = "float32",
              name: str = "input") -> str:
    node = new_input_node(graph, shape, dtype, name)
    history.push(AddNodeCommand(graph, node))
    return node.id


def add_output(history: History, graph: Graph, src: str, name: str = "output") -> str:
    node = new_output_node(graph, name)
    history.push(AddNodeCommand(graph, node))
    history.push(ConnectCommand(graph, src, 0, node.id))
    return node.id


def snapshot(graph: Graph) -> tuple[dict, dict]:
    return graph.to_dict(), graph.positions()


def mlp(history: History | None = None) -> tuple[Graph, History, dict[str, str]]:
    """Input(16) -> Dense(8) -> Dense(4) -> Output, ids by name."""
    history = history or History()
    g = Graph("mlp")
    x = add_input(history, g, [16])
    d1 = add_layer(history, g, "Dense", x, units=8, activation="relu")
    d2 = add_layer(history, g, "Dense", d1, units=4)
    out = add_output(history, g, d2)
    return g, history, {"input": x, "dense": d1, "dense_1": d2, "output": out}


def run_measured(*args: str, env: dict[str, str] | None = None,
                 timeout: float = 120, code: str | None = None) -> tuple[int, str, float, float]:
    """Run ``python -m kbuilder *args`` (or ``python -c code *args``) in a fresh process.

    Returns:
        ``(exit code, stdout + stderr, seconds, peak resident memory in MB)``: the peak is
        that process's own, measured by a parent that runs nothing else.
    """
    import json
    import os
    import subprocess
    import sys

    probe = (
        "import json, resource, subprocess, sys, time\n"
        "t = time.monotonic()\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "print(json.dumps([p.returncode, p.stdout + p.stderr, time.monotonic() - t,\n"
        "    resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, sys.executable,
         *(["-c", code] if code is not None else ["-m", "kbuilder"]), *args],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})},
    )
    rc, text, seconds, peak = json.loads(out.stdout)
    return rc, text, seconds, peak

"""Time from a loaded Keras model to a laid-out kbuilder graph, on a large model.

Goal (issue 3): <= 1.5 s for a model of about 800 layers (NASNetMobile, 771 layers).
The first import in a process also pays one-time costs (the layer catalog is built from
Keras, Keras objects are described for the first time), reported separately as "cold".
The median is over warm repeats on the same model.

Run: .venv/bin/python bench/import_large.py [--repeats N] [--model NAME]
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

GOAL_SECONDS = 1.5

MODELS = {
    "NASNetMobile": lambda keras: keras.applications.NASNetMobile(
        input_shape=(32, 32, 3), weights=None
    ),
    "DenseNet121": lambda keras: keras.applications.DenseNet121(
        input_shape=(32, 32, 3), weights=None
    ),
    "EfficientNetV2B0": lambda keras: keras.applications.EfficientNetV2B0(
        input_shape=(32, 32, 3), weights=None
    ),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--model", choices=sorted(MODELS), default="NASNetMobile")
    args = parser.parse_args()

    import keras

    from kbuilder.graph.keras_io import import_model

    model = MODELS[args.model](keras)
    start = time.perf_counter()
    graph, weights = import_model(model)
    cold = time.perf_counter() - start
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        graph, weights = import_model(model)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    nodes = sum(1 for _ in graph.walk())
    print(f"{args.model}: {len(model.layers)} layers -> {nodes} nodes, "
          f"{len(graph.edges)} edges, {sum(len(w) for w in weights.values())} weight arrays")
    print(f"  cold (first import in the process): {cold:.3f} s")
    print(f"  warm median of {args.repeats}: {median:.3f} s "
          f"(min {min(times):.3f}, max {max(times):.3f})")
    verdict = "meets" if median <= GOAL_SECONDS else "MISSES"
    print(f"  goal <= {GOAL_SECONDS} s: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Time to a Grad-CAM map and to one node's activations after warm-up, per backend
(issue 17; goal <= 1 s on the CNN template).

The CNN template fitted to digits is trained for one epoch on JAX (its .keras is what
every backend explains); then for each backend one worker is started, asked once to warm
up (backend import, first model load, first compile) and then asked again, timed from
sending the request to the answer — what the Results tab's Inside view waits for.
Usage: python bench/explain.py [BACKEND ...]   (default: jax tensorflow torch)
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "numpy")


def trained_model(folder: Path) -> tuple[str, dict, str]:
    from kbuilder.graph.settings import DataSettings
    from kbuilder.runtime import protocol as p
    from kbuilder.runtime.client import Worker
    from kbuilder.runtime.preflight import new_project_for_data
    from kbuilder.runtime.runner import start_run

    data = DataSettings(source="digits")
    project = new_project_for_data("cnn_classifier", data)
    import dataclasses

    training = dataclasses.replace(project.training, backend="jax", epochs=1)
    worker = Worker("jax")
    try:
        run = start_run(project, data, training, worker=worker, run_dir=folder / "run")
        result = run.wait()
    finally:
        worker.shutdown()
    assert isinstance(result, p.Finished), getattr(result, "reason", result)
    layer = next(n.name for n in project.graph.nodes if "conv" in n.name.lower())
    return result.artifacts["model"], data.to_dict(), layer


def timed(worker, request) -> float:
    from kbuilder.runtime import protocol as p
    from kbuilder.runtime.client import TrainingRun

    started = time.perf_counter()
    result = TrainingRun(worker, request).wait()
    assert not isinstance(result, p.Failed), result.reason
    return time.perf_counter() - started


def main(backends: list[str]) -> None:
    from kbuilder.runtime import protocol as p
    from kbuilder.runtime.client import Worker

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model, data, layer = trained_model(folder)
        print(f"CNN template on digits, one epoch on jax; node '{layer}'; one sample")
        print(f"{'backend':<11} {'Grad-CAM s':>11} {'activations s':>14}  (after warm-up)")
        for backend in backends:
            worker = Worker(backend)
            try:
                gradcam = p.StartExplanation("bench", model, "gradcam", str(folder / "gc"),
                                             data=data, samples=1)
                outputs = p.StartActivations("bench", layer, str(folder / "act"), model,
                                             data=data)
                timed(worker, gradcam), timed(worker, outputs)  # warm-up
                seconds = [min(timed(worker, r) for _ in range(3)) for r in (gradcam, outputs)]
            finally:
                worker.shutdown()
            print(f"{backend:<11} {seconds[0]:>11.3f} {seconds[1]:>14.3f}")


if __name__ == "__main__":
    main(sys.argv[1:] or ["jax", "tensorflow", "torch"])

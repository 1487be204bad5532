"""``kbuilder selftest --bundle``: train and export through real workers, offline.

The GUI self-test (kbuilder/ui/shell/selftest.py) checks the editor; this checks the half a
packaged app can get wrong on its own: that the bundle can start itself as a worker, that
its training backend imports and trains, and that its export runtimes (onnxruntime,
OpenVINO, the LiteRT interpreter) load and agree with Keras. It uses only what ships with
the installed packages (scikit-learn's digits), so it runs without a network.

Steps: fit the MLP template to the digits data, train one epoch in a worker on the
installed training backend, then export the trained model to ONNX, OpenVINO and LiteRT in a
TensorFlow worker with the parity check. Prints one line per step like the GUI self-test.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from kbuilder.runtime import protocol as p
from kbuilder.runtime.checklist import StepFailure, check, run_steps
from kbuilder.runtime.export_formats import FORMATS

# The formats checked, each with its own runtime; SavedModel is made on the way to two of
# them (kbuilder/runtime/export/).
SMOKE_FORMATS = ("onnx", "openvino", "litert")


def installed_backend() -> str | None:
    """The training backend a run uses by default: TensorFlow first (it also exports)."""
    for backend in ("tensorflow", "jax", "torch"):
        if importlib.util.find_spec(backend) is not None:
            return backend
    return None


class _Session:
    def __init__(self, folder: Path, backend: str):
        self.folder, self.backend = folder, backend
        self.project: Any = None
        self.model_path = ""
        self.workers: dict[str, Any] = {}

    def worker(self, backend: str) -> Any:
        from kbuilder.runtime.client import Worker

        if backend not in self.workers:
            self.workers[backend] = Worker(backend)
        return self.workers[backend]

    def new_project(self) -> str:
        from kbuilder.graph.settings import DataSettings, TrainingSettings
        from kbuilder.runtime.preflight import new_project_for_data

        training = TrainingSettings(backend=self.backend, epochs=1, batch_size=64)
        self.project = new_project_for_data("mlp_classifier", DataSettings("digits"), training)
        return f"mlp_classifier fitted to digits: {len(self.project.graph)} nodes"

    def train(self) -> str:
        from kbuilder.graph.settings import DataSettings
        from kbuilder.runtime.runner import start_run

        data = self.project.data or DataSettings()
        training = self.project.training
        run = start_run(self.project, data, training, worker=self.worker(self.backend),
                        run_dir=self.folder / "run")
        result = run.wait()
        if isinstance(result, p.Failed):
            raise StepFailure(f"training failed: {result.reason}")
        check(isinstance(result, p.Finished) and result.status == "completed",
               f"training ended with {result!r}")
        check(len(result.history.get("loss", [])) == 1, "no loss was recorded for the epoch")
        self.model_path = result.artifacts.get("model", "")
        check(Path(self.model_path).is_file(), "the trained model was not saved")
        ready = run.worker.ready
        accuracy = result.test_metrics.get("accuracy")
        return (f"1 epoch on {self.backend} (backend imported in "
                f"{ready.import_seconds:.1f} s), loss {result.history['loss'][0]:.3f}, "
                f"test accuracy {accuracy if accuracy is None else round(accuracy, 3)}")

    def export(self, format: str) -> str:
        from kbuilder.runtime.client import TrainingRun
        from kbuilder.runtime.export import export_backend

        output = self.folder / "exports" / format / f"model{FORMATS[format].suffix}"
        output.parent.mkdir(parents=True, exist_ok=True)
        worker = self.worker(export_backend(format) or self.backend)
        request = p.StartExport(f"smoke-{format}", self.model_path, format, str(output),
                                verify=True)
        result = TrainingRun(worker, request).wait()
        if isinstance(result, p.Failed):
            raise StepFailure(f"the {format} export failed: {result.reason}")
        check(isinstance(result, p.Exported) and output.exists(), "nothing was written")
        rows = [r for r in result.report if r["format"] == format]
        check(rows and all(r["verdict"] == "pass" for r in rows),
               f"the parity check did not pass: {result.report}")
        row = rows[0]
        return f"{row['runtime']}: max abs diff {row['max_abs_diff']:.1e} ≤ {row['tolerance']:.0e}"

    def close(self) -> None:
        for worker in self.workers.values():
            worker.shutdown()


def run(folder: Path, out: TextIO, backend: str | None = None) -> int:
    """Run every step in ``folder``; returns 0 if all passed, else 1."""
    backend = backend or installed_backend()
    if backend is None:
        print("[bundle] FAIL  no training backend (tensorflow, jax, torch) is installed",
              file=out)
        return 1
    session = _Session(folder, backend)
    steps: list[tuple[str, Callable[[], str]]] = [
        ("fit a template to the digits data", session.new_project),
        (f"train one epoch on {backend} in a worker", session.train),
        *[(f"export to {f} and verify", lambda f=f: session.export(f)) for f in SMOKE_FORMATS],
    ]
    try:
        passed = run_steps(steps, out, label="bundle")
    finally:
        session.close()
    return 0 if passed else 1

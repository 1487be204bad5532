"""The parity check: each export run in its own runtime on one seeded batch, compared with
Keras to a tolerance.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from kbuilder.graph.text import plural
from kbuilder.runtime.export.python_code import copy_weights, module_from_file, notebook_build_model
from kbuilder.runtime.export.report import MODEL_CODE, TRAINING_SCRIPT, WEIGHTS_FILE, ParityRow
from kbuilder.runtime.export.source import Source, keras_outputs, load_model, tensorflow_names
from kbuilder.runtime.export_formats import ExportFormat


def tolerance(spec: ExportFormat, reference: list[np.ndarray]) -> float:
    """The largest difference that passes: the format's tolerance for outputs of order 1,
    scaled with the outputs' size for larger ones (a regression target of 300 may move by
    3e-2)."""
    scale = max((float(np.max(np.abs(r))) for r in reference if r.size), default=1.0)
    return spec.tolerance * max(1.0, scale)

def check_parity(spec: ExportFormat, staged: Path, source: Source, batch: int) -> ParityRow:
    inputs, reference = source.reference(batch)
    runtime, run = RUNNERS[spec.name]
    try:
        outputs = run(staged, inputs, source)
    except Exception as exc:
        from kbuilder.graph.shapes import explain_exception

        message, _ = explain_exception(exc, [])
        return ParityRow(spec.name, runtime(), None, tolerance(spec, reference), "fail",
                         f"the export could not be run: {message}")
    return _compare(spec, runtime(), reference, outputs)


def _compare(spec: ExportFormat, runtime: str, reference: list[np.ndarray],
             outputs: list[np.ndarray]) -> ParityRow:
    limit = tolerance(spec, reference)
    if len(outputs) != len(reference):
        return ParityRow(spec.name, runtime, None, limit, "fail",
                         f"{plural(len(outputs), 'output')} instead of {len(reference)}")
    worst = 0.0
    for i, (want, got) in enumerate(zip(reference, outputs, strict=True)):
        got = np.asarray(got)
        if got.shape != want.shape:
            return ParityRow(spec.name, runtime, None, limit, "fail",
                             f"output {i} has shape {got.shape} instead of {want.shape}")
        diff = np.abs(got.astype("float64") - want.astype("float64"))
        if not np.all(np.isfinite(diff)):
            return ParityRow(spec.name, runtime, None, limit, "fail",
                             f"output {i} is not finite where Keras's is")
        worst = max(worst, float(diff.max(initial=0.0)))
    return ParityRow(spec.name, runtime, worst, limit, "pass" if worst <= limit else "fail")

def _by_name(names: list[str], inputs: list[np.ndarray], wanted: list[str]) -> dict:
    """Inputs keyed by the runtime's input names: by name when they match, else in order."""
    if sorted(wanted) == sorted(names):
        return dict(zip(names, inputs, strict=True))
    return dict(zip(wanted, inputs, strict=False))


def _numbered(outputs: dict[str, Any]) -> list[np.ndarray]:
    """``output_0``, ``output_1``, ... in number order (``output_10`` after ``output_9``)."""
    def number(key: str) -> int:
        match = re.search(r"(\d+)$", key)
        return int(match.group(1)) if match else 0

    return [np.asarray(outputs[k]) for k in sorted(outputs, key=number)]


def _run_keras(path: Path, inputs: list[np.ndarray], source: Source) -> list[np.ndarray]:
    return keras_outputs(load_model(path), inputs)


def _run_savedmodel(path: Path, inputs: list[np.ndarray], source: Source) -> list[np.ndarray]:
    import tensorflow as tf

    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    names = list(serve.structured_input_signature[1])
    feed = _by_name(tensorflow_names([t.name for t in source.model.inputs]), inputs, names)
    return _numbered({k: v.numpy() for k, v in serve(**{
        k: tf.constant(v) for k, v in feed.items()}).items()})


def _run_onnx(path: Path, inputs: list[np.ndarray], source: Source) -> list[np.ndarray]:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    feed = _by_name(tensorflow_names([t.name for t in source.model.inputs]), inputs, names)
    return [np.asarray(o) for o in session.run(None, feed)]


def _run_openvino(path: Path, inputs: list[np.ndarray], source: Source) -> list[np.ndarray]:

    # CPUs with bfloat16 units run float32 models in bfloat16 by default (~1e-3 off);
    # the check is about the file, so it runs in float32.
    compiled = _openvino_core().compile_model(str(path), "CPU",
                                              {"INFERENCE_PRECISION_HINT": "f32"})
    names = [port.get_any_name() for port in compiled.inputs]
    feed = _by_name(tensorflow_names([t.name for t in source.model.inputs]), inputs, names)
    result = compiled(feed)
    by_name = {port.get_any_name(): result[port] for port in compiled.outputs}
    if all(re.search(r"output_\d+$", k) for k in by_name):
        return _numbered(by_name)
    return [np.asarray(result[port]) for port in compiled.outputs]


@functools.cache
def _openvino_core() -> Any:
    import openvino as ov

    return ov.Core()  # loads the device plugins: once per worker


def _run_litert(path: Path, inputs: list[np.ndarray], source: Source) -> list[np.ndarray]:
    runner = _litert_interpreter(path).get_signature_runner()
    details = runner.get_input_details()
    feed = _by_name(tensorflow_names([t.name for t in source.model.inputs]), inputs,
                    list(details))
    if all(d["shape_signature"][0] == -1 for d in details.values()):
        return _numbered(runner(**feed))
    # A fixed batch size (of one): one sample at a time.
    rows = [_numbered(runner(**{k: v[i:i + 1] for k, v in feed.items()}))
            for i in range(len(inputs[0]))]
    return [np.concatenate(parts) for parts in zip(*rows, strict=True)]


def _litert_interpreter(path: Path) -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "use ai_edge_litert": not installed here
            return tf.lite.Interpreter(model_path=str(path))
    return Interpreter(model_path=str(path))


def _run_python(path: Path, inputs: list[np.ndarray], source: Source) -> list[np.ndarray]:
    compile((path / TRAINING_SCRIPT).read_text(encoding="utf-8"), TRAINING_SCRIPT, "exec")
    from kbuilder.graph.backbone_build import without_pretrained_downloads

    with without_pretrained_downloads():  # the exported weights replace ImageNet's
        model = module_from_file(path / MODEL_CODE).build_model()
    model.load_weights(path / WEIGHTS_FILE)
    return keras_outputs(model, inputs)


def _run_notebook(path: Path, inputs: list[np.ndarray], source: Source) -> list[np.ndarray]:
    from kbuilder.graph.backbone_build import without_pretrained_downloads

    with without_pretrained_downloads():
        model = notebook_build_model(path)()
    copy_weights(source.model, model)
    return keras_outputs(model, inputs)


def _version(*distributions: str) -> str:
    """The version of the first of ``distributions`` installed (TensorFlow is published as
    ``tensorflow-cpu`` on Linux and Windows, ``tensorflow`` on macOS)."""
    for distribution in distributions:
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "?"


_TENSORFLOW = ("tensorflow-cpu", "tensorflow")


def _keras_runtime() -> str:
    import keras

    return f"Keras {keras.__version__} ({keras.backend.backend()})"


def _litert_runtime() -> str:
    if importlib.util.find_spec("ai_edge_litert") is not None:
        return f"LiteRT (ai_edge_litert {_version('ai-edge-litert')})"
    return f"LiteRT (tf.lite, TensorFlow {_version(*_TENSORFLOW)})"


RUNNERS: dict[str, tuple[Callable[[], str], Callable[..., list[np.ndarray]]]] = {
    "keras": (_keras_runtime, _run_keras),
    "savedmodel": (lambda: f"TensorFlow {_version(*_TENSORFLOW)}", _run_savedmodel),
    "onnx": (lambda: f"onnxruntime {_version('onnxruntime')}", _run_onnx),
    "openvino": (lambda: f"OpenVINO {_version('openvino')} (CPU, f32)", _run_openvino),
    "litert": (_litert_runtime, _run_litert),
    "python": (lambda: _keras_runtime() + ", generated code", _run_python),
    "notebook": (lambda: _keras_runtime() + ", notebook code", _run_notebook),
}


def parity_failure(spec: ExportFormat, row: ParityRow, destination: Path) -> str:
    if row.max_abs_diff is None:
        what = f"The {spec.title} export failed the check against Keras: {row.note}."
    else:
        what = (f"The {spec.title} export does not match Keras: its outputs differ by up to "
                f"{row.max_abs_diff:.3g} (tolerance {row.tolerance:.3g}, {row.runtime}).")
    return f"{what} Nothing was written to '{destination}'."

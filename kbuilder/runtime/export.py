"""Export a saved model to a deployment format and check it against Keras (inside a worker).

Formats (``FORMATS``, in ``export_formats.py``): ``keras`` (the ``.keras`` file), ``savedmodel`` (a TensorFlow
SavedModel folder), ``onnx``, ``openvino`` (an ``.xml`` file with its ``.bin`` beside it),
``litert`` (a ``.tflite`` file), ``python`` (a folder with ``model.py`` — ``build_model()`` —,
``train.py`` and the trained weights) and ``notebook`` (a Jupyter notebook of the training
script). ``.keras`` files are backend-agnostic, so the four converted formats are made in a
TensorFlow worker whatever backend trained the model.

The converted formats are traced from ``model(x, training=False)``: Keras's own
``model.export`` traces ``model(x)``, which leaves augmentation layers such as
``RandomFlip`` active in the exported file. The trace is kept per model in the worker, so
exporting one model to several formats converts it once (SavedModel, OpenVINO and LiteRT
share one SavedModel).

Exports are atomic: everything is written into a staging folder next to the destination
and moved into place only when the export — and the parity check, when asked — succeeded.
A failed export leaves nothing new at the destination (a previous export there is kept).

The parity check loads each export in its own runtime (onnxruntime, OpenVINO, TensorFlow,
the LiteRT interpreter; Keras for ``.keras``, the generated ``build_model()`` for Python and
the notebook), runs one seeded random batch through it and through the Keras model, and
compares the largest absolute difference with a tolerance (see ``tolerance``).

Example (in a TensorFlow worker):

>>> report = export_model("trained.keras", "onnx", "out/model.onnx")  # doctest: +SKIP
>>> report.rows[0].verdict  # doctest: +SKIP
'pass'
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import importlib.metadata
import importlib.util
import os
import re
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kbuilder.graph.errors import GraphError
from kbuilder.graph.text import plural
from kbuilder.runtime import protocol as p
from kbuilder.runtime.export_formats import FILE_SUFFIXES, FORMATS, ExportFormat

# Samples in the parity check's batch, and the length used for a dimension the model leaves
# open (e.g. a sequence of any length).
VERIFY_BATCH = 4
OPEN_DIMENSION = 8
SEED = 0

# The Python export's files.
MODEL_CODE = "model.py"
TRAINING_SCRIPT = "train.py"
WEIGHTS_FILE = "model.weights.h5"

# Modules an export may need, and the package that provides each (to name in a message).
PACKAGES = {
    "tf2onnx": "tf2onnx", "onnx": "onnx", "onnxruntime": "onnxruntime", "openvino": "openvino",
    "tensorflow": "tensorflow" if sys.platform == "darwin" else "tensorflow-cpu",
    "jax2onnx": "jax2onnx",
    "litert_torch": "litert-torch", "ai_edge_litert": "ai-edge-litert",
    "nbformat": "nbformat", "h5py": "h5py",
}

# Layers with TensorFlow lookup tables, which a SavedModel must save explicitly.
_LOOKUP_LAYERS = {"StringLookup", "IntegerLookup", "TextVectorization"}

# Layers for which a failed conversion has a better way out than "choose another format".
_LAYER_ADVICE = {
    "StringLookup": "turn text into token ids before the data reaches the model",
    "TextVectorization": "turn text into token ids before the data reaches the model",
    "IntegerLookup": "map the values to indices before the data reaches the model",
    "Hashing": "hash the values before the data reaches the model",
}


class ExportError(ValueError):
    """An export that cannot be made or does not match Keras; the message says why.

    Attributes:
        layers: names of the layers the format cannot express, when that is the reason.
    """

    def __init__(self, message: str, layers: list[str] | None = None):
        super().__init__(message)
        self.layers = list(layers or [])


@dataclass(frozen=True)
class ParityRow:
    """One line of the parity table."""

    format: str
    runtime: str
    max_abs_diff: float | None
    tolerance: float
    verdict: str  # "pass" | "fail"
    note: str = ""

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"


@dataclass
class ExportReport:
    """What an export wrote and how it compared with Keras."""

    format: str
    output: str
    files: list[str]
    rows: list[ParityRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def row_dicts(self) -> list[dict[str, Any]]:
        return [p.jsonable(asdict(row)) for row in self.rows]


# ====================================================================== public API
def export_backend(format: str) -> str | None:
    """The backend an export worker for ``format`` must run; ``None``: any backend."""
    return "tensorflow" if _format(format).converted else None


def check_output(format: str, output: str | os.PathLike[str]) -> Path:
    """``output`` as a path, once it suits ``format`` and its folder can be written.

    Raises:
        ExportError: an unknown format, a wrong suffix, a missing or read-only folder.
    """
    spec = _format(format)
    path = Path(output)
    suffix = path.suffix.lower()
    if spec.suffix and suffix != spec.suffix:
        raise ExportError(f"An export to {spec.title} is written to a file ending in "
                          f"'{spec.suffix}'; received '{path}'.")
    if not spec.suffix:
        if suffix in FILE_SUFFIXES:
            raise ExportError(f"An export to {spec.title} is a folder; give a folder name "
                              f"without the file suffix '{path.suffix}' (received '{path}').")
        if path.is_file():
            raise ExportError(f"'{path}' is a file; an export to {spec.title} is a folder.")
    elif path.is_dir():
        raise ExportError(f"'{path}' is a folder; give a file name ending in '{spec.suffix}'.")
    folder = path.parent
    if not folder.is_dir():
        raise ExportError(f"The folder '{folder}' does not exist.")
    if not os.access(folder, os.W_OK):
        raise ExportError(f"The folder '{folder}' is not writable.")
    return path


def export_model(
    model_path: str | os.PathLike[str] | None,
    format: str,
    output: str | os.PathLike[str],
    verify: bool = True,
    batch: int | None = None,
    project_path: str | os.PathLike[str] | None = None,
) -> ExportReport:
    """Export a model to ``format`` at ``output``; call it inside a worker.

    Args:
        model_path: the ``.keras`` (or ``.h5``) model; ``None`` builds the model of the
            project at ``project_path`` with the project's weights.
        format: a key of ``FORMATS``.
        output: the file (or folder, for ``savedmodel`` and ``python``) to write.
        verify: run the parity check; an export that fails it is not written.
        batch: samples in the parity check's batch (default ``VERIFY_BATCH``).
        project_path: a ``.kbproj`` whose graph, data and training settings the ``python``
            and ``notebook`` exports are written from (a ``.keras`` model is imported
            otherwise).

    Returns:
        The report: the files written and, when verified, the parity table.

    Raises:
        ExportError: the export failed or differs from Keras; the message says why, names
            the layers a format cannot express and the package to install when one is
            missing. Nothing was written at ``output``.
    """
    spec = _format(format)
    destination = check_output(format, output)
    if model_path is None and project_path is None:
        raise ExportError("Give a model file or a project to export.")
    source = _Source.load(model_path, project_path)
    report = ExportReport(format, str(destination), [])
    with _staging(destination) as stage:
        staged = stage / destination.name
        try:
            files = _EXPORTERS[spec.name](source, staged, report)
        except ExportError:
            raise
        except GraphError as exc:  # code generation and import explain themselves
            raise ExportError(f"The export to {spec.title} failed: {exc}") from exc
        except Exception as exc:
            raise _conversion_error(exc, spec, source) from exc
        files += _row_encoder_files(source, stage, destination, report)
        if verify:
            row = _verify(spec, staged, source, batch or VERIFY_BATCH)
            report.rows.append(row)
            if not row.passed:
                raise ExportError(_parity_failure(spec, row, destination))
        report.files = [str(f) for f in _publish(files, stage, destination)]
    return report


def _row_encoder_files(source: _Source, stage: Path, destination: Path,
                       report: ExportReport) -> list[Path]:
    """The trained model's ``row_encoder.json`` (a table in "model" encoding) written
    next to the export, with a note saying how a raw row becomes the model's inputs."""
    from kbuilder.runtime.data.row_encoder import trained_encoder

    encoder = trained_encoder(source.model_path) if source.model_path else None
    if encoder is None:
        return []
    staged = encoder.save(stage / f"{destination.stem}.row_encoder.json")
    categories = ", ".join(f"'{c['input']}' (column '{c['column']}')"
                           for c in encoder.categories) or "none"
    report.notes.append(
        f"The model takes raw table rows through {staged.name}: input "
        f"'{encoder.numeric_input}' is float32 (n, {len(encoder.feature_names)}) of the "
        f"columns {', '.join(encoder.feature_names)} in that order, in the file's units, "
        "NaN where missing (yes/no as 1/0, dates as the listed parts); each categorical "
        f"input ({categories}) is int32 (n, 1): 1 + the value's position in its "
        "'vocabulary' (a missing value is '(missing)'), 0 for a value not in it. Filling, "
        "scaling and one-hot encoding happen inside the model. In Python: "
        "kbuilder.runtime.data.row_encoder.encode_file(RowEncoder.load(path), 'rows.csv').")
    return [staged]


def run_export(request: p.StartExport) -> p.Exported:
    """The worker's handling of a ``StartExport`` request."""
    report = export_model(request.model_path, request.format, request.output,
                          request.verify, project_path=request.project_path)
    return p.Exported(request.run_id, request.format, report.output, report.files,
                      report.row_dicts(), report.notes)


def sample_inputs(model: Any, batch: int = VERIFY_BATCH, seed: int = SEED) -> list[np.ndarray]:
    """A seeded random batch for every input of ``model``, in ``model.inputs`` order.

    Floats are standard normal; integers are valid ids for the model's embeddings (from 1,
    so masked models see no all-padding rows); strings come from the vocabulary of the
    model's lookup layers.
    """
    rng = np.random.default_rng(seed)
    id_limit = _id_limit(model)
    words = _vocabulary(model)
    arrays = []
    for tensor in model.inputs:
        shape = (batch, *(OPEN_DIMENSION if d is None else d for d in tensor.shape[1:]))
        dtype = str(tensor.dtype)
        if dtype == "string":
            arrays.append(rng.choice(np.array(words), size=shape))
        elif dtype == "bool":
            arrays.append(rng.random(shape) < 0.5)
        elif "int" in dtype:
            low = 1 if id_limit > 1 else 0
            arrays.append(rng.integers(low, id_limit, size=shape).astype(dtype))
        else:
            arrays.append(rng.standard_normal(shape).astype(dtype))
    return arrays


def tolerance(spec: ExportFormat, reference: list[np.ndarray]) -> float:
    """The largest difference that passes: the format's tolerance for outputs of order 1,
    scaled with the outputs' size for larger ones (a regression target of 300 may move by
    3e-2)."""
    scale = max((float(np.max(np.abs(r))) for r in reference if r.size), default=1.0)
    return spec.tolerance * max(1.0, scale)


# ====================================================================== the source model
class _Source:
    """The model to export, loaded once per worker and kept for the next export of it."""

    _cache: dict[tuple, _Source] = {}

    def __init__(self, model: Any, model_path: Path | None, project_path: Path | None):
        self.model = model
        self.model_path = model_path
        self.project_path = project_path
        self._traces: dict[int | None, _Trace] = {}
        self._references: dict[int, tuple[list[np.ndarray], list[np.ndarray]]] = {}
        self._project: Any = None

    @classmethod
    def load(cls, model_path: Any, project_path: Any) -> _Source:
        model_path = Path(model_path) if model_path else None
        project_path = Path(project_path) if project_path else None
        key = (_file_key(model_path), _file_key(project_path))
        cached = cls._cache.get(key)
        if cached is not None:
            return cached
        model = _load_model(model_path) if model_path else _build_project_model(project_path)
        _constant_statistics(model)
        for old in cls._cache.values():
            old.close()
        cls._cache = {key: cls(model, model_path, project_path)}
        return cls._cache[key]

    def trace(self, batch: int | None = None) -> _Trace:
        """The TensorFlow trace of the model with a fixed batch size, or any (``None``)."""
        if batch not in self._traces:
            self._traces[batch] = _Trace(self.model, batch)
        return self._traces[batch]

    def reference(self, batch: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The parity check's inputs and the Keras model's outputs for them."""
        if batch not in self._references:
            inputs = sample_inputs(self.model, batch)
            self._references[batch] = inputs, _keras_outputs(self.model, inputs)
        return self._references[batch]

    def project(self) -> Any:
        """The project the Python and notebook exports are written from."""
        if self._project is None:
            if self.project_path is not None:
                from kbuilder.graph.project import load_project

                self._project = load_project(self.project_path)
            else:
                from kbuilder.graph.keras_import import import_file

                assert self.model_path is not None
                self._project = import_file(self.model_path)
        return self._project

    def close(self) -> None:
        for trace in self._traces.values():
            trace.close()
        self._traces.clear()


def _constant_statistics(model: Any) -> None:
    """Hold each ``Normalization``'s mean and variance as NumPy arrays.

    Keras keeps them as eager tensors derived from the layer's weights; a trace captures
    such tensors as extra inputs, which ONNX's converter then expects to be fed (the export
    fails its check: "Required inputs ... Sub/y:0 are missing"). NumPy arrays become
    constants of the traced graph instead. Only the working copies change: the weights,
    and so the saved model, stay as they are.
    """
    import keras

    for layer in model._flatten_layers(include_self=False, recursive=True):
        if type(layer).__name__ == "Normalization" and getattr(layer, "mean", None) is not None:
            layer.mean = keras.ops.convert_to_numpy(layer.mean)
            layer.variance = keras.ops.convert_to_numpy(layer.variance)


def _file_key(path: Path | None) -> tuple:
    if path is None:
        return ()
    try:
        stat = path.stat()
    except OSError as exc:
        raise ExportError(f"The file '{path}' cannot be read: {exc.strerror or exc}.") from None
    return (str(path.resolve()), stat.st_mtime_ns, stat.st_size)


def _load_model(path: Path) -> Any:
    from kbuilder.graph.keras_import import SAFE_MODE_REMEDY, ModelImportError, open_model_file

    if not path.is_file():
        raise ExportError(f"The model file '{path}' does not exist.")
    try:
        # A model file is data: code inside it (Lambda) is refused, never trusted here.
        return open_model_file(path, remedy=SAFE_MODE_REMEDY)
    except ModelImportError as exc:
        raise ExportError(str(exc)) from exc


def _build_project_model(path: Path | None) -> Any:
    from kbuilder.graph.build import build_model
    from kbuilder.graph.errors import GraphError
    from kbuilder.graph.project import load_project

    assert path is not None
    try:
        project = load_project(path)
        return build_model(project.graph, weights=project.weights)
    except GraphError as exc:
        raise ExportError(f"The model of '{path.name}' cannot be built: {exc}") from exc


@atexit.register
def _clear_cache() -> None:
    for source in _Source._cache.values():
        source.close()
    _Source._cache.clear()


# ====================================================================== TensorFlow trace
class _Trace:
    """``model(inputs, training=False)`` as a TensorFlow function with named inputs.

    The function takes one tensor per model input (named after it, made safe for
    TensorFlow) and returns the model's outputs as a flat list, so every runtime sees
    ``output_0``, ``output_1``, ... in ``model.outputs`` order.
    """

    def __init__(self, model: Any, batch: int | None):
        import keras
        import tensorflow as tf

        self.model, self.batch = model, batch
        self.names = _tensorflow_names([t.name for t in model.inputs])
        self.specs = [
            tf.TensorSpec((batch, *t.shape[1:]), tf.as_dtype(str(t.dtype)), name=name)
            for t, name in zip(model.inputs, self.names, strict=True)
        ]
        single = len(self.specs) == 1

        def serve(*inputs: Any) -> list[Any]:
            outputs = model(inputs[0] if single else list(inputs), training=False)
            return keras.tree.flatten(outputs)

        self.function = tf.function(serve, input_signature=self.specs, autograph=False)
        self._saved_model: Path | None = None

    def saved_model(self) -> Path:
        """A SavedModel of the trace (written once, in a temporary folder)."""
        if self._saved_model is None:
            folder = Path(tempfile.mkdtemp(prefix="kbuilder-savedmodel-")) / "model"
            with _quiet():
                if _LOOKUP_LAYERS & {type(layer).__name__ for _, layer in
                                     _all_layers(self.model)}:
                    self._write_archive(folder)
                else:
                    self._write_module(folder)
            self._saved_model = folder
        return self._saved_model

    def _write_archive(self, folder: Path) -> None:
        """Keras's ``ExportArchive``: it finds and saves the lookup tables of text layers."""
        import keras

        archive = keras.export.ExportArchive()
        archive.track(self.model)
        archive.add_endpoint("serve", self.function)
        archive.write_out(str(folder), verbose=False)

    def _write_module(self, folder: Path) -> None:
        """The function and the model's variables only: on a large model (MobileNetV2)
        ``ExportArchive``'s search for lookup tables takes twice as long as the save."""
        import tensorflow as tf

        module = tf.Module()
        module.model_variables = [v.value for v in self.model.variables]
        module.serve = self.function
        tf.saved_model.save(module, str(folder), signatures={
            "serving_default": self.function.get_concrete_function()})

    def close(self) -> None:
        if self._saved_model is not None:
            shutil.rmtree(self._saved_model.parent, ignore_errors=True)
            self._saved_model = None


def _tensorflow_names(names: list[str]) -> list[str]:
    """Input names TensorFlow accepts (letters, digits, ``_.-``), unique."""
    safe: list[str] = []
    for name in names:
        text = re.sub(r"[^A-Za-z0-9_.\-]", "_", name) or "input"
        if not text[0].isalnum():
            text = "input" + text
        candidate, n = text, 1
        while candidate in safe:
            n += 1
            candidate = f"{text}_{n}"
        safe.append(candidate)
    return safe


# ====================================================================== exporters
Exporter = Callable[[_Source, Path, ExportReport], list[Path]]


def _export_keras(source: _Source, staged: Path, report: ExportReport) -> list[Path]:
    if source.model_path is not None and source.model_path.suffix.lower() == ".keras":
        shutil.copyfile(source.model_path, staged)  # keeps the optimizer state as trained
    else:
        source.model.save(staged)
    return [staged]


def _export_savedmodel(source: _Source, staged: Path, report: ExportReport) -> list[Path]:
    if not _on_tensorflow():
        return _export_natively(source, FORMATS["savedmodel"], staged, report)
    shutil.copytree(source.trace().saved_model(), staged)
    return [staged]


def _export_onnx(source: _Source, staged: Path, report: ExportReport) -> list[Path]:
    if not _on_tensorflow():
        return _export_natively(source, FORMATS["onnx"], staged, report)
    import tf2onnx
    from keras.src.export.tf2onnx_lib import patch_tf2onnx

    trace = source.trace()
    patch_tf2onnx()  # tf2onnx still uses numpy aliases that numpy 2 removed
    with _quiet():
        tf2onnx.convert.from_function(trace.function, trace.specs, output_path=str(staged))
    _check_onnx_operators(staged, source.model)
    return [staged]


def _export_openvino(source: _Source, staged: Path, report: ExportReport) -> list[Path]:
    if not _on_tensorflow():
        return _export_natively(source, FORMATS["openvino"], staged, report)
    import openvino as ov

    # From the SavedModel rather than the traced function: OpenVINO's TensorFlow reader
    # converts the recurrent layers' loops only in the SavedModel's form.
    with _quiet():
        converted = ov.convert_model(str(source.trace().saved_model()))
        # Keep float32 weights: compressing them to float16 would cost the parity.
        ov.save_model(converted, str(staged), compress_to_fp16=False)
    return [staged.with_suffix(".bin"), staged]  # the .xml last: it names the .bin


def _export_litert(source: _Source, staged: Path, report: ExportReport) -> list[Path]:
    if not _on_tensorflow():
        return _export_natively(source, FORMATS["litert"], staged, report)
    # LiteRT's own operators need fixed shapes inside recurrent layers; with a fixed batch
    # size of one they convert without TensorFlow operators (which the plain LiteRT
    # runtime on a phone does not have).
    recurrent = _recurrent_layers(source.model)
    try:
        data = _litert_bytes(source.trace(batch=1 if recurrent else None).saved_model())
    except Exception as exc:
        if recurrent or "element_shape to be static" not in str(exc):
            raise
        recurrent = _layers_in_text(str(exc), source.model)[0] or ["of this model"]
        data = _litert_bytes(source.trace(batch=1).saved_model())
    if recurrent:
        names = ", ".join(f"'{n}'" for n in recurrent)
        report.notes.append(
            "The LiteRT model takes one sample at a time (a fixed batch size of 1): LiteRT "
            f"needs fixed shapes inside the recurrent layer{'s' if len(recurrent) > 1 else ''}"
            f" {names}.")
    staged.write_bytes(data)
    return [staged]


def _recurrent_layers(model: Any) -> list[str]:
    import keras

    recurrent = (keras.layers.RNN, keras.layers.Bidirectional)
    return [name for name, layer in _all_layers(model) if isinstance(layer, recurrent)]


def _litert_bytes(saved_model: Path) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    # LiteRT's built-in operators only: a file that needs TensorFlow operators ("Flex")
    # does not run in the LiteRT runtime of phones and microcontrollers.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.experimental_enable_resource_variables = True  # lookup tables
    with _quiet():
        return converter.convert()


def _export_natively(
    source: _Source, spec: ExportFormat, staged: Path, report: ExportReport
) -> list[Path]:
    """Keras's own exporter of this worker's backend (kbuilder uses TensorFlow workers)."""
    import keras

    source.reference(1)  # Keras's exporters want a model that has been called
    with _quiet():
        source.model.export(str(staged), format=spec.keras_format, verbose=False)
    report.notes.append(f"Converted by Keras's exporter on the {keras.backend.backend()} "
                        "backend.")
    if spec.name == "openvino":
        return [staged.with_suffix(".bin"), staged]
    return [staged]


def _export_python(source: _Source, staged: Path, report: ExportReport) -> list[Path]:
    from kbuilder.files import atomic_write
    from kbuilder.graph import codegen

    project = source.project()
    staged.mkdir()
    code = staged / MODEL_CODE
    atomic_write(code, codegen.generate_model_code(project.graph))
    # Its --predict uses the exported weights and the trained run's row encoder.
    rows = _row_encoding(source, WEIGHTS_FILE)
    atomic_write(staged / TRAINING_SCRIPT, codegen.generate_training_script(project, rows))
    # The weights are saved from the generated model itself, so `load_weights` finds every
    # layer where the generated code puts it.
    generated = _module_from_file(code).build_model()
    _copy_weights(source.model, generated)
    generated.save_weights(staged / WEIGHTS_FILE)
    report.notes.append(f"Load the trained weights with: model = build_model(); "
                        f"model.load_weights('{WEIGHTS_FILE}')")
    if rows is not None:
        report.notes.append(f"Predict on raw rows of a table file with: python "
                            f"{TRAINING_SCRIPT} --predict rows.csv -o predictions.csv (its "
                            "encode_rows turns the rows into the model's inputs).")
    return [staged]


def _export_notebook(source: _Source, staged: Path, report: ExportReport) -> list[Path]:
    from kbuilder.graph import codegen

    codegen.write_notebook(source.project(), staged, _row_encoding(source, None))
    return [staged]


def _row_encoding(source: _Source, model_path: str | None) -> Any:
    """The trained model's row encoder as generated code writes it out (``None``: the
    model has none, or there is no trained model; the code learns it from the data)."""
    from kbuilder.graph.codegen import RowEncoding
    from kbuilder.runtime.data.row_encoder import trained_encoder

    encoder = trained_encoder(source.model_path) if source.model_path else None
    if encoder is None:
        return None
    return RowEncoding.from_row_encoder(encoder.to_dict(), model_path)


_EXPORTERS: dict[str, Exporter] = {
    "keras": _export_keras,
    "savedmodel": _export_savedmodel,
    "onnx": _export_onnx,
    "openvino": _export_openvino,
    "litert": _export_litert,
    "python": _export_python,
    "notebook": _export_notebook,
}


def _on_tensorflow() -> bool:
    import keras

    return keras.backend.backend() == "tensorflow"


def _check_onnx_operators(path: Path, model: Any) -> None:
    """Refuse an ONNX file that holds operators no ONNX runtime knows.

    tf2onnx copies TensorFlow operators it cannot translate (e.g. the string ops of
    ``StringLookup``) into the file unchanged; the file is then written "successfully" but
    no runtime can open it.
    """
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    unknown = [(n.op_type, n.name) for n in _onnx_nodes(graph)
               if n.domain in ("", "ai.onnx") and not onnx.defs.has(n.op_type)]
    if unknown:
        ops = sorted({op for op, _ in unknown})
        names, classes = _layers_in_text("\n".join(name + "/" for _, name in unknown), model)
        raise _not_expressible(FORMATS["onnx"], names, classes, ops)


def _onnx_nodes(graph: Any) -> Iterator[Any]:
    for node in graph.node:
        yield node
        for attribute in node.attribute:  # the bodies of loops and conditionals
            for sub in [attribute.g, *attribute.graphs]:
                if sub is not None:
                    yield from _onnx_nodes(sub)


# ====================================================================== Python code
def _module_from_file(path: Path) -> Any:
    """Import a generated file as a fresh module (not registered in ``sys.modules``)."""
    name = f"kbuilder_export_{abs(hash((str(path), os.getpid())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _notebook_build_model(path: Path) -> Callable[[], Any]:
    """``build_model`` from a notebook: its imports and function and class definitions
    (layer classes it defines, such as FillMissing), nothing else (the other cells load
    data and train)."""
    import ast

    import nbformat

    notebook = nbformat.read(str(path), as_version=4)
    nbformat.validate(notebook)
    kept: list[ast.stmt] = []
    for cell in notebook.cells:
        if cell.cell_type == "code":
            tree = ast.parse(cell.source)
            kept += [node for node in tree.body
                     if isinstance(node, ast.Import | ast.ImportFrom | ast.FunctionDef
                                   | ast.ClassDef)]
    namespace: dict[str, Any] = {"__name__": "kbuilder_notebook_check"}
    exec(compile(ast.Module(body=kept, type_ignores=[]), str(path), "exec"), namespace)
    if "build_model" not in namespace:
        raise ExportError(f"The notebook '{path.name}' defines no build_model().")
    return namespace["build_model"]


def _layers_by_path(model: Any, prefix: str = "") -> dict[str, Any]:
    """Every layer with weights under its name path (``block/dense``), blocks opened."""
    import keras

    found: dict[str, Any] = {}
    for layer in model.layers:
        path = f"{prefix}{layer.name}"
        if isinstance(layer, keras.Model) and hasattr(layer, "layers"):
            found.update(_layers_by_path(layer, path + "/"))
        elif layer.weights:
            found[path] = layer
    return found


def _copy_weights(source: Any, target: Any) -> None:
    """Copy weights layer by layer, matched by name (the generated code keeps the names)."""
    targets = _layers_by_path(target)
    for path, layer in _layers_by_path(source).items():
        twin = targets.get(path)
        if twin is None:
            raise ExportError(f"The generated code has no layer '{path}' to take the "
                              "trained weights.")
        try:
            twin.set_weights(layer.get_weights())
            if hasattr(twin, "finalize_state"):
                # Adapted preprocessing (Normalization) derives its working values from
                # the weights here, as Keras's own loading does.
                twin.finalize_state()
        except ValueError as exc:
            raise ExportError(f"The trained weights of '{path}' do not fit the generated "
                              f"layer: {exc}") from exc


# ====================================================================== parity check
def _verify(spec: ExportFormat, staged: Path, source: _Source, batch: int) -> ParityRow:
    inputs, reference = source.reference(batch)
    runtime, run = _RUNNERS[spec.name]
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


def _keras_outputs(model: Any, inputs: list[np.ndarray]) -> list[np.ndarray]:
    import keras

    outputs = model(inputs[0] if len(inputs) == 1 else inputs, training=False)
    return [np.asarray(keras.ops.convert_to_numpy(o)) for o in keras.tree.flatten(outputs)]


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


def _run_keras(path: Path, inputs: list[np.ndarray], source: _Source) -> list[np.ndarray]:
    return _keras_outputs(_load_model(path), inputs)


def _run_savedmodel(path: Path, inputs: list[np.ndarray], source: _Source) -> list[np.ndarray]:
    import tensorflow as tf

    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    names = list(serve.structured_input_signature[1])
    feed = _by_name(_tensorflow_names([t.name for t in source.model.inputs]), inputs, names)
    return _numbered({k: v.numpy() for k, v in serve(**{
        k: tf.constant(v) for k, v in feed.items()}).items()})


def _run_onnx(path: Path, inputs: list[np.ndarray], source: _Source) -> list[np.ndarray]:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    feed = _by_name(_tensorflow_names([t.name for t in source.model.inputs]), inputs, names)
    return [np.asarray(o) for o in session.run(None, feed)]


def _run_openvino(path: Path, inputs: list[np.ndarray], source: _Source) -> list[np.ndarray]:

    # CPUs with bfloat16 units run float32 models in bfloat16 by default (~1e-3 off);
    # the check is about the file, so it runs in float32.
    compiled = _openvino_core().compile_model(str(path), "CPU",
                                              {"INFERENCE_PRECISION_HINT": "f32"})
    names = [port.get_any_name() for port in compiled.inputs]
    feed = _by_name(_tensorflow_names([t.name for t in source.model.inputs]), inputs, names)
    result = compiled(feed)
    by_name = {port.get_any_name(): result[port] for port in compiled.outputs}
    if all(re.search(r"output_\d+$", k) for k in by_name):
        return _numbered(by_name)
    return [np.asarray(result[port]) for port in compiled.outputs]


@functools.cache
def _openvino_core() -> Any:
    import openvino as ov

    return ov.Core()  # loads the device plugins: once per worker


def _run_litert(path: Path, inputs: list[np.ndarray], source: _Source) -> list[np.ndarray]:
    runner = _litert_interpreter(path).get_signature_runner()
    details = runner.get_input_details()
    feed = _by_name(_tensorflow_names([t.name for t in source.model.inputs]), inputs,
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


def _run_python(path: Path, inputs: list[np.ndarray], source: _Source) -> list[np.ndarray]:
    compile((path / TRAINING_SCRIPT).read_text(encoding="utf-8"), TRAINING_SCRIPT, "exec")
    model = _module_from_file(path / MODEL_CODE).build_model()
    model.load_weights(path / WEIGHTS_FILE)
    return _keras_outputs(model, inputs)


def _run_notebook(path: Path, inputs: list[np.ndarray], source: _Source) -> list[np.ndarray]:
    model = _notebook_build_model(path)()
    _copy_weights(source.model, model)
    return _keras_outputs(model, inputs)


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


_RUNNERS: dict[str, tuple[Callable[[], str], Callable[..., list[np.ndarray]]]] = {
    "keras": (_keras_runtime, _run_keras),
    "savedmodel": (lambda: f"TensorFlow {_version(*_TENSORFLOW)}", _run_savedmodel),
    "onnx": (lambda: f"onnxruntime {_version('onnxruntime')}", _run_onnx),
    "openvino": (lambda: f"OpenVINO {_version('openvino')} (CPU, f32)", _run_openvino),
    "litert": (_litert_runtime, _run_litert),
    "python": (lambda: _keras_runtime() + ", generated code", _run_python),
    "notebook": (lambda: _keras_runtime() + ", notebook code", _run_notebook),
}


def _parity_failure(spec: ExportFormat, row: ParityRow, destination: Path) -> str:
    if row.max_abs_diff is None:
        what = f"The {spec.title} export failed the check against Keras: {row.note}."
    else:
        what = (f"The {spec.title} export does not match Keras: its outputs differ by up to "
                f"{row.max_abs_diff:.3g} (tolerance {row.tolerance:.3g}, {row.runtime}).")
    return f"{what} Nothing was written to '{destination}'."


# ====================================================================== explanations
def _conversion_error(exc: BaseException, spec: ExportFormat, source: _Source) -> ExportError:
    """A sentence a domain expert can act on, from a converter's error."""
    package = _missing_package(exc)
    if package:
        return ExportError(f"Exporting to {spec.title} needs the Python package '{package}', "
                           f"which is not installed. Install it with: pip install {package}")
    text = str(exc)
    ops = _operators_in_text(text)
    names, classes = _layers_in_text(text, source.model)
    if not names and ops:
        names, classes = _layers_running(source, ops)
    if names or ops:
        return _not_expressible(spec, names, classes, ops)
    from kbuilder.graph.shapes import explain_exception

    message, _ = explain_exception(exc, [])
    return ExportError(f"The export to {spec.title} failed: {message}")


def _not_expressible(
    spec: ExportFormat, names: list[str], classes: list[str], ops: list[str]
) -> ExportError:
    op_text = (f": it has no equivalent for the TensorFlow operation{'s' if len(ops) > 1 else ''}"
               f" {', '.join(ops)}" if ops else "")
    if names:
        listed = ", ".join(f"'{n}' ({c})" for n, c in zip(names, classes, strict=True))
        head = (f"{spec.title} cannot express the layer{'s' if len(names) > 1 else ''} "
                f"{listed}{op_text}.")
    else:
        head = f"{spec.title} cannot express an operation of this model{op_text}."
    advice = next((_LAYER_ADVICE[c] for c in classes if c in _LAYER_ADVICE), None)
    tail = (f" Choose another format, or {advice}." if advice
            else " Choose another format, or replace the layer.")
    return ExportError(head + tail, names)


def _missing_package(exc: BaseException) -> str | None:
    for error in _chain(exc):
        if not isinstance(error, ImportError):
            continue
        module = getattr(error, "name", None) or ""
        match = re.search(r"No module named '([\w.]+)'|requires the ([\w.]+) module", str(error))
        if match:
            module = match.group(1) or match.group(2)
        top = module.split(".")[0]
        if top:
            return PACKAGES.get(top, top.replace("_", "-"))
    return None


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _operators_in_text(text: str) -> list[str]:
    """Operator names in a converter's error: ``'tf.StringLower' op``, ``No conversion
    rule found for operations: A, B``, ``No Op registered for X``, ``Conversion failed for
    Loop-15``."""
    found: list[str] = []
    patterns = [r"'tf\.(\w+)' op", r"No Op registered for (\w+)",
                r"Conversion (?:is )?failed for:? ([\w-]+)",
                r"-- (\w+) with a message"]
    for pattern in patterns:
        found += re.findall(pattern, text)
    for group in re.findall(r"No conversion rule found for operations: ([^\n]+)", text):
        found += [op.strip() for op in group.split(",")]
    cleaned = [re.sub(r"-\d+$", "", op) for op in found if op]
    return sorted(set(cleaned))


def _layers_in_text(text: str, model: Any) -> tuple[list[str], list[str]]:
    """The model's layers named by TensorFlow scopes in ``text``, with their class names.

    Inside a traced function TensorFlow numbers every scope (layer ``lstm`` runs in
    ``model_1/lstm_1/...``, layer ``dense_1`` in ``dense_1_1/``), so a segment is first
    read without its number.
    """
    layers = dict(_all_layers(model))
    names: list[str] = []
    for segment in re.findall(r"([\w.\-]+)/", text):
        for candidate in (re.sub(r"_\d+$", "", segment), segment):
            if candidate in layers:
                if candidate not in names:
                    names.append(candidate)
                break
    return names, [type(layers[n]).__name__ for n in names]


def _layers_running(source: _Source, ops: list[str]) -> tuple[list[str], list[str]]:
    """The layers whose traced TensorFlow graph holds the operations ``ops`` (for
    converters that name the operation but not where it is)."""
    if not _on_tensorflow():
        return [], []
    graph = source.trace().function.get_concrete_function().graph.as_graph_def()
    nodes = [*graph.node, *(n for f in graph.library.function for n in f.node_def)]
    wanted = set(ops)
    text = "\n".join(n.name for n in nodes if n.op in wanted)
    return _layers_in_text(text, source.model)


def _all_layers(model: Any) -> list[tuple[str, Any]]:
    """``(name, layer)`` for every layer, blocks opened; blocks themselves are left out."""
    import keras

    found = []
    for layer in getattr(model, "layers", []):
        if isinstance(layer, keras.Model):
            found += _all_layers(layer)
        elif not isinstance(layer, keras.layers.InputLayer):
            found.append((layer.name, layer))
    return found


def _id_limit(model: Any) -> int:
    limits = []
    for _, layer in _all_layers(model):
        for attribute in ("input_dim", "num_tokens"):
            value = getattr(layer, attribute, None)
            if isinstance(value, int) and value > 0:
                limits.append(value)
    return min(limits, default=2)


def _vocabulary(model: Any) -> list[str]:
    for _, layer in _all_layers(model):
        if hasattr(layer, "get_vocabulary"):
            words = [w for w in layer.get_vocabulary() if isinstance(w, str) and w]
            if words:
                return [*words[:20], "unknown-word"]
    return ["a", "b", "unknown-word"]


# ====================================================================== files
def _format(name: str) -> ExportFormat:
    spec = FORMATS.get(name)
    if spec is None:
        raise ExportError(f"Unknown export format '{name}'; choose one of "
                          f"{', '.join(FORMATS)}.")
    return spec


@contextlib.contextmanager
def _staging(destination: Path) -> Iterator[Path]:
    """A temporary folder next to ``destination`` (same file system: moves are renames),
    removed with whatever is left in it."""
    folder = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", suffix=".export",
                                   dir=destination.parent))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _publish(files: list[Path], stage: Path, destination: Path) -> list[Path]:
    """Move the staged files next to ``destination``, the entry point last; returns every
    file written (the files inside folders included)."""
    written: list[Path] = []
    for staged in files:
        final = destination.parent / staged.name
        if final.is_dir():
            # os.replace cannot replace a folder that has files: move the old one into the
            # staging folder (which is deleted afterwards), then the new one into place.
            final.rename(stage / f"previous-{final.name}")
        os.replace(staged, final)
        written += sorted(f for f in final.rglob("*") if f.is_file()) if final.is_dir() \
            else [final]
    return written


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the converters' progress output and deprecation warnings."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
        warnings.simplefilter("ignore")
        yield

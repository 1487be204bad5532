"""The model being exported: loaded once per file (or built from its project), and its
TensorFlow trace, kept per model so that several formats convert it once.
"""

from __future__ import annotations

import atexit
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from kbuilder.runtime.export.report import (
    LOOKUP_LAYERS,
    OPEN_DIMENSION,
    SEED,
    VERIFY_BATCH,
    ExportError,
)
from kbuilder.runtime.export.staging import quiet


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

class Source:
    """The model to export, loaded once per worker and kept for the next export of it."""

    _cache: dict[tuple, Source] = {}

    def __init__(self, model: Any, model_path: Path | None, project_path: Path | None):
        self.model = model
        self.model_path = model_path
        self.project_path = project_path
        self._traces: dict[int | None, _Trace] = {}
        self._references: dict[int, tuple[list[np.ndarray], list[np.ndarray]]] = {}
        self._project: Any = None

    @classmethod
    def load(cls, model_path: Any, project_path: Any) -> Source:
        model_path = Path(model_path) if model_path else None
        project_path = Path(project_path) if project_path else None
        key = (_file_key(model_path), _file_key(project_path))
        cached = cls._cache.get(key)
        if cached is not None:
            return cached
        model = load_model(model_path) if model_path else _build_project_model(project_path)
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
            self._references[batch] = inputs, keras_outputs(self.model, inputs)
        return self._references[batch]

    def project(self) -> Any:
        """The project the Python and notebook exports are written from."""
        if self._project is None:
            if self.project_path is not None:
                from kbuilder.graph.project import load_project

                self._project = load_project(self.project_path)
            else:
                from kbuilder.graph.keras_io import import_file

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


def load_model(path: Path) -> Any:
    from kbuilder.graph.keras_io import SAFE_MODE_REMEDY, ModelImportError, open_model_file

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
    for source in Source._cache.values():
        source.close()
    Source._cache.clear()


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
        self.names = tensorflow_names([t.name for t in model.inputs])
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
            with quiet():
                if LOOKUP_LAYERS & {type(layer).__name__ for _, layer in
                                     all_layers(self.model)}:
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


def tensorflow_names(names: list[str]) -> list[str]:
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

def on_tensorflow() -> bool:
    import keras

    return keras.backend.backend() == "tensorflow"

def keras_outputs(model: Any, inputs: list[np.ndarray]) -> list[np.ndarray]:
    import keras

    outputs = model(inputs[0] if len(inputs) == 1 else inputs, training=False)
    return [np.asarray(keras.ops.convert_to_numpy(o)) for o in keras.tree.flatten(outputs)]

def all_layers(model: Any) -> list[tuple[str, Any]]:
    """``(name, layer)`` for every layer, blocks opened; blocks themselves are left out."""
    import keras

    found = []
    for layer in getattr(model, "layers", []):
        if isinstance(layer, keras.Model):
            found += all_layers(layer)
        elif not isinstance(layer, keras.layers.InputLayer):
            found.append((layer.name, layer))
    return found


def _id_limit(model: Any) -> int:
    limits = []
    for _, layer in all_layers(model):
        for attribute in ("input_dim", "num_tokens"):
            value = getattr(layer, attribute, None)
            if isinstance(value, int) and value > 0:
                limits.append(value)
    return min(limits, default=2)


def _vocabulary(model: Any) -> list[str]:
    for _, layer in all_layers(model):
        if hasattr(layer, "get_vocabulary"):
            words = [w for w in layer.get_vocabulary() if isinstance(w, str) and w]
            if words:
                return [*words[:20], "unknown-word"]
    return ["a", "b", "unknown-word"]

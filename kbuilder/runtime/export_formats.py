"""The export formats: what each is called, what file it writes, what checks it.

Plain records, no numpy or keras, so that ``kbuilder --help``, the CLI's argument parser
and the window's Export dialog list the formats without importing the exporter
(``runtime/export/``, which does the work inside a worker).
"""

from __future__ import annotations

from dataclasses import dataclass

# Converted float32 graphs differ from Keras only by the order of floating-point operations
# (fused kernels, other accumulation orders): ~1e-7 on the templates. 1e-4 leaves headroom
# for deep models while any real conversion error (a wrong weight, a dropped layer, an
# active augmentation layer) shows as 1e-2 or more. Formats that run Keras itself on the
# same backend must agree to float32 rounding.
CONVERTED_TOLERANCE = 1e-4
SAME_ENGINE_TOLERANCE = 1e-6


@dataclass(frozen=True)
class ExportFormat:
    """One export format.

    Args:
        name: the ``--format`` value.
        title: the name users know it by.
        suffix: the output's file suffix; ``""`` when the output is a folder.
        runtime: what the parity check runs the export with.
        converted: made by converting the TensorFlow graph (needs the TensorFlow backend).
        keras_format: ``model.export(format=...)`` for the other backends' own exporters.
    """

    name: str
    title: str
    suffix: str
    runtime: str
    converted: bool = False
    keras_format: str | None = None

    @property
    def tolerance(self) -> float:
        return CONVERTED_TOLERANCE if self.converted else SAME_ENGINE_TOLERANCE


FORMATS: dict[str, ExportFormat] = {
    f.name: f
    for f in (
        ExportFormat("keras", "Keras", ".keras", "Keras"),
        ExportFormat("savedmodel", "TensorFlow SavedModel", "", "TensorFlow", True,
                     "tf_saved_model"),
        ExportFormat("onnx", "ONNX", ".onnx", "onnxruntime", True, "onnx"),
        ExportFormat("openvino", "OpenVINO IR", ".xml", "OpenVINO", True, "openvino"),
        ExportFormat("litert", "LiteRT", ".tflite", "LiteRT interpreter", True, "litert"),
        ExportFormat("python", "Python code", "", "Keras (generated build_model)"),
        ExportFormat("notebook", "Jupyter notebook", ".ipynb",
                     "Keras (the notebook's build_model)"),
    )
}

# File suffixes that say "this is a file", so a folder output must not carry one.
FILE_SUFFIXES = {f.suffix for f in FORMATS.values() if f.suffix} | {
    ".h5", ".bin", ".py", ".zip", ".pb", ".json", ".kbproj", ".npz", ".npy", ".csv",
}

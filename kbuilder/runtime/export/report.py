"""The export's numbers, its error and its report (one parity row per format).
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from kbuilder.runtime import protocol as p

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
LOOKUP_LAYERS = {"StringLookup", "IntegerLookup", "TextVectorization"}

# Layers for which a failed conversion has a better way out than "choose another format".
LAYER_ADVICE = {
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

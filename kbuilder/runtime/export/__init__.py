"""Export a saved model to a deployment format and check it against Keras (inside a worker).

Formats (``FORMATS``, in ``runtime/export_formats.py``, which stays outside this package so
that the CLI's parser and the Export dialog list them without importing numpy): ``keras``
(the ``.keras`` file), ``savedmodel`` (a TensorFlow SavedModel folder), ``onnx``,
``openvino`` (an ``.xml`` file with its ``.bin`` beside it), ``litert`` (a ``.tflite``
file), ``python`` (a folder with ``model.py`` — ``build_model()`` —, ``train.py`` and the
trained weights) and ``notebook`` (a Jupyter notebook of the training script). ``.keras``
files are backend-agnostic, so the four converted formats are made in a TensorFlow worker
whatever backend trained the model.

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

The rooms: ``report`` (numbers, ``ExportError``, ``ExportReport``), ``exporter`` (the
steps of one export), ``source`` (the model loaded once, its TensorFlow trace, sample
inputs), ``converters`` (one per format family), ``python_code`` (running generated code),
``parity`` (the check), ``explanations`` (why a conversion failed, in words) and
``staging`` (atomic publishing). This module keeps the public API in one place.

Example (in a TensorFlow worker):

>>> report = export_model("trained.keras", "onnx", "out/model.onnx")  # doctest: +SKIP
>>> report.rows[0].verdict  # doctest: +SKIP
'pass'
"""

from kbuilder.runtime.export.exporter import (
    check_output,
    export_backend,
    export_model,
    run_export,
)
from kbuilder.runtime.export.parity import tolerance
from kbuilder.runtime.export.report import (
    MODEL_CODE,
    OPEN_DIMENSION,
    PACKAGES,
    SEED,
    TRAINING_SCRIPT,
    VERIFY_BATCH,
    WEIGHTS_FILE,
    ExportError,
    ExportReport,
    ParityRow,
)
from kbuilder.runtime.export.source import sample_inputs
from kbuilder.runtime.export_formats import FORMATS, ExportFormat

__all__ = [
    "FORMATS",
    "MODEL_CODE",
    "OPEN_DIMENSION",
    "PACKAGES",
    "SEED",
    "TRAINING_SCRIPT",
    "VERIFY_BATCH",
    "WEIGHTS_FILE",
    "ExportError",
    "ExportFormat",
    "ExportReport",
    "ParityRow",
    "check_output",
    "export_backend",
    "export_model",
    "run_export",
    "sample_inputs",
    "tolerance",
]

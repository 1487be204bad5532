"""Pre-flight checks: does the data fit the model and the training settings?

``check(graph, dataset, training)`` runs before training and returns ``Finding``s: each
names the node (and, for tabular data, the column) concerned, says in plain words what
does not fit, and, where one exists, carries a one-click ``fix`` the GUI can apply, a typed
record with its label (``findings``): ``SetLoss``, ``SetMetrics``, ``SetParam``,
``AddRescaling``, ``AddNormalization`` (then adapted to the data), ``AddResizing``,
``AddGreyToRgb`` (a Concatenate of the channel x3), ``AddPreprocessing`` (a pretrained
family's own, ``adapters``), ``CallInInferenceMode`` (a frozen block called with
training=False), ``SetValidationSplit``, ``SetBatchSize`` and ``ApplyAll`` (several, in
order).

``apply_fix`` (``fixes``) turns a fix into an undoable graph command and new settings.
``fit_template_to_data`` (``fit``) adapts a template to a dataset (Input shape, output units
and activation) and picks the loss and metrics; ``new_project_for_data`` makes a project of
it, for ``kbuilder new --template NAME --data SPEC`` and the GUI's "use this data".
The checks themselves are in ``checks`` (the entry point, adaptable layers, training
settings), ``inputs``, ``outputs`` and ``freezing`` (frozen blocks, fine-tuning settings);
the names and thresholds they share in ``rules``; pretrained families' input adapters in
``adapters``.

No Qt; Keras only through ``ShapeInference``.
"""

from kbuilder.runtime.preflight.checks import check
from kbuilder.runtime.preflight.findings import (
    AddGreyToRgb,
    AddNormalization,
    AddPreprocessing,
    AddRescaling,
    AddResizing,
    ApplyAll,
    CallInInferenceMode,
    Finding,
    FitError,
    Fix,
    SetBatchSize,
    SetLoss,
    SetMetrics,
    SetParam,
    SetValidationSplit,
    Severity,
    errors,
)
from kbuilder.runtime.preflight.fit import (
    DataFit,
    fit_template_to_data,
    model_encoding_for,
    new_project_for_data,
)
from kbuilder.runtime.preflight.fixes import FixResult, apply_fix
from kbuilder.runtime.preflight.rules import SCALING_LAYERS, UNSCALED_LIMIT

__all__ = [
    "SCALING_LAYERS",
    "UNSCALED_LIMIT",
    "AddGreyToRgb",
    "AddNormalization",
    "AddPreprocessing",
    "AddRescaling",
    "AddResizing",
    "ApplyAll",
    "CallInInferenceMode",
    "DataFit",
    "Finding",
    "Fix",
    "FitError",
    "FixResult",
    "SetBatchSize",
    "SetLoss",
    "SetMetrics",
    "SetParam",
    "SetValidationSplit",
    "Severity",
    "apply_fix",
    "check",
    "errors",
    "fit_template_to_data",
    "model_encoding_for",
    "new_project_for_data",
]

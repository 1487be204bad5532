"""Pre-flight checks: does the data fit the model and the training settings?

``check(graph, dataset, training)`` runs before training and returns ``Finding``s: each
names the node (and, for tabular data, the column) concerned, says in plain words what
does not fit, and, where one exists, carries a one-click ``fix`` the GUI can apply:

    ``{"action": "set_loss", "loss": NAME[, "metrics": [...]]}``
    ``{"action": "set_metrics", "metrics": [...]}``
    ``{"action": "set_param", "node_id": ID, "param": NAME, "value": VALUE}``
    ``{"action": "add_rescaling", "after": INPUT_ID, "scale": S, "offset": 0.0}``
    ``{"action": "add_normalization", "after": INPUT_ID}`` (then adapted to the data)
    ``{"action": "add_resizing", "after": INPUT_ID, "height": H, "width": W}``
    ``{"action": "add_grey_to_rgb", "after": INPUT_ID}`` (a Concatenate of the channel x3)
    ``{"action": "set_validation_split", "value": F}``
    ``{"action": "set_batch_size", "value": N}``
    ``{"action": "apply_all", "fixes": [FIX, ...]}`` (in order)

``apply_fix`` turns a fix into an undoable graph command and new settings.
``fit_template_to_data`` adapts a template to a dataset (Input shape, output units and
activation) and picks the loss and metrics; ``new_project_for_data`` makes a project of it,
for ``kbuilder new --template NAME --data SPEC`` and the GUI's "use this data".

No Qt; Keras only through ``ShapeInference``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from kbuilder.graph.commands import (
    AddNodeCommand,
    Command,
    ConnectCommand,
    MacroCommand,
    MoveNodesCommand,
    SetParamCommand,
    new_layer_node,
)
from kbuilder.graph.layout import room_below
from kbuilder.graph.model import Edge, Graph, Node, new_id
from kbuilder.graph.project import Project
from kbuilder.graph.settings import DataSettings, TrainingSettings
from kbuilder.graph.shapes import ShapeInference, TensorSpec
from kbuilder.graph.templates import TEMPLATES
from kbuilder.graph.text import plural
from kbuilder.runtime.data import (
    ADAPTABLE_LAYERS,
    Dataset,
    fit_to_input,
    load_data,
    num_rows,
)
from kbuilder.runtime.data.adapt import PASS_THROUGH_LAYERS
from kbuilder.runtime.data.dataset import (
    DataError,
    Streamed,
    first_target,
    match_inputs,
    values_sample,
)

Severity = Literal["error", "warning"]

CLASSIFICATION_LOSSES = frozenset({
    "sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy",
    "categorical_hinge", "hinge", "squared_hinge", "kl_divergence",
})
CROSSENTROPY_LOSSES = frozenset({
    "sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy",
})
REGRESSION_LOSSES = frozenset({
    "mean_squared_error", "mean_absolute_error", "huber", "log_cosh", "poisson",
    "cosine_similarity",
})
CLASSIFICATION_METRICS = frozenset({
    "accuracy", "sparse_categorical_accuracy", "categorical_accuracy", "binary_accuracy",
    "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy", "auc", "precision",
    "recall",
})
# Values above this on an image-like input mean raw pixels (0..255) reach the network.
UNSCALED_LIMIT = 10.0
# Regression targets beyond this make an unscaled MSE slow to converge.
LARGE_TARGET = 100.0
# Layers that scale their input to a trainable range; one right after an input is enough.
SCALING_LAYERS = frozenset({"Rescaling", "Normalization"})
# Layers without weights that leave pixel values as they are: a scaling layer after them
# still scales the raw image.
_PIXEL_PRESERVING = frozenset({
    "Resizing", "CenterCrop", "RandomFlip", "RandomRotation", "RandomZoom",
    "RandomTranslation", "RandomCrop", "RandomContrast", "RandomBrightness", "Reshape",
    "Permute", "ZeroPadding2D", "Cropping2D", "Concatenate", "Identity",
})
# The augmentation block a fit adds on request (``augment=True``): mild, label-preserving
# changes for photographs; the nodes are ordinary, editable layers (inactive at inference).
AUGMENTATION = (
    ("RandomFlip", {"mode": "horizontal"}),
    ("RandomRotation", {"factor": 0.1}),
    ("RandomZoom", {"height_factor": 0.1}),
)


@dataclass(frozen=True)
class Finding:
    """One problem found before training.

    Attributes:
        severity: ``"error"`` (training would fail or learn nothing) or ``"warning"``.
        code: a stable identifier, e.g. ``"softmax_units"``.
        message: what is wrong and how to fix it, for a domain expert.
        node_id: the node to mark, if any.
        column: the data column concerned, if any.
        fix: a one-click fix (see the module docstring), if one exists.
    """

    severity: Severity
    code: str
    message: str
    node_id: str | None = None
    column: str | None = None
    fix: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class FitError(Exception):
    """A template that cannot be fitted to the data; the message says why."""


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]


# ============================================================================== check
def check(
    graph: Graph,
    dataset: Dataset,
    training: TrainingSettings,
    inference: ShapeInference | None = None,
) -> list[Finding]:
    """Check the data against the model and the training settings.

    Args:
        graph: the model graph.
        dataset: the loaded data.
        training: the training settings (loss, metrics, batch size, callbacks).
        inference: an up-to-date ``ShapeInference`` of ``graph``; one is made if omitted.

    Returns:
        The findings, errors first, in graph order within each severity.
    """
    own = inference is None
    inference = inference or ShapeInference(graph)
    try:
        inference.update()
        findings = _check(graph, dataset, training, inference)
    finally:
        if own:
            inference.close()
    return sorted(findings, key=lambda f: f.severity != "error")


def _check(graph: Graph, ds: Dataset, training: TrainingSettings,
           inference: ShapeInference) -> list[Finding]:
    findings = [
        Finding("error", "model_error", message, nid)
        for nid, message in inference.errors()
    ]
    findings += _check_data_values(ds, _filled_inputs(graph))
    findings += _check_inputs(graph, ds, inference)
    findings += _check_outputs(graph, ds, training, inference)
    findings += _check_adaptable(graph)
    findings += _check_training(ds, training)
    return findings


# ----------------------------------------------------------------------- data values
def _filled_inputs(graph: Graph) -> set[str | None]:
    """The names of the Inputs whose every path starts with a FillMissing layer (``None``
    too when that is the only Input): missing values in their data are filled in the
    model."""
    inputs = graph.input_nodes()
    filled: set[str | None] = set()
    for node in inputs:
        after = graph.successors(node.id)
        if after and all(graph.node(n).kind == "layer"
                         and graph.layer_owner(n).class_name in PASS_THROUGH_LAYERS
                         for n in after):
            filled.add(node.name)
            if len(inputs) == 1:
                filled.add(None)
    return filled


def _check_data_values(ds: Dataset, filled: set[str | None] = frozenset()) -> list[Finding]:
    findings = []
    for split, (x, y) in ds.splits().items():
        for name, array in _arrays(x):
            if isinstance(array, Streamed) and array.dtype.kind == "f":  # a large table
                array = values_sample(array)  # read from disk: a sample (inf was refused)
            bad = _non_finite(array[~np.isnan(array)] if name in filled
                              and array.dtype.kind == "f" else array)
            if bad is None:
                continue
            column = _column_name(ds, bad[1])
            where = f" in column '{column}'" if column else ""
            findings.append(Finding(
                "error", "nan_in_data",
                f"The {split} data{_input_label(name)} contains {bad[0]}{where}; the loss "
                "would become NaN. Fill or remove those values before training.",
                column=column,
            ))
            break
        bad = next((b for _, a in _arrays(y) if (b := _non_finite(np.asarray(a)))), None)
        if bad is not None:
            findings.append(Finding(
                "error", "nan_in_labels",
                f"The {split} labels contain {bad[0]}; remove those samples or fill them.",
            ))
    return findings


def _non_finite(array: np.ndarray) -> tuple[str, int | None] | None:
    """``("NaN"/"infinite values", first bad feature column)`` or ``None``."""
    if array.dtype.kind != "f":
        return None
    bad = ~np.isfinite(array)
    if not bad.any():
        return None
    what = "NaN (missing) values" if np.isnan(array).any() else "infinite values"
    column = None
    if array.ndim == 2:
        column = int(np.flatnonzero(bad.any(axis=0))[0])
    return what, column


def _column_name(ds: Dataset, index: int | None) -> str | None:
    if index is None or not ds.feature_names or index >= len(ds.feature_names):
        return None
    return ds.feature_names[index]


def _arrays(x: Any) -> list[tuple[str | None, np.ndarray]]:
    if isinstance(x, Mapping):
        return list(x.items())
    if isinstance(x, list | tuple):
        return [(str(i), a) for i, a in enumerate(x)]
    return [(None, x)]


def _input_label(name: str | None) -> str:
    return f" for input '{name}'" if name is not None else ""


# ---------------------------------------------------------------------------- inputs
def _input_data(graph: Graph, ds: Dataset) -> tuple[list[tuple[Node, np.ndarray]],
                                                     list[Finding]]:
    """Pairs of (Input node, its training array), or a finding saying they do not pair."""
    inputs = graph.input_nodes()
    x = _matched(inputs, ds.x_train)
    names = ", ".join(f"'{n.name}'" for n in inputs)
    if not inputs:
        return [], [Finding("error", "no_inputs", "The model has no Input; add one for the "
                            "data to enter.")]
    if isinstance(x, Mapping) and len(x) == 1 and len(inputs) == 1:
        return [(inputs[0], next(iter(x.values())))], []  # one array, one input: no doubt
    if isinstance(x, Mapping):
        pairs, findings = [], []
        for node in inputs:
            if node.name in x:
                pairs.append((node, x[node.name]))
            else:
                findings.append(Finding(
                    "error", "input_without_data",
                    f"Input '{node.name}' gets no data: the data has arrays named "
                    f"{', '.join(map(str, x))}. Rename the input or the array, or choose "
                    "the array of each Input in the Data tab.", node.id,
                ))
        names = {n.name for n in inputs}
        unused = [str(k) for k in x if k not in names]
        if unused and not findings:
            findings.append(Finding(
                "warning", "unused_arrays",
                f"The array{'s' if len(unused) > 1 else ''} {', '.join(map(repr, unused))} "
                f"of the data feed{'' if len(unused) > 1 else 's'} no Input of the model and "
                "will not be used in training.",
            ))
        return pairs, findings
    arrays = list(x) if isinstance(x, list | tuple) else [x]
    if len(arrays) != len(inputs):
        return [], [Finding(
            "error", "inputs_count",
            f"The model has {len(inputs)} inputs ({names}) but the data gives "
            f"{len(arrays)} array(s) per sample; each input needs its own array.",
        )]
    return list(zip(inputs, arrays, strict=True)), []


def _check_inputs(graph: Graph, ds: Dataset, inference: ShapeInference) -> list[Finding]:
    pairs, findings = _input_data(graph, ds)
    for node, array in pairs:
        try:
            array = values_sample(array)  # a stream (image folder): its first samples, read
        except DataError as exc:  # an unreadable image among them, named
            findings.append(Finding("error", "unreadable_data", str(exc), node.id))
            continue
        result = inference.result(node.id)
        if not result.outputs:
            continue  # the Input itself has a problem, reported as model_error
        spec = result.outputs[0]
        findings += _check_input_shape(graph, node, spec, array)
        findings += _check_input_dtype(node, spec, array)
        findings += _check_scaling(graph, node, array, ds, inference)
        findings += _check_token_range(graph, node, array)
    return findings


def _check_input_shape(graph: Graph, node: Node, spec: TensorSpec,
                       array: np.ndarray) -> list[Finding]:
    expected, have = list(spec.shape[1:]), tuple(array.shape[1:])
    try:
        fit_to_input(array[:1], expected, node.name)
    except Exception:
        return [_input_shape_finding(graph, node, expected, have)]
    if len(expected) > 1 and len(have) > 1 and not _same_layout(expected, have):
        # Same number of values but arranged differently: it runs, but maybe not as meant.
        return [Finding(
            "warning", "input_reshaped",
            f"Input '{node.name}' takes samples of shape {_shape(expected)}; the data's "
            f"{_shape(have)} will be reshaped to it. Check that this is the layout you "
            f"mean, or set the input's shape to {list(have)}.",
            node.id, fix=_set_param(node.id, "shape", list(have)),
        )]
    return []


def _input_shape_finding(graph: Graph, node: Node, expected: list[int | None],
                         have: tuple[int, ...]) -> Finding:
    """The data does not fit the Input: set the Input to the data's shape where the model
    still works with it, else adapt the data inside the model (resize, grey to RGB)."""
    start = (f"Input '{node.name}' takes samples of shape {_shape(expected)} but each sample "
             f"of the data has shape {_shape(have)}.")
    failing = _fails_with_input_shape(graph, node.id, list(have))
    if failing is None:
        return Finding("error", "input_shape", f"{start} Set the input's shape to "
                       f"{list(have)}.", node.id, fix=_set_param(node.id, "shape", list(have)))
    too_small = f" The model does not work on {_shape(have)} samples ('{failing}' fails)."
    adapter = _image_adapter(node.id, expected, have)
    if adapter is None:
        return Finding("error", "input_shape", f"{start}{too_small} Use data of shape "
                       f"{_shape(expected)}, or change the model's layers to fit the data.",
                       node.id)
    steps = [f"a Resizing layer to {expected[0]}×{expected[1]}"
             if s["action"] == "add_resizing" else "a layer repeating the grey channel "
             "three times (grey to RGB)" for s in adapter["fixes"][1:]]
    return Finding(
        "error", "input_shape",
        f"{start}{too_small} Adapt the data inside the model: set the input's shape to "
        f"{list(have)} and add {' and '.join(steps)} after it.",
        node.id, fix=adapter,
    )


def _fails_with_input_shape(graph: Graph, input_id: str, shape: list[int]) -> str | None:
    """The name of the first node that fails when ``input_id`` takes ``shape`` (``None``:
    the model works). Checked on a copy; the graph is not changed."""
    trial = graph.copy()
    try:
        SetParamCommand(trial, input_id, "shape", shape).do()
    except Exception:
        return trial.node(input_id).name
    inference = ShapeInference(trial)
    try:
        inference.update()
        problems = inference.errors()
    finally:
        inference.close()
    return trial.node(problems[0][0]).name if problems else None


def _image_adapter(input_id: str, expected: list[int | None],
                   have: tuple[int, ...]) -> dict[str, Any] | None:
    """Set the Input to the data's images, then resize them (and repeat a grey channel to
    RGB) to what the model takes; ``None`` when the data are not images of that kind."""
    images = tuple(have) + (1,) if len(have) == 2 else tuple(have)
    if len(expected) != 3 or len(images) != 3 or None in expected[:2]:
        return None
    height, width, channels = expected
    if channels not in (images[2], None) and not (images[2] == 1 and channels == 3):
        return None
    steps: list[dict[str, Any]] = [_set_param(input_id, "shape", list(images))]
    if (height, width) != images[:2]:
        steps.append({"action": "add_resizing", "after": input_id, "height": height,
                      "width": width})
    if channels == 3 and images[2] == 1:
        steps.append({"action": "add_grey_to_rgb", "after": input_id})
    return {"action": "apply_all", "fixes": steps} if len(steps) > 1 else None


def _same_layout(expected: list[int | None], have: tuple[int, ...]) -> bool:
    """Equal shapes, up to unknown sizes and a trailing channel axis of 1."""
    a, b = list(expected), list(have)
    while a and a[-1] == 1:
        a.pop()
    while b and b[-1] == 1:
        b.pop()
    return len(a) == len(b) and all(d is None or d == h for d, h in zip(a, b, strict=True))


def _check_input_dtype(node: Node, spec: TensorSpec, array: np.ndarray) -> list[Finding]:
    wanted, kind = spec.dtype, array.dtype.kind
    if wanted == "string" and kind not in "US":
        return [Finding("error", "input_dtype",
                        f"Input '{node.name}' takes text (dtype string) but the data is "
                        f"numeric ({array.dtype}). Set the input's dtype to float32.",
                        node.id, fix=_set_param(node.id, "dtype", "float32"))]
    if wanted != "string" and kind in "US":
        return [Finding("error", "input_dtype",
                        f"Input '{node.name}' takes numbers ({wanted}) but the data is "
                        "text. Set the input's dtype to string and add a TextVectorization "
                        "or StringLookup layer after it.",
                        node.id, fix=_set_param(node.id, "dtype", "string"))]
    if wanted.startswith(("int", "uint")) and kind == "f":
        sample = array[: min(len(array), 10_000)]
        fractional = sample[np.isfinite(sample) & (sample != np.round(sample))]
        if fractional.size:
            return [Finding(
                "error", "input_dtype",
                f"Input '{node.name}' takes whole numbers ({wanted}), such as token or "
                f"category ids, but the data has fractional values like "
                f"{float(fractional[0]):g}. Set the input's dtype to float32, or use data "
                "of ids.",
                node.id, fix=_set_param(node.id, "dtype", "float32"),
            )]
    return []


def _check_scaling(graph: Graph, node: Node, array: np.ndarray, ds: Dataset,
                   inference: ShapeInference) -> list[Finding]:
    if array.dtype.kind not in "fiu" or array.size == 0:
        return []
    if node.param("dtype", "float32").startswith(("int", "uint")):
        return []  # ids (tokens, categories): their size is not a scale
    if _scaled_in_model(graph, node.id, inference):
        return []
    sample = np.abs(array[: min(len(array), 10_000)].astype(np.float64))
    sample = np.where(np.isfinite(sample), sample, 0)
    peak = float(sample.max())
    if peak <= UNSCALED_LIMIT:
        return []
    if array.ndim >= 3:  # image-like: (samples, height, width[, channels]) or sequences
        scale = 1 / 255 if peak <= 255 else 1 / peak
        scale_text = "1/255" if peak <= 255 else f"1/{peak:g}"
        return [Finding(
            "warning", "unscaled_inputs",
            f"The values entering '{node.name}' go up to {peak:g}; networks train badly on "
            f"such large inputs. Add a Rescaling layer (scale {scale_text}) right after "
            f"'{node.name}' so the values are 0..1 in the model, also at prediction time.",
            node.id, fix={"action": "add_rescaling", "after": node.id, "scale": scale,
                          "offset": 0.0},
        )]
    column_peaks = sample.reshape(len(sample), -1).max(axis=0)
    worst = int(np.argmax(column_peaks))
    column = _column_name(ds, worst)
    named = f" (column '{column}' up to {column_peaks[worst]:g})" if column else ""
    return [Finding(
        "warning", "unscaled_features",
        f"The features entering '{node.name}' are not scaled{named}; large or unevenly "
        f"scaled features slow training down. Add a Normalization layer right after "
        f"'{node.name}': kbuilder adapts it to the training data.",
        node.id, column, {"action": "add_normalization", "after": node.id},
    )]


def _scaled_in_model(graph: Graph, input_id: str, inference: ShapeInference) -> bool:
    """Whether a scaling layer comes after the input before any layer with weights."""
    stack, seen = list(graph.successors(input_id)), set()
    while stack:
        nid = stack.pop()
        if nid in seen:
            continue
        seen.add(nid)
        node = graph.node(nid)
        if node.kind != "layer":
            continue
        if graph.layer_owner(nid).class_name in SCALING_LAYERS:
            return True
        if (inference.result(nid).params == 0  # reshaping, augmentation, pooling...
                or graph.layer_owner(nid).class_name in PASS_THROUGH_LAYERS):
            stack.extend(graph.successors(nid))
    return False


def _check_token_range(graph: Graph, node: Node, array: np.ndarray) -> list[Finding]:
    if array.dtype.kind not in "iuf" or array.size == 0:
        return []
    findings = []
    top = float(np.nanmax(array))
    for nid in graph.successors(node.id):
        layer = graph.layer_owner(nid)
        if layer.kind != "layer" or layer.class_name != "Embedding":
            continue
        size = layer.param("input_dim")
        if isinstance(size, int) and top >= size:
            findings.append(Finding(
                "error", "token_range",
                f"'{graph.node(nid).name}' has input_dim {size} (ids 0..{size - 1}) but the "
                f"data has ids up to {top:g}. Set input_dim to {int(top) + 1}.",
                nid, fix=_set_param(layer.id, "input_dim", int(top) + 1),
            ))
    return findings


# --------------------------------------------------------------------------- outputs
@dataclass(frozen=True)
class _Head:
    """The last layer before a model output, as far as loss checks care."""

    output_src: str  # the node feeding the output
    spec: TensorSpec  # the output tensor
    activation: str  # "softmax", "sigmoid", "linear", ... ("unknown" when not knowable)
    units_node: str | None  # the Dense node whose ``units`` set the output size
    activation_node: str | None  # the node whose ``activation`` parameter sets it


def _heads(graph: Graph, inference: ShapeInference) -> list[_Head]:
    heads = []
    for src, port in graph.output_refs():
        result = inference.result(src)
        if not result.ok or port >= len(result.outputs):
            continue
        heads.append(_describe_head(graph, src, result.outputs[port]))
    return heads


def _describe_head(graph: Graph, src: str, spec: TensorSpec) -> _Head:
    node = graph.node(src)
    owner = graph.layer_owner(src) if node.kind == "layer" else node
    kind = owner.class_name if owner.kind == "layer" else None
    if kind == "Dense":
        return _Head(src, spec, _activation(owner.param("activation")), owner.id, owner.id)
    if kind in ("Activation", "Softmax"):
        activation = "softmax" if kind == "Softmax" else _activation(owner.param("activation"))
        before = graph.predecessors(src)
        units = None
        if len(before) == 1 and graph.node(before[0]).kind == "layer":
            prev = graph.layer_owner(before[0])
            units = prev.id if prev.class_name == "Dense" else None
        return _Head(src, spec, activation, units,
                     owner.id if kind == "Activation" else None)
    return _Head(src, spec, "unknown", None, None)


def _activation(value: Any) -> str:
    if value is None:
        return "linear"
    if isinstance(value, str):
        return value
    if isinstance(value, dict):  # a serialized activation
        return str(value.get("config", {}).get("name") or value.get("class_name", "unknown"))
    return "unknown"


def _check_outputs(graph: Graph, ds: Dataset, training: TrainingSettings,
                   inference: ShapeInference) -> list[Finding]:
    heads = _heads(graph, inference)
    if not heads:
        return []
    targets = len(ds.y_train) if isinstance(ds.y_train, Mapping) else 1
    outputs = len(graph.output_refs())
    if outputs != targets:
        return [Finding(
            "error", "outputs_count",
            f"The model has {plural(outputs, 'output')} but the data has "
            f"{plural(targets, 'target')} per sample; training needs one target array per "
            "output (choose them in the Data tab).",
        )]
    head = heads[0]
    if ds.task == "regression":
        return _check_regression(graph, head, ds, training)
    return _check_classification(graph, head, ds, training)


def _check_classification(graph: Graph, head: _Head, ds: Dataset,
                          training: TrainingSettings) -> list[Finding]:
    loss, name = training.loss, graph.node(head.output_src).name
    k = ds.num_classes or 2
    fmt = ds.label_format
    units = head.spec.shape[-1] if len(head.spec.shape) > 1 else 1
    findings: list[Finding] = []
    # The loss the data and this head call for, offered as the fix of loss findings.
    right_loss = _classification_loss(fmt, k, units, head.activation)

    if loss in REGRESSION_LOSSES:
        findings.append(Finding(
            "error", "classification_with_regression_loss",
            f"The target has {k} classes but the loss '{loss}' is for predicting numbers. "
            f"Use '{right_loss}'.",
            head.output_src, fix=_set_loss(right_loss, ["accuracy"]),
        ))
    if len(head.spec.shape) > 2:
        findings.append(Finding(
            "error", "output_shape",
            f"'{name}' outputs {_shape(head.spec.shape[1:])} per sample but each sample has "
            "one label. Add a Flatten or GlobalAveragePooling layer before it.",
            head.output_src,
        ))
        return findings

    if fmt == "integer" and loss == "categorical_crossentropy":
        findings.append(Finding(
            "error", "integer_labels_categorical_loss",
            f"The labels are class numbers (0..{k - 1}) but 'categorical_crossentropy' "
            "expects one-hot rows. Use 'sparse_categorical_crossentropy', which takes class "
            "numbers (or one-hot encode the labels).",
            head.output_src, fix=_set_loss("sparse_categorical_crossentropy"),
        ))
    if fmt == "one_hot" and loss == "sparse_categorical_crossentropy":
        findings.append(Finding(
            "error", "one_hot_labels_sparse_loss",
            f"The labels are one-hot rows of {k} values but "
            "'sparse_categorical_crossentropy' expects one class number per sample. Use "
            "'categorical_crossentropy'.",
            head.output_src, fix=_set_loss("categorical_crossentropy"),
        ))

    if fmt == "multi_label" and loss != "binary_crossentropy" and loss in CROSSENTROPY_LOSSES:
        findings.append(Finding(
            "error", "multi_label_loss",
            f"Each sample can belong to several of the {k} classes (rows of 0/1 that do not "
            f"add up to 1), but '{loss}' assumes exactly one. Use 'binary_crossentropy' with "
            "a sigmoid output.",
            head.output_src, fix=_set_loss("binary_crossentropy"),
        ))
    elif loss == "binary_crossentropy" and fmt == "integer":
        findings += _check_binary(head, name, k, units)
    elif loss in ("sparse_categorical_crossentropy", "categorical_crossentropy"):
        findings += _check_categorical(ds, head, name, k, units)
    if loss in CROSSENTROPY_LOSSES and head.activation == "linear" and not (
        training.extra.get("from_logits")
    ):
        act = "sigmoid" if units == 1 or fmt == "multi_label" else "softmax"
        findings.append(Finding(
            "warning", "logits_output",
            f"'{name}' has no activation, but '{loss}' expects probabilities. Set its "
            f"activation to {act}.",
            head.output_src,
            fix=_set_param(head.activation_node, "activation", act)
            if head.activation_node else None,
        ))
    if fmt in ("one_hot", "multi_label") and units != k:
        findings.append(Finding(
            "error", "label_shape",
            f"Each label has {k} values but '{name}' outputs {units}. Set its units to {k}.",
            head.output_src,
            fix=_set_param(head.units_node, "units", k) if head.units_node else None,
        ))
    return findings


def _classification_loss(fmt: str, k: int, units: int, activation: str) -> str:
    if fmt == "multi_label" or (units == 1 and k == 2 and activation != "softmax"):
        return "binary_crossentropy"
    return "categorical_crossentropy" if fmt == "one_hot" else "sparse_categorical_crossentropy"


def _check_binary(head: _Head, name: str, k: int, units: int) -> list[Finding]:
    if k > 2:
        fixes = [_set_loss("sparse_categorical_crossentropy")]
        if head.units_node:
            fixes.append(_set_param(head.units_node, "units", k))
        if head.activation_node:
            fixes.append(_set_param(head.activation_node, "activation", "softmax"))
        return [Finding(
            "error", "binary_loss_multiclass",
            f"'binary_crossentropy' is for two classes but the labels have {k}. Use "
            f"'sparse_categorical_crossentropy' with a softmax of {k} units in '{name}'.",
            head.output_src, fix={"action": "apply_all", "fixes": fixes},
        )]
    if head.activation == "softmax" and units == 1:
        return [Finding(
            "error", "binary_loss_with_softmax",
            f"'{name}' has a softmax over a single unit, which always outputs 1: the model "
            "cannot learn. Use the sigmoid activation for two classes with one unit.",
            head.output_src,
            fix=_set_param(head.activation_node, "activation", "sigmoid")
            if head.activation_node else None,
        )]
    if units != 1:
        softmax = head.activation == "softmax"
        return [Finding(
            "error", "binary_loss_with_softmax" if softmax else "label_shape",
            f"The labels are one class number (0 or 1) per sample but '{name}' outputs "
            f"{plural(units, 'value')}{' through a softmax' if softmax else ''}. Use "
            "'sparse_categorical_crossentropy' with this output, or one unit with a sigmoid "
            "for 'binary_crossentropy'.",
            head.output_src, fix=_set_loss("sparse_categorical_crossentropy"),
        )]
    return []


def _check_categorical(ds: Dataset, head: _Head, name: str, k: int,
                       units: int) -> list[Finding]:
    findings = []
    top = max(int(ds.labels_as_ids(y).max(initial=0)) for _, y in ds.splits().values())
    units_fix = _set_param(head.units_node, "units", k) if head.units_node else None
    if head.activation == "sigmoid":
        if units == 1:
            return [Finding(
                "error", "sigmoid_with_categorical_loss",
                f"'{name}' has one sigmoid unit (for two classes) but the loss expects one "
                f"output per class. Use 'binary_crossentropy'"
                f"{'' if k == 2 else f', or a softmax of {k} units'}.",
                head.output_src,
                fix=_set_loss("binary_crossentropy") if k == 2 else _apply_all(
                    units_fix, _set_param(head.activation_node, "activation", "softmax")
                    if head.activation_node else None),
            )]
        findings.append(Finding(
            "warning", "sigmoid_multiclass",
            f"'{name}' uses a sigmoid for {k} classes; its outputs do not add up to 1 as "
            "class probabilities should. Use the softmax activation.",
            head.output_src,
            fix=_set_param(head.activation_node, "activation", "softmax")
            if head.activation_node else None,
        ))
    if units <= top or units < k:
        softmax = head.activation == "softmax"
        findings.append(Finding(
            "error", "softmax_units" if softmax else "label_range",
            f"The labels go up to {top} ({k} classes) but '{name}' has {units} "
            f"{'softmax ' if softmax else ''}units, so labels {units} and above cannot be "
            f"predicted and make the loss fail. Set its units to {k}.",
            head.output_src, fix=units_fix,
        ))
    elif units > k and head.activation == "softmax":
        findings.append(Finding(
            "warning", "softmax_units",
            f"'{name}' has {units} softmax units but the data has {k} classes; the extra "
            f"units are never right. Set its units to {k}.",
            head.output_src, fix=units_fix,
        ))
    return findings


def _check_regression(graph: Graph, head: _Head, ds: Dataset,
                      training: TrainingSettings) -> list[Finding]:
    loss, name = training.loss, graph.node(head.output_src).name
    y = first_target(ds.y_train)
    targets = 1 if y.ndim == 1 else int(y.shape[1])
    findings = []
    if loss in CLASSIFICATION_LOSSES:
        findings.append(Finding(
            "error", "regression_with_classification_loss",
            f"The target is a number to predict (regression) but the loss '{loss}' is for "
            "classes. Use 'mean_squared_error'.",
            head.output_src, fix=_set_loss("mean_squared_error", ["mean_absolute_error"]),
        ))
    classification_metrics = [m for m in training.metrics if m in CLASSIFICATION_METRICS]
    if classification_metrics:
        findings.append(Finding(
            "warning", "metric_task",
            f"The metric(s) {', '.join(classification_metrics)} measure classification; "
            "for a regression target use 'mean_absolute_error'.",
            fix={"action": "set_metrics", "metrics": [
                m for m in training.metrics if m not in CLASSIFICATION_METRICS
            ] or ["mean_absolute_error"]},
        ))
    if len(head.spec.shape) > 2:
        findings.append(Finding(
            "error", "output_shape",
            f"'{name}' outputs {_shape(head.spec.shape[1:])} per sample but each sample has "
            f"{targets} target value(s). Add a Flatten or GlobalAveragePooling layer before "
            "it.", head.output_src,
        ))
        return findings
    units = head.spec.shape[-1] if len(head.spec.shape) > 1 else 1
    if units != targets:
        findings.append(Finding(
            "error", "label_shape",
            f"Each sample has {targets} target value(s) but '{name}' outputs {units}. Set "
            f"its units to {targets}.",
            head.output_src,
            fix=_set_param(head.units_node, "units", targets) if head.units_node else None,
        ))
    findings += _check_regression_activation(head, name, ds)
    y = first_target(ds.y_train)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak > LARGE_TARGET and loss in ("mean_squared_error", "log_cosh"):
        findings.append(Finding(
            "warning", "large_targets",
            f"The target goes up to {peak:g}; with '{loss}' a network starting near 0 needs "
            "many epochs to reach such values. Train longer or with a larger learning rate, "
            "or predict the target in smaller units (e.g. thousands).",
            head.output_src,
        ))
    return findings


def _check_regression_activation(head: _Head, name: str, ds: Dataset) -> list[Finding]:
    y = first_target(ds.y_train)
    low, high = float(np.min(y)), float(np.max(y))
    reach = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0), "relu": (0.0, math.inf),
             "softplus": (0.0, math.inf)}
    fix = (_set_param(head.activation_node, "activation", "linear")
           if head.activation_node else None)
    if head.activation == "softmax":
        return [Finding(
            "error", "regression_activation",
            f"'{name}' ends in a softmax, whose outputs always add up to 1, but the target is "
            "a number to predict. Use the linear activation (none).", head.output_src,
            fix=fix,
        )]
    if head.activation in reach:
        lo, hi = reach[head.activation]
        if low < lo or high > hi:
            return [Finding(
                "error", "regression_activation",
                f"'{name}' ends in {head.activation}, which only outputs values from {lo:g} "
                f"to {hi:g}, but the target goes from {low:g} to {high:g}. Use the linear "
                "activation (none).", head.output_src, fix=fix,
            )]
    return []


# ------------------------------------------------------------------ adaptable layers
def _check_adaptable(graph: Graph) -> list[Finding]:
    findings = []
    for node in graph.nodes:
        if node.kind != "layer" or node.shared_with:
            continue
        params = ADAPTABLE_LAYERS.get(node.class_name or "")
        if params is None or any(node.param(p) is not None for p in params):
            continue
        before = graph.predecessors(node.id)
        while (len(before) == 1 and graph.node(before[0]).kind == "layer"
               and graph.node(before[0]).class_name in PASS_THROUGH_LAYERS):
            before = graph.predecessors(before[0])  # Input -> FillMissing -> this
        if len(before) == 1 and graph.node(before[0]).kind == "input":
            continue  # adapted on that input's training data before training
        findings.append(Finding(
            "warning", "not_adaptable",
            f"'{node.name}' ({node.class_name}) learns its {' and '.join(params)} from the "
            "data, but only when it comes right after an Input (or after a FillMissing "
            "right after one); here it cannot be adapted "
            "automatically. Move it after the Input or set its "
            f"{' and '.join(params)} by hand.",
            node.id,
        ))
    return findings


# -------------------------------------------------------------------------- training
def _check_training(ds: Dataset, training: TrainingSettings) -> list[Finding]:
    findings = []
    fix_validation = {"action": "set_validation_split", "value": 0.2}
    if ds.x_val is None:
        monitors = [
            f"{name} (monitors '{cfg.get('monitor', 'val_loss')}')"
            for name, cfg in (("early stopping", training.early_stopping),
                              ("reduce LR on plateau", training.reduce_lr_on_plateau),
                              ("checkpoints", training.checkpoint))
            if cfg is not None and str(cfg.get("monitor", "val_loss")).startswith("val_")
        ]
        if monitors:
            findings.append(Finding(
                "error", "monitor_without_validation",
                f"There is no validation data, but {', '.join(monitors)} needs it. Set a "
                "validation split (e.g. 0.2) or monitor the training loss.",
                fix=fix_validation,
            ))
        else:
            findings.append(Finding(
                "warning", "no_validation",
                "There is no validation data, so you cannot see whether the model "
                "generalises or only memorises the training data. Set a validation split "
                "(e.g. 0.2).",
                fix=fix_validation,
            ))
    n = num_rows(ds.x_train)
    if n < training.batch_size:
        size = 2 ** int(math.log2(max(n, 1)))
        findings.append(Finding(
            "warning", "batch_size",
            f"The batch size {training.batch_size} is larger than the {n} training samples, "
            f"so each epoch is a single step. Use a batch size of {size} or less.",
            fix={"action": "set_batch_size", "value": size},
        ))
    return findings


# --------------------------------------------------------------------------- helpers
def _shape(shape: Any) -> str:
    dims = [str(d) if d is not None else "any" for d in shape]
    return f"({', '.join(dims)}{',' if len(dims) == 1 else ''})"


def _set_param(node_id: str | None, param: str, value: Any) -> dict[str, Any]:
    return {"action": "set_param", "node_id": node_id, "param": param, "value": value}


def _set_loss(loss: str, metrics: list[str] | None = None) -> dict[str, Any]:
    fix: dict[str, Any] = {"action": "set_loss", "loss": loss}
    if metrics is not None:
        fix["metrics"] = metrics
    return fix


def _apply_all(*fixes: dict[str, Any] | None) -> dict[str, Any] | None:
    present = [f for f in fixes if f is not None]
    return {"action": "apply_all", "fixes": present} if present else None


# ====================================================================== applying fixes
@dataclass(frozen=True)
class FixResult:
    """What applying a fix means: a graph edit (not yet done) and the new settings."""

    command: Command | None
    training: TrainingSettings
    data: DataSettings | None


def apply_fix(
    fix: dict[str, Any],
    graph: Graph,
    training: TrainingSettings,
    data: DataSettings | None = None,
) -> FixResult:
    """Turn a finding's ``fix`` into a graph command and updated settings.

    The command is built but not done, so the caller pushes it on the project's history
    (one undoable edit); the settings are new records (``dataclasses.replace``).

    Args:
        fix: a ``Finding.fix``.
        graph: the graph the finding is about.
        training: the current training settings.
        data: the current data settings (needed for ``set_validation_split``).

    Raises:
        ValueError: an unknown action, or ``set_validation_split`` without data settings.
    """
    commands: list[Command] = []
    for step in fix["fixes"] if fix["action"] == "apply_all" else [fix]:
        action = step["action"]
        if action == "set_param":
            commands.append(SetParamCommand(graph, step["node_id"], step["param"],
                                            step["value"]))
        elif action == "add_rescaling":
            commands.append(_insert_after(graph, step["after"], "Rescaling",
                                          {"scale": step["scale"],
                                           "offset": step.get("offset", 0.0)}))
        elif action == "add_normalization":
            commands.append(_insert_after(graph, step["after"], "Normalization", {}))
        elif action == "add_resizing":
            commands.append(_insert_after(graph, step["after"], "Resizing",
                                          {"height": step["height"],
                                           "width": step["width"]}))
        elif action == "add_grey_to_rgb":
            # The grey channel three times: what a model made for RGB images (a
            # pretrained one above all) sees of a grey picture; no weights to learn.
            commands.append(_insert_after(graph, step["after"], "Concatenate",
                                          {"axis": -1}, times=3, name="grey_to_rgb"))
        elif action == "set_loss":
            training = dataclasses.replace(training, loss=step["loss"])
            if "metrics" in step:
                training = dataclasses.replace(training, metrics=tuple(step["metrics"]))
        elif action == "set_metrics":
            training = dataclasses.replace(training, metrics=tuple(step["metrics"]))
        elif action == "set_batch_size":
            training = dataclasses.replace(training, batch_size=int(step["value"]))
        elif action == "set_validation_split":
            if data is None:
                raise ValueError("set_validation_split needs the data settings.")
            data = dataclasses.replace(data, validation_split=float(step["value"]))
        else:
            raise ValueError(f"Unknown fix action {action!r}.")
    command: Command | None = None
    if len(commands) == 1:
        command = commands[0]
    elif commands:
        command = MacroCommand("apply fix", commands)
    return FixResult(command, training, data)


def _insert_after(graph: Graph, node_id: str, class_name: str, params: dict[str, Any],
                  times: int = 1, name: str | None = None) -> Command:
    """A command adding a layer right after ``node_id``, taking over all its connections;
    the nodes below move down to make room for it.

    Built when done (``_Deferred``), so several insertions after one node in one fix each
    see the graph as the previous one left it: the last one done sits right after it.
    ``times``: connections from ``node_id`` to the new layer (3 to repeat a channel).
    """
    source = graph.node(node_id)

    def build() -> Command:
        position, moves = room_below(graph, node_id)
        layer = new_layer_node(graph, class_name, params, position=position,
                               name=graph.unique_name(name) if name else None)
        steps: list[Command] = [MoveNodesCommand(graph, moves)] if moves else []
        steps.append(AddNodeCommand(graph, layer))
        steps += [_RewireCommand(graph, e.id, layer.id) for e in graph.edges_from(node_id)]
        steps += [_Deferred(lambda: ConnectCommand(graph, node_id, 0, layer.id))
                  for _ in range(times)]
        return MacroCommand(f"add {class_name} after {source.name}", steps)

    command = _Deferred(build)
    command.text = f"add {class_name} after {source.name}"
    return command


class _RewireCommand(Command):
    """Make a connection start at another node, keeping its place among the target port's
    connections (their order matters for Concatenate and the like)."""

    def __init__(self, graph: Graph, edge_id: str, new_src: str):
        self.graph, self.old = graph, graph.edge(edge_id)
        self.new = Edge(new_id(), new_src, 0, self.old.dst, self.old.dst_port)
        self.text = "reconnect"

    def do(self) -> None:
        index = self.graph.edge_index(self.old.id)
        self.graph._delete_edge(self.old.id)
        self.graph._insert_edge(self.new, index)

    def undo(self) -> None:
        index = self.graph.edge_index(self.new.id)
        self.graph._delete_edge(self.new.id)
        self.graph._insert_edge(self.old, index)


class _Deferred(Command):
    """A command built when it is done (its checks need the earlier steps' effects)."""

    def __init__(self, build: Any):
        self.build, self.command = build, None

    def do(self) -> None:
        # Built once: a redo must recreate the same nodes and edges (later commands in the
        # history refer to their ids).
        if self.command is None:
            self.command = self.build()
        self.command.do()

    def undo(self) -> None:
        assert self.command is not None
        self.command.undo()


# ============================================================= fitting templates to data
@dataclass(frozen=True)
class DataFit:
    """How to fit a graph to a dataset: edits plus the loss and metrics to train with.

    ``commands`` are built but not done; ``apply`` does them (as one undoable edit when a
    history is given).
    """

    commands: tuple[Command, ...]
    loss: str
    metrics: tuple[str, ...]
    notes: tuple[str, ...] = ()

    def apply(self, history: Any = None) -> None:
        if not self.commands:
            return
        macro = MacroCommand("fit model to data", self.commands)
        if history is not None:
            history.push(macro)
        else:
            macro.do()


def fit_template_to_data(graph: Graph, dataset: Dataset, *, augment: bool = False) -> DataFit:
    """Plan the edits that make ``graph`` fit ``dataset``.

    Each Input takes the sample shape of its array (by Input name when the data has one
    array per input; a flat input stays flat: its data is flattened at training time); the
    output ``Dense`` gets one unit per class with softmax (one
    sigmoid unit for two classes), or one linear unit per target for regression; the loss
    and metrics follow. For an image folder (raw 0..255 pixels) a ``Rescaling(1/255)``
    node goes right after the Input unless the model scales already, so the trained model
    and its exports take raw images.

    Args:
        graph: a graph with a Dense output layer (e.g. a template).
        dataset: the data to fit.
        augment: images only: also add an augmentation block (``AUGMENTATION``: random
            flips, rotations and zooms, active only while training).

    Returns:
        A ``DataFit``; nothing is changed until ``apply()``.

    Raises:
        FitError: the graph cannot take this data (an Input without data, no Dense output...).
    """
    commands: list[Command] = []
    notes: list[str] = []
    if dataset.row_encoder is not None:  # a table with its preprocessing in the model
        from kbuilder.runtime.table_inputs import table_input_commands

        commands += table_input_commands(graph, dataset.row_encoder, notes)
        head_commands, loss, metrics = _fit_head(graph, dataset, notes)
        return DataFit(tuple(commands + head_commands), loss, metrics, tuple(notes))
    for node, array in _input_arrays(graph, dataset):
        shape = _fitted_input_shape(graph, node, array, dataset.source)
        if shape != node.param("shape"):
            commands.append(SetParamCommand(graph, node.id, "shape", shape))
            notes.append(f"Input '{node.name}' shape set to {shape}.")
        commands += _fit_embeddings(graph, node, array, notes)
        commands += _fit_normalization(graph, node, array, notes)
        # Augmentation flips and rotates images: only for an input that keeps their layout.
        commands += _fit_image_input(graph, node, dataset, augment and len(shape) == 3, notes,
                                     array)
    head_commands, loss, metrics = _fit_head(graph, dataset, notes)
    return DataFit(tuple(commands + head_commands), loss, metrics, tuple(notes))


def _matched(inputs: list[Node], x: Any) -> Any:
    """``x`` keyed by the Inputs' names when it pairs with them by rank (a table with a
    column of image paths, see ``dataset.match_inputs``)."""
    ranks = [len(n.param("shape")) if n.param("shape") else None for n in inputs]
    return match_inputs(x, [n.name for n in inputs], ranks)


def _input_arrays(graph: Graph, ds: Dataset) -> list[tuple[Node, np.ndarray]]:
    """Each Input node with its training array: by name when the data has one array per
    input (an only array goes to an only input whatever its name), else in order."""
    inputs = graph.input_nodes()
    x = _matched(inputs, ds.x_train)
    shown = ", ".join(f"'{n.name}'" for n in inputs)
    if not inputs:
        raise FitError(f"'{graph.name}' has no Input for the data to enter.")
    if isinstance(x, Mapping):
        if len(inputs) == 1 and len(x) == 1:
            return [(inputs[0], next(iter(x.values())))]
        missing = [n.name for n in inputs if n.name not in x]
        if missing:
            raise FitError(
                f"'{graph.name}' has the inputs {shown}, but {ds.source} has no array for "
                f"{', '.join(repr(m) for m in missing)}; its arrays are "
                f"{', '.join(repr(k) for k in x)}. Name each array after its Input (or "
                "choose the array of each Input in the Data tab)."
            )
        return [(n, x[n.name]) for n in inputs]
    arrays = list(x) if isinstance(x, list | tuple) else [x]
    if len(arrays) != len(inputs):
        raise FitError(
            f"'{graph.name}' has {plural(len(inputs), 'input')} ({shown}) but {ds.source} "
            f"gives {plural(len(arrays), 'array')} per sample. Give a NumPy .npz file with "
            "one array per input, named after the Inputs, and the target array y."
        )
    return list(zip(inputs, arrays, strict=True))


def _fitted_input_shape(graph: Graph, node: Node, array: np.ndarray,
                        source: str) -> list[int | None]:
    data = list(array.shape[1:])
    current = node.param("shape") or []
    dtype = node.param("dtype", "float32")
    if dtype.startswith(("int", "uint")) and array.dtype.kind == "f":
        sample = array[:1000]
        if np.any(sample != np.round(sample)):
            raise FitError(
                f"'{graph.name}' takes whole-number ids (e.g. word tokens) in "
                f"'{node.name}', but {source} has measured values. Choose a template "
                "for numeric features, such as mlp_classifier."
            )
    if len(current) == 1 and len(data) != 1:
        return [math.prod(data)]  # an MLP on images: the runtime flattens each sample
    if len(current) == len(data) or not current:
        return data
    if len(current) == len(data) + 1:
        return data + [1]  # e.g. (28, 28) grayscale into a CNN that wants a channel axis
    raise FitError(
        f"'{graph.name}' expects samples with {plural(len(current), 'dimension')} in "
        f"'{node.name}' (like {current}), but each sample of {source} has shape {data}. "
        "Choose a template made for this kind of data (mlp_classifier for a table of features, "
        "cnn_classifier for images)."
    )


def _fit_normalization(graph: Graph, node: Node, x: np.ndarray,
                       notes: list[str]) -> list[Command]:
    """A Normalization layer right after a table's Input when its features are not
    scaled (the pre-flight's ``unscaled_features``): without it, features in physical
    units (a body mass of 4,000 g) saturate the first layer and the model learns nothing.
    ``adapt_layers`` computes its mean and variance from the training split at training
    time, so they are stored in the model and apply at prediction time too.
    """
    if x.ndim != 2 or x.dtype.kind != "f" or not len(x):
        return []  # images get Rescaling, token ids no scaling
    if node.param("dtype", "float32").startswith(("int", "uint")):
        return []
    if _scaled_in_model(graph, node.id, ShapeInference(graph)):
        return []
    sample = np.abs(np.nan_to_num(x[:10_000].astype(np.float64), nan=0.0, posinf=0.0,
                                  neginf=0.0))
    if float(sample.max()) <= UNSCALED_LIMIT:
        return []
    notes.append(f"Normalization added after '{node.name}' (the features are not scaled; "
                 "it is adapted to the training data).")
    return [_insert_after(graph, node.id, "Normalization", {})]


def _fit_embeddings(graph: Graph, node: Node, array: np.ndarray,
                    notes: list[str]) -> list[Command]:
    commands: list[Command] = []
    if isinstance(array, Streamed) or array.dtype.kind not in "iu":
        return commands  # a stream is images, not ids
    top = int(array.max(initial=0))
    for nid in graph.successors(node.id):
        layer = graph.layer_owner(nid)
        if layer.class_name == "Embedding" and (layer.param("input_dim") or 0) <= top:
            commands.append(SetParamCommand(graph, layer.id, "input_dim", top + 1))
            notes.append(f"'{layer.name}' input_dim set to {top + 1}.")
    return commands


def _fit_image_input(graph: Graph, node: Node, ds: Dataset, augment: bool,
                     notes: list[str], array: Any = None) -> list[Command]:
    """Rescaling (and, on request, augmentation) right after the Input of raw images:
    an image folder's, or a table's column of image paths (a stream of images)."""
    streamed = isinstance(array, Streamed) and len(array.shape) == 4
    if not streamed and (ds.settings is None or ds.settings.kind != "images"
                         or len(ds.x_train.shape) != 4):
        return []
    commands: list[Command] = []
    # Each insertion sits right after the Input, so the last one made comes first.
    if augment and not _has_augmentation(graph, node.id):
        for class_name, params in reversed(AUGMENTATION):
            commands.append(_insert_after(graph, node.id, class_name, dict(params)))
        notes.append("Augmentation added after the Input: "
                     f"{', '.join(name for name, _ in AUGMENTATION)} (training only).")
    if not _scales_pixels(graph, node.id):
        commands.append(_insert_after(graph, node.id, "Rescaling",
                                      {"scale": 1 / 255, "offset": 0.0}))
        notes.append(f"Rescaling (1/255) added after '{node.name}': the model takes raw "
                     "0..255 pixels, also at prediction time and in exports.")
    return commands


def _scales_pixels(graph: Graph, input_id: str) -> bool:
    """A scaling layer after the input, past only layers that keep pixel values."""
    stack, seen = list(graph.successors(input_id)), set()
    while stack:
        nid = stack.pop()
        if nid in seen or graph.node(nid).kind != "layer":
            continue
        seen.add(nid)
        name = graph.layer_owner(nid).class_name
        if name in SCALING_LAYERS:
            return True
        if name in _PIXEL_PRESERVING:
            stack.extend(graph.successors(nid))
    return False


def _has_augmentation(graph: Graph, input_id: str) -> bool:
    names = {graph.layer_owner(n).class_name for n in graph.successors(input_id)
             if graph.node(n).kind == "layer"}
    return bool(names & {name for name, _ in AUGMENTATION})


def _fit_head(graph: Graph, ds: Dataset,
              notes: list[str]) -> tuple[list[Command], str, tuple[str, ...]]:
    refs = graph.output_refs()
    if len(refs) != 1:
        raise FitError(f"'{graph.name}' has {len(refs)} outputs; automatic fitting handles "
                       "models with one output.")
    src = refs[0][0]
    node = graph.node(src)
    owner = graph.layer_owner(src) if node.kind == "layer" else node
    if owner.class_name != "Dense":
        raise FitError(
            f"'{graph.name}' does not end in a Dense layer (it ends in '{node.name}'), so it "
            "does not predict classes or numbers; fitting it to labelled data is not "
            "supported."
        )
    units, activation, loss, metrics = _head_for(ds)
    commands: list[Command] = []
    if owner.param("units") != units:
        commands.append(SetParamCommand(graph, owner.id, "units", units))
    if _activation(owner.param("activation")) != activation:
        commands.append(SetParamCommand(graph, owner.id, "activation", activation))
    notes.append(f"'{owner.name}' set to {units} unit(s) with {activation}; loss {loss}.")
    return commands, loss, metrics


def _head_for(ds: Dataset) -> tuple[int, str, str, tuple[str, ...]]:
    """(units, activation, loss, metrics) for the dataset's labels."""
    if ds.task == "regression":
        y = first_target(ds.y_train)
        targets = 1 if y.ndim == 1 else int(y.shape[1])
        return targets, "linear", "mean_squared_error", ("mean_absolute_error",)
    k = ds.num_classes or 2
    fmt = ds.label_format
    if fmt == "multi_label":
        return k, "sigmoid", "binary_crossentropy", ("binary_accuracy",)
    if fmt == "one_hot":
        return k, "softmax", "categorical_crossentropy", ("accuracy",)
    if k == 2:
        return 1, "sigmoid", "binary_crossentropy", ("accuracy",)
    return k, "softmax", "sparse_categorical_crossentropy", ("accuracy",)


def new_project_for_data(
    template_name: str,
    settings: DataSettings,
    training: TrainingSettings | None = None,
    *,
    dataset: Dataset | None = None,
    augment: bool = False,
) -> Project:
    """A new project from a template fitted to the data ``settings`` describe.

    Args:
        template_name: a name from ``kbuilder.graph.templates.TEMPLATES``.
        settings: the data settings; stored in ``project.data``.
        training: training settings to start from; the fitted loss and metrics replace
            theirs. Stored in ``project.training``.
        dataset: the data, when already loaded (else ``load_data(settings)``).
        augment: image data: add an augmentation block (see ``fit_template_to_data``).

    Returns:
        A new, unsaved ``Project`` whose history is clean.

    Raises:
        FitError: unknown template, or one that cannot take this data.
        DataError: the data cannot be loaded.
    """
    template = TEMPLATES.get(template_name)
    if template is None:
        raise FitError(f"Unknown template '{template_name}'. The templates are: "
                       f"{', '.join(TEMPLATES)}.")
    graph = template.build()
    settings = model_encoding_for(graph, settings)
    if dataset is not None and dataset.settings is not None and \
            dataset.settings.table_encoding != settings.table_encoding:
        dataset = None  # loaded for the other encoding
    dataset = dataset if dataset is not None else load_data(settings)
    fit = fit_template_to_data(graph, dataset, augment=augment)
    fit.apply()  # part of the new project, not an undoable edit
    training = dataclasses.replace(training or TrainingSettings(), loss=fit.loss,
                                   metrics=fit.metrics)
    training.validate()
    project = Project.new(graph)
    project.data = settings.to_dict()
    project.training = training.to_dict()
    return project


def model_encoding_for(graph: Graph, settings: DataSettings) -> DataSettings:
    """``settings`` with ``table_encoding="model"`` when they describe a table and
    ``graph`` takes flat features: fitting puts the table's preprocessing in the model."""
    from kbuilder.runtime.table_inputs import is_flat_table_model

    if settings.kind == "csv" and is_flat_table_model(graph):  # every table format
        return dataclasses.replace(settings, table_encoding="model")
    return settings


__all__ = [
    "DataFit",
    "Finding",
    "FitError",
    "FixResult",
    "apply_fix",
    "check",
    "errors",
    "fit_template_to_data",
    "model_encoding_for",
    "new_project_for_data",
]

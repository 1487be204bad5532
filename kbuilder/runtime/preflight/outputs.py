"""Checks of the model's outputs against the targets: units, activation, loss and
metrics for classification and regression."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from kbuilder.graph.model import Graph
from kbuilder.graph.settings import TrainingSettings
from kbuilder.graph.shapes import ShapeInference, TensorSpec
from kbuilder.graph.text import plural
from kbuilder.runtime.data import Dataset
from kbuilder.runtime.data.dataset import first_target
from kbuilder.runtime.preflight.findings import (
    ApplyAll,
    Finding,
    Fix,
    SetLoss,
    SetMetrics,
    SetParam,
    apply_all,
)
from kbuilder.runtime.preflight.rules import (
    CLASSIFICATION_LOSSES,
    CLASSIFICATION_METRICS,
    CROSSENTROPY_LOSSES,
    LARGE_TARGET,
    REGRESSION_LOSSES,
    shape_text,
)


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
        return _Head(src, spec, activation_name(owner.param("activation")), owner.id, owner.id)
    if kind in ("Activation", "Softmax"):
        activation = "softmax" if kind == "Softmax" else activation_name(owner.param("activation"))
        before = graph.predecessors(src)
        units = None
        if len(before) == 1 and graph.node(before[0]).kind == "layer":
            prev = graph.layer_owner(before[0])
            units = prev.id if prev.class_name == "Dense" else None
        return _Head(src, spec, activation, units,
                     owner.id if kind == "Activation" else None)
    return _Head(src, spec, "unknown", None, None)


def activation_name(value: Any) -> str:
    if value is None:
        return "linear"
    if isinstance(value, str):
        return value
    if isinstance(value, dict):  # a serialized activation
        return str(value.get("config", {}).get("name") or value.get("class_name", "unknown"))
    return "unknown"


def check_outputs(graph: Graph, ds: Dataset, training: TrainingSettings,
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
            head.output_src, fix=SetLoss(right_loss, ("accuracy",)),
        ))
    if len(head.spec.shape) > 2:
        findings.append(Finding(
            "error", "output_shape",
            f"'{name}' outputs {shape_text(head.spec.shape[1:])} per sample but each sample has "
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
            head.output_src, fix=SetLoss("sparse_categorical_crossentropy"),
        ))
    if fmt == "one_hot" and loss == "sparse_categorical_crossentropy":
        findings.append(Finding(
            "error", "one_hot_labels_sparse_loss",
            f"The labels are one-hot rows of {k} values but "
            "'sparse_categorical_crossentropy' expects one class number per sample. Use "
            "'categorical_crossentropy'.",
            head.output_src, fix=SetLoss("categorical_crossentropy"),
        ))

    if fmt == "multi_label" and loss != "binary_crossentropy" and loss in CROSSENTROPY_LOSSES:
        findings.append(Finding(
            "error", "multi_label_loss",
            f"Each sample can belong to several of the {k} classes (rows of 0/1 that do not "
            f"add up to 1), but '{loss}' assumes exactly one. Use 'binary_crossentropy' with "
            "a sigmoid output.",
            head.output_src, fix=SetLoss("binary_crossentropy"),
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
            fix=SetParam(head.activation_node, "activation", act)
            if head.activation_node else None,
        ))
    if fmt in ("one_hot", "multi_label") and units != k:
        findings.append(Finding(
            "error", "label_shape",
            f"Each label has {k} values but '{name}' outputs {units}. Set its units to {k}.",
            head.output_src,
            fix=SetParam(head.units_node, "units", k) if head.units_node else None,
        ))
    return findings


def _classification_loss(fmt: str, k: int, units: int, activation: str) -> str:
    if fmt == "multi_label" or (units == 1 and k == 2 and activation != "softmax"):
        return "binary_crossentropy"
    return "categorical_crossentropy" if fmt == "one_hot" else "sparse_categorical_crossentropy"


def _check_binary(head: _Head, name: str, k: int, units: int) -> list[Finding]:
    if k > 2:
        fixes: list[Fix] = [SetLoss("sparse_categorical_crossentropy")]
        if head.units_node:
            fixes.append(SetParam(head.units_node, "units", k))
        if head.activation_node:
            fixes.append(SetParam(head.activation_node, "activation", "softmax"))
        return [Finding(
            "error", "binary_loss_multiclass",
            f"'binary_crossentropy' is for two classes but the labels have {k}. Use "
            f"'sparse_categorical_crossentropy' with a softmax of {k} units in '{name}'.",
            head.output_src, fix=ApplyAll(tuple(fixes)),
        )]
    if head.activation == "softmax" and units == 1:
        return [Finding(
            "error", "binary_loss_with_softmax",
            f"'{name}' has a softmax over a single unit, which always outputs 1: the model "
            "cannot learn. Use the sigmoid activation for two classes with one unit.",
            head.output_src,
            fix=SetParam(head.activation_node, "activation", "sigmoid")
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
            head.output_src, fix=SetLoss("sparse_categorical_crossentropy"),
        )]
    return []


def _check_categorical(ds: Dataset, head: _Head, name: str, k: int,
                       units: int) -> list[Finding]:
    findings = []
    top = max(int(ds.labels_as_ids(y).max(initial=0)) for _, y in ds.splits().values())
    units_fix = SetParam(head.units_node, "units", k) if head.units_node else None
    if head.activation == "sigmoid":
        if units == 1:
            return [Finding(
                "error", "sigmoid_with_categorical_loss",
                f"'{name}' has one sigmoid unit (for two classes) but the loss expects one "
                f"output per class. Use 'binary_crossentropy'"
                f"{'' if k == 2 else f', or a softmax of {k} units'}.",
                head.output_src,
                fix=SetLoss("binary_crossentropy") if k == 2 else apply_all(
                    units_fix, SetParam(head.activation_node, "activation", "softmax")
                    if head.activation_node else None),
            )]
        findings.append(Finding(
            "warning", "sigmoid_multiclass",
            f"'{name}' uses a sigmoid for {k} classes; its outputs do not add up to 1 as "
            "class probabilities should. Use the softmax activation.",
            head.output_src,
            fix=SetParam(head.activation_node, "activation", "softmax")
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
            head.output_src, fix=SetLoss("mean_squared_error", ("mean_absolute_error",)),
        ))
    classification_metrics = [m for m in training.metrics if m in CLASSIFICATION_METRICS]
    if classification_metrics:
        findings.append(Finding(
            "warning", "metric_task",
            f"The metric(s) {', '.join(classification_metrics)} measure classification; "
            "for a regression target use 'mean_absolute_error'.",
            fix=SetMetrics(tuple(
                m for m in training.metrics if m not in CLASSIFICATION_METRICS
            ) or ("mean_absolute_error",)),
        ))
    if len(head.spec.shape) > 2:
        findings.append(Finding(
            "error", "output_shape",
            f"'{name}' outputs {shape_text(head.spec.shape[1:])} per sample but each sample has "
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
            fix=SetParam(head.units_node, "units", targets) if head.units_node else None,
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
    fix = (SetParam(head.activation_node, "activation", "linear")
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



"""``check``: the data against the model and the training settings (the input and output
checks are in ``inputs`` and ``outputs``; adaptable layers and training settings here)."""

from __future__ import annotations

import math

from kbuilder.graph.model import Graph
from kbuilder.graph.settings import TrainingSettings
from kbuilder.graph.shapes import ShapeInference
from kbuilder.runtime.data import ADAPTABLE_LAYERS, Dataset, num_rows
from kbuilder.runtime.data.adapt import PASS_THROUGH_LAYERS
from kbuilder.runtime.preflight.findings import Finding, SetBatchSize, SetValidationSplit
from kbuilder.runtime.preflight.freezing import check_freezing
from kbuilder.runtime.preflight.inputs import check_data_values, check_inputs, filled_inputs
from kbuilder.runtime.preflight.outputs import check_outputs


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
    findings += check_data_values(ds, filled_inputs(graph))
    findings += check_inputs(graph, ds, inference)
    findings += check_outputs(graph, ds, training, inference)
    findings += _check_adaptable(graph)
    findings += _check_training(ds, training)
    findings += check_freezing(graph, training)
    return findings


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
    fix_validation = SetValidationSplit(0.2)
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
            fix=SetBatchSize(size),
        ))
    return findings



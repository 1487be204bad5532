"""Checks of frozen parts and fine-tuning settings (``graph/freezing.py``)."""

from __future__ import annotations

from kbuilder.graph.freezing import frozen_blocks_in_training_mode, is_frozen
from kbuilder.graph.model import Graph
from kbuilder.graph.settings import TrainingSettings
from kbuilder.runtime.preflight.findings import CallInInferenceMode, Finding


def check_freezing(graph: Graph, training: TrainingSettings) -> list[Finding]:
    findings = [
        Finding(
            "warning", "frozen_batchnorm_training",
            f"Block '{block.name}' is frozen but is called in training mode: its "
            "BatchNormalization layers would keep moving their statistics to the new data "
            "while its weights stay fixed, which spoils a pretrained network. Call it with "
            "training=False (the keras.io transfer-learning guide's rule).",
            block.id, fix=CallInInferenceMode(block.id),
        )
        for _, block in frozen_blocks_in_training_mode(graph)
    ]
    if not training.fine_tunes:
        return findings
    names = {node.name for _, node in graph.walk() if node.kind in ("layer", "block")}
    target = training.fine_tune_from
    if target is not None and target not in names:
        findings.append(Finding(
            "error", "fine_tune_from",
            f"Fine-tuning should unfreeze from '{target}', but the model has no layer or "
            "block of that name. Choose one in the Train tab (or --fine-tune-from), or "
            "leave it empty to unfreeze everything.",
        ))
    if not any(is_frozen(owner, node.id) for owner, node in graph.walk()):
        findings.append(Finding(
            "warning", "nothing_frozen",
            f"The run has a fine-tuning phase ({training.fine_tune_epochs} epochs), but no "
            "layer or block is frozen, so the first phase already trains everything. Freeze "
            "the pretrained part (right-click it, Freeze) for the first phase.",
        ))
    return findings

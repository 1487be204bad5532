"""Applying a finding's fix: a graph command (built, not done) and new settings."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from kbuilder.graph.commands import Command, MacroCommand, SetParamCommand, insert_after
from kbuilder.graph.freezing import SetBlockOptionCommand
from kbuilder.graph.model import Graph
from kbuilder.graph.settings import DataSettings, TrainingSettings
from kbuilder.runtime.preflight.adapters import preprocessing_commands
from kbuilder.runtime.preflight.findings import (
    AddGreyToRgb,
    AddNormalization,
    AddPreprocessing,
    AddRescaling,
    AddResizing,
    ApplyAll,
    CallInInferenceMode,
    Fix,
    SetBatchSize,
    SetLoss,
    SetMetrics,
    SetParam,
    SetValidationSplit,
)


@dataclass(frozen=True)
class FixResult:
    """What applying a fix means: a graph edit (not yet done) and the new settings."""

    command: Command | None
    training: TrainingSettings
    data: DataSettings | None


def apply_fix(
    fix: Fix,
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
        data: the current data settings (needed for ``SetValidationSplit``).

    Raises:
        ValueError: an unknown kind of fix, or ``SetValidationSplit`` without data settings.
    """
    commands: list[Command] = []
    for step in fix.fixes if isinstance(fix, ApplyAll) else (fix,):
        match step:
            case SetParam():
                commands.append(SetParamCommand(graph, step.node_id, step.param, step.value))
            case AddRescaling():
                commands.append(insert_after(graph, step.after, "Rescaling",
                                             {"scale": step.scale, "offset": step.offset}))
            case AddNormalization():
                commands.append(insert_after(graph, step.after, "Normalization", {}))
            case AddResizing():
                commands.append(insert_after(graph, step.after, "Resizing",
                                             {"height": step.height, "width": step.width}))
            case AddGreyToRgb():
                # The grey channel three times: what a model made for RGB images (a
                # pretrained one above all) sees of a grey picture; no weights to learn.
                commands.append(insert_after(graph, step.after, "Concatenate",
                                             {"axis": -1}, times=3, name="grey_to_rgb"))
            case CallInInferenceMode():
                owner = next(g for g, n in graph.walk() if n.id == step.block)
                commands.append(SetBlockOptionCommand(owner, step.block, "training", False))
            case AddPreprocessing():
                commands += preprocessing_commands(graph, step.after, step.style,
                                                   step.pixel_max, step.pixel_min)
            case SetLoss():
                training = dataclasses.replace(training, loss=step.loss)
                if step.metrics is not None:
                    training = dataclasses.replace(training, metrics=tuple(step.metrics))
            case SetMetrics():
                training = dataclasses.replace(training, metrics=tuple(step.metrics))
            case SetBatchSize():
                training = dataclasses.replace(training, batch_size=int(step.value))
            case SetValidationSplit():
                if data is None:
                    raise ValueError("set_validation_split needs the data settings.")
                data = dataclasses.replace(data, validation_split=float(step.value))
            case _:
                raise ValueError(f"Unknown fix {step!r}.")
    command: Command | None = None
    if len(commands) == 1:
        command = commands[0]
    elif commands:
        command = MacroCommand("apply fix", commands)
    return FixResult(command, training, data)

"""The records of a pre-flight check: a ``Finding`` and the one-click ``Fix`` it may carry.

A fix is a typed record per kind (``SetParam``, ``SetLoss``, ``AddRescaling``...), each with
its ``label`` (the words on its button) kept here, next to its fields; ``apply_fix``
(``preflight.fixes``) turns one into a graph command and new settings. ``to_dict`` gives the
JSON form, ``{"action": "set_loss", "loss": ...}``, for printing and tests of the wire.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

Severity = Literal["error", "warning"]

FixAction = Literal[
    "set_param", "set_loss", "set_metrics", "add_rescaling", "add_normalization",
    "add_resizing", "add_grey_to_rgb", "set_validation_split", "set_batch_size", "apply_all",
    "call_in_inference_mode", "add_preprocessing",
]

# How a label names a node from its id (the window shows node names, not ids).
NodeName = Callable[[str], str]


@dataclass(frozen=True)
class Fix:
    """A one-click fix of a finding; see the subclasses for the kinds."""

    action: ClassVar[FixAction]

    def label(self, node_name: NodeName) -> str:
        """What the fix does, in a few words, for its button."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``{"action": ..., field: value, ...}`` (tuples as lists)."""
        fields = {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}
        return {"action": self.action, **fields}


@dataclass(frozen=True)
class SetParam(Fix):
    """Set one parameter of a node."""

    node_id: str | None
    param: str
    value: Any
    action: ClassVar[FixAction] = "set_param"

    def label(self, node_name: NodeName) -> str:
        return f"Set {self.param} of '{node_name(self.node_id)}' to {self.value}"


@dataclass(frozen=True)
class SetLoss(Fix):
    """Train with another loss (and, when given, other metrics)."""

    loss: str
    metrics: tuple[str, ...] | None = None
    action: ClassVar[FixAction] = "set_loss"

    def label(self, node_name: NodeName) -> str:
        return f"Use the loss {self.loss}"

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        if self.metrics is None:
            del data["metrics"]
        return data


@dataclass(frozen=True)
class SetMetrics(Fix):
    """Train with other metrics."""

    metrics: tuple[str, ...]
    action: ClassVar[FixAction] = "set_metrics"

    def label(self, node_name: NodeName) -> str:
        return f"Use the metrics {', '.join(self.metrics)}"


@dataclass(frozen=True)
class AddRescaling(Fix):
    """Add a Rescaling layer right after an input."""

    after: str
    scale: float
    offset: float = 0.0
    action: ClassVar[FixAction] = "add_rescaling"

    def label(self, node_name: NodeName) -> str:
        return f"Add Rescaling after '{node_name(self.after)}'"


@dataclass(frozen=True)
class AddNormalization(Fix):
    """Add a Normalization layer right after an input (then adapted to the data)."""

    after: str
    action: ClassVar[FixAction] = "add_normalization"

    def label(self, node_name: NodeName) -> str:
        return f"Add Normalization after '{node_name(self.after)}'"


@dataclass(frozen=True)
class AddResizing(Fix):
    """Add a Resizing layer right after an input."""

    after: str
    height: int
    width: int
    action: ClassVar[FixAction] = "add_resizing"

    def label(self, node_name: NodeName) -> str:
        return f"Resize to {self.height}×{self.width} after '{node_name(self.after)}'"


@dataclass(frozen=True)
class AddGreyToRgb(Fix):
    """Repeat a grey channel three times right after an input (a Concatenate)."""

    after: str
    action: ClassVar[FixAction] = "add_grey_to_rgb"

    def label(self, node_name: NodeName) -> str:
        return f"Grey to RGB after '{node_name(self.after)}'"


@dataclass(frozen=True)
class CallInInferenceMode(Fix):
    """Call a (frozen) block with ``training=False``, so its BatchNormalization keeps its
    moving statistics (``graph/freezing.py``)."""

    block: str
    action: ClassVar[FixAction] = "call_in_inference_mode"

    def label(self, node_name: NodeName) -> str:
        return f"Call '{node_name(self.block)}' with training=False"


@dataclass(frozen=True)
class AddPreprocessing(Fix):
    """Add a pretrained family's own input preprocessing (built-in layers) after an input:
    ``style`` is ``graph/backbones.Preprocessing`` ("tf", "torch" or "caffe")."""

    after: str
    style: str
    family: str
    pixel_max: float = 255.0  # the data's pixels run pixel_min..pixel_max
    pixel_min: float = 0.0
    assumed: str = ""  # why that range, in words (adapters.pixel_range)
    action: ClassVar[FixAction] = "add_preprocessing"

    def label(self, node_name: NodeName) -> str:
        return (f"Add {self.family}'s preprocessing after '{node_name(self.after)}' "
                f"(pixels {self.pixel_min:g}..{self.pixel_max:g})")


@dataclass(frozen=True)
class SetValidationSplit(Fix):
    """Hold out another share of the data for validation."""

    value: float
    action: ClassVar[FixAction] = "set_validation_split"

    def label(self, node_name: NodeName) -> str:
        return f"Set the validation split to {self.value:g}"


@dataclass(frozen=True)
class SetBatchSize(Fix):
    """Train with another batch size."""

    value: int
    action: ClassVar[FixAction] = "set_batch_size"

    def label(self, node_name: NodeName) -> str:
        return f"Set the batch size to {self.value}"


@dataclass(frozen=True)
class ApplyAll(Fix):
    """Several fixes, applied in order as one edit."""

    fixes: tuple[Fix, ...]
    action: ClassVar[FixAction] = "apply_all"

    def label(self, node_name: NodeName) -> str:
        return " and ".join(f.label(node_name) for f in self.fixes)

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "fixes": [f.to_dict() for f in self.fixes]}


def apply_all(*fixes: Fix | None) -> ApplyAll | None:
    """The fixes that are there, as one (``None`` when there are none)."""
    present = tuple(f for f in fixes if f is not None)
    return ApplyAll(present) if present else None


@dataclass(frozen=True)
class Finding:
    """One problem found before training.

    Attributes:
        severity: ``"error"`` (training would fail or learn nothing) or ``"warning"``.
        code: a stable identifier, e.g. ``"softmax_units"``.
        message: what is wrong and how to fix it, for a domain expert.
        node_id: the node to mark, if any.
        column: the data column concerned, if any.
        fix: a one-click fix, if one exists.
    """

    severity: Severity
    code: str
    message: str
    node_id: str | None = None
    column: str | None = None
    fix: Fix | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity, "code": self.code, "message": self.message,
            "node_id": self.node_id, "column": self.column,
            "fix": self.fix.to_dict() if self.fix is not None else None,
        }


class FitError(Exception):
    """A template that cannot be fitted to the data; the message says why."""


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value

"""What shape inference finds: a tensor's ``TensorSpec`` and a node's ``NodeResult``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TensorSpec:
    """Shape (batch dimension first, ``None`` for unknown sizes) and dtype of a tensor."""

    shape: tuple[int | None, ...]
    dtype: str

    def __str__(self) -> str:
        dims = ", ".join("None" if d is None else str(d) for d in self.shape)
        return f"({dims}{',' if len(self.shape) == 1 else ''})"

    def to_dict(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "dtype": self.dtype}


@dataclass(frozen=True)
class NodeResult:
    """What inference found for one node.

    ``error`` is a problem *of this node* (bad parameters, incompatible inputs, missing
    connection). ``blocked`` says the node could not be computed because an input node
    has a problem; it is not counted as an error of its own.
    """

    outputs: tuple[TensorSpec, ...] = ()
    params: int = 0
    trainable_params: int = 0
    flops: int | None = None
    error: str | None = None
    error_param: str | None = None
    blocked: str | None = None
    # Compared too: an output node shows what flows into it, so new inputs are a change
    # ``update()`` reports (successors are still dirtied only when outputs change).
    inputs: tuple[TensorSpec, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.error is None and self.blocked is None

"""Keras's errors as sentences: common shape errors with the fix (``explain_shape_error``),
any other error cleaned to one paragraph with the parameter it names (``explain_exception``)."""

from __future__ import annotations

import re
from math import prod
from typing import Any

from kbuilder.graph.shapes.specs import TensorSpec

# What tensors of each rank (batch dimension included) hold, for messages.
_RANK_WORDS = {
    1: "single numbers",
    2: "vectors (features)",
    3: "sequences (steps, features)",
    4: "images (height, width, channels)",
    5: "volumes (depth, height, width, channels)",
}


_ELEMENTWISE = frozenset({"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"})


def _rank_words(rank: int) -> str:
    return _RANK_WORDS.get(rank, f"tensors of {rank - 1} dimensions")


def _wrong_rank(match: re.Match, class_name: str, inputs: tuple[TensorSpec, ...]):
    groups = match.groupdict()
    if groups.get("kernel") is not None:  # a convolution's kernel has input rank entries
        need, have, index = len(groups["kernel"].split(",")), len(groups["input"].split(",")), 0
    else:
        need, have, index = int(groups["need"]), int(groups["have"]), int(groups["index"] or 0)
    shape = inputs[index] if index < len(inputs) else None
    received = f"{_rank_words(have)} {shape}" if shape else _rank_words(have)
    gives = _rank_words(need).split(" (")[0]
    if have < need:
        fix = f"Insert a Reshape before it, or connect it to a layer or Input that gives {gives}."
    else:
        fix = (f"Insert a Reshape, Flatten or global pooling layer before it, or connect it "
               f"to a layer or Input that gives {gives}.")
    return f"{class_name} needs {_rank_words(need)}; it receives {received}. {fix}", None


def _too_small(match: re.Match, class_name: str, inputs: tuple[TensorSpec, ...]):
    param = "pool_size" if "pool_size" in match.string else "kernel_size"
    shape = inputs[0] if inputs else ""
    return (
        f"the input {shape} is too small for this layer's {param} and strides: its output "
        f"would have no positions left. Use padding='same', a smaller {param} or strides, "
        "or a larger input (a Resizing layer at the start of the model).",
        param,
    )


def _unequal_shapes(match: re.Match, class_name: str, inputs: tuple[TensorSpec, ...]):
    shapes = " and ".join(str(s) for s in inputs)
    if class_name == "Concatenate":
        return (
            f"Concatenate joins its inputs along one axis, so their other sizes must match; "
            f"it receives {shapes}. Reshape or Flatten the inputs so they agree, or change "
            "`axis`.",
            "axis",
        )
    return (
        f"{class_name} combines its inputs value by value, so their shapes must match; it "
        f"receives {shapes}. Make the layers feeding it produce the same shape (e.g. Dense "
        "layers with the same units).",
        None,
    )


def _reshape_size(match: re.Match, class_name: str, inputs: tuple[TensorSpec, ...]):
    shape = inputs[0] if inputs else None
    values = prod(d for d in shape.shape[1:] if d) if shape else None
    count = f" ({values:,} values per sample)" if values else ""
    return (
        f"Reshape cannot turn {shape}{count} into {match['target']}: the sizes of "
        "target_shape must multiply to the same number of values. Change target_shape "
        "(-1 lets Keras compute one size).",
        "target_shape",
    )


# Keras's raw shape errors, as a sentence with a fix: (pattern, explain(match, class name,
# input specs) -> (message, parameter)). The first matching pattern wins.
_SHAPE_ERRORS: list[tuple[re.Pattern, Any]] = [
    (re.compile(r"Input (?P<index>\d+)?.*?incompatible with the layer: expected "
                r"(?P<min>min_)?ndim=(?P<need>\d+), found ndim=(?P<have>\d+)", re.S),
     _wrong_rank),
    (re.compile(r"Kernel shape must have the same length as input, but received kernel of "
                r"shape \((?P<kernel>[^)]*)\) and input of shape \((?P<input>[^)]*)\)"),
     _wrong_rank),
    (re.compile(r"Computed output size would be zero or negative"), _too_small),
    (re.compile(r"Inputs have incompatible shapes|requires inputs with matching shapes"),
     _unequal_shapes),
    (re.compile(r"total size of the tensor must be unchanged.*?target_shape=(?P<target>\([^)]*\))",
                re.S), _reshape_size),
]


def explain_shape_error(
    exc: BaseException, class_name: str, inputs: tuple[TensorSpec, ...]
) -> tuple[str, str | None] | None:
    """A common Keras shape error as a sentence saying what to change, else ``None``."""
    text = str(exc)
    for pattern, explain in _SHAPE_ERRORS:
        match = pattern.search(text)
        if match is not None:
            return explain(match, class_name, inputs)
    return None


_NOISE = (
    re.compile(r"Exception encountered when calling .*", re.S),
    re.compile(r"Arguments received by .*", re.S),
)


def explain_exception(exc: BaseException, param_names: list[str]) -> tuple[str, str | None]:
    """A one-paragraph message from a Keras error, and the parameter it names, if any."""
    text = str(exc).strip() or type(exc).__name__
    for pattern in _NOISE:
        stripped = pattern.sub("", text).strip()
        if stripped:
            text = stripped
    text = re.sub(r"\s+", " ", text)
    if len(text) > 400:
        text = text[:397] + "..."
    param = None
    for candidate in re.findall(r"`(\w+)`|'(\w+)'|(\w+)=", str(exc)):
        for name in candidate:
            if name in param_names:
                param = name
                break
        if param:
            break
    return text, param

"""Rough FLOPs per sample for the common layers (a multiply-add counts as 2).

Estimates for the user to compare designs, not a profiler: element-wise work (activations,
normalisation, pooling) is ignored, matrix products and convolutions are counted.
"""

from __future__ import annotations

from math import prod
from typing import Any

Shape = tuple[int | None, ...]


def _known(shape: Shape) -> list[int] | None:
    """The shape without the batch dimension, or ``None`` if a size is not known."""
    dims = list(shape[1:])
    return None if any(d is None for d in dims) else [int(d) for d in dims]  # type: ignore[misc]


def estimate_flops(
    class_name: str, config: dict[str, Any], inputs: list[Shape], outputs: list[Shape]
) -> int | None:
    """FLOPs for one sample through one layer call, or ``None`` when not estimated."""
    if not inputs or not outputs:
        return None
    x, y = _known(inputs[0]), _known(outputs[0])
    if x is None or y is None:
        return None
    if class_name == "Dense":
        return 2 * prod(x) * int(config.get("units", y[-1]))
    if class_name == "EinsumDense":
        # Each output element is a dot product over the contracted input dims.
        contracted = max(prod(x) // max(prod(y[:-1]) or 1, 1), 1) if len(x) > 1 else x[-1]
        return 2 * prod(y) * contracted
    if class_name in ("Conv1D", "Conv2D", "Conv3D"):
        kernel = prod(_tuple(config.get("kernel_size", 1), len(x) - 1))
        groups = int(config.get("groups", 1) or 1)
        cin = x[-1] if config.get("data_format") != "channels_first" else x[0]
        return 2 * prod(y) * kernel * cin // groups
    if class_name in ("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"):
        kernel = prod(_tuple(config.get("kernel_size", 1), len(x) - 1))
        cin = x[-1] if config.get("data_format") != "channels_first" else x[0]
        cout = y[-1] if config.get("data_format") != "channels_first" else y[0]
        return 2 * prod(x) * kernel * cout if cin else None
    if class_name in ("DepthwiseConv1D", "DepthwiseConv2D"):
        kernel = prod(_tuple(config.get("kernel_size", 1), len(x) - 1))
        return 2 * prod(y) * kernel
    if class_name in ("SeparableConv1D", "SeparableConv2D"):
        kernel = prod(_tuple(config.get("kernel_size", 1), len(x) - 1))
        cin = x[-1]
        spatial = prod(y[:-1])
        mult = int(config.get("depth_multiplier", 1))
        return 2 * spatial * (kernel * cin * mult + cin * mult * y[-1])
    if class_name in ("SimpleRNN", "GRU", "LSTM"):
        gates = {"SimpleRNN": 1, "GRU": 3, "LSTM": 4}[class_name]
        steps, features = (x[0], x[-1]) if len(x) >= 2 else (1, x[-1])
        units = int(config.get("units", 1))
        return 2 * steps * gates * (features + units) * units
    if class_name in ("MultiHeadAttention", "GroupedQueryAttention", "GroupQueryAttention"):
        return _attention_flops(config, inputs, y)
    if class_name in ("Attention", "AdditiveAttention"):
        if len(inputs) < 2 or _known(inputs[1]) is None:
            return None
        v = _known(inputs[1])
        assert v is not None
        return 2 * 2 * x[0] * v[0] * x[-1]
    return None


def _attention_flops(config: dict[str, Any], inputs: list[Shape], y: list[int]) -> int | None:
    q = _known(inputs[0])
    v = _known(inputs[1]) if len(inputs) > 1 else q
    if q is None or v is None or len(q) < 2 or len(v) < 2:
        return None
    heads = int(config.get("num_heads", config.get("num_query_heads", 1)) or 1)
    key_dim = int(config.get("key_dim", config.get("head_dim", 1)) or 1)
    value_dim = int(config.get("value_dim") or key_dim)
    tq, tv = prod(q[:-1]), prod(v[:-1])
    projections = 2 * (tq * q[-1] * heads * key_dim + 2 * tv * v[-1] * heads * key_dim)
    scores = 2 * heads * tq * tv * (key_dim + value_dim)
    output = 2 * tq * heads * value_dim * y[-1]
    return projections + scores + output


def _tuple(value: Any, rank: int) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * max(rank, 1)
    return tuple(int(v) for v in value)

"""Adapting Keras preprocessing layers (Normalization, lookups) to the training data."""


from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from kbuilder.runtime.data.dataset import DataError, num_rows

# ============================================================================ adapt()
# Adaptable layer -> the parameters that, when given, already hold what adapt() computes.
ADAPTABLE_LAYERS: dict[str, tuple[str, ...]] = {
    "Normalization": ("mean", "variance"),
    "TextVectorization": ("vocabulary",),
    "StringLookup": ("vocabulary",),
    "IntegerLookup": ("vocabulary",),
    "Discretization": ("bin_boundaries",),
}


@dataclass(frozen=True)
class AdaptResult:
    """What ``adapt_layers`` did with one adaptable layer."""

    layer: str
    adapted: bool
    message: str


def adapt_layers(model: Any, x_train: Any) -> list[AdaptResult]:
    """Call ``adapt()`` on the model's adaptable layers with the training data they see.

    Only a layer that takes a model input directly can be adapted here: its data is that
    input's training data. A layer deeper in the model sees values that only exist once the
    earlier layers run, so it is reported instead (give its statistics as parameters, or
    move it right after the input).

    Args:
        model: a built ``keras.Model``.
        x_train: the training inputs: an array, or a dict (by input name) or list of arrays.

    Returns:
        One ``AdaptResult`` per adaptable layer, in model order.
    """
    by_tensor = {id(t): i for i, t in enumerate(model.inputs)}
    names = [getattr(t, "name", None) or f"input_{i}" for i, t in enumerate(model.inputs)]
    results = []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind not in ADAPTABLE_LAYERS:
            continue
        config = layer.get_config()
        if any(config.get(p) is not None for p in ADAPTABLE_LAYERS[kind]):
            results.append(AdaptResult(layer.name, False, f"'{layer.name}' has its "
                           f"{' and '.join(ADAPTABLE_LAYERS[kind])} set; nothing to adapt."))
            continue
        sources = [id(t) for node in getattr(layer, "_inbound_nodes", [])
                   for t in node.input_tensors]
        index = {by_tensor[s] for s in sources if s in by_tensor}
        if len(index) != 1 or len(sources) != 1:
            results.append(AdaptResult(
                layer.name, False,
                f"'{layer.name}' ({kind}) cannot be adapted automatically because it does "
                "not take a model input directly. Move it right after the Input, or set its "
                f"{' and '.join(ADAPTABLE_LAYERS[kind])} by hand.",
            ))
            continue
        (i,) = index
        data = _input_data(x_train, i, names[i], len(model.inputs))
        layer.adapt(data)
        results.append(AdaptResult(layer.name, True, f"'{layer.name}' adapted on "
                                   f"{num_rows(data)} training samples of '{names[i]}'."))
    return results


def _input_data(x: Any, index: int, name: str, count: int) -> np.ndarray:
    if isinstance(x, Mapping):
        if name not in x:
            raise DataError(f"The data has no array for the model input '{name}'; it has: "
                            f"{', '.join(map(str, x))}.")
        return x[name]
    if isinstance(x, list | tuple):
        return x[index]
    if count != 1:
        raise DataError(f"The model has {count} inputs but the data is a single array.")
    return x

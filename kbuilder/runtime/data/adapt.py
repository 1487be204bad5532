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
    "FillMissing": ("fill_values",),
}
# Layers whose output is the model input's data, only cleaner: a layer after one is adapted
# on that data as it comes out (Input -> FillMissing -> Normalization), in model order.
PASS_THROUGH_LAYERS = frozenset({"FillMissing"})


@dataclass(frozen=True)
class AdaptResult:
    """What ``adapt_layers`` did with one adaptable layer."""

    layer: str
    adapted: bool
    message: str


def adapt_layers(model: Any, x_train: Any,
                 statistics: Mapping[str, Any] | None = None) -> list[AdaptResult]:
    """Call ``adapt()`` on the model's adaptable layers with the training data they see.

    A layer that takes a model input directly is adapted on that input's training data;
    one after a ``FillMissing`` (itself after an input) on the data with the gaps filled,
    once the ``FillMissing`` is adapted. A layer deeper in the model sees values that only
    exist once the earlier layers run, so it is reported instead (give its statistics as
    parameters, or move it right after the input).

    Args:
        model: a built ``keras.Model``.
        x_train: the training inputs: an array, or a dict (by input name) or list of arrays.
        statistics: by input name, what adapting on all its training rows would give
            (``table_splits.InputStatistics``: medians, mean and variance), computed in
            one pass over a table too large to adapt on: a ``FillMissing`` and a
            ``Normalization`` on that input (directly or after the ``FillMissing``) are
            set from them instead of adapted (``table_statistics`` finds them).

    Returns:
        One ``AdaptResult`` per adaptable layer, in model order.
    """
    import keras

    names = [getattr(t, "name", None) or f"input_{i}" for i, t in enumerate(model.inputs)]
    # Tensor id -> (the name of the input it comes from, a function giving its data).
    sources: dict[int, tuple[str, Any]] = {}
    for i, t in enumerate(model.inputs):
        sources[id(t)] = (names[i], lambda i=i: _input_data(x_train, i, names[i],
                                                           len(model.inputs)))
    cache: dict[int, np.ndarray] = {}
    known_stats = {id(t): statistics[n] for t, n in zip(model.inputs, names, strict=True)
                   if statistics and statistics.get(n) is not None}

    def data_of(tensor_id: int) -> np.ndarray:
        if tensor_id not in cache:
            cache[tensor_id] = sources[tensor_id][1]()
        return cache[tensor_id]

    results = []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind not in ADAPTABLE_LAYERS and kind not in PASS_THROUGH_LAYERS:
            continue
        inbound = getattr(layer, "_inbound_nodes", [])
        sources_in = [id(t) for node in inbound for t in node.input_tensors]
        known = {s for s in sources_in if s in sources}
        direct = len(known) == 1 and len(sources_in) == 1
        if direct and kind in PASS_THROUGH_LAYERS and len(inbound) == 1:
            (source,) = known
            if source in known_stats:  # its output's statistics are the input's
                known_stats[id(inbound[0].output_tensors[0])] = known_stats[source]
            out = inbound[0].output_tensors[0]
            sources[id(out)] = (sources[source][0], lambda layer=layer, source=source:
                                keras.ops.convert_to_numpy(layer(data_of(source))))
        if kind not in ADAPTABLE_LAYERS:
            continue
        config = layer.get_config()
        if any(config.get(p) is not None for p in ADAPTABLE_LAYERS[kind]):
            results.append(AdaptResult(layer.name, False, f"'{layer.name}' has its "
                           f"{' and '.join(ADAPTABLE_LAYERS[kind])} set; nothing to adapt."))
            continue
        if not direct:
            results.append(AdaptResult(
                layer.name, False,
                f"'{layer.name}' ({kind}) cannot be adapted automatically because it does "
                "not take a model input directly (or through FillMissing). Move it right "
                f"after the Input, or set its {' and '.join(ADAPTABLE_LAYERS[kind])} by hand.",
            ))
            continue
        (source,) = known
        if source in known_stats and kind in ("Normalization", "FillMissing"):
            stats = known_stats[source]
            if kind == "FillMissing":
                if not layer.built:
                    layer.build((None, len(stats.fill)))
                layer.fill.assign(np.asarray(stats.fill, np.float32))
                what = "medians"
            else:
                _set_moments(layer, stats.mean, stats.variance)
                what = "mean and variance"
            results.append(AdaptResult(layer.name, True, f"'{layer.name}' set to the {what} "
                                       "of every training row of "
                                       f"'{sources[source][0]}', computed as it streamed."))
            continue
        data = data_of(source)
        layer.adapt(data)
        results.append(AdaptResult(layer.name, True, f"'{layer.name}' adapted on "
                                   f"{num_rows(data)} training samples of "
                                   f"'{sources[source][0]}'."))
    return results


def table_statistics(model: Any, x_train: Any) -> dict[str, Any] | None:
    """By model input name, the statistics of a streamed table's inputs in ``x_train``
    (``table_splits``), or ``None`` for data in memory."""
    names = [getattr(t, "name", None) or f"input_{i}" for i, t in enumerate(model.inputs)]
    if isinstance(x_train, Mapping):
        items = list(x_train.items())
    elif isinstance(x_train, list | tuple):
        items = list(zip(names, x_train, strict=False))
    else:
        items = [(names[0], x_train)]
    found = {k: v.statistics() for k, v in items if hasattr(v, "statistics")}
    return found or None


def _set_moments(layer: Any, mean: np.ndarray, variance: np.ndarray) -> None:
    """What ``adapt`` leaves in a ``Normalization`` layer, from known statistics."""
    shape = tuple(layer.adapt_mean.shape)
    if int(np.prod(shape)) != len(mean):
        raise DataError(f"'{layer.name}' normalizes {int(np.prod(shape))} values per sample "
                        f"but the table has {len(mean)} features; set the Input's shape to "
                        f"[{len(mean)}].")
    layer.adapt_mean.assign(np.asarray(mean, np.float32).reshape(shape))
    layer.adapt_variance.assign(np.asarray(variance, np.float32).reshape(shape))
    layer.finalize_state()


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

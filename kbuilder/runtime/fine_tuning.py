"""The second phase of a fine-tuning run, on the built Keras model (worker side).

Phase 1 trains with the frozen nodes frozen; then ``unfreeze`` makes the layers from
``TrainingSettings.fine_tune_from`` on trainable (inside a nested model too: the nested
models on the way learn again from that layer on, and the layers before it stay frozen),
the model is compiled again at the lower learning rate — a change of ``trainable`` only
takes effect at compile time — and ``fit`` continues from the next epoch. Blocks called
with ``training=False`` stay so, and BatchNormalization layers frozen in phase 1 stay
frozen: they keep their moving statistics (the keras.io transfer-learning guide's rule;
see ``unfreeze`` for why ``training=False`` alone is not enough in Keras 3).
"""

from __future__ import annotations

from typing import Any

from kbuilder.graph.freezing import STATISTICS_LAYERS


def trainable_count(model: Any) -> int:
    """Trainable parameters as Keras counts them."""
    import math

    return int(sum(math.prod(w.shape) for w in model.trainable_weights))


def _path_to(model: Any, name: str) -> list[Any] | None:
    """The layers from ``model``'s own layer down to the one called ``name`` (depth first)."""
    for layer in getattr(model, "layers", []):
        if layer.name == name:
            return [layer]
        inner = _path_to(layer, name) if hasattr(layer, "layers") else None
        if inner is not None:
            return [layer, *inner]
    return None


def unfreeze(model: Any, layer_name: str | None) -> str:
    """Make ``layer_name`` and every layer after it trainable (``None``: every layer).

    Returns:
        What now learns, in words, for the phase-change message.

    Raises:
        ValueError: no layer of that name, at any depth.
    """
    # Keras 3 (3.15) replaces a nested model's recorded training=False by the outer
    # call's training=True during fit, so only trainable=False keeps a BatchNormalization
    # in inference mode: those frozen in phase 1 stay frozen (as keras.io's fine-tuning
    # examples leave BatchNorm frozen).
    frozen_statistics = [layer for layer in _all_layers(model)
                         if type(layer).__name__ in STATISTICS_LAYERS and not layer.trainable]
    try:
        return _unfreeze(model, layer_name)
    finally:
        for layer in frozen_statistics:
            layer.trainable = False


def _all_layers(model: Any) -> list[Any]:
    found = []
    for layer in getattr(model, "layers", []):
        found.append(layer)
        if hasattr(layer, "layers"):
            found += _all_layers(layer)
    return found


def _unfreeze(model: Any, layer_name: str | None) -> str:
    if layer_name is None:
        model.trainable = True
        return "every layer"
    path = _path_to(model, layer_name)
    if path is None:
        raise ValueError(
            f"There is no layer '{layer_name}' to fine-tune from in the model; name one of "
            "its layers or blocks (a block's inner layers count too), or leave it empty to "
            "unfreeze everything.")
    container = model
    for step in path:
        container.trainable = True  # Keras sets every layer inside too
        for layer in container.layers[:container.layers.index(step)]:
            layer.trainable = False
        container = step
    nested = f" of '{path[-2].name}'" if len(path) > 1 else ""
    return f"the layers from '{layer_name}'{nested} on"

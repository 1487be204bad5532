"""What a layer call gave, remembered by what decides it: class, parameters, inputs.

Shape inference builds a Keras layer and calls it symbolically for every node: 5-20 ms a
node (measured), which is a minute for an imported 10,000-node graph. Graphs repeat
themselves (a ResNet's blocks, a stack of identical Dense layers), and a built-in layer's
output shapes and weight shapes depend only on its class, its parameters, its call options,
the specs of its inputs and the dtype policy, so one call serves every node that agrees on
all of them.

Only classes from Keras or kbuilder are remembered: a user's own layer class can be
replaced by a new version of its file under the same name.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

# Enough for the distinct layers of the largest models we import (a few thousand), small
# enough to be nothing in memory (a few hundred bytes an entry).
CAPACITY = 4096


@dataclass(frozen=True)
class LayerCall:
    """The part of a node's result that a layer call decides."""

    outputs: tuple  # of TensorSpec
    params: int
    trainable_params: int
    weight_shapes: tuple[tuple[int, ...], ...]


_calls: OrderedDict[tuple, LayerCall] = OrderedDict()


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=repr)


def call_key(layer_class: type, config: dict[str, Any], call_options: dict[str, Any],
             by_port: dict[str, list]) -> tuple | None:
    """The key under which a call is remembered; ``None`` for a class not to remember."""
    module = getattr(layer_class, "__module__", "") or ""
    if not module.startswith(("keras.", "kbuilder.")):
        return None
    import keras

    inputs = tuple((port, tuple(specs)) for port, specs in by_port.items())
    return (module, layer_class.__qualname__, _canonical(config), _canonical(call_options),
            inputs, keras.config.dtype_policy().name)


def recall(key: tuple | None) -> LayerCall | None:
    if key is None:
        return None
    found = _calls.get(key)
    if found is not None:
        _calls.move_to_end(key)
    return found


def remember(key: tuple | None, call: LayerCall) -> None:
    if key is None:
        return
    _calls[key] = call
    _calls.move_to_end(key)
    while len(_calls) > CAPACITY:
        _calls.popitem(last=False)

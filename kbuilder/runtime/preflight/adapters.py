"""Input adapters for pretrained networks: which family a model is, and its preprocessing
as built-in layers.

A model is recognised as a ``keras.applications`` family (``graph/backbones.py``) by its
own name (an imported application keeps Keras's model name, e.g. ``mobilenetv2_1.00_96``)
or by the name of a block inside it (a nested application, a backbone node). Its
preprocessing — what ``keras.applications.<family>.preprocess_input`` does to 0-255
pixels — becomes one built-in layer (``backbones.preprocessing_layer``), so raw images go
in and every export carries it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from kbuilder.graph.backbones import (
    BACKBONES,
    PREPROCESSING_NAMES,
    Backbone,
    is_backbone_class,
    of_class,
    preprocessing_layer,
)
from kbuilder.graph.commands import Command, insert_after
from kbuilder.graph.model import Graph

# Keras model names that do not start with the family's name.
_ALIASES = {"nasnet": "NASNetMobile"}

def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


_PREFIXES = sorted([(_key(b.name), b) for b in BACKBONES]
                   + [(k, next(b for b in BACKBONES if b.name == v))
                      for k, v in _ALIASES.items()],
                   key=lambda item: -len(item[0]))  # resnet50v2 before resnet50


def family_of_name(name: str) -> Backbone | None:
    """The family a model or block name says (Keras's names: ``mobilenetv2_1.00_96``,
    ``efficientnetv2-b0``, ``inception_v3``...), or ``None``."""
    key = _key(name)
    return next((b for prefix, b in _PREFIXES if key.startswith(prefix)), None)


def model_family(graph: Graph) -> Backbone | None:
    """The pretrained family of the model: by its own name, else by a block's or a
    backbone node's (its ``application`` parameter or its layer type) name."""
    found = family_of_name(graph.name)
    if found is not None:
        return found
    for _, node in graph.walk():
        if is_backbone_class(node.class_name):  # a backbone node says its family
            return of_class(node.class_name)
        names = [node.name, str(node.param("application", "")), node.class_name or ""]
        if node.kind == "block" or node.param("application") or node.class_name:
            for name in names:
                if name and (family := family_of_name(name)) is not None:
                    return family
    return None


@dataclass(frozen=True)
class PixelRange:
    """The range the data's pixels are taken to run over, and why (in words)."""

    low: float
    high: float
    assumed: str


def pixel_range(array: np.ndarray | None) -> PixelRange:
    """What range a family's preprocessing should take the data's pixels from: 0..255 for
    8-bit images (``uint8``, as image folders are read), 0..1 for values within [0, 1],
    0..255 for values within [0, 255], else the range seen in the data (e.g. 16-bit
    microscope frames, standardised arrays), saying so."""
    if array is None or not array.size or array.dtype.kind not in "fiu":
        return PixelRange(0.0, 255.0, "0..255: there are no values to look at")
    if array.dtype == np.uint8:
        return PixelRange(0.0, 255.0, "0..255: the data are uint8, 8-bit images")
    sample = array[: min(len(array), 1000)].astype(np.float64)
    finite = sample[np.isfinite(sample)]
    if not finite.size:
        return PixelRange(0.0, 255.0, "0..255: the data have no finite values")
    low, high = float(finite.min()), float(finite.max())
    kind = f"the data's {array.dtype} values"
    if low >= 0 and high <= 1:
        return PixelRange(0.0, 1.0, f"0..1: {kind} lie in [0, 1]")
    if low >= 0 and high <= 255:
        return PixelRange(0.0, 255.0, f"0..255: {kind} lie in [0, 255]")
    if high <= low:
        return PixelRange(0.0, 255.0, f"0..255: {kind} are all {low:g}")
    return PixelRange(low, high, (
        f"{low:g}..{high:g}: the range of {kind}, neither 0..1 nor 0..255; check that "
        "it covers the pixels the model will be given"))


def preprocessing_commands(graph: Graph, after: str, style: str, pixel_max: float = 255.0,
                           pixel_min: float = 0.0) -> list[Command]:
    """The command adding ``style``'s preprocessing right after ``after`` (none for
    "included"), for pixels of ``pixel_min``..``pixel_max``."""
    if style == "included":
        return []
    class_name, params = preprocessing_layer(style, pixel_max, pixel_min)
    return [insert_after(graph, after, class_name, params, name=PREPROCESSING_NAMES[style])]


def has_preprocessing(graph: Graph) -> bool:
    """Whether a family's preprocessing layer (as added here) is in the model."""
    names = set(PREPROCESSING_NAMES.values())
    return any(node.name in names or node.name.rsplit("_", 1)[0] in names
               for node in graph.nodes)

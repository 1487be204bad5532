"""The catalog itself: built once from `keras.layers` (and kbuilder's own layers, operation
nodes and application layers), then looked up by name, category or search text."""

from __future__ import annotations

import copy
import functools
import inspect
import re
from dataclasses import dataclass
from typing import Any

from kbuilder.graph.catalog.introspect import layer_spec
from kbuilder.graph.catalog.overrides import CATEGORIES, EXCLUDED, PLACEHOLDERS
from kbuilder.graph.catalog.specs import LayerSpec
from kbuilder.graph.errors import UnknownLayerError


def all_layers() -> tuple[LayerSpec, ...]:
    """All catalog entries, sorted by category (palette order) then by name."""
    return _catalog().specs


def get(class_name: str) -> LayerSpec:
    """The catalog entry of a layer class, by canonical name or alias.

    Raises:
        UnknownLayerError: when the catalog has no such layer.
    """
    spec = _catalog().by_name.get(class_name)
    if spec is None:
        raise UnknownLayerError(class_name)
    return spec


def categories() -> list[str]:
    """The categories that have layers, in palette order."""
    used = {spec.category for spec in all_layers()}
    return [c for c in _category_order() if c in used]


def search(text: str) -> list[LayerSpec]:
    """Layers whose name, alias or summary contains `text` (case-insensitive), best first.

    Ranks: an exact name, then a name that starts with `text` ("dropout" finds `Dropout`
    before `AlphaDropout`), then one with a word that starts with it ("norm" finds
    `BatchNormalization`), then `text` anywhere in a name, then in the summary. Within a
    rank, the catalog's order.
    """
    needle = text.strip().lower()
    if not needle:
        return list(all_layers())
    ranked = []
    for index, spec in enumerate(all_layers()):
        names = [spec.class_name, *spec.aliases]
        lowered = [n.lower() for n in names]
        if needle in lowered:
            rank = 0
        elif any(n.startswith(needle) for n in lowered):
            rank = 1
        elif any(w.startswith(needle) for n in names for w in _word_tails(n)):
            rank = 2
        elif any(needle in n for n in lowered):
            rank = 3
        elif needle in spec.summary.lower():
            rank = 4
        else:
            continue
        ranked.append((rank, index, spec))
    return [spec for _, _, spec in sorted(ranked, key=lambda r: r[:2])]


_WORD_START = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=[0-9])|_")


def _word_tails(name: str) -> list[str]:
    """``name`` lowered from each word on: "GlobalAveragePooling2D" gives "global…",
    "average…", "pooling2d", "2d"."""
    starts = sorted({0, *(m.end() for m in _WORD_START.finditer(name))})
    return [name[i:].lstrip("_").lower() for i in starts]


def default_params(spec: LayerSpec) -> dict[str, Any]:
    """JSON-safe values for all parameters: the defaults, with placeholders where needed.

    Every required parameter gets its `PLACEHOLDERS` value, so the result validates and
    instantiates as it is.
    """
    from kbuilder.graph.catalog.app_layers import APPLICATION_LAYERS

    values = {p.name: p.default for p in spec.params}
    values.update(PLACEHOLDERS.get(spec.class_name, {}))
    if spec.class_name in APPLICATION_LAYERS:
        values.update(APPLICATION_LAYERS[spec.class_name].placeholders)
    # Deep copy: list defaults live in the shared, cached catalog.
    return copy.deepcopy(values)


@dataclass(frozen=True)
class _Catalog:
    specs: tuple[LayerSpec, ...]
    by_name: dict[str, LayerSpec]


_REQUIRED = object()


@functools.cache
def _catalog() -> _Catalog:
    import keras

    classes: dict[type, list[str]] = {}
    for attr in dir(keras.layers):
        obj = getattr(keras.layers, attr)
        if inspect.isclass(obj) and not attr.startswith("_"):
            classes.setdefault(obj, []).append(attr)
    specs = []
    for cls, names in classes.items():
        if cls.__name__ in EXCLUDED or not issubclass(cls, keras.layers.Layer):
            continue
        specs.append(layer_spec(cls, names))
    from kbuilder.graph.catalog import kbuilder_layers

    specs += kbuilder_layers.catalog_specs()  # kbuilder's own layers are in the palette
    order = {c: i for i, c in enumerate(_category_order())}
    specs.sort(key=lambda s: (order.get(s.category, len(order)), s.class_name))
    by_name = {}
    for spec in specs:
        for name in (spec.class_name, *spec.aliases):
            by_name[name] = spec
    # Found by name for imported models, not offered in the palette: operations between
    # layers (x + 3.0) and layers that keras.applications models define for themselves.
    from kbuilder.graph.catalog import app_layers, ops

    for spec in [*ops.catalog_specs(), *app_layers.catalog_specs()]:
        by_name[spec.class_name] = spec
    # The pretrained networks: in the palette (pretrained_networks()), not keras.layers
    # classes, so apart from all_layers(), which the layer-by-layer checks walk.
    for spec in _pretrained():
        by_name[spec.class_name] = spec
    return _Catalog(tuple(specs), by_name)


def pretrained_networks() -> tuple[LayerSpec, ...]:
    """The entries of the keras.applications networks (category "Pretrained network")."""
    return _pretrained()


@functools.cache
def _pretrained() -> tuple[LayerSpec, ...]:
    from kbuilder.graph.catalog import backbone_layers

    return tuple(backbone_layers.catalog_specs())


def _category_order() -> tuple[str, ...]:
    return (*CATEGORIES, "Other")



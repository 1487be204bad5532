"""A layer's ``get_config()`` as kbuilder node params: JSON-safe values, default Keras
objects by their short names, a vocabulary learned with ``adapt()``."""

from __future__ import annotations

import functools
import inspect
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from kbuilder.graph.keras_io.problems import ModelImportError, quoted
from kbuilder.graph.model import to_snake_case

if TYPE_CHECKING:
    from kbuilder.graph.catalog import LayerSpec


# Layers whose vocabulary, once learned with adapt(), Keras saves as a file asset
# rather than in get_config() or the weights.
_VOCABULARY_LAYERS = frozenset({"StringLookup", "IntegerLookup", "TextVectorization"})


def learned_settings(layer: Any, spec: LayerSpec, config: dict[str, Any]) -> dict[str, Any]:
    """Settings learned with ``adapt()`` that ``get_config()`` leaves out.

    A project has no assets, so an adapted vocabulary becomes the ``vocabulary``
    setting (special tokens first, as Keras writes its asset file and as
    ``set_vocabulary`` reads it back).

    Raises:
        ModelImportError: for learned state kbuilder cannot carry.
    """
    if spec.class_name not in _VOCABULARY_LAYERS or config.get("vocabulary"):
        return {}
    if not layer.get_vocabulary(include_special_tokens=False):
        return {}  # not adapted
    if config.get("output_mode") == "tf_idf":
        raise ModelImportError(
            f"Layer {quoted(layer.name)} ({spec.class_name}) learned its vocabulary and idf weights "
            "with adapt(); kbuilder cannot carry learned idf weights yet. Pass "
            "`vocabulary` and `idf_weights` to the layer where the model is made."
        )
    return {"vocabulary": layer.get_vocabulary(include_special_tokens=True)}


# ------------------------------------------------------------------- parameters
def plain(value: Any, layer: str, key: str) -> Any:
    """A configuration value as JSON-safe data (tuples as lists, numpy as Python)."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float | np.generic):
        number = value.item() if isinstance(value, np.generic) else value
        if isinstance(number, float) and not math.isfinite(number):
            raise ModelImportError(
                f"Layer {quoted(layer)} has `{key}`={number}, which a project file cannot store."
            )
        return number
    if isinstance(value, np.ndarray):
        return plain(value.tolist(), layer, key)
    if isinstance(value, list | tuple):
        return [plain(v, layer, key) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: plain(v, layer, k) for k, v in value.items()}
    raise ModelImportError(
        f"Layer {quoted(layer)} has a `{key}` of type {type(value).__name__}, which a project "
        "file cannot store."
    )


def tidy_params(spec: LayerSpec, params: dict[str, Any]) -> dict[str, Any]:
    """Write default Keras objects and dtype policies as the names a person would type.

    ``{"class_name": "GlorotUniform", "config": {"seed": None, ...}}`` becomes
    ``"glorot_uniform"`` when its settings are the class's defaults (it is then the same
    object), and ``{"class_name": "DTypePolicy", "config": {"name": "float32"}}``
    becomes ``"float32"``.
    """
    kinds = {p.name: p.kind for p in spec.params}
    for key, value in params.items():
        if not isinstance(value, dict):
            continue
        kind = kinds.get(key)
        if kind == "dtype" and value.get("class_name") in ("DTypePolicy", "FloatDTypePolicy"):
            name = value.get("config", {}).get("name")
            if isinstance(name, str):
                params[key] = name
        elif kind in ("initializer", "regularizer", "constraint"):
            short = _short_name(kind, value)
            if short is not None:
                params[key] = short
    return params


def _short_name(kind: str, value: dict[str, Any]) -> str | None:
    module = value.get("module", "keras")
    if not isinstance(module, str) or not (module == "keras" or module.startswith("keras.")):
        return None
    defaults = _default_configs(kind).get(value.get("class_name"))
    if defaults is None or value.get("config", {}) != defaults[1]:
        return None
    return defaults[0]


@functools.cache
def _default_configs(kind: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """Class name -> (short name, default config) of the objects Keras makes by name."""
    if kind == "initializer":
        from keras.src import initializers as module
    elif kind == "regularizer":
        from keras.src import regularizers as module
    else:
        from keras.src import constraints as module
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for short, cls in sorted(module.ALL_OBJECTS_DICT.items()):
        if short != short.lower() or not inspect.isclass(cls):
            continue
        try:
            config = plain(module.get(short).get_config(), short, short)
        except Exception:
            continue  # a base class, or one that needs arguments
        name = cls.__name__
        # Prefer the name Keras itself derives from the class ("glorot_uniform").
        if name not in found or short == to_snake_case(name):
            found[name] = (short, config)
    return found

"""Layer constructors with only the arguments that matter.

A parameter is left out when its value is the signature's default or the value
``get_config()`` reports for the default, and the layer is then built both ways to confirm
that leaving them out gives the same configuration. Keras objects (initializers,
regularizers, wrapped layers) are written as their constructor calls.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import functools
import json
import keyword
from typing import Any

from kbuilder.graph.catalog.app_layers import APPLICATION_LAYERS
from kbuilder.graph.catalog.kbuilder_layers import KBUILDER_LAYERS
from kbuilder.graph.codegen.literals import CodegenError, SourceCode, literal, string
from kbuilder.graph.errors import UnknownLayerError
from kbuilder.graph.model import to_snake_case

# Optional parameters Keras users pass positionally (after the required ones).
_POSITIONAL_OPTIONAL = frozenset({"pool_size"})
# Spatial tuples that Keras broadcasts from one number: (3, 3) is written 3.
_SCALAR_TUPLES = frozenset({"kernel_size", "strides", "pool_size", "dilation_rate", "size"})
_MISSING = object()


# Parameters written as code instead of their values, by layer name (a sweep script's
# ``hp["dense.units"]``); set with ``params_as_code``.
_AS_CODE: contextvars.ContextVar[dict[str, dict[str, str]] | None] = contextvars.ContextVar(
    "params_as_code", default=None)


@contextlib.contextmanager
def params_as_code(by_layer: dict[str, dict[str, str]]) -> Any:
    """While in this block, ``layer_expression`` writes the given parameters of the named
    layers as the given code (always, in their place in the signature)."""
    token = _AS_CODE.set(by_layer)
    try:
        yield
    finally:
        _AS_CODE.reset(token)


def layer_expression(spec: Any, params: dict[str, Any], name: str | None) -> str:
    """``layers.Conv2D(32, 3, padding="same", name="conv2d")``."""
    kept = _essential_params(spec.class_name, params)
    code = (_AS_CODE.get() or {}).get(name) if name is not None else None
    if code:
        order = {p.name: i for i, p in enumerate(spec.params)}
        kept = dict(sorted({**kept, **{k: SourceCode(v) for k, v in code.items()}}.items(),
                           key=lambda kv: order.get(kv[0], len(order))))
    return _render_layer(spec, kept, name)


def _render_layer(spec: Any, kept: dict[str, Any], name: str | None) -> str:
    specs = {p.name: p for p in spec.params}
    positional: list[str] = []
    keywords: list[str] = []
    for index, (pname, value) in enumerate(kept.items()):
        p = specs.get(pname)
        text = _param_value(p, value)
        leading = index == len(positional) and p is not None and (
            p.required or pname in _POSITIONAL_OPTIONAL
        ) and spec.params[index].name == pname
        if leading:
            positional.append(text)
        elif pname.isidentifier() and not keyword.iskeyword(pname):
            keywords.append(f"{pname}={text}")
        else:
            keywords.append(f"**{{{string(pname)}: {text}}}")
    if name is not None:
        keywords.append(f"name={string(name)}")
    # An application's own layer class is defined in the generated module itself.
    defined_here = spec.class_name in APPLICATION_LAYERS or spec.class_name in KBUILDER_LAYERS
    module = "" if defined_here else "layers."
    return f"{module}{spec.api_name or spec.class_name}({', '.join(positional + keywords)})"


def _essential_params(class_name: str, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters to write, in signature order: those that differ from the defaults.

    A wrapped layer's value becomes ``{"class_name", "config"}`` with its own essential
    parameters. Leaving out a value other than the signature's default is confirmed with
    Keras: the layer built from what is kept must have the configuration of the layer built
    from everything.
    """
    try:
        key = json.dumps(params, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):
        return _find_essential_params(class_name, params)
    # Models repeat layers with equal settings (every BatchNormalization of a ResNet).
    return copy.deepcopy(_essential_params_cached(class_name, key))


@functools.lru_cache(maxsize=4096)
def _essential_params_cached(class_name: str, key: str) -> dict[str, Any]:
    return _find_essential_params(class_name, json.loads(key))


def _find_essential_params(class_name: str, params: dict[str, Any]) -> dict[str, Any]:
    from kbuilder.graph import catalog

    spec = catalog.get(class_name)
    order = {p.name: i for i, p in enumerate(spec.params)}
    defaults = _normalised_defaults(spec.class_name)
    specs = {p.name: p for p in spec.params}
    kept: dict[str, Any] = {}
    to_confirm = False
    for pname, value in params.items():
        p = specs.get(pname)
        if p is not None and not p.required:
            if same(value, p.default):
                continue  # what the signature does anyway: safe to leave out
            default = defaults.get(pname, _MISSING)
            if (
                same(value, default) or _same_object(value, default)
                or _same_policy(value, default) or _same_named(p.kind, value, default)
            ):
                to_confirm = True
                continue
        if p is not None and p.kind == "layer" and isinstance(value, dict):
            value = _essential_wrapped(value)
            to_confirm = True
        kept[pname] = value
    if to_confirm:
        kept = _confirmed(spec, params, kept)
    kept = _without_derived(spec, kept, defaults)
    if any(p.kind == "layer" for p in spec.params):
        kept = _without_implied(spec, kept)
    return dict(sorted(kept.items(), key=lambda kv: order.get(kv[0], len(order))))


def _essential_wrapped(value: dict[str, Any]) -> dict[str, Any]:
    from kbuilder.graph import catalog

    config = value.get("config") or {}
    try:
        inner = catalog.get(value.get("class_name", ""))
    except UnknownLayerError:
        return value
    settings = {k: v for k, v in config.items() if k != "name"}
    essential = _essential_params(inner.class_name, settings)
    if "name" in config:
        essential["name"] = config["name"]
    return {"class_name": inner.class_name, "config": essential}


def _confirmed(spec: Any, params: dict[str, Any], kept: dict[str, Any]) -> dict[str, Any]:
    """``kept``, plus whatever leaving out changed the configuration Keras reports."""
    full = _layer_config(spec, params)
    if full is None:
        return dict(params)
    kept = dict(kept)
    for _ in range(len(params) + 1):
        got = _layer_config(spec, kept)
        if got is not None and same(got, full):
            return kept
        omitted = [k for k in params if k not in kept]
        if not omitted:
            break
        differing = [
            k for k in omitted
            if got is None or not same(got.get(k, _MISSING), full.get(k, _MISSING))
        ]
        # A difference in a derived key (strides from pool_size) names no parameter:
        # then keep everything rather than guess.
        for k in differing or omitted:
            kept[k] = params[k]
    # Still different: only the wrapped layers' shortened configs are left to blame.
    return dict(params)


def _without_derived(spec: Any, kept: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """Leave out values Keras derives from other arguments when they are not given.

    ``get_config()`` writes MultiHeadAttention's ``value_dim`` as ``key_dim`` and
    pooling ``strides`` as ``pool_size``; written out again they are noise. Only such
    parameters (whose reported default differs from the signature's) are tried, and one
    is left out only when the layer's configuration stays the same.
    """
    specs = {p.name: p for p in spec.params}
    candidates = [
        k for k in kept
        if k in specs and k in defaults and not specs[k].required
        and specs[k].kind != "layer" and not same(specs[k].default, defaults[k])
    ]
    if not candidates:
        return kept
    target = _layer_config(spec, kept)
    for k in candidates:
        trial = {name: v for name, v in kept.items() if name != k}
        got = _layer_config(spec, trial)
        if target is not None and got is not None and same(got, target):
            kept = trial
    return kept


def _without_implied(spec: Any, kept: dict[str, Any]) -> dict[str, Any]:
    """Leave out what a wrapper implies: the backward layer Bidirectional derives from the
    forward one, or the forward layer's ``zero_output_for_mask``, which Bidirectional sets.
    """
    target = _layer_config(spec, kept)
    if target is None:
        return kept

    def same_without(trial: dict[str, Any]) -> bool:
        got = _layer_config(spec, trial)
        return got is not None and same(got, target)

    wrapped = [p for p in spec.params if p.kind == "layer" and p.name in kept]
    for p in wrapped:
        if not p.required and same_without({k: v for k, v in kept.items() if k != p.name}):
            kept = {k: v for k, v in kept.items() if k != p.name}
    for p in wrapped:
        value = kept.get(p.name)
        if not isinstance(value, dict) or not isinstance(value.get("config"), dict):
            continue
        inner = _spec_or_none(value.get("class_name"))
        inner_specs = {q.name: q for q in inner.params} if inner is not None else {}
        for key in list(value["config"]):
            q = inner_specs.get(key)
            if q is None or q.required:
                continue
            config = {k: v for k, v in value["config"].items() if k != key}
            trial = {**kept, p.name: {**value, "config": config}}
            if same_without(trial):
                kept, value = trial, trial[p.name]
    return kept


def _spec_or_none(class_name: Any) -> Any:
    from kbuilder.graph import catalog

    try:
        return catalog.get(str(class_name))
    except UnknownLayerError:
        return None


def _layer_config(spec: Any, params: dict[str, Any]) -> dict[str, Any] | None:
    """The ``get_config()`` of the layer that the constructor call with ``params`` makes.

    Omitted arguments take the signature's defaults, as in the generated call (some
    ``from_config`` methods, such as Rescaling's, need every key). Names of wrapped layers
    are removed. ``None`` when Keras refuses the parameters.
    """
    from kbuilder.graph.shapes import make_layer

    defaults = {p.name: p.default for p in spec.params if not p.required}
    try:
        config = make_layer(spec.class_name, {**defaults, **params}, "probe").get_config()
    except Exception:
        return None
    return comparable(config)


@functools.cache
def _normalised_defaults(class_name: str) -> dict[str, Any]:
    """What ``get_config()`` reports for each optional parameter left at its default."""
    from kbuilder.graph import catalog

    spec = catalog.get(class_name)
    placeholders = catalog.PLACEHOLDERS.get(spec.class_name, {})
    required = {p.name: p.default for p in spec.params if p.required}
    values = {**required, **catalog.default_params(spec)}
    values = {k: v for k, v in values.items() if k in placeholders or k in required}
    config = _layer_config(spec, values) or {}
    return {
        k: v for k, v in config.items()
        if k not in placeholders and k not in required and k != "name"
    }


def _same_object(value: Any, default: Any) -> bool:
    """Whether a serialized Keras object is the default one, though written differently.

    Files from other Keras versions list other keys (``GlorotUniform`` without
    ``input_axes``): only the keys both sides name are compared.
    """
    if not (isinstance(value, dict) and isinstance(default, dict)):
        return False
    if value.get("class_name") != default.get("class_name") or "class_name" not in value:
        return False
    mine, theirs = value.get("config") or {}, default.get("config") or {}
    if not (isinstance(mine, dict) and isinstance(theirs, dict)):
        return False
    return all(same(v, theirs[k]) for k, v in mine.items() if k in theirs)


def _same_named(kind: str, value: Any, default: Any) -> bool:
    """``"random_uniform"`` where ``get_config()`` reports a default ``RandomUniform``."""
    if kind not in ("initializer", "regularizer", "constraint") or not isinstance(value, str):
        return False
    from kbuilder.graph import catalog

    cls = catalog.keras_object_classes(kind).get(value)
    config = _default_object_config(cls) if cls is not None else None
    if config is None:
        return False
    return _same_object({"class_name": cls.__name__, "config": config}, default)


def _same_policy(value: Any, default: Any) -> bool:
    """``"float32"`` where ``get_config()`` reports the ``DTypePolicy`` of that name."""
    return (
        isinstance(value, str) and isinstance(default, dict)
        and default.get("class_name") in ("DTypePolicy", "FloatDTypePolicy")
        and (default.get("config") or {}).get("name") == value
    )


def comparable(value: Any) -> Any:
    """Tuples as lists; names of wrapped layers dropped (Keras generates them), and the
    input shapes a saved wrapped layer was built for (it is built again when called)."""
    if isinstance(value, dict):
        out = {k: comparable(v) for k, v in value.items() if k != "build_config"}
        if isinstance(value.get("config"), dict) and str(
            value.get("module", "")
        ).startswith("keras.layers"):
            out["config"].pop("name", None)
        return out
    if isinstance(value, list | tuple):
        return [comparable(v) for v in value]
    return value


def same(a: Any, b: Any) -> bool:
    """Equality that keeps True apart from 1 and lists equal to tuples."""
    if a is _MISSING or b is _MISSING:
        return a is b
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple | dict) or isinstance(b, list | tuple | dict):
        return False
    try:
        return bool(a == b)
    except Exception:
        return False


# ======================================================================================
# Values as Python source
# ======================================================================================


def _param_value(p: Any, value: Any) -> str:
    """A parameter value as code, in the form its kind reads best."""
    kind = p.kind if p is not None else None
    if kind in ("initializer", "regularizer", "constraint") and isinstance(value, dict):
        return _keras_object(kind, value)
    if kind == "dtype" and isinstance(value, dict):
        return literal((value.get("config") or {}).get("name"))
    if kind == "layer" and isinstance(value, dict):
        return _wrapped_layer(value)
    if kind == "tuple" and isinstance(value, list | tuple):
        if p.name in _SCALAR_TUPLES and p.accepts_scalar and value and len(set(
                map(repr, value))) == 1 and not isinstance(value[0], list | tuple):
            return literal(value[0])
        return literal(_as_tuples(value))
    if kind == "shape" and isinstance(value, list | tuple):
        return literal(tuple(value))
    return literal(value)


def _as_tuples(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_as_tuples(v) for v in value)
    return value


def _wrapped_layer(value: dict[str, Any]) -> str:
    from kbuilder.graph import catalog

    config = dict(value.get("config") or {})
    name = config.pop("name", None)
    inner = catalog.get(value["class_name"])
    return _render_layer(inner, config, name)


@functools.cache
def _keras_object_module(kind: str) -> Any:
    import keras

    return {"initializer": keras.initializers, "regularizer": keras.regularizers,
            "constraint": keras.constraints}[kind]


def _keras_object(kind: str, value: dict[str, Any]) -> str:
    """``"he_normal"``, ``keras.initializers.HeNormal(seed=1)``, ``keras.regularizers.L2(0.01)``."""
    import inspect

    from kbuilder.graph import catalog

    classes = catalog.keras_object_classes(kind)
    cls = classes.get(str(value.get("class_name")))
    module = _keras_object_module(kind)
    config = value.get("config") or {}
    if cls is None or getattr(module, cls.__name__, None) is not cls:
        # Project validation refuses these; never fall back to a config Keras would load.
        raise CodegenError(
            f"The {kind} {value.get('class_name')!r} is not one that Keras ships, so it "
            "cannot be written as code."
        )
    default = _default_object_config(cls)
    path = f"keras.{kind}s.{cls.__name__}"
    if kind == "regularizer":
        # The strength is the point of a regularizer: always write it.
        items = dict(config)
    else:
        items = {
            k: v for k, v in config.items()
            if default is None or not same(comparable(v), comparable(default.get(k, v)))
        }
        short = _short_name(kind, cls)
        if not items and default is not None and short is not None:
            return string(short)
    params = list(inspect.signature(cls.__init__).parameters)[1:]
    if kind == "regularizer" and len(items) == 1 and params[:1] == list(items):
        return f"{path}({literal(next(iter(items.values())))})"
    return f"{path}({', '.join(f'{k}={literal(v)}' for k, v in items.items())})"


@functools.cache
def _default_object_config_cached(cls: type) -> dict[str, Any] | None:
    try:
        return cls().get_config()
    except Exception:
        return None


def _default_object_config(cls: type) -> dict[str, Any] | None:
    config = _default_object_config_cached(cls)
    return copy.deepcopy(config) if config is not None else None


def _short_name(kind: str, cls: type) -> str | None:
    """The snake_case name under which Keras knows ``cls`` (``HeNormal`` -> ``he_normal``)."""
    from kbuilder.graph import catalog

    names = sorted(
        k for k, v in catalog.keras_object_classes(kind).items()
        if v is cls and k == k.lower()
    )
    preferred = to_snake_case(cls.__name__)
    if preferred in names:
        return preferred
    return names[0] if names else None

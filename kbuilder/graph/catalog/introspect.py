"""A catalog entry from a Keras layer class: its signature, defaults and docstring, corrected
by the hand-kept tables of `overrides`."""

from __future__ import annotations

import inspect
import re
from typing import Any

from kbuilder.graph.catalog.docs import class_arg_docs, dedent_doc, first_sentence
from kbuilder.graph.catalog.keras_names import (
    DTYPE_SUGGESTIONS,
    KERAS_OBJECT_KINDS,
    activation_names,
    keras_object_names,
)
from kbuilder.graph.catalog.overrides import (
    BASE_DOCS,
    BINARY_MERGES,
    CATEGORY_OVERRIDES,
    CONFIG_ONLY_PARAMS,
    CONV_PADDING,
    HIDDEN_PARAMS,
    MODULE_CATEGORIES,
    NAME_RULES,
    PARAM_OVERRIDES,
    POPPED_DEFAULTS,
    PORTS,
    RANK_TUPLES,
    tuple_rule,
)
from kbuilder.graph.catalog.specs import LayerSpec, ParamSpec, PortSpec

# A parameter without a default (the signature's `inspect.Parameter.empty`).
_REQUIRED = object()


def layer_spec(cls: type, exported_names: list[str]) -> LayerSpec:
    """The catalog entry of a Keras layer class (imports nothing; reads the class).

    Args:
        cls: the layer class.
        exported_names: the names under which it is exported (its aliases, and the name
            to write in code when the class's own name is not exported).
    """
    name = cls.__name__
    doc = dedent_doc(cls.__doc__ or "")
    arg_docs: dict[str, str] = {}
    # Base classes document what a subclass's docstring leaves out (most-derived wins).
    for klass in reversed(cls.__mro__):
        arg_docs.update(class_arg_docs(klass))
    params = tuple(
        _param_spec(cls, pname, default, arg_docs.get(pname, ""))
        for pname, default in _raw_params(cls)
    )
    aliases = tuple(sorted(n for n in exported_names if n != name))
    return LayerSpec(
        class_name=name,
        aliases=aliases,
        category=_category(cls),
        summary=first_sentence(doc),
        doc=doc,
        params=params,
        inputs=_ports(cls),
        adaptable=callable(getattr(cls, "adapt", None)),
        api_name=name if name in exported_names else aliases[0],
    )


def _raw_params(cls: type) -> list[tuple[str, Any]]:
    """(name, default or _REQUIRED) for the signature, config-only extras and base params."""
    out = []
    takes_kwargs = False
    for p in inspect.signature(cls.__init__).parameters.values():
        if p.kind == p.VAR_KEYWORD:
            takes_kwargs = True
        if p.name in ("self", "name") or p.name in HIDDEN_PARAMS:
            continue
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        out.append((p.name, _REQUIRED if p.default is p.empty else p.default))
    for extra in CONFIG_ONLY_PARAMS.get(cls.__name__, ()):
        out.append((extra, _inherited_default(cls, extra)))
    # The base Layer's settings reach it through **kwargs; a few layers (SpatialDropout,
    # Discretization) have no **kwargs and so no `trainable` setting.
    present = {n for n, _ in out}
    if takes_kwargs:
        for base_name, base_default in (("trainable", True), ("dtype", None)):
            if base_name not in present:
                out.append((base_name, base_default))
    return out


def _inherited_default(cls: type, name: str) -> Any:
    """The default of `name` in the first `__init__` up the class hierarchy that has it."""
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        param = inspect.signature(init).parameters.get(name)
        if param is not None and param.default is not param.empty:
            return param.default
    return POPPED_DEFAULTS[name]


def _param_spec(cls: type, name: str, default: Any, doc: str) -> ParamSpec:
    required = default is _REQUIRED
    fields: dict[str, Any] = {
        "kind": None,
        "nullable": default is None,
        "choices": (),
    }
    fields.update(_infer_from_name(cls, name, default))
    if fields["kind"] is None:
        fields.update(_infer_from_default(default))
    fields.update(PARAM_OVERRIDES.get((cls.__name__, name), {}))
    fields.setdefault("required", required)
    if fields["kind"] == "activation" and not fields["choices"]:
        fields["choices"] = activation_names()
    elif fields["kind"] in KERAS_OBJECT_KINDS and not fields["choices"]:
        fields["choices"] = keras_object_names(fields["kind"])
    elif fields["kind"] == "dtype":
        fields["choices"] = DTYPE_SUGGESTIONS
    return ParamSpec(
        name=name,
        default=None if required else _json_safe(default),
        doc=doc or BASE_DOCS.get(name, ""),
        **fields,
    )


def _infer_from_name(cls: type, name: str, default: Any) -> dict[str, Any]:
    if name in NAME_RULES:
        return dict(NAME_RULES[name])
    for suffix in KERAS_OBJECT_KINDS:
        if name.endswith("_" + suffix):
            return {"kind": suffix}
    if name in RANK_TUPLES:
        rank = spatial_rank(cls.__name__)
        return tuple_rule(rank, **RANK_TUPLES[name])
    if name == "padding" and isinstance(default, str):
        return dict(CONV_PADDING)
    if name in ("interpolation", "fill_mode", "output_mode", "mode", "window", "scaling"):
        return _choice_from_class(cls, name, default)
    return {}


def _choice_from_class(cls: type, name: str, default: Any) -> dict[str, Any]:
    # Several image layers declare what they support as class attributes.
    attrs = {
        "interpolation": ("_SUPPORTED_INTERPOLATION",),
        "fill_mode": ("_SUPPORTED_FILL_MODE", "_SUPPORTED_FILL_MODES"),
    }.get(name, ())
    for attr in attrs:
        values = getattr(cls, attr, None)
        if values:
            ordered = sorted(values, key=lambda v: (v != default, str(v)))
            return {"kind": "choice", "choices": tuple(ordered)}
    return {}


def _infer_from_default(default: Any) -> dict[str, Any]:
    if isinstance(default, bool):
        return {"kind": "bool"}
    if isinstance(default, int):
        return {"kind": "int"}
    if isinstance(default, float):
        return {"kind": "float"}
    if isinstance(default, str):
        return {"kind": "str"}
    if isinstance(default, tuple):
        flat = list(_flatten(default))
        item = "int" if all(isinstance(v, int) for v in flat) else "float"
        return tuple_rule(len(default), item, scalar=False)
    return {"kind": "json"}


def spatial_rank(class_name: str) -> int | None:
    """The spatial rank a layer's name states ("Conv2D" -> 2), ``None`` when it states none."""
    match = re.search(r"([123])D", class_name)
    return int(match.group(1)) if match else None


def _category(cls: type) -> str:
    if cls.__name__ in CATEGORY_OVERRIDES:
        return CATEGORY_OVERRIDES[cls.__name__]
    parts = cls.__module__.split(".")
    if "image_preprocessing" in parts:
        return MODULE_CATEGORIES["image_preprocessing"]
    if "layers" in parts:
        package = parts[parts.index("layers") + 1]
        return MODULE_CATEGORIES.get(package, "Other")
    return "Other"


def _ports(cls: type) -> tuple[PortSpec, ...]:
    from keras.src.layers.merging.base_merge import Merge

    name = cls.__name__
    if name in PORTS:
        return PORTS[name]
    if issubclass(cls, Merge):
        if name in BINARY_MERGES:
            return (PortSpec("inputs", variadic=True, min_count=2, max_count=2),)
        return (PortSpec("inputs", variadic=True, min_count=2, max_count=None),)
    return (PortSpec("inputs"),)


def _flatten(value: Any):
    for item in value:
        if isinstance(item, (list, tuple)):
            yield from _flatten(item)
        else:
            yield item


def _json_safe(value: Any) -> Any:
    """Tuples become lists; anything that JSON cannot hold is a bug in the catalog."""
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    raise TypeError(f"Default value {value!r} is not JSON-safe.")

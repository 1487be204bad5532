"""Checking parameter values statically, and the words of what each kind of parameter
expects ("a positive integer", "one of 'valid', 'same'")."""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import dataclass
from typing import Any

from kbuilder.graph.catalog.keras_names import (
    dtype_names,
    keras_object_classes,
    makes_without_arguments,
)
from kbuilder.graph.catalog.registry import get
from kbuilder.graph.catalog.specs import LayerSpec, ParamSpec
from kbuilder.graph.errors import UnknownLayerError


def validate_param(spec: LayerSpec, name: str, value: Any) -> str | None:
    """Check one parameter value statically, without building the layer.

    Returns:
        `None` when the value is fine, else a message in Keras's style that names the
        parameter and says what is allowed, e.g. "Received an invalid value for `units`,
        expected a positive integer. Received: units=0". Unknown names give a message too.
    """
    try:
        param = spec.param(name)
    except KeyError:
        names = [p.name for p in spec.params]
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" Did you mean `{close[0]}`?" if close else ""
        return (
            f"Unrecognized parameter `{name}` for {spec.class_name}.{hint} "
            f"Received: {name}={show(value)}"
        )
    problem = _check_value(param, value)
    if problem is None:
        return None
    if isinstance(problem, _Nested):
        return (
            f"Received an invalid value for `{name}`: the wrapped "
            f"{problem.class_name} is not valid. {problem.message}"
        )
    return (
        f"Received an invalid value for `{name}`, expected {problem}. "
        f"Received: {name}={show(value)}"
    )


def validate_params(spec: LayerSpec, params: dict[str, Any]) -> dict[str, str]:
    """Check a whole parameter dict.

    Required parameters that are missing are reported, as are rules that involve
    several parameters (e.g. Normalization's `mean` and `variance` go together).

    Returns:
        A dict from parameter name to message, for every bad parameter (empty when fine).
    """
    errors: dict[str, str] = {}
    for name, value in params.items():
        message = validate_param(spec, name, value)
        if message:
            errors[name] = message
    for p in spec.params:
        if p.required and p.name not in params:
            errors[p.name] = (
                f"Missing required parameter `{p.name}`, expected {_expectation(p)}."
            )
    check = CROSS_CHECKS.get(spec.class_name)
    if check is not None:
        for name, message in check(params).items():
            errors.setdefault(name, message)
    return errors


# ------------------------------------------------ rules that involve several parameters
def _check_discretization(params: dict) -> dict[str, str]:
    if params.get("num_bins") is None and params.get("bin_boundaries") is None:
        return {
            "bin_boundaries": (
                "Discretization needs either `bin_boundaries` or `num_bins` (then call "
                "adapt() on data). Received: bin_boundaries=None, num_bins=None"
            )
        }
    return {}


def _check_normalization(params: dict) -> dict[str, str]:
    if (params.get("mean") is None) != (params.get("variance") is None):
        return {
            "mean": (
                "Normalization needs `mean` and `variance` together (or neither, then call "
                f"adapt() on data). Received: mean={show(params.get('mean'))}, "
                f"variance={show(params.get('variance'))}"
            )
        }
    return {}


def _check_grouped_heads(params: dict) -> dict[str, str]:
    query, kv = params.get("num_query_heads"), params.get("num_key_value_heads")
    if isinstance(query, int) and isinstance(kv, int) and kv > 0 and query % kv:
        return {
            "num_key_value_heads": (
                "`num_query_heads` must be divisible by `num_key_value_heads`. "
                f"Received: num_query_heads={query}, num_key_value_heads={kv}"
            )
        }
    return {}


def _check_tf_idf(params: dict) -> dict[str, str]:
    if (
        params.get("output_mode") == "tf_idf"
        and params.get("vocabulary") is not None
        and params.get("idf_weights") is None
    ):
        return {
            "idf_weights": (
                'With output_mode="tf_idf", a given `vocabulary` needs `idf_weights` too. '
                "Received: idf_weights=None"
            )
        }
    return {}


def _check_text_vectorization(params: dict) -> dict[str, str]:
    errors = _check_tf_idf(params)
    length = params.get("output_sequence_length")
    if length is not None and params.get("output_mode", "int") != "int":
        errors["output_sequence_length"] = (
            '`output_sequence_length` only applies to output_mode="int". '
            f"Received: output_sequence_length={length}, "
            f"output_mode={show(params.get('output_mode'))}"
        )
    return errors


CROSS_CHECKS = {
    "Discretization": _check_discretization,
    "Normalization": _check_normalization,
    "GroupedQueryAttention": _check_grouped_heads,
    "StringLookup": _check_tf_idf,
    "IntegerLookup": _check_tf_idf,
    "TextVectorization": _check_text_vectorization,
}


@dataclass(frozen=True)
class _Nested:
    """A problem inside a wrapped layer's configuration."""

    class_name: str
    message: str


def _check_value(p: ParamSpec, value: Any) -> str | _Nested | None:
    """None when `value` suits `p`, else what was expected (or the nested problem)."""
    if value is None:
        return None if p.nullable else _expectation(p)
    checker = _CHECKERS[p.kind]
    return checker(p, value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value)


def _in_range(p: ParamSpec, value: float) -> bool:
    if p.minimum is not None and value < p.minimum:
        return False
    if p.maximum is not None:
        if value > p.maximum or (p.exclusive_maximum and value == p.maximum):
            return False
    return True


def _check_int(p: ParamSpec, value: Any) -> str | None:
    return None if _is_int(value) and _in_range(p, value) else _expectation(p)


def _check_float(p: ParamSpec, value: Any) -> str | None:
    return None if _is_number(value) and _in_range(p, value) else _expectation(p)


def _check_bool(p: ParamSpec, value: Any) -> str | None:
    return None if isinstance(value, bool) else _expectation(p)


def _check_str(p: ParamSpec, value: Any) -> str | None:
    return None if isinstance(value, str) else _expectation(p)


def _check_choice(p: ParamSpec, value: Any) -> str | None:
    # Compare with types: True must not pass for a choice of 1, nor "1" for 1.
    ok = any(value == c and type(value) is type(c) for c in p.choices)
    return None if ok else _expectation(p)


def _check_item(p: ParamSpec, item: Any) -> bool:
    if p.item_kind == "pair" and isinstance(item, (list, tuple)):
        return len(item) == 2 and all(_is_int(v) and _in_range(p, v) for v in item)
    if p.item_kind == "float":
        return _is_number(item) and _in_range(p, item)
    return _is_int(item) and _in_range(p, item)


def _check_tuple(p: ParamSpec, value: Any) -> str | None:
    if not isinstance(value, (list, tuple)):
        ok = p.accepts_scalar and _is_number(value) and _check_item(p, value)
        return None if ok else _expectation(p)
    if p.tuple_len is not None and len(value) != p.tuple_len:
        return _expectation(p)
    if p.tuple_len is None and not value:
        return _expectation(p)
    return None if all(_check_item(p, v) for v in value) else _expectation(p)


def _check_shape(p: ParamSpec, value: Any) -> str | None:
    def dim_ok(d: Any) -> bool:
        return d is None or (_is_int(d) and (d > 0 or d == -1))

    if _is_int(value):
        return None if p.accepts_scalar and value > 0 else _expectation(p)
    if not isinstance(value, (list, tuple)) or not all(dim_ok(d) for d in value):
        return _expectation(p)
    if sum(1 for d in value if d == -1) > 1:
        return _expectation(p)
    return None


def _check_axis(p: ParamSpec, value: Any) -> str | None:
    if _is_int(value):
        return None
    if isinstance(value, (list, tuple)) and value and all(_is_int(v) for v in value):
        return None
    return _expectation(p)


def _check_activation(p: ParamSpec, value: Any) -> str | None:
    return None if isinstance(value, str) and value in p.choices else _expectation(p)


def _check_keras_object(p: ParamSpec, value: Any) -> str | None:
    classes = keras_object_classes(p.kind)
    if isinstance(value, str):
        cls = classes.get(value)
        ok = cls is not None and makes_without_arguments(cls)
        return None if ok else _expectation(p)
    if isinstance(value, dict) and isinstance(value.get("class_name"), str):
        # Only classes Keras ships: a "module" key never makes us import anything.
        cls = classes.get(value["class_name"])
        config = value.get("config", {})
        if cls is None or not isinstance(config, dict) or not _from_keras(value):
            return _expectation(p)
        try:
            cls.from_config(config)
        except Exception:
            return _expectation(p)
        return None
    return _expectation(p)


def _from_keras(value: dict) -> bool:
    # Keras imports the module a serialized object names; only Keras's own are safe.
    module = value.get("module", "keras")
    return isinstance(module, str) and (module == "keras" or module.startswith("keras."))


def _check_layer(p: ParamSpec, value: Any) -> str | _Nested | None:
    if not isinstance(value, dict) or not isinstance(value.get("class_name"), str):
        return _expectation(p)
    config = value.get("config", {})
    if not isinstance(config, dict) or not _from_keras(value):
        return _expectation(p)
    try:
        inner = get(value["class_name"])
    except UnknownLayerError:
        return _expectation(p)
    if p.choices and inner.class_name not in p.choices:
        return _expectation(p)
    main_ports = [port for port in inner.inputs if port.required]
    if len(main_ports) != 1 or main_ports[0].variadic:
        return _expectation(p)  # a wrapper feeds its layer one tensor
    # The name of a wrapped layer is Keras's business, not a setting.
    settings = {k: v for k, v in config.items() if k != "name"}
    errors = validate_params(inner, settings)
    if errors:
        return _Nested(inner.class_name, next(iter(errors.values())))
    return None


def _check_dtype(p: ParamSpec, value: Any) -> str | None:
    if isinstance(value, str):
        return None if value in dtype_names() else _expectation(p)
    # get_config() writes the policy as a serialized DTypePolicy.
    if isinstance(value, dict) and value.get("class_name") in ("DTypePolicy", "FloatDTypePolicy"):
        name = value.get("config", {}).get("name")
        return None if name in dtype_names() else _expectation(p)
    return _expectation(p)


def _check_json(p: ParamSpec, value: Any) -> str | None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return _expectation(p)
    extra = _JSON_CHECKS.get(p.name)
    return None if extra is None or extra(value) else _expectation(p)


def _numbers(value: Any) -> bool:
    """A number or a (nested, non-empty) list of numbers."""
    if isinstance(value, list):
        return bool(value) and all(_numbers(v) for v in value)
    return _is_number(value)


def _rectangular(value: Any) -> bool:
    """Whether nested lists make an array (every row of the same length)."""
    if not isinstance(value, list):
        return True
    if all(isinstance(v, list) for v in value):
        return len({len(v) for v in value}) == 1 and all(_rectangular(v) for v in value)
    return not any(isinstance(v, list) for v in value)


def _sorted_numbers(value: Any) -> bool:
    return (
        isinstance(value, list)
        and all(_is_number(v) for v in value)
        and all(a <= b for a, b in zip(value, value[1:], strict=False))
    )


def _vocabulary(value: Any) -> bool:
    # A list of tokens, or the path of a vocabulary file.
    if isinstance(value, str):
        return bool(value)
    return isinstance(value, list) and all(isinstance(v, (str, int)) for v in value)


def _salt(value: Any) -> bool:
    if _is_int(value):
        return value >= 0
    return isinstance(value, list) and len(value) == 2 and all(
        _is_int(v) and v >= 0 for v in value
    )


_JSON_CHECKS = {
    "mean": _numbers,
    "variance": _numbers,
    "idf_weights": _numbers,
    "bin_boundaries": _sorted_numbers,
    "vocabulary": _vocabulary,
    "salt": _salt,
    "mask_value": lambda v: isinstance(v, (str, int)) and not isinstance(v, bool),
    # An operation node's operand (kbuilder.graph.catalog.ops).
    "constant": lambda v: _numbers(v) and _rectangular(v),
    "renorm_clipping": lambda v: isinstance(v, dict)
    and set(v) <= {"rmax", "rmin", "dmax"}
    and all(_is_number(x) for x in v.values()),
}

_CHECKERS = {
    "int": _check_int,
    "float": _check_float,
    "bool": _check_bool,
    "str": _check_str,
    "choice": _check_choice,
    "tuple": _check_tuple,
    "shape": _check_shape,
    "axis": _check_axis,
    "activation": _check_activation,
    "initializer": _check_keras_object,
    "regularizer": _check_keras_object,
    "constraint": _check_keras_object,
    "layer": _check_layer,
    "dtype": _check_dtype,
    "json": _check_json,
}


def _expectation(p: ParamSpec) -> str:
    """What `p` accepts, in words: "a positive integer", "one of 'valid', 'same'", ..."""
    text = _EXPECTATIONS[p.kind](p)
    if p.nullable and p.kind != "json":
        text += " or None"
    return text


def _number_words(p: ParamSpec, noun: str, article: str) -> str:
    low, high = p.minimum, p.maximum
    if noun == "integer" and low == 1 and high is None:
        return "a positive integer"
    if low is not None and high is not None:
        closing = ")" if p.exclusive_maximum else "]"
        return f"{article} {noun} in [{_num(low)}, {_num(high)}{closing}"
    if low is not None:
        return f"{article} {noun} >= {_num(low)}"
    if high is not None:
        return f"{article} {noun} <= {_num(high)}"
    return f"{article} {noun}"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _tuple_words(p: ParamSpec) -> str:
    integers = p.item_kind in ("int", "pair")
    if integers and p.minimum == 1 and p.maximum is None:
        one, many = "a positive integer", "positive integers"
    else:
        one, many = ("an integer", "integers") if integers else ("a number", "numbers")
        if p.minimum is not None or p.maximum is not None:
            one, many = one + _range_suffix(p), many + _range_suffix(p)
    if p.item_kind == "pair":
        many += " (or pairs of them)"
    count = f"{p.tuple_len} " if p.tuple_len else ""
    text = f"a list of {count}{many}"
    return f"{one} or {text}" if p.accepts_scalar else text


def _range_suffix(p: ParamSpec) -> str:
    if p.minimum is not None and p.maximum is not None:
        return f" in [{_num(p.minimum)}, {_num(p.maximum)}]"
    if p.minimum is not None:
        return f" >= {_num(p.minimum)}"
    return f" <= {_num(p.maximum)}"


def _choice_words(p: ParamSpec) -> str:
    return "one of " + ", ".join(repr(c) for c in p.choices)


def _layer_words(p: ParamSpec) -> str:
    envelope = 'a layer configuration {"class_name": ..., "config": {...}}'
    if p.choices:
        return f"{envelope} of one of {', '.join(p.choices)}"
    return f"{envelope} of a catalog layer that takes one input"


def _json_words(p: ParamSpec) -> str:
    return {
        "mean": "a number or a list of numbers",
        "variance": "a number or a list of numbers",
        "idf_weights": "a list of numbers",
        "bin_boundaries": "a sorted list of numbers",
        "vocabulary": "a list of tokens or the path of a vocabulary file",
        "salt": "a non-negative integer or a list of 2 of them",
        "mask_value": "a string or an integer",
        "renorm_clipping": 'a dict with numbers for "rmax", "rmin" and "dmax"',
        "constant": "a number or a list of numbers (nested lists of equal lengths)",
    }.get(p.name, "a JSON value") + (" or None" if p.nullable else "")


_EXPECTATIONS = {
    "int": lambda p: _number_words(p, "integer", "an"),
    "float": lambda p: _number_words(p, "number", "a"),
    "bool": lambda p: "a boolean (True or False)",
    "str": lambda p: "a string",
    "choice": _choice_words,
    "tuple": _tuple_words,
    "shape": lambda p: (
        ("a positive integer or " if p.accepts_scalar else "")
        + "a list of positive sizes (None for any size, at most one -1)"
    ),
    "axis": lambda p: "an integer axis or a list of integer axes",
    "activation": lambda p: "the name of a Keras activation such as 'relu' or 'softmax'",
    "initializer": lambda p: (
        "the name of a Keras initializer such as 'glorot_uniform', or its serialized dict"
    ),
    "regularizer": lambda p: (
        "'l1', 'l2' or a serialized regularizer such as "
        '{"class_name": "L2", "config": {"l2": 0.01}}'
    ),
    "constraint": lambda p: (
        "the name of a Keras constraint such as 'non_neg', or its serialized dict"
    ),
    "layer": _layer_words,
    "dtype": lambda p: "a dtype name such as 'float32' or a policy such as 'mixed_float16'",
    "json": _json_words,
}


def show(value: Any) -> str:
    """A value as Keras messages show it: strings quoted, the rest as written."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."

"""The typed records of the catalog: a layer, its parameters and its tensor ports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

ParamKind = Literal[
    "int",
    "float",
    "bool",
    "str",
    "choice",
    "tuple",
    "activation",
    "initializer",
    "regularizer",
    "constraint",
    "layer",
    "dtype",
    "shape",
    "axis",
    "json",
]


@dataclass(frozen=True)
class ParamSpec:
    """One constructor parameter of a layer, typed for editing and validation.

    Args:
        name: the keyword argument (and `get_config()` key).
        kind: how the value is edited and checked, see `ParamKind`.
        default: the JSON-safe default (tuples as lists); `None` allowed.
        required: whether a value must be given (no usable default).
        nullable: whether `None` is an allowed value.
        choices: the allowed values of a "choice"; suggested values for "str",
            "activation", "initializer", "regularizer", "constraint" and "dtype"; the
            allowed layer classes of a "layer" (empty: any layer with one input).
        tuple_len: for "tuple", the expected length (`None`: any length).
        item_kind: for "tuple", the kind of each item: "int", "float", or "pair" (an int
            or a list of two ints, as in `cropping=((1, 2), (3, 4))`).
        accepts_scalar: for "tuple" and "shape", whether one number is accepted too
            (Keras broadcasts `kernel_size=3` to `(3, 3)`).
        minimum: the smallest allowed number (for tuples: of each item).
        maximum: the largest allowed number (for tuples: of each item).
        exclusive_maximum: whether `maximum` itself is excluded.
        doc: the parameter's entry in the Keras docstring, whitespace-normalised.
    """

    name: str
    kind: ParamKind
    default: Any
    required: bool
    nullable: bool
    choices: tuple = ()
    tuple_len: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_maximum: bool = False
    doc: str = ""
    item_kind: str | None = None
    accepts_scalar: bool = False


@dataclass(frozen=True)
class PortSpec:
    """One tensor input of a layer call.

    Args:
        name: "inputs" for the usual single input, else the call argument's name
            ("query", "value", "initial_state", ...).
        variadic: whether several edges are accepted, in order (merge layers).
        required: whether the port must be connected.
        min_count: the fewest edges when connected as required (0 for optional ports).
        max_count: the most edges; `None` means unbounded.
    """

    name: str
    variadic: bool = False
    required: bool = True
    min_count: int = 1
    max_count: int | None = 1


@dataclass(frozen=True)
class LayerSpec:
    """Everything kbuilder knows about one Keras layer class.

    Args:
        class_name: the canonical class name (`cls.__name__`).
        aliases: other names under which `keras.layers` exports the class.
        category: the palette category, one of `CATEGORIES`.
        summary: the first sentence of the docstring.
        doc: the full docstring, dedented.
        params: the constructor parameters, in signature order, then `trainable`, `dtype`.
        inputs: the tensor ports, in call order.
        adaptable: whether the layer learns its state from data with `adapt()`.
        api_name: the attribute of `keras.layers` to use in code (`class_name`, unless
            Keras exports the class under an alias only, as `GroupQueryAttention`).
    """

    class_name: str
    aliases: tuple[str, ...]
    category: str
    summary: str
    doc: str
    params: tuple[ParamSpec, ...]
    inputs: tuple[PortSpec, ...]
    adaptable: bool = False
    api_name: str = ""

    def param(self, name: str) -> ParamSpec:
        """The parameter called `name`.

        Raises:
            KeyError: when the layer has no such parameter.
        """
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(
            f"{self.class_name} has no parameter `{name}`. "
            f"Its parameters are: {', '.join(p.name for p in self.params)}."
        )

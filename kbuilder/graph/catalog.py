"""The layer catalog: every Keras layer kbuilder offers, with typed parameters and ports.

The catalog is derived from Keras itself: the classes exported by `keras.layers`, their
`__init__` signatures and defaults, and their docstrings. Only what introspection cannot
know is kept here by hand, in small override tables: which classes are left out and why
(`EXCLUDED`), which string parameters are closed choices, which parameters are tuples of a
fixed length, numeric ranges, the tensor ports of layers that take more than one input, and
a valid value for every parameter that has no default (`PLACEHOLDERS`).

Keras is imported lazily: importing this module is cheap, and the catalog is built once, on
first use, then cached. The module never imports Qt.

Example:

>>> from kbuilder.graph import catalog
>>> spec = catalog.get("Conv2D")
>>> spec.param("padding").choices
('valid', 'same')
>>> catalog.validate_param(spec, "filters", 0)
'Received an invalid value for `filters`, expected a positive integer. Received: filters=0'
"""

from __future__ import annotations

import copy
import difflib
import functools
import inspect
import json
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from kbuilder.graph.errors import UnknownLayerError

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

# Palette order; `all_layers()` is sorted by this, then by name.
CATEGORIES: tuple[str, ...] = (
    "Core",
    "Convolution",
    "Pooling",
    "Recurrent",
    "Attention",
    "Normalization",
    "Regularization",
    "Reshaping",
    "Merging",
    "Activations",
    "Preprocessing",
    "Image augmentation",
    "Wrappers",
)

EXCLUDED: dict[str, str] = {
    "Lambda": "Runs arbitrary Python code, which a project file must not carry.",
    "TorchModuleWrapper": "Wraps a PyTorch module object, which cannot be described by parameters.",
    "JaxLayer": "Wraps JAX functions and parameters, which cannot be described by parameters.",
    "FlaxLayer": "Wraps a Flax module object, which cannot be described by parameters.",
    "TFSMLayer": "Wraps an external TensorFlow SavedModel directory rather than a layer.",
    "SimpleRNNCell": "A bare cell that is only used inside an RNN layer, never on its own.",
    "LSTMCell": "A bare cell that is only used inside an RNN layer, never on its own.",
    "GRUCell": "A bare cell that is only used inside an RNN layer, never on its own.",
    "StackedRNNCells": "A stack of bare cells that is only used inside an RNN layer.",
    "RNN": "Needs a cell object; use LSTM, GRU or SimpleRNN instead.",
    "Layer": "The abstract base class of all layers.",
    "Wrapper": "The abstract base class of the wrapper layers.",
    "InputLayer": "Represented by kbuilder's own Input node.",
    "InputSpec": "Describes what a layer accepts; it is not a layer.",
    "Pipeline": "A container of layer objects; connect the layers in the graph instead.",
    "Equalization": (
        "In Keras 3.15 its symbolic call returns the input tensor itself, which makes any "
        "Functional model containing it cyclic."
    ),
    "MaxNumBoundingBoxes": (
        "Only acts on bounding-box dictionaries, which kbuilder's tensor edges do not "
        "carry; on an image tensor it does nothing."
    ),
}

# A valid value for every parameter that has no usable default (JSON-safe).
PLACEHOLDERS: dict[str, dict[str, Any]] = {
    "Activation": {"activation": "relu"},
    "AdaptiveAveragePooling1D": {"output_size": 4},
    "AdaptiveAveragePooling2D": {"output_size": 4},
    "AdaptiveAveragePooling3D": {"output_size": 4},
    "AdaptiveMaxPooling1D": {"output_size": 4},
    "AdaptiveMaxPooling2D": {"output_size": 4},
    "AdaptiveMaxPooling3D": {"output_size": 4},
    "AlphaDropout": {"rate": 0.1},
    "AveragePooling1D": {"pool_size": 2},
    "AveragePooling2D": {"pool_size": 2},
    "AveragePooling3D": {"pool_size": 2},
    "Bidirectional": {"layer": {"class_name": "LSTM", "config": {"units": 32}}},
    "CategoryEncoding": {"num_tokens": 10},
    "CenterCrop": {"height": 32, "width": 32},
    "Conv1D": {"filters": 32, "kernel_size": 3},
    "Conv1DTranspose": {"filters": 32, "kernel_size": 3},
    "Conv2D": {"filters": 32, "kernel_size": 3},
    "Conv2DTranspose": {"filters": 32, "kernel_size": 3},
    "Conv3D": {"filters": 32, "kernel_size": 3},
    "Conv3DTranspose": {"filters": 32, "kernel_size": 3},
    "ConvLSTM1D": {"filters": 32, "kernel_size": 3},
    "ConvLSTM2D": {"filters": 32, "kernel_size": 3},
    "ConvLSTM3D": {"filters": 32, "kernel_size": 3},
    "Dense": {"units": 32},
    "DepthwiseConv1D": {"kernel_size": 3},
    "DepthwiseConv2D": {"kernel_size": 3},
    # Discretization needs bin boundaries or a bin count; with a count it learns the
    # boundaries from data through adapt().
    "Discretization": {"num_bins": 4},
    "Dot": {"axes": -1},
    "Dropout": {"rate": 0.5},
    "EinsumDense": {"equation": "ab,bc->ac", "output_shape": 32},
    "Embedding": {"input_dim": 1000, "output_dim": 64},
    "GaussianDropout": {"rate": 0.1},
    "GaussianNoise": {"stddev": 0.1},
    "GroupedQueryAttention": {"head_dim": 16, "num_query_heads": 4, "num_key_value_heads": 2},
    "HashedCrossing": {"num_bins": 32},
    "Hashing": {"num_bins": 32},
    "GRU": {"units": 32},
    "LSTM": {"units": 32},
    "MultiHeadAttention": {"num_heads": 2, "key_dim": 16},
    "Permute": {"dims": [2, 1]},
    "RandomBrightness": {"factor": 0.2},
    "RandomColorDegeneration": {"factor": 0.2},
    "RandomContrast": {"factor": 0.2},
    "RandomCrop": {"height": 32, "width": 32},
    "RandomHue": {"factor": 0.2},
    "RandomPosterization": {"factor": 4},
    "RandomRotation": {"factor": 0.1},
    "RandomSaturation": {"factor": 0.2},
    "RandomSharpness": {"factor": 0.2},
    "RandomTranslation": {"height_factor": 0.1, "width_factor": 0.1},
    "RandomZoom": {"height_factor": 0.1},
    "RepeatVector": {"n": 3},
    "Rescaling": {"scale": 1.0 / 255},
    "Reshape": {"target_shape": [-1]},
    "Resizing": {"height": 32, "width": 32},
    "ReversibleEmbedding": {"input_dim": 1000, "output_dim": 64},
    "SeparableConv1D": {"filters": 32, "kernel_size": 3},
    "SeparableConv2D": {"filters": 32, "kernel_size": 3},
    "SimpleRNN": {"units": 32},
    "SpatialDropout1D": {"rate": 0.5},
    "SpatialDropout2D": {"rate": 0.5},
    "SpatialDropout3D": {"rate": 0.5},
    "SpectralNormalization": {"layer": {"class_name": "Dense", "config": {"units": 32}}},
    "TimeDistributed": {"layer": {"class_name": "Dense", "config": {"units": 32}}},
}


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


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------


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
    from kbuilder.graph.app_layers import APPLICATION_LAYERS

    values = {p.name: p.default for p in spec.params}
    values.update(PLACEHOLDERS.get(spec.class_name, {}))
    if spec.class_name in APPLICATION_LAYERS:
        values.update(APPLICATION_LAYERS[spec.class_name].placeholders)
    # Deep copy: list defaults live in the shared, cached catalog.
    return copy.deepcopy(values)


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
            f"Received: {name}={_show(value)}"
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
        f"Received: {name}={_show(value)}"
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
    check = _CROSS_CHECKS.get(spec.class_name)
    if check is not None:
        for name, message in check(params).items():
            errors.setdefault(name, message)
    return errors


def call_arguments(spec: LayerSpec, inputs: dict[str, list]) -> tuple[list, dict]:
    """The positional and keyword arguments with which to call the Keras layer.

    Args:
        spec: the layer's catalog entry.
        inputs: the tensors connected to each port, in edge order, e.g.
            `{"inputs": [t]}`, `{"inputs": [t1, t2, t3]}` for a merge layer, or
            `{"query": [q], "value": [v]}` for attention.

    Returns:
        `(args, kwargs)` for `layer(*args, **kwargs)`: a single port gives `layer(t)`; a
        variadic port gives `layer([t1, t2, ...])`; required ports after the first are
        positional, optional ports are keywords and left out when not connected; Attention
        and AdditiveAttention get `[query, value, key]` packed into one list.

    Raises:
        ValueError: for an unknown port, a missing required port or a wrong edge count.
    """
    ports = {p.name: p for p in spec.inputs}
    unknown = [name for name in inputs if name not in ports]
    if unknown:
        raise ValueError(
            f"{spec.class_name} has no input port `{unknown[0]}`. "
            f"Its ports are: {', '.join(ports)}."
        )
    args: list = []
    kwargs: dict = {}
    for port in spec.inputs:
        tensors = list(inputs.get(port.name) or [])
        _check_count(spec, port, len(tensors))
        if not tensors:
            continue
        value = tensors if port.variadic else tensors[0]
        if port.required or spec.class_name in _PACKED_PORTS:
            args.append(value)
        else:
            kwargs[port.name] = value
    if spec.class_name in _PACKED_PORTS:
        args = [args]
    return args, kwargs


def keras_class(spec: LayerSpec) -> type:
    """The Keras class of a catalog entry (imports keras).

    Use this rather than `getattr(keras.layers, spec.class_name)`: Keras exports a few
    classes under an alias only (`GroupedQueryAttention` as `GroupQueryAttention`).
    """
    import keras

    from kbuilder.graph import app_layers, kbuilder_layers, ops

    if ops.is_operation(spec.class_name):
        return ops.keras_class(spec.class_name)
    if spec.class_name in app_layers.APPLICATION_LAYERS:
        return app_layers.keras_class(spec.class_name)
    if kbuilder_layers.is_kbuilder_layer(spec.class_name):
        return kbuilder_layers.keras_class(spec.class_name)
    return getattr(keras.layers, spec.api_name or spec.class_name)


def call_option_names(spec: LayerSpec) -> tuple[str, ...]:
    """Non-tensor arguments of the layer's ``call`` a node may fix (``training``,
    ``use_causal_mask``, ``return_attention_scores``...), in signature order."""
    return _call_option_names(spec.class_name)


@functools.cache
def _call_option_names(class_name: str) -> tuple[str, ...]:
    from kbuilder.graph import app_layers, ops

    spec = get(class_name)
    if ops.is_operation(class_name) or class_name in app_layers.APPLICATION_LAYERS:
        return ()  # their calls take tensors only
    ports = {p.name for p in spec.inputs}
    skip = ports | {"self", "inputs", "mask", "kwargs", "args"}
    signature = inspect.signature(keras_class(spec).call)
    return tuple(
        name for name, p in signature.parameters.items()
        if name not in skip and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and (name.startswith("use_") or not name.endswith("_mask"))  # tensor masks
        and name not in ("initial_state", "constants")
    )


def validate_call_option(spec: LayerSpec, name: str, value: Any) -> str | None:
    """Check one call option; ``None`` when valid."""
    allowed = call_option_names(spec)
    if name not in allowed:
        return (
            f"`{name}` is not an option of calling {spec.class_name}; "
            f"its options are {', '.join(allowed) or 'none'}."
        )
    if value is not None and not isinstance(value, bool | int | float | str):
        return f"Call option `{name}` must be true/false, a number or text. Received: {value!r}"
    return None


def keras_config(spec: LayerSpec, params: dict[str, Any]) -> dict[str, Any]:
    """Parameters as `from_config()` takes them: nested layers get Keras's envelope.

    kbuilder writes a wrapped layer as `{"class_name": "LSTM", "config": {...}}`; Keras
    finds the class only with `"module": "keras.layers"`, which this adds at every depth
    (e.g. TimeDistributed(Bidirectional(LSTM))).
    """
    config = dict(params)
    for p in spec.params:
        value = config.get(p.name)
        if p.kind != "layer" or not isinstance(value, dict):
            continue
        inner = value.get("config", {})
        try:
            inner_spec = get(value.get("class_name", ""))
        except UnknownLayerError:
            continue  # validation reports it; Keras will say what it cannot find
        if isinstance(inner, dict):
            inner = keras_config(inner_spec, inner)
        config[p.name] = {
            "module": "keras.layers",
            "registered_name": None,
            **value,
            "class_name": inner_spec.api_name,
            "config": inner,
        }
    return config


# --------------------------------------------------------------------------------------
# Override tables: what introspection cannot know
# --------------------------------------------------------------------------------------

_MODULE_CATEGORIES = {
    "core": "Core",
    "convolutional": "Convolution",
    "pooling": "Pooling",
    "rnn": "Recurrent",
    "attention": "Attention",
    "normalization": "Normalization",
    "regularization": "Regularization",
    "reshaping": "Reshaping",
    "merging": "Merging",
    "activations": "Activations",
    "preprocessing": "Preprocessing",
    "image_preprocessing": "Image augmentation",
}

_CATEGORY_OVERRIDES = {
    "Activation": "Core",
    "Bidirectional": "Wrappers",
    "TimeDistributed": "Wrappers",
    "SpectralNormalization": "Wrappers",
    # Deterministic image transforms, not augmentations.
    "Resizing": "Preprocessing",
    "CenterCrop": "Preprocessing",
    "AutoContrast": "Preprocessing",
    "ContrastLimitedAdaptiveHistogramEqualization": "Preprocessing",
}

# Signature parameters that are not settings: `weights` takes arrays, which kbuilder
# carries separately, and Keras does not put it in the config.
_HIDDEN_PARAMS = frozenset({"weights"})

# Config keys that the signature hides behind **kwargs; from_config passes them back.
_CONFIG_ONLY_PARAMS: dict[str, tuple[str, ...]] = {
    "AdditiveAttention": ("seed",),
    "AutoContrast": ("data_format",),
    "ConvLSTM1D": ("unroll", "zero_output_for_mask"),
    "ConvLSTM2D": ("unroll", "zero_output_for_mask"),
    "ConvLSTM3D": ("unroll", "zero_output_for_mask"),
    "EinsumDense": ("activity_regularizer",),
    "Embedding": ("activity_regularizer",),
    "GRU": ("zero_output_for_mask",),
    "IntegerLookup": ("vocabulary_size",),
    "LSTM": ("zero_output_for_mask",),
    "LayerNormalization": ("rms_scaling",),
    "RandomBrightness": ("data_format",),
    "RandomContrast": ("data_format",),
    "ReversibleEmbedding": ("activity_regularizer", "quantization_config"),
    "SimpleRNN": ("zero_output_for_mask",),
    "Solarization": ("data_format",),
    "StringLookup": ("oov_method", "vocabulary_size"),
    "TextVectorization": ("vocabulary_size",),
}

# Defaults of config-only parameters that no signature in the class hierarchy shows
# (Keras pops them from **kwargs).
_POPPED_DEFAULTS = {"vocabulary_size": None, "rms_scaling": False}

_BASE_DOCS = {
    "trainable": "Boolean, whether the layer's variables should be trainable.",
    "dtype": (
        "The dtype policy of the layer's computations and weights: a dtype name such as "
        '`"float32"` or a mixed precision policy such as `"mixed_float16"`. `None` uses '
        "the global policy."
    ),
    "seed": "Integer, the random seed (for reproducible results).",
    "data_format": (
        'string, either `"channels_last"` or `"channels_first"`. `None` uses the '
        "`image_data_format` of the Keras config (usually `channels_last`)."
    ),
    "activity_regularizer": "Optional regularizer function for the output of the layer.",
    "zero_output_for_mask": (
        "Boolean, whether the output should use zeros for the masked timesteps."
    ),
    "unroll": "Boolean, whether the recurrence should be unrolled instead of looped.",
    "vocabulary_size": (
        "The size of the vocabulary, recorded by Keras when saving; leave it as it is."
    ),
    "rms_scaling": "Deprecated; use RMSNormalization instead.",
    "mask_value": (
        "The value that marks a timestep as masked: a timestep whose features all equal "
        "it is skipped by downstream layers that support masking."
    ),
    "antialias": "Whether to use an anti-aliasing filter when downsampling an image.",
    "value_range": (
        "The range `[low, high]` of the values of the input images, e.g. `[0, 255]` or "
        "`[0, 1]`."
    ),
    "gptq_unpacked_column_size": "Set by GPTQ quantization; leave it as it is.",
    "quantization_config": "Optional quantization settings (a serialized dict).",
}

_POS_INT = {"kind": "int", "minimum": 1}
_NONNEG_INT = {"kind": "int", "minimum": 0}
_FLOAT = {"kind": "float"}
_NONNEG_FLOAT = {"kind": "float", "minimum": 0}
_PROBABILITY = {"kind": "float", "minimum": 0, "maximum": 1}
_RATE = {"kind": "float", "minimum": 0, "maximum": 1, "exclusive_maximum": True}
_JSON = {"kind": "json"}
_DATA_FORMAT = {"kind": "choice", "choices": ("channels_last", "channels_first")}


def _tuple(length: int | None, item: str = "int", scalar: bool = True, **extra: Any) -> dict:
    return {
        "kind": "tuple",
        "tuple_len": length,
        "item_kind": item,
        "accepts_scalar": scalar,
        **extra,
    }


# A range as one number or a (low, high) pair, as the image augmentation layers take it.
_FACTOR = _tuple(2, "float")
_UNIT_FACTOR = _tuple(2, "float", minimum=0, maximum=1)

# Parameters typed by name alone, whatever the layer.
_NAME_RULES: dict[str, dict[str, Any]] = {
    **dict.fromkeys(
        (
            "units", "filters", "num_heads", "key_dim", "value_dim", "head_dim",
            "num_query_heads", "num_key_value_heads", "input_dim", "output_dim", "groups",
            "depth_multiplier", "n", "num_bins", "num_tokens", "power_iterations", "height",
            "width", "num_mel_bins", "sampling_rate", "fft_length", "sequence_length",
            "sequence_stride", "frame_length", "frame_step", "bins", "max_tokens",
            "output_sequence_length", "sliding_window", "lora_rank", "num_chains",
            "chain_depth", "num_ops", "gptq_unpacked_column_size",
        ),
        _POS_INT,
    ),
    "num_oov_indices": _NONNEG_INT,
    "vocabulary_size": _NONNEG_INT,
    "seed": {"kind": "int"},
    "rate": _RATE,
    "dropout": _PROBABILITY,
    "recurrent_dropout": _PROBABILITY,
    "momentum": _PROBABILITY,
    "renorm_momentum": _PROBABILITY,
    **dict.fromkeys(
        ("stddev", "l1", "l2", "epsilon", "negative_slope", "max_value", "threshold",
         "clip_limit", "min_freq"),
        _NONNEG_FLOAT,
    ),
    **dict.fromkeys(
        ("lora_alpha", "logit_soft_cap", "max_freq", "top_db", "fill_value", "alpha",
         "mag_exp", "min_power", "ref_power", "offset"),
        _FLOAT,
    ),
    "activation": {"kind": "activation"},
    "recurrent_activation": {"kind": "activation"},
    "axis": {"kind": "axis"},
    "axes": {"kind": "axis"},
    "shared_axes": {"kind": "axis"},
    "attention_axes": {"kind": "axis"},
    "dtype": {"kind": "dtype"},
    "reverse_dtype": {"kind": "dtype"},
    "layer": {"kind": "layer"},
    "backward_layer": {"kind": "layer"},
    "data_format": _DATA_FORMAT,
    "target_shape": {"kind": "shape"},
    "noise_shape": {"kind": "shape"},
    "output_shape": {"kind": "shape", "accepts_scalar": True},
    "dims": _tuple(None, scalar=False, minimum=1),
    "ngrams": _tuple(None, minimum=1),
    "value_range": _tuple(2, "float", scalar=False),
    "tile_grid_size": _tuple(2, scalar=False, minimum=1),
    **dict.fromkeys(
        ("factor", "height_factor", "width_factor", "x_factor", "y_factor",
         "brightness_factor", "contrast_factor", "saturation_factor", "hue_factor"),
        _FACTOR,
    ),
    "addition_factor": _UNIT_FACTOR,
    "threshold_factor": _UNIT_FACTOR,
    "sigma": _tuple(2, "float", minimum=0),
    "encoding": {"kind": "str", "choices": ("utf-8",)},
    "equation": {"kind": "str"},
    "bias_axes": {"kind": "str"},
    "use_cudnn": {"kind": "choice", "choices": ("auto", True, False)},
    "oov_method": {"kind": "choice", "choices": ("floormod", "farmhash")},
    "flash_attention": {"kind": "bool"},
    **dict.fromkeys(
        ("vocabulary", "idf_weights", "mean", "variance", "bin_boundaries", "salt",
         "renorm_clipping", "quantization_config"),
        _JSON,
    ),
}

# Spatial tuples whose length is the layer's rank ("2D" in the class name -> 2).
_RANK_TUPLES = {
    "kernel_size": {"minimum": 1},
    "strides": {"minimum": 1},
    "pool_size": {"minimum": 1},
    "dilation_rate": {"minimum": 1},
    "output_padding": {"minimum": 0},
    "output_size": {"minimum": 1},
    "size": {"minimum": 1},
}

_CONV_PADDING = {"kind": "choice", "choices": ("valid", "same")}
_RESIZE_INTERPOLATIONS = ("bilinear", "nearest", "bicubic", "lanczos3", "lanczos5")
_AFFINE_INTERPOLATIONS = ("nearest", "bilinear")
_LOOKUP_OUTPUT_MODES = ("int", "one_hot", "multi_hot", "count", "tf_idf")
_RNN_LAYERS = ("LSTM", "GRU", "SimpleRNN", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D")
# Layers with a `kernel` or `embeddings` weight, which SpectralNormalization needs.
_SPECTRAL_LAYERS = (
    "Dense", "EinsumDense", "Embedding", "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose",
    "Conv2DTranspose", "Conv3DTranspose",
)

# Per-layer corrections, applied after the name rules.
_PARAM_OVERRIDES: dict[tuple[str, str], dict[str, Any]] = {
    ("Conv1D", "padding"): {"kind": "choice", "choices": ("valid", "same", "causal")},
    ("UpSampling1D", "size"): _POS_INT,
    ("UpSampling2D", "interpolation"): {"kind": "choice", "choices": _RESIZE_INTERPOLATIONS},
    ("Resizing", "interpolation"): {"kind": "choice", "choices": _RESIZE_INTERPOLATIONS},
    # ops.image.resize pads only with a constant.
    ("Resizing", "fill_mode"): {"kind": "choice", "choices": ("constant",)},
    ("AugMix", "interpolation"): {"kind": "choice", "choices": _AFFINE_INTERPOLATIONS},
    ("RandAugment", "interpolation"): {"kind": "choice", "choices": _AFFINE_INTERPOLATIONS},
    ("AugMix", "factor"): _UNIT_FACTOR,
    ("RandAugment", "factor"): _UNIT_FACTOR,
    ("CutMix", "factor"): _UNIT_FACTOR,
    ("RandomErasing", "factor"): _UNIT_FACTOR,
    ("RandomErasing", "scale"): _UNIT_FACTOR,
    ("RandomElasticTransform", "scale"): _UNIT_FACTOR,
    ("RandomPerspective", "scale"): _PROBABILITY,
    ("RandomGrayscale", "factor"): _PROBABILITY,
    # Bits to keep: one number, or the (low, high) range Keras itself writes.
    ("RandomPosterization", "factor"): _tuple(2, minimum=1, maximum=8),
    ("RandomGaussianBlur", "kernel_size"): _tuple(2, minimum=1),
    ("RandomFlip", "mode"): {
        "kind": "choice",
        "choices": ("horizontal", "vertical", "horizontal_and_vertical"),
    },
    ("MixUp", "alpha"): _NONNEG_FLOAT,
    ("AugMix", "alpha"): _NONNEG_FLOAT,
    ("Cropping1D", "cropping"): _tuple(2, minimum=0),
    ("Cropping2D", "cropping"): _tuple(2, "pair", minimum=0),
    ("Cropping3D", "cropping"): _tuple(3, "pair", minimum=0),
    ("ZeroPadding1D", "padding"): _tuple(2, minimum=0),
    ("ZeroPadding2D", "padding"): _tuple(2, "pair", minimum=0),
    ("ZeroPadding3D", "padding"): _tuple(3, "pair", minimum=0),
    ("STFTSpectrogram", "padding"): _CONV_PADDING,
    ("STFTSpectrogram", "mode"): {
        "kind": "choice",
        "choices": ("log", "magnitude", "psd", "real", "imag", "angle", "stft"),
    },
    # Any scipy.signal window name is accepted; these are suggestions.
    ("STFTSpectrogram", "scaling"): {
        "kind": "choice",
        "choices": ("density", "spectrum"),
        "nullable": True,
    },
    ("STFTSpectrogram", "window"): {
        "kind": "str",
        "choices": ("hann", "hamming"),
        "nullable": True,
    },
    ("MelSpectrogram", "window"): {
        "kind": "choice",
        "choices": ("hann", "hamming"),
        "nullable": True,
    },
    ("Attention", "score_mode"): {"kind": "choice", "choices": ("dot", "concat")},
    ("Bidirectional", "merge_mode"): {
        "kind": "choice",
        "choices": ("concat", "sum", "mul", "ave"),
        "nullable": True,
    },
    ("Bidirectional", "layer"): {"choices": _RNN_LAYERS},
    ("Bidirectional", "backward_layer"): {"choices": _RNN_LAYERS},
    ("SpectralNormalization", "layer"): {"choices": _SPECTRAL_LAYERS},
    ("TextVectorization", "standardize"): {
        "kind": "choice",
        "choices": ("lower_and_strip_punctuation", "lower", "strip_punctuation"),
        "nullable": True,
    },
    ("TextVectorization", "split"): {
        "kind": "choice",
        "choices": ("whitespace", "character"),
        "nullable": True,
    },
    ("TextVectorization", "output_mode"): {"kind": "choice", "choices": _LOOKUP_OUTPUT_MODES},
    ("StringLookup", "output_mode"): {"kind": "choice", "choices": _LOOKUP_OUTPUT_MODES},
    ("IntegerLookup", "output_mode"): {"kind": "choice", "choices": _LOOKUP_OUTPUT_MODES},
    ("Discretization", "output_mode"): {
        "kind": "choice",
        "choices": ("int", "one_hot", "multi_hot", "count"),
    },
    ("Hashing", "output_mode"): {
        "kind": "choice",
        "choices": ("int", "one_hot", "multi_hot", "count"),
    },
    ("HashedCrossing", "output_mode"): {"kind": "choice", "choices": ("int", "one_hot")},
    ("CategoryEncoding", "output_mode"): {
        "kind": "choice",
        "choices": ("one_hot", "multi_hot", "count"),
    },
    # Keras refuses num_tokens=None although the signature allows it.
    ("CategoryEncoding", "num_tokens"): {"nullable": False, "required": True},
    ("StringLookup", "mask_token"): {"kind": "str"},
    ("StringLookup", "oov_token"): {"kind": "str"},
    ("IntegerLookup", "mask_token"): {"kind": "int"},
    ("IntegerLookup", "oov_token"): {"kind": "int"},
    # Only int64 works at this time (Keras says so in IntegerLookup.__init__).
    ("IntegerLookup", "vocabulary_dtype"): {"kind": "choice", "choices": ("int64",)},
    ("Hashing", "mask_value"): _JSON,
    ("Masking", "mask_value"): _FLOAT,
    # EfficientNet & co. rescale per channel with lists.
    ("Rescaling", "scale"): _tuple(None, "float"),
    ("Rescaling", "offset"): _tuple(None, "float"),
    ("Normalization", "axis"): {"nullable": True},
    ("Dot", "axes"): {"kind": "axis"},
    ("RandomErasing", "fill_value"): {"kind": "float", "nullable": True},
    ("EinsumDense", "output_shape"): {"kind": "shape", "accepts_scalar": True},
}

# Ports of layers that do not take one plain tensor.
_OPTIONAL = {"required": False, "min_count": 0}
_ATTENTION_PORTS = (PortSpec("query"), PortSpec("value"), PortSpec("key", **_OPTIONAL))
_MHA_PORTS = (*_ATTENTION_PORTS, PortSpec("attention_mask", **_OPTIONAL))
# How many state tensors `initial_state` takes (None: it depends on the wrapped layer).
_STATE_COUNTS = {
    "LSTM": 2, "GRU": 1, "SimpleRNN": 1, "ConvLSTM1D": 2, "ConvLSTM2D": 2, "ConvLSTM3D": 2,
    "Bidirectional": None,
}
_PORTS: dict[str, tuple[PortSpec, ...]] = {
    "MultiHeadAttention": _MHA_PORTS,
    "GroupedQueryAttention": _MHA_PORTS,
    "Attention": _ATTENTION_PORTS,
    "AdditiveAttention": _ATTENTION_PORTS,
    "HashedCrossing": (PortSpec("inputs", variadic=True, min_count=2, max_count=2),),
    "CategoryEncoding": (PortSpec("inputs"), PortSpec("count_weights", **_OPTIONAL)),
    **{
        name: (
            PortSpec("sequences"),
            PortSpec("initial_state", variadic=True, max_count=count, **_OPTIONAL),
        )
        for name, count in _STATE_COUNTS.items()
    },
}
# Layers that take their tensors as one list: layer([query, value, key]).
_PACKED_PORTS = frozenset({"Attention", "AdditiveAttention"})
# Merge layers that take exactly two inputs.
_BINARY_MERGES = frozenset({"Subtract", "Dot"})


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
                f"adapt() on data). Received: mean={_show(params.get('mean'))}, "
                f"variance={_show(params.get('variance'))}"
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
            f"output_mode={_show(params.get('output_mode'))}"
        )
    return errors


_CROSS_CHECKS = {
    "Discretization": _check_discretization,
    "Normalization": _check_normalization,
    "GroupedQueryAttention": _check_grouped_heads,
    "StringLookup": _check_tf_idf,
    "IntegerLookup": _check_tf_idf,
    "TextVectorization": _check_text_vectorization,
}


# --------------------------------------------------------------------------------------
# Building the catalog
# --------------------------------------------------------------------------------------


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
        specs.append(_layer_spec(cls, names))
    from kbuilder.graph import kbuilder_layers

    specs += kbuilder_layers.catalog_specs()  # kbuilder's own layers are in the palette
    order = {c: i for i, c in enumerate(_category_order())}
    specs.sort(key=lambda s: (order.get(s.category, len(order)), s.class_name))
    by_name = {}
    for spec in specs:
        for name in (spec.class_name, *spec.aliases):
            by_name[name] = spec
    # Found by name for imported models, not offered in the palette: operations between
    # layers (x + 3.0) and layers that keras.applications models define for themselves.
    from kbuilder.graph import app_layers, ops

    for spec in [*ops.catalog_specs(), *app_layers.catalog_specs()]:
        by_name[spec.class_name] = spec
    return _Catalog(tuple(specs), by_name)


def _category_order() -> tuple[str, ...]:
    return (*CATEGORIES, "Other")


def _layer_spec(cls: type, exported_names: list[str]) -> LayerSpec:
    name = cls.__name__
    doc = _dedent_doc(cls.__doc__ or "")
    arg_docs: dict[str, str] = {}
    # Base classes document what a subclass's docstring leaves out (most-derived wins).
    for klass in reversed(cls.__mro__):
        arg_docs.update(_class_arg_docs(klass))
    params = tuple(
        _param_spec(cls, pname, default, arg_docs.get(pname, ""))
        for pname, default in _raw_params(cls)
    )
    aliases = tuple(sorted(n for n in exported_names if n != name))
    return LayerSpec(
        class_name=name,
        aliases=aliases,
        category=_category(cls),
        summary=_summary(doc),
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
        if p.name in ("self", "name") or p.name in _HIDDEN_PARAMS:
            continue
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        out.append((p.name, _REQUIRED if p.default is p.empty else p.default))
    for extra in _CONFIG_ONLY_PARAMS.get(cls.__name__, ()):
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
    return _POPPED_DEFAULTS[name]


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
    fields.update(_PARAM_OVERRIDES.get((cls.__name__, name), {}))
    fields.setdefault("required", required)
    if fields["kind"] == "activation" and not fields["choices"]:
        fields["choices"] = _activation_names()
    elif fields["kind"] in _KERAS_OBJECT_KINDS and not fields["choices"]:
        fields["choices"] = _keras_object_names(fields["kind"])
    elif fields["kind"] == "dtype":
        fields["choices"] = _DTYPE_SUGGESTIONS
    return ParamSpec(
        name=name,
        default=None if required else _json_safe(default),
        doc=doc or _BASE_DOCS.get(name, ""),
        **fields,
    )


def _infer_from_name(cls: type, name: str, default: Any) -> dict[str, Any]:
    if name in _NAME_RULES:
        return dict(_NAME_RULES[name])
    for suffix in _KERAS_OBJECT_KINDS:
        if name.endswith("_" + suffix):
            return {"kind": suffix}
    if name in _RANK_TUPLES:
        rank = _rank(cls.__name__)
        return _tuple(rank, **_RANK_TUPLES[name])
    if name == "padding" and isinstance(default, str):
        return dict(_CONV_PADDING)
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
        return _tuple(len(default), item, scalar=False)
    return {"kind": "json"}


def _rank(class_name: str) -> int | None:
    match = re.search(r"([123])D", class_name)
    return int(match.group(1)) if match else None


def _category(cls: type) -> str:
    if cls.__name__ in _CATEGORY_OVERRIDES:
        return _CATEGORY_OVERRIDES[cls.__name__]
    parts = cls.__module__.split(".")
    if "image_preprocessing" in parts:
        return _MODULE_CATEGORIES["image_preprocessing"]
    if "layers" in parts:
        package = parts[parts.index("layers") + 1]
        return _MODULE_CATEGORIES.get(package, "Other")
    return "Other"


def _ports(cls: type) -> tuple[PortSpec, ...]:
    from keras.src.layers.merging.base_merge import Merge

    name = cls.__name__
    if name in _PORTS:
        return _PORTS[name]
    if issubclass(cls, Merge):
        if name in _BINARY_MERGES:
            return (PortSpec("inputs", variadic=True, min_count=2, max_count=2),)
        return (PortSpec("inputs", variadic=True, min_count=2, max_count=None),)
    return (PortSpec("inputs"),)


def _check_count(spec: LayerSpec, port: PortSpec, count: int) -> None:
    if count == 0:
        if port.required:
            raise ValueError(f"{spec.class_name} needs an input on port `{port.name}`.")
        return
    low = max(port.min_count, 1)
    high = port.max_count
    if count < low or (high is not None and count > high):
        if high is None:
            wanted = f"at least {low}"
        elif low == high:
            wanted = f"exactly {low}"
        else:
            wanted = f"{low} to {high}"
        raise ValueError(
            f"{spec.class_name} takes {wanted} tensor(s) on port `{port.name}`. "
            f"Received: {count}"
        )


# --------------------------------------------------------------------------------------
# Docstrings
# --------------------------------------------------------------------------------------


def _dedent_doc(doc: str) -> str:
    """Dedent a docstring whose first line is not indented.

    Unlike `inspect.cleandoc`, lines at column 0 inside the body (Keras puts some code
    fences there) do not stop the rest from being dedented.
    """
    lines = doc.expandtabs().splitlines()
    if not lines:
        return ""
    indents = [len(line) - len(line.lstrip()) for line in lines[1:] if line.strip()]
    indents = [i for i in indents if i > 0]
    margin = min(indents) if indents else 0
    body = [line[margin:] if line[:margin].isspace() else line.lstrip() for line in lines[1:]]
    return "\n".join([lines[0].strip(), *body]).strip()


_ARG_LINE = re.compile(r"^\*{0,2}([A-Za-z_][A-Za-z0-9_]*)\s*(?:\([^)]*\))?:(?:\s+(.*))?$")


@functools.cache
def _class_arg_docs(klass: type) -> dict[str, str]:
    doc = klass.__dict__.get("__doc__")
    return _parse_args_section(_dedent_doc(doc)) if isinstance(doc, str) else {}


def _parse_args_section(doc: str) -> dict[str, str]:
    """The `Args:` entries of a Google-style docstring, whitespace-normalised."""
    entries: dict[str, str] = {}
    lines = doc.splitlines()
    start = next(
        (i for i, line in enumerate(lines) if line.strip() in ("Args:", "Arguments:")), None
    )
    if start is None:
        return entries
    header_indent = len(lines[start]) - len(lines[start].lstrip())
    entry_indent = None
    current = None
    for line in lines[start + 1 :]:
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if indent <= header_indent:
            break
        if entry_indent is None:
            entry_indent = indent
        match = _ARG_LINE.match(line.strip())
        # Keras has a few entries indented one space off; continuations are deeper.
        if match and abs(indent - entry_indent) <= 1:
            current = match.group(1)
            entries[current] = match.group(2) or ""
        elif indent < entry_indent:
            break
        elif current is not None:
            entries[current] += " " + line.strip()
    return {k: " ".join(v.split()) for k, v in entries.items()}


# "e.g." or "a.k.a." end in a period without ending the sentence.
_ABBREVIATION = re.compile(r"(?:\b\w\.){2,}$|\b(?:al|etc|vs|approx)\.$")


def _summary(doc: str) -> str:
    paragraph = " ".join(doc.split("\n\n", 1)[0].split())
    for match in re.finditer(r"[.!?](?=\s|$)", paragraph):
        candidate = paragraph[: match.end()]
        if not _ABBREVIATION.search(candidate):
            return re.sub(r"\.{2,}$", ".", candidate)
    return paragraph


# --------------------------------------------------------------------------------------
# Names Keras accepts for activations, initializers, regularizers, constraints, dtypes
# --------------------------------------------------------------------------------------

_KERAS_OBJECT_KINDS = ("initializer", "regularizer", "constraint")
_NOT_ACTIVATIONS = frozenset({"get", "serialize", "deserialize"})
_DTYPE_SUGGESTIONS = (
    "float32", "float16", "bfloat16", "float64", "mixed_float16", "mixed_bfloat16",
    "int8", "int16", "int32", "int64", "uint8", "bool", "string",
)


@functools.cache
def _activation_names() -> tuple[str, ...]:
    """The `keras.activations` functions that take one tensor (plus optional arguments)."""
    import keras

    names = []
    for attr in dir(keras.activations):
        func = getattr(keras.activations, attr)
        if attr.startswith("_") or attr in _NOT_ACTIVATIONS or not callable(func):
            continue
        params = inspect.signature(func).parameters.values()
        required = [p for p in params if p.default is p.empty]
        if len(required) == 1:
            names.append(attr)
    # The usual suspects first: an editor shows the start of the list.
    common = [n for n in ("relu", "sigmoid", "softmax", "tanh", "linear", "gelu", "silu")
              if n in names]
    return (*common, *sorted(n for n in names if n not in common))


def _keras_module(kind: str) -> Any:
    if kind == "initializer":
        from keras.src import initializers as module
    elif kind == "regularizer":
        from keras.src import regularizers as module
    else:
        from keras.src import constraints as module
    return module


@functools.cache
def _keras_object_classes(kind: str) -> dict[str, type]:
    """Names (snake_case and class names) of the concrete classes of one kind."""
    module = _keras_module(kind)
    base = {"initializer": "Initializer", "regularizer": "Regularizer",
            "constraint": "Constraint"}[kind]
    base_cls = module.ALL_OBJECTS_DICT[base]
    return {
        key: value
        for key, value in module.ALL_OBJECTS_DICT.items()
        if inspect.isclass(value) and value is not base_cls
    }


@functools.cache
def _keras_object_names(kind: str) -> tuple[str, ...]:
    """The snake_case names that make an object of `kind` without further arguments."""
    return tuple(
        sorted(
            key
            for key, cls in _keras_object_classes(kind).items()
            if key == key.lower() and _makes_without_arguments(cls)
        )
    )


def _makes_without_arguments(cls: type) -> bool:
    # Read the signature rather than instantiate: some (STFT) import scipy on creation.
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    return all(
        p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params
    )


@functools.cache
def _dtype_names() -> frozenset[str]:
    from keras.src.backend.common import dtypes

    return frozenset(dtypes.ALLOWED_DTYPES) | {"mixed_float16", "mixed_bfloat16"}


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------


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
    classes = _keras_object_classes(p.kind)
    if isinstance(value, str):
        cls = classes.get(value)
        ok = cls is not None and _makes_without_arguments(cls)
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
        return None if value in _dtype_names() else _expectation(p)
    # get_config() writes the policy as a serialized DTypePolicy.
    if isinstance(value, dict) and value.get("class_name") in ("DTypePolicy", "FloatDTypePolicy"):
        name = value.get("config", {}).get("name")
        return None if name in _dtype_names() else _expectation(p)
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
    # An operation node's operand (kbuilder.graph.ops).
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


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------


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


def _show(value: Any) -> str:
    """A value as Keras messages show it: strings quoted, the rest as written."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."

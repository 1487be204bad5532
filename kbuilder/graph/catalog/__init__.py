"""The layer catalog: every Keras layer kbuilder offers, with typed parameters and ports.

The catalog is derived from Keras itself: the classes exported by `keras.layers`, their
`__init__` signatures and defaults, and their docstrings. Only what introspection cannot
know is kept here by hand, in small override tables: which classes are left out and why
(`EXCLUDED`), which string parameters are closed choices, which parameters are tuples of a
fixed length, numeric ranges, the tensor ports of layers that take more than one input, and
a valid value for every parameter that has no default (`PLACEHOLDERS`).

Keras is imported lazily: importing this package is cheap, and the catalog is built once, on
first use, then cached. The package never imports Qt.

The rooms: `specs` (the typed records), `overrides` (the hand-kept tables), `introspect` (an
entry from a Keras class), `docs` (docstrings), `keras_names` (activation, initializer...
names), `registry` (the built catalog: lookup, search, defaults), `checks` (value validation
and the words of expectations), `calls` (the Keras class and call of an entry), and the
entries that are not `keras.layers` classes: `ops` (operation nodes), `app_layers` (layers of
keras.applications models), `kbuilder_layers` (kbuilder's own layers). This module keeps the
public API in one place.

Example:

>>> from kbuilder.graph import catalog
>>> spec = catalog.get("Conv2D")
>>> spec.param("padding").choices
('valid', 'same')
>>> catalog.validate_param(spec, "filters", 0)
'Received an invalid value for `filters`, expected a positive integer. Received: filters=0'
"""

from kbuilder.graph.catalog.calls import (
    call_arguments,
    call_option_names,
    keras_class,
    keras_config,
    validate_call_option,
)
from kbuilder.graph.catalog.checks import validate_param, validate_params
from kbuilder.graph.catalog.introspect import layer_spec, spatial_rank
from kbuilder.graph.catalog.keras_names import keras_object_classes
from kbuilder.graph.catalog.overrides import CATEGORIES, EXCLUDED, PLACEHOLDERS
from kbuilder.graph.catalog.registry import (
    all_layers,
    categories,
    default_params,
    get,
    pretrained_networks,
    search,
)
from kbuilder.graph.catalog.specs import LayerSpec, ParamKind, ParamSpec, PortSpec

__all__ = [
    "CATEGORIES",
    "EXCLUDED",
    "PLACEHOLDERS",
    "LayerSpec",
    "ParamKind",
    "ParamSpec",
    "PortSpec",
    "all_layers",
    "call_arguments",
    "call_option_names",
    "categories",
    "default_params",
    "get",
    "keras_class",
    "keras_config",
    "keras_object_classes",
    "layer_spec",
    "pretrained_networks",
    "search",
    "spatial_rank",
    "validate_call_option",
    "validate_param",
    "validate_params",
]

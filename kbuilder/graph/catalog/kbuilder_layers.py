"""Layers kbuilder defines itself, for preprocessing that travels with the model.

``FillMissing`` replaces missing values (NaN) by one fill value per feature, held as a
weight: the values the training data taught it are saved in the ``.keras`` file, the
project and every export, so a model takes raw rows with gaps wherever it runs.

Each class is kept once, as source text, and used twice: kbuilder runs it (``keras_class``,
which imports keras only then) and generated code carries it, so the two are the same
class, registered under the same name (``kbuilder>FillMissing``): a model saved by a
generated script loads in kbuilder and the reverse. Source text rather than a module of
classes because a packaged kbuilder carries compiled code only, and because the graph
package must not import keras when it is imported.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

# The package under which the classes are registered with Keras's serialization.
PACKAGE = "kbuilder"
# The module the classes are defined in when kbuilder runs them (``keras_class``).
CLASSES_MODULE = "kbuilder.graph._kbuilder_layer_classes"


@dataclass(frozen=True)
class KbuilderLayer:
    """One kbuilder-defined layer class.

    Args:
        category: the palette category.
        summary: one sentence for the palette and inspector.
        kinds: how each parameter is edited (None defaults give Keras's signature no kind).
        adapted: the parameters that, when given, hold what ``adapt()`` computes.
        source: the class as generated code defines it (uses ``keras`` and ``layers``).
    """

    category: str
    summary: str
    kinds: dict[str, str]
    adapted: tuple[str, ...]
    source: str


KBUILDER_LAYERS: dict[str, KbuilderLayer] = {
    "FillMissing": KbuilderLayer(
        category="Preprocessing",
        summary="Replaces missing values (NaN) by a fill value per feature, learned from "
                "the training data (the median).",
        kinds={"fill_values": "json"},
        adapted=("fill_values",),
        source='''
@keras.saving.register_keras_serializable(package="kbuilder")
class FillMissing(layers.Layer):
    """Replaces missing values (NaN) by a fill value per feature.

    The fill values are a non-trainable weight, so they are saved with the model and used
    wherever it runs. `adapt(data)` sets them to each feature's median over the finite
    values of `data` (0 for a feature that has none), as a data scientist fills the gaps
    of a table before training.

    Args:
        fill_values: one value per feature, or `None` to learn them with `adapt()`
            (zeros until then).
        axis: the axis of the features (the last one by default).
    """

    def __init__(self, fill_values=None, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.fill_values = None if fill_values is None else [float(v) for v in fill_values]
        self.axis = int(axis)
        self.supports_masking = True

    def build(self, input_shape):
        size = input_shape[self.axis]
        if size is None:
            raise ValueError(
                "FillMissing needs a known number of features on axis "
                f"{self.axis}. Received: input_shape={input_shape}"
            )
        if self.fill_values is not None and len(self.fill_values) != size:
            raise ValueError(
                f"Received an invalid value for `fill_values`, expected {size} values "
                f"(one per feature). Received: fill_values={self.fill_values}"
            )
        self.fill = self.add_weight(
            name="fill_values", shape=(size,), initializer="zeros", trainable=False
        )
        if self.fill_values is not None:
            self.fill.assign(keras.ops.convert_to_tensor(self.fill_values, dtype="float32"))

    def adapt(self, data):
        """Set the fill values to each feature's median over the finite values of `data`."""
        import numpy as np

        values = np.asarray(keras.ops.convert_to_numpy(data), dtype="float64")
        if not self.built:
            self.build((None, *values.shape[1:]))
        columns = np.moveaxis(values, self.axis, -1).reshape(-1, values.shape[self.axis])
        medians = []
        for column in columns.T:
            finite = column[np.isfinite(column)]
            medians.append(float(np.median(finite)) if finite.size else 0.0)
        self.fill.assign(np.asarray(medians, dtype="float32"))

    def call(self, inputs):
        shape = [1] * len(inputs.shape)
        shape[self.axis] = -1
        fill = keras.ops.reshape(keras.ops.cast(self.fill, inputs.dtype), shape)
        return keras.ops.where(keras.ops.isnan(inputs), fill, inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"fill_values": self.fill_values, "axis": self.axis})
        return config''',
    ),
}


def is_kbuilder_layer(class_name: str | None) -> bool:
    return class_name in KBUILDER_LAYERS


@functools.cache
def keras_class(class_name: str) -> type:
    """The Keras class of ``class_name``, defined from its source and registered with Keras's
    serialization (imports keras)."""
    import sys
    import types

    import keras

    # The classes live in a real module holding `keras` and `layers`: torch.compile (a
    # model trained with jit_compile, run on PyTorch) looks their globals up through the
    # module their __name__ names.
    module = sys.modules.get(CLASSES_MODULE)
    if module is None:
        module = sys.modules[CLASSES_MODULE] = types.ModuleType(CLASSES_MODULE)
        module.__dict__.update(keras=keras, layers=keras.layers)
    source = KBUILDER_LAYERS[class_name].source
    exec(compile(source, f"<kbuilder layer {class_name}>", "exec"), module.__dict__)  # noqa: S102
    return module.__dict__[class_name]


def register_all() -> None:
    """Define and register every class, so that a ``.keras`` file using them loads with
    kbuilder's class (registered again: generated code run in this process registers its
    own copy under the same name)."""
    import keras

    for name in KBUILDER_LAYERS:
        keras.saving.get_custom_objects()[f"{PACKAGE}>{name}"] = keras_class(name)


def is_kbuilder_class(cls: type) -> bool:
    """Whether ``cls`` is one of kbuilder's layers, or the copy generated code defines."""
    import keras

    name = keras.saving.get_registered_name(cls)
    return name.startswith(f"{PACKAGE}>") and name.split(">", 1)[1] in KBUILDER_LAYERS


def catalog_specs() -> list[Any]:
    """A ``LayerSpec`` for each kbuilder layer, derived from its class."""
    import dataclasses

    from kbuilder.graph.catalog.introspect import layer_spec

    specs = []
    for name, layer in KBUILDER_LAYERS.items():
        spec = layer_spec(keras_class(name), [name])
        params = tuple(
            dataclasses.replace(p, kind=layer.kinds[p.name]) if p.name in layer.kinds else p
            for p in spec.params
        )
        specs.append(dataclasses.replace(
            spec, category=layer.category, summary=layer.summary,
            doc=f"{spec.doc}\n\nDefined by kbuilder; generated code carries the class.",
            params=params, adaptable=True,
        ))
    return specs


def class_source(class_name: str) -> str:
    """The class definition that generated code carries for ``class_name``."""
    return KBUILDER_LAYERS[class_name].source.strip("\n")

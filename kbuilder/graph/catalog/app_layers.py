"""Layers that ``keras.applications`` models define for themselves.

ConvNeXt scales each residual branch with a learned ``LayerScale``, and InceptionResNetV2
adds its scaled residuals with ``CustomScaleLayer``. Both are Keras layers defined in the
applications' modules, not exported by ``keras.layers``. kbuilder knows them by name (the
catalog finds them, they are not listed in the palette) so that these models import, build
and round-trip like the others; building uses Keras's own classes.

Generated code cannot import them (``keras.src`` is Keras's private package), so it
defines each one it uses as a small ``keras.layers.Layer`` subclass, given in ``SOURCES``:
the same name, parameters, weights and computation as Keras's class, so weights copy over
and outputs are identical.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ApplicationLayer:
    """One application-defined layer class.

    Args:
        module: the Keras module that defines it.
        application: the models that use it, for messages and docs.
        summary: one sentence for the inspector.
        placeholders: parameter values that make a working layer.
        kinds: how each parameter is edited (Keras's signature gives no defaults to tell).
        source: the class as generated code defines it (uses ``keras`` and ``layers``).
        two_inputs: whether it is called on a list of two tensors.
    """

    module: str
    application: str
    summary: str
    placeholders: dict[str, Any]
    kinds: dict[str, str]
    source: str
    two_inputs: bool = False


APPLICATION_LAYERS: dict[str, ApplicationLayer] = {
    "LayerScale": ApplicationLayer(
        module="keras.src.applications.convnext",
        application="ConvNeXt",
        summary="Multiplies each channel by a learned scale (ConvNeXt's layer scale).",
        placeholders={"init_values": 1e-6, "projection_dim": 32},
        kinds={"init_values": "float", "projection_dim": "int"},
        source='''
class LayerScale(layers.Layer):
    """Multiplies each channel by a learned scale, as in ConvNeXt (arXiv:2103.17239)."""

    def __init__(self, init_values, projection_dim, **kwargs):
        super().__init__(**kwargs)
        self.init_values = init_values
        self.projection_dim = projection_dim

    def build(self, input_shape):
        self.gamma = self.add_weight(
            shape=(self.projection_dim,),
            initializer=keras.initializers.Constant(self.init_values),
        )

    def call(self, x):
        return x * self.gamma

    def get_config(self):
        config = super().get_config()
        config.update({"init_values": self.init_values, "projection_dim": self.projection_dim})
        return config''',
    ),
    "CustomScaleLayer": ApplicationLayer(
        module="keras.src.applications.inception_resnet_v2",
        application="InceptionResNetV2",
        summary="Adds its second input, multiplied by `scale`, to its first "
                "(InceptionResNetV2's scaled residual).",
        placeholders={"scale": 1.0},
        kinds={"scale": "float"},
        two_inputs=True,
        source='''
class CustomScaleLayer(layers.Layer):
    """Adds the second input, scaled, to the first, as in InceptionResNetV2."""

    def __init__(self, scale, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def call(self, inputs):
        return inputs[0] + inputs[1] * self.scale

    def get_config(self):
        config = super().get_config()
        config.update({"scale": self.scale})
        return config''',
    ),
}


@functools.cache
def keras_class(class_name: str) -> type:
    """Keras's own class (imports its application module)."""
    layer = APPLICATION_LAYERS[class_name]
    return getattr(importlib.import_module(layer.module), class_name)


def catalog_specs() -> list[Any]:
    """A ``LayerSpec`` for each application layer, derived from Keras's class."""
    import dataclasses

    from kbuilder.graph.catalog.introspect import layer_spec
    from kbuilder.graph.catalog.specs import PortSpec

    specs = []
    for name, layer in APPLICATION_LAYERS.items():
        spec = layer_spec(keras_class(name), [name])
        ports = spec.inputs
        if layer.two_inputs:
            ports = (PortSpec("inputs", variadic=True, min_count=2, max_count=2),)
        doc = spec.doc or layer.summary
        params = tuple(
            dataclasses.replace(p, kind=layer.kinds[p.name],
                                minimum=1 if layer.kinds[p.name] == "int" else None)
            if p.name in layer.kinds else p
            for p in spec.params
        )
        specs.append(dataclasses.replace(
            spec, category="Applications", summary=layer.summary,
            doc=f"{doc}\n\nDefined by keras.applications for {layer.application}.",
            inputs=ports, params=params,
        ))
    return specs


def class_source(class_name: str) -> str:
    """The class definition that generated code carries for ``class_name``."""
    return APPLICATION_LAYERS[class_name].source.strip("\n")

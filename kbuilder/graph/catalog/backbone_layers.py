"""Catalog entries for the pretrained networks (``kbuilder.graph.backbones``): one node
class ``applications.<Name>`` per ``keras.applications`` family, in the palette's
"Pretrained network" category.

They are not Keras layer classes: building one calls ``keras.applications.<Name>``
(``kbuilder.graph.backbone_build``), and shape inference reads the family's table.
"""

from __future__ import annotations

from kbuilder.graph.backbones import BACKBONES, POOLINGS, Backbone
from kbuilder.graph.catalog.specs import LayerSpec, ParamSpec, PortSpec

CATEGORY = "Pretrained network"

_WEIGHTS_DOC = (
    "\"imagenet\": the network's ImageNet weights, downloaded once into Keras's cache "
    "(~/.keras/models, or $KERAS_HOME/models); none: random weights; or the path of a "
    "weights file (.h5 or .weights.h5) for a machine without internet.")
_POOLING_DOC = (
    "What follows the last feature map: \"avg\" (global average pooling, a vector per "
    "image, the usual choice before a classifier head), \"max\" (global max pooling) or "
    "\"none\" (the feature map itself, height × width × channels).")


def _spec(family: Backbone) -> LayerSpec:
    params = (
        ParamSpec("weights", "str", "imagenet", False, True, choices=("imagenet",),
                  doc=_WEIGHTS_DOC),
        ParamSpec("pooling", "choice", "avg", False, False, choices=POOLINGS, doc=_POOLING_DOC),
        ParamSpec("trainable", "bool", True, False, False,
                  doc="Whether training changes the network's weights."),
    )
    doc = (f"keras.applications.{family.name} without its ImageNet classifier "
           f"(include_top=False), pretrained on ImageNet.\n\n{family.summary()}. "
           f"It was trained on {family.input_size}×{family.input_size} colour images and "
           f"accepts any size from {family.min_size}×{family.min_size}; its output has "
           f"{family.channels} channels.")
    return LayerSpec(
        class_name=family.node_class, aliases=(family.name,), category=CATEGORY,
        summary=family.summary(), doc=doc, params=params, inputs=(PortSpec("inputs"),),
        api_name=family.name,
    )


def catalog_specs() -> list[LayerSpec]:
    return [_spec(family) for family in BACKBONES]

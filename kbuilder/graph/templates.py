"""Starting points for the gallery and ``kbuilder new --template``.

Each template is a function that builds a graph with the same commands a user's edits
use, so a template is exactly what the user could have drawn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kbuilder.graph.commands import (
    ConnectCommand,
    GroupCommand,
    SetCallOptionCommand,
    new_input_node,
    new_layer_node,
    new_output_node,
)
from kbuilder.graph.layout import apply_layout
from kbuilder.graph.model import Graph


@dataclass(frozen=True)
class Template:
    name: str
    title: str
    description: str
    builder: Callable[[], Graph]

    def build(self) -> Graph:
        graph = self.builder()
        apply_layout(graph)
        return graph


class _Draw:
    """Adds nodes and connections as a user would, returning node ids."""

    def __init__(self, name: str):
        self.graph = Graph(name)

    def input(self, shape: Sequence[int | None], dtype: str = "float32", name: str = "input"):
        node = new_input_node(self.graph, shape, dtype, name)
        self.graph._insert_node(node)
        return node.id

    def layer(self, class_name: str, *sources: str, name: str | None = None,
              ports: Sequence[str] | None = None, **params: Any) -> str:
        node = new_layer_node(self.graph, class_name, params, name)
        self.graph._insert_node(node)
        for i, src in enumerate(sources):
            port = ports[i] if ports else "inputs"
            ConnectCommand(self.graph, src, 0, node.id, port).do()
        return node.id

    def output(self, src: str, name: str = "output") -> str:
        node = new_output_node(self.graph, name)
        self.graph._insert_node(node)
        ConnectCommand(self.graph, src, 0, node.id).do()
        return node.id


def mlp_classifier() -> Graph:
    d = _Draw("mlp_classifier")
    x = d.input([64], name="features")
    x = d.layer("Dense", x, units=128, activation="relu")
    x = d.layer("Dropout", x, rate=0.2)
    x = d.layer("Dense", x, units=64, activation="relu")
    x = d.layer("Dense", x, name="predictions", units=10, activation="softmax")
    d.output(x)
    return d.graph


def cnn_classifier() -> Graph:
    d = _Draw("cnn_classifier")
    x = d.input([28, 28, 1], name="image")
    x = d.layer("Conv2D", x, filters=32, kernel_size=[3, 3], padding="same", activation="relu")
    x = d.layer("MaxPooling2D", x, pool_size=[2, 2])
    x = d.layer("Conv2D", x, filters=64, kernel_size=[3, 3], padding="same", activation="relu")
    x = d.layer("MaxPooling2D", x, pool_size=[2, 2])
    x = d.layer("Flatten", x)
    x = d.layer("Dropout", x, rate=0.3)
    x = d.layer("Dense", x, name="predictions", units=10, activation="softmax")
    d.output(x)
    return d.graph


def residual_cnn() -> Graph:
    d = _Draw("residual_cnn")
    x = d.input([32, 32, 3], name="image")
    x = d.layer("Conv2D", x, filters=32, kernel_size=[3, 3], padding="same", use_bias=False)
    x = d.layer("BatchNormalization", x)
    x = d.layer("ReLU", x)
    for block in (1, 2):
        skip = x
        y = d.layer("Conv2D", x, name=f"res{block}_conv_a", filters=32, kernel_size=[3, 3],
                    padding="same", use_bias=False)
        y = d.layer("BatchNormalization", y, name=f"res{block}_bn_a")
        y = d.layer("ReLU", y, name=f"res{block}_relu_a")
        y = d.layer("Conv2D", y, name=f"res{block}_conv_b", filters=32, kernel_size=[3, 3],
                    padding="same", use_bias=False)
        y = d.layer("BatchNormalization", y, name=f"res{block}_bn_b")
        x = d.layer("Add", skip, y, name=f"res{block}_add")
        x = d.layer("ReLU", x, name=f"res{block}_out")
    x = d.layer("GlobalAveragePooling2D", x)
    x = d.layer("Dense", x, name="predictions", units=10, activation="softmax")
    d.output(x)
    return d.graph


def sequence_classifier() -> Graph:
    d = _Draw("sequence_classifier")
    x = d.input([100, 8], name="sequence")
    x = d.layer("Conv1D", x, filters=32, kernel_size=[5], padding="same", activation="relu")
    x = d.layer("MaxPooling1D", x, pool_size=[2])
    x = d.layer("LSTM", x, ports=["sequences"], units=64)
    x = d.layer("Dense", x, name="predictions", units=5, activation="softmax")
    d.output(x)
    return d.graph


def text_classifier() -> Graph:
    d = _Draw("text_classifier")
    x = d.input([200], dtype="int32", name="tokens")
    x = d.layer("Embedding", x, input_dim=10000, output_dim=64, mask_zero=True)
    x = d.layer("Bidirectional", x, ports=["sequences"],
                layer={"class_name": "LSTM", "config": {"units": 32}})
    x = d.layer("Dense", x, units=64, activation="relu")
    x = d.layer("Dropout", x, rate=0.5)
    x = d.layer("Dense", x, name="prediction", units=1, activation="sigmoid")
    d.output(x)
    return d.graph


def conv_autoencoder() -> Graph:
    d = _Draw("conv_autoencoder")
    x = d.input([28, 28, 1], name="image")
    x = d.layer("Conv2D", x, name="encode_1", filters=16, kernel_size=[3, 3], padding="same",
                activation="relu")
    x = d.layer("MaxPooling2D", x, pool_size=[2, 2])
    x = d.layer("Conv2D", x, name="encode_2", filters=8, kernel_size=[3, 3], padding="same",
                activation="relu")
    x = d.layer("MaxPooling2D", x, name="code", pool_size=[2, 2])
    x = d.layer("Conv2DTranspose", x, name="decode_1", filters=8, kernel_size=[3, 3],
                strides=[2, 2], padding="same", activation="relu")
    x = d.layer("Conv2DTranspose", x, name="decode_2", filters=16, kernel_size=[3, 3],
                strides=[2, 2], padding="same", activation="relu")
    x = d.layer("Conv2D", x, name="reconstruction", filters=1, kernel_size=[3, 3],
                padding="same", activation="sigmoid")
    d.output(x)
    return d.graph


def multi_input() -> Graph:
    d = _Draw("multi_input")
    tab = d.input([10], name="tabular")
    img = d.input([32, 32, 3], name="image")
    t = d.layer("Dense", tab, name="tabular_dense", units=32, activation="relu")
    i = d.layer("Conv2D", img, filters=16, kernel_size=[3, 3], padding="same",
                activation="relu")
    i = d.layer("MaxPooling2D", i, pool_size=[2, 2])
    i = d.layer("Conv2D", i, name="conv2d_2", filters=32, kernel_size=[3, 3], padding="same",
                activation="relu")
    i = d.layer("GlobalAveragePooling2D", i)
    x = d.layer("Concatenate", t, i)
    x = d.layer("Dense", x, units=64, activation="relu")
    x = d.layer("Dense", x, name="prediction", units=1, activation="sigmoid")
    d.output(x)
    return d.graph


def transformer_encoder() -> Graph:
    """A sequence classifier around one transformer encoder block (a nested model)."""
    d = _Draw("transformer_encoder")
    x = d.input([64, 32], name="sequence")
    attn = d.layer("MultiHeadAttention", x, x, ports=["query", "value"], num_heads=4,
                   key_dim=8)
    a = d.layer("Dropout", attn, name="attention_dropout", rate=0.1)
    r1 = d.layer("Add", x, a, name="residual_1")
    n1 = d.layer("LayerNormalization", r1, name="norm_1", epsilon=1e-6)
    f1 = d.layer("Dense", n1, name="ffn_1", units=64, activation="relu")
    f2 = d.layer("Dense", f1, name="ffn_2", units=32)
    r2 = d.layer("Add", n1, f2, name="residual_2")
    n2 = d.layer("LayerNormalization", r2, name="norm_2", epsilon=1e-6)
    block_nodes = [attn, a, r1, n1, f1, f2, r2, n2]
    x = d.layer("GlobalAveragePooling1D", n2)
    x = d.layer("Dense", x, name="predictions", units=5, activation="softmax")
    d.output(x)
    GroupCommand(d.graph, block_nodes, name="encoder_block").do()
    return d.graph


PRETRAINED = "pretrained_classifier"


def pretrained_classifier(family_name: str = "MobileNetV3Small") -> Graph:
    """Image classifier from a pretrained network, as keras.io's transfer-learning guide
    builds it: the family's pixel scaling, the network frozen with ImageNet weights and
    called with training=False (BatchNormalization stays in inference mode), global
    average pooling, dropout and a new softmax head (fitting to data sets its units)."""
    from kbuilder.graph.backbones import PREPROCESSING_NAMES, backbone, preprocessing_layer

    family = backbone(family_name)
    d = _Draw(f"{family.name.lower()}_classifier")
    x = d.input(list(family.input_shape), name="image")
    if family.preprocessing != "included":  # the family's pixel scaling, in the model
        class_name, params = preprocessing_layer(family.preprocessing)
        x = d.layer(class_name, x, name=PREPROCESSING_NAMES[family.preprocessing], **params)
    x = d.layer(family.node_class, x, weights="imagenet", pooling="avg", trainable=False)
    SetCallOptionCommand(d.graph, x, "training", False).do()
    x = d.layer("Dropout", x, rate=0.2)
    x = d.layer("Dense", x, name="predictions", units=10, activation="softmax")
    d.output(x)
    return d.graph


def pretrained_template(family_name: str) -> Template:
    """The pretrained-network template for one family (``pretrained_classifier:<Name>``)."""
    from kbuilder.graph.backbones import backbone

    family = backbone(family_name)
    return Template(
        f"{PRETRAINED}:{family.name}", f"Image classifier from {family.name}",
        f"{family.name} pretrained on ImageNet, frozen, with a new head ({family.summary()}).",
        lambda: pretrained_classifier(family.name),
    )


TEMPLATES: dict[str, Template] = {
    t.name: t
    for t in (
        Template("mlp_classifier", "MLP classifier",
                 "Dense layers with dropout for tabular features (e.g. digits, iris).",
                 mlp_classifier),
        Template("cnn_classifier", "CNN image classifier",
                 "Two convolution + pooling stages and a softmax head for small images.",
                 cnn_classifier),
        Template("residual_cnn", "Residual CNN",
                 "Convolutions with batch normalisation and two skip-connection blocks.",
                 residual_cnn),
        Template("sequence_classifier", "Sequence classifier (Conv1D + LSTM)",
                 "1-D convolution then an LSTM for time series or signals.",
                 sequence_classifier),
        Template("text_classifier", "Text classifier",
                 "Token ids through an Embedding and a bidirectional LSTM to one probability.",
                 text_classifier),
        Template("conv_autoencoder", "Convolutional autoencoder",
                 "Encodes an image to a small code and reconstructs it.",
                 conv_autoencoder),
        Template("multi_input", "Multi-input: tabular + image",
                 "A tabular branch and an image branch joined by Concatenate.",
                 multi_input),
        Template("transformer_encoder", "Transformer encoder block",
                 "Multi-head self-attention and a feed-forward network with residuals and "
                 "layer normalisation, as a collapsible block.",
                 transformer_encoder),
    )
}


# Kept out of TEMPLATES, whose every model builds offline: this one starts from ImageNet
# weights (downloaded on first use). The start page lists it per network.
PRETRAINED_TEMPLATE = Template(
    PRETRAINED, "Image classifier from a pretrained network",
    "MobileNetV3Small pretrained on ImageNet, frozen, with a new head; "
    f"{PRETRAINED}:<Network> for another (e.g. {PRETRAINED}:EfficientNetV2B0).",
    pretrained_classifier,
)


def find_template(name: str) -> Template | None:
    """A template by name, ``pretrained_classifier[:<Network>]`` included; None if unknown."""
    if name == PRETRAINED:
        return PRETRAINED_TEMPLATE
    if name.startswith(PRETRAINED + ":"):
        try:
            return pretrained_template(name.split(":", 1)[1])
        except KeyError:
            return None
    return TEMPLATES.get(name)


def get_template(name: str) -> Template:
    template = find_template(name)
    if template is None:
        raise KeyError(
            f"Unknown template '{name}'. Available: {', '.join(TEMPLATES)}, "
            f"{PRETRAINED}[:<Network>]."
        )
    return template

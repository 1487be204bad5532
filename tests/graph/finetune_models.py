"""A tiny model with a pretrained-style nested block, for the freezing and fine-tuning tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kbuilder.graph.commands import GroupCommand, History
from kbuilder.graph.layout import apply_layout
from kbuilder.graph.model import Graph
from kbuilder.graph.project import Project
from kbuilder.graph.settings import DataSettings
from tests.graph.helpers import add_input, add_layer, add_output


def tiny_backbone_graph(size: int = 16, classes: int = 3) -> tuple[Graph, History]:
    """image (size×size×3) -> block "backbone" [conv, BatchNorm, relu, conv_top, BatchNorm]
    -> pooling -> Dense head; like a keras.applications model used as a nested model."""
    history, graph = History(), Graph("tiny_transfer")
    x = add_input(history, graph, [size, size, 3], name="image")
    inner = [add_layer(history, graph, "Conv2D", x, name="conv", filters=4, kernel_size=3,
                       padding="same")]
    inner.append(add_layer(history, graph, "BatchNormalization", inner[-1], name="bn"))
    inner.append(add_layer(history, graph, "ReLU", inner[-1], name="relu"))
    inner.append(add_layer(history, graph, "Conv2D", inner[-1], name="conv_top", filters=4,
                           kernel_size=3, padding="same"))
    inner.append(add_layer(history, graph, "BatchNormalization", inner[-1], name="bn_top"))
    pooled = add_layer(history, graph, "GlobalAveragePooling2D", inner[-1], name="pool")
    head = add_layer(history, graph, "Dense", pooled, name="head", units=classes,
                     activation="softmax")
    add_output(history, graph, head)
    history.push(GroupCommand(graph, inner, name="backbone"))
    apply_layout(graph)
    return graph, history


def frozen_backbone_project(folder: Path, samples: int = 32, file: str = "tiny.npz") -> Project:
    """A project of ``tiny_backbone_graph`` with its block frozen, on ``samples`` random
    16×16 images of 3 classes saved as ``folder/file``."""
    from kbuilder.graph.freezing import set_trainable

    rng = np.random.default_rng(0)
    np.savez(folder / file, x=rng.random((samples, 16, 16, 3)).astype("float32"),
             y=np.arange(samples) % 3)
    graph, history = tiny_backbone_graph()
    history.push(set_trainable(graph, [graph.find("backbone").id], False))
    project = Project.new(graph)
    project.data = DataSettings(f"npz:{folder / file}")
    return project

"""Freezing nodes and blocks: saved, undoable, built as Keras does, counted as Keras counts."""

from __future__ import annotations

import numpy as np
import pytest

from kbuilder.graph.build import build_model
from kbuilder.graph.codegen.model_code import generate_model_code
from kbuilder.graph.errors import GraphError
from kbuilder.graph.freezing import (
    block_layers,
    frozen_blocks_in_training_mode,
    is_frozen,
    set_trainable,
    unfreeze_from,
    unfreeze_top,
)
from kbuilder.graph.model import Graph
from kbuilder.graph.project import Project, load_project, save_project
from kbuilder.graph.shapes import ShapeInference
from tests.graph.finetune_models import tiny_backbone_graph


def _counts(graph: Graph) -> tuple[int, int]:
    inference = ShapeInference(graph)
    try:
        inference.update()
        return inference.total_params(), inference.total_trainable_params()
    finally:
        inference.close()


def _keras_counts(model) -> tuple[int, int]:
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    return model.count_params(), trainable


def test_freezing_a_block_counts_builds_and_undoes_as_keras():
    graph, history = tiny_backbone_graph()
    block = graph.find("backbone")
    before = graph.to_dict()
    assert _counts(graph) == _keras_counts(build_model(graph))
    history.push(set_trainable(graph, [block.id], False))
    assert is_frozen(graph, block.id)
    model = build_model(graph)
    total, trainable = _counts(graph)
    assert (total, trainable) == _keras_counts(model)
    assert trainable == 4 * 3 + 3  # only the head learns
    assert not model.get_layer("backbone").trainable
    # Called with training=False: BatchNormalization stays in inference mode.
    call = model.get_layer("backbone")._inbound_nodes[0]
    assert call.arguments.kwargs.get("training") is False
    code = generate_model_code(graph)
    assert ".trainable = False" in code and "training=False" in code
    history.undo()
    assert graph.to_dict() == before
    history.redo()
    assert graph.to_dict()["nodes"] != before["nodes"]


def test_freezing_a_layer_and_the_project_file_keep_it(tmp_path):
    graph, history = tiny_backbone_graph()
    head = graph.find("head")
    history.push(set_trainable(graph, [head.id, graph.find("image").id], False))
    assert is_frozen(graph, head.id)
    assert set_trainable(graph, [head.id], False) is None  # nothing to change
    history.push(set_trainable(graph, [graph.find("backbone").id], False))
    path = tmp_path / "frozen.kbproj"
    save_project(Project.new(graph), path)
    loaded = load_project(path).graph
    assert is_frozen(loaded, loaded.find("head").id)
    assert is_frozen(loaded, loaded.find("backbone").id)
    assert _counts(loaded) == (_counts(graph)[0], 0)
    assert _keras_counts(build_model(loaded))[1] == 0


def test_unfreeze_from_a_layer_and_the_top_layers():
    graph, history = tiny_backbone_graph()
    block = graph.find("backbone")
    history.push(set_trainable(graph, [block.id], False))
    history.push(unfreeze_from(graph, block.id, "conv_top"))
    model = build_model(graph)
    nested = model.get_layer("backbone")
    # BatchNormalization stays frozen: in Keras 3 only that keeps it in inference mode.
    assert [layer.trainable for layer in nested.layers[1:]] == [False, False, False, True, False]
    assert _counts(graph) == _keras_counts(model)
    assert _counts(graph)[1] == (3 * 3 * 4 * 4 + 4) + (4 * 3 + 3)
    history.undo()
    history.push(unfreeze_top(graph, block.id, 2))
    assert [n.name for n in block_layers(block) if not is_frozen(block.subgraph, n.id)] == [
        "conv_top"]
    with pytest.raises(GraphError, match="has no layer 'nope'; its top layers are"):
        unfreeze_from(graph, block.id, "nope")
    # Unfreezing the whole block makes every layer inside trainable again, as Keras does.
    history.push(set_trainable(graph, [block.id], True))
    assert _counts(graph)[1] == _keras_counts(build_model(graph))[1]
    assert [n.name for n in block_layers(block) if is_frozen(block.subgraph, n.id)] == [
        "bn", "bn_top"]


def test_a_frozen_block_with_batchnorm_in_training_mode_is_found():
    graph, history = tiny_backbone_graph()
    block = graph.find("backbone")
    history.push(set_trainable(graph, [block.id], False))
    assert frozen_blocks_in_training_mode(graph) == []
    from kbuilder.graph.freezing import SetBlockOptionCommand
    from kbuilder.graph.model import UNSET

    history.push(SetBlockOptionCommand(graph, block.id, "training", UNSET))
    assert [n.name for _, n in frozen_blocks_in_training_mode(graph)] == ["backbone"]

"""Freezing: which nodes learn, and how a frozen nested model is called.

A layer node is frozen by its Keras parameter ``trainable`` (``False``), so the layer is
made with ``trainable=False``. A block (a nested model) has two options of its own, kept in
its params: ``trainable`` (``False``: ``model.trainable = False``, which freezes every
layer inside, as Keras does) and ``training`` (``False``: the block is called with
``training=False``, so its BatchNormalization layers keep using their moving statistics
while the rest of the model trains — the rule of the keras.io transfer-learning guide).
Freezing a block sets both; unfreezing it keeps ``training=False``, as the guide's
fine-tuning step does, and keeps the BatchNormalization layers inside it frozen: Keras 3
(3.15) replaces a nested model's recorded ``training=False`` by the outer call's
``training=True`` during ``fit``, so only ``trainable=False`` keeps them in inference mode
(a frozen BatchNormalization always is, in Keras 3).

"Unfreeze from layer X" (``unfreeze_from``) makes a block trainable again with every layer
before X (in the block's order, Keras's ``model.layers`` order) and its BatchNormalization
layers frozen; "unfreeze the top
N layers" (``unfreeze_top``) is the same from the N-th layer counted from the top.
Everything here is a command, so it is undoable and saved with the project.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from kbuilder.graph.commands import Command, MacroCommand, SetParamCommand
from kbuilder.graph.errors import GraphError
from kbuilder.graph.model import UNSET, Graph, Node

# The options a block node keeps in its params, with the type of their values.
BLOCK_OPTIONS: dict[str, type] = {"trainable": bool, "training": bool}

# Layers whose behaviour differs between training and inference through moving statistics.
STATISTICS_LAYERS = frozenset({"BatchNormalization", "SyncBatchNormalization"})


def _keeps_statistics(block: Node, inner: Node) -> bool:
    """Whether ``inner`` is a statistics layer that stays frozen inside ``block``."""
    return (in_inference_mode(block) and inner.kind == "layer"
            and inner.class_name in STATISTICS_LAYERS)


def is_frozen(graph: Graph, node_id: str) -> bool:
    """Whether the node's own weights are frozen (a layer with ``trainable=False``, or a
    block with ``trainable`` off)."""
    node = graph.node(node_id)
    if node.kind == "layer":
        return graph.layer_owner(node_id).param("trainable", True) is False
    if node.kind == "block":
        return node.param("trainable", True) is False
    return False


def frozen_state(graph: Graph, node_id: str) -> str:
    """``"frozen"`` (its weights do not learn), ``"partly"`` (a block with some of its
    layers frozen) or ``""``: how the canvas draws the node and the summary lists it."""
    node = graph.node(node_id)
    if is_frozen(graph, node_id):
        return "frozen"
    if node.subgraph is not None and any(
            is_frozen(owner, inner.id) for owner, inner in node.subgraph.walk()):
        return "partly"
    return ""


def in_inference_mode(node: Node) -> bool:
    """Whether a block is called with ``training=False``."""
    return node.kind == "block" and node.param("training", True) is False


def freezable(graph: Graph, node_id: str) -> bool:
    """Layers and blocks can be frozen; inputs and outputs have nothing to learn."""
    return graph.node(node_id).kind in ("layer", "block")


def block_layers(block: Node) -> list[Node]:
    """The block's layer and block nodes in Keras's ``model.layers`` order (topological)."""
    if block.subgraph is None:
        raise GraphError(f"'{block.name}' is not a block.")
    sub = block.subgraph
    return [sub.node(n) for n in sub.topological_order()
            if sub.node(n).kind in ("layer", "block")]


def has_statistics_layers(block: Node) -> bool:
    """Whether BatchNormalization (or the like) is anywhere inside the block."""
    assert block.subgraph is not None
    return any(n.kind == "layer" and n.class_name in STATISTICS_LAYERS
               for _, n in block.subgraph.walk())


class SetBlockOptionCommand(Command):
    """Set (``UNSET``: remove) one of a block's ``BLOCK_OPTIONS``."""

    def __init__(self, graph: Graph, block_id: str, name: str, value: Any):
        node = graph.node(block_id)
        if node.kind != "block":
            raise GraphError(f"'{node.name}' is not a block; only blocks have `{name}`.")
        if name not in BLOCK_OPTIONS:
            raise GraphError(f"A block has no option `{name}`; it has "
                             f"{', '.join(BLOCK_OPTIONS)}.")
        if value is not UNSET and not isinstance(value, BLOCK_OPTIONS[name]):
            raise GraphError(f"`{name}` of block '{node.name}' must be true or false.")
        self.graph, self.block_id, self.name, self.value = graph, block_id, name, value
        self.text = f"set {name} of {node.name}"

    def do(self) -> None:
        node = self.graph.node(self.block_id)
        self.old = copy.deepcopy(node._params.get(self.name, UNSET))
        self.graph._set_param(self.block_id, self.name, self.value)

    def undo(self) -> None:
        self.graph._set_param(self.block_id, self.name, self.old)


def _layer_trainable(graph: Graph, node_id: str, trainable: bool) -> Command | None:
    owner = graph.layer_owner(node_id)
    if (owner.param("trainable", True) is not False) == trainable:
        return None
    return SetParamCommand(graph, owner.id, "trainable", UNSET if trainable else False)


def _block_trainable(graph: Graph, block_id: str, trainable: bool) -> list[Command]:
    block = graph.node(block_id)
    steps: list[Command] = []
    if trainable:
        if block.param("trainable", True) is False:
            steps.append(SetBlockOptionCommand(graph, block_id, "trainable", UNSET))
        # Keras's model.trainable = True makes every layer inside trainable again, but
        # for the statistics layers of a block called in inference mode (see the module).
        assert block.subgraph is not None
        for inner in block.subgraph.nodes:
            if inner.kind in ("layer", "block"):
                steps += _trainable_steps(block.subgraph, inner.id,
                                          not _keeps_statistics(block, inner))
    else:
        if block.param("trainable", True) is not False:
            steps.append(SetBlockOptionCommand(graph, block_id, "trainable", False))
        if block.param("training", True) is not False:
            steps.append(SetBlockOptionCommand(graph, block_id, "training", False))
    return steps


def _trainable_steps(graph: Graph, node_id: str, trainable: bool) -> list[Command]:
    node = graph.node(node_id)
    if node.kind == "block":
        return _block_trainable(graph, node_id, trainable)
    if node.kind == "layer" and not node.shared_with:
        step = _layer_trainable(graph, node_id, trainable)
        return [step] if step else []
    return []


def set_trainable(graph: Graph, node_ids: Iterable[str], trainable: bool) -> Command | None:
    """Freeze (``trainable=False``) or unfreeze the nodes: one undoable edit, or ``None``
    when nothing changes. Inputs and outputs are skipped."""
    steps: list[Command] = []
    for nid in node_ids:
        steps += _trainable_steps(graph, nid, trainable)
    if not steps:
        return None
    return MacroCommand("unfreeze" if trainable else "freeze", steps)


def unfreeze_from(graph: Graph, block_id: str, layer_name: str) -> Command:
    """Make ``block_id`` trainable from its layer ``layer_name`` on (to the top) and freeze
    the layers before it; the block stays called with ``training=False``.

    Raises:
        GraphError: ``layer_name`` is not a layer of the block; the message lists some.
    """
    block = graph.node(block_id)
    layers = block_layers(block)
    names = [n.name for n in layers]
    if layer_name not in names:
        shown = ", ".join(names[-5:])
        raise GraphError(f"Block '{block.name}' has no layer '{layer_name}'; its top layers "
                         f"are {shown}.", block_id)
    start = names.index(layer_name)
    assert block.subgraph is not None
    steps: list[Command] = []
    if block.param("trainable", True) is False:
        steps.append(SetBlockOptionCommand(graph, block_id, "trainable", UNSET))
    if block.param("training", True) is not False:
        steps.append(SetBlockOptionCommand(graph, block_id, "training", False))
    for i, node in enumerate(layers):
        learns = i >= start and node.class_name not in STATISTICS_LAYERS
        steps += _trainable_steps(block.subgraph, node.id, learns)
    return MacroCommand(f"unfreeze {block.name} from {layer_name}", steps)


def unfreeze_top(graph: Graph, block_id: str, count: int) -> Command:
    """``unfreeze_from`` the ``count``-th layer from the top of the block."""
    layers = block_layers(graph.node(block_id))
    if count < 1:
        raise GraphError("Unfreeze at least one layer (count >= 1).", block_id)
    return unfreeze_from(graph, block_id, layers[max(0, len(layers) - count)].name)


def frozen_blocks_in_training_mode(graph: Graph) -> list[tuple[Graph, Node]]:
    """Frozen blocks with BatchNormalization inside that are not called with
    ``training=False`` (their statistics would move while the rest trains), at any depth."""
    found = []
    for owner, node in graph.walk():
        if (node.kind == "block" and node.param("trainable", True) is False
                and not in_inference_mode(node) and has_statistics_layers(node)):
            found.append((owner, node))
    return found

"""Every edit of a graph is a command with ``do`` and ``undo``; ``History`` keeps them.

Views never change a graph directly: they build a command and ``history.push`` it, so every
change can be undone and "modified" is simply "the history is not at its clean point".
Compound edits (remove with connections, group, paste) are ``MacroCommand``s of the simple
ones, so their undo is the simple ones' undo in reverse.

The package, one module a kind of edit (the public names are re-exported here):
``history`` (``Command``, ``MacroCommand``, ``DeferredCommand``, ``History``), ``nodes``
(add, remove, move, connect, rewire, ``insert_after``), ``params`` (parameters, call
options, names and their checks), ``blocks`` (group, ungroup) and ``clipboard`` (copy,
paste).
"""

from kbuilder.graph.commands.blocks import GroupCommand, UngroupCommand
from kbuilder.graph.commands.clipboard import copy_fragment, paste_command
from kbuilder.graph.commands.history import Command, DeferredCommand, History, MacroCommand
from kbuilder.graph.commands.nodes import (
    AddNodeCommand,
    ConnectCommand,
    DisconnectCommand,
    MoveNodesCommand,
    RemoveNodesCommand,
    RewireCommand,
    graph_edge_order,
    insert_after,
    new_input_node,
    new_layer_node,
    new_output_node,
    new_shared_node,
    required_placeholders,
)
from kbuilder.graph.commands.params import (
    DTYPES,
    RenameNodeCommand,
    SetCallOptionCommand,
    SetParamCommand,
    validate_input_param,
    validate_name,
)

__all__ = [
    "DTYPES", "AddNodeCommand", "Command", "ConnectCommand", "DeferredCommand",
    "DisconnectCommand", "GroupCommand", "History", "MacroCommand", "MoveNodesCommand",
    "RemoveNodesCommand", "RenameNodeCommand", "RewireCommand", "SetCallOptionCommand",
    "SetParamCommand", "UngroupCommand", "copy_fragment", "graph_edge_order", "insert_after",
    "new_input_node", "new_layer_node", "new_output_node", "new_shared_node", "paste_command",
    "required_placeholders", "validate_input_param", "validate_name",
]

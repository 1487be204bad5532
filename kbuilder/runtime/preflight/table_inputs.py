"""The input stage of a model fitted to a table in "model" encoding, as graph nodes.

``Input numeric -> FillMissing -> Normalization`` for the numbers (both adapted on the
training split when training starts, so the fill values, means and variances are weights
of the model) and, per categorical column, ``Input(int32, [1]) -> CategoryEncoding
(one_hot)``; a ``Concatenate`` joins them into what the template's Input fed. The user
sees these nodes and can edit them like any other. A model that also has image Inputs
(the multi_input template) keeps them: the table's columns of image paths feed them
(``fit_template_to_data`` sets their shape and puts ``Rescaling`` after them).
"""

from __future__ import annotations

from typing import Any

from kbuilder.graph.commands import (
    AddNodeCommand,
    Command,
    ConnectCommand,
    DeferredCommand,
    MoveNodesCommand,
    RenameNodeCommand,
    RewireCommand,
    SetParamCommand,
    insert_after,
    new_input_node,
    new_layer_node,
)
from kbuilder.graph.layout import layered_positions
from kbuilder.graph.model import Graph
from kbuilder.graph.text import plural
from kbuilder.runtime.data.row_encoder import NUMERIC_INPUT
from kbuilder.runtime.preflight.findings import FitError


def is_flat_table_model(graph: Graph) -> bool:
    """Whether ``graph`` has one Input of flat float features (e.g. mlp_classifier)."""
    inputs = graph.input_nodes()
    return len(inputs) == 1 and _is_flat(inputs[0])


def is_table_and_images_model(graph: Graph) -> bool:
    """Whether ``graph`` has one Input of flat float features and the others take images
    (e.g. multi_input): a table whose columns of image paths feed the image Inputs."""
    inputs = graph.input_nodes()
    flat = [n for n in inputs if _is_flat(n)]
    return len(inputs) > 1 and len(flat) == 1 and all(
        is_image_input(n) for n in inputs if n is not flat[0])


def is_image_input(node: Any) -> bool:
    """An Input of samples ``(height, width, channels)``."""
    return len(node.param("shape") or []) == 3


def _is_flat(node: Any) -> bool:
    return len(node.param("shape") or []) == 1 and \
        not node.param("dtype", "float32").startswith(("int", "uint"))


def table_input_commands(graph: Graph, encoder: Any, notes: list[str]) -> list[Command]:
    """The edits that give ``graph``'s Input of features (its only Input, or the one
    beside image Inputs) the input stage of ``encoder`` (a ``RowEncoder``); built but not
    done.

    Raises:
        FitError: the graph has not one flat Input, or a column's input name is taken,
            or the table's image columns have no image Input to feed (or the reverse).
    """
    has_images = any(is_image_input(n) for n in graph.input_nodes())
    if encoder.images and not has_images:
        raise FitError(
            f"Column '{encoder.images[0]['column']}' names image files, which feed an image "
            f"Input of the model, but '{graph.name}' takes the table's columns only. Choose "
            "a model with an image Input too (the multi_input template), or leave the "
            "column out (its role 'leave out' in the Data tab) to train without the images.")
    if not encoder.images and has_images:
        raise FitError(f"'{graph.name}' has an image Input, but the table has no column of "
                       "image paths to feed it. Give the table a column naming each row's "
                       "image file, or choose a model of table columns (mlp_classifier).")
    tables = [n for n in graph.input_nodes() if not encoder.images or not is_image_input(n)]
    if sorted(n.name for n in tables) == sorted(encoder.input_names):
        return []  # fitted already: its input stage is there, maybe edited by the user
    if len(tables) != 1 or not _is_flat(tables[0]):
        raise FitError(f"'{graph.name}' does not have one Input of features; a table's "
                       "preprocessing inside the model needs one (e.g. mlp_classifier).")
    if not encoder.columns:
        raise FitError("The table has no numeric column; use table_encoding 'flat' for a "
                       "table of categories only.")
    node = tables[0]
    commands: list[Command] = []
    if node.name != encoder.numeric_input:
        commands.append(RenameNodeCommand(graph, node.id, encoder.numeric_input))
    width = len(encoder.feature_names)
    if node.param("shape") != [width]:
        commands.append(SetParamCommand(graph, node.id, "shape", [width]))
    if encoder.categories:
        x, y = node.position
        join = new_layer_node(graph, "Concatenate", {}, position=(x, y + 240))
        commands.append(AddNodeCommand(graph, join))
        commands += [RewireCommand(graph, e.id, join.id) for e in graph.edges_from(node.id)]
        commands.append(DeferredCommand(lambda: ConnectCommand(graph, node.id, 0, join.id)))
        for i, spec in enumerate(encoder.categories):
            name = spec["input"]
            if graph.unique_name(name) != name:
                raise FitError(f"The Input for column '{spec['column']}' would be named "
                               f"'{name}', which a layer of '{graph.name}' already has; "
                               "rename that layer first.")
            at = (x + 220 * (i + 1), y)
            source = new_input_node(graph, [1], "int32", name, position=at)
            one_hot = new_layer_node(
                graph, "CategoryEncoding",
                {"num_tokens": len(spec["vocabulary"]) + 1, "output_mode": "one_hot"},
                name=f"{name}_one_hot", position=(at[0], at[1] + 120))
            commands += [AddNodeCommand(graph, source), AddNodeCommand(graph, one_hot)]
            commands.append(DeferredCommand(lambda s=source, o=one_hot:
                                      ConnectCommand(graph, s.id, 0, o.id)))
            commands.append(DeferredCommand(lambda o=one_hot: ConnectCommand(graph, o.id, 0,
                                                                       join.id)))
        notes.append(f"Categorical column(s) {', '.join(repr(c['column']) for c in encoder.categories)} "
                     "enter through their own Input and a CategoryEncoding (one-hot); a "
                     "Concatenate joins them to the numbers.")
    # Each insertion sits right after the Input: Normalization first, then FillMissing
    # gives Input -> FillMissing -> Normalization.
    commands.append(insert_after(graph, node.id, "Normalization", {}))
    commands.append(insert_after(graph, node.id, "FillMissing", {}))
    notes.append(f"'{encoder.numeric_input}' takes {width} raw number(s) "
                 "through FillMissing and Normalization, adapted to the training data.")
    # Several new rows and columns: lay the whole model out again (as the toolbar's
    # arrange does) so the new nodes do not sit on the template's, in the same edit.
    commands.append(DeferredCommand(lambda: MoveNodesCommand(graph, layered_positions(graph))))
    return commands


def planned_stage_notes(numbers: list[str], categorical: list[str]) -> list[str]:
    """What ``table_input_commands`` will build for a table whose columns of numbers
    (numeric, boolean, date) and categorical columns are these, said before the table is
    read in "model" encoding (the Data tab's fit button shows it)."""
    def named(columns: list[str]) -> str:
        shown = ", ".join(repr(c) for c in columns[:4])
        return shown + (f" and {len(columns) - 4} more" if len(columns) > 4 else "")

    notes = [f"The table's preprocessing goes into the model: {plural(len(numbers), 'column')}"
             f" of numbers ({named(numbers)}) enter Input '{NUMERIC_INPUT}' through "
             "FillMissing and Normalization, adapted to the training data."]
    if categorical:
        notes.append(f"Each categorical column ({named(categorical)}) gets its own int32 "
                     "Input and a CategoryEncoding (one-hot); a Concatenate joins them to "
                     "the numbers.")
    return notes


__all__ = ["is_flat_table_model", "is_image_input", "is_table_and_images_model",
           "planned_stage_notes", "table_input_commands"]

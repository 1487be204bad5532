"""Fitting a template to data (Input shapes, output units and activation, loss and
metrics; rescaling, normalization and augmentation where they belong) and
``new_project_for_data``."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from kbuilder.graph.backbones import is_backbone_class, of_class
from kbuilder.graph.commands import Command, MacroCommand, SetParamCommand, insert_after
from kbuilder.graph.model import Graph, Node
from kbuilder.graph.project import Project
from kbuilder.graph.settings import DataSettings, TrainingSettings
from kbuilder.graph.shapes import ShapeInference
from kbuilder.graph.templates import TEMPLATES, find_template
from kbuilder.graph.text import plural
from kbuilder.runtime.data import Dataset, load_data
from kbuilder.runtime.data.dataset import Streamed, first_target
from kbuilder.runtime.preflight.findings import FitError
from kbuilder.runtime.preflight.inputs import matched_inputs, scaled_in_model
from kbuilder.runtime.preflight.outputs import activation_name
from kbuilder.runtime.preflight.rules import (
    AUGMENTATION,
    PIXEL_PRESERVING,
    SCALING_LAYERS,
    UNSCALED_LIMIT,
)
from kbuilder.runtime.preflight.table_inputs import (
    is_flat_table_model,
    is_image_input,
    is_table_and_images_model,
    table_input_commands,
)


@dataclass(frozen=True)
class DataFit:
    """How to fit a graph to a dataset: edits plus the loss and metrics to train with.

    ``commands`` are built but not done; ``apply`` does them (as one undoable edit when a
    history is given).
    """

    commands: tuple[Command, ...]
    loss: str
    metrics: tuple[str, ...]
    notes: tuple[str, ...] = ()

    def apply(self, history: Any = None) -> None:
        if not self.commands:
            return
        macro = MacroCommand("fit model to data", self.commands)
        if history is not None:
            history.push(macro)
        else:
            macro.do()


def fit_template_to_data(graph: Graph, dataset: Dataset, *, augment: bool = False) -> DataFit:
    """Plan the edits that make ``graph`` fit ``dataset``.

    Each Input takes the sample shape of its array (by Input name when the data has one
    array per input; a flat input stays flat: its data is flattened at training time); the
    output ``Dense`` gets one unit per class with softmax (one
    sigmoid unit for two classes), or one linear unit per target for regression; the loss
    and metrics follow. For an image folder (raw 0..255 pixels) a ``Rescaling(1/255)``
    node goes right after the Input unless the model scales already, so the trained model
    and its exports take raw images.

    Args:
        graph: a graph with a Dense output layer (e.g. a template).
        dataset: the data to fit.
        augment: images only: also add an augmentation block (``AUGMENTATION``: random
            flips, rotations and zooms, active only while training).

    Returns:
        A ``DataFit``; nothing is changed until ``apply()``.

    Raises:
        FitError: the graph cannot take this data (an Input without data, no Dense output...).
    """
    commands: list[Command] = []
    notes: list[str] = []
    if dataset.row_encoder is not None:  # a table with its preprocessing in the model
        commands += table_input_commands(graph, dataset.row_encoder, notes)
        commands += _fit_image_columns(graph, dataset, augment, notes)
        head_commands, loss, metrics = _fit_head(graph, dataset, notes)
        return DataFit(tuple(commands + head_commands), loss, metrics, tuple(notes))
    for node, array in _input_arrays(graph, dataset):
        shape = _fitted_input_shape(graph, node, array, dataset.source)
        if shape != node.param("shape"):
            commands.append(SetParamCommand(graph, node.id, "shape", shape))
            notes.append(f"Input '{node.name}' shape set to {shape}.")
        commands += _fit_embeddings(graph, node, array, notes)
        commands += _fit_normalization(graph, node, array, notes)
        # Augmentation flips and rotates images: only for an input that keeps their layout.
        commands += _fit_image_input(graph, node, dataset, augment and len(shape) == 3, notes,
                                     array)
    head_commands, loss, metrics = _fit_head(graph, dataset, notes)
    return DataFit(tuple(commands + head_commands), loss, metrics, tuple(notes))


def _fit_image_columns(graph: Graph, ds: Dataset, augment: bool,
                       notes: list[str]) -> list[Command]:
    """A table in "model" encoding with columns of image paths: each image Input (by its
    name, else the only one) takes its column's image size, and Rescaling after it."""

    commands: list[Command] = []
    images = [n for n in graph.input_nodes() if is_image_input(n)]
    for spec in ds.row_encoder.images:
        node = next((n for n in images if n.name == spec["input"]),
                    images[0] if len(images) == 1 else None)
        if node is None:
            raise FitError(f"Column '{spec['column']}' names image files, but '{graph.name}' "
                           f"has {plural(len(images), 'image Input')} and none is named "
                           f"'{spec['input']}'; choose the Input of the column in the Data "
                           "tab (or name the Input after the column).")
        array = ds.x_train[spec["input"]]
        shape = [*spec["size"], spec["channels"]]
        if node.param("shape") != shape:
            commands.append(SetParamCommand(graph, node.id, "shape", shape))
            notes.append(f"Input '{node.name}' shape set to {shape}.")
        commands += _fit_image_input(graph, node, ds, augment, notes, array)
    return commands


def _input_arrays(graph: Graph, ds: Dataset) -> list[tuple[Node, np.ndarray]]:
    """Each Input node with its training array: by name when the data has one array per
    input (an only array goes to an only input whatever its name), else in order."""
    inputs = graph.input_nodes()
    x = matched_inputs(inputs, ds.x_train)
    shown = ", ".join(f"'{n.name}'" for n in inputs)
    if not inputs:
        raise FitError(f"'{graph.name}' has no Input for the data to enter.")
    if isinstance(x, Mapping):
        if len(inputs) == 1 and len(x) == 1:
            return [(inputs[0], next(iter(x.values())))]
        missing = [n.name for n in inputs if n.name not in x]
        if missing:
            raise FitError(
                f"'{graph.name}' has the inputs {shown}, but {ds.source} has no array for "
                f"{', '.join(repr(m) for m in missing)}; its arrays are "
                f"{', '.join(repr(k) for k in x)}. Name each array after its Input (or "
                "choose the array of each Input in the Data tab)."
            )
        return [(n, x[n.name]) for n in inputs]
    arrays = list(x) if isinstance(x, list | tuple) else [x]
    if len(arrays) != len(inputs):
        raise FitError(
            f"'{graph.name}' has {plural(len(inputs), 'input')} ({shown}) but {ds.source} "
            f"gives {plural(len(arrays), 'array')} per sample. Give a NumPy .npz file with "
            "one array per input, named after the Inputs, and the target array y."
        )
    return list(zip(inputs, arrays, strict=True))


def _fitted_input_shape(graph: Graph, node: Node, array: np.ndarray,
                        source: str) -> list[int | None]:
    data = list(array.shape[1:])
    current = node.param("shape") or []
    dtype = node.param("dtype", "float32")
    if dtype.startswith(("int", "uint")) and array.dtype.kind == "f":
        sample = array[:1000]
        if np.any(sample != np.round(sample)):
            raise FitError(
                f"'{graph.name}' takes whole-number ids (e.g. word tokens) in "
                f"'{node.name}', but {source} has measured values. Choose a template "
                "for numeric features, such as mlp_classifier."
            )
    if len(current) == 1 and len(data) != 1:
        return [math.prod(data)]  # an MLP on images: the runtime flattens each sample
    if len(current) == len(data) or not current:
        return data
    if len(current) == len(data) + 1:
        return data + [1]  # e.g. (28, 28) grayscale into a CNN that wants a channel axis
    raise FitError(
        f"'{graph.name}' expects samples with {plural(len(current), 'dimension')} in "
        f"'{node.name}' (like {current}), but each sample of {source} has shape {data}. "
        "Choose a template made for this kind of data (mlp_classifier for a table of features, "
        "cnn_classifier for images)."
    )


def _fit_normalization(graph: Graph, node: Node, x: np.ndarray,
                       notes: list[str]) -> list[Command]:
    """A Normalization layer right after a table's Input when its features are not
    scaled (the pre-flight's ``unscaled_features``): without it, features in physical
    units (a body mass of 4,000 g) saturate the first layer and the model learns nothing.
    ``adapt_layers`` computes its mean and variance from the training split at training
    time, so they are stored in the model and apply at prediction time too.
    """
    if x.ndim != 2 or x.dtype.kind != "f" or not len(x):
        return []  # images get Rescaling, token ids no scaling
    if node.param("dtype", "float32").startswith(("int", "uint")):
        return []
    if scaled_in_model(graph, node.id, ShapeInference(graph)):
        return []
    sample = np.abs(np.nan_to_num(x[:10_000].astype(np.float64), nan=0.0, posinf=0.0,
                                  neginf=0.0))
    if float(sample.max()) <= UNSCALED_LIMIT:
        return []
    notes.append(f"Normalization added after '{node.name}' (the features are not scaled; "
                 "it is adapted to the training data).")
    return [insert_after(graph, node.id, "Normalization", {})]


def _fit_embeddings(graph: Graph, node: Node, array: np.ndarray,
                    notes: list[str]) -> list[Command]:
    commands: list[Command] = []
    if isinstance(array, Streamed) or array.dtype.kind not in "iu":
        return commands  # a stream is images, not ids
    top = int(array.max(initial=0))
    for nid in graph.successors(node.id):
        layer = graph.layer_owner(nid)
        if layer.class_name == "Embedding" and (layer.param("input_dim") or 0) <= top:
            commands.append(SetParamCommand(graph, layer.id, "input_dim", top + 1))
            notes.append(f"'{layer.name}' input_dim set to {top + 1}.")
    return commands


def _fit_image_input(graph: Graph, node: Node, ds: Dataset, augment: bool,
                     notes: list[str], array: Any = None) -> list[Command]:
    """Rescaling (and, on request, augmentation) right after the Input of raw images:
    an image folder's, or a table's column of image paths (a stream of images)."""
    streamed = isinstance(array, Streamed) and len(array.shape) == 4
    if not streamed and (ds.settings is None or ds.settings.kind != "images"
                         or len(ds.x_train.shape) != 4):
        return []
    commands: list[Command] = []
    # Each insertion sits right after the Input, so the last one made comes first.
    if augment and not _has_augmentation(graph, node.id):
        for class_name, params in reversed(AUGMENTATION):
            commands.append(insert_after(graph, node.id, class_name, dict(params)))
        notes.append("Augmentation added after the Input: "
                     f"{', '.join(name for name, _ in AUGMENTATION)} (training only).")
    if not _scales_pixels(graph, node.id):
        commands.append(insert_after(graph, node.id, "Rescaling",
                                      {"scale": 1 / 255, "offset": 0.0}))
        notes.append(f"Rescaling (1/255) added after '{node.name}': the model takes raw "
                     "0..255 pixels, also at prediction time and in exports.")
    return commands


def _scales_pixels(graph: Graph, input_id: str) -> bool:
    """A scaling layer after the input, past only layers that keep pixel values."""
    stack, seen = list(graph.successors(input_id)), set()
    while stack:
        nid = stack.pop()
        if nid in seen or graph.node(nid).kind != "layer":
            continue
        seen.add(nid)
        name = graph.layer_owner(nid).class_name
        if name in SCALING_LAYERS or _rescales_itself(name):
            return True
        if name in PIXEL_PRESERVING:
            stack.extend(graph.successors(nid))
    return False


def _rescales_itself(class_name: str | None) -> bool:
    """A pretrained network that takes raw 0-255 pixels (MobileNetV3, EfficientNetV2...)."""
    return is_backbone_class(class_name) and of_class(class_name or "").preprocessing == "included"


def _has_augmentation(graph: Graph, input_id: str) -> bool:
    names = {graph.layer_owner(n).class_name for n in graph.successors(input_id)
             if graph.node(n).kind == "layer"}
    return bool(names & {name for name, _ in AUGMENTATION})


def _fit_head(graph: Graph, ds: Dataset,
              notes: list[str]) -> tuple[list[Command], str, tuple[str, ...]]:
    refs = graph.output_refs()
    if len(refs) != 1:
        raise FitError(f"'{graph.name}' has {len(refs)} outputs; automatic fitting handles "
                       "models with one output.")
    src = refs[0][0]
    node = graph.node(src)
    owner = graph.layer_owner(src) if node.kind == "layer" else node
    if owner.class_name != "Dense":
        raise FitError(
            f"'{graph.name}' does not end in a Dense layer (it ends in '{node.name}'), so it "
            "does not predict classes or numbers; fitting it to labelled data is not "
            "supported."
        )
    units, activation, loss, metrics = _head_for(ds)
    commands: list[Command] = []
    if owner.param("units") != units:
        commands.append(SetParamCommand(graph, owner.id, "units", units))
    if activation_name(owner.param("activation")) != activation:
        commands.append(SetParamCommand(graph, owner.id, "activation", activation))
    notes.append(f"'{owner.name}' set to {units} unit(s) with {activation}; loss {loss}.")
    return commands, loss, metrics


def _head_for(ds: Dataset) -> tuple[int, str, str, tuple[str, ...]]:
    """(units, activation, loss, metrics) for the dataset's labels."""
    if ds.task == "regression":
        y = first_target(ds.y_train)
        targets = 1 if y.ndim == 1 else int(y.shape[1])
        return targets, "linear", "mean_squared_error", ("mean_absolute_error",)
    k = ds.num_classes or 2
    fmt = ds.label_format
    if fmt == "multi_label":
        return k, "sigmoid", "binary_crossentropy", ("binary_accuracy",)
    if fmt == "one_hot":
        return k, "softmax", "categorical_crossentropy", ("accuracy",)
    if k == 2:
        return 1, "sigmoid", "binary_crossentropy", ("accuracy",)
    return k, "softmax", "sparse_categorical_crossentropy", ("accuracy",)


def new_project_for_data(
    template_name: str,
    settings: DataSettings,
    training: TrainingSettings | None = None,
    *,
    dataset: Dataset | None = None,
    augment: bool = False,
) -> Project:
    """A new project from a template fitted to the data ``settings`` describe.

    Args:
        template_name: a name from ``kbuilder.graph.templates.TEMPLATES``.
        settings: the data settings; stored in ``project.data``.
        training: training settings to start from; the fitted loss and metrics replace
            theirs. Stored in ``project.training``.
        dataset: the data, when already loaded (else ``load_data(settings)``).
        augment: image data: add an augmentation block (see ``fit_template_to_data``).

    Returns:
        A new, unsaved ``Project`` whose history is clean.

    Raises:
        FitError: unknown template, or one that cannot take this data.
        DataError: the data cannot be loaded.
    """
    template = find_template(template_name)
    if template is None:
        raise FitError(f"Unknown template '{template_name}'. The templates are: "
                       f"{', '.join(TEMPLATES)}.")
    graph = template.build()
    settings = model_encoding_for(graph, settings)
    if dataset is not None and dataset.settings is not None and \
            dataset.settings.table_encoding != settings.table_encoding:
        dataset = None  # loaded for the other encoding
    dataset = dataset if dataset is not None else load_data(settings)
    fit = fit_template_to_data(graph, dataset, augment=augment)
    fit.apply()  # part of the new project, not an undoable edit
    training = dataclasses.replace(training or TrainingSettings(), loss=fit.loss,
                                   metrics=fit.metrics)
    training.validate()
    project = Project.new(graph)
    project.data = settings
    project.training = training
    return project


def model_encoding_for(graph: Graph, settings: DataSettings) -> DataSettings:
    """``settings`` with ``table_encoding="model"`` when they describe a table and
    ``graph`` takes flat features: fitting puts the table's preprocessing in the model."""
    if settings.kind == "csv" and (is_flat_table_model(graph)  # every table format
                                   or is_table_and_images_model(graph)):
        return dataclasses.replace(settings, table_encoding="model")
    return settings



"""Checks of the data entering the model: values (NaN, infinities), shapes, dtypes,
scaling and token ranges of each Input."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from kbuilder.graph.backbones import Backbone
from kbuilder.graph.commands import SetParamCommand
from kbuilder.graph.model import Graph, Node
from kbuilder.graph.shapes import ShapeInference, TensorSpec
from kbuilder.runtime.data import Dataset, fit_to_input
from kbuilder.runtime.data.adapt import PASS_THROUGH_LAYERS
from kbuilder.runtime.data.dataset import DataError, Streamed, match_inputs, values_sample
from kbuilder.runtime.preflight.adapters import has_preprocessing, model_family, pixel_range
from kbuilder.runtime.preflight.findings import (
    AddGreyToRgb,
    AddNormalization,
    AddPreprocessing,
    AddRescaling,
    AddResizing,
    ApplyAll,
    Finding,
    Fix,
    SetParam,
)
from kbuilder.runtime.preflight.rules import SCALING_LAYERS, UNSCALED_LIMIT, shape_text


# ----------------------------------------------------------------------- data values
def filled_inputs(graph: Graph) -> set[str | None]:
    """The names of the Inputs whose every path starts with a FillMissing layer (``None``
    too when that is the only Input): missing values in their data are filled in the
    model."""
    inputs = graph.input_nodes()
    filled: set[str | None] = set()
    for node in inputs:
        after = graph.successors(node.id)
        if after and all(graph.node(n).kind == "layer"
                         and graph.layer_owner(n).class_name in PASS_THROUGH_LAYERS
                         for n in after):
            filled.add(node.name)
            if len(inputs) == 1:
                filled.add(None)
    return filled


def check_data_values(ds: Dataset, filled: set[str | None] = frozenset()) -> list[Finding]:
    findings = []
    for split, (x, y) in ds.splits().items():
        for name, array in _arrays(x):
            if isinstance(array, Streamed) and array.dtype.kind == "f":  # a large table
                array = values_sample(array)  # read from disk: a sample (inf was refused)
            bad = _non_finite(array[~np.isnan(array)] if name in filled
                              and array.dtype.kind == "f" else array)
            if bad is None:
                continue
            column = _column_name(ds, bad[1])
            where = f" in column '{column}'" if column else ""
            findings.append(Finding(
                "error", "nan_in_data",
                f"The {split} data{_input_label(name)} contains {bad[0]}{where}; the loss "
                "would become NaN. Fill or remove those values before training.",
                column=column,
            ))
            break
        bad = next((b for _, a in _arrays(y) if (b := _non_finite(np.asarray(a)))), None)
        if bad is not None:
            findings.append(Finding(
                "error", "nan_in_labels",
                f"The {split} labels contain {bad[0]}; remove those samples or fill them.",
            ))
    return findings


def _non_finite(array: np.ndarray) -> tuple[str, int | None] | None:
    """``("NaN"/"infinite values", first bad feature column)`` or ``None``."""
    if array.dtype.kind != "f":
        return None
    bad = ~np.isfinite(array)
    if not bad.any():
        return None
    what = "NaN (missing) values" if np.isnan(array).any() else "infinite values"
    column = None
    if array.ndim == 2:
        column = int(np.flatnonzero(bad.any(axis=0))[0])
    return what, column


def _column_name(ds: Dataset, index: int | None) -> str | None:
    if index is None or not ds.feature_names or index >= len(ds.feature_names):
        return None
    return ds.feature_names[index]


def _arrays(x: Any) -> list[tuple[str | None, np.ndarray]]:
    if isinstance(x, Mapping):
        return list(x.items())
    if isinstance(x, list | tuple):
        return [(str(i), a) for i, a in enumerate(x)]
    return [(None, x)]


def _input_label(name: str | None) -> str:
    return f" for input '{name}'" if name is not None else ""


# ---------------------------------------------------------------------------- inputs
def _input_data(graph: Graph, ds: Dataset) -> tuple[list[tuple[Node, np.ndarray]],
                                                     list[Finding]]:
    """Pairs of (Input node, its training array), or a finding saying they do not pair."""
    inputs = graph.input_nodes()
    x = matched_inputs(inputs, ds.x_train)
    names = ", ".join(f"'{n.name}'" for n in inputs)
    if not inputs:
        return [], [Finding("error", "no_inputs", "The model has no Input; add one for the "
                            "data to enter.")]
    if isinstance(x, Mapping) and len(x) == 1 and len(inputs) == 1:
        return [(inputs[0], next(iter(x.values())))], []  # one array, one input: no doubt
    if isinstance(x, Mapping):
        pairs, findings = [], []
        for node in inputs:
            if node.name in x:
                pairs.append((node, x[node.name]))
            else:
                findings.append(Finding(
                    "error", "input_without_data",
                    f"Input '{node.name}' gets no data: the data has arrays named "
                    f"{', '.join(map(str, x))}. Rename the input or the array, or choose "
                    "the array of each Input in the Data tab.", node.id,
                ))
        names = {n.name for n in inputs}
        unused = [str(k) for k in x if k not in names]
        if unused and not findings:
            findings.append(Finding(
                "warning", "unused_arrays",
                f"The array{'s' if len(unused) > 1 else ''} {', '.join(map(repr, unused))} "
                f"of the data feed{'' if len(unused) > 1 else 's'} no Input of the model and "
                "will not be used in training.",
            ))
        return pairs, findings
    arrays = list(x) if isinstance(x, list | tuple) else [x]
    if len(arrays) != len(inputs):
        return [], [Finding(
            "error", "inputs_count",
            f"The model has {len(inputs)} inputs ({names}) but the data gives "
            f"{len(arrays)} array(s) per sample; each input needs its own array.",
        )]
    return list(zip(inputs, arrays, strict=True)), []


def check_inputs(graph: Graph, ds: Dataset, inference: ShapeInference) -> list[Finding]:
    pairs, findings = _input_data(graph, ds)
    for node, array in pairs:
        try:
            array = values_sample(array)  # a stream (image folder): its first samples, read
        except DataError as exc:  # an unreadable image among them, named
            findings.append(Finding("error", "unreadable_data", str(exc), node.id))
            continue
        result = inference.result(node.id)
        if not result.outputs:
            continue  # the Input itself has a problem, reported as model_error
        spec = result.outputs[0]
        findings += _check_input_shape(graph, node, spec, array)
        findings += _check_input_dtype(node, spec, array)
        findings += _check_scaling(graph, node, array, ds, inference)
        findings += _check_token_range(graph, node, array)
    return findings


def _check_input_shape(graph: Graph, node: Node, spec: TensorSpec,
                       array: np.ndarray) -> list[Finding]:
    expected, have = list(spec.shape[1:]), tuple(array.shape[1:])
    try:
        fit_to_input(array[:1], expected, node.name)
    except Exception:
        return [_input_shape_finding(graph, node, expected, have, array)]
    if len(expected) > 1 and len(have) > 1 and not _same_layout(expected, have):
        # Same number of values but arranged differently: it runs, but maybe not as meant.
        return [Finding(
            "warning", "input_reshaped",
            f"Input '{node.name}' takes samples of shape {shape_text(expected)}; the data's "
            f"{shape_text(have)} will be reshaped to it. Check that this is the layout you "
            f"mean, or set the input's shape to {list(have)}.",
            node.id, fix=SetParam(node.id, "shape", list(have)),
        )]
    return []


def _input_shape_finding(graph: Graph, node: Node, expected: list[int | None],
                         have: tuple[int, ...], array: np.ndarray | None = None) -> Finding:
    """The data does not fit the Input: set the Input to the data's shape where the model
    still works with it, else adapt the data inside the model (resize, grey to RGB)."""
    start = (f"Input '{node.name}' takes samples of shape {shape_text(expected)} but each sample "
             f"of the data has shape {shape_text(have)}.")
    family = model_family(graph)
    if family is not None:  # a pretrained network: its input stays, the data is adapted
        adapter = _image_adapter(node.id, expected, have, _preprocessing_fix(
            graph, node, family, array))
        if adapter is not None:
            return Finding(
                "error", "input_shape",
                f"{start} The model is a pretrained {family.name}, whose weights expect "
                f"{shape_text(expected)} images: adapt the data inside the model (set the "
                f"input's shape to {list(_as_image(have))} and add "
                f"{' and '.join(_adapter_steps(adapter, expected))} after it) rather than "
                "change the network.", node.id, fix=adapter)
    failing = _fails_with_input_shape(graph, node.id, list(have))
    if failing is None:
        return Finding("error", "input_shape", f"{start} Set the input's shape to "
                       f"{list(have)}.", node.id, fix=SetParam(node.id, "shape", list(have)))
    too_small = f" The model does not work on {shape_text(have)} samples ('{failing}' fails)."
    adapter = _image_adapter(node.id, expected, have)
    if adapter is None:
        return Finding("error", "input_shape", f"{start}{too_small} Use data of shape "
                       f"{shape_text(expected)}, or change the model's layers to fit the data.",
                       node.id)
    steps = _adapter_steps(adapter, expected)
    return Finding(
        "error", "input_shape",
        f"{start}{too_small} Adapt the data inside the model: set the input's shape to "
        f"{list(have)} and add {' and '.join(steps)} after it.",
        node.id, fix=adapter,
    )


def _adapter_steps(adapter: ApplyAll, expected: list[int | None]) -> list[str]:
    """The adapter's layers in words, in the order the data goes through them."""
    steps = []
    for step in adapter.fixes[1:]:
        if isinstance(step, AddResizing):
            steps.append(f"a Resizing layer to {expected[0]}×{expected[1]}")
        elif isinstance(step, AddPreprocessing):
            steps.append(f"{step.family}'s own preprocessing (pixels taken as "
                         f"{step.assumed})")
        else:
            steps.append("a layer repeating the grey channel three times (grey to RGB)")
    return steps[::-1]


def _as_image(have: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(have) + (1,) if len(have) == 2 else tuple(have)


def _preprocessing_fix(graph: Graph, node: Node, family: Backbone,
                       array: np.ndarray | None) -> AddPreprocessing | None:
    """The family's preprocessing after ``node``, unless it has none or it is there."""
    if family.preprocessing == "included" or has_preprocessing(graph):
        return None
    pixels = pixel_range(array)
    return AddPreprocessing(node.id, family.preprocessing, family.name, pixels.high,
                            pixels.low, pixels.assumed)


def _fails_with_input_shape(graph: Graph, input_id: str, shape: list[int]) -> str | None:
    """The name of the first node that fails when ``input_id`` takes ``shape`` (``None``:
    the model works). Checked on a copy; the graph is not changed."""
    trial = graph.copy()
    try:
        SetParamCommand(trial, input_id, "shape", shape).do()
    except Exception:
        return trial.node(input_id).name
    inference = ShapeInference(trial)
    try:
        inference.update()
        problems = inference.errors()
    finally:
        inference.close()
    return trial.node(problems[0][0]).name if problems else None


def _image_adapter(input_id: str, expected: list[int | None],
                   have: tuple[int, ...], preprocessing: Fix | None = None) -> ApplyAll | None:
    """Set the Input to the data's images, then resize them (and repeat a grey channel to
    RGB) to what the model takes, and (``preprocessing``, a pretrained family's) scale
    them as it expects; ``None`` when the data are not images of that kind."""
    images = _as_image(have)
    if len(expected) != 3 or len(images) != 3 or None in expected[:2]:
        return None
    height, width, channels = expected
    if channels not in (images[2], None) and not (images[2] == 1 and channels == 3):
        return None
    steps: list[Fix] = [SetParam(input_id, "shape", list(images))]
    if preprocessing is not None:  # inserted first: it ends up last, next to the network
        steps.append(preprocessing)
    if (height, width) != images[:2]:
        steps.append(AddResizing(input_id, height, width))
    if channels == 3 and images[2] == 1:
        steps.append(AddGreyToRgb(input_id))
    return ApplyAll(tuple(steps)) if len(steps) > 1 else None


def _same_layout(expected: list[int | None], have: tuple[int, ...]) -> bool:
    """Equal shapes, up to unknown sizes and a trailing channel axis of 1."""
    a, b = list(expected), list(have)
    while a and a[-1] == 1:
        a.pop()
    while b and b[-1] == 1:
        b.pop()
    return len(a) == len(b) and all(d is None or d == h for d, h in zip(a, b, strict=True))


def _check_input_dtype(node: Node, spec: TensorSpec, array: np.ndarray) -> list[Finding]:
    wanted, kind = spec.dtype, array.dtype.kind
    if wanted == "string" and kind not in "US":
        return [Finding("error", "input_dtype",
                        f"Input '{node.name}' takes text (dtype string) but the data is "
                        f"numeric ({array.dtype}). Set the input's dtype to float32.",
                        node.id, fix=SetParam(node.id, "dtype", "float32"))]
    if wanted != "string" and kind in "US":
        return [Finding("error", "input_dtype",
                        f"Input '{node.name}' takes numbers ({wanted}) but the data is "
                        "text. Set the input's dtype to string and add a TextVectorization "
                        "or StringLookup layer after it.",
                        node.id, fix=SetParam(node.id, "dtype", "string"))]
    if wanted.startswith(("int", "uint")) and kind == "f":
        sample = array[: min(len(array), 10_000)]
        fractional = sample[np.isfinite(sample) & (sample != np.round(sample))]
        if fractional.size:
            return [Finding(
                "error", "input_dtype",
                f"Input '{node.name}' takes whole numbers ({wanted}), such as token or "
                f"category ids, but the data has fractional values like "
                f"{float(fractional[0]):g}. Set the input's dtype to float32, or use data "
                "of ids.",
                node.id, fix=SetParam(node.id, "dtype", "float32"),
            )]
    return []


def _check_scaling(graph: Graph, node: Node, array: np.ndarray, ds: Dataset,
                   inference: ShapeInference) -> list[Finding]:
    if array.dtype.kind not in "fiu" or array.size == 0:
        return []
    if node.param("dtype", "float32").startswith(("int", "uint")):
        return []  # ids (tokens, categories): their size is not a scale
    if scaled_in_model(graph, node.id, inference):
        return []
    family = model_family(graph)
    if family is not None:  # a pretrained network scales as its family does
        fix = _preprocessing_fix(graph, node, family, array)
        if fix is None:
            return []
        return [Finding(
            "warning", "unscaled_inputs",
            f"The model is a pretrained {family.name}, which expects its pixels "
            f"preprocessed the {family.preprocessing!r} way, but raw values reach "
            f"'{node.name}'. Add {family.name}'s own preprocessing right after it, so the "
            f"model carries it to every export; it takes the pixels as {fix.assumed}.",
            node.id, fix=fix)]
    sample = np.abs(array[: min(len(array), 10_000)].astype(np.float64))
    sample = np.where(np.isfinite(sample), sample, 0)
    peak = float(sample.max())
    if peak <= UNSCALED_LIMIT:
        return []
    if array.ndim >= 3:  # image-like: (samples, height, width[, channels]) or sequences
        scale = 1 / 255 if peak <= 255 else 1 / peak
        scale_text = "1/255" if peak <= 255 else f"1/{peak:g}"
        return [Finding(
            "warning", "unscaled_inputs",
            f"The values entering '{node.name}' go up to {peak:g}; networks train badly on "
            f"such large inputs. Add a Rescaling layer (scale {scale_text}) right after "
            f"'{node.name}' so the values are 0..1 in the model, also at prediction time.",
            node.id, fix=AddRescaling(node.id, scale, 0.0),
        )]
    column_peaks = sample.reshape(len(sample), -1).max(axis=0)
    worst = int(np.argmax(column_peaks))
    column = _column_name(ds, worst)
    named = f" (column '{column}' up to {column_peaks[worst]:g})" if column else ""
    return [Finding(
        "warning", "unscaled_features",
        f"The features entering '{node.name}' are not scaled{named}; large or unevenly "
        f"scaled features slow training down. Add a Normalization layer right after "
        f"'{node.name}': kbuilder adapts it to the training data.",
        node.id, column, AddNormalization(node.id),
    )]


def scaled_in_model(graph: Graph, input_id: str, inference: ShapeInference) -> bool:
    """Whether a scaling layer comes after the input before any layer with weights."""
    stack, seen = list(graph.successors(input_id)), set()
    while stack:
        nid = stack.pop()
        if nid in seen:
            continue
        seen.add(nid)
        node = graph.node(nid)
        if node.kind != "layer":
            continue
        if graph.layer_owner(nid).class_name in SCALING_LAYERS:
            return True
        if (inference.result(nid).params == 0  # reshaping, augmentation, pooling...
                or graph.layer_owner(nid).class_name in PASS_THROUGH_LAYERS):
            stack.extend(graph.successors(nid))
    return False


def _check_token_range(graph: Graph, node: Node, array: np.ndarray) -> list[Finding]:
    if array.dtype.kind not in "iuf" or array.size == 0:
        return []
    findings = []
    top = float(np.nanmax(array))
    for nid in graph.successors(node.id):
        layer = graph.layer_owner(nid)
        if layer.kind != "layer" or layer.class_name != "Embedding":
            continue
        size = layer.param("input_dim")
        if isinstance(size, int) and top >= size:
            findings.append(Finding(
                "error", "token_range",
                f"'{graph.node(nid).name}' has input_dim {size} (ids 0..{size - 1}) but the "
                f"data has ids up to {top:g}. Set input_dim to {int(top) + 1}.",
                nid, fix=SetParam(layer.id, "input_dim", int(top) + 1),
            ))
    return findings


def matched_inputs(inputs: list[Node], x: Any) -> Any:
    """``x`` keyed by the Inputs' names when it pairs with them by rank (a table with a
    column of image paths, see ``dataset.match_inputs``)."""
    ranks = [len(n.param("shape")) if n.param("shape") else None for n in inputs]
    return match_inputs(x, [n.name for n in inputs], ranks)

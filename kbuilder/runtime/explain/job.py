"""The worker's side of ``StartExplanation`` and ``StartActivations``: load the model as
prediction does, read the samples, compute, write the arrays and pictures, answer with
the record (``records``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from kbuilder.runtime import protocol as p
from kbuilder.runtime.explain import activations as act
from kbuilder.runtime.explain import attribution as attr
from kbuilder.runtime.explain import pictures
from kbuilder.runtime.explain.permutation import features_of, permutation_importance
from kbuilder.runtime.explain.records import DESCRIPTIONS, ActivationStats, Explanation


class Samples:
    """The samples a request names, as the model takes them, and where they come from."""

    def __init__(self, xs: list[np.ndarray], y: np.ndarray | None, words: str,
                 class_names: list[str] | None, feature_names: list[str] | None,
                 task: str | None, row_encoder: Any = None):
        self.xs, self.y, self.words = xs, y, words
        self.row_encoder = row_encoder  # a table in "model" encoding: its RowEncoder
        self.class_names, self.feature_names, self.task = class_names, feature_names, task


def _model(request: Any) -> tuple[Any, str]:
    """The model to explain and whose weights it has, in words."""
    graph = getattr(request, "graph", None)
    if graph:
        from kbuilder.graph.build import build_model
        from kbuilder.graph.model import Graph
        from kbuilder.runtime.training import _load_weights

        return (build_model(Graph.from_dict(graph), _load_weights(request.weights_path)),
                "the project's current weights" if request.weights_path
                else "the project's model, freshly initialised (no weights yet)")
    from kbuilder.runtime.inference import load_trained_model

    return (load_trained_model(request.model_path, compile=False),
            f"the trained model {Path(request.model_path).name}")


def read_samples(request: Any, model: Any, split: str = "test") -> Samples:
    """The request's samples: ``first`` .. ``first + samples`` (all from ``first`` when
    ``samples`` <= 0) of its file or of the ``split`` of its data (the validation split
    falls back to the test split)."""
    from kbuilder.runtime.data import fit_to_model

    first = max(request.first, 0)
    y = None
    class_names = feature_names = task = row_encoder = None
    if request.inputs_path:
        from kbuilder.runtime import inference

        path = Path(request.inputs_path)
        model_path = getattr(request, "model_path", None)
        if path.is_dir() or path.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".gif"):
            x = inference.read_image_inputs(path, tuple(model.inputs[0].shape[1:]))
        else:
            x = inference.read_inputs(path, model_path)
        words = f"{path.name}"
    else:
        from kbuilder.graph.settings import DataSettings
        from kbuilder.runtime.data import load_data

        if not request.data:
            raise attr.ExplainError("Say which samples to use: give an input file or data.")
        dataset = load_data(DataSettings.from_dict(request.data))
        splits = dataset.splits()
        name = split
        x, y = splits.get(split, (None, None))
        if split == "validation" and (x is None or _rows(x) == 0):
            name, (x, y) = "test", splits.get("test", (None, None))
        if x is None or _rows(x) == 0:
            raise attr.ExplainError(f"The {name} split of {dataset.source} is empty; change "
                                    "the split fractions in the data settings.")
        words = f"the {name} split of {dataset.source}"
        class_names, feature_names, task = (dataset.class_names, dataset.feature_names,
                                            dataset.task)
        row_encoder = dataset.row_encoder
        from kbuilder.runtime.data.dataset import first_target

        y = first_target(y) if y is not None else None
    total = _rows(x)
    if first >= total:
        raise attr.ExplainError(f"{words} has {total} samples; sample {first + 1} does not "
                                "exist.")
    end = total if request.samples <= 0 else min(total, first + request.samples)
    fitted = fit_to_model(_part(x, first, end), model)
    xs = [np.asarray(a) for a in (fitted if isinstance(fitted, list | tuple) else [fitted])]
    if y is not None:
        y = np.asarray(y)[first:end]
    shown = f"samples {first + 1}-{end}" if end - first > 1 else f"sample {first + 1}"
    return Samples(xs, y, f"{shown} of {words}", class_names, feature_names, task,
                   row_encoder)


def _rows(x: Any) -> int:
    from kbuilder.runtime.data import num_rows

    return int(num_rows(x))


def _part(x: Any, start: int, end: int) -> Any:
    if isinstance(x, dict):
        return {k: np.asarray(v[start:end]) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [np.asarray(v[start:end]) for v in x]
    return np.asarray(x[start:end])


def _backend() -> str:
    import keras

    return keras.backend.backend()


# ------------------------------------------------------------------------- explanations
def run_explanation(request: p.StartExplanation) -> p.Explained:
    model, _ = _model(request)
    out = Path(request.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if request.method == "permutation":
        record = _permutation(request, model, out)
    else:
        record = _gradients(request, model, out)
    from kbuilder.files import atomic_write

    atomic_write(out / "explanation.json", json.dumps(record.to_dict(), indent=2))
    return p.Explained(request.run_id, p.jsonable(record.to_dict()))


def _gradients(request: p.StartExplanation, model: Any, out: Path) -> Explanation:
    samples = read_samples(request, model, "test")
    xs = samples.xs
    outputs = attr._predict(model, xs)
    scoring = attr.scoring_for(outputs)
    n = len(outputs)
    targets = (np.full(n, int(request.target)) if request.target is not None
               else attr.predicted_targets(outputs))
    width = np.asarray(outputs).reshape(n, -1).shape[1]
    if np.any(targets >= max(width, 2)) or np.any(targets < 0):
        raise attr.ExplainError(f"The model has {max(width, 2)} classes (output units); "
                                f"class {int(targets.max())} does not exist.")
    names = samples.class_names or [str(k) for k in range(max(width, 2))]
    common = dict(backend=_backend(), samples=n, data=samples.words,
                  description=DESCRIPTIONS[request.method], targets=targets.tolist(),
                  target_names=[names[t] if t < len(names) else str(t) for t in targets],
                  scores=attr.target_values(outputs, targets, scoring).tolist())
    images = xs[0].ndim == 4 and len(xs) == 1
    with attr.output_logits(model, scoring) as explained:
        return _by_gradients(request, model, out, xs, targets, explained, images, samples,
                             common)


def _by_gradients(request: p.StartExplanation, model: Any, out: Path, xs: list[np.ndarray],
                  targets: np.ndarray, scoring: attr.Scoring, images: bool,
                  samples: Samples, common: dict[str, Any]) -> Explanation:
    files: dict[str, str] = {}
    if request.method == "gradcam":
        layer = attr.gradcam_layer(model, request.layer)
        raw, maps = attr.gradcam(model, xs, targets, scoring, layer)
        np.save(out / "gradcam.npy", maps)
        np.save(out / "gradcam_raw.npy", raw)
        files.update(maps=str(out / "gradcam.npy"), raw=str(out / "gradcam_raw.npy"))
        if images:
            files.update(_overlays(out, "gradcam", xs[0], maps))
        return Explanation(method="gradcam", layer=layer.name, files=files,
                           baseline=None, steps=None, **common, score=scoring.name)
    if request.method == "saliency":
        values = attr.saliency(model, xs, targets, scoring)
        error = None
        baseline = steps = None
    else:
        values, error = attr.integrated_gradients(model, xs, targets, scoring,
                                                  request.steps)
        baseline, steps = "zeros (an all-zero input)", request.steps
    stem = "saliency" if request.method == "saliency" else "integrated_gradients"
    np.save(out / f"{stem}.npy", values[0])
    files["values"] = str(out / f"{stem}.npy")
    features, importance = [], []
    if images:
        heat = np.abs(values[0]).sum(axis=-1)
        files.update(_overlays(out, stem, xs[0], np.stack([pictures.scaled(h) for h in heat])))
    else:
        features, per_sample = _feature_attributions(values, model, samples)
        importance = per_sample.mean(axis=0).tolist()
        _write_attributions(out / f"{stem}.csv", features, per_sample, common["target_names"])
        files["table"] = str(out / f"{stem}.csv")
    return Explanation(method=request.method, baseline=baseline, steps=steps,
                       completeness_error=error, features=features, importance=importance,
                       files=files, **common, score=scoring.name)


def _overlays(out: Path, stem: str, images: np.ndarray, maps: np.ndarray) -> dict[str, str]:
    files = {}
    for i, (image, heat) in enumerate(zip(images, maps, strict=True)):
        path = out / f"{stem}_{i}.png"
        pictures.save_png(path, pictures.overlay(image, heat),
                          pictures.upscale_for(*heat.shape))
        files[f"overlay_{i}"] = str(path)
    return files


def _feature_attributions(values: list[np.ndarray], model: Any,
                          samples: Samples) -> tuple[list[str], np.ndarray]:
    """Per sample and feature (a table's column, or a whole input) the attribution."""
    names = [t.name for t in model.inputs]
    feats = features_of(values, names, samples.feature_names, samples.row_encoder)
    per_sample = np.stack([values[k][:, list(c)].sum(axis=1) if c is not None
                           else values[k].reshape(len(values[k]), -1).sum(axis=1)
                           for k, c, _ in feats], axis=1)
    return [name for _, _, name in feats], per_sample


def _write_attributions(path: Path, features: list[str], values: np.ndarray,
                        targets: list[str]) -> None:
    import csv
    import io

    from kbuilder.files import atomic_write

    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["sample", "class", *features])
    for i, (row, target) in enumerate(zip(values, targets, strict=True)):
        writer.writerow([i, target, *(f"{v:.6g}" for v in row)])
    atomic_write(path, text.getvalue())


def _permutation(request: p.StartExplanation, model: Any, out: Path) -> Explanation:
    samples = read_samples(request, model, "validation")
    if samples.y is None:
        raise attr.ExplainError("Permutation importance compares predictions with the true "
                                "labels: give --data SPEC (it uses the validation split).")
    if samples.xs[0].ndim > 2 and len(samples.xs) == 1:
        raise attr.ExplainError("Permutation importance is for tables (one value per "
                                "column); for images use --method gradcam or "
                                "integrated-gradients.")
    feats = features_of(samples.xs, [t.name for t in model.inputs], samples.feature_names,
                        samples.row_encoder)
    classification = samples.task == "classification"
    result = permutation_importance(lambda xs: attr._predict(model, xs), samples.xs,
                                    samples.y, classification, feats, request.repeats)
    from kbuilder.runtime.explain.permutation import SEED

    _write_importance(out / "importance.csv", result)
    return Explanation(method="permutation", backend=_backend(), samples=len(samples.y),
                       data=samples.words, description=DESCRIPTIONS["permutation"],
                       metric=result.metric, metric_value=result.value,
                       repeats=request.repeats, seed=SEED, features=result.features,
                       importance=result.mean, importance_std=result.std,
                       files={"table": str(out / "importance.csv")})


def _write_importance(path: Path, result: Any) -> None:
    import csv
    import io

    from kbuilder.files import atomic_write

    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["feature", f"{result.metric} drop" if result.metric == "accuracy"
                     else f"{result.metric} rise", "std"])
    ranked = sorted(zip(result.features, result.mean, result.std, strict=True),
                    key=lambda r: -r[1])
    for name, mean, std in ranked:
        writer.writerow([name, f"{mean:.6g}", f"{std:.6g}"])
    atomic_write(path, text.getvalue())


# -------------------------------------------------------------------------- activations
def run_activations(request: p.StartActivations) -> p.ActivationsReady:
    model, weights = _model(request)
    layer = act.find_layer(model, request.layer)
    samples = read_samples(request, model, "test")
    values = act.layer_outputs(model, layer, samples.xs)
    out = Path(request.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in layer.name)
    np.save(out / f"{stem}.npy", values)
    files = {"values": str(out / f"{stem}.npy")}
    kind = act.kind_of(tuple(values.shape[1:]))
    picture = _activation_picture(values[0], kind)
    if picture is not None:
        path = out / f"{stem}.png"
        pictures.save_png(path, picture, pictures.upscale_for(*picture.shape[:2], 512))
        files["picture"] = str(path)
    attention_shape: list[int] = []
    if act.is_attention(layer):
        scores = act.attention_scores(model, layer, samples.xs)
        np.save(out / f"{stem}_attention.npy", scores)
        files["attention"] = str(out / f"{stem}_attention.npy")
        # One map per head (query positions down, key positions across), side by side.
        heads = pictures.grid(np.moveaxis(scores[0], 0, -1), columns=scores.shape[1])
        path = out / f"{stem}_attention.png"
        pictures.save_png(path, heads, pictures.upscale_for(*heads.shape[:2], 512))
        files["attention_picture"] = str(path)
        attention_shape = [int(d) for d in scores.shape[1:]]
    stats = act.statistics(values)
    record = ActivationStats(layer=layer.name, layer_class=type(layer).__name__,
                             backend=_backend(), samples=len(values),
                             shape=[int(d) for d in values.shape[1:]], kind=kind,
                             data=samples.words, weights=weights, files=files,
                             attention_shape=attention_shape, **stats)
    from kbuilder.files import atomic_write

    atomic_write(out / f"{stem}.json", json.dumps(record.to_dict(), indent=2))
    return p.ActivationsReady(request.run_id, p.jsonable(record.to_dict()))


def _activation_picture(value: np.ndarray, kind: str) -> np.ndarray | None:
    """One sample's output as a picture: a grid of feature maps, a heat map of a
    sequence (steps down, features across) or a strip of a vector."""
    if kind == "image":
        return pictures.grid(value)
    if kind == "sequence":
        return pictures.scaled(value)
    if kind == "vector":
        return pictures.scaled(value.reshape(1, -1))
    return None

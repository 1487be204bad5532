"""Permutation feature importance: backend-free (the model is only asked to predict).

A feature is one column of a table input (2-D), or one whole model input when the model
takes several — except a table in "model" encoding (an input per category column and one
``numeric`` block of the other columns): there each original column is one feature, its
part of the numeric block (one number, or a date's parts together) or its category
input. Its importance is the drop of the metric when its values are shuffled across the
samples, averaged over ``repeats`` shuffles with a fixed seed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

REPEATS = 5
SEED = 0

# ``predict(xs) -> outputs``: the model's first output for a list of inputs.
Predict = Callable[[list[np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class Importance:
    metric: str  # "accuracy" (higher is better) or "mean squared error" (lower)
    value: float  # the metric on the unshuffled samples
    features: list[str]
    mean: list[float]  # per feature: how much worse the metric gets, mean over repeats
    std: list[float]


# A feature: (input index, its columns in that input or None for the whole input, name).
Feature = tuple[int, tuple[int, ...] | None, str]


def features_of(xs: Sequence[np.ndarray], input_names: Sequence[str],
                feature_names: Sequence[str] | None, row_encoder: Any = None) -> list[Feature]:
    """The features to shuffle (see the module); ``row_encoder``: the table's
    ``RowEncoder`` when it is in "model" encoding."""
    if len(xs) == 1 and np.asarray(xs[0]).ndim == 2:
        columns = np.asarray(xs[0]).shape[1]
        names = list(feature_names) if feature_names and len(feature_names) == columns \
            else [f"column {j}" for j in range(columns)]
        return [(0, (j,), names[j]) for j in range(columns)]
    if row_encoder is None:
        return [(k, None, str(name)) for k, name in enumerate(input_names)]
    from kbuilder.runtime.data.row_encoder import NUMERIC_INPUT

    category_columns = {c["input"]: c["column"] for c in row_encoder.categories}
    found: list[Feature] = []
    for k, name in enumerate(input_names):
        if name != NUMERIC_INPUT:
            found.append((k, None, str(category_columns.get(name, name))))
            continue
        at = 0
        for spec in row_encoder.columns:  # the numeric block's columns, in order
            width = len(spec["parts"]) if spec.get("kind") == "date" else 1
            found.append((k, tuple(range(at, at + width)), str(spec["column"])))
            at += width
    return found


def permutation_importance(predict: Predict, xs: list[np.ndarray], y: np.ndarray,
                           classification: bool, features: list[Feature],
                           repeats: int = REPEATS, seed: int = SEED) -> Importance:
    """How much worse the model gets when each feature is shuffled (see the module)."""
    y = np.asarray(y)

    def metric(outputs: np.ndarray) -> float:
        if classification:
            from kbuilder.runtime.explain.attribution import predicted_targets

            truth = y.argmax(axis=1) if y.ndim == 2 and y.shape[1] > 1 else \
                y.reshape(len(y)).astype(np.int64)
            return float((predicted_targets(outputs) == truth).mean())
        pred = np.asarray(outputs, dtype=np.float64).reshape(len(y), -1)
        return float(((pred - y.reshape(len(y), -1)) ** 2).mean())

    base = metric(predict(xs))
    rng = np.random.default_rng(seed)
    means, stds = [], []
    for k, column, _ in features:
        drops = []
        for _ in range(repeats):
            shuffled = list(xs)
            order = rng.permutation(len(y))
            moved = np.array(xs[k], copy=True)
            if column is None:
                moved = moved[order]
            else:  # a date's parts move together, as the raw column would
                columns = list(column)
                moved[:, columns] = np.asarray(xs[k])[order][:, columns]
            shuffled[k] = moved
            value = metric(predict(shuffled))
            drops.append(base - value if classification else value - base)
        means.append(float(np.mean(drops)))
        stds.append(float(np.std(drops)))
    return Importance("accuracy" if classification else "mean squared error", base,
                      [name for _, _, name in features], means, stds)

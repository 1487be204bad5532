"""Permutation feature importance: backend-free (the model is only asked to predict).

A feature is one column of a table input (2-D), or one whole model input when the model
takes several (a table in "model" encoding has an input per category column). Its
importance is the drop of the metric when its values are shuffled across the samples,
averaged over ``repeats`` shuffles with a fixed seed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

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


def features_of(xs: Sequence[np.ndarray], input_names: Sequence[str],
                feature_names: Sequence[str] | None) -> list[tuple[int, int | None, str]]:
    """The features to shuffle: (input index, column or None for the whole input, name)."""
    if len(xs) == 1 and np.asarray(xs[0]).ndim == 2:
        columns = np.asarray(xs[0]).shape[1]
        names = list(feature_names) if feature_names and len(feature_names) == columns \
            else [f"column {j}" for j in range(columns)]
        return [(0, j, names[j]) for j in range(columns)]
    return [(k, None, str(name)) for k, name in enumerate(input_names)]


def permutation_importance(predict: Predict, xs: list[np.ndarray], y: np.ndarray,
                           classification: bool, features: list[tuple[int, int | None, str]],
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
            else:
                moved[:, column] = moved[order, column]
            shuffled[k] = moved
            value = metric(predict(shuffled))
            drops.append(base - value if classification else value - base)
        means.append(float(np.mean(drops)))
        stds.append(float(np.std(drops)))
    return Importance("accuracy" if classification else "mean squared error", base,
                      [name for _, _, name in features], means, stds)

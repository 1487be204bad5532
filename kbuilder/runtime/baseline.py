"""How a trained model compares with trivial baselines on the same split.

A run can end "completed" with a test accuracy that looks plausible (0.36) and still be
worthless: always guessing the most common class does as well, and a logistic regression
on the same features gets 1.00. ``compare_with_baselines`` puts the model's test figure
next to two baselines fitted on the same training split and scored on the same test split:

- the trivial one: always the most common training class (classification), or always the
  mean of the training targets (regression);
- a linear one: scikit-learn's ``LogisticRegression`` / ``Ridge`` on the features the model
  trained on, flattened and standardised, fitted on a capped subsample of the training
  split so that it takes a second or two even on big data.

The record says which baseline the model fails to beat (``verdict``); the sentence with
the likely cause and the fix is ``runtime.diagnosis``'s (one home for "why did this run
not learn"). No keras, no Qt: it runs in the worker after ``model.predict``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

# The linear baseline's size rule: at most this many training rows (a seeded subsample),
# and rows x features at most ``MAX_CELLS`` (a 28x28 image: ~1,300 rows); inputs with more
# than ``MAX_FEATURES`` values per sample (images above ~64x64 pixels, long sequences) get
# no linear baseline: a linear model of raw pixels says little and would take too long.
MAX_ROWS = 5_000
MAX_CELLS = 1_000_000
MIN_ROWS = 500
MAX_FEATURES = 4_096
# It is scored on at most this many test rows (a seeded subsample of a bigger test split;
# its accuracy on them estimates the whole split's), rows x features at most
# ``MAX_TEST_CELLS``: standardising a big test split costs more than the fit.
MAX_TEST_ROWS = 20_000
MAX_TEST_CELLS = 4 * MAX_CELLS
SEED = 0
# The model "matches" the linear baseline when its accuracy falls short by at most this
# much, or by two test samples when that is more (a small test set is noisy).
ACCURACY_TOLERANCE = 0.02
# A regression model must close this share of the gap between the mean prediction and
# the linear model's error (and be within ``REGRESSION_SLACK`` of the linear error).
REGRESSION_GAP_SHARE = 0.9
REGRESSION_SLACK = 1.02
BETTER, BELOW_LINEAR, BELOW_TRIVIAL = "better", "not_better_than_linear", \
    "not_better_than_trivial"

# "No better than guessing": an accuracy less than this share of the way from always
# guessing the most common class to perfect (0.19 for ten balanced classes, 0.55 for two).
CHANCE_MARGIN = 0.1


@dataclass(frozen=True)
class Baselines:
    """The model's test figure next to the baselines', on the same split.

    Args:
        task: ``"classification"`` or ``"regression"``.
        metric: ``"accuracy"`` (higher is better) or ``"mean absolute error"`` (lower is
            better), computed the same way for the model and the baselines.
        split: the split all three are scored on (``"test"``).
        samples: that split's number of samples.
        model: the model's figure.
        trivial: the trivial baseline's figure; ``trivial_label`` what it does (e.g.
            "always 'Adelie'").
        linear: the linear baseline's figure, ``None`` when skipped (``linear_note`` says
            why); ``linear_label`` its name; ``linear_rows`` the training rows it was fitted
            on; ``linear_seconds`` how long fitting and scoring took.
        verdict: ``BETTER``, ``BELOW_LINEAR`` or ``BELOW_TRIVIAL``.
    """

    task: str
    metric: str
    split: str
    samples: int
    model: float
    trivial: float
    trivial_label: str
    linear: float | None
    linear_label: str
    linear_note: str = ""
    linear_rows: int = 0
    linear_seconds: float = 0.0
    verdict: str = BETTER

    @property
    def higher_is_better(self) -> bool:
        return self.metric == "accuracy"

    @property
    def beaten(self) -> bool:
        return self.verdict == BETTER

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Baselines | None:
        """The record of ``to_dict``; ``None`` for an empty or unreadable one (old runs)."""
        if not data:
            return None
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except TypeError:
            return None

    def summary(self) -> str:
        """One line, e.g. "Baselines on the test split (69 samples), accuracy: this
        model 0.97, always 'Adelie' 0.43, logistic regression 1.00."."""
        parts = [f"this model {_figure(self.model)}",
                 f"{self.trivial_label} {_figure(self.trivial)}"]
        if self.linear is not None:
            parts.append(f"{self.linear_label} {_figure(self.linear)}")
        text = (f"Baselines on the {self.split} split ({self.samples} samples), "
                f"{self.metric}: {', '.join(parts)}.")
        if self.linear_note:
            text += f" No {self.linear_label}: {self.linear_note}"
        return text


def _figure(value: float) -> str:
    return f"{value:.2f}" if abs(value) < 100 else f"{value:,.1f}"


def compare_with_baselines(dataset: Any, x_train: Any, x_test: Any, results: Mapping,
                           token_ids: bool = False) -> Baselines | None:
    """The baselines of a finished run, or ``None`` where there is nothing to compare.

    Args:
        dataset: the run's ``Dataset`` (labels, task, class names).
        x_train: the training inputs as the model saw them (array, or dict/list of arrays).
        x_test: the test inputs the same way.
        results: the model's test results (``evaluation.describe_results``): its
            ``accuracy`` or ``mae`` is the model's figure.
        token_ids: the model takes whole-number ids (tokens, categories) whose size is no
            quantity: no linear baseline on them.

    Returns:
        A ``Baselines``; ``None`` without a test split, for multi-label data, or when the
        results have no figure to compare.
    """
    y_train, y_test = dataset.y_train, dataset.y_test
    if y_test is None or x_test is None or not len(y_test) or not len(y_train):
        return None
    if dataset.task == "classification":
        if dataset.label_format not in ("integer", "one_hot") or results.get("accuracy") is None:
            return None
        return _classification(dataset, x_train, x_test, float(results["accuracy"]),
                               token_ids)
    if results.get("mae") is None:
        return None
    return _regression(dataset, x_train, x_test, float(results["mae"]), token_ids)


def _classification(ds: Any, x_train: Any, x_test: Any, model: float,
                    token_ids: bool) -> Baselines:
    train_ids, test_ids = ds.labels_as_ids(ds.y_train), ds.labels_as_ids(ds.y_test)
    majority = int(np.bincount(train_ids).argmax())
    names = ds.class_names or []
    name = names[majority] if majority < len(names) else str(majority)
    trivial = float((test_ids == majority).mean())
    linear, note, rows, seconds = _linear(x_train, x_test, train_ids, test_ids, token_ids,
                                          classify=True)
    n = len(test_ids)
    tolerance = max(ACCURACY_TOLERANCE, 2 / n)
    # "No better than guessing" as ``diagnosis`` says it: less than a tenth of the way
    # from always guessing the most common class to perfect.
    if model <= trivial + max(tolerance, CHANCE_MARGIN * (1 - trivial)):
        verdict = BELOW_TRIVIAL
    elif linear is not None and model < linear - tolerance:
        verdict = BELOW_LINEAR
    else:
        verdict = BETTER
    return Baselines("classification", "accuracy", "test", n, model, trivial,
                     f"always '{name}'", linear, "logistic regression", note, rows,
                     seconds, verdict)


def _regression(ds: Any, x_train: Any, x_test: Any, model: float,
                token_ids: bool) -> Baselines:
    y_train = np.asarray(ds.y_train, dtype=np.float64).reshape(len(ds.y_train), -1)
    y_test = np.asarray(ds.y_test, dtype=np.float64).reshape(len(ds.y_test), -1)
    trivial = float(np.abs(y_test - np.nanmean(y_train, axis=0)).mean())
    linear, note, rows, seconds = _linear(x_train, x_test, y_train, y_test, token_ids,
                                          classify=False)
    closed = trivial - linear if linear is not None and linear < trivial else 0.0
    if model >= min(trivial * 0.98, trivial - CHANCE_MARGIN * closed):
        verdict = BELOW_TRIVIAL
    elif linear is not None and model > max(
            linear * REGRESSION_SLACK,
            trivial - REGRESSION_GAP_SHARE * (trivial - linear)):
        verdict = BELOW_LINEAR
    else:
        verdict = BETTER
    return Baselines("regression", "mean absolute error", "test", len(y_test), model,
                     trivial, "always the mean", linear, "ridge regression", note, rows,
                     seconds, verdict)


def _linear(x_train: Any, x_test: Any, y_train: np.ndarray, y_test: np.ndarray,
            token_ids: bool, classify: bool) -> tuple[float | None, str, int, float]:
    """(figure, note when skipped, rows fitted on, seconds) of the linear baseline."""
    started = time.perf_counter()
    if token_ids:
        return None, "the model takes whole-number ids (such as word tokens), not " \
            "measurements.", 0, 0.0
    width = _features(x_train)
    if width is None:
        return None, "the inputs are not numeric arrays.", 0, 0.0
    if width > MAX_FEATURES:
        return None, (f"each sample has {width:,} values (more than {MAX_FEATURES:,}); a "
                      "linear model of raw values that large says little."), 0, 0.0
    rows = min(MAX_ROWS, max(MIN_ROWS, MAX_CELLS // max(width, 1)))
    pick = _subsample(len(y_train), rows)
    x = _flat(x_train, pick)
    with warnings.catch_warnings():  # an all-missing column: mean 0, scale 1
        warnings.simplefilter("ignore")
        mean = np.nan_to_num(np.nanmean(x, axis=0)).astype(np.float32)
        std = np.nanstd(x, axis=0)
    std = np.where(np.isfinite(std) & (std > 0), std, 1.0).astype(np.float32)
    x = _standardise(x, mean, std)
    y = y_train[pick]
    if classify:
        if len(np.unique(y)) < 2:  # nothing to separate: it always says that class
            majority = int(np.bincount(y).argmax())
            return float((y_test == majority).mean()), "", len(pick), 0.0
        from sklearn.linear_model import LogisticRegression

        model: Any = LogisticRegression(max_iter=100)
    else:
        from sklearn.linear_model import Ridge

        model = Ridge(alpha=1.0)
        y = y[:, 0] if y.shape[1] == 1 else y
    with warnings.catch_warnings():  # a ConvergenceWarning: good enough as a baseline
        warnings.simplefilter("ignore")
        model.fit(x, y)
    test = _subsample(len(y_test), min(MAX_TEST_ROWS, max(MIN_ROWS, MAX_TEST_CELLS // width)))
    predicted = model.predict(_standardise(_flat(x_test, test), mean, std))
    if classify:
        figure = float((predicted == y_test[test]).mean())
    else:
        figure = float(np.abs(predicted.reshape(len(test), -1) - y_test[test]).mean())
    return figure, "", len(pick), round(time.perf_counter() - started, 3)


def _subsample(n: int, rows: int) -> np.ndarray:
    """``rows`` of ``n`` row numbers, seeded and in order (all of them when fewer)."""
    if n <= rows:
        return np.arange(n)
    return np.sort(np.random.default_rng(SEED).choice(n, rows, replace=False))


def _arrays(x: Any) -> list[np.ndarray]:
    if isinstance(x, Mapping):
        return list(x.values())
    return list(x) if isinstance(x, list | tuple) else [x]


def _features(x: Any) -> int | None:
    """Values per sample of all inputs together, or ``None`` for non-numeric inputs."""
    total = 0
    for array in _arrays(x):
        if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
            return None
        total += int(np.prod(array.shape[1:], dtype=np.int64))
    return total


def _flat(x: Any, rows: np.ndarray) -> np.ndarray:
    return np.concatenate([np.asarray(a[rows], dtype=np.float32).reshape(len(rows), -1)
                           for a in _arrays(x)], axis=1)


def _standardise(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    # Missing values become the mean (0 once standardised); infinities the extremes.
    x -= mean
    x /= std
    return np.nan_to_num(x, copy=False, nan=0.0, posinf=1e6, neginf=-1e6)


def largest_unscaled(x: Any, feature_names: list[str] | None, limit: float) -> str:
    """Where the inputs are far from unit scale: e.g. "column 'body_mass_g' goes up to
    5698"; ``""`` when every value is within ``limit`` (or the inputs are not numeric)."""
    best, where = 0.0, ""
    for array in _arrays(x):
        if not isinstance(array, np.ndarray) or array.dtype.kind not in "fiu" or not array.size:
            continue
        sample = np.abs(np.asarray(array[:10_000], dtype=np.float64).reshape(
            min(len(array), 10_000), -1))
        sample = np.where(np.isfinite(sample), sample, 0.0)
        peaks = sample.max(axis=0)
        column = int(np.argmax(peaks))
        if peaks[column] > max(best, limit):
            best = float(peaks[column])
            name = (feature_names[column] if feature_names and column < len(feature_names)
                    and len(feature_names) == sample.shape[1] else None)
            where = (f"column '{name}' goes up to {best:g}" if name
                     else f"the values go up to {best:g}")
    return where


__all__ = ["Baselines", "compare_with_baselines", "largest_unscaled"]

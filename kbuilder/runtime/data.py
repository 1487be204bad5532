"""Data sources: built-in datasets, CSV, NumPy and image folders, split and summarised.

``load_data(settings)`` turns a ``DataSettings`` into a ``Dataset``: NumPy arrays for the
training, validation and test splits, the task (classification or regression), class and
feature names, a summary for previews and a fingerprint that identifies the data in a run's
record. Every problem with the user's files raises ``DataError`` with one message that names
the file (and, where there is one, the line and column) and says what to do.

Decisions a user may ask about:
    * Splits: first the test set, then the validation set from the rest; both fractions are
      of the whole data (``validation_split=0.2, test_split=0.2`` gives 60/20/20). They are
      stratified for classification (each class keeps its share in every split) and drawn
      with ``settings.seed``, so the same settings always give the same rows. Sources with
      their own test set (the ``keras.datasets`` sets, an ``.npz`` with ``x_test``) keep it,
      and the validation share is taken from their training data.
    * Built-in datasets come ready to train: pixel values scaled to 0..1 and tabular features
      standardised with the training split's mean and standard deviation (recorded in
      ``Dataset.preprocessing``).
    * The user's own files are not rescaled: images keep their 0..255 values and CSV
      features their units, so the scaling belongs in the model (a ``Rescaling`` or
      ``Normalization`` layer) and travels with it to prediction time. The pre-flight check
      suggests that layer when the values are large.
    * A numeric target is a class label when every value is a whole number and there are at
      most ``CLASS_LABEL_LIMIT`` distinct values, and fewer than half as many as rows;
      otherwise it is a regression target. Text targets are always class labels. Pass
      ``task=`` to ``load_data`` to decide yourself.

Keras is imported lazily, only by the sources that need it.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import io
import json
import math
import os
import re
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kbuilder.graph.settings import KERAS_DATASETS, SKLEARN_DATASETS, DataSettings
from kbuilder.graph.text import plural

# ``progress(stage, done, total)``: ``total`` is ``None`` when unknown (e.g. a download
# whose size the server does not report).
Progress = Callable[[str, int, "int | None"], None]

TASKS = ("classification", "regression")
CLASS_LABEL_LIMIT = 20
# imdb / reuters: keep the most frequent words and pad or cut every text to this many
# tokens (the text classifier template's Embedding and Input use the same numbers).
VOCABULARY_SIZE = 10_000
SEQUENCE_LENGTH = 200
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
MISSING_MARKERS = frozenset({"", "na", "n/a", "nan", "null", "?"})
MISSING_CATEGORY = "(missing)"
# A text column with more distinct values than this, most of them unique, is an identifier
# or free text; one-hot encoding it would only add noise.
MAX_AUTO_CATEGORIES = 50
FLOAT32_MAX = float(np.finfo(np.float32).max)
# An array claiming more than this share of the computer's memory is refused before it is
# read (a damaged or hostile header could otherwise claim terabytes).
MAX_MEMORY_SHARE = 0.5


class DataError(Exception):
    """Data that cannot be read or used; the message says where and what to do.

    Args:
        message: one or two sentences a domain expert can act on.
        path: the file or folder concerned, if any.
        line: the 1-based line of a text file, if any.
        column: the column (CSV) or array (NumPy) concerned, if any.
    """

    def __init__(
        self,
        message: str,
        path: str | None = None,
        line: int | None = None,
        column: str | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line
        self.column = column

    def __str__(self) -> str:
        return self.message


# ============================================================================ Dataset
@dataclass(eq=False)
class Dataset:
    """Arrays of the three splits plus what is known about them.

    ``x_*`` are NumPy arrays with samples first (a dict or list of arrays for models with
    several inputs is allowed by every helper here). ``y_*`` are integer class ids
    ``0..num_classes-1`` (shape ``(n,)``), one-hot rows ``(n, num_classes)``, or
    regression targets ``(n,)`` / ``(n, k)``. ``x_val``/``x_test`` are ``None`` when the
    split is empty.
    """

    x_train: Any
    y_train: np.ndarray
    x_val: Any = None
    y_val: np.ndarray | None = None
    x_test: Any = None
    y_test: np.ndarray | None = None
    task: str = "classification"
    num_classes: int | None = None
    class_names: list[str] | None = None
    feature_names: list[str] | None = None
    source: str = "arrays"
    settings: DataSettings | None = None
    notes: list[str] = field(default_factory=list)
    missing: list[dict[str, Any]] = field(default_factory=list)
    preprocessing: list[dict[str, Any]] = field(default_factory=list)
    # Where each test sample comes from: its number in the source (``row_label`` "row",
    # 0-based) or its line in a CSV file ("line"); numbers within the source's own test
    # set when it has one (``test_is_given``).
    test_rows: np.ndarray | None = None
    row_label: str = "row"
    test_is_given: bool = False

    def splits(self) -> dict[str, tuple[Any, np.ndarray]]:
        """``{"train": (x, y), "validation": ..., "test": ...}`` for the non-empty splits."""
        out = {"train": (self.x_train, self.y_train)}
        if self.x_val is not None and self.y_val is not None:
            out["validation"] = (self.x_val, self.y_val)
        if self.x_test is not None and self.y_test is not None:
            out["test"] = (self.x_test, self.y_test)
        return out

    @property
    def sample_shape(self) -> Any:
        """The shape of one sample of ``x`` (a dict or list of shapes for several inputs)."""
        return map_x(lambda a: tuple(a.shape[1:]), self.x_train)

    @property
    def label_format(self) -> str:
        """``"integer"`` class ids, ``"one_hot"`` rows, ``"multi_label"`` 0/1 rows, or
        ``"values"`` (regression)."""
        if self.task == "regression":
            return "values"
        y = self.y_train
        if y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1):
            return "integer"
        return "one_hot" if _is_one_hot(y) else "multi_label"

    def labels_as_ids(self, y: np.ndarray) -> np.ndarray:
        """Class ids ``(n,)`` from any label format (argmax of one-hot rows)."""
        if self.label_format == "one_hot":
            return np.argmax(y, axis=-1)
        return np.asarray(y).reshape(len(y), -1)[:, 0].astype(np.int64)

    @functools.cached_property
    def fingerprint(self) -> str:
        """SHA-256 of the settings, the task, the class names and every array (dtype, shape,
        bytes); the same data and settings give the same fingerprint in any run."""
        h = hashlib.sha256()
        meta = {
            "settings": self.settings.to_dict() if self.settings else None,
            "source": self.source,
            "task": self.task,
            "class_names": self.class_names,
            "feature_names": self.feature_names,
        }
        h.update(json.dumps(meta, sort_keys=True).encode())
        for split, (x, y) in self.splits().items():
            for name, array in _named_arrays(f"{split}/x", x) + [(f"{split}/y", y)]:
                array = np.ascontiguousarray(array)
                h.update(f"{name}:{array.dtype.str}:{list(array.shape)}".encode())
                h.update(array.tobytes())
        return h.hexdigest()

    def summary(self) -> dict[str, Any]:
        """What a preview shows, JSON-safe: counts, shapes, dtypes, classes, value ranges,
        missing values handled, preprocessing applied and notes."""
        splits = {}
        for name, (x, y) in self.splits().items():
            entry: dict[str, Any] = {
                "count": num_rows(x),
                "x_shape": map_x(lambda a: list(a.shape), x),
                "x_dtype": map_x(lambda a: str(a.dtype), x),
                "y_shape": list(y.shape),
                "y_dtype": str(y.dtype),
            }
            if self.task == "classification":
                if self.label_format == "multi_label":
                    counts = np.asarray(y).sum(axis=0).astype(np.int64)
                else:
                    counts = np.bincount(self.labels_as_ids(y),
                                         minlength=self.num_classes or 0)
                names = self.class_names or [str(i) for i in range(len(counts))]
                entry["class_counts"] = {names[i]: int(c) for i, c in enumerate(counts)}
            splits[name] = entry
        summary: dict[str, Any] = {
            "source": self.source,
            "task": self.task,
            "label_format": self.label_format,
            "num_classes": self.num_classes,
            "class_names": self.class_names,
            "feature_names": self.feature_names,
            "sample_shape": map_x(lambda a: list(a.shape[1:]), self.x_train),
            "splits": splits,
            "x_range": map_x(_value_range, self.x_train),
            "missing": self.missing,
            "preprocessing": self.preprocessing,
            "notes": self.notes,
            "fingerprint": self.fingerprint,
        }
        if self.task == "regression":
            summary["y_range"] = _value_range(self.y_train)
        return summary


def _value_range(array: np.ndarray) -> dict[str, Any]:
    if array.size == 0 or array.dtype.kind not in "biuf":
        return {"min": None, "max": None, "mean": None, "nan": 0}
    values = array.astype(np.float64, copy=False)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return {"min": None, "max": None, "mean": None, "nan": int(np.isnan(values).sum())}
    return {
        "min": float(finite.min()),
        "max": float(finite.max()),
        "mean": float(finite.mean()),
        "nan": int(np.isnan(values).sum()),
    }


# ------------------------------------------------------- helpers for x of several inputs
def map_x(fn: Callable[[Any], Any], x: Any) -> Any:
    """Apply ``fn`` to the array ``x`` or to each array of a dict or list of inputs."""
    if isinstance(x, Mapping):
        return {k: fn(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [fn(v) for v in x]
    return fn(x)


def num_rows(x: Any) -> int:
    """The number of samples of ``x`` (an array, or a dict or list of arrays)."""
    if isinstance(x, Mapping):
        return len(next(iter(x.values())))
    if isinstance(x, list | tuple):
        return len(x[0])
    return len(x)


def _take(x: Any, index: np.ndarray) -> Any:
    return map_x(lambda a: a[index], x)


def _named_arrays(prefix: str, x: Any) -> list[tuple[str, np.ndarray]]:
    if isinstance(x, Mapping):
        return [(f"{prefix}/{k}", x[k]) for k in sorted(x)]
    if isinstance(x, list | tuple):
        return [(f"{prefix}/{i}", a) for i, a in enumerate(x)]
    return [(prefix, x)]


def fit_to_input(x: np.ndarray, shape: Sequence[int | None], name: str = "input") -> np.ndarray:
    """Reshape samples to the per-sample ``shape`` of a model input, if the sizes agree.

    Flattening ``(n, 8, 8, 1)`` images for an input of shape ``[64]`` and the reverse are
    the common cases. One ``None`` in ``shape`` takes whatever size is left.

    Args:
        x: the data, samples first.
        shape: one sample's shape as the model's Input declares it (no batch dimension).
        name: the input's name, for the message.

    Returns:
        ``x`` itself when it already fits, else a reshaped view.

    Raises:
        DataError: the number of values per sample differs.
    """
    shape = list(shape)
    have = tuple(x.shape[1:])
    if len(have) == len(shape) and all(s is None or s == h for s, h in zip(shape, have,
                                                                        strict=True)):
        return x
    size = math.prod(have)
    known = math.prod(s for s in shape if s is not None)
    unknown = sum(s is None for s in shape)
    if (unknown == 0 and known == size) or (unknown == 1 and known and size % known == 0):
        return x.reshape((len(x), *[-1 if s is None else s for s in shape]))
    wanted = _shape_text(["any" if s is None else s for s in shape])
    raise DataError(
        f"Input '{name}' takes samples of shape {wanted} = "
        f"{'? values' if unknown else plural(known, 'value')}, but each sample of the data "
        f"has shape {_shape_text(have)} = {plural(size, 'value')}. Set the input's shape to "
        f"{list(have)}, or choose data that matches."
    )


def _shape_text(shape: Sequence[Any]) -> str:
    inner = ", ".join(str(d) for d in shape)
    return f"({inner}{',' if len(shape) == 1 else ''})"


# ========================================================================== load_data
def load_data(
    settings: DataSettings, progress: Progress | None = None, *, task: str | None = None
) -> Dataset:
    """Read, encode and split the data that ``settings`` describe.

    Args:
        settings: the data settings (``source``, CSV columns, image size, splits, seed).
        progress: called as ``progress(stage, done, total)`` while downloading or reading
            many files.
        task: ``"classification"`` or ``"regression"`` to override the automatic choice
            for CSV and NumPy targets.

    Returns:
        A ``Dataset``.

    Raises:
        DataError: the data cannot be read or does not make a dataset; the message says why.
    """
    settings.validate()
    if task is not None and task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}; received {task!r}.")
    kind, location = settings.kind, settings.location
    if kind == "builtin" and location in SKLEARN_DATASETS:
        raw = _load_sklearn(location)
    elif kind == "builtin" and location in KERAS_DATASETS:
        raw = _load_keras(location, progress)
    elif kind == "csv":
        raw = _load_csv(location, settings, task)
    elif kind == "npz":
        raw = _load_numpy(location, task)
    elif kind == "images":
        raw = _load_images(location, settings, progress)
    else:  # parse_source accepted a kind this module does not know yet
        raise DataError(f"kbuilder cannot read data of kind '{kind}' yet.")
    return _finish(raw, settings)


def dataset_from_arrays(
    x: Any,
    y: np.ndarray,
    *,
    settings: DataSettings | None = None,
    x_test: Any = None,
    y_test: np.ndarray | None = None,
    task: str | None = None,
    class_names: Sequence[str] | None = None,
    feature_names: Sequence[str] | None = None,
    source: str = "arrays",
) -> Dataset:
    """A ``Dataset`` from arrays in memory, split and checked as ``load_data`` does.

    Args:
        x: samples first; an array, or a dict/list of arrays for several inputs.
        y: labels or targets, one per sample.
        settings: split fractions and seed (the defaults of ``DataSettings`` if omitted).
        x_test, y_test: a test set to keep as is (then only validation is split off).
        task: force ``"classification"`` or ``"regression"``.
        class_names, feature_names: names to show; class ids are used when omitted.
        source: what to call the data in messages and summaries.

    Raises:
        DataError: lengths differ or the labels make no sense for the task.
    """
    raw = _arrays_to_raw({"x": x, "y": y, "x_test": x_test, "y_test": y_test}, source, task,
                         source)
    if class_names is not None:
        raw.class_names = list(class_names)
    if feature_names is not None:
        raw.feature_names = list(feature_names)
    return _finish(raw, settings or DataSettings())


@dataclass
class _Raw:
    """What a source read, before splitting."""

    x: Any
    y: np.ndarray
    task: str
    source: str
    class_names: list[str] | None = None
    num_classes: int | None = None
    feature_names: list[str] | None = None
    test: tuple[Any, np.ndarray] | None = None
    validation: tuple[Any, np.ndarray] | None = None
    standardize: bool = False  # fit mean/std on the training split
    impute_columns: list[int] = field(default_factory=list)  # numeric CSV columns with NaN
    missing: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    preprocessing: list[dict[str, Any]] = field(default_factory=list)
    row_ids: np.ndarray | None = None  # per sample, e.g. CSV line numbers; else 0..n-1
    row_label: str = "row"


def _finish(raw: _Raw, settings: DataSettings) -> Dataset:
    """Split, then apply the preprocessing that is fitted on the training split."""
    rng = np.random.default_rng(settings.seed)
    stratify = raw.task == "classification"
    labels = _ids_for_split(raw.y) if stratify else None
    n = num_rows(raw.x)
    everything = np.arange(n)
    if raw.test is not None:
        rest, test_idx = everything, None
        val_fraction = settings.validation_split
        raw.notes.append(f"{raw.source} comes with its own test set "
                         f"({plural(num_rows(raw.test[0]), 'sample')}); test_split does not "
                         "apply and the validation split is taken from the training data.")
    else:
        rest, test_idx = _split(everything, labels, settings.test_split, rng)
        val_fraction = settings.validation_split / (1 - settings.test_split)
    if raw.validation is not None:
        train_idx, val_idx = rest, None
    else:
        sub_labels = labels[rest] if labels is not None else None
        keep, take = _split(np.arange(len(rest)), sub_labels, val_fraction, rng)
        train_idx, val_idx = rest[keep], (rest[take] if take is not None else None)
    if len(train_idx) == 0:
        raise DataError(
            f"{raw.source} has only {n} sample(s): nothing is left for training after the "
            "validation and test splits. Use more data or smaller splits."
        )

    def part(idx: np.ndarray | None, given: tuple[Any, np.ndarray] | None):
        if given is not None:
            return given
        if idx is None or len(idx) == 0:
            return None, None
        return _take(raw.x, idx), raw.y[idx]

    x_train, y_train = _take(raw.x, train_idx), raw.y[train_idx]
    x_val, y_val = part(val_idx, raw.validation)
    x_test, y_test = part(test_idx, raw.test)
    if raw.impute_columns:
        x_train, x_val, x_test = _impute_median(raw, x_train, x_val, x_test)
    if raw.standardize:
        x_train, x_val, x_test = _standardize(raw, x_train, x_val, x_test)
    if raw.test is not None:
        test_rows = np.arange(num_rows(raw.test[0]))
    elif test_idx is not None and len(test_idx):
        test_rows = raw.row_ids[test_idx] if raw.row_ids is not None else test_idx
    else:
        test_rows = None
    return Dataset(
        x_train, y_train, x_val, y_val, x_test, y_test,
        task=raw.task,
        num_classes=raw.num_classes,
        class_names=raw.class_names,
        feature_names=raw.feature_names,
        source=raw.source,
        settings=settings,
        notes=raw.notes,
        missing=raw.missing,
        preprocessing=raw.preprocessing,
        test_rows=test_rows,
        row_label="row" if raw.test is not None else raw.row_label,
        test_is_given=raw.test is not None,
    )


def _ids_for_split(y: np.ndarray) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] > 1:
        return np.argmax(y, axis=1)  # one-hot or multi-label: stratify on the first class
    return y.reshape(len(y)).astype(np.int64)


def _split(
    index: np.ndarray, labels: np.ndarray | None, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray | None]:
    """Split ``index`` into (kept, taken) with ``fraction`` of the rows taken.

    Stratified when ``labels`` are given: each class gives its share (largest remainders
    decide the rounding so the total is exact). Both parts keep the original row order.
    """
    n = len(index)
    if fraction <= 0 or n < 2:
        return index, None
    total = min(n - 1, max(1, round(fraction * n)))
    if labels is None:
        taken = np.sort(rng.permutation(n)[:total])
    else:
        classes, counts = np.unique(labels, return_counts=True)
        exact = counts * total / n
        shares = np.floor(exact).astype(int)
        order = np.argsort(-(exact - shares), kind="stable")
        shares[order[: total - shares.sum()]] += 1
        picked = []
        for cls, share in zip(classes, shares, strict=True):
            members = np.flatnonzero(labels == cls)
            picked.append(rng.permutation(members)[:share])
        taken = np.sort(np.concatenate(picked))
    mask = np.zeros(n, dtype=bool)
    mask[taken] = True
    return index[~mask], index[mask]


def _impute_median(raw: _Raw, *parts: Any) -> list[Any]:
    """Fill missing numeric CSV values with the training split's column median."""
    x_train = parts[0]
    medians = {}
    for col in raw.impute_columns:
        values = x_train[:, col]
        finite = values[~np.isnan(values)]
        medians[col] = float(np.median(finite)) if finite.size else 0.0
    out = []
    for x in parts:
        if x is not None:
            x = x.copy()
            for col, median in medians.items():
                x[np.isnan(x[:, col]), col] = median
        out.append(x)
    for entry in raw.missing:
        if entry.get("index") in medians:
            entry["filled_with"] = medians[entry.pop("index")]
    return out


def _standardize(raw: _Raw, *parts: Any) -> list[Any]:
    """Standardise features with the training split's mean and standard deviation."""
    mean = parts[0].mean(axis=0)
    std = parts[0].std(axis=0)
    std = np.where(std > 0, std, 1.0)  # a constant column stays constant instead of NaN
    raw.preprocessing.append({
        "step": "standardize",
        "description": "features centred and scaled with the training split's mean and "
                       "standard deviation",
        "mean": [float(v) for v in np.ravel(mean)],
        "std": [float(v) for v in np.ravel(std)],
    })
    return [None if x is None else ((x - mean) / std).astype(np.float32) for x in parts]


# ===================================================================== task and labels
def infer_task(values: np.ndarray) -> str:
    """``"classification"`` for text or few whole-number values, else ``"regression"``.

    See the module docstring for the rule.
    """
    values = np.asarray(values)
    if values.dtype.kind in "USOb":
        return "classification"
    if values.ndim == 2 and values.shape[1] > 1:
        return "classification" if _is_zero_one(values) else "regression"
    flat = values.reshape(-1)
    if flat.dtype.kind == "f":
        flat = flat[~np.isnan(flat)]
        if not np.all(flat == np.round(flat)):
            return "regression"
    distinct = len(np.unique(flat))
    if distinct <= 2 or (distinct <= CLASS_LABEL_LIMIT and distinct < len(flat) / 2):
        return "classification"
    return "regression"


def _is_zero_one(y: np.ndarray) -> bool:
    return y.dtype.kind in "biuf" and bool(np.all((y == 0) | (y == 1)))


def _is_one_hot(y: np.ndarray) -> bool:
    return y.ndim == 2 and _is_zero_one(y) and bool(np.all(y.sum(axis=1) == 1))


def _encode_labels(values: np.ndarray, source: str) -> tuple[np.ndarray, list[str], list[str]]:
    """Map class labels of any kind to ids 0..K-1 (sorted); returns ids, names, notes."""
    if values.dtype.kind in "biuf":
        classes = np.unique(values)
        names = [_number_text(v) for v in classes]
    else:
        names = sorted({str(v) for v in values})
        classes = np.asarray(names)
        values = values.astype(str)
    ids = np.searchsorted(classes, values).astype(np.int32)
    notes = []
    if len(classes) < 2:
        raise DataError(
            f"The target of {source} has only one class ({names[0]!r}); a classifier needs "
            "at least two."
        )
    if names != [str(i) for i in range(len(names))]:
        shown = ", ".join(f"{name}→{i}" for i, name in enumerate(names[:6]))
        notes.append(f"Class labels were numbered 0..{len(names) - 1} in sorted order: "
                     f"{shown}{', ...' if len(names) > 6 else ''}.")
    return ids, names, notes


def _number_text(value: Any) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() else f"{value:g}"


# ==================================================================== scikit-learn sets
def _load_sklearn(name: str) -> _Raw:
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")()
    if name == "digits":
        # 8x8 images with values 0..16; kept as images so a CNN sees the layout.
        x = (bunch.images / 16.0).astype(np.float32)[..., None]
        return _Raw(
            x, bunch.target.astype(np.int32), "classification", name,
            class_names=[str(c) for c in bunch.target_names], num_classes=10,
            preprocessing=[{"step": "scale", "description": "pixel values divided by 16 "
                            "(0..16 -> 0..1)", "scale": 1 / 16}],
        )
    x = bunch.data.astype(np.float32)
    if name == "diabetes":
        return _Raw(x, bunch.target.astype(np.float32), "regression", name,
                    feature_names=list(bunch.feature_names), standardize=True)
    return _Raw(
        x, bunch.target.astype(np.int32), "classification", name,
        class_names=[str(c) for c in bunch.target_names],
        num_classes=len(bunch.target_names),
        feature_names=list(bunch.feature_names),
        standardize=True,
    )


# ====================================================================== keras.datasets
_KERAS_TITLES = {
    "mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10",
    "cifar100": "CIFAR-100", "imdb": "IMDB", "reuters": "Reuters",
    "boston_housing": "Boston Housing",
}
_KERAS_CLASS_NAMES = {
    "mnist": [str(i) for i in range(10)],
    "fashion_mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                      "Shirt", "Sneaker", "Bag", "Ankle boot"],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                "ship", "truck"],
    "cifar100": [str(i) for i in range(100)],
    "imdb": ["negative", "positive"],
}
_BOSTON_FEATURES = ["CRIM", "ZN", "INDUS", "CHAS", "NOX", "RM", "AGE", "DIS", "RAD", "TAX",
                    "PTRATIO", "B", "LSTAT"]


def _load_keras(name: str, progress: Progress | None) -> _Raw:
    import keras

    module = getattr(keras.datasets, name)
    kwargs: dict[str, Any] = {}
    if name in ("imdb", "reuters"):
        kwargs["num_words"] = VOCABULARY_SIZE
    with _reporting_downloads(progress, f"Downloading {_KERAS_TITLES[name]}"):
        try:
            (x_train, y_train), (x_test, y_test) = module.load_data(**kwargs)
        except Exception as exc:
            raise _download_error(name, exc) from exc
    if name in ("imdb", "reuters"):
        return _keras_text(name, x_train, y_train, x_test, y_test)
    if name == "boston_housing":
        return _Raw(
            x_train.astype(np.float32), y_train.astype(np.float32), "regression",
            name, feature_names=list(_BOSTON_FEATURES), standardize=True,
            test=(x_test.astype(np.float32), y_test.astype(np.float32)),
        )
    x_train, x_test = _keras_images(x_train), _keras_images(x_test)
    names = _KERAS_CLASS_NAMES[name]
    return _Raw(
        x_train, np.ravel(y_train).astype(np.int32), "classification", name,
        class_names=list(names), num_classes=len(names),
        test=(x_test, np.ravel(y_test).astype(np.int32)),
        preprocessing=[{"step": "scale", "description": "pixel values divided by 255 "
                        "(0..255 -> 0..1)", "scale": 1 / 255}],
    )


def _keras_images(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32) / 255.0
    return x[..., None] if x.ndim == 3 else x  # grayscale sets get their channel axis


def _keras_text(name: str, x_train, y_train, x_test, y_test) -> _Raw:
    import keras

    def pad(sequences):
        return keras.utils.pad_sequences(sequences, maxlen=SEQUENCE_LENGTH).astype(np.int32)

    if name == "reuters":
        try:
            names = list(keras.datasets.reuters.get_label_names())
        except Exception:  # only needs the label file, which may be missing offline
            names = [str(i) for i in range(46)]
    else:
        names = list(_KERAS_CLASS_NAMES[name])
    return _Raw(
        pad(x_train), np.asarray(y_train).astype(np.int32), "classification", name,
        class_names=names, num_classes=len(names),
        test=(pad(x_test), np.asarray(y_test).astype(np.int32)),
        preprocessing=[{"step": "tokens", "description": f"the {VOCABULARY_SIZE} most "
                        f"frequent words; texts padded or cut to {SEQUENCE_LENGTH} tokens",
                        "num_words": VOCABULARY_SIZE, "maxlen": SEQUENCE_LENGTH}],
    )


def _download_error(name: str, exc: Exception) -> DataError:
    title = _KERAS_TITLES[name]
    cache = os.path.join(_keras_home(), "datasets")
    text = str(exc)
    offline = "URL fetch failure" in text or isinstance(exc, OSError | TimeoutError)
    if offline:
        return DataError(
            f"Could not download {title} (no internet connection?). kbuilder caches it in "
            f"{_home_relative(cache)} after the first download; or use a built-in offline "
            f"dataset such as digits. (Details: {text})"
        )
    return DataError(
        f"Could not read {title} from its cache in {_home_relative(cache)}: the cached "
        f"file may be damaged. Delete it there and try again. (Details: {text})"
    )


def _keras_home() -> str:
    try:
        from keras.src.backend import config

        return config.keras_home()
    except Exception:  # a Keras without this private helper
        return os.path.expanduser(os.environ.get("KERAS_HOME", "~/.keras"))


def _home_relative(path: str) -> str:
    home = os.path.expanduser("~")
    return "~" + path[len(home):] if path.startswith(home + os.sep) else path


@contextlib.contextmanager
def _reporting_downloads(progress: Progress | None, stage: str) -> Iterator[None]:
    """Pass Keras' download progress to ``progress`` while the block runs.

    ``keras.utils.get_file`` takes no progress callback; it calls ``urlretrieve`` of its
    own module with a progress-bar hook, so that one function is wrapped for the duration.
    """
    if progress is None:
        yield
        return
    try:
        from keras.src.utils import file_utils
        original = file_utils.urlretrieve
    except (ImportError, AttributeError):  # Keras moved it: download without progress
        yield
        return

    def urlretrieve(url, filename, reporthook=None, data=None):
        def hook(block: int, block_size: int, total: int) -> None:
            if reporthook is not None:
                reporthook(block, block_size, total)
            done = block * block_size
            progress(stage, min(done, total) if total > 0 else done,
                     total if total > 0 else None)

        return original(url, filename, hook, data)

    file_utils.urlretrieve = urlretrieve
    try:
        yield
    finally:
        file_utils.urlretrieve = original


# ================================================================================= CSV
def _csv_location(location: str) -> tuple[str, str | None]:
    """``PATH[:target=COLUMN]`` -> (path, column or None)."""
    path, sep, target = location.rpartition(":target=")
    if sep and path:
        return path, target
    return location, None


@dataclass
class _Table:
    name: str  # the file's name, as messages show it
    path: str
    header: list[str]
    rows: list[list[str]]
    lines: list[int]  # the line each row ends on (1-based)
    delimiter: str


def _load_csv(location: str, settings: DataSettings, task: str | None) -> _Raw:
    path_text, spec_target = _csv_location(location)
    table = _read_table(Path(path_text))
    notes: list[str] = []
    target = settings.target or spec_target
    if target is None:
        target = table.header[-1]
        notes.append(f"No target column was chosen; using the last column '{target}'.")
    _require_columns(table, [target])
    if settings.features is not None:
        _require_columns(table, list(settings.features))
        if target in settings.features:
            raise DataError(
                f"Column '{target}' of {table.name} is both the target and a feature; "
                "the model must not see the answer. Remove it from the features.",
                path=path_text, column=target,
            )
        features = list(settings.features)
    else:
        features = [c for c in table.header if c != target]
    _require_columns(table, list(settings.categorical))

    cells = {name: [row[i] for row in table.rows] for i, name in enumerate(table.header)}
    y, task, class_names, kept, target_notes = _csv_target(table, target, cells[target], task)
    notes += target_notes
    columns, names, missing, impute = [], [], [], []
    for name in features:
        values = [cells[name][i] for i in kept]
        lines = [table.lines[i] for i in kept]
        explicit = settings.features is not None or name in settings.categorical
        encoded = _csv_feature(table, name, values, lines, name in settings.categorical,
                               explicit, notes)
        if encoded is None:
            continue
        block, block_names, missing_entry = encoded
        if missing_entry is not None:
            if missing_entry.get("filled_with") == "median":
                missing_entry["index"] = len(names)  # filled after the split, see _finish
                impute.append(len(names))
            missing.append(missing_entry)
        columns.append(block)
        names += block_names
    if not columns:
        raise DataError(
            f"{table.name} has no usable feature columns besides the target '{target}'.",
            path=path_text,
        )
    x = np.concatenate(columns, axis=1).astype(np.float32)
    return _Raw(
        x, y, task, table.name,
        class_names=class_names,
        num_classes=len(class_names) if class_names else None,
        feature_names=names, impute_columns=impute, missing=missing, notes=notes,
        row_ids=np.asarray([table.lines[i] for i in kept]), row_label="line",
    )


def _read_table(path: Path) -> _Table:
    """Header and rows of a CSV file, with the line of each row; rejects what is not CSV."""
    name = path.name
    if not path.exists():
        raise DataError(f"The CSV file {path} does not exist.", path=str(path))
    if path.is_dir():
        raise DataError(f"{path} is a folder, not a CSV file.", path=str(path))
    raw = path.read_bytes()
    if b"\x00" in raw[:65536]:
        raise DataError(
            f"{name} is not a text file (it contains binary data). A CSV file is text with "
            "one row per sample and a header row naming the columns.", path=str(path),
        )
    text = _decode(raw)
    if not text.strip():
        raise DataError(f"{name} is empty; a CSV file needs a header row and data rows.",
                        path=str(path))
    delimiter = _sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [cell.strip() for cell in next(reader)]
        rows, lines = [], []
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue  # blank lines (often at the end) are not samples
            if len(row) != len(header):
                raise DataError(
                    f"{name} line {reader.line_num} has {plural(len(row), 'value')} but the "
                    f"header has {plural(len(header), 'column')}. Check for a missing or extra "
                    f"'{_delimiter_name(delimiter)}' or an unclosed quote.",
                    path=str(path), line=reader.line_num,
                )
            rows.append([cell.strip() for cell in row])
            lines.append(reader.line_num)
    except csv.Error as exc:
        raise DataError(f"{name} line {reader.line_num} cannot be read as CSV: {exc}.",
                        path=str(path), line=reader.line_num) from exc
    header = [cell or f"column_{i + 1}" for i, cell in enumerate(header)]
    _check_unique(header, name, str(path))
    if not rows:
        raise DataError(f"{name} has a header row but no data rows.", path=str(path))
    return _Table(name, str(path), header, rows, lines, delimiter)


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252")  # spreadsheet exports on Windows
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _sniff_delimiter(text: str) -> str:
    sample = "\n".join(text.splitlines()[:50])
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","  # e.g. a single column: nothing to sniff


def _delimiter_name(delimiter: str) -> str:
    return {"\t": "tab"}.get(delimiter, delimiter)


def _check_unique(header: list[str], name: str, path: str) -> None:
    seen: dict[str, int] = {}
    for i, column in enumerate(header):
        if column in seen:
            raise DataError(
                f"{name} has two columns named '{column}' (columns {seen[column] + 1} and "
                f"{i + 1}); column names must be unique. Rename one of them.",
                path=path, column=column,
            )
        seen[column] = i


def _require_columns(table: _Table, columns: list[str]) -> None:
    for column in columns:
        if column not in table.header:
            raise DataError(
                f"Column '{column}' is not in {table.name}; its columns are: "
                f"{', '.join(table.header)}.",
                path=table.path, column=column,
            )


def _parse_number(cell: str, delimiter: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        pass
    if delimiter == ";" and re.fullmatch(r"[+-]?\d+,\d+", cell):
        return float(cell.replace(",", "."))  # a decimal comma (European spreadsheets)
    return None


def _float32_problem(value: float) -> str | None:
    """Why ``value`` cannot be trained on (Keras computes in float32), or ``None``."""
    if math.isinf(value):
        return "is infinite"
    if abs(value) > FLOAT32_MAX:
        return (f"is too large: models compute in 32-bit floats, which hold at most "
                f"±{FLOAT32_MAX:.1e}")
    return None


def _is_missing(cell: str) -> bool:
    return cell.lower() in MISSING_MARKERS


def _numeric_values(
    table: _Table, column: str, cells: list[str], lines: list[int], forced: bool
) -> np.ndarray | None:
    """Floats (NaN where missing) when the column is numeric; ``None`` when it is text.

    A column whose values are mostly numbers but not all is a typo, not a text column
    (unless ``forced``: then every non-number is an error).
    """
    values = np.full(len(cells), np.nan)
    bad = []
    for i, cell in enumerate(cells):
        if _is_missing(cell):
            continue
        number = _parse_number(cell, table.delimiter)
        if number is None:
            bad.append(i)
            continue
        problem = _float32_problem(number)
        if problem:
            raise DataError(
                f"{table.name} line {lines[i]}, column '{column}': {cell} {problem}. "
                "Correct the value, leave the cell empty for a missing value, or rescale "
                "the column (e.g. other units).",
                path=table.path, column=column, line=lines[i],
            )
        values[i] = number
    present = len(cells) - sum(_is_missing(c) for c in cells)
    if not bad:
        return values
    if forced or len(bad) < present / 2:
        i = bad[0]
        raise DataError(
            f"{table.name} line {lines[i]}, column '{column}': '{cells[i]}' is not a "
            "number. Correct it, leave the cell empty for a missing value, or mark the "
            "column as categorical.",
            path=table.path, column=column, line=lines[i],
        )
    return None


def _csv_target(
    table: _Table, column: str, cells: list[str], task: str | None
) -> tuple[np.ndarray, str, list[str] | None, list[int], list[str]]:
    """Labels or targets, the task, class names, rows kept (target present), notes."""
    notes = []
    kept = [i for i, cell in enumerate(cells) if not _is_missing(cell)]
    if len(kept) < len(cells):
        notes.append(f"{len(cells) - len(kept)} row(s) without a value for the target "
                     f"'{column}' were left out.")
    if not kept:
        raise DataError(f"The target column '{column}' of {table.name} has no values.",
                        path=table.path, column=column)
    present = [cells[i] for i in kept]
    lines = [table.lines[i] for i in kept]
    numbers = _numeric_values(table, column, present, lines, forced=task == "regression")
    values = np.asarray(present) if numbers is None else numbers
    task = task or infer_task(values)
    if task == "regression":
        return values.astype(np.float32), task, None, kept, notes
    ids, names, label_notes = _encode_labels(values, f"{table.name} (column '{column}')")
    return ids, task, names, kept, notes + label_notes


def looks_like_identifier(categories: int, cells: int) -> bool:
    """Whether a text column of ``cells`` cells with ``categories`` different values is
    left out unless the user chooses it: more than ``MAX_AUTO_CATEGORIES`` values, most of
    them different (an identifier or free text; one-hot encoded it is only noise).

    The data panel's column table uses the same rule to show which columns are used.
    """
    return categories > MAX_AUTO_CATEGORIES and categories > cells / 2


def _csv_feature(
    table: _Table, column: str, cells: list[str], lines: list[int], categorical: bool,
    explicit: bool, notes: list[str],
) -> tuple[np.ndarray, list[str], dict[str, Any] | None] | None:
    """One feature column encoded: (block of columns, their names, missing-value entry)."""
    n_missing = sum(_is_missing(c) for c in cells)
    if n_missing == len(cells):
        notes.append(f"Column '{column}' is empty and was left out.")
        return None
    if not categorical:
        numbers = _numeric_values(table, column, cells, lines, forced=False)
        if numbers is not None:
            entry = None
            if n_missing:
                entry = {"column": column, "count": n_missing, "filled_with": "median"}
            return numbers[:, None], [column], entry
    labels = [MISSING_CATEGORY if _is_missing(c) else c for c in cells]
    categories = sorted(set(labels))
    if not explicit and looks_like_identifier(len(categories), len(cells)):
        notes.append(
            f"Column '{column}' has {len(categories)} different text values, like an "
            "identifier or free text, and was left out. Choose it as a feature or mark it "
            "categorical to use it anyway."
        )
        return None
    index = {c: i for i, c in enumerate(categories)}
    block = np.zeros((len(cells), len(categories)), dtype=np.float32)
    block[np.arange(len(cells)), [index[v] for v in labels]] = 1.0
    entry = None
    if n_missing:
        entry = {"column": column, "count": n_missing, "filled_with": MISSING_CATEGORY}
    return block, [f"{column}={c}" for c in categories], entry


# =============================================================================== NumPy
_NUMPY_SETS = (("x", "y"), ("x_train", "y_train"))


def _load_numpy(location: str, task: str | None) -> _Raw:
    path = Path(location)
    arrays = _read_numpy_arrays(path)
    name = path.name
    lower = {k.lower(): k for k in arrays}
    for x_key, y_key in _NUMPY_SETS:
        if x_key in lower and y_key in lower:
            break
    else:
        raise DataError(
            f"{name} must hold arrays named x and y (or x_train and y_train, optionally "
            f"with x_test and y_test); it holds: {', '.join(sorted(arrays)) or 'nothing'}.",
            path=str(path),
        )
    picked = {
        "x": arrays[lower[x_key]], "y": arrays[lower[y_key]],
        "x_test": arrays.get(lower.get("x_test", "")),
        "y_test": arrays.get(lower.get("y_test", "")),
        "x_val": arrays.get(lower.get("x_val", "")),
        "y_val": arrays.get(lower.get("y_val", "")),
    }
    return _arrays_to_raw(picked, name, task, str(path), x_name=lower[x_key],
                          y_name=lower[y_key])


def _read_numpy_arrays(path: Path) -> dict[str, np.ndarray]:
    """Arrays of an ``.npz`` file, or of the ``.npy`` files in a folder (or beside a file)."""
    if not path.exists():
        raise DataError(f"{path} does not exist.", path=str(path))
    if path.is_file() and path.suffix.lower() == ".npy":
        path = path.parent
    if path.is_dir():
        files = sorted(path.glob("*.npy"))
        if not files:
            raise DataError(f"The folder {path} has no .npy files.", path=str(path))
        return {f.stem: _load_npy(f, f.name, str(f)) for f in files}
    with path.open("rb") as f:
        magic = f.read(6)
    if magic[:1] == b"\x80":  # the first byte of a pickle (protocol 2 and later)
        raise _pickle_error(path.name, None, str(path))
    if not magic.startswith((b"PK", b"\x93NUMPY")):
        # np.load would take any other file for a pickle and say so, which misleads.
        raise DataError(
            f"{path.name} is not a NumPy .npz or .npy file. Save arrays with "
            "numpy.savez(path, x=x, y=y).", path=str(path),
        )
    if magic.startswith(b"\x93NUMPY"):
        with path.open("rb") as stream:
            _check_npy_header(stream, path.stat().st_size, path.name, str(path))
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        if "pickle" in str(exc):
            raise _pickle_error(path.name, None, str(path)) from exc
        raise DataError(
            f"{path.name} is not a NumPy .npz or .npy file ({exc}).", path=str(path)
        ) from exc
    if isinstance(archive, np.ndarray):
        raise DataError(
            f"{path.name} holds a single array; save x and y together with "
            "numpy.savez(path, x=x, y=y), or put x.npy and y.npy in one folder.",
            path=str(path),
        )
    with archive:
        out = {}
        for key in archive.files:
            try:
                member = archive.zip.getinfo(f"{key}.npy")
            except KeyError:
                member = None  # not an array: np.load gives its bytes, which go unused
            try:
                if member is not None:
                    with archive.zip.open(member) as stream:
                        _check_npy_header(stream, member.file_size, path.name, str(path), key)
                out[key] = archive[key]
            except ValueError as exc:
                if "pickle" in str(exc):
                    raise _pickle_error(path.name, key, str(path)) from exc
                raise DataError(f"{path.name}: array '{key}' cannot be read ({exc}).",
                                path=str(path), column=key) from exc
            except (OSError, zipfile.BadZipFile, EOFError) as exc:
                raise DataError(f"{path.name}: array '{key}' is damaged ({exc}).",
                                path=str(path), column=key) from exc
        return out


def read_array_file(path: Path) -> dict[str, np.ndarray]:
    """The arrays of one ``.npz`` file, or ``{"x": array}`` of one ``.npy`` file, each
    checked before it is read (see ``_check_npy_header``).

    Raises:
        DataError: the file is not a plain NumPy file, is damaged, or claims too much.
    """
    if path.suffix.lower() == ".npy" and path.is_file():
        return {"x": _load_npy(path, path.name, str(path))}
    return _read_numpy_arrays(path)


def _check_npy_header(stream: Any, size: int, name: str, path: str,
                      key: str | None = None) -> None:
    """Refuse an ``.npy`` array whose header claims more data than follows it, or more
    than the computer's memory could hold, before anything is allocated for it.

    Args:
        stream: the ``.npy`` data (a file, or a member of an ``.npz`` archive), at 0.
        size: its size in bytes (for a member: uncompressed, as the archive says).
        name: the file's name; ``key``: the array's name in an ``.npz``.
    """
    from kbuilder.graph.npy import read_header

    where = f"array '{key}' of {name}" if key else name
    try:
        shape, dtype = read_header(stream)
    except ValueError as exc:
        raise DataError(f"{where} is not a NumPy array ({exc}).", path=path,
                        column=key) from exc
    if dtype.hasobject:
        raise _pickle_error(name, key, path)
    claimed = math.prod(shape) * dtype.itemsize
    available = size - stream.tell()
    shown = f"a {'×'.join(map(str, shape)) or 'single-value'} array of {dtype}"
    if claimed > available:
        raise DataError(
            f"{where} is damaged or cut short: its header describes {shown} "
            f"({_size_text(claimed)}), but only {_size_text(available)} of data follow. "
            "Save the arrays again with numpy.savez(path, x=x, y=y).",
            path=path, column=key,
        )
    memory = _memory_bytes()
    if memory and claimed > memory * MAX_MEMORY_SHARE:
        raise DataError(
            f"{where} holds {shown} ({_size_text(claimed)}), more than half of this "
            f"computer's memory ({_size_text(memory)}). Use a smaller sample of the data.",
            path=path, column=key,
        )


def _memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not POSIX
        return None


def _size_text(count: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if count < 1024 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError


def _load_npy(file: Path, name: str, path: str) -> np.ndarray:
    try:
        with file.open("rb") as stream:
            _check_npy_header(stream, file.stat().st_size, name, path)
        array = np.load(file, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc):
            raise _pickle_error(name, None, path) from exc
        raise DataError(f"{name} is not a NumPy .npy file ({exc}).", path=path) from exc
    except (OSError, EOFError) as exc:
        raise DataError(f"{name} is not a NumPy .npy file ({exc}).", path=path) from exc
    return array


def _pickle_error(name: str, key: str | None, path: str) -> DataError:
    where = f"array '{key}' of {name}" if key else name
    return DataError(
        f"{where} holds Python objects (a pickle). kbuilder does not load pickles because "
        "they can run code. Save plain numeric arrays, e.g. numpy.savez(path, "
        "x=x.astype('float32'), y=y).",
        path=path, column=key,
    )


def _arrays_to_raw(
    arrays: dict[str, Any], name: str, task: str | None, path: str,
    x_name: str = "x", y_name: str = "y",
) -> _Raw:
    """Check and encode arrays from NumPy files or memory."""
    x, y = arrays["x"], _checked_array(np.asarray(arrays["y"]), name, path, y_name)
    x = map_x(lambda a: _feature_array(np.asarray(a), name, path, x_name), x)
    _check_lengths(name, path, x, y, x_name, y_name)
    extra_splits = {}
    for split in ("test", "val"):
        xs, ys = arrays.get(f"x_{split}"), arrays.get(f"y_{split}")
        if (xs is None) != (ys is None):
            raise DataError(
                f"{name} has {'x' if ys is None else 'y'}_{split} but not "
                f"{'y' if ys is None else 'x'}_{split}; give both or neither.", path=path,
            )
        if xs is not None:
            xs = map_x(lambda a, k=f"x_{split}": _feature_array(np.asarray(a), name, path, k),
                       xs)
            ys = _checked_array(np.asarray(ys), name, path, f"y_{split}")
            _check_lengths(name, path, xs, ys, f"x_{split}", f"y_{split}")
            extra_splits[split] = (xs, ys)
    if y.ndim == 0:
        raise DataError(f"{name}: {y_name} must hold one label or target per sample.",
                        path=path, column=y_name)
    ys_all = [y] + [s[1] for s in extra_splits.values()]
    if task is None:
        task = infer_task(np.concatenate([_squeeze(v) for v in ys_all]))
    raw = _Raw(x, y, task, name)
    if task == "regression":
        raw.y = _squeeze(y).astype(np.float32)
        for split, (xs, ys) in extra_splits.items():
            setattr(raw, "test" if split == "test" else "validation",
                    (xs, _squeeze(ys).astype(np.float32)))
        return raw
    encode = _class_encoder(ys_all, name, path, y_name, raw.notes)
    raw.y, raw.num_classes, raw.class_names = encode(y), encode.num_classes, encode.names
    for split, (xs, ys) in extra_splits.items():
        setattr(raw, "test" if split == "test" else "validation", (xs, encode(ys)))
    return raw


def _checked_array(a: np.ndarray, name: str, path: str, key: str) -> np.ndarray:
    """``a`` if it has one row per sample and values a model can train on."""
    if a.ndim == 0:
        raise DataError(
            f"{name}: the array '{key}' is a single value (shape ()), not one row per "
            f"sample. Save an array with the samples first, e.g. shape (n, features).",
            path=path, column=key,
        )
    kind = a.dtype.kind
    if kind == "O":
        raise DataError(f"{name}: the array '{key}' holds Python objects, not numbers; "
                        "convert it to a numeric (or text) array first.",
                        path=path, column=key)
    if kind == "c":
        raise DataError(
            f"{name}: the array '{key}' holds complex numbers, which Keras models do not "
            "train on. Keep the real part (a.real), the magnitude (abs(a)), or the real "
            "and imaginary parts as two features.", path=path, column=key,
        )
    if kind in "mMV":
        raise DataError(
            f"{name}: the array '{key}' holds {a.dtype} values, not numbers; convert it "
            "to a numeric array (e.g. seconds as float32) first.", path=path, column=key,
        )
    if kind == "f" and a.dtype.itemsize > 4 and a.size:
        with np.errstate(invalid="ignore"):
            too_large = np.abs(a) > FLOAT32_MAX
        if too_large.any():
            value = a[np.unravel_index(np.argmax(too_large), a.shape)]
            raise DataError(
                f"{name}: the array '{key}' holds {value:g}, beyond what 32-bit floats "
                f"(at most ±{FLOAT32_MAX:.1e}), which models compute in, can hold. "
                "Rescale the values (e.g. other units).", path=path, column=key,
            )
    return a


def _feature_array(a: np.ndarray, name: str = "The data", path: str = "",
                   key: str = "x") -> np.ndarray:
    a = _checked_array(a, name, path, key)
    if a.ndim == 1:
        a = a[:, None]  # one feature per sample
    if a.dtype.kind in "fb" and a.dtype != np.float32:
        a = a.astype(np.float32)  # Keras computes in float32; halves the memory of float64
    return a


def _squeeze(y: np.ndarray) -> np.ndarray:
    return y.reshape(len(y)) if y.ndim == 2 and y.shape[1] == 1 else y


def _check_lengths(name: str, path: str, x: Any, y: np.ndarray, x_name: str,
                   y_name: str) -> None:
    lengths = map_x(len, x)
    values = list(lengths.values()) if isinstance(lengths, dict) else (
        lengths if isinstance(lengths, list) else [lengths])
    if len(set(values)) > 1:
        raise DataError(f"{name}: the input arrays of {x_name} have different numbers of "
                        f"samples ({values}).", path=path)
    if y.ndim and values[0] != len(y):
        raise DataError(
            f"{name}: {x_name} has {plural(values[0], 'sample')} but {y_name} has {len(y)}; "
            "there must be one label or target per sample.", path=path, column=y_name,
        )
    if values[0] == 0:
        raise DataError(f"{name}: {x_name} has no samples.", path=path, column=x_name)


class _ClassEncoder:
    """Maps labels of every split the same way (ids kept when already 0..K-1)."""

    def __init__(self, classes: np.ndarray | None, num_classes: int, names: list[str]):
        self.classes, self.num_classes, self.names = classes, num_classes, names

    def __call__(self, y: np.ndarray) -> np.ndarray:
        if y.ndim == 2 and y.shape[1] > 1:
            return y.astype(np.float32)  # one-hot or multi-label rows stay as they are
        y = _squeeze(y)
        if self.classes is None:
            return y.astype(np.int32)
        return np.searchsorted(self.classes, y if y.dtype.kind in "biuf" else y.astype(str)
                               ).astype(np.int32)


def _class_encoder(ys: list[np.ndarray], name: str, path: str, y_name: str,
                   notes: list[str]) -> _ClassEncoder:
    first = ys[0]
    if first.ndim == 2 and first.shape[1] > 1:
        if not all(_is_zero_one(y) for y in ys):
            raise DataError(
                f"{name}: {y_name} has {first.shape[1]} values per sample that are not all "
                "0 or 1, so they are not one-hot class labels. Treat the data as "
                "regression, or give one class number per sample.", path=path, column=y_name,
            )
        k = first.shape[1]
        return _ClassEncoder(None, k, [str(i) for i in range(k)])
    if first.ndim > 2:
        raise DataError(f"{name}: {y_name} has shape {list(first.shape)}; class labels "
                        "need one value per sample.", path=path, column=y_name)
    values = np.concatenate([_squeeze(y) for y in ys])
    if values.dtype.kind in "biuf":
        whole = np.all(values == np.round(values))
        if whole and values.min() >= 0:
            k = int(values.max()) + 1
            if k < 2:
                raise DataError(f"{name}: every label in {y_name} is 0; a classifier needs "
                                "at least two classes.", path=path, column=y_name)
            return _ClassEncoder(None, k, [str(i) for i in range(k)])
    _, names, label_notes = _encode_labels(values, f"{name} ({y_name})")
    notes += label_notes
    classes = np.unique(values) if values.dtype.kind in "biuf" else np.asarray(names)
    return _ClassEncoder(classes, len(names), names)


# ======================================================================== image folders
def _load_images(location: str, settings: DataSettings, progress: Progress | None) -> _Raw:
    root = Path(location)
    classes = _image_classes(root)
    decode = _image_decoder()
    height, width = settings.image_size
    channels = 3 if settings.color_mode == "rgb" else 1
    total = sum(len(files) for _, files in classes)
    x = np.empty((total, height, width, channels), dtype=np.float32)
    y = np.empty(total, dtype=np.int32)
    i = 0
    for label, (_, files) in enumerate(classes):
        for file in files:
            try:
                data = file.read_bytes()
            except OSError as exc:
                raise DataError(f"{file} cannot be read: {exc}.", path=str(file)) from exc
            try:
                x[i] = decode(data, (height, width), channels)
            except Exception as exc:  # each decoder raises its own kinds of errors
                raise DataError(
                    f"{file} is not a readable image ({_decode_reason(exc)}). Remove or "
                    "replace the file.", path=str(file),
                ) from exc
            y[i] = label
            i += 1
            if progress is not None:
                progress("Reading images", i, total)
    return _Raw(
        x, y, "classification", root.name or str(root),
        class_names=[name for name, _ in classes], num_classes=len(classes),
        notes=[f"Images resized to {height}x{width} ({settings.color_mode}); pixel values "
               "kept as 0..255."],
    )


def _decode_reason(exc: Exception) -> str:
    """The decoder's reason without TensorFlow's op names or Python object addresses."""
    text = str(exc).strip()
    text = text.splitlines()[-1] if text else ""
    text = text.split("}}")[-1]  # TensorFlow: "{{function_node ...}} reason [Op:Decode]"
    text = re.sub(r"\s*\[Op:\w+\]$", "", text)
    text = re.sub(r"\s*<[^>]* at 0x[0-9a-f]+>", "", text)  # Pillow: "<_io.BytesIO at 0x..>"
    return text.strip() or type(exc).__name__


def _image_classes(root: Path) -> list[tuple[str, list[Path]]]:
    """``(class name, image files)`` per sub-folder, sorted; explains what is wrong."""
    if not root.exists():
        raise DataError(f"The image folder {root} does not exist.", path=str(root))
    if not root.is_dir():
        raise DataError(f"{root} is a file; choose a folder with one sub-folder per class.",
                        path=str(root))
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        loose = [p for p in root.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS]
        hint = (f" It holds {plural(len(loose), 'image')} directly; " if loose else " ")
        raise DataError(
            f"{root} has no sub-folders.{hint}Put the images of each class in its own "
            f"sub-folder, e.g. {root.name}/cats/ and {root.name}/dogs/.", path=str(root),
        )
    classes = []
    for folder in folders:
        files = sorted(
            p for p in folder.rglob("*")
            if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
            and not p.name.startswith(".")
        )
        if not files:
            raise DataError(
                f"The class folder '{folder.name}' in {root} has no images "
                f"({', '.join(IMAGE_EXTENSIONS)}). Add images or remove the folder.",
                path=str(folder),
            )
        classes.append((folder.name, files))
    if len(classes) < 2:
        raise DataError(
            f"{root} has only one class folder ('{classes[0][0]}'); a classifier needs at "
            "least two. Add a sub-folder of images for each other class.", path=str(root),
        )
    return classes


def _image_decoder() -> Callable[[bytes, tuple[int, int], int], np.ndarray]:
    """A function ``(file bytes, (height, width), channels) -> float32 array 0..255``.

    Pillow when installed (fast, many formats), else TensorFlow's decoders (PNG, JPEG,
    GIF, BMP, WebP), which kbuilder installs anyway.
    """
    try:
        from PIL import Image
    except ImportError:
        return _tf_decode

    def decode(data: bytes, size: tuple[int, int], channels: int) -> np.ndarray:
        with Image.open(io.BytesIO(data)) as image:
            image = image.convert("RGB" if channels == 3 else "L")
            image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            array = np.asarray(image, dtype=np.float32)
        return array.reshape(size[0], size[1], channels)

    return decode


def _tf_decode(data: bytes, size: tuple[int, int], channels: int) -> np.ndarray:
    import tensorflow as tf

    image = tf.io.decode_image(data, channels=channels, expand_animations=False)
    image = tf.image.resize(image, size, method="bilinear", antialias=True)
    return np.clip(image.numpy(), 0, 255)


# ============================================================================ adapt()
# Adaptable layer -> the parameters that, when given, already hold what adapt() computes.
ADAPTABLE_LAYERS: dict[str, tuple[str, ...]] = {
    "Normalization": ("mean", "variance"),
    "TextVectorization": ("vocabulary",),
    "StringLookup": ("vocabulary",),
    "IntegerLookup": ("vocabulary",),
    "Discretization": ("bin_boundaries",),
}


@dataclass(frozen=True)
class AdaptResult:
    """What ``adapt_layers`` did with one adaptable layer."""

    layer: str
    adapted: bool
    message: str


def adapt_layers(model: Any, x_train: Any) -> list[AdaptResult]:
    """Call ``adapt()`` on the model's adaptable layers with the training data they see.

    Only a layer that takes a model input directly can be adapted here: its data is that
    input's training data. A layer deeper in the model sees values that only exist once the
    earlier layers run, so it is reported instead (give its statistics as parameters, or
    move it right after the input).

    Args:
        model: a built ``keras.Model``.
        x_train: the training inputs: an array, or a dict (by input name) or list of arrays.

    Returns:
        One ``AdaptResult`` per adaptable layer, in model order.
    """
    by_tensor = {id(t): i for i, t in enumerate(model.inputs)}
    names = [getattr(t, "name", None) or f"input_{i}" for i, t in enumerate(model.inputs)]
    results = []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind not in ADAPTABLE_LAYERS:
            continue
        config = layer.get_config()
        if any(config.get(p) is not None for p in ADAPTABLE_LAYERS[kind]):
            results.append(AdaptResult(layer.name, False, f"'{layer.name}' has its "
                           f"{' and '.join(ADAPTABLE_LAYERS[kind])} set; nothing to adapt."))
            continue
        sources = [id(t) for node in getattr(layer, "_inbound_nodes", [])
                   for t in node.input_tensors]
        index = {by_tensor[s] for s in sources if s in by_tensor}
        if len(index) != 1 or len(sources) != 1:
            results.append(AdaptResult(
                layer.name, False,
                f"'{layer.name}' ({kind}) cannot be adapted automatically because it does "
                "not take a model input directly. Move it right after the Input, or set its "
                f"{' and '.join(ADAPTABLE_LAYERS[kind])} by hand.",
            ))
            continue
        (i,) = index
        data = _input_data(x_train, i, names[i], len(model.inputs))
        layer.adapt(data)
        results.append(AdaptResult(layer.name, True, f"'{layer.name}' adapted on "
                                   f"{num_rows(data)} training samples of '{names[i]}'."))
    return results


def _input_data(x: Any, index: int, name: str, count: int) -> np.ndarray:
    if isinstance(x, Mapping):
        if name not in x:
            raise DataError(f"The data has no array for the model input '{name}'; it has: "
                            f"{', '.join(map(str, x))}.")
        return x[name]
    if isinstance(x, list | tuple):
        return x[index]
    if count != 1:
        raise DataError(f"The model has {count} inputs but the data is a single array.")
    return x


__all__ = [
    "ADAPTABLE_LAYERS",
    "AdaptResult",
    "CLASS_LABEL_LIMIT",
    "DataError",
    "Dataset",
    "Progress",
    "adapt_layers",
    "dataset_from_arrays",
    "fit_to_input",
    "infer_task",
    "load_data",
    "map_x",
    "num_rows",
]

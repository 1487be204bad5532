"""The Dataset record and helpers for data of one or several inputs."""


from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kbuilder.graph.settings import DataSettings
from kbuilder.graph.text import plural

# ``progress(stage, done, total)``: ``total`` is ``None`` when unknown (e.g. a download
# whose size the server does not report).
Progress = Callable[[str, int, "int | None"], None]

FLOAT32_MAX = float(np.finfo(np.float32).max)
# Samples a streamed source decodes where a check or a summary looks at values (the
# pre-flight scaling check, the value range): enough to see the scale, little memory.
STREAM_SAMPLE = 64


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




# ============================================================================ streams
class Streamed:
    """Samples read from disk when used, standing where an array would (``x_*``).

    Subclasses (``images.ImageFiles``) have ``shape``, ``dtype``, ``len()``, indexing that
    reads those samples into a NumPy array, ``subset(index)`` (no reading), ``batch(index,
    y)`` for training, ``with_sample_shape`` and ``fingerprint_bytes``. Training,
    evaluation and prediction feed them through ``runtime.data.feed``.
    """

    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def head(self, count: int = STREAM_SAMPLE) -> np.ndarray:
        """The first ``count`` samples, read."""
        return self[: min(count, len(self))]  # type: ignore[index]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        array = self[:]  # type: ignore[index]  # reads everything: avoid on large data
        return array if dtype is None else array.astype(dtype)


def values_sample(x: Any, count: int = STREAM_SAMPLE) -> Any:
    """``x`` itself when it is in memory, else its first ``count`` samples, read."""
    return map_x(lambda a: a.head(count) if isinstance(a, Streamed) else a, x)


# ============================================================================ Dataset
@dataclass(eq=False)
class Dataset:
    """Arrays of the three splits plus what is known about them.

    ``x_*`` are NumPy arrays with samples first (a dict or list of arrays for models with
    several inputs is allowed by every helper here; a dict by Output name of ``y_*`` for
    several outputs, the first of which ``task``, the classes and the summary's class
    counts describe), or ``Streamed`` sources read from disk when used (image folders).
    ``y_*`` are integer class ids
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
    # Tables in "model" encoding: how raw rows become the inputs (a RowEncoder).
    row_encoder: Any = None

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
        y = first_target(self.y_train)
        if y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1):
            return "integer"
        return "one_hot" if is_one_hot(y) else "multi_label"

    def labels_as_ids(self, y: np.ndarray) -> np.ndarray:
        """Class ids ``(n,)`` from any label format (argmax of one-hot rows); of the first
        output's targets when ``y`` has one per output."""
        y = first_target(y)
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
            for name, array in _named_arrays(f"{split}/x", x) + _named_arrays(f"{split}/y", y):
                if isinstance(array, Streamed):  # its files' names, sizes and times
                    h.update(f"{name}:stream:".encode() + array.fingerprint_bytes())
                    continue
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
                "y_shape": map_x(lambda a: list(a.shape), y),
                "y_dtype": map_x(lambda a: str(a.dtype), y),
            }
            if self.task == "classification":
                if self.label_format == "multi_label":
                    counts = np.asarray(first_target(y)).sum(axis=0).astype(np.int64)
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
            "x_range": map_x(value_range, self.x_train),
            "missing": self.missing,
            "preprocessing": self.preprocessing,
            "notes": self.notes,
            "fingerprint": self.fingerprint,
        }
        if self.task == "regression":
            summary["y_range"] = value_range(first_target(self.y_train))
        return summary


def value_range(array: np.ndarray) -> dict[str, Any]:
    array = values_sample(array)  # a stream: the range of its first samples
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


def first_target(y: Any) -> Any:
    """``y`` itself, or the targets of the first output when ``y`` has one per output."""
    if isinstance(y, Mapping):
        return next(iter(y.values()))
    return y


def take_rows(x: Any, index: np.ndarray) -> Any:
    return map_x(lambda a: a.subset(index) if isinstance(a, Streamed) else a[index], x)


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
    if isinstance(x, Streamed):  # checked here, reshaped as each batch is read
        fitted = fit_to_input(np.zeros((1, *have), x.dtype), shape, name)
        return x if fitted.shape[1:] == have else x.with_sample_shape(fitted.shape[1:])
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


# The key of a table's feature columns when ``x`` is a dict (a table with image paths).
TABLE_FEATURES = "features"


def match_inputs(x: Any, names: Sequence[str], ranks: Sequence[int | None]) -> Any:
    """``x`` with the keys that name no Input renamed to the Inputs that have no array,
    when each such array pairs with exactly one of them by sample rank (a table's
    features with the Input of shape ``[n]``, images with the Input of shape ``[h, w,
    c]``): a table with a column of image paths feeding a tabular + image model, some of
    its Inputs chosen by hand, the features (``TABLE_FEATURES``) not. ``x`` itself otherwise (then the names decide, and
    the messages say what lacks data).
    """
    if not isinstance(x, Mapping) or len(x) != len(names) or len(names) < 2:
        return x
    free = [(n, r) for n, r in zip(names, ranks, strict=True) if n not in x]
    loose = [k for k in x if k not in names]
    # Only a table's inputs (its features not yet given an Input): arrays a user named
    # in a NumPy file are matched by their names, and a wrong name is said so.
    # Or a table in "model" encoding: only its image columns are loose (images by rank).
    if not free or len(free) != len(loose) or (TABLE_FEATURES not in loose and not all(
            isinstance(x[k], Streamed) for k in loose)):
        return x
    renamed: dict[str, str] = {}
    for key in loose:
        fits = [n for n, r in free if r == len(x[key].shape) - 1]
        if len(fits) != 1 or fits[0] in renamed.values():
            return x
        renamed[key] = fits[0]
    return {renamed.get(k, k): v for k, v in x.items()}


def fit_to_inputs(x: Any, names: Sequence[str], shapes: Sequence[Sequence[int | None]]) -> Any:
    """``x`` as a model of the inputs ``names`` (each taking samples of ``shapes``) takes it.

    One input: the array itself (the only array of a dict or list, whatever its name).
    Several: a list in the order of ``names``, from a dict by input name (arrays no input
    takes are left out) or a list in the same order. Each array goes through
    ``fit_to_input``. ``None`` stays ``None`` (an empty split).

    Raises:
        DataError: an input gets no array, or an array does not fit its input.
    """
    if x is None:
        return None
    names, shapes = list(names), list(shapes)
    shown = ", ".join(f"'{n}'" for n in names)
    x = match_inputs(x, names, [len(s) for s in shapes])
    if isinstance(x, Mapping):
        if len(names) == 1 and len(x) == 1:
            return fit_to_input(next(iter(x.values())), shapes[0], names[0])
        missing = [n for n in names if n not in x]
        if missing:
            raise DataError(
                f"The model's Input{'s' if len(missing) > 1 else ''} "
                f"{', '.join(repr(n) for n in missing)} get{'s' if len(missing) == 1 else ''} "
                f"no data: the data has the arrays {', '.join(repr(k) for k in x)}, and the "
                f"model's inputs are {shown}. Rename the arrays or the Inputs, or choose "
                "the array of each Input in the Data tab.", column=missing[0],
            )
        arrays = [x[n] for n in names]
    elif isinstance(x, list | tuple):
        if len(x) != len(names):
            raise DataError(f"The model has {plural(len(names), 'input')} ({shown}) but the "
                            f"data gives {plural(len(x), 'array')} per sample.")
        arrays = list(x)
    else:
        if len(names) != 1:
            raise DataError(
                f"The model has {plural(len(names), 'input')} ({shown}) but the data is "
                "one array. Give a NumPy .npz file with one array per input, named after "
                "the Inputs, and the target array y.")
        arrays = [x]
    fitted = [fit_to_input(a, s, n) for a, s, n in zip(arrays, shapes, names, strict=True)]
    return fitted[0] if len(fitted) == 1 else fitted


def fit_targets(y: Any, output_names: Sequence[str] | None = None) -> Any:
    """``y`` as ``model.fit`` takes it: the array itself, or for targets by Output name a
    list in the order of ``output_names`` (the graph's Output nodes; the dict's own order
    when not known, as for a model file).

    Raises:
        DataError: an Output has no target.
    """
    if not isinstance(y, Mapping):
        return y
    names = list(output_names) if output_names else list(y)
    missing = [n for n in names if n not in y]
    if missing:
        raise DataError(
            f"The model's Output '{missing[0]}' has no target: the data has targets for "
            f"{', '.join(repr(k) for k in y)}. Choose the target array of each Output in "
            "the Data tab.", column=missing[0])
    targets = [y[n] for n in names]
    return targets[0] if len(targets) == 1 else targets


def fit_to_model(x: Any, model: Any) -> Any:
    """``x`` fitted to a built Keras model's inputs (see ``fit_to_inputs``)."""
    inputs = list(model.inputs)
    names = [getattr(t, "name", None) or f"input_{i}" for i, t in enumerate(inputs)]
    return fit_to_inputs(x, names, [tuple(t.shape[1:]) for t in inputs])


def _shape_text(shape: Sequence[Any]) -> str:
    inner = ", ".join(str(d) for d in shape)
    return f"({inner}{',' if len(shape) == 1 else ''})"



def is_zero_one(y: np.ndarray) -> bool:
    return y.dtype.kind in "biuf" and bool(np.all((y == 0) | (y == 1)))


def is_one_hot(y: np.ndarray) -> bool:
    return y.ndim == 2 and is_zero_one(y) and bool(np.all(y.sum(axis=1) == 1))



"""Data and training settings of a project: plain, validated, JSON-safe records.

They live in the project file (``project.data`` / ``project.training``), drive the
training worker, and are what generated training scripts reproduce. Pure Python: the
runtime interprets them (loads data, builds optimizers); this module only says what a valid
setting is.
"""

from __future__ import annotations

import codecs
import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kbuilder.graph.errors import GraphError
from kbuilder.graph.text import found

SKLEARN_DATASETS = ("digits", "iris", "wine", "breast_cancer", "diabetes")
KERAS_DATASETS = (
    "mnist", "fashion_mnist", "cifar10", "cifar100", "imdb", "reuters", "boston_housing",
)
# The built-in datasets whose samples are images (a model trained on one predicts on images).
BUILTIN_IMAGE_DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10", "cifar100")
DATA_KINDS = ("builtin", "csv", "npz", "images")
# The image files kbuilder reads (image folders, image-path columns, predictions).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
BACKENDS = ("jax", "tensorflow", "torch")  # the Keras backends that train
# Backends that only run trained models: Keras's OpenVINO backend has no training loop.
INFERENCE_BACKENDS = ("openvino",)
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "adagrad", "adadelta", "adamax", "nadam",
              "ftrl", "lion", "lamb")
LOSSES = (
    "sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy",
    "mean_squared_error", "mean_absolute_error", "huber", "log_cosh", "kl_divergence",
    "categorical_hinge", "hinge", "squared_hinge", "poisson", "cosine_similarity",
)
# How a run spreads over devices: "data-parallel" copies the model to every device and
# splits each batch between them (keras.distribution.DataParallel; graph/distribution.py).
DISTRIBUTIONS = ("none", "data-parallel")
METRICS = (
    "accuracy", "sparse_categorical_accuracy", "categorical_accuracy", "binary_accuracy",
    "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy", "auc", "precision",
    "recall", "mean_squared_error", "mean_absolute_error", "root_mean_squared_error",
    "mean_absolute_percentage_error", "r2_score",
)


class SettingsError(GraphError):
    """A data or training setting that is not allowed; ``param`` names the field."""


@dataclass(frozen=True)
class DataSettings:
    """Where the data comes from and how it is split.

    ``source`` uses the command-line spec: ``digits`` (any built-in name), ``csv:PATH``,
    ``npz:PATH``, ``images:DIR``.
    """

    source: str = "digits"
    target: str | None = None  # CSV: the column to predict
    features: tuple[str, ...] | None = None  # CSV: feature columns (None: all others)
    categorical: tuple[str, ...] = ()  # CSV: columns to one-hot encode
    # Tables: how to read the file; None: as the source spec says, else detected.
    header: int | str | None = None  # "none" (no header row) or the header's line (1-based)
    delimiter: str | None = None  # one of DELIMITERS
    decimal: str | None = None  # "." or ","
    encoding: str | None = None  # a Python codec name (utf-8, cp1252, latin-1, ...)
    sheet: str | None = None  # Excel: the sheet (None: the first)
    # Tables: the user's column roles, ((column, role), ...) with roles from ROLE_CHOICES,
    # and category merges, ((column, value, becomes), ...), applied before encoding.
    roles: tuple[tuple[str, str], ...] = ()
    merges: tuple[tuple[str, str, str], ...] = ()
    image_size: tuple[int, int] = (64, 64)  # image folders: resize to this
    color_mode: str = "rgb"  # image folders: rgb | grayscale
    skip_bad_images: bool = False  # image folders: leave unreadable files out, listed
    cache_images: bool = False  # image folders: keep resized images in kbuilder's cache
    validation_split: float = 0.2
    test_split: float = 0.2
    seed: int = 0
    # NumPy files with one array per model input or output: (node name, array name) pairs
    # saying which array feeds which Input node and which is the target of which Output.
    # Empty: arrays are matched to the Inputs by name, and the array ``y`` is the target.
    input_arrays: tuple[tuple[str, str], ...] = ()
    output_arrays: tuple[tuple[str, str], ...] = ()
    # Tables: "flat" gives one float32 array of encoded features (categories one-hot,
    # missing numbers filled: preprocessing outside the model); "model" gives raw numbers
    # (NaN where missing) in the input "numeric" and category codes per categorical column,
    # for a model whose input stage does the rest (see runtime/data/row_encoder.py).
    table_encoding: str = "flat"
    # Tables: read in blocks (a file larger than memory), statistics from one pass, rows
    # split by a hash of their line (runtime/data/table_stream.py). False: read whole.
    # "auto" (new settings): streamed when reading whole would take more than a share of
    # the computer's memory (graph/stream_choice.py). A project file without the field is
    # from before "auto" existed and keeps its choice, read whole (``from_dict``).
    stream_table: bool | str = "auto"

    @property
    def kind(self) -> str:
        return parse_source(self.source)[0]

    @property
    def location(self) -> str:
        return parse_source(self.source)[1]

    def table(self) -> TableSpec:
        """How to read a table source: the spec's options, overridden by these fields."""
        spec = parse_table_spec(self.source)
        chosen = {name: getattr(self, _SETTING_OF.get(name, name)) for name in TABLE_OPTIONS}
        if chosen["stream"] is False:
            chosen["stream"] = None  # off: as the spec says
        elif chosen["stream"] == "auto" and spec.stream is not None:
            chosen["stream"] = None  # the spec's own yes or no
        return dataclasses.replace(spec, **{k: v for k, v in chosen.items() if v is not None})

    def role_overrides(self) -> dict[str, str]:
        return dict(self.roles)

    def categorical_columns(self) -> tuple[str, ...]:
        """The columns chosen as categorical, either way (read as text, even if numbers)."""
        return tuple(sorted(set(self.categorical) | {
            c for c, r in self.roles if r == "categorical"}))

    def merge_map(self) -> dict[str, dict[str, str]]:
        """column -> {value: the value it becomes}."""
        out: dict[str, dict[str, str]] = {}
        for column, value, becomes in self.merges:
            out.setdefault(column, {})[value] = becomes
        return out

    def to_dict(self) -> dict[str, Any]:
        data = _to_dict(self)
        for name in _ARRAY_MAPS:
            # Written as {node: array}, and only when set, so that the settings (and the
            # fingerprints of data recorded before these fields existed) stay as they were.
            if data[name]:
                data[name] = {node: array for node, array in getattr(self, name)}
            else:
                del data[name]
        if data["table_encoding"] == "flat":
            del data["table_encoding"]  # old projects' settings and fingerprints unchanged
        if not data["stream_table"]:
            del data["stream_table"]  # the same
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataSettings:
        values = _from_dict(cls, data, "data")
        # Written only when not False since it exists: a file without it chose "read whole".
        values.setdefault("stream_table", False)
        for name in ("features", "categorical", "image_size"):
            if isinstance(values.get(name), list):
                values[name] = tuple(values[name])
        for name in ("roles", "merges"):  # lists of lists in the project file
            if isinstance(values.get(name), list):
                values[name] = tuple(tuple(v) if isinstance(v, list) else v
                                     for v in values[name])
        for name in _ARRAY_MAPS:
            if name in values:
                values[name] = _array_map(values[name], name)
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        parse_source(self.source)
        if self.table_encoding not in TABLE_ENCODINGS:
            raise SettingsError(f"data: table_encoding must be one of "
                                f"{', '.join(TABLE_ENCODINGS)}; received "
                                f"{self.table_encoding!r}.", param="table_encoding")
        _fraction(self.validation_split, "validation_split", "data")
        _fraction(self.test_split, "test_split", "data")
        if self.validation_split + self.test_split >= 1:
            raise SettingsError(
                "data: validation_split + test_split must leave some data for training; "
                f"they add up to {self.validation_split + self.test_split:g}.",
                param="validation_split",
            )
        if self.color_mode not in ("rgb", "grayscale"):
            raise SettingsError(
                f"data: color_mode must be 'rgb' or 'grayscale'; found {self.color_mode!r}.",
                param="color_mode",
            )
        if len(self.image_size) != 2 or not all(
            isinstance(v, int) and v > 0 for v in self.image_size
        ):
            raise SettingsError(
                "data: image_size must be two positive integers (height, width); "
                f"found {list(self.image_size)!r}.",
                param="image_size",
            )
        _int(self.seed, "seed", "data", minimum=0)
        _check_table_options(self)
        for pair in self.roles:
            if not (isinstance(pair, tuple) and len(pair) == 2
                    and all(isinstance(v, str) for v in pair)):
                raise SettingsError("data: roles must be (column, role) pairs.", param="roles")
            if pair[1] not in ROLE_CHOICES:
                raise SettingsError(
                    f"data: the role of column {pair[0]!r} must be one of "
                    f"{', '.join(ROLE_CHOICES)}; found {pair[1]!r}.", param="roles")
        for triple in self.merges:
            if not (isinstance(triple, tuple) and len(triple) == 3
                    and all(isinstance(v, str) for v in triple)):
                raise SettingsError("data: merges must be (column, value, becomes) triples.",
                                    param="merges")
        if not (isinstance(self.stream_table, bool) or self.stream_table == "auto"):
            raise SettingsError("data: stream_table must be true, false or \"auto\"; found "
                                f"{self.stream_table!r}.", param="stream_table")
        for name in ("skip_bad_images", "cache_images"):
            if not isinstance(getattr(self, name), bool):
                raise SettingsError(f"data: {name} must be true or false; found "
                                    f"{getattr(self, name)!r}.", param=name)
        for name in _ARRAY_MAPS:
            pairs = getattr(self, name)
            _array_map(pairs, name)
            nodes = [node for node, _ in pairs]
            if len(set(nodes)) != len(nodes):
                twice = next(n for n in nodes if nodes.count(n) > 1)
                raise SettingsError(f"data: {name} names the node '{twice}' twice; each "
                                    "node takes one array.", param=name)


_ARRAY_MAPS = ("input_arrays", "output_arrays")
TABLE_ENCODINGS = ("flat", "model")


def _array_map(value: Any, name: str) -> tuple[tuple[str, str], ...]:
    """``{node: array}`` or ``[[node, array], ...]`` as pairs of non-empty names."""
    items = list(value.items()) if isinstance(value, dict) else value
    try:
        pairs = tuple((node, array) for node, array in items)
    except (TypeError, ValueError):
        pairs = None
    if pairs is None or not all(isinstance(v, str) and v for pair in pairs for v in pair):
        raise SettingsError(f"data: {name} must map node names to array names, e.g. "
                            f'{{"image": "images"}}; found {found(value)}.', param=name)
    return pairs


# The roles a user may give a table's column (the loader infers one when none is given):
# numbers, categories (one-hot), a 0/1 flag, a date/time expanded into numbers, or unused.
# "image_path": the cells are image files (relative to the table's folder, or absolute)
# that feed an image Input of the model (``runtime.data.image_paths``).
ROLE_CHOICES = ("numeric", "categorical", "boolean", "datetime", "image_path", "ignore")

# ========================================================================== tables
TABLE_FORMATS = ("csv", "tsv", "parquet", "excel")
TABLE_OPTIONS = ("target", "header", "delimiter", "decimal", "encoding", "sheet", "stream")
# The DataSettings field of a table option, where it has another name.
_SETTING_OF = {"stream": "stream_table"}
DELIMITERS = {",": ",", ";": ";", "tab": "\t", "\t": "\t", "|": "|"}
_EXTENSIONS = {".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet",
               ".xlsx": "excel", ".xlsm": "excel", ".xls": "excel"}
# The file names a table source takes (``csv:`` with any of them reads by the suffix).
TABLE_SUFFIXES = (".csv", ".txt", *_EXTENSIONS)
_OPTION = re.compile(r":(" + "|".join(TABLE_OPTIONS) + r")=")
_YES_NO = {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False}


@dataclass(frozen=True)
class TableSpec:
    """A table source's file and reading options, as ``parse_table_spec`` reads them.

    ``None`` means "detect" (``target``: the last column). ``header`` is ``"none"`` or the
    1-based line of the header row (lines above it are skipped).
    """

    format: str
    path: str
    target: str | None = None
    header: int | str | None = None
    delimiter: str | None = None
    decimal: str | None = None
    encoding: str | None = None
    sheet: str | None = None
    stream: bool | str | None = None  # read in blocks (``:stream=yes``), or "auto"


def parse_table_spec(source: str) -> TableSpec:
    """``csv:PATH[:target=COL][:header=none|N][:delimiter=;|tab|,][:decimal=,]
    [:encoding=NAME][:sheet=NAME][:stream=yes|no|auto]``, ``tsv:PATH``, ``parquet:PATH``, ``excel:PATH``.

    The format is the prefix, or for ``csv:`` the file's extension (``.tsv``, ``.parquet``,
    ``.xlsx``...). The one parser of these options: the CLI, the loader, the preview and
    the Data tab all call it.

    Raises:
        SettingsError: not a table source, or an option with a value that is not allowed.
    """
    prefix, sep, rest = source.partition(":") if isinstance(source, str) else ("", "", "")
    if not sep or prefix not in TABLE_FORMATS or not rest:
        raise SettingsError(f"data: {source!r} is not a table source (csv:PATH, tsv:PATH, "
                            "parquet:PATH or excel:PATH).", param="source")
    matches = list(_OPTION.finditer(rest))
    path = rest[: matches[0].start()] if matches else rest
    options: dict[str, Any] = {}
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(rest)
        options[match.group(1)] = rest[match.end():end]
    if not path:
        raise SettingsError(f"data: {source!r} names no file.", param="source")
    if "header" in options and options["header"].isdigit():
        options["header"] = int(options["header"])
    if "delimiter" in options:
        options["delimiter"] = DELIMITERS.get(options["delimiter"], options["delimiter"])
    if "stream" in options:
        word = options["stream"].lower()
        if word not in _YES_NO and word != "auto":
            raise SettingsError(f"data: stream must be yes, no or auto; found "
                                f"{options['stream']!r}.", param="stream")
        options["stream"] = _YES_NO.get(word, word)
    fmt = prefix
    if prefix == "csv":
        fmt = _EXTENSIONS.get(Path(path).suffix.lower(), "csv")
    spec = TableSpec(fmt, path, **{k: (v or None) if k not in ("header", "stream") else v
                                   for k, v in options.items()})
    _check_table_options(spec)
    return spec


def spec_fields(spec: str) -> dict[str, Any]:
    """A command line's ``--data`` spec as data settings: ``{"source": ..., "target":
    ..., ...}`` with the table options as fields (only those the spec names)."""
    try:
        table = parse_table_spec(spec)
    except SettingsError:
        return {"source": spec}
    prefix = spec.partition(":")[0]
    fields: dict[str, Any] = {"source": f"{prefix}:{table.path}"}
    for name in TABLE_OPTIONS:
        value = getattr(table, name)
        if value is not None:
            fields[_SETTING_OF.get(name, name)] = value
    return fields


def _check_table_options(spec: Any) -> None:
    header = spec.header
    if header is not None and header != "none" and not (
        isinstance(header, int) and not isinstance(header, bool) and header >= 1
    ):
        raise SettingsError(
            "data: header must be 'none' (no header row) or the header's line number "
            f"(1, 2, ...); found {found(header)}.", param="header")
    if spec.delimiter is not None and spec.delimiter not in DELIMITERS.values():
        raise SettingsError(
            "data: delimiter must be one of , ; tab |; found "
            f"{spec.delimiter!r}.", param="delimiter")
    if spec.decimal is not None and spec.decimal not in (".", ","):
        raise SettingsError(f"data: decimal must be '.' or ','; found {spec.decimal!r}.",
                            param="decimal")
    if spec.encoding is not None:
        try:
            codecs.lookup(spec.encoding)
        except (LookupError, TypeError):
            raise SettingsError(
                f"data: unknown encoding {spec.encoding!r}; use e.g. utf-8, cp1252 or "
                "latin-1.", param="encoding") from None
    if spec.sheet is not None and not isinstance(spec.sheet, str):
        raise SettingsError("data: sheet must be a sheet's name.", param="sheet")


# The data settings each kind of source reads; the others keep their defaults and mean
# nothing for it (image settings for a CSV, CSV columns for digits).
COMMON_DATA_FIELDS = ("source", "validation_split", "test_split", "seed")
DATA_FIELDS_BY_KIND = {
    "csv": ("target", "features", "categorical", "header", "delimiter", "decimal",
            "encoding", "sheet", "roles", "merges", "stream_table",
            *_ARRAY_MAPS),  # a column of image paths: which Input it feeds
    "images": ("image_size", "color_mode", "skip_bad_images", "cache_images"),
    "npz": _ARRAY_MAPS,
    "builtin": (),
}


def data_fields(source: str) -> tuple[str, ...]:
    """The ``DataSettings`` fields that apply to ``source`` (all of them when the source
    is not one kbuilder can read)."""
    try:
        kind = parse_source(source)[0]
    except SettingsError:
        return tuple(f.name for f in dataclasses.fields(DataSettings))
    return COMMON_DATA_FIELDS + DATA_FIELDS_BY_KIND[kind]


def parse_source(source: str) -> tuple[str, str]:
    """``"csv:/x.csv"`` -> ``("csv", "/x.csv")``; ``"digits"`` -> ``("builtin", "digits")``.

    Raises:
        SettingsError: the spec names nothing kbuilder can read.
    """
    if not isinstance(source, str) or not source:
        raise SettingsError("data: source must be a dataset name or KIND:PATH; found "
                            f"{source!r}.", param="source")
    if source in SKLEARN_DATASETS or source in KERAS_DATASETS:
        return "builtin", source
    kind, sep, location = source.partition(":")
    if sep and kind in TABLE_FORMATS and location:
        return "csv", location  # every table format is read by the CSV source
    if sep and kind in ("npz", "images") and location:
        return kind, location
    raise SettingsError(
        f"data: unknown data source {source!r}. Use a built-in dataset "
        f"({', '.join(SKLEARN_DATASETS + KERAS_DATASETS)}), csv:PATH, tsv:PATH, parquet:PATH, "
        "excel:PATH, npz:PATH or images:DIR.",
        param="source",
    )


# The second phase of a fine-tuning run learns this many times more slowly by default
# (the keras.io transfer-learning guide: "a very low learning rate").
FINE_TUNE_LR_DIVISOR = 10


@dataclass(frozen=True)
class TrainingSettings:
    """How to compile and fit the model."""

    backend: str = "jax"
    device: str = "cpu"
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    loss: str = "sparse_categorical_crossentropy"
    metrics: tuple[str, ...] = ("accuracy",)
    epochs: int = 10
    batch_size: int = 32
    seed: int = 0
    mixed_precision: bool = False
    early_stopping: dict[str, Any] | None = None  # {"monitor", "patience", "restore_best_weights"}
    reduce_lr_on_plateau: dict[str, Any] | None = None  # {"monitor", "factor", "patience"}
    checkpoint: dict[str, Any] | None = None  # {"monitor", "save_best_only"}
    tensorboard: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # room for settings added later
    # "data-parallel": the batch (batch_size, the global batch) is split over ``devices``
    # devices of the backend (None: all it sees), each holding a copy of the model.
    distribute: str = "none"
    devices: int | None = None
    # Two-phase training (keras.io transfer-learning guide): after `epochs` with the frozen
    # nodes frozen, `fine_tune_epochs` more (0: no second phase) with the layers from
    # `fine_tune_from` on unfrozen (a layer or block name; None: every frozen node) at
    # `fine_tune_learning_rate` (None: learning_rate / 10), recompiled.
    fine_tune_from: str | None = None
    fine_tune_epochs: int = 0
    fine_tune_learning_rate: float | None = None

    @property
    def fine_tunes(self) -> bool:
        return self.fine_tune_epochs > 0

    @property
    def total_epochs(self) -> int:
        """The epochs of both phases (the curves' epoch numbers run on across them)."""
        return self.epochs + self.fine_tune_epochs

    @property
    def phase_two_learning_rate(self) -> float:
        if self.fine_tune_learning_rate is not None:
            return self.fine_tune_learning_rate
        return self.learning_rate / FINE_TUNE_LR_DIVISOR

    def to_dict(self) -> dict[str, Any]:
        data = _to_dict(self)
        # Written only when set, so that older projects' settings (and the run records
        # and fingerprints made from them) stay exactly as they were.
        for name, default in (("distribute", "none"), ("devices", None)):
            if data[name] == default:
                del data[name]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingSettings:
        values = _from_dict(cls, data, "training")
        if isinstance(values.get("metrics"), list):
            values["metrics"] = tuple(values["metrics"])
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        _choice(self.backend, BACKENDS, "backend")
        if not isinstance(self.device, str) or not (
            self.device == "cpu"
            or (self.device.startswith("gpu:") and self.device[4:].isdigit())
        ):
            raise SettingsError(
                f"training: device must be 'cpu' or 'gpu:N'; found {self.device!r}.",
                param="device",
            )
        _choice(self.optimizer, OPTIMIZERS, "optimizer")
        _choice(self.loss, LOSSES, "loss")
        for metric in self.metrics:
            _choice(metric, METRICS, "metrics")
        if not isinstance(self.learning_rate, int | float) or not 0 < self.learning_rate < 10:
            raise SettingsError(
                "training: learning_rate must be a number between 0 and 10 (typically 1e-4 "
                f"to 1e-2); found {self.learning_rate!r}.",
                param="learning_rate",
            )
        _int(self.epochs, "epochs", "training", minimum=1)
        _int(self.batch_size, "batch_size", "training", minimum=1)
        _int(self.seed, "seed", "training", minimum=0)
        if not isinstance(self.mixed_precision, bool):
            raise SettingsError("training: mixed_precision must be true or false.",
                                param="mixed_precision")
        _choice(self.distribute, DISTRIBUTIONS, "distribute")
        if self.devices is not None:
            _int(self.devices, "devices", "training", minimum=1)
        _int(self.fine_tune_epochs, "fine_tune_epochs", "training", minimum=0)
        if self.fine_tune_from is not None and (
                not isinstance(self.fine_tune_from, str) or not self.fine_tune_from.strip()):
            raise SettingsError("training: fine_tune_from must be the name of a layer or "
                                f"block, or null; found {found(self.fine_tune_from)}.",
                                param="fine_tune_from")
        rate = self.fine_tune_learning_rate
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int | float)
                                 or not 0 < rate < 10):
            raise SettingsError(
                "training: fine_tune_learning_rate must be a number between 0 and 10 (the "
                f"guide uses 1e-5), or null for learning_rate / 10; found {found(rate)}.",
                param="fine_tune_learning_rate",
            )
        for name in ("early_stopping", "reduce_lr_on_plateau", "checkpoint"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, dict):
                raise SettingsError(
                    f"training: {name} must be off (null) or a set of options.", param=name
                )


def _choice(value: Any, allowed: tuple[str, ...], name: str) -> None:
    if value not in allowed:
        raise SettingsError(
            f"training: {name} must be one of {', '.join(allowed)}; found {found(value)}.",
            param=name,
        )


def _fraction(value: Any, name: str, section: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise SettingsError(
            f"{section}: {name} must be a fraction from 0 up to (not including) 1; "
            f"found {found(value)}.",
            param=name,
        )


def _int(value: Any, name: str, section: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SettingsError(
            f"{section}: {name} must be a whole number >= {minimum}; found {found(value)}.",
            param=name,
        )


def _to_dict(settings: Any) -> dict[str, Any]:
    data = dataclasses.asdict(settings)

    def plain(value: Any) -> Any:  # JSON's lists, nested ones too (roles, merges)
        return [plain(v) for v in value] if isinstance(value, tuple) else value

    return {k: plain(v) for k, v in data.items()}


def _from_dict(cls: type, data: dict[str, Any], section: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise SettingsError(f"{section}: settings must be a set of named values.")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SettingsError(
            f"{section}: unknown setting {unknown[0]!r}; known settings are "
            f"{', '.join(sorted(known))}.",
            param=unknown[0],
        )
    return dict(data)

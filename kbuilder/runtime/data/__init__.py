"""Data sources: built-in datasets, tables, NumPy and image folders, split and summarised.

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
    * Image folders are streamed (``images.py``): the splits are lists of files
      (``ImageFiles``, uint8 pixels read on demand), so memory does not depend on the
      number of images; ``feed.keras_feed`` gives them to ``fit``/``evaluate``/``predict``.
    * The user's own files are not rescaled: images keep their 0..255 values and CSV
      features their units, so the scaling belongs in the model (a ``Rescaling`` or
      ``Normalization`` layer) and travels with it to prediction time. The pre-flight check
      suggests that layer when the values are large.
    * Tables (``csv:``, ``tsv:``, ``parquet:``, ``excel:`` sources; see
      ``kbuilder.graph.settings.parse_table_spec`` for the options) are parsed by pyarrow
      (Excel by pandas + openpyxl); the encoding, delimiter, decimal comma and header row
      (or its absence, or a metadata line above the data) are detected from the first
      megabyte. Each column gets a role (``roles.py``: numeric, categorical, boolean,
      datetime, identifier, free text, empty) that the user can override; identifiers and
      free text are left out unless chosen, dates become year/month/day-of-week/day-of-year
      (and hour) features.
    * A table with ``stream_table`` (or ``:stream=yes`` in its spec) is read in blocks
      and never whole (``table_stream.py``): statistics in one pass, rows split by a hash
      of their line and the seed, batches encoded block by block as they train.
    * A table column of image paths (role ``image_path``; ``image_paths.py``) feeds an
      image Input as a stream of those files, the other columns the table Input: ``x`` is
      then ``{"features": ..., column: ImageFiles}``, renamed by ``input_arrays`` or paired
      with the model's Inputs by shape; paths are relative to the table's folder.
    * A numeric target is a class label when every value is a whole number and there are at
      most ``CLASS_LABEL_LIMIT`` distinct values, and fewer than half as many as rows;
      otherwise it is a regression target. Text targets are always class labels. Pass
      ``task=`` to ``load_data`` to decide yourself.

Keras is imported lazily, only by the sources that need it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from kbuilder.graph.settings import KERAS_DATASETS, SKLEARN_DATASETS, DataSettings
from kbuilder.graph.table_layout import MISSING_MARKERS
from kbuilder.runtime.data import arrays, builtin, images, roles, table_splits, table_stream
from kbuilder.runtime.data.adapt import ADAPTABLE_LAYERS, AdaptResult, adapt_layers
from kbuilder.runtime.data.arrays import arrays_to_raw, read_array_file
from kbuilder.runtime.data.builtin import SEQUENCE_LENGTH, VOCABULARY_SIZE
from kbuilder.runtime.data.columns import (
    MAX_AUTO_CATEGORIES,
    MISSING_CATEGORY,
    looks_like_identifier,
)
from kbuilder.runtime.data.dataset import (
    FLOAT32_MAX,
    DataError,
    Dataset,
    Progress,
    fit_targets,
    fit_to_input,
    fit_to_inputs,
    fit_to_model,
    map_x,
    num_rows,
)
from kbuilder.runtime.data.images import IMAGE_EXTENSIONS
from kbuilder.runtime.data.labels import CLASS_LABEL_LIMIT, TASKS, infer_task
from kbuilder.runtime.data.roles import ROLES, ColumnRole, column_roles
from kbuilder.runtime.data.split import finish


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
        raw = builtin.load_sklearn(location)
    elif kind == "builtin" and location in KERAS_DATASETS:
        raw = builtin.load_keras(location, progress)
    elif kind == "csv" and table_stream.wanted(settings):
        return table_splits.stream_dataset(settings, task)
    elif kind == "csv":
        raw = roles.load_csv(location, settings, task)
    elif kind == "npz":
        raw = arrays.load_numpy(location, task, settings)
    elif kind == "images":
        raw = images.load_images(location, settings, progress)
    else:  # parse_source accepted a kind this module does not know yet
        raise DataError(f"kbuilder cannot read data of kind '{kind}' yet.")
    return finish(raw, settings)


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
    raw = arrays_to_raw({"x": x, "y": y, "x_test": x_test, "y_test": y_test}, source, task,
                         source)
    if class_names is not None:
        raw.class_names = list(class_names)
    if feature_names is not None:
        raw.feature_names = list(feature_names)
    return finish(raw, settings or DataSettings())



__all__ = [
    "ADAPTABLE_LAYERS",
    "AdaptResult",
    "ColumnRole",
    "CLASS_LABEL_LIMIT",
    "FLOAT32_MAX",
    "IMAGE_EXTENSIONS",
    "MAX_AUTO_CATEGORIES",
    "MISSING_CATEGORY",
    "MISSING_MARKERS",
    "ROLES",
    "SEQUENCE_LENGTH",
    "TASKS",
    "VOCABULARY_SIZE",
    "DataError",
    "Dataset",
    "Progress",
    "adapt_layers",
    "column_roles",
    "dataset_from_arrays",
    "fit_to_input",
    "fit_targets",
    "fit_to_inputs",
    "fit_to_model",
    "infer_task",
    "load_data",
    "looks_like_identifier",
    "map_x",
    "num_rows",
    "read_array_file",
]

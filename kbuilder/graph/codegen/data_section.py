"""The data section of generated training scripts and notebooks.

A training script must prepare its data exactly as a kbuilder run does, so that running the
script reproduces the run: ``kbuilder.runtime.data.load_data`` followed by the training's
``fit_to_input``. It must also run where kbuilder is not installed. So the steps are written
here once, as the plain functions the script contains, with the same decisions as the
runtime (see the docstring of ``kbuilder.runtime.data``):

* first the test rows, then the validation rows from the rest, both fractions of all rows,
  stratified for class labels (each class keeps its share, largest remainders round up),
  drawn with ``SPLIT_SEED``; a source with its own test (or validation) set keeps it;
* the built-in tabular sets standardised with the training rows' mean and standard
  deviation, pixel values of built-in image sets scaled to 0..1;
* tables: read with pyarrow (Parquet with pyarrow, Excel with pandas) with the layout
  kbuilder detected written out as settings (delimiter, decimal mark, encoding, lines
  above the data, column names); the target's missing rows left out, class labels
  numbered in sorted order; columns by the same roles as the runtime (``roles.py``):
  categories one-hot encoded (a missing value is its own category), yes/no as 0/1, dates
  as year/month/day-of-week/day-of-year(/hour), identifiers and free text left out;
  missing numbers filled with the training rows' median;
* NumPy files and image folders as they are (images resized with Pillow, bilinear, values
  kept 0..255 as uint8). Image folders are streamed: ``load_data`` splits the file lists
  without reading an image and ``ImageBatches`` (a ``keras.utils.PyDataset``) reads each
  batch while the model trains, as kbuilder's ``runtime.data.feed`` does;
* a table's columns of image paths for a model with image Inputs: the files looked up
  relative to the table's folder, their images read per batch by ``InputBatches``
  (``data_image_columns``), every input by its Input's name.

The functions live in ``data_common``, ``data_tables``, ``data_arrays`` and ``rows``; this
module picks those a source needs and orders them, callees first.
``tests/graph/codegen/test_codegen_data.py`` runs the generated functions next to
``load_data`` for every kind of source and compares arrays and split rows bit for bit: a
change to one side that is not made to the other fails there.

The functions are kept as source text (not as functions whose source is looked up at run
time) because a packaged kbuilder carries compiled code only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kbuilder.graph.codegen import data_arrays, data_common, data_image_columns, data_tables
from kbuilder.graph.codegen import rows as rows_code
from kbuilder.graph.codegen.data_arrays import keras_loader, sklearn_loader
from kbuilder.graph.codegen.data_common import (
    CLASS_LABEL_LIMIT,
    SEQUENCE_LENGTH,
    TEXT_SETS,
    VOCABULARY_SIZE,
)
from kbuilder.graph.codegen.data_tables import CSV_RULES
from kbuilder.graph.codegen.literals import import_order, literal, string
from kbuilder.graph.settings import IMAGE_EXTENSIONS
from kbuilder.graph.stream_choice import stream_choice

# Every generated function by name, from each room's registry.
_SOURCES = {**data_common.SOURCES, **data_tables.SOURCES, **data_arrays.SOURCES,
            **rows_code.SOURCES, **data_image_columns.SOURCES}


@dataclass(frozen=True)
class DataSection:
    """What a training script needs to read its data as kbuilder does.

    ``imports``: import lines (standard library first, then third party, each sorted);
    ``settings``: constant lines for the script's settings block; ``definitions``: the
    functions (and rules) in order, ``load_data`` last; ``path_argument``: whether
    ``load_data`` takes the data's path (``DATA_PATH``).
    """

    stdlib: tuple[str, ...]
    third_party: tuple[str, ...]
    settings: tuple[str, ...]
    definitions: tuple[str, ...]
    path_argument: bool
    streams: bool = False  # x_* are image files, read by ImageBatches (or InputBatches)
    batches: str = "ImageBatches"  # the PyDataset that reads them
    predicts: bool = False  # raw rows: encode_rows, predict_csv, load_trained, save_csv


# Every module-level name a data section may define (generated variables avoid them).
DEFINED_NAMES = frozenset(
    {"load_data", "fit_to_input", "one_hot", "read_table", "split_samples", "row_lines",
     "MISSING_MARKERS", "MISSING_CATEGORY",
     "CLASS_LABEL_LIMIT", "MAX_AUTO_CATEGORIES", "SPLIT_SEED", "VALIDATION_SPLIT",
     "TEST_SPLIT", "DATA_PATH", "TARGET", "FEATURES", "CATEGORICAL", "IMAGE_SIZE",
     "COLOR_MODE", "NUM_WORDS", "SEQUENCE_LENGTH", "INPUT_SHAPE", "INPUT_SHAPES",
     "INPUT_ARRAYS", "TARGET_ARRAY", "TARGET_ARRAYS", "VOCABULARIES",
     "fit_to_inputs", "math", "csv", "io", "re",
     "Path", "Image", "ImageBatches", "itertools", "pd", "pa", "pc", "pacsv", "pq", "FORMAT",
     "DELIMITER", "DECIMAL", "ENCODING", "SKIP_ROWS", "COLUMNS", "SHEET", "ROLES", "MERGES",
     "TEXT_COLUMNS", "ID_NAME", "ISO_DATE", "TRUE_WORDS", "FALSE_WORDS", "NUMBER"}
    | {name for name in _SOURCES if not name.startswith("load_")}
    | rows_code.DEFINED_NAMES | data_image_columns.DEFINED_NAMES
)


def table_settings(settings: Any) -> list[str]:
    """The settings lines of a table source: its file, how to read it (the layout kbuilder
    detects, written out so the script reads the file as the run did), its columns."""
    from kbuilder.graph.table_layout import TableLayoutError, read_layout

    spec = settings.table()
    lines = [f"DATA_PATH = {string(spec.path)}",
             f"FORMAT = {string(spec.format)}  # csv, tsv, parquet or excel"]
    if spec.format in ("csv", "tsv"):
        try:
            layout = read_layout(spec)
            options = (layout.delimiter, layout.decimal, layout.encoding, layout.skip,
                       layout.names)
        except (OSError, TableLayoutError):  # not readable here: kbuilder's defaults
            options = (spec.delimiter or ("\t" if spec.format == "tsv" else ","),
                       spec.decimal or ".", spec.encoding or "utf8", 1, None)
        delimiter, decimal, encoding, skip, names = options
        lines += [
            f"DELIMITER = {string(delimiter)}",
            f"DECIMAL = {string(decimal)}  # the decimal mark of numbers",
            f"ENCODING = {string(encoding)}",
            f"SKIP_ROWS = {skip}  # lines above the data (a description, the header)",
            f"COLUMNS = {literal(names)}",
        ]
    else:
        lines.append('DECIMAL = "."  # the decimal mark of numbers written as text')
    if spec.format == "excel":
        header = spec.header
        lines += [
            f"SHEET = {literal(spec.sheet)}  # None: the first sheet",
            f"SKIP_ROWS = {(header - 1) if isinstance(header, int) else 0}",
            f"COLUMNS = {literal(None)}  # None: the first row names the columns",
        ]
    text_columns = list(settings.categorical_columns())
    features = list(settings.features) if settings.features is not None else None
    lines += [
        f"TARGET = {literal(spec.target)}  # the column to predict (None: the last one)",
        f"FEATURES = {literal(features)}  # the input columns (None: all but TARGET)",
        f"CATEGORICAL = {literal(list(settings.categorical))}  "
        "# columns of categories, one-hot encoded",
        f"ROLES = {literal(dict(settings.roles))}  "
        "# column -> numeric, categorical, boolean, datetime or ignore",
        f"MERGES = {literal(settings.merge_map())}  # column -> {{spelling: category}}",
        f"TEXT_COLUMNS = {literal(text_columns)}  # read as text, as written",
    ]
    return lines


def data_section(settings: Any, kind: str, one_hot_loss: str | None = None,
                 input_names: list[str] | None = None,
                 rows: rows_code.RowEncoding | None = None,
                 output_names: list[str] | None = None,
                 image_inputs: dict[str, str | None] | None = None,
                 table_input: str | None = None) -> DataSection:
    """The data section for ``settings`` (a ``DataSettings``) of source ``kind``.

    Args:
        settings: the project's data settings.
        kind: ``"sklearn"``, ``"keras"``, ``"csv"``, ``"npz"`` or ``"images"``.
        one_hot_loss: the loss that wants one-hot labels, if the project's loss does; the
            section then also defines ``one_hot``.
        input_names: for a NumPy file with one array per model input, the model's Input
            names (``load_data`` then gives ``x`` as a dict by Input name, and
            ``fit_to_inputs`` a list in this order).
        rows: a table in "model" encoding: the trained run's row encoder, written out for
            ``encode_rows`` (``None``: ``load_data`` learns it from the data).
        output_names: the model's Output names when it has several; a NumPy file whose
            settings give each of them a target array then gives ``y`` by Output name
            (``fit_targets`` makes it a list in this order).
        image_inputs: a table for a model with image Inputs: each
            image Input and the column of image paths chosen for it (``None``: the only
            one not chosen for another); ``load_data`` then reads those columns as image
            files (``data_image_columns``) and ``InputBatches`` their images.
        table_input: with ``image_inputs`` in "flat" encoding, the Input of the encoded
            columns.
    """

    stdlib = {"import math"}
    third = {"import numpy as np"}
    lines = [f"SPLIT_SEED = {settings.seed}  # seed of the split into training/validation/test rows"]
    if kind == "keras":
        lines += [
            f"VALIDATION_SPLIT = {literal(float(settings.validation_split))}  "
            "# fraction of the training rows that validate after each epoch",
            "TEST_SPLIT = 0.0  # the dataset comes with its own test set",
        ]
    else:
        lines += [
            f"VALIDATION_SPLIT = {literal(float(settings.validation_split))}  "
            "# fraction of all rows that validate after each epoch",
            f"TEST_SPLIT = {literal(float(settings.test_split))}  "
            "# fraction of all rows held out for the final test",
        ]
    rules: list[str] = []
    location = settings.location
    if kind == "sklearn":
        third.add(f"from sklearn.datasets import load_{location}")
        loader, needs = sklearn_loader(location), ["split_rows", "standardize"]
    elif kind == "keras":
        third.add("import keras")
        if location in TEXT_SETS:
            lines += [
                f"NUM_WORDS = {VOCABULARY_SIZE}  # the most frequent words to keep",
                f"SEQUENCE_LENGTH = {SEQUENCE_LENGTH}  # tokens per text (shorter ones padded)",
            ]
        loader, needs = keras_loader(location), ["split_rows", "standardize"]
    elif kind == "csv":
        fmt = settings.table().format
        stdlib |= {"import re"} | ({"import itertools"} if fmt in ("csv", "tsv") else set())
        third |= {"import pandas as pd", "import pyarrow as pa", "import pyarrow.compute as pc",
                  {"parquet": "import pyarrow.parquet as pq", "excel": "import pandas as pd"}
                  .get(fmt, "import pyarrow.csv as pacsv")}
        lines += table_settings(settings)
        rules.append(CSV_RULES.strip("\n"))
        source = "load_csv_model" if settings.table_encoding == "model" else "load_csv"
        reader = f"read_table_{'csv' if fmt == 'tsv' else fmt}"
        if source == "load_csv_model":
            lines += rows_code.settings_lines(rows)
            stdlib |= {"import os", "import tempfile"}
        loader = _SOURCES[source][0]
        # A streamed table's rows are split by their lines (Excel is never streamed).
        hashed = stream_choice(settings.table()).stream and fmt != "excel"
        if hashed and fmt != "parquet":
            stdlib.add("import csv")
        splitter = [f"row_lines_{'parquet' if fmt == 'parquet' else 'csv'}",
                    "split_samples_hashed"] if hashed else ["split_samples_shuffled"]
        needs = [reader, *splitter, *(n for n in _SOURCES[source][1]
                                      if n not in _CHOSEN_VARIANTS)]
        if source == "load_csv_model":  # predictions on raw rows of the file
            needs += [f"read_rows_{'csv' if fmt in ('csv', 'tsv') else 'file'}",
                      "encode_rows", "predict_csv", "save_csv", "load_trained"]
        if image_inputs and source == "load_csv":
            lines.append(f"TABLE_INPUT = {string(table_input or 'features')}  # the Input of "
                         "the encoded columns")
        if image_inputs:
            stdlib.add("from pathlib import Path")
            third |= {"from PIL import Image", "import keras"}
            rules.append(f"IMAGE_EXTENSIONS = {literal(tuple(IMAGE_EXTENSIONS))}  "
                         "# the files a column of image paths names")
            lines += _image_settings(settings, image_inputs, rows)
            needs += list(data_image_columns.NEEDS)
    elif kind == "npz":
        stdlib.add("from pathlib import Path")
        lines.append(f"DATA_PATH = {string(location)}")
        rules.append(f"CLASS_LABEL_LIMIT = {CLASS_LABEL_LIMIT}  "
                     "# more distinct whole numbers than this: values to predict")
        if input_names is None:
            loader, needs = _SOURCES["load_npz"][0], list(_SOURCES["load_npz"][1])
        else:
            chosen = dict(settings.input_arrays)
            arrays = {name: chosen.get(name, name) for name in input_names}
            targets = [array for _, array in settings.output_arrays]
            lines += [
                "# The array of each model input, by Input name.",
                f"INPUT_ARRAYS = {literal(arrays)}",
            ]
            if targets_by_output(settings, output_names):
                by_output = dict(settings.output_arrays)
                lines += ["# The target array of each model output, by Output name.",
                          f"TARGET_ARRAYS = {literal({n: by_output[n] for n in output_names})}"]
                source = "load_npz_targets"
            else:
                lines.append(f"TARGET_ARRAY = {literal(targets[0] if targets else None)}  "
                             "# None: the array named y (or label, labels, target)")
                source = "load_npz_named"
            loader, needs = _SOURCES[source][0], list(_SOURCES[source][1])
    elif kind == "images":
        stdlib.add("from pathlib import Path")
        third.add("from PIL import Image")
        lines += [
            f"DATA_PATH = {string(location)}",
            f"IMAGE_SIZE = {literal(tuple(settings.image_size))}  # (height, width)",
            f"COLOR_MODE = {string(settings.color_mode)}  # rgb or grayscale",
        ]
        loader, needs = _SOURCES["load_images"][0], list(_SOURCES["load_images"][1])
    else:
        raise ValueError(f"unknown data kind {kind!r}")
    needs.append("fit_to_input" if input_names is None else "fit_to_inputs")
    if one_hot_loss:
        needs.append("one_hot")
    definitions = [*rules, *_with_dependencies(needs), loader]
    if kind == "csv" and image_inputs:
        definitions = [data_image_columns.with_image_columns(d) for d in definitions]
    if one_hot_loss:
        definitions = [d.replace("@LOSS@", one_hot_loss) for d in definitions]
    return DataSection(
        stdlib=tuple(sorted(stdlib, key=import_order)),
        third_party=tuple(sorted(third, key=import_order)),
        settings=tuple(lines),
        definitions=tuple(definitions),
        path_argument=kind in ("csv", "npz", "images"),
        streams=kind == "images" or bool(kind == "csv" and image_inputs),
        batches="InputBatches" if kind == "csv" and image_inputs else "ImageBatches",
        predicts=kind == "csv" and settings.table_encoding == "model",
    )


def _image_settings(settings: Any, image_inputs: dict[str, str | None],
                    rows: rows_code.RowEncoding | None) -> list[str]:
    """The settings lines of a table's columns of image paths."""
    columns: dict[str, str] = {}
    if rows is not None:  # the trained run's columns, each to its Input
        chosen = {column: node for node, column in image_inputs.items() if column}
        free = [node for node, column in image_inputs.items() if not column]
        columns = {c: chosen.get(c) or free[0] for c in rows.image_columns
                   if c in chosen or len(free) == 1}
    return [
        f"IMAGE_SIZE = {literal(tuple(settings.image_size))}  # (height, width) images are "
        "resized to",
        f"COLOR_MODE = {string(settings.color_mode)}  # rgb or grayscale",
        f"IMAGE_INPUTS = {literal(image_inputs)}  # image Input -> its column of image "
        "paths (None: the only one)",
        f"IMAGE_COLUMNS = {literal(columns)}  # column of image paths -> its Input "
        "(load_data fills it in)",
    ]


def targets_by_output(settings: Any, output_names: list[str] | None) -> bool:
    """Whether a NumPy file's settings give each of a model's several Outputs its target
    array (``DataSettings.output_arrays``)."""
    chosen = dict(settings.output_arrays)
    return (settings.kind == "npz" and output_names is not None and len(output_names) > 1
            and all(name in chosen for name in output_names))


# Functions a table's loader calls by a name that one of several variants defines (the
# reader of its file format, the split of its rows): the chosen variant comes first in
# ``needs`` itself.
_CHOSEN_VARIANTS = ("read_table", "split_samples")


def _with_dependencies(names: list[str]) -> list[str]:
    """The sources of ``names`` and what they call, each once, callees first."""
    ordered: list[str] = []

    def visit(name: str) -> None:
        if name in ordered or name in _CHOSEN_VARIANTS:
            return
        for need in _SOURCES[name][1]:
            visit(need)
        ordered.append(name)

    for name in names:
        visit(name)
    return [_SOURCES[name][0] for name in ordered]

"""Evaluation and prediction with a saved model, inside a worker (imports keras)."""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from kbuilder.runtime import protocol as p


class InferenceError(ValueError):
    """Inputs that the model cannot be run on; the message says why."""


# ``progress(done, total)``: batches predicted so far and in all (None when unknown).
Progress = Callable[[int, "int | None"], None]
# Progress reports at most this often (seconds), besides the last batch's.
PROGRESS_INTERVAL = 0.1


def load_trained_model(path: str, compile: bool = True) -> Any:
    """The model in ``path``, checked as an import checks it (code, sizes) first;
    ``compile``: with its loss and metrics (evaluation needs them, prediction does not, and
    restoring the optimizer of another backend's run can take a minute on PyTorch).

    Raises:
        ModelImportError: the file is refused or cannot be loaded; the message says why.
    """
    from kbuilder.graph.keras_io import SAFE_MODE_REMEDY, open_model_file

    # A model file is data: code inside it (Lambda) is refused, never trusted here.
    return open_model_file(path, compile=compile, remedy=SAFE_MODE_REMEDY)


def run_evaluation(request: p.StartEvaluation) -> p.Evaluated:
    from kbuilder.graph.settings import DataSettings
    from kbuilder.runtime.data import fit_targets, fit_to_model, load_data, num_rows
    from kbuilder.runtime.data.dataset import first_target
    from kbuilder.runtime.evaluation import describe_results

    model = load_trained_model(request.model_path)
    dataset = load_data(DataSettings.from_dict(request.data))
    # "val" is the protocol's (and the CLI's) name of the split the dataset calls
    # "validation".
    split = "validation" if request.split == "val" else request.split
    x, y = dataset.splits().get(split, (None, None))
    if x is None or num_rows(x) == 0:
        raise InferenceError(f"The {request.split} split of {dataset.source} is empty; "
                             "choose another split or change the split fractions.")
    from kbuilder.runtime.data.feed import keras_feed, readable, readable_part

    raw_x = x
    x = fit_to_model(x, model)
    metrics: dict[str, Any] = {}
    if getattr(model, "compiled", False) and getattr(model, "loss", None):
        # Targets by Output name go in the file's order (a model file has no Output names).
        metrics = model.evaluate(**keras_feed(x, fit_targets(y), request.batch_size),
                                 verbose=0, return_dict=True)
    outputs = model.predict(**keras_feed(x, None, request.batch_size), verbose=0)
    keep = readable(x)  # unreadable images left out (skip_bad_images) are not judged
    if isinstance(outputs, list | tuple):
        outputs = outputs[0]
    truth = first_target(y)
    results = describe_results(dataset, truth[keep], np.asarray(outputs)[keep],
                               x=readable_part(raw_x, keep))
    return p.Evaluated(request.run_id, request.split, len(truth[keep]), p.jsonable(metrics),
                       p.jsonable(results))


def run_prediction(request: p.StartPrediction,
                   progress: Progress | None = None) -> p.Predicted:
    """Predict as ``request`` says and write the predictions' CSV; ``progress`` hears
    how many batches are done (the worker sends it on as ``protocol.Progress``).

    Raises:
        InferenceError: the inputs do not suit the model; the message says why.
    """
    from kbuilder.runtime.data import fit_to_model

    model = load_trained_model(request.model_path, compile=False)
    class_names: list[str] | None = None
    known: list[dict[str, Any]] | None = None  # per row: where it comes from, its label
    if request.inputs_path and _is_images(Path(request.inputs_path)):
        x = read_image_inputs(Path(request.inputs_path), tuple(model.inputs[0].shape[1:]))
        split = (f"the images in {Path(request.inputs_path).name}"
                 if Path(request.inputs_path).is_dir() else Path(request.inputs_path).name)
        class_names = _image_class_names(request.data)
    elif request.inputs_path and (table := _table_with_images(request)) is not None:
        x, class_names = table
        split = f"the rows of {Path(request.inputs_path).name}"
    elif request.inputs_path and (blocks := _predict_in_blocks(request, model, progress)):
        return blocks
    elif request.inputs_path:
        x, known = read_inputs_and_rows(Path(request.inputs_path), request.model_path,
                                        request.input_columns)
        from kbuilder.runtime.data.row_encoder import trained_encoder

        encoder = trained_encoder(request.model_path)
        class_names = encoder.class_names if encoder is not None else None
        split = f"the rows of {Path(request.inputs_path).name}"
    else:
        from kbuilder.graph.settings import DataSettings
        from kbuilder.runtime.data import load_data

        dataset = load_data(DataSettings.from_dict(request.data or {}))
        if dataset.x_test is None:
            raise InferenceError(f"The test split of {dataset.source} is empty; give "
                                 "--input FILE or a test split (test_split > 0).")
        x, class_names = dataset.x_test, dataset.class_names
        known = test_split_columns(dataset)
        split = (f"the test set of {dataset.source}" if dataset.test_is_given
                 else f"the test split of {dataset.source}")
    from kbuilder.runtime.data.feed import keras_feed, readable

    x = fit_to_model(x, model)
    callbacks = [_progress_callback(progress)] if progress is not None else None
    outputs = model.predict(**keras_feed(x, None, request.batch_size), verbose=0,
                            callbacks=callbacks)
    if isinstance(outputs, list | tuple):
        outputs = outputs[0]
    rows = prediction_rows(np.asarray(outputs), class_names)
    files = getattr(x, "files", None)
    if files is not None:  # images: say which file each prediction is for
        rows = [{"file": str(f), **row} for f, row in zip(files, rows, strict=True)]
    if known is not None:
        rows = [{**first, **row} for first, row in zip(known, rows, strict=True)]
    keep = readable(x)  # unreadable images (skip_bad_images) get no prediction
    if not isinstance(keep, slice):
        rows = [row for row, kept in zip(rows, keep, strict=True) if kept]
    write_rows(Path(request.output_path), rows)
    return p.Predicted(request.run_id, request.output_path, len(rows), p.jsonable(rows[:10]),
                       split)


# An input table larger than this is predicted block by block (as is any input of a model
# trained on a streamed table): its rows are never all in memory.
PREDICT_IN_BLOCKS_BYTES = 64 << 20


def _predict_in_blocks(request: p.StartPrediction, model: Any,
                       progress: Progress | None) -> p.Predicted | None:
    """Predictions for a large table of raw rows (a model with a ``row_encoder.json``),
    read, encoded, predicted and written block by block; the file appears whole when
    done (``files.atomic_path``). ``None``: not such a request (the rows are read whole).
    """
    from kbuilder.graph.settings import DataSettings, parse_table_spec
    from kbuilder.runtime.data import DataError, fit_to_model
    from kbuilder.runtime.data.row_encoder import encode_rows, trained_encoder
    from kbuilder.runtime.data.table_stream import wanted

    path = Path(request.inputs_path)
    encoder = trained_encoder(request.model_path)
    if encoder is None or not path.is_file() or path.suffix.lower() in (
            ".npy", ".npz", ".xlsx", ".xlsm", ".xls"):
        return None
    streamed = bool(request.data) and wanted(DataSettings.from_dict(request.data))
    if not streamed and path.stat().st_size <= PREDICT_IN_BLOCKS_BYTES:
        return None
    from kbuilder.files import atomic_path
    from kbuilder.runtime.data.table_blocks import open_blocks

    out = Path(request.output_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    count, first = 0, []
    try:
        reader = open_blocks(parse_table_spec(f"csv:{path}"),
                             tuple(sorted(c["column"] for c in encoder.categories)))
        with atomic_path(out) as temp, temp.open("w", newline="", encoding="utf-8") as f:
            writer = None
            for block in reader.blocks:
                table = reader.read(block)
                outputs = model.predict(fit_to_model(encode_rows(encoder, table), model),
                                        batch_size=request.batch_size, verbose=0)
                if isinstance(outputs, list | tuple):
                    outputs = outputs[0]
                rows = prediction_rows(np.asarray(outputs), encoder.class_names)
                known = table_columns(table, request.input_columns)
                if known is not None:
                    rows = [{**k, **row} for k, row in zip(known, rows, strict=True)]
                if writer is None:
                    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
                    writer.writeheader()
                writer.writerows(rows)
                count += len(rows)
                first += rows[:10 - len(first)]
                if progress is not None:
                    progress(block.index + 1, len(reader.blocks))
    except DataError as exc:
        raise InferenceError(str(exc)) from None
    return p.Predicted(request.run_id, request.output_path, count, p.jsonable(first),
                       f"the rows of {path.name}")


def _table_with_images(request: p.StartPrediction) -> Any:
    """The inputs of a CSV like the training table with a column of image paths, or
    ``None`` (another kind of file, or training data without image paths)."""
    from kbuilder.graph.settings import DataSettings
    from kbuilder.runtime.data import load_data
    from kbuilder.runtime.data.prediction_rows import table_rows_with_images

    settings = DataSettings.from_dict(request.data) if request.data else None
    if settings is None or settings.kind != "csv" or settings.table_encoding == "model" or \
            Path(request.inputs_path).suffix.lower() != ".csv":
        return None  # in "model" encoding the run's row encoder reads the rows
    trained = load_data(settings)  # its feature names and fill values (images not read)
    if not isinstance(trained.x_train, dict):
        return None
    x = table_rows_with_images(request.inputs_path, settings, trained)
    return None if x is None else (x, trained.class_names)


def test_split_columns(dataset: Any) -> list[dict[str, Any]]:
    """Per test sample: its row (or CSV line) in the source and its true label or value,
    the first columns of a prediction file, so each prediction can be checked."""
    from kbuilder.runtime.data.dataset import first_target

    y = first_target(dataset.y_test)  # the first output's, as the predictions are
    n = len(y)
    rows = dataset.test_rows if dataset.test_rows is not None else np.arange(n)
    if dataset.label_format in ("integer", "one_hot"):
        ids = dataset.labels_as_ids(y)
        names = dataset.class_names or [str(i) for i in range(int(ids.max()) + 1)]
        truth: list[Any] = [names[i] for i in ids]
    elif dataset.label_format == "values" and np.asarray(y).reshape(n, -1).shape[1] == 1:
        truth = [float(v) for v in np.asarray(y).reshape(n)]
    else:
        truth = [None] * n  # multi-label or several targets: not one value
    return [{dataset.row_label: int(r), "true": t}
            for r, t in zip(rows, truth, strict=True)]


def _image_class_names(data: dict[str, Any] | None) -> list[str] | None:
    """The class names of the image folder a model was trained on (its sub-folders), if
    the request names one: predictions on new images then say "cats", not "0"."""
    from kbuilder.graph.settings import DataSettings

    settings = DataSettings.from_dict(data) if data else None
    if settings is None or settings.kind != "images" or not Path(settings.location).is_dir():
        return None
    return sorted(p.name for p in Path(settings.location).iterdir()
                  if p.is_dir() and not p.name.startswith("."))


def _is_images(path: Path) -> bool:
    """A folder (of images) or one image file."""
    from kbuilder.graph.settings import IMAGE_EXTENSIONS

    return path.is_dir() or path.suffix.lower() in IMAGE_EXTENSIONS


def read_image_inputs(path: Path, shape: tuple) -> Any:
    """The images anywhere under the folder ``path``, or the one image file ``path``,
    streamed at the model input's size."""
    from kbuilder.runtime.data.images import image_files_for

    if len(shape) != 3 or shape[-1] not in (1, 3) or None in shape:
        what = "a folder of images" if path.is_dir() else "an image"
        raise InferenceError(f"{path.name} is {what}, but the model takes samples of shape "
                             f"{list(shape)}, not images (height, width, 1 or 3 channels).")
    if not path.exists():
        raise InferenceError(f"The input file '{path}' does not exist.")
    return image_files_for(path, (int(shape[0]), int(shape[1])), int(shape[2]))


def _progress_callback(progress: Progress) -> Any:
    """A Keras callback telling ``progress`` the batches predicted, ~10 times a second."""
    import keras

    class _Predicting(keras.callbacks.Callback):
        last = 0.0

        def on_predict_batch_end(self, batch, logs=None):
            total = (self.params or {}).get("steps")
            now = time.monotonic()
            if now - self.last >= PROGRESS_INTERVAL or (total and batch + 1 >= total):
                self.last = now
                progress(batch + 1, total)

    return _Predicting()


def read_inputs(path: Path, model_path: str | None = None) -> Any:
    """Model inputs from ``.npy``, ``.npz`` (array ``x``, or one array per model input by
    name) or a numeric CSV with a header; for a model trained on a table in "model"
    encoding (a ``row_encoder.json`` beside ``model_path``), raw rows of a table file with
    the training file's columns (the target column may be there; it is not used)."""
    return read_inputs_and_rows(path, model_path)[0]


def read_inputs_and_rows(path: Path, model_path: str | None = None,
                         columns: int = 0) -> tuple[Any, list[dict[str, Any]] | None]:
    """``read_inputs`` and, for a table with ``columns`` > 0, per row its line (or row)
    number and its first ``columns`` cells as read (``None`` otherwise): the first
    columns of the predictions' file, so each prediction can be matched to its row."""
    suffix = path.suffix.lower()
    if not path.exists():
        raise InferenceError(f"The input file '{path}' does not exist.")
    from kbuilder.runtime.data.row_encoder import encode_rows, read_rows, trained_encoder

    encoder = trained_encoder(model_path) if model_path else None
    if encoder is not None and suffix not in (".npy", ".npz"):
        from kbuilder.runtime.data import DataError

        try:
            table = read_rows(encoder, path)
            return encode_rows(encoder, table), table_columns(table, columns)
        except DataError as exc:
            raise InferenceError(str(exc)) from None
    if suffix in (".npy", ".npz"):
        from kbuilder.runtime.data import read_array_file

        arrays = read_array_file(path)  # headers checked before anything is allocated
        name = "x" if "x" in arrays else ("x_test" if "x_test" in arrays else None)
        if name is not None:
            return arrays[name], None
        # One array per model input, by Input name (matched by fit_to_model); a target
        # array in the file is not an input.
        from kbuilder.runtime.data.arrays import TARGET_ARRAYS

        named = {k: a for k, a in arrays.items() if k.lower() not in TARGET_ARRAYS}
        if not named:
            raise InferenceError(f"'{path.name}' has no array 'x' and no array per model "
                                 f"input; it has {', '.join(arrays) or 'no arrays'}.")
        return named, None
    from kbuilder.graph.settings import TABLE_SUFFIXES

    if suffix in TABLE_SUFFIXES:
        return _numeric_table(path, columns)
    raise InferenceError(f"Inputs must be a .npy, .npz or table file (.csv, .tsv, .parquet, "
                         f".xlsx); received '{path.name}'.")


def _numeric_table(path: Path, columns: int) -> tuple[np.ndarray, list[dict[str, Any]] | None]:
    """A table of numbers (the model's inputs, encoded already) as float32 (n, columns),
    and per row its line and first ``columns`` cells when asked."""
    from kbuilder.graph.settings import parse_table_spec
    from kbuilder.runtime.data import DataError
    from kbuilder.runtime.data.columns import as_numbers
    from kbuilder.runtime.data.tables import read_table

    try:
        table = read_table(parse_table_spec(f"csv:{path}"))
    except DataError as exc:
        raise InferenceError(str(exc)) from None
    values = np.empty((table.num_rows, len(table.header)), dtype="float32")
    for j, name in enumerate(table.header):
        numbers = as_numbers(table.columns[name], table.decimal)
        if numbers is None or numbers.bad:
            row = numbers.first_bad if numbers is not None else 0
            cell = numbers.first_text if numbers is not None else table.columns[name][0]
            raise InferenceError(f"{table.where(row or 0)}, column '{name}': {str(cell)!r} is "
                                 "not a number. This model takes numbers only (its inputs "
                                 "are encoded already).")
        empty = np.flatnonzero(np.isnan(numbers.values))
        if len(empty):
            raise InferenceError(f"{table.where(int(empty[0]))}, column '{name}' is empty. "
                                 "This model needs a number in every cell; fill it in.")
        values[:, j] = numbers.values
    return values, table_columns(table, columns)


def table_columns(table: Any, columns: int) -> list[dict[str, Any]] | None:
    """Per row of ``table`` (a ``tables.Table``): its line (or row) number and its first
    ``columns`` cells as read; ``None`` for ``columns`` <= 0."""
    if columns <= 0:
        return None
    names = table.header[:columns]
    cells = {name: table.columns[name].to_pylist() for name in names}
    return [{table.row_label: int(line), **{name: _cell(cells[name][i]) for name in names}}
            for i, line in enumerate(table.lines)]


def _cell(value: Any) -> Any:
    """A cell as a prediction file and the protocol carry it: text, a number or empty."""
    return value if value is None or isinstance(value, bool | int | float | str) else str(value)


def prediction_rows(outputs: np.ndarray, class_names: list[str] | None) -> list[dict[str, Any]]:
    from kbuilder.runtime.evaluation import class_predictions

    if _is_sigmoid_classes(outputs, class_names):
        assert class_names is not None
        predicted, confidence = class_predictions(outputs)
        return [{"predicted": class_names[k], "confidence": float(c),
                 f"p_{class_names[1]}": float(v)}
                for k, c, v in zip(predicted, confidence, outputs.reshape(-1), strict=True)]
    if outputs.ndim == 2 and outputs.shape[1] > 1 and np.allclose(outputs.sum(axis=1), 1,
                                                                  atol=1e-3):
        names = class_names or [str(i) for i in range(outputs.shape[1])]
        predicted, confidence = class_predictions(outputs)
        return [
            {"predicted": names[k], "confidence": float(c),
             **{f"p_{n}": float(v) for n, v in zip(names, row, strict=False)}}
            for k, c, row in zip(predicted, confidence, outputs, strict=True)
        ]
    flat = outputs.reshape(len(outputs), -1)
    return [{f"output_{j}": float(v) for j, v in enumerate(row)} for row in flat]


def _is_sigmoid_classes(outputs: np.ndarray, class_names: list[str] | None) -> bool:
    """One probability per sample (a sigmoid output) of a model trained on two classes:
    it says how likely the second class is."""
    return (class_names is not None and len(class_names) == 2 and outputs.ndim == 2
            and outputs.shape[1] == 1 and bool(np.all((outputs >= 0) & (outputs <= 1))))


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """The predictions' CSV, written atomically: a kill leaves the old file or the new."""
    from kbuilder import files

    path.parent.mkdir(parents=True, exist_ok=True)
    with files.atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["predicted"])
        writer.writeheader()
        writer.writerows(rows)

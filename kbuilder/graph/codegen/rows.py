"""Raw rows in generated training scripts and notebooks: ``encode_rows`` and its settings.

A table in "model" encoding feeds the model raw numbers (the model fills and scales them)
and one Input of category codes per categorical column. The one step outside the model,
text -> code, is kbuilder's row encoder (``runtime.data.row_encoder``, saved with a trained
run as ``row_encoder.json``). Generated code carries the same step as ``encode_rows``, with
the encoder written out as settings:

* from the trained run, when the caller (the CLI, the export) passes its encoder as a
  ``RowEncoding`` — the graph package never reads runtime files itself;
* otherwise from the data, as the script's ``load_data`` reads it (it fills the settings).

``read_rows(path)`` reads a table file of rows to predict on, ``predict_csv(model, path)``
gives the predictions with class names, and the script's ``--predict RAW.csv`` writes them
(atomically). ``tests/cli/test_codegen_raw_rows.py`` checks that ``encode_rows`` gives the
runtime's arrays and the script kbuilder's predictions.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from kbuilder.graph.codegen.literals import literal, string
from kbuilder.graph.codegen.sources import SourceRegistry

NUMERIC_INPUT = "numeric"  # the Input of the numeric block (as runtime.data.row_encoder)


@dataclass(frozen=True)
class RowEncoding:
    """A trained run's row encoder, as generated code writes it out.

    Attributes:
        numeric_columns: the numeric block's columns in order, each ``{"column", "kind"}``
            (kind ``number``, ``boolean`` with ``true``/``false`` words, or ``date`` with
            ``parts``), as in ``row_encoder.json``.
        vocabularies: categorical column -> its training categories (codes 1, 2, ...).
        category_inputs: categorical column -> the name of the Input taking its codes.
        class_names: the classes the model predicts, in order (empty: values).
        model_path: the trained model the script's ``--predict`` uses by default (a
            ``.keras`` file, or a ``.weights.h5`` file of the generated ``build_model``).
        image_columns: the columns of image paths whose images feed image Inputs.
    """

    numeric_columns: list[dict[str, Any]] = field(default_factory=list)
    vocabularies: dict[str, list[str]] = field(default_factory=dict)
    category_inputs: dict[str, str] = field(default_factory=dict)
    class_names: list[str] = field(default_factory=list)
    model_path: str | None = None
    image_columns: list[str] = field(default_factory=list)

    @classmethod
    def from_row_encoder(cls, data: dict[str, Any], model_path: str | None = None
                         ) -> RowEncoding:
        """The record of a ``row_encoder.json``'s contents (``RowEncoder.to_dict()``)."""
        categories = list(data.get("categories") or [])
        return cls(
            numeric_columns=[dict(c) for c in data.get("columns") or []],
            vocabularies={c["column"]: list(c["vocabulary"]) for c in categories},
            category_inputs={c["column"]: c["input"] for c in categories},
            class_names=list(data.get("class_names") or []),
            model_path=model_path,
            image_columns=[c["column"] for c in data.get("images") or []],
        )

    @property
    def input_names(self) -> set[str]:
        """The model Inputs these rows feed."""
        return ({NUMERIC_INPUT} if self.numeric_columns else set()) \
            | set(self.category_inputs.values())


def trained_encoding(project: Any, project_path: str | os.PathLike[str] | None
                     ) -> RowEncoding | None:
    """The row encoder of the project's latest trained run (its ``row_encoder.json``, a
    table in "model" encoding) with the run's model, or ``None`` when there is none.

    An unreadable file gives ``None`` too: the script then learns the encoder from the
    data, as it does without a trained run.
    """
    from kbuilder.graph import runs

    record = runs.latest_trained(project.runs)
    path = runs.artifact_path(record, "row_encoder", project_path)
    if path is None or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        model = runs.artifact_path(record, "model", project_path)
        return RowEncoding.from_row_encoder(data, str(model) if model else None)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def settings_lines(encoding: RowEncoding | None) -> list[str]:
    """The settings block's lines for ``encode_rows`` (``None``: filled by ``load_data``)."""

    if encoding is None:
        return [
            "# How raw rows become the model's inputs (encode_rows); load_data fills these in.",
            "NUMERIC_COLUMNS = []  # the columns of the \"numeric\" Input, in order",
            "VOCABULARIES = {}  # categorical column -> its training categories (codes 1, 2, ...)",
            "CATEGORY_INPUTS = {}  # categorical column -> the Input of its codes",
            "CLASS_NAMES = []  # the classes the model predicts, in order (empty: values)",
            'TRAINED_MODEL = "model.keras"  # the model --predict uses (what this script saves)',
        ]
    lines = ["# How raw rows become the model's inputs (encode_rows), as the trained run's",
             "# row_encoder.json says; load_data sets them again from the data it reads."]
    lines += _multiline("NUMERIC_COLUMNS", encoding.numeric_columns,
                        'the columns of the "numeric" Input, in order')
    lines += _multiline("VOCABULARIES", encoding.vocabularies,
                        "categorical column -> its training categories (codes 1, 2, ...)")
    lines += [
        f"CATEGORY_INPUTS = {literal(encoding.category_inputs)}  "
        "# categorical column -> the Input of its codes",
        f"CLASS_NAMES = {literal(encoding.class_names)}  "
        "# the classes the model predicts, in order (empty: values)",
        f"TRAINED_MODEL = {string(encoding.model_path or 'model.keras')}  "
        "# the model --predict uses",
    ]
    return lines


def _multiline(name: str, value: list[Any] | dict[str, Any], comment: str) -> list[str]:
    """``NAME = [...]`` with one item per line (vocabularies can be long)."""

    if not value:
        return [f"{name} = {literal(value)}  # {comment}"]
    items = ([literal(v) for v in value] if isinstance(value, list)
             else [f"{literal(k)}: {literal(v)}" for k, v in value.items()])
    brackets = "[]" if isinstance(value, list) else "{}"
    return [f"{name} = {brackets[0]}  # {comment}", *(f"    {item}," for item in items),
            brackets[1]]


# The functions of raw rows, merged into the data section's (see ``sources``).
SOURCES = SourceRegistry()
_define = SOURCES.define


_define("numeric_column", r'''
def numeric_column(name, role, numbers, text, block_names):
    """How encode_rows reads a column of the "numeric" Input, as load_data found it."""
    if role == "datetime":
        return {"column": name, "kind": "date",
                "parts": [block.rsplit(".", 1)[1] for block in block_names]}
    if role == "boolean" and numbers is None:  # yes/no words: which ones mean 1 and 0
        lowered = sorted({v.lower() for v in text.drop_null().to_pylist()})
        if set(lowered) <= TRUE_WORDS | FALSE_WORDS:
            return {"column": name, "kind": "boolean",
                    "true": sorted(set(lowered) & TRUE_WORDS),
                    "false": sorted(set(lowered) & FALSE_WORDS)}
        return {"column": name, "kind": "boolean", "true": lowered[1:], "false": lowered[:1]}
    return {"column": name, "kind": "number"}
''')

_define("encode_rows", r'''
def encode_rows(frame):
    """The model's inputs for raw rows of the table, by Input name, as kbuilder's row
    encoder makes them. `frame`: a pandas DataFrame, or the columns read_rows gives.

    "numeric" holds NUMERIC_COLUMNS in the file's units, NaN where a value is missing (the
    model fills and scales them); each categorical column gives the codes of its Input:
    1 + the value's place in VOCABULARIES, 0 for a value the training rows did not have.
    A target column among the rows is not used.
    """
    wanted = [spec["column"] for spec in NUMERIC_COLUMNS] + list(VOCABULARIES)
    lacking = [name for name in wanted if name not in frame]
    if lacking:
        raise SystemExit(f"The rows have no column {lacking[0]!r}; the model needs {wanted}.")

    def column(name):
        values = frame[name]
        if not isinstance(values, pa.Array | pa.ChunkedArray):
            values = pa.array(values, from_pandas=True)  # None and NaN are missing values
        if pa.types.is_large_string(values.type):  # pandas' own strings
            values = pc.cast(values, pa.string())
        return values

    x = {}
    blocks = []
    for spec in NUMERIC_COLUMNS:
        name, values = spec["column"], column(spec["column"])
        if pa.types.is_null(values.type):  # every cell empty
            blocks += [np.full(len(values), np.nan)] * len(spec.get("parts", [None]))
        elif spec["kind"] == "date":
            parts = date_parts(values)
            present = np.where(np.isnan(parts["year"]), np.nan, 0.0)
            blocks += [parts.get(part, present) for part in spec["parts"]]  # hour 0 if absent
        elif spec["kind"] == "boolean":
            lowered = pc.utf8_lower(text_values(values)).to_pylist()
            blocks.append(np.asarray([1.0 if v in spec["true"] else 0.0 if v in spec["false"]
                                      else np.nan for v in lowered]))
        else:
            numbers = as_numbers(values)
            if numbers is None:
                raise SystemExit(f"Column {name!r} holds {values.type} values; the model was "
                                 "trained on numbers in this column.")
            if numbers[1] is not None:
                row = int(numbers[1][0])
                raise SystemExit(
                    f"Row {row + 1}, column {name!r}: {values[row].as_py()!r} is not a "
                    "number. The model was trained on numbers in this column; correct the "
                    "cell or leave it empty for a missing value.")
            blocks.append(numbers[0])
    if NUMERIC_COLUMNS:
        with np.errstate(over="ignore"):
            x["numeric"] = np.stack(blocks, axis=1).astype("float32")
    for name, vocabulary in VOCABULARIES.items():
        text = text_values(column(name), MERGES.get(name))
        filled = pc.fill_null(text, pa.scalar(MISSING_CATEGORY, pa.string()))
        x[CATEGORY_INPUTS[name]] = category_codes(filled, vocabulary)
    return x
''', "text_values", "as_numbers", "date_parts", "category_codes")

_define("read_rows_csv", r'''
def read_rows(path):
    """The rows of a table file to predict on, as encode_rows takes them: laid out like
    the training data (DELIMITER, DECIMAL, ENCODING), its first line naming the columns;
    the target column may be left out."""
    return read_csv(path, None, 0, [*TEXT_COLUMNS, *VOCABULARIES])
''', "read_csv")

_define("read_rows_file", r'''
def read_rows(path):
    """The rows of a table file to predict on, as encode_rows takes them: laid out like
    the training data; the target column may be left out."""
    return read_table(path)
''')

_define("predict_csv", r'''
def predict_csv(model, path):
    """The model's predictions for the raw rows of the table file at `path`, one row each
    (a pandas DataFrame): the predicted class, its probability and every class's, or the
    predicted values."""
    outputs = model.predict(fit_to_inputs(encode_rows(read_rows(path))),
                            batch_size=BATCH_SIZE, verbose=0)
    outputs = np.asarray(outputs[0] if isinstance(outputs, list) else outputs)
    outputs = outputs.reshape(len(outputs), -1)
    if outputs.shape[1] > 1 and np.allclose(outputs.sum(axis=1), 1, atol=1e-3):
        names = CLASS_NAMES or [str(i) for i in range(outputs.shape[1])]
        frame = pd.DataFrame({"predicted": np.asarray(names)[outputs.argmax(axis=1)],
                              "confidence": outputs.max(axis=1)})
        for j, name in enumerate(names):
            frame[f"p_{name}"] = outputs[:, j]
        return frame
    return pd.DataFrame({f"output_{j}": outputs[:, j] for j in range(outputs.shape[1])})
''', "encode_rows", "fit_to_inputs")

_define("save_csv", r'''
def save_csv(frame, path):
    """Write `frame` as CSV to `path` atomically: a previous file stays whole until the new
    one is complete."""
    folder = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".predictions-", suffix=".csv")
    try:
        with os.fdopen(handle, "w", newline="", encoding="utf-8") as out:
            frame.to_csv(out, index=False)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
''')

_define("load_trained", r'''
def load_trained(path):
    """A trained model: a .keras file, or the weights (.weights.h5) of build_model(); a
    relative path is looked for in the working folder, then beside this script."""
    script = globals().get("__file__")
    if not os.path.exists(path) and script and not os.path.isabs(path):
        beside = os.path.join(os.path.dirname(os.path.abspath(script)), path)
        path = beside if os.path.exists(beside) else path
    if not os.path.exists(path):
        raise SystemExit(f"There is no trained model at {path}; train one with this script "
                         "(it saves model.keras) or give it with --model.")
    if str(path).endswith(".weights.h5"):
        model = build_model()
        model.load_weights(path)
        return model
    # Not compiled: predicting needs no optimizer, and no jit_compile a run trained with.
    return keras.saving.load_model(path, compile=False)
''')

# The module-level names the sections above define (generated variables avoid them).
DEFINED_NAMES = frozenset({*SOURCES, "read_rows", "NUMERIC_COLUMNS", "VOCABULARIES",
                           "CATEGORY_INPUTS", "CLASS_NAMES", "TRAINED_MODEL", "tempfile",
                           "read_csv"})

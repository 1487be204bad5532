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
  batch while the model trains, as kbuilder's ``runtime.data.feed`` does.

``tests/graph/test_codegen_data.py`` runs the generated functions next to ``load_data`` for
every kind of source and compares arrays and split rows bit for bit: a change to one side
that is not made to the other fails there.

The functions are kept as source text (not as functions whose source is looked up at run
time) because a packaged kbuilder carries compiled code only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kbuilder.graph import codegen_rows
from kbuilder.graph.settings import IMAGE_EXTENSIONS
from kbuilder.graph.table_layout import MISSING_MARKERS as _TABLE_MISSING

# The numbers of kbuilder.runtime.data (the tests check they agree).
CLASS_LABEL_LIMIT = 20
VOCABULARY_SIZE = 10_000
SEQUENCE_LENGTH = 200
MAX_AUTO_CATEGORIES = 50
MISSING_MARKERS = tuple(sorted(_TABLE_MISSING))
MISSING_CATEGORY = "(missing)"

_TEXT_SETS = ("imdb", "reuters")

# ------------------------------------------------------------------------ the functions
# name -> (source, names of the functions it calls)
_SOURCES: dict[str, tuple[str, tuple[str, ...]]] = {}


def _define(name: str, source: str, *needs: str) -> None:
    _SOURCES[name] = (source.strip("\n"), needs)


_define("split_off", '''
def split_off(rows, fraction, rng, labels=None):
    """Take `fraction` of `rows` at random; stratified when `labels` (one per row) are given.

    Returns (kept, taken), both in the original order. Stratified: each class gives its
    share of the taken rows, the largest remainders rounding up so the total is exact.
    """
    n = len(rows)
    if fraction <= 0 or n < 2:
        return rows, rows[:0]
    total = min(n - 1, max(1, round(fraction * n)))
    if labels is None:
        taken = np.sort(rng.permutation(n)[:total])
    else:
        classes, counts = np.unique(labels, return_counts=True)
        exact = counts * total / n
        shares = np.floor(exact).astype(int)
        order = np.argsort(-(exact - shares), kind="stable")
        shares[order[: total - shares.sum()]] += 1
        picked = [
            rng.permutation(np.flatnonzero(labels == cls))[:share]
            for cls, share in zip(classes, shares, strict=True)
        ]
        taken = np.sort(np.concatenate(picked))
    mask = np.zeros(n, dtype=bool)
    mask[taken] = True
    return rows[~mask], rows[mask]
''')

_define("split_rows", '''
def split_rows(count, labels=None, test_given=False, validation_given=False):
    """The rows for training, validation and test, as kbuilder splits them.

    First the test rows (TEST_SPLIT of all rows), then the validation rows from the rest
    (VALIDATION_SPLIT of all rows), drawn with SPLIT_SEED. Class `labels` make both splits
    stratified. Data that comes with its own test set gives VALIDATION_SPLIT of its
    training rows to validation; with its own validation set, none.
    """
    rng = np.random.default_rng(SPLIT_SEED)
    rows = np.arange(count)
    if test_given:
        rest, test = rows, rows[:0]
        validation_fraction = VALIDATION_SPLIT
    else:
        rest, test = split_off(rows, TEST_SPLIT, rng, labels)
        validation_fraction = VALIDATION_SPLIT / (1 - TEST_SPLIT)
    if validation_given:
        return rest, rows[:0], test
    rest_labels = None if labels is None else labels[rest]
    train, validation = split_off(rest, validation_fraction, rng, rest_labels)
    return train, validation, test
''', "split_off")

_define("standardize", '''
def standardize(x_train, *others):
    """Centre and scale each feature with the training rows' mean and standard deviation."""
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)  # a constant feature stays constant instead of NaN
    return [((x - mean) / std).astype("float32") for x in (x_train, *others)]
''')

_define("fill_missing", '''
def fill_missing(columns, names, x_train, *others):
    """Fill the missing numbers (NaN) of `columns` with the training rows' median."""
    medians = {}
    for column in columns:
        values = x_train[:, column]
        present = values[~np.isnan(values)]
        medians[column] = float(np.median(present)) if present.size else 0.0
        print(f"Missing values of {names[column]!r} filled with {medians[column]:g}.")
    filled = []
    for x in (x_train, *others):
        x = x.copy()
        for column, median in medians.items():
            x[np.isnan(x[:, column]), column] = median
        filled.append(x)
    return filled
''')

_define("is_classification", '''
def is_classification(values):
    """Whether a target holds class labels rather than values to predict.

    Text and 0/1 rows are class labels; numbers are when all are whole and there are at
    most CLASS_LABEL_LIMIT distinct ones (and fewer than half as many as rows), or two.
    """
    if values.dtype.kind in "USOb":
        return True
    if values.ndim == 2 and values.shape[1] > 1:
        return values.dtype.kind in "biuf" and bool(np.all((values == 0) | (values == 1)))
    flat = values.reshape(-1)
    if flat.dtype.kind == "f":
        flat = flat[~np.isnan(flat)]
        if not np.all(flat == np.round(flat)):
            return False
    distinct = len(np.unique(flat))
    return distinct <= 2 or (distinct <= CLASS_LABEL_LIMIT and distinct < len(flat) / 2)
''')

_define("class_list", '''
def class_list(values):
    """The distinct class labels in sorted order (numbers as numbers), and their names."""
    if values.dtype.kind in "biuf":
        classes = np.unique(values)
        names = [str(int(v)) if float(v).is_integer() else f"{float(v):g}" for v in classes]
        return classes, names
    names = sorted({str(v) for v in values})
    return np.asarray(names), names
''')

_define("class_ids", '''
def class_ids(classes, labels):
    """Each label's place in the sorted `classes`: class ids 0, 1, 2, ..."""
    labels = labels if labels.dtype.kind in "biuf" else labels.astype(str)
    return np.searchsorted(classes, labels).astype("int32")
''')

_define("fit_to_input", '''
def fit_to_input(x):
    """Give each sample the model's input shape (INPUT_SHAPE), e.g. 64 values as 8x8x1.

    One None in INPUT_SHAPE takes whatever size is left.
    """
    shape = list(INPUT_SHAPE)
    have = x.shape[1:]
    if len(have) == len(shape) and all(
        s is None or s == h for s, h in zip(shape, have, strict=True)
    ):
        return x
    size = math.prod(have)
    known = math.prod(s for s in shape if s is not None)
    unknown = sum(s is None for s in shape)
    if (unknown == 0 and known == size) or (unknown == 1 and known and size % known == 0):
        return x.reshape((len(x), *[-1 if s is None else s for s in shape]))
    raise SystemExit(
        f"Each sample of the data has shape {have}, which does not fit the model's input "
        f"shape {INPUT_SHAPE}. Change the shape of the model's Input to fit the data."
    )
''')

_define("fit_to_inputs", '''
def fit_to_inputs(x):
    """The array of each model input (INPUT_SHAPES, by Input name), in the model's order,
    each given its input's shape, e.g. 64 values as 8x8x1 (one None takes the rest)."""
    fitted = []
    for name, wanted in INPUT_SHAPES.items():
        a, shape = x[name], list(wanted)
        have = a.shape[1:]
        if len(have) == len(shape) and all(
            s is None or s == h for s, h in zip(shape, have, strict=True)
        ):
            fitted.append(a)
            continue
        size = math.prod(have)
        known = math.prod(s for s in shape if s is not None)
        unknown = sum(s is None for s in shape)
        if not ((unknown == 0 and known == size) or (unknown == 1 and known and size % known == 0)):
            raise SystemExit(
                f"Each sample of the array for {name!r} has shape {have}, which does not fit "
                f"that input's shape {wanted}. Change the shape of the Input to fit the data."
            )
        fitted.append(a.reshape((len(a), *[-1 if s is None else s for s in shape])))
    return fitted
''')

_define("one_hot", '''
def one_hot(*label_arrays):
    """Class ids as one-hot rows, which @LOSS@ expects (rows stay as they are)."""
    if label_arrays[0].ndim > 1:
        return label_arrays
    num_classes = max(int(y.max()) + 1 for y in label_arrays if len(y))
    return [np.eye(num_classes, dtype="float32")[y] for y in label_arrays]
''')

# ----------------------------------------------------------------------------- tables
def _set_literal(values: tuple[str, ...]) -> str:
    return "{" + ", ".join(f'"{v}"' for v in sorted(values)) + "}"


_CSV_RULES = f"""
# How kbuilder reads a table.
MISSING_MARKERS = {_set_literal(MISSING_MARKERS)}  # cells that mean "no value" (any case)
MISSING_CATEGORY = "{MISSING_CATEGORY}"  # the category of a missing text value
CLASS_LABEL_LIMIT = {CLASS_LABEL_LIMIT}  # more distinct whole numbers than this: values to predict
MAX_AUTO_CATEGORIES = {MAX_AUTO_CATEGORIES}  # more text values than this, most unique: an identifier
ID_NAME = re.compile(r"(?i)^(id|.*[_ .-]id|.*identifier|uuid|guid|row_?id|index)$")
ISO_DATE = re.compile(
    r"\\d{{4}}-\\d{{1,2}}-\\d{{1,2}}([ T]\\d{{1,2}}:\\d{{2}}(:\\d{{2}}(\\.\\d+)?)?)?(Z|[+-]\\d{{2}}:?\\d{{2}})?"
)
TRUE_WORDS, FALSE_WORDS = {{"true", "yes", "y", "t"}}, {{"false", "no", "n", "f"}}
NUMBER = r"^[+-]?(\\d+\\.?\\d*([eE][+-]?\\d+)?|\\.\\d+([eE][+-]?\\d+)?|inf|infinity|nan)$"  # a number
"""

_define("read_table_parquet", r'''
def read_table(path):
    """The table's columns as pyarrow arrays, read with kbuilder's parser and options."""
    table = pq.read_table(path)
    return {
        str(name): (column.cast(column.type.value_type)
                    if pa.types.is_dictionary(column.type) else column)
        for name, column in zip(table.column_names, table.columns, strict=True)
    }
''')

_define("read_table_excel", r'''
def read_table(path):
    """The table's columns as pyarrow arrays, read with kbuilder's parser and options."""
    frame = pd.read_excel(path, sheet_name=SHEET if SHEET is not None else 0, header=None,
                          skiprows=SKIP_ROWS, dtype=object, na_filter=False)
    cells = [[excel_text(v) for v in row] for row in frame.itertuples(index=False)]
    names = COLUMNS or [c.strip() or f"column_{i + 1}" for i, c in enumerate(cells[0])]
    body = [row for row in (cells if COLUMNS else cells[1:]) if any(c.strip() for c in row)]
    return {
        name: pa.chunked_array([pa.array(
            [None if row[j].strip().lower() in MISSING_MARKERS else row[j].strip()
             for row in body], pa.string())])
        for j, name in enumerate(names)
    }
''', "excel_text")

_define("read_table_csv", r'''
def read_table(path):
    """The table's columns as pyarrow arrays, read with kbuilder's parser and options."""
    return read_csv(path, COLUMNS, SKIP_ROWS, TEXT_COLUMNS)
''', "read_csv")

_define("read_csv", r'''
def read_csv(path, names, skip, text_columns):
    """The columns of a CSV file as pyarrow arrays, by kbuilder's rules (DELIMITER,
    DECIMAL, ENCODING, MISSING_MARKERS): `names` (None: the first line names them) after
    `skip` lines; `text_columns` kept as text, as written."""
    nulls = sorted({
        "".join(p) for marker in MISSING_MARKERS
        for p in itertools.product(*[(c.lower(), c.upper()) if c.isalpha() else (c,)
                                     for c in marker])
    })

    def blank_or_error(row):  # a line of only delimiters and spaces is not a sample
        return "skip" if not row.text.strip(" \t\r" + DELIMITER + '"') else "error"

    def read(encoding):
        return pacsv.read_csv(
            path,
            pacsv.ReadOptions(column_names=names, skip_rows=skip, encoding=encoding),
            pacsv.ParseOptions(delimiter=DELIMITER, newlines_in_values=True,
                               invalid_row_handler=blank_or_error),
            pacsv.ConvertOptions(
                null_values=nulls, strings_can_be_null=True, quoted_strings_can_be_null=True,
                column_types={c: pa.string() for c in text_columns},
                decimal_point=DECIMAL),
        )

    try:
        try:
            table = read(ENCODING)
        except pa.ArrowInvalid as exc:
            if "UTF8" not in str(exc) or ENCODING != "utf8":
                raise
            table = read("cp1252")  # UTF-8 only at the start: a Windows export, as kbuilder reads it
    except (OSError, pa.ArrowInvalid) as exc:
        raise SystemExit(f"Could not read {path}: {exc}") from exc
    blank = None
    for column in table.columns:  # rows whose every cell is empty are not samples
        empty = pc.is_null(column)
        if column.type == "string":
            empty = pc.or_kleene(empty, pc.or_kleene(pc.equal(column, ""),
                                                    pc.utf8_is_space(column)))
        blank = empty if blank is None else pc.and_kleene(blank, empty)
    mask = np.asarray(pc.fill_null(blank, False).to_numpy(zero_copy_only=False), dtype=bool)
    if mask.any():
        table = table.filter(~mask)
    return {name: table.column(i) for i, name in enumerate(table.column_names)}
''')

_define("excel_text", r'''
def excel_text(value):
    """An Excel cell as the text kbuilder reads."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "isoformat"):
        return value.isoformat(sep=" ") if hasattr(value, "hour") else value.isoformat()
    return str(value)
''')

_define("text_values", r'''
def text_values(column, merges=None):
    """A column as stripped text, its missing markers as nulls, spellings merged."""
    if column.type != pa.string():
        column = pc.cast(column, pa.string())
    stripped = pc.utf8_trim_whitespace(column)
    missing = pc.is_in(pc.utf8_lower(stripped), value_set=pa.array(sorted(MISSING_MARKERS)))
    text = pc.if_else(missing, pa.scalar(None, pa.string()), stripped)
    if merges:
        encoded = pc.dictionary_encode(text).combine_chunks()
        dictionary = [merges.get(v, v) for v in encoded.dictionary.to_pylist()]
        text = pa.chunked_array([pc.take(pa.array(dictionary, pa.string()), encoded.indices)])
    return text
''')

_define("as_numbers", r'''
def as_numbers(column):
    """(values with NaN where missing, index of the first non-number or None, its text),
    or None for a column of dates or of anything else but text and numbers."""
    kind = column.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind) \
            or pa.types.is_decimal(kind):
        return pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False), None, None
    if not pa.types.is_string(kind):
        return None
    text = text_values(column)
    if DECIMAL == ",":
        text = pc.replace_substring_regex(text, pattern=r"^([+-]?\d+),(\d+)$",
                                          replacement=r"\1.\2")
    numeric = pc.fill_null(pc.match_substring_regex(text, NUMBER, ignore_case=True), True)
    values = pc.cast(pc.if_else(numeric, text, pa.scalar(None, pa.string())), pa.float64())
    values = values.to_numpy(zero_copy_only=False)
    bad = np.flatnonzero(~numeric.to_numpy(zero_copy_only=False))
    if not len(bad):
        return values, None, None
    return values, bad, text[int(bad[0])].as_py()
''', "text_values")

_define("column_role", r'''
def column_role(name, column, chosen):
    """What kbuilder makes of a feature column: (role, numbers or None, text or None).

    Roles: numeric, boolean, categorical, datetime (used); identifier, text, empty and
    ignore (left out). ROLES and CATEGORICAL overrule what the values suggest.
    """
    override = "categorical" if name in CATEGORICAL else ROLES.get(name)
    if pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
        return override or "datetime", None, None
    merges = MERGES.get(name)
    numbers = as_numbers(column) if override in (None, "numeric") and not merges else None
    if numbers is not None:
        values, bad, _ = numbers
        bad_count = 0 if bad is None else len(bad)
        present = int((~np.isnan(values)).sum()) + bad_count
        if not (bad_count and override is None and bad_count >= present / 2):
            finite = values[~np.isnan(values)]
            distinct = np.unique(finite)
            whole = bool(np.all(distinct == np.round(distinct))) if len(distinct) else False
            if not len(finite) and not bad_count:
                role = "empty"
            elif pa.types.is_boolean(column.type) or (
                whole and set(distinct) <= {0.0, 1.0} and len(distinct) == 2
            ):
                role = "boolean"
            elif (whole and len(distinct) == len(finite) and len(finite) >= 20
                  and ID_NAME.match(name) and not chosen):
                role = "identifier"
            else:
                role = "numeric"
            return override or role, numbers, None
    text = text_values(column, merges)
    counts = pc.value_counts(text.drop_null())
    values = [v for v in counts.field("values").to_pylist() if v is not None]
    lowered = {v.lower() for v in values}
    categories = len(values) + (1 if text.null_count else 0)
    if not values:
        role = "empty"
    elif len(values) == 2 and lowered <= TRUE_WORDS | FALSE_WORDS and lowered & TRUE_WORDS \
            and lowered & FALSE_WORDS:
        role = "boolean"
    elif sum(bool(ISO_DATE.fullmatch(v)) for v in sorted(values)[:200]) >= 0.95 * min(
            200, len(values)):
        role = "datetime"
    elif categories > MAX_AUTO_CATEGORIES and categories > len(text) / 2 and not chosen:
        role = "identifier"
    else:
        role = "categorical"
    return override or role, None, text
''', "as_numbers", "text_values")

_define("date_parts", r'''
def date_parts(column):
    """Year, month, day of week (Monday 0), day of year and, when any value has a time of
    day, hour (with minutes as a fraction): one float column each, NaN where missing."""
    if pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
        stamps = pd.to_datetime(pd.Series(column.to_pandas()), errors="coerce", utc=True)
    else:
        series = text_values(column).to_pandas()
        stamps = pd.to_datetime(series, errors="coerce", format="ISO8601", utc=True)
        bad = np.flatnonzero((stamps.isna() & series.notna()).to_numpy())
        if len(bad):
            raise SystemExit(f"{series.iloc[bad[0]]!r} is not a date (YYYY-MM-DD).")
    parts = {"year": stamps.dt.year, "month": stamps.dt.month,
             "day_of_week": stamps.dt.day_of_week, "day_of_year": stamps.dt.day_of_year}
    if bool(((stamps.dt.hour.fillna(0) != 0) | (stamps.dt.minute.fillna(0) != 0)).any()):
        parts["hour"] = stamps.dt.hour + stamps.dt.minute / 60
    return {k: v.to_numpy(dtype=np.float64, na_value=np.nan) for k, v in parts.items()}
''', "text_values")

_define("encode_feature", r'''
def encode_feature(name, role, numbers, text, column):
    """A used feature column as float32 blocks: [(block, names, has missing numbers)]."""
    if role == "numeric" and numbers is None:  # the user's choice, on a column of text
        numbers = as_numbers(column)
    if role in ("numeric", "boolean") and numbers is not None:
        values, bad, first = numbers
        if bad is not None:
            raise SystemExit(f"Column {name!r}: {first!r} is not a number. Correct it, leave "
                             "the cell empty for a missing value, or list it in CATEGORICAL.")
        if np.any(np.abs(values[~np.isnan(values)]) > np.finfo("float32").max):
            raise SystemExit(f"Column {name!r} holds a value too large for 32-bit floats.")
        missing = bool(np.isnan(values).any())
        return [(values.astype("float32")[:, None], [name], missing)]
    if role == "boolean":
        text = text if text is not None else text_values(column, MERGES.get(name))
        cells = text.to_pylist()
        lowered = sorted({v.lower() for v in cells if v is not None})
        true = TRUE_WORDS if set(lowered) <= TRUE_WORDS | FALSE_WORDS else set(lowered[1:])
        values = np.asarray([np.nan if v is None else float(v.lower() in true) for v in cells])
        return [(values.astype("float32")[:, None], [name], bool(np.isnan(values).any()))]
    if role == "datetime":
        return [(values.astype("float32")[:, None], [f"{name}.{part}"],
                 bool(np.isnan(values).any())) for part, values in date_parts(column).items()]
    text = text if text is not None else text_values(column, MERGES.get(name))
    filled = pc.fill_null(text, pa.scalar(MISSING_CATEGORY, pa.string()))
    encoded = pc.dictionary_encode(filled).combine_chunks()
    dictionary = encoded.dictionary.to_pylist()
    categories = sorted(dictionary)
    rank = np.asarray([categories.index(v) for v in dictionary], dtype=np.int64)
    codes = rank[encoded.indices.to_numpy(zero_copy_only=False)]
    block = np.zeros((len(codes), len(categories)), dtype="float32")
    block[np.arange(len(codes)), codes] = 1.0
    return [(block, [f"{name}={category}" for category in categories], False)]
''', "as_numbers", "text_values", "date_parts")

_define("table_target", r'''
def table_target(column, merges):
    """The target: class ids and class names, or values and None; and the rows kept."""
    numbers = None if merges else as_numbers(column)
    if numbers is not None and numbers[1] is not None:
        values, bad, first = numbers
        present = int((~np.isnan(values)).sum()) + len(bad)
        if len(bad) < present / 2:
            raise SystemExit(f"Target {TARGET!r}: {first!r} is not a number.")
        numbers = None
    if numbers is not None:
        kept = np.flatnonzero(~np.isnan(numbers[0]))
        values = numbers[0][kept]
    else:
        text = text_values(column, merges)
        kept = np.flatnonzero(pc.is_valid(text).to_numpy(zero_copy_only=False))
        values = np.asarray(text.take(pa.array(kept)).to_pylist(), dtype=str)
    if not len(kept):
        raise SystemExit(f"The target column {TARGET!r} has no values.")
    if len(kept) < len(column):
        print(f"{len(column) - len(kept)} row(s) without a value for {TARGET!r} left out.")
    if not is_classification(values):
        return values.astype("float32"), None, kept
    classes, names = class_list(values)
    return class_ids(classes, values), names, kept
''', "as_numbers", "text_values", "is_classification", "class_list", "class_ids")

_define("load_csv", r'''
def load_data(path):
    """The table's features and target, split into training, validation and test rows."""
    columns = read_table(path)
    header = list(columns)
    target = TARGET or header[-1]
    features = list(FEATURES) if FEATURES is not None else [c for c in header if c != target]
    for column in [target, *features, *CATEGORICAL, *ROLES]:
        if column not in columns:
            raise SystemExit(f"{path} has no column {column!r}; its columns are {header}.")
    if target in features:
        raise SystemExit(f"{target!r} is both the target and a feature; remove it from FEATURES.")
    y, classes, kept = table_target(columns[target], MERGES.get(target))
    rows = None if len(kept) == len(columns[target]) else pa.array(kept)
    blocks, names, with_missing = [], [], []
    for name in features:
        column = columns[name] if rows is None else columns[name].take(rows)
        chosen = FEATURES is not None or name in CATEGORICAL or name in ROLES
        role, numbers, text = column_role(name, column, chosen)
        if role not in ("numeric", "categorical", "boolean", "datetime"):
            print(f"Column {name!r} is left out ({role}); list it in FEATURES or ROLES to use it.")
            continue
        for block, block_names, missing in encode_feature(name, role, numbers, text, column):
            if missing:
                with_missing.append(len(names))
            blocks.append(block)
            names += block_names
    if not blocks:
        raise SystemExit(f"{path} has no usable feature columns besides {target!r}.")
    x = blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=1)
    if classes is not None:
        print(f"Classes: {classes}")
    train, validation, test = split_rows(len(y), labels=None if classes is None else y)
    x_train, x_val, x_test = fill_missing(with_missing, names, x[train], x[validation], x[test])
    return (x_train, y[train]), (x_val, y[validation]), (x_test, y[test])
''', "read_table", "table_target", "column_role", "encode_feature", "split_rows",
        "fill_missing")

_define("load_csv_model", r'''
def load_data(path):
    """The table's raw model inputs and target, split into training, validation and test
    rows: "numeric" holds the numbers as written (NaN where missing; the model's
    FillMissing and Normalization fill and scale them) and each categorical column gives
    codes of its own Input: 1.. for the training rows' sorted categories (VOCABULARIES,
    filled in here), 0 for a value the training rows do not have. NUMERIC_COLUMNS,
    CATEGORY_INPUTS and CLASS_NAMES (how encode_rows reads raw rows) are filled in too."""
    columns = read_table(path)
    header = list(columns)
    target = TARGET or header[-1]
    features = list(FEATURES) if FEATURES is not None else [c for c in header if c != target]
    for column in [target, *features, *CATEGORICAL, *ROLES]:
        if column not in columns:
            raise SystemExit(f"{path} has no column {column!r}; its columns are {header}.")
    if target in features:
        raise SystemExit(f"{target!r} is both the target and a feature; remove it from FEATURES.")
    y, classes, kept = table_target(columns[target], MERGES.get(target))
    rows = None if len(kept) == len(columns[target]) else pa.array(kept)
    blocks, categories, taken = [], {}, {"numeric"}
    NUMERIC_COLUMNS.clear()
    CATEGORY_INPUTS.clear()
    VOCABULARIES.clear()
    CLASS_NAMES[:] = classes or []
    for name in features:
        column = columns[name] if rows is None else columns[name].take(rows)
        chosen = FEATURES is not None or name in CATEGORICAL or name in ROLES
        role, numbers, text = column_role(name, column, chosen)
        if role not in ("numeric", "categorical", "boolean", "datetime"):
            print(f"Column {name!r} is left out ({role}); list it in FEATURES or ROLES to use it.")
            continue
        if role == "categorical":
            text = text if text is not None else text_values(column, MERGES.get(name))
            filled = pc.fill_null(text, pa.scalar(MISSING_CATEGORY, pa.string()))
            categories[input_name(name, taken)] = (name, filled)
            continue
        encoded = encode_feature(name, role, numbers, text, column)
        blocks += [block for block, _, _ in encoded]
        block_names = [n for _, names, _ in encoded for n in names]
        NUMERIC_COLUMNS.append(numeric_column(name, role, numbers, text, block_names))
    if classes is not None:
        print(f"Classes: {classes}")
    train, validation, test = split_rows(len(y), labels=None if classes is None else y)
    x = {"numeric": np.concatenate(blocks, axis=1)} if blocks else {}
    for key, (name, text) in categories.items():
        VOCABULARIES[name] = sorted(set(text.take(pa.array(train)).to_pylist()))
        CATEGORY_INPUTS[name] = key
        x[key] = category_codes(text, VOCABULARIES[name])
    return tuple(({k: v[part] for k, v in x.items()}, y[part])
                 for part in (train, validation, test))
''', "read_table", "table_target", "column_role", "encode_feature", "split_rows",
        "input_name", "category_codes", "numeric_column")

_define("input_name", r'''
def input_name(column, taken):
    """The model Input of a categorical column: its name in lower-case letters, digits, _."""
    base = re.sub(r"[^0-9a-zA-Z]+", "_", column).strip("_").lower() or "column"
    base = f"c_{base}" if base[0].isdigit() else base
    name, i = base, 2
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    taken.add(name)
    return name
''')

_define("category_codes", r'''
def category_codes(text, vocabulary):
    """int32 (n, 1) codes: 1 + the position in vocabulary, 0 for any other value."""
    index = pc.index_in(text, value_set=pa.array(vocabulary, pa.string()))
    codes = pc.fill_null(pc.add(index, 1), 0).to_numpy(zero_copy_only=False)
    return codes.astype("int32").reshape(-1, 1)
''')

# ----------------------------------------------------------------------------- NumPy
_define("read_arrays", '''
def read_arrays(path):
    """The arrays of an .npz file, or of the .npy files in a folder (or beside a .npy file)."""
    folder = Path(path).parent if str(path).lower().endswith(".npy") else Path(path)
    try:
        if folder.is_dir():
            return {f.stem: np.load(f) for f in sorted(folder.glob("*.npy"))}
        with np.load(path) as archive:  # allow_pickle stays off: a data file runs no code
            return {key: archive[key] for key in archive.files}
    except (OSError, ValueError) as exc:
        raise SystemExit(f"Could not read {path}: {exc}") from exc
''')

_define("as_features", '''
def as_features(a):
    """Samples as Keras takes them: a column for 1-D data, float32 for real numbers."""
    a = np.asarray(a)
    if a.ndim == 1:
        a = a[:, None]
    if a.dtype.kind in "fb" and a.dtype != np.float32:
        a = a.astype("float32")
    return a
''')

_define("as_targets", '''
def as_targets(*label_arrays):
    """The targets of every split encoded alike, and the class names (None: values).

    One-hot rows stay; whole numbers 0..K-1 are class ids already; other labels are
    numbered in sorted order.
    """
    flat = [y.reshape(len(y)) if y.ndim == 2 and y.shape[1] == 1 else y for y in label_arrays]
    values = np.concatenate(flat)
    if not is_classification(values):
        return [y.astype("float32") for y in flat], None
    if flat[0].ndim == 2:
        count = flat[0].shape[1]
        return [y.astype("float32") for y in flat], [str(i) for i in range(count)]
    if values.dtype.kind in "biuf" and np.all(values == np.round(values)) and values.min() >= 0:
        return [y.astype("int32") for y in flat], [str(i) for i in range(int(values.max()) + 1)]
    classes, names = class_list(values)
    return [class_ids(classes, y) for y in flat], names
''', "is_classification", "class_list", "class_ids")

_define("load_npz", '''
def load_data(path):
    """Arrays x and y (or x_train and y_train, maybe with x_test/y_test, x_val/y_val)."""
    arrays = read_arrays(path)
    named = {key.lower(): key for key in arrays}
    for x_key, y_key in (("x", "y"), ("x_train", "y_train")):
        if x_key in named and y_key in named:
            break
    else:
        raise SystemExit(
            f"{path} must hold arrays x and y (or x_train and y_train); it holds "
            f"{sorted(arrays)}."
        )
    given = [s for s in ("test", "val") if f"x_{s}" in named and f"y_{s}" in named]
    xs = [as_features(arrays[named[k]]) for k in [x_key, *(f"x_{s}" for s in given)]]
    ys, classes = as_targets(*(np.asarray(arrays[named[k]])
                               for k in [y_key, *(f"y_{s}" for s in given)]))
    own = dict(zip(given, zip(xs[1:], ys[1:], strict=True), strict=True))
    x, y = xs[0], ys[0]
    labels = None
    if classes is not None:
        print(f"Classes: {classes}")
        labels = y.argmax(axis=1) if y.ndim == 2 else y
    train, validation, test = split_rows(
        len(y), labels, test_given="test" in own, validation_given="val" in own
    )
    return (
        (x[train], y[train]),
        own.get("val", (x[validation], y[validation])),
        own.get("test", (x[test], y[test])),
    )
''', "read_arrays", "as_features", "as_targets", "split_rows")

_define("load_npz_named", '''
def load_data(path):
    """One array per model input (INPUT_ARRAYS: Input name -> array) and the target array
    (TARGET_ARRAY, or the one named y, label, labels or target); arrays NAME_test and
    NAME_val are the file's own test and validation splits."""
    arrays = read_arrays(path)
    target = TARGET_ARRAY or next(
        (k for k in arrays if k.lower() in ("y", "label", "labels", "target")), None
    )
    wanted = [*INPUT_ARRAYS.values(), target]
    lacking = [name for name in wanted if name not in arrays]
    if lacking:
        raise SystemExit(f"{path} has no array {lacking[0]!r}; it holds {sorted(arrays)}.")
    given = [s for s in ("test", "val") if all(f"{a}_{s}" in arrays for a in wanted)]
    suffixes = ["", *(f"_{s}" for s in given)]
    xs = [{name: as_features(arrays[a + suffix]) for name, a in INPUT_ARRAYS.items()}
          for suffix in suffixes]
    ys, classes = as_targets(*(np.asarray(arrays[target + suffix]) for suffix in suffixes))
    own = dict(zip(given, zip(xs[1:], ys[1:], strict=True), strict=True))
    x, y = xs[0], ys[0]
    labels = None
    if classes is not None:
        print(f"Classes: {classes}")
        labels = y.argmax(axis=1) if y.ndim == 2 else y
    train, validation, test = split_rows(
        len(y), labels, test_given="test" in own, validation_given="val" in own
    )

    def rows(index):
        return {name: a[index] for name, a in x.items()}

    return (
        (rows(train), y[train]),
        own.get("val", (rows(validation), y[validation])),
        own.get("test", (rows(test), y[test])),
    )
''', "read_arrays", "as_features", "as_targets", "split_rows")

_define("load_npz_targets", '''
def load_data(path):
    """One array per model input (INPUT_ARRAYS: Input name -> array) and one target array
    per model output (TARGET_ARRAYS: Output name -> array), each target encoded on its
    own (its task, its classes); the split is stratified by the first target's classes.
    Arrays NAME_test and NAME_val are the file's own test and validation splits."""
    arrays = read_arrays(path)
    wanted = [*INPUT_ARRAYS.values(), *TARGET_ARRAYS.values()]
    lacking = [name for name in wanted if name not in arrays]
    if lacking:
        raise SystemExit(f"{path} has no array {lacking[0]!r}; it holds {sorted(arrays)}.")
    given = [s for s in ("test", "val") if all(f"{a}_{s}" in arrays for a in wanted)]
    suffixes = ["", *(f"_{s}" for s in given)]
    xs = [{name: as_features(arrays[a + suffix]) for name, a in INPUT_ARRAYS.items()}
          for suffix in suffixes]
    ys = [{} for _ in suffixes]
    labels = None
    for i, (output, target) in enumerate(TARGET_ARRAYS.items()):
        encoded, classes = as_targets(*(np.asarray(arrays[target + suffix])
                                        for suffix in suffixes))
        for y, part in zip(ys, encoded, strict=True):
            y[output] = part
        if classes is not None:
            print(f"Classes of {output!r}: {classes}")
            if i == 0:
                labels = encoded[0].argmax(axis=1) if encoded[0].ndim == 2 else encoded[0]
    own = dict(zip(given, zip(xs[1:], ys[1:], strict=True), strict=True))
    x, y = xs[0], ys[0]
    train, validation, test = split_rows(
        len(labels if labels is not None else next(iter(y.values()))), labels,
        test_given="test" in own, validation_given="val" in own,
    )

    def rows(by_name, index):
        return {name: a[index] for name, a in by_name.items()}

    return (
        (rows(x, train), rows(y, train)),
        own.get("val", (rows(x, validation), rows(y, validation))),
        own.get("test", (rows(x, test), rows(y, test))),
    )
''', "read_arrays", "as_features", "as_targets", "split_rows", "fit_targets")

_define("fit_targets", '''
def fit_targets(y):
    """The target of each model output (TARGET_ARRAYS, by Output name), in the model's
    order, as model.fit takes them."""
    return [y[name] for name in TARGET_ARRAYS]
''')

# ------------------------------------------------------------------------------ images
_define("image_classes", f'''
def image_classes(root):
    """(class name, image files) of each sub-folder of `root`, in sorted order."""
    root = Path(root)
    if not root.is_dir():
        raise SystemExit(f"The image folder {{root}} does not exist.")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    classes = []
    for folder in folders:
        files = sorted(
            p for p in folder.rglob("*")
            if p.is_file() and p.suffix.lower() in {_set_literal(IMAGE_EXTENSIONS)}
            and not p.name.startswith(".")
        )
        if not files:
            raise SystemExit(f"The class folder {{folder}} has no images.")
        classes.append((folder.name, files))
    if len(classes) < 2:
        raise SystemExit(f"{{root}} needs a sub-folder of images for each of two classes or more.")
    return classes
''')

_define("read_images", '''
def read_images(files):
    """The image files resized to IMAGE_SIZE (bilinear), as uint8 pixel values 0..255."""
    height, width = IMAGE_SIZE
    mode, channels = ("RGB", 3) if COLOR_MODE == "rgb" else ("L", 1)
    x = np.empty((len(files), height, width, channels), dtype="uint8")
    for i, file in enumerate(files):
        with Image.open(file) as image:
            image = image.convert(mode).resize((width, height), Image.Resampling.BILINEAR)
            x[i] = np.asarray(image, dtype="uint8").reshape(height, width, channels)
    return x
''')

_define("ImageBatches", '''
class ImageBatches(keras.utils.PyDataset):
    """Batches of (images, labels) read from their files while the model trains, so memory
    stays the same however many images there are. `shuffle`: a new order each epoch."""

    def __init__(self, files, labels, shuffle=False):
        super().__init__()
        self.files, self.labels, self.shuffle = files, labels, shuffle
        self.order = np.arange(len(files))
        self.rng = np.random.default_rng(SEED)
        self.on_epoch_end()

    def __len__(self):
        return math.ceil(len(self.files) / BATCH_SIZE)

    def __getitem__(self, index):
        rows = self.order[index * BATCH_SIZE:(index + 1) * BATCH_SIZE]
        return fit_to_input(read_images(self.files[rows])), self.labels[rows]

    def on_epoch_end(self):
        if self.shuffle:
            self.order = self.rng.permutation(len(self.files))
''', "read_images", "fit_to_input")

_define("load_images", '''
def load_data(path):
    """The image files of one sub-folder per class and their labels, split; the images are
    read batch by batch (ImageBatches)."""
    classes = image_classes(path)
    x = np.array([str(file) for _, paths in classes for file in paths])
    y = np.concatenate([np.full(len(paths), label, dtype="int32")
                        for label, (_, paths) in enumerate(classes)])
    print(f"Classes: {[name for name, _ in classes]}")
    train, validation, test = split_rows(len(y), labels=y)
    return (x[train], y[train]), (x[validation], y[validation]), (x[test], y[test])
''', "image_classes", "split_rows", "ImageBatches")


# ------------------------------------------------------------------ built-in datasets
def _sklearn_loader(name: str) -> str:
    lines = [
        "def load_data():",
        f'    """The scikit-learn dataset "{name}", split into training, validation and test '
        'rows."""',
        f"    dataset = load_{name}()",
    ]
    if name == "digits":
        lines += [
            "    # 8x8 images with values 0..16, kept as images so that a CNN sees the layout.",
            '    x = (dataset.images / 16.0).astype("float32")[..., None]',
        ]
    else:
        lines.append('    x = dataset.data.astype("float32")')
    if name == "diabetes":
        lines += [
            '    y = dataset.target.astype("float32")',
            "    train, validation, test = split_rows(len(y))",
        ]
    else:
        lines += [
            '    y = dataset.target.astype("int32")',
            '    print(f"Classes: {[str(c) for c in dataset.target_names]}")',
            "    train, validation, test = split_rows(len(y), labels=y)",
        ]
    if name == "digits":
        lines.append("    x_train, x_val, x_test = x[train], x[validation], x[test]")
    else:
        lines += [
            "    # Features centred and scaled with the training rows' statistics.",
            "    x_train, x_val, x_test = standardize(x[train], x[validation], x[test])",
        ]
    lines.append("    return (x_train, y[train]), (x_val, y[validation]), (x_test, y[test])")
    return "\n".join(lines)


def _keras_loader(name: str) -> str:
    lines = [
        "def load_data():",
        f'    """The Keras dataset "{name}" with its own test set: downloaded on first use, '
        'then read from ~/.keras/datasets."""',
        "    try:",
        f"        (x, y), (x_test, y_test) = keras.datasets.{name}.load_data("
        + ("num_words=NUM_WORDS" if name in _TEXT_SETS else "") + ")",
        "    except Exception as exc:  # most often: no internet connection on first use",
        "        raise SystemExit(",
        f'            f"Could not download the {name} dataset ({{exc}}). Keras downloads it '
        'once into "',
        '            "~/.keras/datasets; connect to the internet, or copy the file there."',
        "        ) from exc",
    ]
    if name in _TEXT_SETS:
        lines += [
            "    # Texts padded or cut to SEQUENCE_LENGTH tokens.",
            '    x = keras.utils.pad_sequences(x, maxlen=SEQUENCE_LENGTH).astype("int32")',
            "    x_test = keras.utils.pad_sequences(x_test, maxlen=SEQUENCE_LENGTH)"
            '.astype("int32")',
            '    y, y_test = np.asarray(y).astype("int32"), np.asarray(y_test).astype("int32")',
            "    train, validation, _ = split_rows(len(y), labels=y, test_given=True)",
            "    x_train, x_val = x[train], x[validation]",
        ]
    elif name == "boston_housing":
        lines += [
            '    x, x_test = x.astype("float32"), x_test.astype("float32")',
            '    y, y_test = y.astype("float32"), y_test.astype("float32")',
            "    train, validation, _ = split_rows(len(y), test_given=True)",
            "    # Features centred and scaled with the training rows' statistics.",
            "    x_train, x_val, x_test = standardize(x[train], x[validation], x_test)",
        ]
    else:
        lines += [
            "    # Pixel values 0..255 become 0..1; grayscale images get their channel axis.",
            '    x, x_test = x.astype("float32") / 255.0, x_test.astype("float32") / 255.0',
            "    if x.ndim == 3:",
            "        x, x_test = x[..., None], x_test[..., None]",
            '    y, y_test = np.ravel(y).astype("int32"), np.ravel(y_test).astype("int32")',
            "    train, validation, _ = split_rows(len(y), labels=y, test_given=True)",
            "    x_train, x_val = x[train], x[validation]",
        ]
    lines.append("    return (x_train, y[train]), (x_val, y[validation]), (x_test, y_test)")
    return "\n".join(lines)


# ------------------------------------------------------------------------ the section
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
    streams: bool = False  # x_* are image files, read by ImageBatches
    predicts: bool = False  # raw rows: encode_rows, predict_csv, load_trained, save_csv


# Every module-level name a data section may define (generated variables avoid them).
DEFINED_NAMES = frozenset(
    {"load_data", "fit_to_input", "one_hot", "MISSING_MARKERS", "MISSING_CATEGORY",
     "CLASS_LABEL_LIMIT", "MAX_AUTO_CATEGORIES", "SPLIT_SEED", "VALIDATION_SPLIT",
     "TEST_SPLIT", "DATA_PATH", "TARGET", "FEATURES", "CATEGORICAL", "IMAGE_SIZE",
     "COLOR_MODE", "NUM_WORDS", "SEQUENCE_LENGTH", "INPUT_SHAPE", "INPUT_SHAPES",
     "INPUT_ARRAYS", "TARGET_ARRAY", "TARGET_ARRAYS", "VOCABULARIES",
     "fit_to_inputs", "math", "csv", "io", "re",
     "Path", "Image", "ImageBatches", "itertools", "pd", "pa", "pc", "pacsv", "pq", "FORMAT",
     "DELIMITER", "DECIMAL", "ENCODING", "SKIP_ROWS", "COLUMNS", "SHEET", "ROLES", "MERGES",
     "TEXT_COLUMNS", "ID_NAME", "ISO_DATE", "TRUE_WORDS", "FALSE_WORDS", "NUMBER"}
    | {name for name in _SOURCES if not name.startswith("load_")}
    | codegen_rows.DEFINED_NAMES
)


def table_settings(settings: Any) -> list[str]:
    """The settings lines of a table source: its file, how to read it (the layout kbuilder
    detects, written out so the script reads the file as the run did), its columns."""
    from kbuilder.graph.codegen import _literal, _string
    from kbuilder.graph.table_layout import TableLayoutError, read_layout

    spec = settings.table()
    lines = [f"DATA_PATH = {_string(spec.path)}",
             f"FORMAT = {_string(spec.format)}  # csv, tsv, parquet or excel"]
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
            f"DELIMITER = {_string(delimiter)}",
            f"DECIMAL = {_string(decimal)}  # the decimal mark of numbers",
            f"ENCODING = {_string(encoding)}",
            f"SKIP_ROWS = {skip}  # lines above the data (a description, the header)",
            f"COLUMNS = {_literal(names)}",
        ]
    else:
        lines.append('DECIMAL = "."  # the decimal mark of numbers written as text')
    if spec.format == "excel":
        header = spec.header
        lines += [
            f"SHEET = {_literal(spec.sheet)}  # None: the first sheet",
            f"SKIP_ROWS = {(header - 1) if isinstance(header, int) else 0}",
            f"COLUMNS = {_literal(None)}  # None: the first row names the columns",
        ]
    text_columns = sorted(set(settings.categorical)
                          | {c for c, r in settings.roles if r == "categorical"})
    features = list(settings.features) if settings.features is not None else None
    lines += [
        f"TARGET = {_literal(spec.target)}  # the column to predict (None: the last one)",
        f"FEATURES = {_literal(features)}  # the input columns (None: all but TARGET)",
        f"CATEGORICAL = {_literal(list(settings.categorical))}  "
        "# columns of categories, one-hot encoded",
        f"ROLES = {_literal(dict(settings.roles))}  "
        "# column -> numeric, categorical, boolean, datetime or ignore",
        f"MERGES = {_literal(settings.merge_map())}  # column -> {{spelling: category}}",
        f"TEXT_COLUMNS = {_literal(text_columns)}  # read as text, as written",
    ]
    return lines


def data_section(settings: Any, kind: str, one_hot_loss: str | None = None,
                 input_names: list[str] | None = None,
                 rows: codegen_rows.RowEncoding | None = None,
                 output_names: list[str] | None = None) -> DataSection:
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
    """
    from kbuilder.graph.codegen import _literal, _string

    stdlib = {"import math"}
    third = {"import numpy as np"}
    lines = [f"SPLIT_SEED = {settings.seed}  # seed of the split into training/validation/test rows"]
    if kind == "keras":
        lines += [
            f"VALIDATION_SPLIT = {_literal(float(settings.validation_split))}  "
            "# fraction of the training rows that validate after each epoch",
            "TEST_SPLIT = 0.0  # the dataset comes with its own test set",
        ]
    else:
        lines += [
            f"VALIDATION_SPLIT = {_literal(float(settings.validation_split))}  "
            "# fraction of all rows that validate after each epoch",
            f"TEST_SPLIT = {_literal(float(settings.test_split))}  "
            "# fraction of all rows held out for the final test",
        ]
    rules: list[str] = []
    location = settings.location
    if kind == "sklearn":
        third.add(f"from sklearn.datasets import load_{location}")
        loader, needs = _sklearn_loader(location), ["split_rows", "standardize"]
    elif kind == "keras":
        third.add("import keras")
        if location in _TEXT_SETS:
            lines += [
                f"NUM_WORDS = {VOCABULARY_SIZE}  # the most frequent words to keep",
                f"SEQUENCE_LENGTH = {SEQUENCE_LENGTH}  # tokens per text (shorter ones padded)",
            ]
        loader, needs = _keras_loader(location), ["split_rows", "standardize"]
    elif kind == "csv":
        fmt = settings.table().format
        stdlib |= {"import re"} | ({"import itertools"} if fmt in ("csv", "tsv") else set())
        third |= {"import pandas as pd", "import pyarrow as pa", "import pyarrow.compute as pc",
                  {"parquet": "import pyarrow.parquet as pq", "excel": "import pandas as pd"}
                  .get(fmt, "import pyarrow.csv as pacsv")}
        lines += table_settings(settings)
        rules.append(_CSV_RULES.strip("\n"))
        source = "load_csv_model" if settings.table_encoding == "model" else "load_csv"
        reader = f"read_table_{'csv' if fmt == 'tsv' else fmt}"
        if source == "load_csv_model":
            lines += codegen_rows.settings_lines(rows)
            stdlib |= {"import os", "import tempfile"}
        loader = _SOURCES[source][0]
        needs = [reader, *(n for n in _SOURCES[source][1] if n != "read_table")]
        if source == "load_csv_model":  # predictions on raw rows of the file
            needs += [f"read_rows_{'csv' if fmt in ('csv', 'tsv') else 'file'}",
                      "encode_rows", "predict_csv", "save_csv", "load_trained"]
    elif kind == "npz":
        stdlib.add("from pathlib import Path")
        lines.append(f"DATA_PATH = {_string(location)}")
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
                f"INPUT_ARRAYS = {_literal(arrays)}",
            ]
            if targets_by_output(settings, output_names):
                by_output = dict(settings.output_arrays)
                lines += ["# The target array of each model output, by Output name.",
                          f"TARGET_ARRAYS = {_literal({n: by_output[n] for n in output_names})}"]
                source = "load_npz_targets"
            else:
                lines.append(f"TARGET_ARRAY = {_literal(targets[0] if targets else None)}  "
                             "# None: the array named y (or label, labels, target)")
                source = "load_npz_named"
            loader, needs = _SOURCES[source][0], list(_SOURCES[source][1])
    elif kind == "images":
        stdlib.add("from pathlib import Path")
        third.add("from PIL import Image")
        lines += [
            f"DATA_PATH = {_string(location)}",
            f"IMAGE_SIZE = {_literal(tuple(settings.image_size))}  # (height, width)",
            f"COLOR_MODE = {_string(settings.color_mode)}  # rgb or grayscale",
        ]
        loader, needs = _SOURCES["load_images"][0], list(_SOURCES["load_images"][1])
    else:
        raise ValueError(f"unknown data kind {kind!r}")
    needs.append("fit_to_input" if input_names is None else "fit_to_inputs")
    if one_hot_loss:
        needs.append("one_hot")
    definitions = [*rules, *_with_dependencies(needs), loader]
    if one_hot_loss:
        definitions = [d.replace("@LOSS@", one_hot_loss) for d in definitions]
    return DataSection(
        stdlib=tuple(sorted(stdlib, key=_import_order)),
        third_party=tuple(sorted(third, key=_import_order)),
        settings=tuple(lines),
        definitions=tuple(definitions),
        path_argument=kind in ("csv", "npz", "images"),
        streams=kind == "images",
        predicts=kind == "csv" and settings.table_encoding == "model",
    )


def targets_by_output(settings: Any, output_names: list[str] | None) -> bool:
    """Whether a NumPy file's settings give each of a model's several Outputs its target
    array (``DataSettings.output_arrays``)."""
    chosen = dict(settings.output_arrays)
    return (settings.kind == "npz" and output_names is not None and len(output_names) > 1
            and all(name in chosen for name in output_names))


def _with_dependencies(names: list[str]) -> list[str]:
    """The sources of ``names`` and what they call, each once, callees first."""
    ordered: list[str] = []

    def visit(name: str) -> None:
        if name in ordered:
            return
        for need in _SOURCES[name][1]:
            visit(need)
        ordered.append(name)

    for name in names:
        visit(name)
    return [_SOURCES[name][0] for name in ordered]


_SOURCES.update(codegen_rows.SOURCES)


def _import_order(line: str) -> tuple[int, str]:
    """isort's order: ``import x`` lines before ``from x import y``, each by module name."""
    return (line.startswith("from "), line.split()[1].lower())

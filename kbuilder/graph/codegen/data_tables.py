"""The data section's functions for tables (CSV, TSV, Parquet, Excel).

The layout kbuilder detected is written out as settings; columns get the runtime's roles
(``roles.py``): categories one-hot encoded, yes/no as 0/1, dates as their parts,
identifiers and free text left out, missing numbers filled with the training median.
"""

from __future__ import annotations

from kbuilder.graph.codegen.data_common import (
    CLASS_LABEL_LIMIT,
    MAX_AUTO_CATEGORIES,
    MISSING_CATEGORY,
    MISSING_MARKERS,
)
from kbuilder.graph.codegen.literals import set_literal
from kbuilder.graph.codegen.sources import SourceRegistry

SOURCES = SourceRegistry()
_define = SOURCES.define


CSV_RULES = f"""
# How kbuilder reads a table.
MISSING_MARKERS = {set_literal(MISSING_MARKERS)}  # cells that mean "no value" (any case)
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

_define("table_columns", r'''
def table_columns(path):
    """The table's target (class ids or values, the class names, the rows that have one)
    and its used feature columns, each as (name, role, numbers, text, column) of those rows."""
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
    used = []
    for name in features:
        column = columns[name] if rows is None else columns[name].take(rows)
        chosen = FEATURES is not None or name in CATEGORICAL or name in ROLES
        role, numbers, text = column_role(name, column, chosen)
        if role not in ("numeric", "categorical", "boolean", "datetime"):
            print(f"Column {name!r} is left out ({role}); list it in FEATURES or ROLES to use it.")
            continue
        used.append((name, role, numbers, text, column))
    if not used:
        raise SystemExit(f"{path} has no usable feature columns besides {target!r}.")
    if classes is not None:
        print(f"Classes: {classes}")
    return y, classes, kept, used
''', "read_table", "table_target", "column_role")

_define("load_csv", r'''
def load_data(path):
    """The table's features and target, split into training, validation and test rows."""
    y, classes, kept, used = table_columns(path)
    blocks, names, with_missing = [], [], []
    for name, role, numbers, text, column in used:
        for block, block_names, missing in encode_feature(name, role, numbers, text, column):
            if missing:
                with_missing.append(len(names))
            blocks.append(block)
            names += block_names
    x = blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=1)
    train, validation, test = split_samples(path, y, classes, kept)
    x_train, x_val, x_test = fill_missing(with_missing, names, x[train], x[validation], x[test])
    return (x_train, y[train]), (x_val, y[validation]), (x_test, y[test])
''', "table_columns", "encode_feature", "split_samples", "fill_missing")

_define("load_csv_model", r'''
def load_data(path):
    """The table's raw model inputs and target, split into training, validation and test
    rows: "numeric" holds the numbers as written (NaN where missing; the model's
    FillMissing and Normalization fill and scale them) and each categorical column gives
    codes of its own Input: 1.. for the training rows' sorted categories (VOCABULARIES,
    filled in here), 0 for a value the training rows do not have. NUMERIC_COLUMNS,
    CATEGORY_INPUTS and CLASS_NAMES (how encode_rows reads raw rows) are filled in too."""
    y, classes, kept, used = table_columns(path)
    blocks, categories, taken = [], {}, {"numeric"}
    NUMERIC_COLUMNS.clear()
    CATEGORY_INPUTS.clear()
    VOCABULARIES.clear()
    CLASS_NAMES[:] = classes or []
    for name, role, numbers, text, column in used:
        if role == "categorical":
            text = text if text is not None else text_values(column, MERGES.get(name))
            filled = pc.fill_null(text, pa.scalar(MISSING_CATEGORY, pa.string()))
            categories[input_name(name, taken)] = (name, filled)
            continue
        encoded = encode_feature(name, role, numbers, text, column)
        blocks += [block for block, _, _ in encoded]
        block_names = [n for _, names, _ in encoded for n in names]
        NUMERIC_COLUMNS.append(numeric_column(name, role, numbers, text, block_names))
    train, validation, test = split_samples(path, y, classes, kept)
    x = {"numeric": np.concatenate(blocks, axis=1)} if blocks else {}
    for key, (name, text) in categories.items():
        VOCABULARIES[name] = sorted(set(text.take(pa.array(train)).to_pylist()))
        CATEGORY_INPUTS[name] = key
        x[key] = category_codes(text, VOCABULARIES[name])
    return tuple(({k: v[part] for k, v in x.items()}, y[part])
                 for part in (train, validation, test))
''', "table_columns", "encode_feature", "split_samples", "input_name",
        "category_codes", "numeric_column")

# How the samples are split: "split_samples" is one of these, as the project reads the table
# (DataSettings.stream_table: kbuilder streams it and splits rows by a hash of their line).
_define("split_samples_shuffled", r'''
def split_samples(path, y, classes, kept):
    """The rows for training, validation and test: seeded, each class in proportion."""
    return split_rows(len(y), labels=None if classes is None else y)
''', "split_rows")

_define("split_samples_hashed", r'''
def split_samples(path, y, classes, kept):
    """The rows for training, validation and test, as kbuilder splits a table it streams:
    each row by a hash of its line in the file and SPLIT_SEED (not stratified), so that a
    row keeps its split whatever else the file holds. This script reads the whole table;
    kbuilder streamed it (read in blocks), with the same rows in each split."""
    lines = row_lines(path)
    if len(kept) and len(lines) <= int(kept.max()):
        raise SystemExit(f"{path}: found the lines of {len(lines)} rows but read more rows.")
    split = split_of(lines[kept])
    return tuple(np.flatnonzero(split == part) for part in range(3))
''', "split_of")  # and row_lines: the file format's

_define("split_of", r'''
def split_of(lines):
    """Each row's split from its line: 0 train, 1 validation, 2 test. The line and
    SPLIT_SEED are mixed by splitmix64 into a number u in [0, 1); u < TEST_SPLIT is a test
    row, u < TEST_SPLIT + VALIDATION_SPLIT a validation row, the rest train."""
    with np.errstate(over="ignore"):  # the mixing wraps around 2**64 on purpose
        z = (lines.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
             + np.uint64(SPLIT_SEED + 1) * np.uint64(0xBF58476D1CE4E5B9))
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    u = (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)  # the top 53 bits
    split = np.zeros(len(lines), dtype=np.int8)
    split[u < TEST_SPLIT + VALIDATION_SPLIT] = 1
    split[u < TEST_SPLIT] = 2
    return split
''')

_define("row_lines_csv", r'''
def row_lines(path):
    """The line of the file each row of read_table ends on (1-based, the header counted):
    the records after the first SKIP_ROWS, blank ones left out as read_csv leaves them."""
    encoding = "utf-8-sig" if ENCODING.lower() in ("utf8", "utf-8") else ENCODING
    lines = []
    with open(path, encoding=encoding, errors="replace", newline="") as file:
        reader = csv.reader(file, delimiter=DELIMITER)
        for i, record in enumerate(reader):
            if i >= SKIP_ROWS and any(cell.strip(" \t\r\"") for cell in record):
                lines.append(reader.line_num)
    return np.asarray(lines, dtype=np.int64)
''')

_define("row_lines_parquet", r'''
def row_lines(path):
    """Each row's number in the file, 1-based: a Parquet row's "line"."""
    return np.arange(1, pq.ParquetFile(path).metadata.num_rows + 1, dtype=np.int64)
''')

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

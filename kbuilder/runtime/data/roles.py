"""The role of each column of a table, and the table encoded by those roles.

``column_roles`` says what each column is — numbers, categories, a yes/no flag, a date, an
identifier or free text, empty — and why, in a sentence a domain expert can check. The
loader encodes the table by these roles (``encode_table``) and the Data tab's column table
shows the very same records, so what the user sees is what the model gets. The user can
override any role (``DataSettings.roles``) and accept the suggested merges of messy
category spellings (``DataSettings.merges``).

Encodings (features of the ``Dataset``, float32):
    * numeric, boolean: the value (boolean: 1 for true/yes, 0 for false/no); missing values
      are filled after the split with the training rows' median;
    * categorical: one 0/1 column per category, ``column=value``, sorted; a missing value
      is its own category ``(missing)``;
    * datetime: ``column.year``, ``.month``, ``.day_of_week`` (Monday 0), ``.day_of_year``
      and, when any value has a time of day, ``.hour``; missing ones filled like numbers;
    * identifier, free text, empty, ignore: left out (the notes say why).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from kbuilder.graph.settings import DataSettings, SettingsError
from kbuilder.runtime.data.arrow_numpy import from_numpy, to_numpy
from kbuilder.runtime.data.columns import (
    MISSING_CATEGORY,
    Encoded,
    Numbers,
    apply_merges,
    as_numbers,
    category_ranks,
    check_float32,
    date_parts,
    looks_like_identifier,
    target_values,
    text_values,
)
from kbuilder.runtime.data.dataset import DataError
from kbuilder.runtime.data.image_paths import looks_like_image_paths, with_image_columns
from kbuilder.runtime.data.row_encoder import model_raw
from kbuilder.runtime.data.split import Raw
from kbuilder.runtime.data.tables import Table, read_table, require_columns

ROLES = ("numeric", "categorical", "boolean", "datetime", "identifier", "text", "empty",
         "image_path", "target", "ignore")
USED_ROLES = ("numeric", "categorical", "boolean", "datetime")
SHOWN_CATEGORIES = 6
# Whole numbers with at most this many values might be category codes (the role says so).
CODE_VALUES = 10
_TRUE = {"true", "yes", "y", "t"}
_FALSE = {"false", "no", "n", "f"}
_ID_NAME = re.compile(r"(?i)^(id|.*[_ .-]id|.*identifier|uuid|guid|row_?id|index)$")
_ISO_DATE = re.compile(
    r"\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?")
# A one-hot block larger than this is refused with a sentence rather than allocated.
ONE_HOT_LIMIT = 2 << 30


@dataclass(frozen=True)
class ColumnRole:
    """What a column of a table is, as the loader encodes it.

    Attributes:
        name: the column's name.
        role: one of ``ROLES``; ``used`` says whether it becomes features.
        reason: why, in a sentence (shown next to the column, and as the loader's note
            when the column is left out).
        inferred: the role kbuilder inferred, before the user's choice.
        missing: empty cells and missing markers (``NA``, ``?``, ``-``...).
        distinct: different present values.
        examples: a few present values, as written.
        merges: suggested merges of spellings of one category, ``(value, becomes)``.
        first_text: a numeric column's first cell that is not a number, and its line.
        numbers: whether the present values are numbers (but for ``first_text``).
    """

    name: str
    role: str
    reason: str
    inferred: str
    missing: int = 0
    distinct: int = 0
    examples: tuple[str, ...] = ()
    merges: tuple[tuple[str, str], ...] = ()
    first_text: tuple[str, int] | None = None
    numbers: bool = False

    @property
    def used(self) -> bool:
        return self.role in USED_ROLES


@dataclass
class _Column:
    """A role with what was computed to decide it (reused to encode the column)."""

    role: ColumnRole
    numbers: Numbers | None = None
    text: Any = None  # pyarrow strings (stripped, missing as null)
    counts: dict[str, int] | None = None
    encoded: Encoded | None = None  # the same text as codes, where it repeats a few values


def column_roles(table: Table, settings: DataSettings | None = None,
                 target: str | None = None) -> list[ColumnRole]:
    """The role of every column of ``table`` (the target's role is ``"target"``)."""
    settings = settings or DataSettings()
    return [analyse_column(table, name, settings, name == target).role for name in table.header]


def analyse_column(table: Table, name: str, settings: DataSettings, is_target: bool,
             rows: np.ndarray | None = None, chosen: bool = False) -> _Column:
    import pyarrow as pa

    column = table.columns[name]
    if rows is not None and len(rows) != len(column):
        column = column.take(from_numpy(rows))
    n = len(column)
    override = settings.role_overrides().get(name)
    if name in settings.categorical:
        override = "categorical"
    merges = settings.merge_map().get(name, {})
    if pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
        missing = column.null_count
        return _Column(_role(name, "datetime", override, missing, n - missing, (),
                             "dates: expanded to year, month, day of week and day of year"))
    numbers = None
    if override in (None, "numeric") and not merges:
        numbers = as_numbers(column, table.decimal)
    if numbers is not None and not (numbers.bad and override is None
                                    and numbers.bad >= _present(numbers) / 2):
        count = numbers.present()
        missing = n - count - numbers.bad
        if is_target:
            values = numbers.values
            return _Column(dataclasses.replace(_role(
                name, "target", None, missing, len(np.unique(values[~np.isnan(values)])),
                (), "the column to predict"), numbers=True), numbers)
        if not count and not numbers.bad:
            return _Column(_role(name, "empty", override, missing, 0, (),
                                 "the column is empty: left out"), numbers)
        # Whole numbers? The first thousand values usually tell (measurements are not);
        # only then are all of them looked at.
        head = numbers.head(1000)
        finite = None
        whole = bool(np.all(head == np.round(head)))
        if whole or count <= 20_000:
            finite = numbers.values[~np.isnan(numbers.values)]
            whole = whole and bool(np.all(finite == np.round(finite)))
        # Distinct values are counted for whole numbers (codes, flags, identifiers) and
        # small columns; a million measurements need no sort to be numbers.
        if whole or count <= 20_000:
            distinct = np.unique(finite)
        else:
            distinct = np.unique(head[:SHOWN_CATEGORIES * 100])
        examples = tuple(_number_text(v) for v in distinct[:SHOWN_CATEGORIES])
        first_text = None
        if numbers.bad:
            first_text = (numbers.first_text or "", int(table.lines[numbers.first_bad]))
            if rows is not None:
                first_text = (first_text[0], int(table.lines[rows[numbers.first_bad]]))
        whole = whole and count > 0
        if pa.types.is_boolean(column.type) or (whole and set(distinct) <= {0.0, 1.0}
                                                 and len(distinct) == 2):
            role, reason = "boolean", "yes/no values (0 and 1)"
        elif whole and len(distinct) == count and count >= 20 \
                and _ID_NAME.match(name) and not chosen:
            role, reason = "identifier", (f"{len(distinct)} different whole numbers, one per "
                                          "row, like an identifier: left out")
        elif whole and len(distinct) <= CODE_VALUES and count >= 4 * len(distinct):
            role, reason = "numeric", (f"whole numbers with {len(distinct)} values: used as "
                                       "numbers; if they are codes of categories, make it "
                                       "categorical")
        else:
            role, reason = "numeric", "numbers"
        if first_text is not None:
            reason = (f"numbers, but line {first_text[1]} holds '{first_text[0]}': correct "
                      "it, or make the column categorical")
        return _Column(ColumnRole(name, override or role, reason, role, missing,
                                  len(distinct), examples, (), first_text, True), numbers)
    # text
    text = numbers.text if numbers is not None and numbers.text is not None \
        else text_values(column)
    encoded = numbers.encoded if numbers is not None else None
    if merges:
        text, encoded = apply_merges(text, merges), None
    missing = text.null_count
    counts = encoded.counts() if encoded is not None else _value_counts(text)
    distinct = len(counts)
    examples = tuple(list(counts)[:SHOWN_CATEGORIES])
    if is_target:
        return _Column(_role(name, "target", None, missing, distinct, examples,
                             "the column to predict", _suggest_merges(counts)), None, text,
                       counts, encoded)
    if not distinct:
        return _Column(_role(name, "empty", override, missing, 0, (),
                             "the column is empty: left out"), None, text, counts, encoded)
    lowered = {v.lower() for v in counts}
    categories = distinct + (1 if missing else 0)
    if len(counts) == 2 and (lowered <= _TRUE | _FALSE) and lowered & _TRUE \
            and lowered & _FALSE:
        role, reason = "boolean", "yes/no values"
    elif counts and looks_like_image_paths(list(counts)[:200], table.path):
        role, reason = "image_path", ("image files: they feed the model's image Input, "
                                      "read from disk as it trains")
    elif counts and _is_dates(counts):
        role, reason = "datetime", ("dates: expanded to year, month, day of week and day of "
                                    "year (make it 'ignore' to leave it out)")
    elif looks_like_identifier(categories, n) and not chosen:
        words = sum(len(v.split()) * c for v, c in counts.items()) / max(1, n - missing)
        if words >= 3:
            role = "text"
            reason = (f"{distinct} different texts of several words, like free text: left "
                      "out unless you use it")
        else:
            role = "identifier"
            reason = (f"{distinct} different text values, like an identifier: left out "
                      "unless you use it")
    else:
        role, reason = "categorical", f"text with {distinct} categories: one-hot encoded"
    return _Column(ColumnRole(name, override or role, reason, role, missing, distinct,
                              examples, _suggest_merges(counts)), None, text, counts, encoded)


def _role(name: str, role: str, override: str | None, missing: int, distinct: int,
          examples: tuple[str, ...], reason: str,
          merges: tuple[tuple[str, str], ...] = ()) -> ColumnRole:
    return ColumnRole(name, override or role, reason, role, missing, distinct, examples,
                      merges)


def _present(numbers: Numbers) -> int:
    return numbers.present() + numbers.bad


def _number_text(value: float) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:g}"


def _value_counts(text: Any) -> dict[str, int]:
    """Present values and their counts, most frequent first (ties: first seen)."""
    import pyarrow.compute as pc

    counted = pc.value_counts(text.drop_null() if hasattr(text, "drop_null") else text)
    values = counted.field("values").to_pylist()
    counts = counted.field("counts").to_pylist()
    pairs = [(v, c) for v, c in zip(values, counts, strict=True) if v is not None]
    pairs.sort(key=lambda p: -p[1])
    return dict(pairs)


def _is_dates(counts: dict[str, int]) -> bool:
    sample = sorted(counts)[:200]  # sorted: the generated script checks the same values
    return sum(bool(_ISO_DATE.fullmatch(v)) for v in sample) >= 0.95 * len(sample)


def _suggest_merges(counts: dict[str, int]) -> tuple[tuple[str, str], ...]:
    """Spellings of one category to merge, ``(value, becomes)``: the same word in other
    case or spacing (``Male``/``male``/``MALE ``), and single letters that abbreviate one
    of the other values (``M`` for ``male``). Each group becomes its most frequent spelling.
    """
    if len(counts) < 2 or len(counts) > 1000:
        return ()
    groups: dict[str, list[str]] = {}
    for value in counts:  # most frequent first
        groups.setdefault(" ".join(value.split()).casefold(), []).append(value)
    keys = list(groups)
    for key in [k for k in keys if len(k) == 1]:
        longer = [k for k in keys if len(k) > 1 and k.startswith(key)]
        if len(longer) == 1 and longer[0] in groups and key in groups:
            groups[longer[0]] += groups.pop(key)
    out = []
    for values in groups.values():
        # The most frequent spelling; on a tie the longest, in lower case ('male').
        best = max(values, key=lambda v: (counts[v], len(v), v == v.lower(), v))
        out += [(v, best) for v in sorted(values) if v != best]
    return tuple(sorted(out, key=lambda pair: (pair[1], pair[0])))


# ======================================================================== encoding
def target_and_features(table: Table, settings: DataSettings, spec_target: str | None,
                        notes: list[str]) -> tuple[str, list[str]]:
    """The column to predict (the last one when none is chosen, said in ``notes``) and
    the feature columns; every column the settings name must be in ``table``."""
    target = settings.target or spec_target
    if target is None:
        target = table.header[-1]
        notes.append(f"No target column was chosen; using the last column '{target}'.")
    require_columns(table, [target])
    if settings.features is not None:
        require_columns(table, list(settings.features))
        if target in settings.features:
            raise DataError(
                f"Column '{target}' of {table.name} is both the target and a feature; "
                "the model must not see the answer. Remove it from the features.",
                path=table.path, column=target,
            )
        features = list(settings.features)
    else:
        features = [c for c in table.header if c != target]
    require_columns(table, list(settings.categorical))
    require_columns(table, [c for c, _ in settings.roles])
    return target, features


def encode_table(table: Table, settings: DataSettings, spec_target: str | None,
                 task: str | None) -> Raw:
    """The table's features and target, encoded by the columns' roles."""
    notes: list[str] = list(table.notes)
    target, features = target_and_features(table, settings, spec_target, notes)
    merges = settings.merge_map()
    y, task, class_names, kept, target_notes = target_values(
        table, target, merges.get(target, {}), task)
    notes += target_notes
    all_rows = len(kept) == table.num_rows
    blocks: list[np.ndarray] = []
    names: list[str] = []
    missing: list[dict[str, Any]] = []
    impute: list[int] = []
    explicit_features = settings.features is not None
    image_columns: list[tuple[str, Any]] = []
    in_model = settings.table_encoding == "model"
    model_inputs: list[tuple[str, dict[str, Any]]] = []  # in model mode: (kind, spec)
    for name in features:
        chosen = explicit_features or name in settings.categorical \
            or name in settings.role_overrides()
        info = analyse_column(table, name, settings, False, None if all_rows else kept, chosen)
        role = info.role
        if role.role == "image_path":  # not a feature: a stream for an image Input
            image_columns.append((name, info.text))
            continue
        if not role.used:
            notes.append(left_out_note(role))
            continue
        if in_model:
            model_inputs.append(_model_column(table, info, kept, all_rows, names, blocks,
                                              missing))
            continue
        for block, block_names, entry in encode_column(table, info, kept, all_rows):
            if entry is not None:
                if entry.get("filled_with") == "median":
                    entry["index"] = len(names)  # filled after the split, see finish
                    impute.append(len(names))
                missing.append(entry)
            blocks.append(block)
            names += block_names
    if in_model and model_inputs:
        # Image-path columns feed image Inputs beside the table's (row_encoder.images).
        return model_raw(table, settings, model_inputs, blocks, names, missing, kept, y,
                         task, class_names, notes, image_columns)
    if not blocks and not image_columns:
        raise DataError(
            f"{table.name} has no usable feature columns besides the target '{target}'.",
            path=table.path,
        )
    # Column by column into a column-major array: contiguous writes (np.concatenate of
    # (n, 1) blocks along axis 1 is six times slower); the split's row selection makes
    # the usual row-major arrays of the Dataset.
    x: Any = np.empty((len(kept), len(names)), dtype=np.float32, order="F")
    at = 0
    while blocks:
        block = blocks.pop(0)
        x[:, at:at + block.shape[1]] = block
        at += block.shape[1]
    table_key = None
    if image_columns:
        x, table_key, image_notes = with_image_columns(table, x, image_columns, kept, settings)
        notes += image_notes
    return Raw(
        x, y, task, table.name, table_key=table_key,
        class_names=class_names,
        num_classes=len(class_names) if class_names else None,
        feature_names=names, impute_columns=impute, missing=missing, notes=notes,
        row_ids=np.asarray(table.lines[kept]), row_label=table.row_label, x_owned=True,
    )


def _model_column(table: Table, info: _Column, kept: np.ndarray, all_rows: bool,
                  names: list[str], blocks: list[np.ndarray],
                  missing: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """One used column for a model that preprocesses inside itself (``row_encoder``):
    numeric blocks (NaN kept) appended to ``blocks``/``names``, or a categorical column's
    text; returns (kind, its record)."""
    role, name = info.role, info.role.name
    if role.role == "categorical":
        text = info.text if info.text is not None else text_values(
            _rows(table.columns[name], kept, all_rows))
        if text.null_count:
            missing.append({"column": name, "count": text.null_count,
                            "filled_with": MISSING_CATEGORY})
        return "category", {"column": name, "text": text, "encoded": info.encoded}
    spec: dict[str, Any] = {"column": name, "kind": "number"}
    if role.role == "datetime":
        spec = {"column": name, "kind": "date", "parts": []}
    elif role.role == "boolean" and info.numbers is None:
        text = info.text if info.text is not None else text_values(
            _rows(table.columns[name], kept, all_rows))
        true, false = boolean_words(text)
        spec = {"column": name, "kind": "boolean", "true": true, "false": false}
    for block, block_names, entry in encode_column(table, info, kept, all_rows):
        if entry is not None:
            if entry.get("filled_with") == "median":
                entry["filled_with"] = "in the model (FillMissing: the training median)"
            missing.append(entry)
        if spec["kind"] == "date":
            spec["parts"].append(block_names[0].rsplit(".", 1)[1])
        blocks.append(block)
        names += block_names
    return "numeric", spec


def boolean_words(text: Any) -> tuple[list[str], list[str]]:
    """The lowered words a yes/no column reads as 1 and as 0 (as ``_boolean`` reads them)."""
    import pyarrow.compute as pc

    words = pc.dictionary_encode(text).combine_chunks().dictionary.to_pylist()
    lowered = sorted({v.lower() for v in words})
    if set(lowered) <= _TRUE | _FALSE:
        return sorted(set(lowered) & _TRUE), sorted(set(lowered) & _FALSE)
    return lowered[1:], lowered[:1]


def left_out_note(role: ColumnRole) -> str:
    if role.role == "empty":
        return f"Column '{role.name}' is empty and was left out."
    if role.role == "ignore":
        return f"Column '{role.name}' was left out, as chosen."
    if role.role == "identifier" and role.first_text is None and role.examples and all(
        v.lstrip("-").isdigit() for v in role.examples
    ):
        return (f"Column '{role.name}' numbers the rows ({role.distinct} different whole "
                "numbers), like an identifier, and was left out. Choose it as a feature to "
                "use it anyway.")
    if role.role in ("identifier", "text"):
        categories = role.distinct + (1 if role.missing else 0)
        return (f"Column '{role.name}' has {categories} different text values, like an "
                "identifier or free text, and was left out. Choose it as a feature or mark "
                "it categorical to use it anyway.")
    return f"Column '{role.name}' was left out: {role.reason}."


def _median_entry(name: str, count: int) -> dict[str, Any] | None:
    return {"column": name, "count": count, "filled_with": "median"} if count else None


def encode_column(table: Table, info: _Column, kept: np.ndarray, all_rows: bool):
    """Blocks of float32 features for one column: (block, names, missing entry)."""

    role, name = info.role, info.role.name
    lines = None if all_rows else kept
    if role.role in ("numeric", "boolean") and info.numbers is not None:
        numbers = info.numbers
        if numbers.bad:
            i = numbers.first_bad
            row = int(kept[i]) if not all_rows else i
            raise DataError(
                f"{table.where(row)}, column '{name}': '{numbers.first_text}' is not a "
                "number. Correct it, leave the cell empty for a missing value, or mark the "
                "column as categorical.",
                path=table.path, column=name, line=int(table.lines[row]),
            )
        block = numbers.float32()[:, None]
        if np.isinf(block).any():  # too large for float32 (or infinite): say where
            check_float32(table, name, numbers.values, lines, table.columns[name])
        n_missing = int(np.count_nonzero(np.isnan(block)))  # 3x faster than .sum()
        yield block, [name], _median_entry(name, n_missing)
        return
    if role.role == "boolean":
        text = info.text if info.text is not None else text_values(
            _rows(table.columns[name], kept, all_rows))
        yield _boolean(table, name, text, lines)
        return
    if role.role == "datetime":
        yield from date_features(table, name, _rows(table.columns[name], kept, all_rows), lines)
        return
    if role.role == "numeric":  # the user's choice, on a column of text
        numbers = as_numbers(_rows(table.columns[name], kept, all_rows), table.decimal)
        info.numbers = numbers if numbers is not None else Numbers(np.zeros(0), 1, 0, "")
        yield from encode_column(table, info, kept, all_rows)
        return
    # categorical
    text = info.text if info.text is not None else text_values(
        _rows(table.columns[name], kept, all_rows))
    yield _one_hot(name, text, info.encoded)


def _rows(column: Any, kept: np.ndarray, all_rows: bool) -> Any:

    return column if all_rows else column.take(from_numpy(kept))


def _one_hot(name: str, text: Any, encoded: Encoded | None = None,
             ) -> tuple[np.ndarray, list[str], dict[str, Any] | None]:
    n_missing = text.null_count
    categories, codes = category_ranks(text, encoded)
    size = len(codes) * len(categories) * 4
    if size > ONE_HOT_LIMIT:
        raise DataError(
            f"Column '{name}' has {len(categories):,} categories: one 0/1 column each for "
            f"{len(codes):,} rows would need {size / 1e9:.1f} GB. Leave it out, or use a "
            "column with fewer categories.", column=name)
    block = np.zeros((len(codes), len(categories)), dtype=np.float32)
    block[np.arange(len(codes)), codes] = 1.0
    entry = None
    if n_missing:
        entry = {"column": name, "count": n_missing, "filled_with": MISSING_CATEGORY}
    return block, [f"{name}={c}" for c in categories], entry


def _boolean(table: Table, name: str, text: Any, lines: np.ndarray | None):
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(text).combine_chunks()  # one string per value, not cell
    words = encoded.dictionary.to_pylist()
    lowered = sorted({v.lower() for v in words})
    if set(lowered) <= _TRUE | _FALSE:
        true = _TRUE
    elif len(lowered) <= 2:
        true = set(lowered[1:])  # two other values: the second in sorted order is 1
    else:
        raise DataError(
            f"Column '{name}' of {table.name} has {len(lowered)} different values; a yes/no "
            "column has two. Make it categorical instead.", path=table.path, column=name)
    lookup = np.asarray([float(v.lower() in true) for v in words] + [np.nan])
    slot = from_numpy(np.asarray([len(words)], str(encoded.indices.type)))[0]
    out = lookup[to_numpy(pc.fill_null(encoded.indices, slot))]
    n_missing = int(np.isnan(out).sum())
    return out.astype(np.float32)[:, None], [name], _median_entry(name, n_missing)


def date_features(table: Table, name: str, column: Any, lines: np.ndarray | None):
    parts, block, bad = date_parts(column)
    if bad:
        stamps_missing = np.isnan(block[:, 0])
        text = text_values(column).to_pylist()
        i = next(i for i, v in enumerate(text) if v is not None and stamps_missing[i])
        row = int(lines[i]) if lines is not None else i
        raise DataError(
            f"{table.where(row)}, column '{name}': '{text[i]}' is not a date (kbuilder reads "
            "dates as YYYY-MM-DD, optionally with a time). Correct it, or make the column "
            "categorical or 'ignore'.",
            path=table.path, column=name, line=int(table.lines[row]))
    for j, part in enumerate(parts):
        values = block[:, j]
        n_missing = int(np.isnan(values).sum())
        yield values.astype(np.float32)[:, None], [f"{name}.{part}"], \
            _median_entry(f"{name}.{part}", n_missing)


def load_csv(location: str, settings: DataSettings, task: str | None) -> Raw:
    """A table source as ``Raw`` features and target (see ``kbuilder.runtime.data``)."""
    try:
        spec = settings.table()
    except SettingsError as exc:
        raise DataError(str(exc)) from None
    table = read_table(spec, text_columns=settings.categorical_columns())
    return encode_table(table, settings, spec.target, task)


__all__ = ["ColumnRole", "ROLES", "USED_ROLES", "column_roles", "encode_table", "load_csv"]

"""Tables larger than memory: one pass for what training needs, then blocks encoded as the
in-memory loader encodes rows.

``scan_table(settings)`` reads the file block by block (``table_blocks``) once and keeps,
per used column, only what fitting needs: numeric columns' count, mean and variance (of the
training rows, merged block by block with Chan's formula), minimum, maximum, missing count
and a seeded reservoir sample of the training rows for the median fill (``table_stats``);
text columns' vocabularies with counts (bounded: past ``VOCABULARY_CAP`` values a column
is an identifier or free text, as ``roles.py`` decides); the target's classes. The roles are those
``roles.py`` gives the first block (a file that fits in one block gets exactly the
in-memory roles); categories, classes and fill values are those of the whole file.

Splitting needs no shuffle of the table: each row's split follows from a hash of its line
(row number for Parquet) and the seed, so a row is in the same split whatever else the file
holds, and a block knows its rows' splits by itself. ``StreamPlan.encode`` then gives a
block's features and targets as ``roles.encode_table`` and ``split.finish`` give the same
rows (``tests/runtime/test_table_stream.py`` compares them); ``table_splits`` makes the
``Dataset`` of it, and ``table_feed.TableBatches`` feeds its splits to Keras.

Kept in memory: the targets, one number per row (for class counts, baselines and the
summary); the features never are.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kbuilder.graph.settings import DataSettings, SettingsError
from kbuilder.runtime.data import roles as role_rules
from kbuilder.runtime.data.arrow_numpy import from_numpy
from kbuilder.runtime.data.columns import (
    DATE_PARTS,
    MISSING_CATEGORY,
    apply_merges,
    as_numbers,
    check_float32,
    date_parts,
    looks_like_identifier,
    text_values,
)
from kbuilder.runtime.data.dataset import DataError
from kbuilder.runtime.data.labels import CLASS_LABEL_LIMIT, encode_labels
from kbuilder.runtime.data.roles import boolean_words, date_features
from kbuilder.runtime.data.row_encoder import NUMERIC_INPUT, RAW_INPUTS_NOTE, RowEncoder, input_name
from kbuilder.runtime.data.table_blocks import BLOCK_BYTES, BlockReader, open_blocks
from kbuilder.runtime.data.table_stats import (
    RESERVOIR_SIZE,
    VOCABULARY_CAP,
    NumericColumn,
    Reservoir,
    Vocabulary,
    word_codes,
)
from kbuilder.runtime.data.tables import Table

SPLITS = ("train", "validation", "test")


# ============================================================================ plan
@dataclass
class Feature:
    """A used column: how it is encoded (``kind``) and what the pass found."""

    column: str
    kind: str  # "number", "boolean_text", "category", "date"
    numbers: list[NumericColumn] = field(default_factory=list)  # number, boolean, date parts
    vocabulary: Vocabulary | None = None
    true_words: frozenset[str] = frozenset()  # boolean_text: lowered words read as 1
    false_words: frozenset[str] = frozenset()  # and as 0
    categories: list[str] = field(default_factory=list)  # category: sorted, (missing) too
    chosen: bool = False  # the user's choice: kept whatever its number of values

    @property
    def names(self) -> list[str]:
        if self.kind == "category":
            return [f"{self.column}={c}" for c in self.categories]
        return [n.name for n in self.numbers]


@dataclass
class StreamPlan:
    """What one pass over a table found, and how its blocks become samples."""

    reader: BlockReader
    settings: DataSettings
    target: str
    task: str
    features: list[Feature]
    class_names: list[str] | None
    classes: np.ndarray | None  # numeric class labels, sorted (text: None)
    class_index: dict[str, int] | None  # text class labels -> id
    notes: list[str]
    missing: list[dict[str, Any]]
    # Per block, the kept rows in each split (train, validation, test).
    counts: np.ndarray
    y: dict[str, np.ndarray]  # by split
    lines: dict[str, np.ndarray]  # "test": the line (row) of each test sample
    merges: dict[str, dict[str, str]] = field(default_factory=dict)
    encoder: Any = None  # "model" encoding: the row_encoder.RowEncoder of the inputs

    @property
    def feature_names(self) -> list[str]:
        return [n for f in self.features for n in f.names]

    @property
    def width(self) -> int:
        return len(self.feature_names)

    def fill_values(self) -> np.ndarray:
        """Per feature, the value a missing one becomes (NaN: never missing)."""
        out = []
        for f in self.features:
            if f.kind == "category":
                out += [np.nan] * len(f.categories)
            else:
                out += [n.fill_value() if n.missing else np.nan for n in f.numbers]
        return np.asarray(out, dtype=np.float32)

    def moments(self, numeric_only: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of every encoded feature over the training rows, with the
        missing values filled: what ``Normalization.adapt`` on the training split gives
        (``numeric_only``: of the "model" encoding's numeric input)."""
        means, variances = [], []
        n_train = int(self.counts[:, 0].sum())
        for f in self.features:
            if f.kind == "category" and numeric_only:
                continue
            if f.kind == "category":
                vocabulary = f.vocabulary
                for c in f.categories:
                    count = vocabulary.train_missing if c == MISSING_CATEGORY and \
                        c not in vocabulary.train else vocabulary.train.get(c, 0)
                    p = count / n_train if n_train else 0.0
                    means.append(p)
                    variances.append(p * (1 - p))
                continue
            for n in f.numbers:
                m = dataclasses.replace(n.train)
                if n.train_missing and (n.missing or numeric_only):  # filled: one value
                    m.merge(n.train_missing, n.fill_value(), 0.0)
                means.append(m.mean)
                variances.append(m.variance)
        return np.asarray(means), np.asarray(variances)

    # ------------------------------------------------------------------ encoding
    def encode(self, table: Table, fill: bool = True) -> tuple[Any, np.ndarray, np.ndarray,
                                                               np.ndarray]:
        """A block's (x, y, lines, split codes 0/1/2) for its rows with a target.

        ``x`` is float32 ``(n, width)`` for the "flat" encoding, with missing numbers the
        training medians (``fill``; else NaN, as ``roles.encode_table`` leaves them before
        ``split.finish``); for the "model" encoding the dict of inputs ``row_encoder``
        describes (numbers with NaN, category codes of the training vocabulary)."""
        y, kept = self._targets(table)
        lines = table.lines[kept]
        split = split_of(lines, self.settings)
        if self.encoder is not None:
            return self._model_inputs(table, kept), y, lines, split
        x = np.empty((len(kept), self.width), dtype=np.float32, order="F")
        at = 0
        for f in self.features:
            block = self._encode_feature(table, f, kept)
            x[:, at:at + block.shape[1]] = block
            at += block.shape[1]
        if fill:
            fills = self.fill_values()
            gaps = ~np.isnan(fills)
            if gaps.any():
                mask = np.isnan(x) & gaps
                np.copyto(x, np.broadcast_to(fills, x.shape), where=mask)
        return np.ascontiguousarray(x), y, lines, split

    def _model_inputs(self, table: Table, kept: np.ndarray) -> dict[str, np.ndarray]:
        numeric = [f for f in self.features if f.kind != "category"]
        x: dict[str, np.ndarray] = {}
        if numeric:
            x[NUMERIC_INPUT] = np.concatenate(
                [self._encode_feature(table, f, kept) for f in numeric], axis=1)
        for spec, f in zip(self.encoder.categories,
                           [f for f in self.features if f.kind == "category"], strict=True):
            x[spec["input"]] = self._codes(table, f, kept, spec["vocabulary"])
        return x

    def _codes(self, table: Table, f: Feature, kept: np.ndarray,
               vocabulary: list[str]) -> np.ndarray:
        """A category column's codes: 1 + the position in the training rows' sorted
        vocabulary, 0 for a value they do not have (as ``row_encoder`` codes)."""
        column = table.columns[f.column]
        if len(kept) != len(column):
            column = column.take(from_numpy(kept))
        words, codes = word_codes(_text(column, self.merges.get(f.column)))
        position = {c: i + 1 for i, c in enumerate(vocabulary)}
        lookup = np.asarray([position.get(w, 0) for w in words]
                            + [position.get(MISSING_CATEGORY, 0)], np.int32)
        return lookup[codes].reshape(-1, 1)

    def _targets(self, table: Table) -> tuple[np.ndarray, np.ndarray]:
        raw = table.columns[self.target]
        if self.class_index is not None:
            words, codes = word_codes(_text(raw, self.merges.get(self.target)))
            lookup = np.asarray([self.class_index[w] for w in words] + [-1], np.int32)
            kept = np.flatnonzero(codes < len(words))
            return lookup[codes[kept]], kept
        numbers = _target_numbers(table, self.target)
        kept = np.flatnonzero(~np.isnan(numbers))
        values = numbers[kept]
        if self.task == "regression":
            return values.astype(np.float32), kept
        return np.searchsorted(self.classes, values).astype(np.int32), kept

    def _encode_feature(self, table: Table, f: Feature, kept: np.ndarray) -> np.ndarray:
        column = table.columns[f.column]
        if len(kept) != len(column):
            column = column.take(from_numpy(kept))
        if f.kind == "number":
            values = _feature_numbers(table, f.column, column, kept)
            return values.astype(np.float32)[:, None]
        if f.kind == "boolean_text":
            return _zero_one(_text(column, self.merges.get(f.column)),
                             f.true_words).astype(np.float32)[:, None]
        if f.kind == "date":
            parts, values, _ = date_parts(column)
            wanted = [n.name.rsplit(".", 1)[1] for n in f.numbers]
            block = np.full((len(kept), len(wanted)), np.nan, dtype=np.float64)
            for j, part in enumerate(wanted):
                if part in parts:
                    block[:, j] = values[:, parts.index(part)]
                else:  # no time of day in this block: hour 0 where there is a date
                    block[:, j] = np.where(np.isnan(values[:, 0]), np.nan, 0.0)
            return block.astype(np.float32)
        # category: one 0/1 column per category of the whole file, sorted
        words, cells = word_codes(_text(column, self.merges.get(f.column)))
        position = {c: i for i, c in enumerate(f.categories)}
        missing = position.get(MISSING_CATEGORY, -1)
        lookup = np.asarray([position.get(w, -1) for w in words] + [missing], np.int64)
        codes = lookup[cells]
        block = np.zeros((len(kept), len(f.categories)), dtype=np.float32)
        rows = np.flatnonzero(codes >= 0)  # a value the pass did not count: all zeros
        block[rows, codes[rows]] = 1.0
        return block


def _zero_one(text: Any, true_words: frozenset[str]) -> np.ndarray:
    """A yes/no column as 1.0/0.0 (NaN where missing), float64."""
    words, codes = word_codes(text)
    lookup = np.asarray([float(w.lower() in true_words) for w in words] + [np.nan])
    return lookup[codes]


def _text(column: Any, merges: dict[str, str] | None) -> Any:
    text = text_values(column)
    return apply_merges(text, merges) if merges else text


def _target_numbers(table: Table, column: str) -> np.ndarray:
    numbers = as_numbers(table.columns[column], table.decimal)
    if numbers is None:
        raise DataError(f"The target '{column}' of {table.name} holds dates; choose a "
                        "column of classes or numbers.", path=table.path, column=column)
    if numbers.bad:
        i = numbers.first_bad
        raise DataError(
            f"{table.where(i)}, column '{column}': '{numbers.first_text}' is not a number. "
            "Correct it, leave the cell empty for a missing value, or mark the target's "
            "classes as text.", path=table.path, column=column, line=int(table.lines[i]))
    values = numbers.values
    present = np.flatnonzero(~np.isnan(values))
    check_float32(table, column, values[present], present, table.columns[column])
    return values


def _feature_numbers(table: Table, name: str, column: Any, kept: np.ndarray) -> np.ndarray:
    numbers = as_numbers(column, table.decimal)
    if numbers is None or numbers.bad:
        i = numbers.first_bad if numbers is not None else 0
        row = int(kept[i])
        written = numbers.first_text if numbers is not None else str(column[i])
        raise DataError(
            f"{table.where(row)}, column '{name}': '{written}' is not a number. Correct it, "
            "leave the cell empty for a missing value, or mark the column as categorical.",
            path=table.path, column=name, line=int(table.lines[row]))
    values = numbers.values
    with np.errstate(invalid="ignore"):
        if np.any(np.abs(values) > np.finfo(np.float32).max):
            check_float32(table, name, values, kept, column)
    return values


# ============================================================================ split
_MIX = np.uint64(0x9E3779B97F4A7C15)


def split_of(lines: np.ndarray, settings: DataSettings) -> np.ndarray:
    """Each row's split, 0 train / 1 validation / 2 test, from its line and the seed
    (splitmix64: a row keeps its split whatever else the file holds)."""
    with np.errstate(over="ignore"):
        z = lines.astype(np.uint64) * _MIX + np.uint64(settings.seed + 1) * np.uint64(
            0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    u = (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    out = np.zeros(len(lines), dtype=np.int8)
    out[u < settings.test_split + settings.validation_split] = 1
    out[u < settings.test_split] = 2
    return out


# ============================================================================= scan
def wanted(settings: DataSettings) -> bool:
    """Whether the table source of ``settings`` is to be streamed (``stream=auto``: by
    the file's size against the computer's memory, ``graph/stream_choice.py``)."""
    from kbuilder.graph.stream_choice import stream_choice

    try:
        return stream_choice(settings.table()).stream
    except SettingsError:
        return False


def scan_table(settings: DataSettings, task: str | None = None,
               block_bytes: int = BLOCK_BYTES) -> StreamPlan:
    """One pass over the table ``settings`` name: roles, statistics, classes, splits.

    ``block_bytes``: about how much of a CSV file one block holds (tests use small ones).

    Raises:
        DataError: the file cannot be read, a value cannot be used (named by line and
            column), or the table does not make a dataset.
    """
    try:
        spec = settings.table()
    except SettingsError as exc:
        raise DataError(str(exc)) from None
    reader = open_blocks(spec, settings.categorical_columns(), block_bytes)
    first = reader.read(reader.blocks[0])
    notes = list(reader.notes)
    target, names = role_rules.target_and_features(first, settings, spec.target, notes)
    merges = settings.merge_map()
    rng = np.random.default_rng(settings.seed)
    features: list[Feature] = []
    for name in names:
        chosen = settings.features is not None or name in settings.categorical \
            or name in settings.role_overrides()
        info = role_rules.analyse_column(first, name, settings, False, None, chosen)
        role = info.role
        if role.role == "image_path":
            raise DataError(f"Column '{name}' of {first.name} holds image paths, which a "
                            "streamed table does not read yet. Turn stream_table off.",
                            path=first.path, column=name)
        if not role.used:
            judged = "" if len(reader.blocks) == 1 else \
                f" (judged from the file's first {first.num_rows:,} rows)"
            notes.append(role_rules.left_out_note(role)[:-1] + judged + ".")
            continue
        features.append(dataclasses.replace(_feature(name, role.role, info, rng),
                                            chosen=chosen))
    if not features:
        raise DataError(f"{first.name} has no usable feature columns besides the target "
                        f"'{target}'.", path=first.path)
    text_target = as_numbers(first.columns[target], first.decimal)
    text_target = bool(merges.get(target)) or text_target is None or (
        text_target.bad > 0 and text_target.bad >= _present(text_target) / 2)
    if text_target and task == "regression":
        raise DataError(f"The target '{target}' of {first.name} holds text; it cannot be "
                        "predicted as a number.", path=first.path, column=target)
    state = _Pass(reader, settings, target, features, text_target, merges)
    for block in reader.blocks:
        state.add(first if block.index == 0 else reader.read(block))
        first = None  # the first block's memory goes with the next
    return state.plan(task, notes)


def _present(numbers: Any) -> int:
    return int((~np.isnan(numbers.values)).sum()) + numbers.bad


def _feature(name: str, role: str, info: Any, rng: np.random.Generator) -> Feature:
    if role == "categorical":
        return Feature(name, "category", vocabulary=Vocabulary())
    if role == "datetime":
        return Feature(name, "date", [_numeric(f"{name}.{p}", rng) for p in DATE_PARTS])
    if role == "boolean" and info.numbers is None:
        true, false = boolean_words(info.text)  # as the first block reads its words
        return Feature(name, "boolean_text", [_numeric(name, rng)],
                       true_words=frozenset(true), false_words=frozenset(false))
    return Feature(name, "number", [_numeric(name, rng)])


def _numeric(name: str, rng: np.random.Generator) -> NumericColumn:
    return NumericColumn(name, sample=Reservoir(RESERVOIR_SIZE, rng))


class _Pass:
    """The one pass: each block's rows added to the statistics."""

    def __init__(self, reader: BlockReader, settings: DataSettings, target: str,
                 features: list[Feature], text_target: bool,
                 merges: dict[str, dict[str, str]]):
        self.reader, self.settings, self.target = reader, settings, target
        self.features, self.text_target, self.merges = features, text_target, merges
        # Per split, per block: the kept rows' targets (codes or values); the test rows'
        # lines (where a test sample comes from); per block, the rows of each split.
        self.targets: list[list[np.ndarray]] = [[], [], []]
        self.test_lines: list[np.ndarray] = []
        self.counts: list[np.ndarray] = []
        self.words: dict[str, int] = {}  # text target: value -> first-seen code
        self.has_hour = {f.column: False for f in features if f.kind == "date"}
        self.booleans: dict[str, set[str]] = {f.column: set() for f in features
                                              if f.kind == "boolean_text"}
        self.cells = 0

    def add(self, table: Table) -> None:
        raw = table.columns[self.target]
        if self.text_target:
            words, cells = word_codes(_text(raw, self.merges.get(self.target)))
            kept = np.flatnonzero(cells < len(words))
            lookup = np.asarray([self.words.setdefault(w, len(self.words)) for w in words]
                                + [-1], np.int32)
            codes = lookup[cells[kept]]
            if len(self.words) > VOCABULARY_CAP:
                raise DataError(f"The target '{self.target}' of {table.name} has more than "
                                f"{VOCABULARY_CAP:,} different values; a classifier needs "
                                "fewer classes.", path=table.path, column=self.target)
        else:
            numbers = _target_numbers(table, self.target)
            kept = np.flatnonzero(~np.isnan(numbers))
            codes = numbers[kept]
        lines = table.lines[kept]
        split = split_of(lines, self.settings)
        train = split == 0
        for i in range(3):
            self.targets[i].append(codes[split == i])
        self.test_lines.append(lines[split == 2])
        self.counts.append(np.bincount(split, minlength=3)[:3])
        self.cells += len(kept)
        for f in self.features:
            column = table.columns[f.column]
            if len(kept) != len(column):
                column = column.take(from_numpy(kept))
            if f.kind == "category":
                f.vocabulary.add(_text(column, self.merges.get(f.column)), train)
                continue
            if f.kind == "number":
                parts = _feature_numbers(table, f.column, column, kept)[:, None]
            elif f.kind == "boolean_text":
                text = _text(column, self.merges.get(f.column))
                words, _ = word_codes(text)
                self.booleans[f.column] |= {w.lower() for w in words}
                if len(self.booleans[f.column]) > 2:
                    raise DataError(
                        f"Column '{f.column}' of {table.name} has more than two different "
                        "values; a yes/no column has two. Make it categorical instead.",
                        path=table.path, column=f.column)
                parts = _zero_one(text, f.true_words)[:, None]
            else:
                parts = np.concatenate([b for b, _, _ in date_features(
                    table, f.column, column, None if len(kept) == table.num_rows else kept)],
                    axis=1).astype(np.float64)
                if parts.shape[1] == 5:
                    self.has_hour[f.column] = True
                else:
                    parts = np.concatenate([parts, np.where(
                        np.isnan(parts[:, :1]), np.nan, 0.0)], axis=1)
            self._numbers(f, parts, train)

    def _numbers(self, f: Feature, parts: np.ndarray, train: np.ndarray) -> None:
        for j, stats in enumerate(f.numbers):
            values = parts[:, j]
            gaps = np.isnan(values)
            stats.missing += int(gaps.sum())
            stats.train_missing += int((gaps & train).sum())
            present = values[train & ~gaps]
            stats.train.add(present)
            stats.sample.add(present.astype(np.float32))

    def plan(self, task: str | None, notes: list[str]) -> StreamPlan:
        for f in self.features:
            if f.kind == "date" and not self.has_hour[f.column]:
                f.numbers = f.numbers[:4]
        features = []
        for f in self.features:
            if f.kind == "category":
                vocabulary = f.vocabulary
                categories = len(vocabulary.counts) + (1 if vocabulary.missing else 0)
                if vocabulary.overflow and f.chosen:
                    raise DataError(
                        f"Column '{f.column}' of {self.reader.name} has more than "
                        f"{VOCABULARY_CAP:,} different values: too many categories to "
                        "one-hot encode. Leave it out.", path=str(self.reader.path),
                        column=f.column)
                if vocabulary.overflow or (not f.chosen and looks_like_identifier(
                        categories, self.cells)):
                    shown = VOCABULARY_CAP if vocabulary.overflow else categories
                    notes.append(f"Column '{f.column}' has {'more than ' * vocabulary.overflow}"
                                 f"{shown:,} different text values, like an identifier or "
                                 "free text, and was left out. Choose it as a feature or "
                                 "mark it categorical to use it anyway.")
                    continue
                f.categories = sorted(list(vocabulary.counts) + (
                    [MISSING_CATEGORY] if vocabulary.missing and MISSING_CATEGORY not in
                    vocabulary.counts else []))
            features.append(f)
        missing = _missing_entries(features)
        counts = np.asarray(self.counts, dtype=np.int64).reshape(-1, 3)
        if self.cells == 0:
            raise DataError(f"The target column '{self.target}' of {self.reader.name} has no "
                            "values.", path=str(self.reader.path), column=self.target)
        if not counts[:, 0].sum():
            raise DataError(f"{self.reader.name} has only {self.cells} sample(s): nothing is "
                            "left for training after the validation and test splits.")
        # Each split's targets in one array, block by block freed (never all rows twice).
        targets = []
        for parts in self.targets:
            targets.append(np.concatenate(parts) if parts else np.zeros(0))
            parts.clear()
        source = f"{self.reader.name} (column '{self.target}')"
        class_names = classes = class_index = None
        label_notes: list[str] = []
        if self.text_target:
            words = list(self.words)
            _, class_names, label_notes = encode_labels(np.asarray(words, dtype=str), source)
            position = {name: i for i, name in enumerate(class_names)}
            class_index = {w: position[w] for w in words}
            rank = np.asarray([class_index[w] for w in words], np.int32)
            y = [rank[t.astype(np.int64)] for t in targets]
            task = "classification"
        else:
            distinct = np.unique(np.concatenate([np.unique(t) for t in targets]))
            task = task or _numeric_task(distinct, self.cells)
            if task == "classification":
                classes = distinct
                _, class_names, label_notes = encode_labels(distinct, source)
                y = [np.searchsorted(classes, t).astype(np.int32) for t in targets]
            else:
                y = [t.astype(np.float32) for t in targets]
        notes += label_notes
        encoder = None
        if self.settings.table_encoding == "model":
            encoder = _row_encoder(features, self.merges, self.reader.decimal, class_names)
            notes.append(RAW_INPUTS_NOTE)
            for entry in missing:
                if entry["filled_with"] != MISSING_CATEGORY:
                    entry["filled_with"] = "in the model (FillMissing: the training median)"
        return StreamPlan(
            self.reader, self.settings, self.target, task, features, class_names, classes,
            class_index, notes, missing, counts,
            dict(zip(SPLITS, y, strict=True)),
            {"test": np.concatenate(self.test_lines)}, self.merges, encoder)


def _row_encoder(features: list[Feature], merges: dict[str, dict[str, str]], decimal: str,
                 class_names: list[str] | None) -> Any:
    """The ``RowEncoder`` of the "model" encoding, as ``row_encoder.model_raw`` and
    ``RowEncoder.fit_vocabularies`` make it (vocabularies: the training rows' categories)."""
    numeric = [f for f in features if f.kind != "category"]
    encoder = RowEncoder(decimal=decimal or ".", merges=dict(merges),
                         feature_names=[n for f in numeric for n in f.names],
                         class_names=list(class_names) if class_names else None)
    taken = {NUMERIC_INPUT}
    for f in features:
        if f.kind == "number":
            encoder.columns.append({"column": f.column, "kind": "number"})
        elif f.kind == "boolean_text":
            encoder.columns.append({"column": f.column, "kind": "boolean",
                                    "true": sorted(f.true_words),
                                    "false": sorted(f.false_words)})
        elif f.kind == "date":
            encoder.columns.append({"column": f.column, "kind": "date",
                                    "parts": [n.name.rsplit(".", 1)[1] for n in f.numbers]})
        else:
            vocabulary = f.vocabulary
            seen = [c for c, count in vocabulary.train.items() if count]
            if vocabulary.train_missing and MISSING_CATEGORY not in seen:
                seen.append(MISSING_CATEGORY)
            encoder.categories.append({"column": f.column,
                                       "input": input_name(f.column, taken),
                                       "vocabulary": sorted(seen)})
    return encoder


def _numeric_task(distinct_values: np.ndarray, count: int) -> str:
    """``labels.infer_task`` on a whole column of ``count`` values, from its distinct
    values."""
    if not np.all(distinct_values == np.round(distinct_values)):
        return "regression"
    distinct = len(distinct_values)
    if distinct <= 2 or (distinct <= CLASS_LABEL_LIMIT and distinct < count / 2):
        return "classification"
    return "regression"


def _missing_entries(features: list[Feature]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for f in features:
        if f.kind == "category":
            if f.vocabulary.missing:
                out.append({"column": f.column, "count": f.vocabulary.missing,
                            "filled_with": MISSING_CATEGORY})
            continue
        for n in f.numbers:
            if n.missing:
                out.append({"column": n.name, "count": n.missing,
                            "filled_with": n.fill_value()})
    return out

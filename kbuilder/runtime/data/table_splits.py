"""The ``Dataset`` of a streamed table: its splits stand where feature arrays would.

``TableSplit`` is one split (training, validation or test) of a ``table_stream.StreamPlan``:
its rows are read block by block when used. In the "flat" encoding it is the split's
feature array itself (a ``Streamed`` source); in the "model" encoding the split's inputs
are a dict of ``TableInput`` views of it (``numeric`` and one per category column), as the
in-memory loader gives them. ``feed.keras_feed`` hands either to ``table_feed`` and
``adapt.adapt_layers`` takes their ``statistics`` instead of adapting on all rows.

Kept in memory: the targets, one number per row (class counts, baselines, the summary);
the features never are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from kbuilder.graph.settings import DataSettings
from kbuilder.runtime.data.dataset import DataError, Dataset, Streamed, map_x
from kbuilder.runtime.data.row_encoder import NUMERIC_INPUT
from kbuilder.runtime.data.table_blocks import BLOCK_BYTES
from kbuilder.runtime.data.table_stream import SPLITS, StreamPlan, scan_table


@dataclass(frozen=True)
class InputStatistics:
    """What adapting preprocessing layers on an input's training rows gives: the
    medians (``FillMissing``) and the mean and variance with the gaps filled
    (``Normalization``)."""

    fill: np.ndarray
    mean: np.ndarray
    variance: np.ndarray


class TableSplit(Streamed):
    """One split of a streamed table (``split``: 0 training, 1 validation, 2 test).

    Indexing reads the blocks that hold the rows asked for; ``table_feed.TableBatches``
    reads them block by block instead.
    """

    def __init__(self, plan: StreamPlan, split: int):
        self.plan, self.split = plan, split
        self.counts = plan.counts[:, split]
        self.starts = np.concatenate([[0], np.cumsum(self.counts)])
        self.shape = (int(self.starts[-1]), plan.width)
        self.dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return self.shape[0]

    def block(self, b: int) -> Any:
        """Block ``b``'s rows of this split: an array, or a dict of inputs."""
        plan = self.plan
        x, _, _, split = plan.encode(plan.reader.read(plan.reader.blocks[b]))
        mine = split == self.split
        return map_x(lambda a: a[mine], x)

    def rows(self, index: Any) -> Any:
        """The rows at ``index`` (of this split), read from their blocks."""
        rows = np.atleast_1d(np.arange(len(self))[index])
        where = np.searchsorted(self.starts, rows, side="right") - 1
        parts, order = [], []
        for b in np.unique(where):
            mask = np.flatnonzero(where == b)
            x = self.block(int(b))
            local = rows[mask] - self.starts[b]
            parts.append(map_x(lambda a, local=local: a[local], x))
            order.append(mask)
        if not parts:
            return map_x(lambda a: a[:0], self.block(int(np.flatnonzero(self.counts)[0])))
        back = np.argsort(np.concatenate(order), kind="stable")
        if isinstance(parts[0], dict):
            return {k: np.concatenate([p[k] for p in parts])[back] for k in parts[0]}
        return np.concatenate(parts)[back]

    def __getitem__(self, index: Any) -> np.ndarray:
        out = self.rows(index)
        return out[0] if np.ndim(np.arange(len(self))[index]) == 0 else out

    def subset(self, index: np.ndarray) -> Any:
        raise DataError("A streamed table's splits are fixed by the seed; rows cannot be "
                        "taken from them.")

    def with_sample_shape(self, shape: Any) -> Any:
        raise DataError(f"The streamed table has {self.plan.width} features per row; set "
                        f"the model's Input shape to [{self.plan.width}].")

    def fingerprint_bytes(self) -> bytes:
        return self.plan.reader.stat() + f":split{self.split}".encode()

    def statistics(self, key: str | None = None) -> InputStatistics | None:
        """The training rows' statistics of the input ``key`` (flat: the features)."""
        if key is not None and key != NUMERIC_INPUT:
            return None  # category codes: nothing to adapt
        plan = self.plan
        if plan.encoder is None:
            fill = plan.fill_values()
            mean, variance = plan.moments()
            return InputStatistics(np.where(np.isnan(fill), 0.0, fill), mean, variance)
        numeric = [n for f in plan.features if f.kind != "category" for n in f.numbers]
        mean, variance = plan.moments(numeric_only=True)
        return InputStatistics(np.asarray([n.fill_value() for n in numeric]), mean, variance)


class TableInput(Streamed):
    """One input (``key``) of a split of a table streamed in the "model" encoding."""

    def __init__(self, split: TableSplit, key: str, width: int, dtype: Any):
        self.table, self.key = split, key
        self.shape = (len(split), width)
        self.dtype = np.dtype(dtype)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: Any) -> np.ndarray:
        out = self.table.rows(index)[self.key]
        return out[0] if np.ndim(np.arange(len(self))[index]) == 0 else out

    def subset(self, index: np.ndarray) -> Any:
        return self.table.subset(index)

    def with_sample_shape(self, shape: Any) -> Any:
        raise DataError(f"The streamed table's input '{self.key}' has {self.shape[1]} "
                        f"values per row; set the model's Input shape to [{self.shape[1]}].")

    def fingerprint_bytes(self) -> bytes:
        return self.table.fingerprint_bytes() + f":{self.key}".encode()

    def statistics(self) -> InputStatistics | None:
        return self.table.statistics(self.key)


def table_inputs(x: Any) -> tuple[TableSplit, dict[Any, str] | str | None] | None:
    """The streamed table behind ``x`` (a ``TableSplit``, a ``TableInput``, or a dict or
    list of its ``TableInput`` views, maybe renamed to the model's Inputs), with which key
    of the batches is which of its inputs (``None``: the features as one array; a name:
    that one input alone, as for a model with one Input)."""
    if isinstance(x, TableSplit):
        return x, None
    if isinstance(x, TableInput):
        return x.table, x.key
    views = x.items() if isinstance(x, dict) else enumerate(x) \
        if isinstance(x, list | tuple) else ()
    keys = {k: v for k, v in views if isinstance(v, TableInput)}
    if not keys or len(keys) != len(x) or len({id(v.table) for v in keys.values()}) != 1:
        return None
    split = next(iter(keys.values())).table
    return split, {k: v.key for k, v in keys.items()}


def stream_dataset(settings: DataSettings, task: str | None = None,
                   block_bytes: int = BLOCK_BYTES) -> Dataset:
    """The ``Dataset`` of the table ``settings`` name, streamed (``table_stream``)."""
    plan = scan_table(settings, task, block_bytes)
    parts: list[Any] = []
    for i, name in enumerate(SPLITS):
        if plan.counts[:, i].sum():
            parts += [_split_inputs(TableSplit(plan, i)), plan.y[name]]
        else:
            parts += [None, None]
    notes = plan.notes + [f"The table is streamed in {len(plan.reader.blocks)} block(s): "
                          "its rows are split by a hash of their line and the seed."]
    return Dataset(
        *parts, task=plan.task,
        num_classes=len(plan.class_names) if plan.class_names else None,
        class_names=plan.class_names, feature_names=plan.feature_names,
        source=plan.reader.name, settings=settings, notes=notes, missing=plan.missing,
        test_rows=plan.lines["test"] if len(plan.lines["test"]) else None,
        row_label="row" if plan.reader.format == "parquet" else "line",
        row_encoder=plan.encoder,
    )


def _split_inputs(split: TableSplit) -> Any:
    encoder = split.plan.encoder
    if encoder is None:
        return split

    x = {}
    if encoder.columns:
        x[NUMERIC_INPUT] = TableInput(split, NUMERIC_INPUT, len(encoder.feature_names),
                                      np.float32)
    for spec in encoder.categories:
        x[spec["input"]] = TableInput(split, spec["input"], 1, np.int32)
    return x

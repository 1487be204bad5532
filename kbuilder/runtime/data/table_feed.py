"""Feeding a streamed table (``table_stream.TableSplit``) to Keras, block by block.

Imports keras: only the worker uses this module.

An epoch visits the split's blocks in an order drawn from the seed and the epoch (when
shuffling), reads ``BUFFER_BLOCKS`` of them at a time, shuffles their rows together and
cuts batches from them; rows left over go into the next group's batches. Memory is that
buffer, whatever the size of the table. The batches are made by one generator per epoch,
in order (``workers=1``: Keras then asks for them in order, in its own thread); a batch
asked for out of turn starts the epoch's generator again, which gives the same batches.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np

from kbuilder.runtime.data.dataset import map_x

BUFFER_BLOCKS = 4  # blocks whose rows are shuffled together (4 x 8 MB of text)


class TableBatches(keras.utils.PyDataset):
    """Batches of one split of a streamed table.

    Args:
        split: the split (``TableSplit``).
        y: its targets as ``model.fit`` takes them (an array, or a list by output), in the
            split's row order; ``None`` to predict.
        batch_size: rows per batch (the last one may be smaller).
        shuffle: block order and rows within the buffer drawn from ``seed`` and the epoch.
        keys: the "model" encoding's inputs: batch key (a model Input's name, or its
            position) -> the split's input, or the name of the one input a model with a
            single Input takes; ``None``: the features as one array.
        multiple: every batch's rows a multiple of this (a data-parallel run's devices,
            which ``keras.distribution`` gives equal parts of each batch): the epoch's
            last, smaller batch leaves out its last ``len(split) % multiple`` rows
            (other rows each epoch, when shuffling).
    """

    def __init__(self, split: Any, y: Any, batch_size: int, *, shuffle: bool = False,
                 seed: int = 0, keys: dict[Any, str] | str | None = None, multiple: int = 1):
        super().__init__(workers=1, use_multiprocessing=False)
        self.split, self.y, self.batch_size, self.keys = split, y, batch_size, keys
        self.multiple = max(1, multiple)
        self.shuffle, self.seed, self.epoch = shuffle, seed, 0
        self._batches: Any = None
        self._next = 0

    def __len__(self) -> int:
        rows = len(self.split) - len(self.split) % self.multiple
        return max(1, math.ceil(rows / self.batch_size))

    def _epoch(self) -> Any:
        rng = np.random.default_rng([self.seed, self.epoch])
        starts = self.split.starts
        blocks = np.flatnonzero(self.split.counts)
        if self.shuffle:
            blocks = rng.permutation(blocks)
        size = self.batch_size
        left: list[Any] = []  # the rows of the last group that made no whole batch
        rows_left = np.zeros(0, np.int64)
        for at in range(0, len(blocks), BUFFER_BLOCKS):
            group = blocks[at:at + BUFFER_BLOCKS]
            x = _concatenate(left + [self.split.block(int(b)) for b in group])
            rows = np.concatenate([rows_left] + [np.arange(starts[b], starts[b + 1])
                                                 for b in group])
            if self.shuffle:
                order = rng.permutation(len(rows))
                x, rows = map_x(lambda a, order=order: a[order], x), rows[order]
            full = len(rows) // size * size
            for i in range(0, full, size):
                yield map_x(lambda a, i=i: a[i:i + size], x), rows[i:i + size]
            left, rows_left = [map_x(lambda a, full=full: a[full:], x)], rows[full:]
        kept = len(rows_left) - len(rows_left) % self.multiple
        if kept:
            yield map_x(lambda a: a[:kept], left[0]), rows_left[:kept]

    def __getitem__(self, index: int) -> Any:
        if self._batches is None or index != self._next:
            self._batches, self._next = self._epoch(), 0
            for _ in range(index):
                next(self._batches)
            self._next = index
        x, rows = next(self._batches)
        self._next += 1
        if isinstance(self.keys, str):  # a model with one Input: that input alone
            x = x[self.keys]
        elif self.keys is not None:  # the model's inputs, by name or position
            named = {key: x[part] for key, part in self.keys.items()}
            # By position: a tuple (TensorFlow's dataset signature takes no list).
            x = named if not all(isinstance(k, int) for k in named) else \
                tuple(named[k] for k in sorted(named))
        if self.y is None:
            return (x,) if isinstance(self.keys, dict) else x
        return x, map_x(lambda a: a[rows], self.y)

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self.epoch += 1
        self._batches = None


def _concatenate(parts: list[Any]) -> Any:
    """Blocks' rows together: arrays, or dicts of arrays key by key."""
    if isinstance(parts[0], dict):
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return np.concatenate(parts)

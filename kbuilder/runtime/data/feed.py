"""Feeding data to ``model.fit``/``evaluate``/``predict``: arrays as they are, streamed
sources (``Streamed``, e.g. image folders) as a ``keras.utils.PyDataset``.

Imports keras: only the worker uses this module.

Workers: two threads. ``PyDataset`` with ``workers=1`` reads each batch in the training
loop itself; with two threads the next batches are read while the model computes (the
backends release the GIL then). Measured on this 2-core machine (busy, load ~13), one
epoch of a small CNN on 1,600 PNGs of 32x32, JAX, two alternated rounds: arrays in memory
14.9/16.0 s, one worker 18.5/16.5 s, two threads 17.3/15.3 s, two processes 18.0/14.4 s.
Processes are not used: they fork a multithreaded JAX process (which JAX warns may
deadlock) and copy every batch back. ``KBUILDER_DATA_WORKERS`` and
``KBUILDER_DATA_PROCESSES=1`` override this for measurements.
"""

from __future__ import annotations

import math
import os
from typing import Any

import keras
import numpy as np

from kbuilder.runtime.data.dataset import Streamed, map_x, num_rows, take_rows
from kbuilder.runtime.data.table_feed import TableBatches
from kbuilder.runtime.data.table_splits import table_inputs

# Batches read ahead of the model: memory is this many batches, whatever the data size.
QUEUE_BATCHES = 8


def keras_feed(x: Any, y: np.ndarray | None, batch_size: int, *, shuffle: bool = False,
               seed: int = 0, multiple: int = 1) -> dict[str, Any]:
    """Keyword arguments for ``model.fit``/``evaluate``/``predict`` (``x``, and ``y`` and
    ``batch_size`` for arrays): a streamed ``x`` becomes a ``StreamBatches`` (a streamed
    table its own batches, read block by block, with ``shuffle=False`` for ``fit`` when
    ``shuffle``: they are shuffled already). ``multiple``: a streamed table's batches
    hold a multiple of this many rows (a data-parallel run's devices; arrays are cut to
    one by ``distribution.shard`` already)."""
    table = _streamed_table(x, y, batch_size, shuffle, seed, multiple)
    if table is not None:
        # The batches shuffle themselves, block by block; Keras's own shuffle of the
        # batches' order (fit's default) would make every batch a read of other blocks.
        return {"x": table, **({"shuffle": False} if shuffle else {})}
    if not streams(x):
        feed: dict[str, Any] = {"x": x, "batch_size": batch_size}
        if y is not None:
            feed["y"] = y
        return feed
    return {"x": StreamBatches(x, y, batch_size, shuffle=shuffle, seed=seed)}


def _streamed_table(x: Any, y: Any, batch_size: int, shuffle: bool, seed: int,
                    multiple: int = 1) -> Any:
    """A streamed table's batches (``table_feed``), or ``None`` for other data."""
    found = table_inputs(x)
    if found is None:
        return None

    split, keys = found
    return TableBatches(split, y, batch_size, shuffle=shuffle, seed=seed, keys=keys,
                        multiple=multiple)


def streams(x: Any) -> list[Streamed]:
    """The streamed sources of ``x`` (an array, a stream, or a dict or list of inputs)."""
    if isinstance(x, Streamed):
        return [x]
    if isinstance(x, dict | list | tuple):
        return [a for a in (x.values() if isinstance(x, dict) else x)
                if isinstance(a, Streamed)]
    return []


def read_batch(x: Any, rows: np.ndarray, y: Any) -> Any:
    """``x`` (and ``y``) at ``rows``, streams read: ``x`` alone to predict (``y`` None),
    else ``(x, y)`` with unreadable images' rows left out of every input (skip_bad)."""
    if isinstance(x, Streamed):
        return x[rows] if y is None else x.batch(rows, y)
    if y is None:
        return map_x(lambda a: a[rows], x)
    keep = np.ones(len(rows), dtype=bool)

    def read(a: Any) -> Any:
        if not isinstance(a, Streamed):
            return a[rows]
        images, kept = a.read_kept(rows)
        keep[:] &= kept
        return images

    batch = map_x(read, x)
    if keep.all():
        return batch, y[rows]
    return map_x(lambda a: a[keep], batch), y[rows[keep]]


class StreamBatches(keras.utils.PyDataset):
    """Batches of a streamed source and its labels, read while the model computes.

    Args:
        source: the samples (``Streamed``), or a dict or list of inputs some of which
            are streamed (the others arrays, indexed by the same rows).
        y: their labels (``None`` to predict).
        batch_size: samples per batch; the last one may be smaller, and so may a batch
            with unreadable images left out (``skip_bad_images``).
        shuffle: a new order each epoch, drawn from ``seed``.
    """

    def __init__(self, source: Any, y: np.ndarray | None, batch_size: int, *,
                 shuffle: bool = False, seed: int = 0):
        workers = int(os.environ.get("KBUILDER_DATA_WORKERS", "2"))
        processes = os.environ.get("KBUILDER_DATA_PROCESSES", "") == "1"
        super().__init__(workers=workers, use_multiprocessing=processes,
                         max_queue_size=QUEUE_BATCHES)
        self.source, self.y, self.batch_size = source, y, batch_size
        self.shuffle = shuffle
        self._rng = np.random.default_rng(seed)
        self._order = self._new_order()
        self._reported = 0

    def _new_order(self) -> np.ndarray:
        n = num_rows(self.source)
        return self._rng.permutation(n) if self.shuffle else np.arange(n)

    def __len__(self) -> int:
        return max(1, math.ceil(num_rows(self.source) / self.batch_size))

    def __getitem__(self, index: int) -> Any:
        rows = self._order[index * self.batch_size:(index + 1) * self.batch_size]
        # Predictions: one per sample (an unreadable image reads black). Several inputs
        # go as a 1-tuple: Keras takes a bare pair of inputs for ``(x, y)``.
        batch = read_batch(self.source, rows, self.y)
        if self.y is not None and isinstance(batch[0], list):
            # TensorFlow's adapter takes a tuple of inputs, not a list.
            batch = (tuple(batch[0]), batch[1])
        elif self.y is None and isinstance(batch, list):
            batch = tuple(batch)
        return (batch,) if self.y is None and not isinstance(self.source, Streamed) \
            else batch

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self._order = self._new_order()
        note = skipped_note(*streams(self.source))
        skipped = sum(len(getattr(s, "bad", ())) for s in streams(self.source))
        if note and skipped > self._reported:  # into the worker's log, once per news
            print(f"kbuilder data: {note}", flush=True)
            self._reported = skipped


def keras_validation(x: Any, y: np.ndarray | None, batch_size: int, multiple: int = 1
                     ) -> Any:
    """``validation_data`` for ``model.fit``: ``(x, y)``, a ``StreamBatches`` or ``None``
    (``multiple`` as for ``keras_feed``)."""
    if x is None or y is None:
        return None
    table = _streamed_table(x, y, batch_size, False, 0, multiple)
    if table is not None:
        return table
    if streams(x):
        return StreamBatches(x, y, batch_size)
    return (x, y)


def readable(x: Any) -> Any:
    """An index of the samples of ``x`` to judge: all of them, or, of a stream, those not
    left out as unreadable (``skip_bad_images``)."""
    sources = [s for s in streams(x) if getattr(s, "bad", None)]
    if not sources:
        return slice(None)
    keep = np.ones(num_rows(x), dtype=bool)
    for source in sources:
        keep &= np.array([str(f) not in source.bad for f in source.files], dtype=bool)
    return keep


def readable_part(x: Any, keep: Any) -> Any:
    """The samples of ``x`` that ``readable`` kept."""
    if isinstance(keep, slice):
        return x

    return take_rows(x, np.flatnonzero(keep))


def skipped_note(*sources: Any) -> str | None:
    """The note listing unreadable images left out of ``sources``, if any were."""
    for source in (s for x in sources for s in streams(x)):  # several inputs too
        note = getattr(source, "skipped_note", None)
        if note is not None and note():
            return note()
    return None

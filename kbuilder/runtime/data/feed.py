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

from kbuilder.runtime.data.dataset import Streamed

# Batches read ahead of the model: memory is this many batches, whatever the data size.
QUEUE_BATCHES = 8


def keras_feed(x: Any, y: np.ndarray | None, batch_size: int, *, shuffle: bool = False,
               seed: int = 0) -> dict[str, Any]:
    """Keyword arguments for ``model.fit``/``evaluate``/``predict`` (``x``, and ``y`` and
    ``batch_size`` for arrays): a streamed ``x`` becomes a ``StreamBatches``."""
    if not isinstance(x, Streamed):
        feed: dict[str, Any] = {"x": x, "batch_size": batch_size}
        if y is not None:
            feed["y"] = y
        return feed
    return {"x": StreamBatches(x, y, batch_size, shuffle=shuffle, seed=seed)}


class StreamBatches(keras.utils.PyDataset):
    """Batches of a streamed source and its labels, read while the model computes.

    Args:
        source: the samples (``Streamed``).
        y: their labels (``None`` to predict).
        batch_size: samples per batch; the last one may be smaller, and so may a batch
            with unreadable images left out (``skip_bad_images``).
        shuffle: a new order each epoch, drawn from ``seed``.
    """

    def __init__(self, source: Streamed, y: np.ndarray | None, batch_size: int, *,
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
        n = len(self.source)
        return self._rng.permutation(n) if self.shuffle else np.arange(n)

    def __len__(self) -> int:
        return max(1, math.ceil(len(self.source) / self.batch_size))

    def __getitem__(self, index: int) -> Any:
        rows = self._order[index * self.batch_size:(index + 1) * self.batch_size]
        if self.y is None:  # predictions: one per sample (an unreadable one reads black)
            return self.source[rows]
        return self.source.batch(rows, self.y)

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self._order = self._new_order()
        note = getattr(self.source, "skipped_note", lambda: None)()
        skipped = len(getattr(self.source, "bad", ()))
        if note and skipped > self._reported:  # into the worker's log, once per news
            print(f"kbuilder data: {note}", flush=True)
            self._reported = skipped


def keras_validation(x: Any, y: np.ndarray | None, batch_size: int) -> Any:
    """``validation_data`` for ``model.fit``: ``(x, y)``, a ``StreamBatches`` or ``None``."""
    if x is None or y is None:
        return None
    if isinstance(x, Streamed):
        return StreamBatches(x, y, batch_size)
    return (x, y)


def readable(x: Any) -> Any:
    """An index of the samples of ``x`` to judge: all of them, or, of a stream, those not
    left out as unreadable (``skip_bad_images``)."""
    if not isinstance(x, Streamed) or not getattr(x, "bad", None):
        return slice(None)
    bad = x.bad
    return np.array([str(f) not in bad for f in x.files], dtype=bool)


def readable_part(x: Any, keep: Any) -> Any:
    """The samples of ``x`` that ``readable`` kept."""
    if isinstance(keep, slice):
        return x
    return x.subset(np.flatnonzero(keep))


def skipped_note(*sources: Any) -> str | None:
    """The note listing unreadable images left out of ``sources``, if any were."""
    for source in sources:
        note = getattr(source, "skipped_note", None)
        if note is not None and note():
            return note()
    return None

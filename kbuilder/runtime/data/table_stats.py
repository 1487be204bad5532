"""What one pass over a streamed table keeps per column (``table_stream``): moments merged
block by block, a seeded reservoir sample for the median, a bounded vocabulary with counts.
Each is exact for what it has seen; the reservoir is exact (all values) until it is full.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kbuilder.runtime.data.arrow_numpy import from_numpy, to_numpy
from kbuilder.runtime.data.split import median

RESERVOIR_SIZE = 100_000  # training values kept per numeric column for its median
VOCABULARY_CAP = 10_000  # distinct values counted per text column before giving up


# ====================================================================== statistics
@dataclass
class Moments:
    """Count, mean, sum of squared deviations (Welford/Chan), min, max of some values."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    minimum: float = np.inf
    maximum: float = -np.inf

    def add(self, values: np.ndarray) -> None:
        """Merge the (NaN-free, float64) ``values`` in (Chan et al.'s parallel formula)."""
        n = len(values)
        if not n:
            return
        mean = float(values.mean())
        m2 = float(((values - mean) ** 2).sum())
        self.merge(n, mean, m2)
        self.minimum = min(self.minimum, float(values.min()))
        self.maximum = max(self.maximum, float(values.max()))

    def merge(self, n: int, mean: float, m2: float) -> None:
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.count * n / total
        self.count = total

    @property
    def variance(self) -> float:
        """The population variance (what ``Normalization.adapt`` computes)."""
        return self.m2 / self.count if self.count else 0.0


@dataclass
class Reservoir:
    """A seeded uniform sample of at most ``size`` values (Vitter's algorithm R, by
    block): exact, all values, while fewer have been seen."""

    size: int
    rng: np.random.Generator
    values: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    seen: int = 0

    def add(self, values: np.ndarray) -> None:
        room = self.size - len(self.values)
        if room > 0:
            self.values = np.concatenate([self.values, values[:room]])
            self.seen += min(room, len(values))
            values = values[room:]
        if not len(values):
            return
        # Value i of this block (seen + i + 1 values so far) replaces a kept one with
        # probability size / (seen + i + 1).
        slots = self.rng.integers(0, self.seen + np.arange(1, len(values) + 1))
        chosen = slots < self.size
        self.values[slots[chosen]] = values[chosen]  # later ones win, as in order
        self.seen += len(values)


@dataclass
class NumericColumn:
    """A feature column of numbers (or one part of a date): its statistics."""

    name: str  # the feature's name (``column`` or ``column.part``)
    train: Moments = field(default_factory=Moments)  # the training rows' present values
    missing: int = 0  # of all kept rows
    train_missing: int = 0
    sample: Reservoir | None = None

    def fill_value(self) -> float:
        """The training rows' median (``split.median`` of the float32 values; exact while
        the reservoir holds them all)."""
        return median(self.sample.values) if self.sample is not None else 0.0


@dataclass
class Vocabulary:
    """A text column's present values and counts (all kept rows, and training rows)."""

    counts: dict[str, int] = field(default_factory=dict)
    train: dict[str, int] = field(default_factory=dict)
    missing: int = 0
    train_missing: int = 0
    overflow: bool = False

    def add(self, text: Any, train: np.ndarray) -> None:
        words, codes = word_codes(text)
        tally = np.bincount(codes, minlength=len(words) + 1)
        train_tally = np.bincount(codes[train], minlength=len(words) + 1)
        for word, count, in_train in zip(words, tally.tolist(), train_tally.tolist(),
                                         strict=False):
            if count:
                self.counts[word] = self.counts.get(word, 0) + count
                self.train[word] = self.train.get(word, 0) + in_train
        self.missing += int(tally[-1])
        self.train_missing += int(train_tally[-1])
        if len(self.counts) > VOCABULARY_CAP:
            self.overflow = True
            self.counts, self.train = {}, {}


def word_codes(text: Any) -> tuple[list[str | None], np.ndarray]:
    """A text column's distinct values (in order of first appearance) and each cell's
    index into them, ``len(values)`` for a missing cell: whatever is done to a value is
    then done once per value, not once per cell."""
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(text).combine_chunks()
    words = encoded.dictionary.to_pylist()
    slot = from_numpy(np.asarray([len(words)], str(encoded.indices.type)))[0]
    return words, to_numpy(pc.fill_null(encoded.indices, slot)).astype(np.int64)

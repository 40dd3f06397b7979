"""The mergeable sketches under a profile: a KLL quantile sketch, HyperLogLog and frequent
items. Each is vectorised (NumPy over whole batches, never a Python loop per row), merges
with another of its kind in any order, and serialises to plain arrays (no pickle).

Why KLL and not a fixed histogram: a histogram's rank error depends on how the data fall in
its buckets (a feature concentrated in one bucket has an error of that bucket's whole mass),
and two histograms only merge when their edges agree, so every replica and partition would
need the reference's edges up front. KLL's rank error is bounded whatever the distribution,
and any two sketches merge. With ``k = 1024`` (about 3,000 retained values at most, 24 KB
as float64) the measured rank error stays under 0.1% at 1M and 100M rows
(tests/monitoring/test_profiles.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

F64 = npt.NDArray[np.float64]
U64 = npt.NDArray[np.uint64]

KLL_K = 1024
_KLL_MIN_CAPACITY = 8
_KLL_DECAY = 2.0 / 3.0
_UPDATE_SLICE = 131072  # values added to level 0 at a time (see QuantileSketch.update)
HLL_P = 11  # 2,048 one-byte registers: 2.3% standard error on distinct counts
ITEMS_CAPACITY = 1000  # frequent items kept in a stored profile
ITEMS_BYTES = 24_000  # ... and at most this many bytes of their names
_ITEMS_WORKING = 8  # while building, keep this many times the capacity (counts stay exact
# for every item above 1/(8 * capacity) of the rows)


def _mix64(x: U64) -> U64:
    """splitmix64's finaliser: a fast, well-spread 64-bit hash of 64-bit words."""
    x = x + np.uint64(0x9E3779B97F4A7C15)  # a new array; the rest works in place
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def hash_floats(values: F64) -> U64:
    """64-bit hashes of float values (0.0 and -0.0 hash alike)."""
    return _mix64((values + 0.0).view(np.uint64))


def hash_strings(values: npt.NDArray[np.object_]) -> U64:
    """64-bit hashes of strings (pandas' vectorised SipHash, then mixed)."""
    hashed = pd.util.hash_array(values, categorize=False)
    return _mix64(np.asarray(hashed, dtype=np.uint64))


@dataclass
class HyperLogLog:
    """Distinct-count sketch: 2^p registers of the longest run of leading zeros seen."""

    registers: npt.NDArray[np.uint8] = field(
        default_factory=lambda: np.zeros(1 << HLL_P, dtype=np.uint8))

    def add_hashes(self, hashes: U64) -> None:
        if hashes.size == 0:
            return
        index = (hashes >> np.uint64(64 - HLL_P)).astype(np.intp)
        # rho = leading zeros of the other 64 - p bits, plus one: from the exponent of those
        # bits as a float (exact: 53 bits fit a double's mantissa), worked in place.
        low = (hashes & np.uint64((1 << (64 - HLL_P)) - 1)).astype(np.float64)
        exponent = low.view(np.uint64)
        exponent >>= np.uint64(52)  # floor(log2(low)) + 1023, or 0 when low is 0
        rho = exponent.astype(np.int16)
        np.subtract((64 - HLL_P) + 1023, rho, out=rho)
        np.minimum(rho, 64 - HLL_P + 1, out=rho)
        np.maximum.at(self.registers, index, rho.astype(np.uint8))

    def merge(self, other: HyperLogLog) -> HyperLogLog:
        return HyperLogLog(np.maximum(self.registers, other.registers))

    def estimate(self) -> float:
        m = float(self.registers.size)
        alpha = 0.7213 / (1.0 + 1.079 / m)
        raw = alpha * m * m / float(np.sum(np.exp2(-self.registers.astype(np.float64))))
        zeros = int(np.count_nonzero(self.registers == 0))
        if raw <= 2.5 * m and zeros:
            return m * float(np.log(m / zeros))  # linear counting for small sets
        return raw


@dataclass
class QuantileSketch:
    """KLL sketch of finite float values: level h holds sorted values of weight 2^h.

    Compactions take every other value of a sorted level, starting at a pseudo-random
    offset drawn from a counter (so a sketch is reproducible and serialisable)."""

    levels: list[F64] = field(default_factory=lambda: [np.empty(0)])
    n: int = 0
    coin: int = 0
    k: int = KLL_K

    def _capacity(self, level: int) -> int:
        depth = len(self.levels) - 1 - level
        return max(_KLL_MIN_CAPACITY, int(self.k * _KLL_DECAY**depth))

    def _flip(self) -> int:
        self.coin += 1
        word = _mix64(np.array([self.coin], dtype=np.uint64))[0]
        return int(word & np.uint64(1))

    def update(self, values: F64) -> None:
        """Add finite values (the caller drops NaN and infinities).

        A long array goes in by slices of ``_UPDATE_SLICE`` values: level 0 is then sorted
        a slice at a time (about 45 ms per million values on this machine instead of 55-60
        for one sort of the whole array), and the sketch never copies the whole array. The
        guarantees do not depend on how values arrive; measured on 1M values, the rank
        error (0.07%) and the retained values (2,371) are those of one update."""
        for first in range(0, values.size, _UPDATE_SLICE):
            part = values[first:first + _UPDATE_SLICE]
            self.n += int(part.size)
            # A copy the sketch owns (level 0 is sorted in place when compacted).
            self.levels[0] = np.concatenate([self.levels[0], part])
            self._compress()

    def _compress(self) -> None:
        while True:
            total = sum(level.size for level in self.levels)
            if total <= sum(self._capacity(h) for h in range(len(self.levels))):
                return
            for h, level in enumerate(self.levels):
                if level.size > self._capacity(h):
                    self._compact(h)
                    break
            else:  # pragma: no cover - the totals above guarantee a level over capacity
                return

    def _compact(self, h: int) -> None:
        # Level 0 takes values as they come; every higher level is kept sorted.
        level = self.levels[h]
        if h == 0:
            level.sort()  # in place: level 0 is always the sketch's own array
        even = level.size - (level.size % 2)
        promoted = level[self._flip():even:2]
        self.levels[h] = level[even:]
        if h + 1 == len(self.levels):
            self.levels.append(np.empty(0))
        self.levels[h + 1] = _merge_sorted(self.levels[h + 1], promoted)

    def merge(self, other: QuantileSketch) -> QuantileSketch:
        height = max(len(self.levels), len(other.levels))
        levels = [_merge_sorted(
            self.levels[h] if h < len(self.levels) else np.empty(0),
            other.levels[h] if h < len(other.levels) else np.empty(0)) for h in range(height)]
        levels[0] = np.sort(levels[0])
        merged = QuantileSketch(levels=levels, n=self.n + other.n,
                                coin=self.coin + other.coin + 1, k=max(self.k, other.k))
        merged._compress()
        return merged

    def weighted(self) -> tuple[F64, F64]:
        """The retained values, sorted, and their weights."""
        values = np.concatenate(self.levels)
        weights = np.concatenate([np.full(level.size, float(2**h))
                                  for h, level in enumerate(self.levels)])
        order = np.argsort(values, kind="stable")
        return values[order], weights[order]

    @property
    def exact(self) -> bool:
        """True while nothing was compacted: the sketch holds every value."""
        return len(self.levels) == 1

    def cdf(self, points: F64) -> F64:
        """Estimated share of values <= each point."""
        values, weights = self.weighted()
        total = float(weights.sum())
        if total == 0:
            return np.zeros(np.shape(points))
        cumulative = np.concatenate([[0.0], np.cumsum(weights)])
        return cumulative[np.searchsorted(values, points, side="right")] / total

    def quantiles(self, probabilities: F64) -> F64:
        """Estimated values at the given probabilities (the inverse of cdf)."""
        values, weights = self.weighted()
        if values.size == 0:
            return np.full(np.shape(probabilities), np.nan)
        cumulative = np.cumsum(weights) / float(weights.sum())
        at = np.searchsorted(cumulative, probabilities, side="left")
        return values[np.minimum(at, values.size - 1)]


def _merge_sorted(a: F64, b: F64) -> F64:
    """Two sorted arrays merged into one, in linear time for the larger one."""
    if a.size == 0:
        return b
    if b.size == 0:
        return a
    if a.size < b.size:
        a, b = b, a
    return np.insert(a, np.searchsorted(a, b, side="right"), b)


@dataclass
class FrequentItems:
    """Counts of the most frequent values, with everything else in ``other``.

    Counts are exact while the number of distinct values fits; past that, the kept items
    are the most frequent ones and an item's count may miss occurrences that were dropped
    from a partial profile before a merge (a lower bound)."""

    items: npt.NDArray[np.object_] = field(default_factory=lambda: np.empty(0, dtype=object))
    counts: npt.NDArray[np.int64] = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    other: int = 0

    @property
    def complete(self) -> bool:
        """True when every value seen has its own count."""
        return self.other == 0

    def add_counts(self, items: npt.NDArray[np.object_], counts: npt.NDArray[np.int64],
                   capacity: int = ITEMS_CAPACITY * _ITEMS_WORKING) -> None:
        merged = FrequentItems(items, counts).merge(self, capacity)
        self.items, self.counts, self.other = merged.items, merged.counts, merged.other

    def merge(self, other: FrequentItems,
              capacity: int = ITEMS_CAPACITY * _ITEMS_WORKING) -> FrequentItems:
        if self.items.size == 0 or other.items.size == 0:
            items = self.items if other.items.size == 0 else other.items
            counts = self.counts if other.items.size == 0 else other.counts
        else:
            series = pd.Series(np.concatenate([self.counts, other.counts]),
                               index=np.concatenate([self.items, other.items]))
            summed = series.groupby(level=0, sort=False).sum()
            items = np.asarray(summed.index, dtype=object)
            counts = summed.to_numpy(dtype=np.int64)
        result = FrequentItems(items, counts, self.other + other.other)
        return result.truncated(capacity)

    def truncated(self, capacity: int, max_bytes: int | None = None) -> FrequentItems:
        """The most frequent ``capacity`` items (ties broken by name); the rest in other."""
        order = np.lexsort((self.items.astype(str), -self.counts))
        items, counts = self.items[order], self.counts[order]
        keep = min(capacity, items.size)
        if max_bytes is not None and keep:
            sizes = np.fromiter((len(str(item).encode()) + 8 for item in items[:keep]),
                                dtype=np.int64, count=keep)
            keep = int(np.searchsorted(np.cumsum(sizes), max_bytes, side="right"))
        dropped = int(counts[keep:].sum())
        return FrequentItems(items[:keep], counts[:keep], self.other + dropped)

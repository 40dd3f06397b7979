"""Distances and tests between a reference and a current distribution.

Each metric is computed from two profiles (``*_profiles``) and, for checking them, exactly
from raw values (``exact_*``). Numeric: Jensen-Shannon divergence and distance and PSI over
the reference's equal-mass bins, normed Wasserstein (the Wasserstein-1 distance over the
reference's standard deviation), the Kolmogorov-Smirnov statistic. Categorical: L-infinity
(largest change of a category's share), Jensen-Shannon, chi-square. Signals: missing-rate
change, new-category share, out-of-range share.

Jensen-Shannon uses base-2 logarithms (0 = same, 1 = disjoint); PSI smooths empty bins with a
share of 1e-4 as is usual.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from shipyard.monitoring.profiles import FeatureProfile

F64 = npt.NDArray[np.float64]
BINS = 20
_PSI_FLOOR = 1e-4
MIN_EXPECTED = 5.0  # chi-square: categories expected fewer times than this are pooled

__all__ = [
    "BINS",
    "CategoryTable",
    "category_table",
    "chi_square",
    "exact_ks",
    "exact_numeric_shares",
    "exact_wasserstein_normed",
    "jensen_shannon",
    "ks_profiles",
    "ks_pvalue",
    "l_infinity",
    "numeric_edges",
    "numeric_shares",
    "psi",
    "sketch_rank_error",
    "wasserstein_normed_profiles",
]


# -- distances between share vectors -------------------------------------------------------

def jensen_shannon(p: F64, q: F64) -> float:
    """Jensen-Shannon divergence (base 2) between two share vectors; sqrt is the distance."""
    p, q = _normalised(p), _normalised(q)
    m = (p + q) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log2(p / m), 0.0)
        kl_q = np.where(q > 0, q * np.log2(q / m), 0.0)
    return float(max(0.0, min(1.0, (kl_p.sum() + kl_q.sum()) / 2.0)))


def psi(p: F64, q: F64) -> float:
    """Population stability index sum((q - p) ln(q / p)), reference p, current q."""
    p = np.maximum(_normalised(p), _PSI_FLOOR)
    q = np.maximum(_normalised(q), _PSI_FLOOR)
    return float(np.sum((q - p) * np.log(q / p)))


def l_infinity(p: F64, q: F64) -> float:
    """The largest absolute change of one share."""
    return float(np.max(np.abs(_normalised(p) - _normalised(q)))) if p.size else 0.0


def _normalised(shares: F64) -> F64:
    shares = np.asarray(shares, dtype=np.float64)
    total = shares.sum()
    return shares / total if total > 0 else shares


# -- numeric features ----------------------------------------------------------------------

def numeric_edges(reference: FeatureProfile, bins: int = BINS) -> F64:
    """Interior edges of ``bins`` equal-mass bins of the reference (fewer when values tie)."""
    if reference.present == 0:
        return np.empty(0)
    probabilities = np.linspace(0.0, 1.0, bins + 1)[1:-1]
    return np.unique(reference.sketch.quantiles(probabilities))


def numeric_shares(feature: FeatureProfile, edges: F64) -> F64:
    """Shares of the feature's values in the bins (-inf, e1], (e1, e2], ..., (ek, inf)."""
    if feature.present == 0:
        return np.zeros(edges.size + 1)
    cdf = feature.sketch.cdf(edges)
    return np.diff(np.concatenate([[0.0], cdf, [1.0]]))


def exact_numeric_shares(values: F64, edges: F64) -> F64:
    values = values[np.isfinite(values)]
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=edges.size + 1)
    return counts / max(values.size, 1)


def sketch_rank_error(feature: FeatureProfile) -> float:
    """A bound on the sketch's rank error: 0 while it holds every value, else 2.5 times its
    heaviest weight over its count (measured errors stay below half of that)."""
    sketch = feature.sketch
    if sketch.exact or sketch.n == 0:
        return 0.0
    return 2.5 * 2.0 ** (len(sketch.levels) - 1) / sketch.n


def ks_profiles(reference: FeatureProfile, current: FeatureProfile) -> float:
    """Kolmogorov-Smirnov statistic: the largest gap between the two CDFs."""
    if reference.present == 0 or current.present == 0:
        return 0.0
    points = np.union1d(reference.sketch.weighted()[0], current.sketch.weighted()[0])
    return float(np.max(np.abs(reference.sketch.cdf(points) - current.sketch.cdf(points))))


def ks_pvalue(statistic: F64 | float, n: F64 | float, m: F64 | float) -> F64:
    """Two-sample KS p-value with Stephens' small-sample correction (vectorised):
    P(D >= d) ~ Q_KS((sqrt(e) + 0.12 + 0.11 / sqrt(e)) (d - 1 / (2 max(n, m)))),
    e = nm / (n + m)."""
    n_arr, m_arr = np.asarray(n, dtype=np.float64), np.asarray(m, dtype=np.float64)
    # Less half a step of D's lattice (see rules.ks_threshold).
    d = np.asarray(statistic, dtype=np.float64) - 0.5 / np.maximum(np.maximum(n_arr, m_arr), 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        root = np.sqrt(n_arr * m_arr / (n_arr + m_arr))
        scaled = (root + 0.12 + 0.11 / root) * np.maximum(d, 0.0)
    p = stats.kstwobign.sf(scaled)
    return np.asarray(np.where((n_arr > 0) & (m_arr > 0), np.clip(p, 0.0, 1.0), 1.0),
                      dtype=np.float64)


def exact_ks(reference: F64, current: F64) -> float:
    reference = reference[np.isfinite(reference)]
    current = current[np.isfinite(current)]
    if reference.size == 0 or current.size == 0:
        return 0.0
    return float(stats.ks_2samp(reference, current).statistic)


def _scale(reference: FeatureProfile) -> float:
    std = reference.std
    if np.isfinite(std) and std > 0:
        return std
    return max(abs(reference.mean), 1.0) if np.isfinite(reference.mean) else 1.0


def wasserstein_normed_profiles(reference: FeatureProfile, current: FeatureProfile) -> float:
    """Wasserstein-1 distance over the reference's standard deviation (over max(|mean|, 1)
    when the reference is constant)."""
    if reference.present == 0 or current.present == 0:
        return 0.0
    points = np.union1d(reference.sketch.weighted()[0], current.sketch.weighted()[0])
    gap = np.abs(reference.sketch.cdf(points) - current.sketch.cdf(points))[:-1]
    return float(np.sum(gap * np.diff(points)) / _scale(reference))


def exact_wasserstein_normed(reference: F64, current: F64) -> float:
    reference = reference[np.isfinite(reference)]
    current = current[np.isfinite(current)]
    if reference.size == 0 or current.size == 0:
        return 0.0
    std = float(np.std(reference, ddof=1)) if reference.size > 1 else 0.0
    scale = std if std > 0 else max(abs(float(np.mean(reference))), 1.0)
    return float(stats.wasserstein_distance(reference, current) / scale)


def out_of_range_share(reference: FeatureProfile, current: FeatureProfile) -> float:
    """Share of the current rows with a value outside the reference's [min, max]
    (infinities included)."""
    rows = current.rows - current.missing
    if rows <= 0 or reference.present == 0:
        return 0.0
    below = current.sketch.cdf(np.array([np.nextafter(reference.minimum, -np.inf)]))[0]
    above = 1.0 - current.sketch.cdf(np.array([reference.maximum]))[0]
    outside = (below + above) * current.present + current.pos_inf + current.neg_inf
    return float(outside / rows)


# -- categorical features ------------------------------------------------------------------

@dataclass
class CategoryTable:
    """Reference and current counts over the same categories. The last column is ``other``
    (values neither profile names on both sides) when either profile dropped values."""

    names: list[str]
    reference: F64
    current: F64
    new_share: float  # share of the current rows in values the reference never had

    @property
    def reference_shares(self) -> F64:
        return _normalised(self.reference)

    @property
    def current_shares(self) -> F64:
        return _normalised(self.current)


def category_table(reference: FeatureProfile, current: FeatureProfile) -> CategoryTable:
    """Counts of each category in both profiles, aligned. A category a profile did not keep
    (it dropped the rarest values) is counted in ``other`` on both sides, so the table stays
    a fair comparison."""
    ref_items = dict(zip(reference.items.items.tolist(), reference.items.counts.tolist(),
                         strict=True))
    cur_items = dict(zip(current.items.items.tolist(), current.items.counts.tolist(),
                         strict=True))
    names = list(dict.fromkeys([*ref_items, *cur_items]))
    known = [name for name in names
             if (name in ref_items or reference.items.complete)
             and (name in cur_items or current.items.complete)]
    ref_counts = np.array([ref_items.get(name, 0) for name in known], dtype=np.float64)
    cur_counts = np.array([cur_items.get(name, 0) for name in known], dtype=np.float64)
    ref_other = max(reference.present - ref_counts.sum(), 0.0)
    cur_other = max(current.present - cur_counts.sum(), 0.0)
    new = sum(count for name, count in cur_items.items() if name not in ref_items)
    new_share = new / current.present if current.present and reference.items.complete else 0.0
    if ref_other or cur_other:
        known.append("(other)")
        ref_counts = np.append(ref_counts, ref_other)
        cur_counts = np.append(cur_counts, cur_other)
    return CategoryTable(known, ref_counts, cur_counts, float(new_share))


def chi_square(reference: F64, current: F64,
               min_expected: float = MIN_EXPECTED) -> tuple[float, float, int]:
    """Chi-square test that two count vectors come from one distribution: (statistic,
    p-value, degrees of freedom). Categories expected fewer than ``min_expected`` times in
    the smaller sample are pooled into one (pooling looks only at the categories' totals,
    which the test conditions on, so it keeps the test's level)."""
    reference = np.asarray(reference, dtype=np.float64)
    current = np.asarray(current, dtype=np.float64)
    r_total, c_total = reference.sum(), current.sum()
    if r_total <= 0 or c_total <= 0:
        return 0.0, 1.0, 0
    totals = reference + current
    keep = totals > 0
    reference, current, totals = reference[keep], current[keep], totals[keep]
    expected_min = min(r_total, c_total) * totals / (r_total + c_total)
    rare = expected_min < min_expected
    if rare.any():
        order = np.argsort(~rare, kind="stable")  # rare first
        reference, current, totals = reference[order], current[order], totals[order]
        k = int(rare.sum())
        pooled = (reference[:k].sum(), current[:k].sum())
        reference = np.concatenate([[pooled[0]], reference[k:]])
        current = np.concatenate([[pooled[1]], current[k:]])
        totals = reference + current
        pooled_expected = min(r_total, c_total) * totals[0] / (r_total + c_total)
        if pooled_expected < min_expected and reference.size > 1:
            # Still too rare: join the pool to the smallest category.
            j = 1 + int(np.argmin(totals[1:]))
            reference[j] += reference[0]
            current[j] += current[0]
            reference, current = reference[1:], current[1:]
    if reference.size < 2:
        return 0.0, 1.0, 0
    n = r_total + c_total
    columns = reference + current
    e_ref, e_cur = r_total * columns / n, c_total * columns / n
    statistic = float(np.sum((reference - e_ref) ** 2 / e_ref + (current - e_cur) ** 2 / e_cur))
    dof = int(reference.size - 1)
    return statistic, float(stats.chi2.sf(statistic, dof)), dof

"""Vectorised metric arithmetic for performance estimation.

Every function works on whole columns (sorting, cumulative sums, ``np.interp``), with no
per-row Python loop, so estimating a million-row chunk costs a sort.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]

# Score calibration bins: equal-count bins of at least MIN_BIN_ROWS reference rows, at most
# MAX_BINS of them, then a monotone (isotonic) fit over the bin means.
MAX_BINS = 2000
MIN_BIN_ROWS = 200
EPSILON = 1e-6


def calibration_knots(scores: Floats, targets: Floats) -> tuple[Floats, Floats]:
    """An isotonic map from score to P(target = 1), as knots for ``np.interp``.

    The scores are cut into equal-count bins; the isotonic regression (pool adjacent
    violators) runs over the bins' mean score and positive rate, weighted by their sizes.
    Binning first keeps a million-row fit to one sort and a few thousand points.
    """
    from sklearn.isotonic import IsotonicRegression

    order = np.argsort(scores, kind="stable")
    bins = int(min(MAX_BINS, max(1, scores.size // MIN_BIN_ROWS)))
    edges = np.linspace(0, scores.size, bins + 1).astype(np.int64)
    counts = np.diff(edges).astype(np.float64)
    sorted_scores = scores[order]
    mean_score = np.add.reduceat(sorted_scores, edges[:-1]) / counts
    mean_target = np.add.reduceat(targets[order], edges[:-1]) / counts
    # Bins of tied scores share one knot: np.interp needs increasing abscissae.
    knots, inverse = np.unique(mean_score, return_inverse=True)
    weight = np.bincount(inverse, weights=counts)
    rate = np.bincount(inverse, weights=mean_target * counts) / weight
    if knots.size == 1:
        return knots, rate
    fitted = IsotonicRegression(y_min=0.0, y_max=1.0).fit(knots, rate, sample_weight=weight)
    return knots, np.asarray(fitted.predict(knots), dtype=np.float64)


def calibrate(knots: tuple[Floats, Floats], scores: Floats) -> Floats:
    return np.asarray(np.interp(scores, knots[0], knots[1]), dtype=np.float64)


def logit(probabilities: Floats) -> Floats:
    clipped = np.clip(probabilities, EPSILON, 1 - EPSILON)
    return np.asarray(np.log(clipped) - np.log1p(-clipped), dtype=np.float64)


def pairwise_auc(scores: Floats, positive: Floats) -> Floats:
    """ROC AUC of ``scores`` when row i is positive with probability ``positive[..., i]``.

    With 0/1 labels this is the Mann-Whitney AUC (ties count half). With probabilities it is
    the expected number of correctly ordered positive-negative pairs over the expected number
    of pairs, the confidence-based estimate of the AUC. ``positive`` may hold several rows
    (one per model); the scores are sorted once for all of them. NaN where there are no pairs.
    """
    order = np.argsort(scores, kind="stable")
    ranked = scores[order]
    p = np.atleast_2d(positive)[:, order]
    negative = 1.0 - p
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
    group_negative = np.add.reduceat(negative, starts, axis=1)
    below = np.cumsum(group_negative, axis=1) - group_negative
    sizes = np.diff(np.r_[starts, ranked.size])
    group = np.repeat(np.arange(starts.size), sizes)
    # Negatives strictly below, plus half of the tied ones other than the row itself.
    beaten = below[:, group] + 0.5 * (group_negative[:, group] - negative)
    pairs = p.sum(axis=1) * negative.sum(axis=1) - np.einsum("ij,ij->i", p, negative)
    correct = np.einsum("ij,ij->i", p, beaten)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.where(pairs > 0, correct / np.where(pairs > 0, pairs, 1.0),
                                   np.nan), dtype=np.float64)


def auc_variance(auc: float, positives: float, negatives: float) -> float:
    """Hanley and McNeil's sampling variance of an AUC over the given class sizes."""
    if positives < 1 or negatives < 1 or not np.isfinite(auc):
        return float("nan")
    q1 = auc / (2 - auc)
    q2 = 2 * auc * auc / (1 + auc)
    return float((auc * (1 - auc) + (positives - 1) * (q1 - auc * auc)
                  + (negatives - 1) * (q2 - auc * auc)) / (positives * negatives))

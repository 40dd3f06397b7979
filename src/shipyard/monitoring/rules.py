"""When a feature counts as drifted.

The default rule is calibrated: with no drift it fires in at most ``false_alarm_rate``
(0.5%) of windows across all features together, for any window size and any number of
categories, because each decision is a test at a known level:

- numeric features: the two-sample Kolmogorov-Smirnov test (distribution-free, with Stephens'
  small-sample correction; ties only make it conservative). The statistic from a profile is
  first reduced by the sketches' rank-error bound, so sketch error cannot raise alarms;
- categorical features: the chi-square test of homogeneity, with categories expected fewer
  than 5 times pooled, so 30 rows against 10,000 categories is still a valid test (the
  degrees of freedom grow with the categories that can be tested);
- every feature: the missing rate, with the same chi-square test on (missing, present).

Each test runs at ``false_alarm_rate / number of tests`` (Bonferroni, which bounds the
chance of any false alarm whatever the dependence between features), and fires only when the
change is also large enough to matter (``min_ks``, ``min_share_change``,
``min_missing_change``), so a million-row window does not alarm on a negligible change.

``FixedThresholds`` is the Vertex AI style: one metric per kind (Jensen-Shannon for numeric,
L-infinity for categorical, by default) and a fixed threshold per feature.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy import stats

from shipyard.errors import InvalidArgument

__all__ = [
    "CATEGORICAL_METRICS",
    "NUMERIC_METRICS",
    "DefaultRule",
    "FixedThresholds",
    "ks_threshold",
]

F64 = npt.NDArray[np.float64]
NUMERIC_METRICS = ("jensen_shannon", "jensen_shannon_distance", "psi", "wasserstein", "ks")
CATEGORICAL_METRICS = ("l_infinity", "jensen_shannon", "jensen_shannon_distance", "chi_square")


@dataclass(frozen=True)
class DefaultRule:
    """The calibrated rule (see the module docstring)."""

    false_alarm_rate: float = 0.005
    min_ks: float = 0.025  # about a 0.06 standard deviation shift of a normal feature
    min_share_change: float = 0.02  # two points of one category's share
    min_missing_change: float = 0.01  # one point of missing rate

    def __post_init__(self) -> None:
        if not 0 < self.false_alarm_rate < 1:
            raise InvalidArgument("false_alarm_rate must be between 0 and 1",
                                  field="false_alarm_rate")

    def level(self, tests: int) -> float:
        """The level of each of ``tests`` tests (Bonferroni)."""
        return self.false_alarm_rate / max(tests, 1)


def ks_threshold(n: F64 | float, m: F64 | float, alpha: float, rank_error: F64 | float = 0.0,
                 floor: float = 0.0) -> F64:
    """The KS statistic at or above which the rule fires, for samples of n and m values at
    level ``alpha`` (vectorised): the critical value (Stephens' approximation, the inverse
    of ``metrics.ks_pvalue``), plus the sketches' rank error, and at least ``floor``."""
    n_arr, m_arr = np.asarray(n, dtype=np.float64), np.asarray(m, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        root = np.sqrt(n_arr * m_arr / (n_arr + m_arr))
        critical = stats.kstwobign.isf(alpha) / (root + 0.12 + 0.11 / root)
    # Half a step of D's lattice (1/max(n, m)) more: D takes few values in small samples, and
    # the asymptotic distribution is for a continuous statistic.
    critical = critical + 0.5 / np.maximum(np.maximum(n_arr, m_arr), 1.0)
    critical = np.where((n_arr > 0) & (m_arr > 0), critical, np.inf)
    return np.asarray(np.maximum(critical + np.asarray(rank_error), floor), dtype=np.float64)


@dataclass(frozen=True)
class FixedThresholds:
    """Vertex AI's rule: a feature drifts when its metric reaches its threshold.

    ``thresholds`` maps feature names to thresholds; features not named use ``default``.
    Vertex's default is 0.3, with Jensen-Shannon divergence for numeric features and
    L-infinity for categorical ones."""

    thresholds: Mapping[str, float] = field(default_factory=dict)
    default: float = 0.3
    numeric_metric: str = "jensen_shannon"
    categorical_metric: str = "l_infinity"

    def __post_init__(self) -> None:
        if self.numeric_metric not in NUMERIC_METRICS:
            raise InvalidArgument(f"numeric_metric must be one of {', '.join(NUMERIC_METRICS)}",
                                  field="numeric_metric")
        if self.categorical_metric not in CATEGORICAL_METRICS:
            raise InvalidArgument(
                f"categorical_metric must be one of {', '.join(CATEGORICAL_METRICS)}",
                field="categorical_metric")
        for name, value in {**self.thresholds, "(default)": self.default}.items():
            if not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0:
                raise InvalidArgument(f"threshold for {name!r} must be a number >= 0",
                                      field="thresholds")

    def threshold(self, feature: str) -> float:
        return float(self.thresholds.get(feature, self.default))

"""``detect_drift``: compare a current window with a reference, feature by feature.

Both sides may be a pandas DataFrame, a pyarrow Table, a Parquet path, a DuckDB relation or a
stored ``DataProfile``; raw data is profiled first (one pass, bounded memory), so a stored
baseline profile and a fresh window compare exactly like two frames. Bad data never aborts
the report: an empty window, a column with no values, a column missing on one side, a new
column, a type change, or a window too small to test each become a finding in the report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

import numpy as np
from scipy import stats

from shipyard.errors import InvalidArgument
from shipyard.monitoring import metrics
from shipyard.monitoring.profiles import DataProfile, FeatureProfile, profile
from shipyard.monitoring.report import DriftReport, FeatureDrift
from shipyard.monitoring.rules import DefaultRule, FixedThresholds, ks_threshold
from shipyard.monitoring.seasonal import seasonal_rows

__all__ = ["DriftReport", "FeatureDrift", "detect_drift"]

_PLOT_CATEGORIES = 20


def detect_drift(reference: Any, current: Any, categorical_features: Iterable[str] | None = None,
                 *, features: Iterable[str] | None = None,
                 thresholds: Mapping[str, float] | float | None = None,
                 numeric_metric: str = "jensen_shannon", categorical_metric: str = "l_infinity",
                 false_alarm_rate: float = 0.005, min_ks: float = 0.025,
                 min_share_change: float = 0.02, season: str | timedelta | None = None,
                 time_column: str | None = None, seasons: int | None = None) -> DriftReport:
    """Which features of ``current`` drifted from ``reference``.

    By default each feature is judged by the calibrated rule (``rules.DefaultRule``): at most
    ``false_alarm_rate`` of windows without drift raise any alarm, across all features.
    ``thresholds`` switches to fixed thresholds, as Vertex AI does: a number for every
    feature, or a mapping of feature names to thresholds (the features it names use
    ``numeric_metric`` / ``categorical_metric`` and their threshold; the others keep the
    calibrated rule).

    ``season`` (``"weekly"``, ``"daily"`` or a ``timedelta``) with ``time_column`` compares
    the current window with the reference rows at the same time of the cycle only (the same
    hours one week earlier, and the weeks before up to ``seasons``), so a weekly cycle alone
    does not alarm (see ``shipyard.monitoring.seasonal``); the time column is not compared."""
    categorical = list(categorical_features or ())
    if season is not None or time_column is not None:
        if season is None or time_column is None:
            raise InvalidArgument("a seasonal reference needs both season and time_column",
                                  field="season" if season is None else "time_column")
        reference, current = seasonal_rows(reference, current, time_column, season, seasons)
    default = DefaultRule(false_alarm_rate, min_ks=min_ks, min_share_change=min_share_change)
    fixed: FixedThresholds | None = None
    if isinstance(thresholds, Mapping):
        fixed = FixedThresholds(dict(thresholds), numeric_metric=numeric_metric,
                                categorical_metric=categorical_metric)
    elif thresholds is not None:
        fixed = FixedThresholds({}, default=float(thresholds), numeric_metric=numeric_metric,
                                categorical_metric=categorical_metric)
    wanted = list(features) if features is not None else None
    # Profiles made only to be compared skip the numeric distinct counts (unused here).
    ref = profile(reference, categorical_features=categorical, distinct=False)
    cur = profile(current, categorical_features=categorical, distinct=False)
    return compare_profiles(ref, cur, default, fixed,
                            fixed_for_all=thresholds is not None
                            and not isinstance(thresholds, Mapping),
                            features=wanted)


def compare_profiles(reference: DataProfile, current: DataProfile,
                     rule: DefaultRule | None = None, fixed: FixedThresholds | None = None,
                     *, fixed_for_all: bool = False,
                     features: list[str] | None = None) -> DriftReport:
    """The report for two profiles (what ``detect_drift`` runs once both are profiled)."""
    rule = rule or DefaultRule()
    findings: list[str] = []
    names = features if features is not None else list(reference.features)
    for name in names:
        if name not in reference.features:
            raise InvalidArgument(f"feature {name!r} is not in the reference data",
                                  field="features")
    if reference.rows == 0:
        findings.append("the reference window is empty: nothing can be compared")
    if current.rows == 0:
        findings.append("the current window is empty: nothing can be compared")
    for name in current.features:
        if name not in reference.features and features is None:
            findings.append(f"column {name!r} is new: it is not in the reference")
    compared = [name for name in names if name in current.features]
    level = rule.level(2 * len(compared))
    report = DriftReport(reference_rows=reference.rows, current_rows=current.rows,
                         findings=findings, false_alarm_rate=rule.false_alarm_rate,
                         test_level=level)
    for name in names:
        ref = reference.features[name]
        if name not in current.features:
            report.findings.append(f"column {name!r} is missing from the current data")
            report.features[name] = FeatureDrift(
                name=name, kind=ref.kind, metric=None, value=None, threshold=None,
                p_value=None, drifted=False, findings=["missing from the current data"])
            continue
        use_fixed = fixed is not None and (fixed_for_all or name in fixed.thresholds)
        drift = _compare_feature(ref, current.features[name], rule, level,
                                 fixed if use_fixed else None)
        report.features[name] = drift
        report.findings.extend(f"{name}: {finding}" for finding in drift.findings)
    return report


def _compare_feature(ref: FeatureProfile, cur: FeatureProfile, rule: DefaultRule,
                     level: float, fixed: FixedThresholds | None) -> FeatureDrift:
    drift = FeatureDrift(name=ref.name, kind=ref.kind, metric=None, value=None, threshold=None,
                         p_value=None, drifted=False, reference_rows=ref.rows,
                         current_rows=cur.rows)
    _missing_signal(drift, ref, cur, rule, level)
    missing_alarm = bool(drift.signals.get("missing_rate_alarm", 0.0))
    drift.drifted = missing_alarm
    if ref.dtype != cur.dtype:
        drift.signals["type_changed"] = 1.0
        drift.findings.append(f"type changed from {ref.dtype} to {cur.dtype}")
    if ref.present == 0 or cur.present == 0:
        side = "reference" if ref.present == 0 else "current"
        what = "no rows" if (ref.rows if side == "reference" else cur.rows) == 0 \
            else "no values (all missing)"
        drift.findings.append(f"{side} has {what}: the distributions cannot be compared")
        return drift
    if ref.kind != cur.kind:
        drift.metric, drift.value, drift.threshold, drift.drifted = "type", 1.0, 0.0, True
        drift.findings.append(f"kind changed from {ref.kind} to {cur.kind}")
        return drift
    if ref.kind == "numeric":
        _numeric(drift, ref, cur, rule, level, fixed)
    else:
        _categorical(drift, ref, cur, rule, level, fixed)
    drift.drifted = drift.drifted or missing_alarm
    return drift


def _missing_signal(drift: FeatureDrift, ref: FeatureProfile, cur: FeatureProfile,
                    rule: DefaultRule, level: float) -> None:
    if ref.rows == 0 or cur.rows == 0:
        return
    change = cur.missing_rate - ref.missing_rate
    _, p_value, _ = metrics.chi_square(np.array([ref.missing, ref.rows - ref.missing], float),
                                       np.array([cur.missing, cur.rows - cur.missing], float))
    drift.signals["missing_rate_reference"] = ref.missing_rate
    drift.signals["missing_rate_current"] = cur.missing_rate
    drift.signals["missing_rate_change"] = change
    drift.signals["missing_rate_p_value"] = p_value
    if p_value <= level and abs(change) >= rule.min_missing_change:
        drift.signals["missing_rate_alarm"] = 1.0
        drift.findings.append(
            f"missing rate changed from {ref.missing_rate:.1%} to {cur.missing_rate:.1%}")
    else:
        drift.signals["missing_rate_alarm"] = 0.0


def _numeric(drift: FeatureDrift, ref: FeatureProfile, cur: FeatureProfile, rule: DefaultRule,
             level: float, fixed: FixedThresholds | None) -> None:
    edges = metrics.numeric_edges(ref)
    p, q = metrics.numeric_shares(ref, edges), metrics.numeric_shares(cur, edges)
    js = metrics.jensen_shannon(p, q)
    ks = metrics.ks_profiles(ref, cur)
    drift.scores = {"jensen_shannon": js, "jensen_shannon_distance": float(np.sqrt(js)),
                    "psi": metrics.psi(p, q), "ks": ks,
                    "wasserstein": metrics.wasserstein_normed_profiles(ref, cur)}
    drift.signals["out_of_range_share"] = metrics.out_of_range_share(ref, cur)
    drift.signals["mean_reference"], drift.signals["mean_current"] = ref.mean, cur.mean
    drift.distribution = {"edges": edges.tolist(), "reference": p.tolist(),
                          "current": q.tolist()}
    if fixed is not None:
        _fixed(drift, fixed, fixed.numeric_metric)
        return
    rank_error = metrics.sketch_rank_error(ref) + metrics.sketch_rank_error(cur)
    threshold = float(ks_threshold(ref.present, cur.present, level, rank_error, rule.min_ks))
    drift.metric, drift.value, drift.threshold = "ks", ks, threshold
    drift.p_value = float(metrics.ks_pvalue(max(ks - rank_error, 0.0), ref.present,
                                            cur.present))
    drift.drifted = ks >= threshold
    if threshold > 1.0:
        drift.findings.append(
            f"too few values to test ({ref.present} and {cur.present}): no change in "
            "distribution could be significant at the report's false-alarm rate")


def _categorical(drift: FeatureDrift, ref: FeatureProfile, cur: FeatureProfile,
                 rule: DefaultRule, level: float, fixed: FixedThresholds | None) -> None:
    table = metrics.category_table(ref, cur)
    p, q = table.reference_shares, table.current_shares
    js = metrics.jensen_shannon(p, q)
    l_inf = metrics.l_infinity(p, q)
    statistic, p_value, dof = metrics.chi_square(table.reference, table.current)
    drift.scores = {"l_infinity": l_inf, "jensen_shannon": js,
                    "jensen_shannon_distance": float(np.sqrt(js)), "chi_square": statistic}
    drift.signals["new_category_share"] = table.new_share
    drift.signals["categories_reference"] = ref.distinct
    drift.signals["categories_current"] = cur.distinct
    top = np.argsort(-(p + q), kind="stable")[:_PLOT_CATEGORIES]
    drift.distribution = {"categories": [table.names[i] for i in top],
                          "reference": p[top].tolist(), "current": q[top].tolist()}
    if fixed is not None:
        _fixed(drift, fixed, fixed.categorical_metric)
        return
    drift.metric, drift.value, drift.p_value = "chi_square", statistic, p_value
    drift.threshold = float(stats.chi2.isf(level, dof)) if dof else float("inf")
    drift.drifted = p_value <= level and l_inf >= rule.min_share_change
    if dof == 0:
        drift.findings.append(
            "too few values per category to test: every category is expected fewer than "
            f"{metrics.MIN_EXPECTED:g} times")


def _fixed(drift: FeatureDrift, fixed: FixedThresholds, metric: str) -> None:
    drift.metric = metric
    drift.value = drift.scores[metric]
    drift.threshold = fixed.threshold(drift.name)
    drift.drifted = drift.value > drift.threshold

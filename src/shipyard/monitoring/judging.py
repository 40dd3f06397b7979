"""Judging one window of an endpoint's request log (no writes):

- **skew**: the window against the baseline (the training data's profile, kept with the
  monitor), feature by feature, with ``detect_drift``'s calibrated rule or fixed thresholds;
- **drift**: the window against the ``drift_windows`` windows before it;
- **prediction drift**: the window's predictions against the earlier windows' predictions;
- **objectives**: latency percentiles per request, and, where ground truth came back through
  the feedback API, accuracy and ROC AUC (classifiers) or RMSE and MAE (regressors);
- **estimated performance**: with a fitted estimator in the config, the same metrics
  estimated without labels, with a band (``monitor_estimation``).

The result is a JSON-ready dict (``_clean``): it is stored as the run's result as it is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa

from shipyard.config import Settings
from shipyard.monitoring.drift import compare_profiles
from shipyard.monitoring.monitor_definitions import _features
from shipyard.monitoring.profiles import DataProfile, profile
from shipyard.monitoring.report import DriftReport
from shipyard.monitoring.rules import DefaultRule, FixedThresholds
from shipyard.monitoring.windows import Window, log_root, read_window
from shipyard.store import Store

__all__ = ["judge"]


def judge(settings: Settings, row: Any, start: datetime, end: datetime,
          store: Store | None = None) -> dict[str, Any]:
    """The result of one window (no writes). With ``store``, attribution drift is judged
    too where a deployment answered (``attributions``)."""
    config = dict(row.config)
    baseline = DataProfile.from_bytes(row.baseline_profile)
    names = _features(config, baseline)
    columns = [(name, baseline.features[name].kind) for name in baseline.features]
    rate = float(config.get("sampling_rate", 1.0))
    span = timedelta(seconds=int(config["window_seconds"]) * int(config["drift_windows"]))
    with log_root(settings.artifacts, row.project, row.endpoint, start - span, end,
                  start) as root:
        window = read_window(root, row.project, row.endpoint, start, end, columns,
                             sampling_rate=rate)
        earlier = read_window(root, row.project, row.endpoint, start - span, start, columns,
                              sampling_rate=rate, with_feedback=False)
    findings: list[str] = []
    result: dict[str, Any] = {"rows": window.rows, "window_start": start.isoformat(),
                              "window_end": end.isoformat(), "findings": findings}
    rule, fixed, for_all = _rule(config)
    current = _profile(window, baseline)
    skew = compare_profiles(baseline, current, rule, fixed, fixed_for_all=for_all,
                            features=names)
    drift: DriftReport | None = None
    if earlier.rows and window.rows:
        previous = _profile(earlier, baseline)
        drift = compare_profiles(previous, current, rule, fixed, fixed_for_all=for_all,
                                 features=[n for n in names if n in previous.features])
    elif window.rows:
        findings.append("no earlier window holds requests: drift over time is not judged")
    if window.rows == 0:
        what = "logged requests" if not window.errors.requests else \
            f"answered requests ({window.errors.requests} logged requests failed)"
        findings.append(f"the window from {start.isoformat()} to {end.isoformat()} holds no "
                        f"{what}: nothing was compared")
    else:
        findings.extend(f"column {name!r} is missing from the request log: no logged "
                        "request carries it, so it is scored as all missing"
                        for name in window.missing if name in names)
        findings.extend(skew.findings)
    importance = dict(config.get("feature_importance") or {})
    result["features"] = {name: _feature(skew, drift, name, importance) for name in names}
    result["prediction"] = _prediction_drift(window, earlier, rule) if window.rows else None
    result["latency_ms"] = _latency(window.latency_ms)
    result["performance"] = _performance(window, findings)
    result["estimated_performance"] = None
    if config.get("performance_estimator") is not None:
        from shipyard.monitoring.monitor_estimation import estimate_window

        result["estimated_performance"] = estimate_window(
            config["performance_estimator"], window, result["performance"], findings)
    errors = window.errors
    result["errors"] = {"requests": errors.requests, "server_errors": errors.server_errors,
                        "client_errors": errors.client_errors, "rate": errors.rate,
                        "common": errors.common}
    result["model_versions"] = {str(k): v for k, v in window.model_versions.items()}
    result["objectives"] = _objectives(config, result, findings)
    result["attributions"] = None
    if store is not None and window.rows:
        from shipyard.monitoring.attributions import MAX_ROWS, judge_attributions

        result["attributions"] = judge_attributions(
            store, settings, row.project, window, baseline, _previous_attributions(
                store, row.id, start), int(config.get("attribution_rows", MAX_ROWS)))
        if result["attributions"]:
            findings.extend(result["attributions"]["findings"])
    breaches = []
    if window.rows and skew.drifted_features:
        breaches.append("skew")
    if drift is not None and drift.drifted_features:
        breaches.append("drift")
    if result["prediction"] and result["prediction"].get("drifted"):
        breaches.append("prediction_drift")
    objectives = result["objectives"]
    if any(v["breached"] for k, v in objectives.items() if k.startswith("latency")):
        breaches.append("latency")
    if any(v["breached"] for k, v in objectives.items()
           if k in ("accuracy", "roc_auc", "rmse", "mae")):
        breaches.append("performance")
    if objectives.get("error_rate", {}).get("breached"):
        breaches.append("error_rate")
    if result["attributions"] and result["attributions"]["drifted"]:
        breaches.append("attribution_drift")
    result["breaches"] = breaches
    return result


def _previous_attributions(store: Store, monitor_id: str, start: datetime
                           ) -> dict[str, Any] | None:
    """The attributions of the monitor's latest successful run of an earlier window."""
    from sqlalchemy import select

    from shipyard.store.schema import monitor_runs

    with store.read() as conn:
        result = conn.execute(
            select(monitor_runs.c.result).where(
                monitor_runs.c.monitor_id == monitor_id, monitor_runs.c.state == "succeeded",
                monitor_runs.c.window_end <= start)
            .order_by(monitor_runs.c.window_end.desc(), monitor_runs.c.finished_at.desc())
            .limit(1)).scalar()
    found = (result or {}).get("attributions")
    return dict(found) if found else None


def _rule(config: Mapping[str, Any]) -> tuple[DefaultRule, FixedThresholds | None, bool]:
    thresholds = config.get("thresholds")
    if thresholds is None:
        return DefaultRule(), None, False
    if isinstance(thresholds, Mapping):
        return DefaultRule(), FixedThresholds(dict(thresholds)), False
    return DefaultRule(), FixedThresholds({}, default=float(thresholds)), True


def _profile(window: Window, baseline: DataProfile) -> DataProfile:
    """The window's profile. A baseline feature no logged row carries is profiled as a
    column of nulls: every value of it is missing (which the missing-rate test judges)."""
    categorical = [n for n, f in baseline.features.items() if f.kind == "categorical"]
    table = window.features
    if window.rows:
        for name in window.missing:
            kind = baseline.features[name].kind
            table = table.append_column(name, pa.nulls(window.rows, pa.float64()
                                                       if kind == "numeric" else pa.string()))
    current = profile(table, categorical_features=categorical)
    for name, feature in current.features.items():
        reference = baseline.features.get(name)
        if reference is not None and reference.kind == feature.kind:
            feature.dtype = reference.dtype  # the log is JSON: its types are the baseline's
    return current


def _feature(skew: DriftReport, drift: DriftReport | None, name: str,
             importance: Mapping[str, float]) -> dict[str, Any]:
    found = skew.features[name]
    distance = found.scores.get("jensen_shannon_distance")
    weight = importance.get(name)
    metric, score, threshold, p_value = found.metric, found.value, found.threshold, \
        found.p_value
    compared = score is not None
    if score is None and "missing_rate_change" in found.signals:
        # No value of the feature in the window (all missing, or no logged row carries
        # it): the distributions cannot be compared, and the score is the missing rate's
        # change (from the baseline's to 100%), judged by the missing-rate test.
        metric, score = "missing_rate", found.signals["missing_rate_change"]
        threshold = DefaultRule().min_missing_change
        p_value = found.signals.get("missing_rate_p_value")
    elif score is None:  # an empty window: nothing measured
        score = 0.0
    entry: dict[str, Any] = {
        "kind": found.kind, "metric": metric, "drift_score": float(score),
        "compared": compared, "threshold": threshold, "p_value": p_value,
        "drifted": found.drifted,
        "distance": distance, "importance": weight,
        "rank_score": None if distance is None else distance * (1.0 if weight is None
                                                                else weight),
        "missing_rate": found.signals.get("missing_rate_current"),
        "findings": found.findings, "drift": None}
    if drift is not None and name in drift.features:
        later = drift.features[name]
        entry["drift"] = {"metric": later.metric, "value": later.value,
                          "threshold": later.threshold, "p_value": later.p_value,
                          "drifted": later.drifted,
                          "distance": later.scores.get("jensen_shannon_distance")}
    return entry


def _prediction_drift(window: Window, earlier: Window, rule: DefaultRule
                      ) -> dict[str, Any] | None:
    current = profile(window.predictions)
    if earlier.rows == 0 or current["prediction"].present == 0:
        return {"drifted": False, "metric": None, "value": None, "threshold": None,
                "findings": ["no earlier predictions to compare with" if earlier.rows == 0
                             else "no scalar predictions in the window"]}
    previous_table = earlier.predictions
    if previous_table.schema.field("prediction").type != \
            window.predictions.schema.field("prediction").type:
        previous_table = pa.table({"prediction": previous_table.column("prediction").cast(
            window.predictions.schema.field("prediction").type, safe=False)})
    previous = profile(previous_table)
    report = compare_profiles(previous, current, rule)
    found = report.features["prediction"]
    return {"drifted": found.drifted, "metric": found.metric, "value": found.value,
            "threshold": found.threshold, "p_value": found.p_value,
            "distance": found.scores.get("jensen_shannon_distance"),
            "findings": found.findings}


def _latency(values: np.ndarray[Any, Any]) -> dict[str, float | None]:
    if values.size == 0:
        return {"requests": 0, "p50": None, "p95": None, "p99": None}
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {"requests": int(values.size), "p50": float(p50), "p95": float(p95),
            "p99": float(p99)}


def _performance(window: Window, findings: list[str]) -> dict[str, Any] | None:
    """Accuracy and ROC AUC (classifiers: ground truth of two values or labels) or RMSE and
    MAE (regressors: numeric ground truth of more values), over the rows whose ground
    truth came back."""
    if window.truth is None or window.predicted is None:
        return None
    import pandas as pd

    truth = window.truth
    predicted = window.predicted
    keep = pd.notna(truth) & pd.notna(predicted)
    truth, predicted = truth[keep], predicted[keep]
    if truth.size == 0:
        return None
    t_num = pd.to_numeric(pd.Series(truth), errors="coerce").to_numpy(dtype=np.float64)
    p_num = pd.to_numeric(pd.Series(predicted), errors="coerce").to_numpy(dtype=np.float64)
    out: dict[str, Any] = {"rows": int(truth.size)}
    numeric = not np.isnan(t_num).any() and not np.isnan(p_num).any()
    binary = numeric and set(np.unique(t_num)) <= {0.0, 1.0}
    if binary and ((p_num >= 0) & (p_num <= 1)).all():
        out["task"] = "classification"
        out["accuracy"] = float(np.mean((p_num >= 0.5) == (t_num == 1.0)))
        if np.unique(t_num).size == 2:
            from sklearn.metrics import roc_auc_score

            out["roc_auc"] = float(roc_auc_score(t_num, p_num))
        else:
            findings.append("ground truth holds one class only: ROC AUC is not defined")
    elif numeric and np.unique(t_num).size > 2:
        out["task"] = "regression"
        error = p_num - t_num
        out["rmse"] = float(np.sqrt(np.mean(error * error)))
        out["mae"] = float(np.mean(np.abs(error)))
    else:
        out["task"] = "classification"
        out["accuracy"] = float(np.mean(truth.astype(str) == predicted.astype(str)))
    return out


def _objectives(config: Mapping[str, Any], result: Mapping[str, Any], findings: list[str]
                ) -> dict[str, Any]:
    from shipyard.monitoring.config import OBJECTIVES

    out: dict[str, Any] = {}
    latency = result["latency_ms"]
    performance = result["performance"] or {}
    for name, limit in dict(config.get("objectives") or {}).items():
        if name.startswith("latency_"):
            value = latency.get(name.removeprefix("latency_").removesuffix("_ms"))
        elif name == "error_rate":
            value = result["errors"]["rate"]
        else:
            value = performance.get(name)
        breached = value is not None and (value > limit if OBJECTIVES[name] == "max"
                                          else value < limit)
        out[name] = {"value": value, "limit": limit, "breached": bool(breached)}
    return out



# -- JSON-ready results (shared with running and alerting) --------------------------------

def _clean(value: Any) -> Any:
    """JSON-ready: non-finite numbers as None, NumPy scalars as Python's."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _clean_list(values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    cleaned: list[dict[str, Any]] = _clean(values)
    return cleaned

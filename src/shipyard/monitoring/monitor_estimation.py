"""Performance without labels on a monitor: the fitted estimator kept in the monitor's config
(``performance_estimator``: ``estimation_store``'s JSON document, numbers and XGBoost's JSON,
never a pickle) estimates each window's accuracy and ROC AUC, or MAE and RMSE, from its
features and predictions, with a band and a ``reliable`` flag, next to the value measured
from feedback where ground truth came back.

The logged prediction is the estimator's model output: a classifier's score for the positive
class (its decision is ``score >= threshold``, as the measured accuracy takes it), a
regressor's prediction. The whole window is one chunk.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from shipyard.errors import InvalidArgument

if TYPE_CHECKING:
    from shipyard.monitoring.estimation_model import PerformanceEstimator
    from shipyard.monitoring.profiles import DataProfile
    from shipyard.monitoring.windows import Window

__all__ = ["KEY", "check_estimator", "estimate_window", "summary"]

KEY = "performance_estimator"


def load(document: Mapping[str, Any]) -> PerformanceEstimator:
    """The estimator in ``document``; a document that does not load names the field."""
    from shipyard.monitoring.estimation_store import estimator_from_dict

    try:
        return estimator_from_dict(dict(document))
    except InvalidArgument as exc:
        raise InvalidArgument(f"{KEY}: {exc}"[:300], field=KEY) from None
    except Exception as exc:  # malformed numbers or models: XGBoost's, NumPy's errors
        raise InvalidArgument(f"{KEY} is not a fitted performance estimator: "
                              f"{type(exc).__name__}: {exc}"[:300], field=KEY) from None


def check_estimator(document: Mapping[str, Any], baseline: DataProfile) -> None:
    """Refuse an estimator that does not load or whose features the baseline lacks (the
    request log is read by the baseline's columns)."""
    estimator = load(document)
    missing = [name for name in estimator.features if name not in baseline.features]
    if missing:
        raise InvalidArgument(f"{KEY} uses features the baseline does not have: "
                              f"{missing[:5]}", field=KEY)


def summary(document: Mapping[str, Any]) -> dict[str, Any]:
    """What a monitor shows of its estimator (not the models themselves)."""
    from shipyard.monitoring.estimation_model import METRICS

    task = str(document.get("task"))
    return {"task": task, "metrics": list(METRICS.get(task, ())),
            "features": list(document.get("features") or []),
            "confidence": document.get("confidence"),
            "reference_metrics": dict(document.get("reference_metrics") or {}),
            "reference_rows": document.get("reference_rows")}


def estimate_window(document: Mapping[str, Any], window: Window,
                    performance: Mapping[str, Any] | None, findings: list[str]
                    ) -> dict[str, Any] | None:
    """The window's estimated performance: per metric ``estimate``, ``lower``, ``upper``,
    ``reliable``, and ``actual`` (measured from feedback, None without it); None when the
    window holds no scalar predictions. A window the estimator cannot read is a finding."""
    if window.rows == 0:
        return None
    estimator = load(document)
    predicted = window.predictions.column("prediction")
    if not pa.types.is_floating(predicted.type) and not pa.types.is_integer(predicted.type):
        findings.append("the predictions are not numbers: performance is not estimated")
        return None
    values = np.asarray(predicted.cast(pa.float64()).to_numpy(zero_copy_only=False),
                        dtype=np.float64)
    keep = np.isfinite(values)
    if not keep.any():
        findings.append("no prediction in the window is a number: performance is not "
                        "estimated")
        return None

    present = [name for name in estimator.features if name in window.features.column_names]
    frame = window.features.select(present).to_pandas()
    frame = frame[keep].reset_index(drop=True)
    for name in estimator.features:
        if name not in present:  # no logged row carries it: all missing (routed as missing)
            frame[name] = None if name in estimator.categories else np.nan
    kept = values[keep]
    if estimator.task == "classification" and estimator.score is not None:
        frame[estimator.score] = kept
        if estimator.prediction is not None:
            frame[estimator.prediction] = (kept >= estimator.threshold).astype(np.int64)
    elif estimator.prediction is not None:
        frame[estimator.prediction] = kept
    try:
        result = estimator.estimate(frame)
    except InvalidArgument as exc:
        findings.append(f"performance is not estimated: {exc}"[:500])
        return None
    measured = performance or {}
    metrics: dict[str, Any] = {}
    reliable = True
    for chunk in result.chunks:
        actual = measured.get(chunk.metric) if measured.get("task") == estimator.task \
            else None
        metrics[chunk.metric] = {
            "estimate": chunk.estimate, "lower": chunk.lower, "upper": chunk.upper,
            "reliable": chunk.reliable, "reference": chunk.reference, "actual": actual,
            "covered": None if actual is None else chunk.lower <= actual <= chunk.upper}
        reliable = reliable and chunk.reliable
        outside = chunk.outside_share
    if not reliable:
        findings.append(f"the estimated performance is unreliable: {outside:.1%} of the "
                        "window's rows lie outside the estimator's reference data")
    return {"task": estimator.task, "rows": int(keep.sum()), "confidence": result.confidence,
            "reliable": reliable, "outside_share": outside, "metrics": metrics}

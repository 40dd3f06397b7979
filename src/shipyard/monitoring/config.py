"""A monitor's configuration, checked: durations (``"1h"``), thresholds, objectives and
alert channels. Every refusal is an ``InvalidArgument`` naming the field. No store and no
network here: the client checks with it before sending, the service before saving."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from shipyard.errors import InvalidArgument

__all__ = [
    "CHANNEL_TYPES",
    "OBJECTIVES",
    "check_alert_after",
    "check_channels",
    "check_config",
    "check_objectives",
    "check_performance_estimator",
    "check_thresholds",
    "parse_duration",
]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
MIN_INTERVAL = 60
MAX_INTERVAL = 366 * 86400
MAX_FEATURES = 1000
MAX_CHANNELS = 10
MAX_URL = 2048
# Objectives: the latency percentiles and error rate may not exceed their limit; accuracy and
# ROC AUC may not fall below theirs; RMSE and MAE may not exceed theirs.
OBJECTIVES = {
    "latency_p50_ms": "max", "latency_p95_ms": "max", "latency_p99_ms": "max",
    "error_rate": "max", "accuracy": "min", "roc_auc": "min", "rmse": "max", "mae": "max",
}
CHANNEL_TYPES = ("log", "webhook", "email", "event")
# A fitted performance estimator kept in the config: estimation_store's JSON document.
ESTIMATOR_FORMAT = "shipyard.performance-estimator"  # estimation_store.FORMAT
MAX_ESTIMATOR_BYTES = 8 << 20
_EMAIL = re.compile(r"^[^@\s<>,;]{1,64}@[A-Za-z0-9.-]{1,255}$")


def parse_duration(value: str | int | float, field: str) -> int:
    """Seconds in ``value``: a number of seconds, or ``"30m"``, ``"1h"``, ``"1d"``, ``"1w"``."""
    if isinstance(value, bool):
        raise InvalidArgument(f"{field} must be a duration such as '1h' or 3600", field=field)
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise InvalidArgument(f"{field} must be a duration such as '1h', '30m', '1d' or a "
                              f"number of seconds, not {str(value)[:40]!r}", field=field)
    if not math.isfinite(seconds) or not MIN_INTERVAL <= seconds <= MAX_INTERVAL:
        raise InvalidArgument(f"{field} must be between 1 minute and 366 days", field=field)
    return int(seconds)


def _number(value: Any, field: str, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(float(value)) or value < 0:
        raise InvalidArgument(f"{what} must be a number >= 0, not {str(value)[:40]!r}",
                              field=field)
    return float(value)


def check_thresholds(value: Any) -> float | dict[str, float] | None:
    """None (the calibrated rule), one number for every feature, or feature -> number."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        if len(value) > MAX_FEATURES:
            raise InvalidArgument(f"thresholds names more than {MAX_FEATURES} features",
                                  field="thresholds")
        out: dict[str, float] = {}
        for name, threshold in value.items():
            if not isinstance(name, str) or not 1 <= len(name) <= 256:
                raise InvalidArgument("thresholds' keys must be feature names",
                                      field="thresholds")
            out[name] = _number(threshold, "thresholds", f"the threshold for {name!r}")
        return out
    return _number(value, "thresholds", "thresholds")


def check_objectives(value: Mapping[str, Any] | None) -> dict[str, float]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidArgument("objectives must map an objective to its limit",
                              field="objectives")
    out: dict[str, float] = {}
    for name, limit in value.items():
        if name not in OBJECTIVES:
            raise InvalidArgument(f"unknown objective {str(name)[:40]!r}: use one of "
                                  f"{', '.join(OBJECTIVES)}", field="objectives")
        out[name] = _number(limit, "objectives", f"the objective {name!r}")
        if name in ("error_rate", "accuracy", "roc_auc") and out[name] > 1:
            raise InvalidArgument(f"the objective {name!r} is a share between 0 and 1",
                                  field="objectives")
    return out


def check_channels(value: Iterable[Any] | None) -> list[dict[str, str]]:
    """Channels as ``{"type": ...}``: ``"log"``, ``"event"``, ``"webhook:<url>"``,
    ``"email:<address>"``, or dicts ``{"type": "webhook", "url": ...}``,
    ``{"type": "email", "to": ...}``."""
    if value is None:
        return [{"type": "log"}]
    if isinstance(value, (str, Mapping)):
        value = [value]
    channels: list[dict[str, str]] = []
    for item in value:
        if isinstance(item, str):
            kind, _, target = item.partition(":")
            item = {"type": kind} if not target else \
                {"type": kind, "url" if kind == "webhook" else "to": target}
        if not isinstance(item, Mapping) or item.get("type") not in CHANNEL_TYPES:
            raise InvalidArgument(f"an alert channel is one of {', '.join(CHANNEL_TYPES)} "
                                  "('webhook:<url>', 'email:<address>')", field="alert")
        kind = str(item["type"])
        channel = {"type": kind}
        if kind == "webhook":
            url = item.get("url")
            if not isinstance(url, str) or not url.startswith(("http://", "https://")) \
                    or len(url) > MAX_URL:
                raise InvalidArgument("a webhook channel needs an http(s) url",
                                      field="alert")
            channel["url"] = url
        elif kind == "email":
            to = item.get("to")
            if not isinstance(to, str) or not _EMAIL.match(to):
                raise InvalidArgument("an email channel needs one address ('to')",
                                      field="alert")
            channel["to"] = to
        extra = set(item) - {"type", "url", "to"}
        if extra:
            raise InvalidArgument(f"unknown alert channel settings: {sorted(extra)}",
                                  field="alert")
        channels.append(channel)
    if len(channels) > MAX_CHANNELS:
        raise InvalidArgument(f"at most {MAX_CHANNELS} alert channels", field="alert")
    return channels


def check_alert_after(value: Sequence[int] | None) -> list[int]:
    """``(k, n)``: alert once k of the last n windows breach."""
    if value is None:
        return [1, 1]
    if isinstance(value, (str, bytes)) or len(value) != 2 or any(
            isinstance(v, bool) or not isinstance(v, int) for v in value):
        raise InvalidArgument("alert_after is (k, n): alert once k of the last n windows "
                              "breach", field="alert_after")
    k, n = int(value[0]), int(value[1])
    if not 1 <= k <= n <= 100:
        raise InvalidArgument("alert_after needs 1 <= k <= n <= 100", field="alert_after")
    return [k, n]


def check_performance_estimator(value: Any) -> dict[str, Any] | None:
    """None, or a fitted performance estimator's JSON document (``estimation_store``) from a
    ``PerformanceEstimator``, its ``to_dict()`` or its JSON text. Only the document's outline
    is checked here (the client has no XGBoost to spare); the service loads it in full."""
    field = "performance_estimator"
    if value is None:
        return None
    if hasattr(value, "to_dict") and callable(value.to_dict):
        value = value.to_dict()
    if isinstance(value, str):
        if len(value) > MAX_ESTIMATOR_BYTES:
            raise InvalidArgument(f"{field} is over {MAX_ESTIMATOR_BYTES} bytes", field=field)
        try:
            value = json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            raise InvalidArgument(f"{field} is not JSON: pass a fitted estimator "
                                  "(shipyard.monitoring.estimation.fit_estimator)",
                                  field=field) from None
    if not isinstance(value, Mapping) or value.get("format") != ESTIMATOR_FORMAT:
        raise InvalidArgument(f"{field} must be a fitted performance estimator "
                              "(shipyard.monitoring.estimation.fit_estimator)", field=field)
    document = dict(value)
    if document.get("task") not in ("classification", "regression"):
        raise InvalidArgument(f"{field}'s task must be 'classification' or 'regression'",
                              field=field)
    names = document.get("features")
    if not isinstance(names, list):
        raise InvalidArgument(f"{field}'s features must be a list", field=field)
    _names(names, field)
    try:
        size = len(json.dumps(document, allow_nan=False))
    except (TypeError, ValueError, RecursionError):
        raise InvalidArgument(f"{field} holds values that are not plain JSON",
                              field=field) from None
    if size > MAX_ESTIMATOR_BYTES:
        raise InvalidArgument(f"{field} is over {MAX_ESTIMATOR_BYTES} bytes", field=field)
    return document


def check_config(*, interval: str | int | float, window: str | int | float | None,
                 sampling_rate: float, thresholds: Any, objectives: Mapping[str, Any] | None,
                 alert: Iterable[Any] | None, alert_after: Sequence[int] | None,
                 drift_windows: int, features: Iterable[str] | None,
                 categorical_features: Iterable[str] | None,
                 feature_importance: Mapping[str, float] | None,
                 attribution_rows: int = 200,
                 performance_estimator: Any = None) -> dict[str, Any]:
    """The checked, JSON-ready configuration ``create_monitor`` stores. With a
    ``performance_estimator``, its document is kept under that key (and each run estimates
    the window's performance with it)."""
    interval_seconds = parse_duration(interval, "interval")
    window_seconds = interval_seconds if window is None else parse_duration(window, "window")
    if isinstance(sampling_rate, bool) or not isinstance(sampling_rate, (int, float)) \
            or not 0 < sampling_rate <= 1:
        raise InvalidArgument("sampling_rate must be above 0 and at most 1",
                              field="sampling_rate")
    if isinstance(drift_windows, bool) or not isinstance(drift_windows, int) \
            or not 1 <= drift_windows <= 168:
        raise InvalidArgument("drift_windows must be a whole number from 1 to 168",
                              field="drift_windows")
    if isinstance(attribution_rows, bool) or not isinstance(attribution_rows, int) \
            or not 0 <= attribution_rows <= 1000:
        raise InvalidArgument("attribution_rows must be a whole number from 0 (no "
                              "attribution drift) to 1000", field="attribution_rows")
    names = None if features is None else _names(features, "features")
    estimator = check_performance_estimator(performance_estimator)
    importance: dict[str, float] = {}
    for name, weight in (feature_importance or {}).items():
        importance[str(name)] = _number(weight, "feature_importance",
                                        f"the importance of {name!r}")
    return {
        "interval_seconds": interval_seconds, "window_seconds": window_seconds,
        "sampling_rate": float(sampling_rate), "thresholds": check_thresholds(thresholds),
        "objectives": check_objectives(objectives), "alert": check_channels(alert),
        "alert_after": check_alert_after(alert_after), "drift_windows": drift_windows,
        "features": names,
        "categorical_features": _names(categorical_features or (), "categorical_features"),
        "feature_importance": importance, "attribution_rows": attribution_rows,
        **({} if estimator is None else {"performance_estimator": estimator}),
    }


def _names(values: Iterable[str], field: str) -> list[str]:
    if isinstance(values, str):
        raise InvalidArgument(f"{field} is a list of column names", field=field)
    names = list(values)
    if len(names) > MAX_FEATURES or any(
            not isinstance(n, str) or not 1 <= len(n) <= 256 for n in names):
        raise InvalidArgument(f"{field} is a list of at most {MAX_FEATURES} column names "
                              "of 1 to 256 characters", field=field)
    return names

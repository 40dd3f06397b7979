"""Monitoring in the SDK (re-exported as ``shipyard.*``): ``detect_drift`` (a computation in
the caller's process; it needs no session or server), and monitors on endpoints with their
runs, alerts and reports, in local and remote mode alike."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from shipyard.monitoring import models
from shipyard.monitoring.config import check_config
from shipyard.monitoring.drift import detect_drift
from shipyard.monitoring.models import Alert, MonitorRun
from shipyard.monitoring.monitor_report import write_page
from shipyard.monitoring.port import MonitoringPort
from shipyard.monitoring.profiles import profile
from shipyard.sdk import session

__all__ = ["Monitor", "create_monitor", "delete_monitor", "detect_drift", "get_monitor",
           "list_alerts", "list_monitors", "monitoring_stats"]


def _monitoring() -> MonitoringPort:
    return session.current().monitoring


class Monitor:
    """A monitor on an endpoint: ``run_now()`` judges the window ending now, ``history()``
    lists its runs (newest first), ``alerts()`` what it raised, ``report(path)`` writes its
    HTML report over time; ``pause()`` stops its scheduled runs and ``resume()`` starts
    them again from the next window (windows that ended meanwhile are not caught up)."""

    def __init__(self, state: models.Monitor) -> None:
        self.state = state

    @property
    def name(self) -> str:
        return self.state.name

    @property
    def endpoint(self) -> str:
        return self.state.endpoint

    @property
    def features(self) -> list[str]:
        return self.state.features

    @property
    def config(self) -> dict[str, Any]:
        return self.state.config

    @property
    def next_run_at(self) -> datetime:
        return self.state.next_run_at

    @property
    def paused(self) -> bool:
        return self.state.state == "paused"

    def pause(self) -> Monitor:
        self.state = _monitoring().pause_monitor(self.name)
        return self

    def resume(self) -> Monitor:
        self.state = _monitoring().resume_monitor(self.name)
        return self

    def refresh(self) -> Monitor:
        self.state = _monitoring().get_monitor(self.name)
        return self

    def run_now(self) -> MonitorRun:
        return _monitoring().run_monitor(self.name)

    def history(self, limit: int = 100) -> list[MonitorRun]:
        return _monitoring().history(self.name, limit)

    def alerts(self, state: str | None = None, limit: int = 100) -> list[Alert]:
        return _monitoring().list_alerts(self.name, state, limit)

    def report(self, path: str | os.PathLike[str] | None = None, limit: int = 100) -> str:
        """The HTML report (plotly.js embedded: opens offline); written to ``path`` when
        given. Its text either way."""
        page = _monitoring().report_html(self.name, limit)
        if path is not None:
            write_page(path, page)
        return page

    def delete(self) -> None:
        _monitoring().delete_monitor(self.name)

    def __repr__(self) -> str:
        return f"Monitor({self.name!r}, endpoint={self.endpoint!r})"


def create_monitor(endpoint: str, baseline: Any, *, name: str | None = None,
                   features: Iterable[str] | None = None, interval: str | int = "1h",
                   window: str | int | None = None, sampling_rate: float = 1.0,
                   thresholds: Mapping[str, float] | float | None = None,
                   objectives: Mapping[str, float] | None = None,
                   alert: Sequence[Any] | None = None,
                   alert_after: Sequence[int] | None = None, drift_windows: int = 1,
                   categorical_features: Iterable[str] | None = None,
                   feature_importance: Mapping[str, float] | None = None,
                   attribution_rows: int = 200,
                   baseline_uri: str | None = None,
                   performance_estimator: Any = None) -> Monitor:
    """A monitor on ``endpoint``'s request log.

    ``baseline``: the training data (a DataFrame, Arrow table, Parquet path, DuckDB
    relation) or its ``DataProfile``; it is profiled here and kept with the monitor.
    ``interval``: how often it runs (``"1h"``); ``window``: how much of the log each run
    judges (the interval by default). ``thresholds``: None for the calibrated rule, a number
    for Vertex-style fixed thresholds on every feature, or feature -> threshold.
    ``objectives``: limits on ``latency_p50_ms``/``latency_p95_ms``/``latency_p99_ms``,
    ``error_rate`` (the share of requests answered with a 5xx), ``accuracy``, ``roc_auc``
    (lower limits), ``rmse``, ``mae``. ``alert``: channels (``"log"``, ``"event"``,
    ``"webhook:<url>"``, ``"email:<address>"``; default log); ``alert_after``: ``(k, n)``,
    alert once k of the last n windows breach. ``attribution_rows``: how many answered rows
    a run explains to judge feature-attribution drift (0: none).
    ``performance_estimator``: a fitted estimator
    (``shipyard.monitoring.estimation.fit_estimator``, its score or prediction column being
    what the endpoint returns, its features the baseline's) kept with the monitor: each run
    then records ``result["estimated_performance"]`` (per metric the estimate, its band,
    ``reliable``, and the measured value where feedback came back)."""
    config = check_config(interval=interval, window=window, sampling_rate=sampling_rate,
                          thresholds=thresholds, objectives=objectives, alert=alert,
                          alert_after=alert_after, drift_windows=drift_windows,
                          features=features, categorical_features=categorical_features,
                          feature_importance=feature_importance,
                          attribution_rows=attribution_rows,
                          performance_estimator=performance_estimator)
    if baseline_uri is None and isinstance(baseline, (str, os.PathLike)):
        baseline_uri = str(baseline)
    data = profile(baseline, categorical_features=config["categorical_features"])
    return Monitor(_monitoring().create_monitor(
        name or f"{endpoint}-monitor", endpoint=endpoint, baseline_profile=data.to_bytes(),
        config=config, baseline_uri=baseline_uri))


def get_monitor(name: str) -> Monitor:
    return Monitor(_monitoring().get_monitor(name))


def list_monitors(endpoint: str | None = None) -> list[Monitor]:
    return [Monitor(m) for m in _monitoring().list_monitors(endpoint)]


def delete_monitor(name: str) -> None:
    _monitoring().delete_monitor(name)


def list_alerts(monitor: str | None = None, state: str | None = None,
                limit: int = 100) -> list[Alert]:
    """Alerts, newest first (``state``: open or resolved)."""
    return _monitoring().list_alerts(monitor, state, limit)


def monitoring_stats(endpoint: str, monitor: str | None = None) -> dict[str, Any]:
    """The newest run of the endpoint's monitors: ``["feature_metrics"][feature]
    ["drift_score"]`` (with ``threshold``, ``drifted``, ``metric``), ``prediction_metrics``,
    ``latency_ms``, ``performance``, ``objectives``, ``findings``."""
    return _monitoring().monitoring_stats(endpoint, monitor)

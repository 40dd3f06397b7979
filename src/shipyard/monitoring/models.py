"""Monitoring's value types, shared by the service, the ports, the REST API and the client:
``Monitor`` (the configuration), ``MonitorRun`` (one judged window) and ``Alert``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = ["Alert", "Monitor", "MonitorRun"]


class Monitor(BaseModel):
    """A monitor on an endpoint. ``config`` holds what ``create_monitor`` was given, checked
    and normalised: ``features`` (None: every baseline feature), ``window_seconds``,
    ``sampling_rate``, ``thresholds``, ``objectives``, ``alert`` (the channels),
    ``alert_after`` ([k, n]), ``drift_windows``, ``feature_importance``,
    ``categorical_features``."""

    model_config = ConfigDict(frozen=True)

    id: str
    project: str
    name: str
    endpoint: str
    baseline_uri: str | None
    state: str
    interval_seconds: int
    next_run_at: datetime
    config: dict[str, Any]
    features: list[str]
    created_at: datetime
    created_by: str | None
    updated_at: datetime


class MonitorRun(BaseModel):
    """One window judged: ``result`` is the summary (per feature ``drift_score``,
    ``threshold``, ``drifted``; ``prediction``; ``objectives``; ``performance``;
    ``breaches``; ``findings``); ``alerts`` the ids of alerts this run raised."""

    model_config = ConfigDict(frozen=True)

    id: str
    monitor: str
    window_start: datetime
    window_end: datetime
    trigger: str
    state: str
    breached: bool
    result: dict[str, Any]
    error: str | None
    started_at: datetime
    finished_at: datetime
    alerts: list[str] = []


class Alert(BaseModel):
    """A durable alert: ``kind`` (skew, drift, prediction_drift, latency, performance),
    ``severity`` (warning or critical), ``state`` (open until a window no longer breaches,
    then resolved), ``features`` ranked by drift times feature importance, the model
    version served and the baseline, and each channel's delivery."""

    model_config = ConfigDict(frozen=True)

    id: str
    project: str
    monitor: str
    endpoint: str
    run_id: str
    kind: str
    severity: str
    state: str
    message: str
    features: list[dict[str, Any]]
    model: str | None
    model_version: int | None
    baseline_uri: str | None
    deliveries: list[dict[str, Any]]
    created_at: datetime
    resolved_at: datetime | None

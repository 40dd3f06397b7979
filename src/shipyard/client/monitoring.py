"""Monitoring over the REST API (the remote ``MonitoringPort``). The baseline profile is
built in the caller's process and sent as base64 of its compact bytes (never pickle)."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from pydantic import TypeAdapter

from shipyard.client.http import HttpClient
from shipyard.monitoring.models import Alert, Monitor, MonitorRun
from shipyard.validation import check_name

_MONITORS = TypeAdapter(list[Monitor])
_RUNS = TypeAdapter(list[MonitorRun])
_ALERTS = TypeAdapter(list[Alert])


class HttpMonitoring:
    def __init__(self, client: HttpClient) -> None:
        self._c = client

    def _path(self, name: str, rest: str = "") -> str:
        return self._c.project_path(f"/monitors/{quote(check_name(name, 'name'), safe='')}"
                                    f"{rest}")

    def create_monitor(self, name: str, *, endpoint: str, baseline_profile: bytes,
                       config: Mapping[str, Any], baseline_uri: str | None = None) -> Monitor:
        body = {"name": check_name(name, "name"), "endpoint": check_name(endpoint, "endpoint"),
                "baseline_profile": base64.b64encode(baseline_profile).decode(),
                "baseline_uri": baseline_uri,
                "window": config["window_seconds"],
                **{key: config[key] for key in (
                    "sampling_rate", "thresholds", "objectives", "alert",
                    "alert_after", "drift_windows", "features", "categorical_features",
                    "feature_importance", "attribution_rows")},
                "interval": config["interval_seconds"]}
        if config.get("performance_estimator") is not None:  # its JSON document, as text
            body["performance_estimator"] = json.dumps(config["performance_estimator"],
                                                       allow_nan=False)
        return Monitor.model_validate(self._c.json(
            "POST", self._c.project_path("/monitors"), json=body))

    def get_monitor(self, name: str) -> Monitor:
        return Monitor.model_validate(self._c.json("GET", self._path(name)))

    def list_monitors(self, endpoint: str | None = None) -> list[Monitor]:
        params = {} if endpoint is None else {"endpoint": check_name(endpoint, "endpoint")}
        return _MONITORS.validate_python(self._c.json(
            "GET", self._c.project_path("/monitors"), params=params))

    def delete_monitor(self, name: str) -> None:
        self._c.request("DELETE", self._path(name))

    def pause_monitor(self, name: str) -> Monitor:
        return Monitor.model_validate(self._c.json("POST", self._path(name, "/pause")))

    def resume_monitor(self, name: str) -> Monitor:
        return Monitor.model_validate(self._c.json("POST", self._path(name, "/resume")))

    def run_monitor(self, name: str) -> MonitorRun:
        return MonitorRun.model_validate(self._c.json("POST", self._path(name, "/run")))

    def history(self, name: str, limit: int = 100) -> list[MonitorRun]:
        return _RUNS.validate_python(self._c.json("GET", self._path(name, "/runs"),
                                                  params={"limit": limit}))

    def list_alerts(self, monitor: str | None = None, state: str | None = None,
                    limit: int = 100) -> list[Alert]:
        params: dict[str, Any] = {"limit": limit}
        if monitor is not None:
            params["monitor"] = check_name(monitor, "monitor")
        if state is not None:
            params["state"] = state
        return _ALERTS.validate_python(self._c.json(
            "GET", self._c.project_path("/monitor-alerts"), params=params))

    def monitoring_stats(self, endpoint: str, monitor: str | None = None) -> dict[str, Any]:
        params = {} if monitor is None else {"monitor": check_name(monitor, "monitor")}
        answer: dict[str, Any] = self._c.json(
            "GET", self._c.project_path(
                f"/endpoints/{quote(check_name(endpoint, 'endpoint'), safe='')}"
                "/monitoring-stats"), params=params)
        return answer

    def report_html(self, name: str, limit: int = 100) -> str:
        return self._c.request("GET", self._path(name, "/report"),
                               params={"limit": limit}).text

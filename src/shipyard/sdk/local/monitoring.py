"""Monitoring in local mode (the local ``MonitoringPort``): the services on the store; runs
read the request log under this process's artifact store."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from shipyard.monitoring import monitors
from shipyard.monitoring.models import Alert, Monitor, MonitorRun
from shipyard.monitoring.monitor_report import render_history

if TYPE_CHECKING:
    from shipyard.sdk.local import Scope


class LocalMonitoring:
    def __init__(self, scope: Scope) -> None:
        self._s = scope
        self._store = scope.store

    def create_monitor(self, name: str, *, endpoint: str, baseline_profile: bytes,
                       config: Mapping[str, Any], baseline_uri: str | None = None) -> Monitor:
        return monitors.create_monitor(self._store, self._s.ctx(), name, endpoint=endpoint,
                                       baseline_profile=baseline_profile, config=config,
                                       baseline_uri=baseline_uri)

    def get_monitor(self, name: str) -> Monitor:
        return monitors.get_monitor(self._store, self._s.project, name)

    def list_monitors(self, endpoint: str | None = None) -> list[Monitor]:
        return monitors.list_monitors(self._store, self._s.project, endpoint)

    def delete_monitor(self, name: str) -> None:
        monitors.delete_monitor(self._store, self._s.ctx(), name)

    def pause_monitor(self, name: str) -> Monitor:
        return monitors.pause_monitor(self._store, self._s.ctx(), name)

    def resume_monitor(self, name: str) -> Monitor:
        return monitors.resume_monitor(self._store, self._s.ctx(), name)

    def run_monitor(self, name: str) -> MonitorRun:
        return monitors.run_monitor(self._store, self._s.settings, self._s.project, name)

    def history(self, name: str, limit: int = 100) -> list[MonitorRun]:
        return monitors.history(self._store, self._s.project, name, limit)

    def list_alerts(self, monitor: str | None = None, state: str | None = None,
                    limit: int = 100) -> list[Alert]:
        return monitors.list_alerts(self._store, self._s.project, monitor=monitor,
                                    state=state, limit=limit)

    def monitoring_stats(self, endpoint: str, monitor: str | None = None) -> dict[str, Any]:
        return monitors.monitoring_stats(self._store, self._s.project, endpoint, monitor)

    def report_html(self, name: str, limit: int = 100) -> str:
        monitor = self.get_monitor(name)
        return render_history(monitor, self.history(name, limit))

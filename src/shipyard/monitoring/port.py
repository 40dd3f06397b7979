"""What the SDK needs from monitoring (local: ``shipyard.sdk.local.monitoring``; remote:
``shipyard.client.monitoring``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from shipyard.monitoring.models import Alert, Monitor, MonitorRun


class MonitoringPort(Protocol):
    def create_monitor(self, name: str, *, endpoint: str, baseline_profile: bytes,
                       config: Mapping[str, Any], baseline_uri: str | None = None) -> Monitor:
        ...

    def get_monitor(self, name: str) -> Monitor: ...

    def list_monitors(self, endpoint: str | None = None) -> list[Monitor]: ...

    def delete_monitor(self, name: str) -> None: ...

    def pause_monitor(self, name: str) -> Monitor: ...

    def resume_monitor(self, name: str) -> Monitor: ...

    def run_monitor(self, name: str) -> MonitorRun: ...

    def history(self, name: str, limit: int = 100) -> list[MonitorRun]: ...

    def list_alerts(self, monitor: str | None = None, state: str | None = None,
                    limit: int = 100) -> list[Alert]: ...

    def monitoring_stats(self, endpoint: str, monitor: str | None = None) -> dict[str, Any]:
        ...

    def report_html(self, name: str, limit: int = 100) -> str: ...

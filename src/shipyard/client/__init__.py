"""Remote mode: every SDK port over HTTP to a Shipyard server.

This package is the light client: it never imports ``shipyard.sdk``, the store or a
service module (import-linter holds it), so a process that only talks to a server loads
neither SQLAlchemy nor FastAPI.
"""

from __future__ import annotations

import httpx

from shipyard.client.automation import HttpAutomation
from shipyard.client.events import HttpEvents
from shipyard.client.http import HttpClient
from shipyard.client.identity import HttpIdentity
from shipyard.client.lineage import HttpLineage
from shipyard.client.monitoring import HttpMonitoring
from shipyard.client.pipelines import HttpPipelines
from shipyard.client.registry import HttpRegistry
from shipyard.client.serving import HttpServing
from shipyard.client.tracking import HttpTracking
from shipyard.config import Settings

__all__ = ["HttpClient", "HttpSession"]


class HttpSession:
    """One connection to a server and the ports that share it."""

    remote = True

    def __init__(self, settings: Settings, *, transport: httpx.BaseTransport | None = None
                 ) -> None:
        self.settings = settings
        self.project = settings.project
        self.client = HttpClient(settings, transport=transport)
        self.tracking = HttpTracking(self.client)
        self.lineage = HttpLineage(self.client)
        self.registry = HttpRegistry(self.client)
        self.pipelines = HttpPipelines(self.client)
        self.identity = HttpIdentity(self.client)
        self.serving = HttpServing(self.client)
        self.events = HttpEvents(self.client)
        self.monitoring = HttpMonitoring(self.client)
        self.automation = HttpAutomation(self.client)

    def close(self) -> None:
        self.client.close()

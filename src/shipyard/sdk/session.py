"""The SDK's current configuration and ports (set by ``shipyard.init``).

A session is one port per capability, all local (``shipyard.sdk.local``: the services on a
store this process opened) or all remote (``shipyard.client``: HTTP to a server); the SDK
functions only delegate to them.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Protocol

from shipyard.config import Settings

if TYPE_CHECKING:  # the ports' value types load with the port that is opened (CLI start-up)
    from shipyard.events.automation_port import AutomationPort
    from shipyard.events.port import EventsPort
    from shipyard.lineage.port import LineagePort
    from shipyard.monitoring.port import MonitoringPort
    from shipyard.pipelines.port import PipelinesPort
    from shipyard.registry.port import RegistryPort
    from shipyard.security.port import IdentityPort
    from shipyard.serving.port import ServingPort
    from shipyard.tracking.port import TrackingPort


class Session(Protocol):
    @property
    def settings(self) -> Settings: ...
    @property
    def project(self) -> str: ...
    @property
    def remote(self) -> bool: ...
    @property
    def tracking(self) -> TrackingPort: ...
    @property
    def lineage(self) -> LineagePort: ...
    @property
    def registry(self) -> RegistryPort: ...
    @property
    def pipelines(self) -> PipelinesPort: ...
    @property
    def identity(self) -> IdentityPort: ...
    @property
    def serving(self) -> ServingPort: ...
    @property
    def events(self) -> EventsPort: ...
    @property
    def monitoring(self) -> MonitoringPort: ...
    @property
    def automation(self) -> AutomationPort: ...

    def close(self) -> None: ...


_lock = threading.Lock()
_session: Session | None = None


def init(
    *,
    project: str | None = None,
    uri: str | None = None,
    artifacts: str | None = None,
    home: str | os.PathLike[str] | None = None,
    token: str | None = None,
) -> Settings:
    """Configure the SDK; arguments win over ``SHIPYARD_*`` variables, which win over defaults.

    ``uri`` chooses the mode: ``sqlite:///...`` or ``postgresql+psycopg://...`` for local mode,
    ``http(s)://host:port`` for a server.
    """
    global _session
    settings = Settings.resolve(home=home, uri=uri, artifacts=artifacts, project=project,
                                token=token)
    opened = open_session(settings)
    with _lock:
        old, _session = _session, opened
    if old is not None:
        old.close()
    return settings


def open_session(settings: Settings) -> Session:
    """The ports for ``settings``: remote for an ``http(s)://`` URI, local otherwise."""
    if settings.remote:
        from shipyard.client import HttpSession

        return HttpSession(settings)
    from shipyard.config import check_store_folder
    from shipyard.sdk.local import LocalSession

    check_store_folder(settings)
    return LocalSession(settings)


def current() -> Session:
    """The configured session, configured from the environment on first use."""
    global _session
    with _lock:
        if _session is None:
            _session = open_session(Settings.resolve())
        return _session


def settings() -> Settings:
    return current().settings


def reset() -> None:
    """Forget the configuration (tests, and ``init`` with a new environment)."""
    global _session
    with _lock:
        old, _session = _session, None
    if old is not None:
        old.close()

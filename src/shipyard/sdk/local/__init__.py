"""Local mode: every SDK port calls the services directly, on the store and artifact store
of the runtime this process opened (``open_runtime``)."""

from __future__ import annotations

from shipyard.config import Settings
from shipyard.context import RequestContext
from shipyard.runtime import Runtime, open_runtime
from shipyard.sdk.local.automation import LocalAutomation
from shipyard.sdk.local.events import LocalEvents
from shipyard.sdk.local.identity import LocalIdentity
from shipyard.sdk.local.lineage import LocalLineage
from shipyard.sdk.local.monitoring import LocalMonitoring
from shipyard.sdk.local.pipelines import LocalPipelines
from shipyard.sdk.local.registry import LocalRegistry
from shipyard.sdk.local.serving import LocalServing
from shipyard.sdk.local.tracking import LocalTracking
from shipyard.serving.service import deployed_versions

__all__ = ["LocalSession", "Scope"]


class Scope:
    """What every local port works with: the runtime and the caller's project and actor."""

    def __init__(self, settings: Settings, runtime: Runtime) -> None:
        self.settings = settings
        self.project = settings.project
        self.runtime = runtime
        self.store = runtime.store
        self.artifacts = runtime.artifacts
        self.deployments = runtime.hooks.deployments()
        # The OS user is looked up once: it costs more than a whole metric write otherwise.
        self._actor = RequestContext(project=self.project).actor

    def ctx(self, project: str | None = None) -> RequestContext:
        return RequestContext(project=self.project if project is None else project,
                              actor=self._actor)


class LocalSession:
    """The local ports over one runtime."""

    remote = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.project = settings.project
        # Serving tells the registry which versions endpoints serve (status "deployed").
        self.runtime = open_runtime(settings, deployment_lookups=(deployed_versions,))
        scope = Scope(settings, self.runtime)
        self.tracking = LocalTracking(scope)
        self.lineage = LocalLineage(scope)
        self.registry = LocalRegistry(scope)
        self.pipelines = LocalPipelines(scope)
        self.identity = LocalIdentity(scope)
        self.serving = LocalServing(scope)
        self.events = LocalEvents(scope)
        self.monitoring = LocalMonitoring(scope)
        self.automation = LocalAutomation(scope)

    def close(self) -> None:
        self.runtime.close()  # a no-op for the shared store every session uses

"""What every request handler needs: the runtime (store, artifact store, settings, hooks)
and who is asking."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from shipyard.artifacts import ArtifactStore
from shipyard.config import Settings
from shipyard.context import RequestContext
from shipyard.registry import DeploymentLookup
from shipyard.runtime import Runtime
from shipyard.server.readiness import Readiness
from shipyard.store import Store


@dataclass
class ServerState:
    runtime: Runtime
    json_limit: int
    upload_limit: int
    readiness: Readiness = field(init=False)

    def __post_init__(self) -> None:
        self.readiness = Readiness(self.runtime)

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def store(self) -> Store:
        return self.runtime.store

    @property
    def artifacts(self) -> ArtifactStore:
        return self.runtime.artifacts

    @property
    def deployments(self) -> DeploymentLookup | None:
        """The serving capability's lookup, for registry reads (``Runtime.hooks``)."""
        return self.runtime.hooks.deployments()


def server_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.shipyard
    return state


def request_context(request: Request) -> RequestContext:
    """Set by the policy dependency before any handler runs (see ``server.auth``)."""
    ctx: RequestContext = request.state.ctx
    return ctx

"""What every request handler needs: the store, the artifact store and who is asking."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from shipyard.artifacts import ArtifactStore
from shipyard.config import Settings
from shipyard.context import RequestContext
from shipyard.store import Store


@dataclass
class ServerState:
    settings: Settings
    store: Store
    artifacts: ArtifactStore
    json_limit: int
    upload_limit: int


def server_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.shipyard
    return state


def request_context(request: Request) -> RequestContext:
    """Set by the policy dependency before any handler runs (see ``server.auth``)."""
    ctx: RequestContext = request.state.ctx
    return ctx

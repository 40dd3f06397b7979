"""Health and identity."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from shipyard import __version__
from shipyard.security import service as security
from shipyard.server.auth import PROBLEM_RESPONSES
from shipyard.server.state import ServerState, server_state

router = APIRouter(tags=["service"], responses=PROBLEM_RESPONSES)


@router.get("/api/v1/health")
def health(state: Annotated[ServerState, Depends(server_state)]) -> dict[str, Any]:
    with state.store.read() as conn:
        conn.exec_driver_sql("SELECT 1")
    return {"status": "ok", "version": __version__}


@router.get("/api/v1/whoami")
def whoami(request: Request) -> dict[str, Any]:
    principal = request.state.principal
    # A project-bound token (a pipeline step's) is never admin, whoever owns it.
    admin = security.server_role(principal) is not None
    return {"name": principal.name, "kind": principal.kind, "admin": admin,
            "token_id": principal.token_id, "scopes": sorted(principal.scopes),
            "project": principal.project}

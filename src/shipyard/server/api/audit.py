"""The audit log, read-only: there is deliberately no route that changes or deletes it."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from shipyard import audit
from shipyard.context import RequestContext
from shipyard.server.api import params
from shipyard.server.auth import PROBLEM_RESPONSES
from shipyard.server.state import ServerState, request_context, server_state

router = APIRouter(tags=["audit"], responses=PROBLEM_RESPONSES)

State = Annotated[ServerState, Depends(server_state)]
Ctx = Annotated[RequestContext, Depends(request_context)]
Text = Annotated[str | None, Query(max_length=256)]
Limit = Annotated[int, Query(ge=1, le=10_000)]


@router.get("/api/v1/projects/{project}/audit",
            dependencies=[Depends(params.project_parameter)])
def project_audit(state: State, ctx: Ctx, actor: Text = None, action: Text = None,
                  outcome: Text = None, since: datetime | None = None,
                  limit: Limit = 100) -> list[dict[str, Any]]:
    return audit.query(state.store, project=ctx.project, actor=actor, action=action,
                       outcome=outcome, since=since, limit=limit)


@router.get("/api/v1/audit")
def server_audit(state: State, project: Text = None, actor: Text = None, action: Text = None,
                 outcome: Text = None, since: datetime | None = None,
                 limit: Limit = 100) -> list[dict[str, Any]]:
    return audit.query(state.store, project=project, actor=actor, action=action,
                       outcome=outcome, since=since, limit=limit)


@router.get("/api/v1/audit/verify")
def verify_audit(state: State) -> dict[str, Any]:
    """Recompute the audit log's hash chain (server-wide: admins only)."""
    return dataclasses.asdict(audit.verify(state.store))

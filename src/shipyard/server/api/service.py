"""Health (liveness and readiness apart, as Kubernetes probes them) and identity."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from shipyard import __version__
from shipyard.security import service as security
from shipyard.server import errors
from shipyard.server.auth import PROBLEM_RESPONSES
from shipyard.server.state import ServerState, server_state

router = APIRouter(tags=["service"], responses=PROBLEM_RESPONSES)


# How long a probe should wait before asking an unready server again.
READY_RETRY_AFTER = 5
_LABELS = {"database": "database", "artifacts": "artifact store"}


@router.get("/api/v1/live")
def live() -> dict[str, Any]:
    """Liveness: the process answers. Touches neither the database nor the artifact
    store, so their outages never get a healthy server restarted."""
    return {"status": "ok", "version": __version__}


@router.get("/api/v1/ready", response_model=None, responses={
    200: {"description": "Every check passed",
          "content": {"application/json": {"example": {
              "status": "ready", "checks": {"database": "ok", "artifacts": "ok"}}}}},
    503: {"description": "A check failed: the problem names it; `checks` has each one"},
})  # fmt: skip
def ready(state: Annotated[ServerState, Depends(server_state)]) -> JSONResponse:
    """Readiness: the database answers and the artifact store can store and find a blob,
    each within a few seconds; otherwise 503 naming what failed."""
    outcomes = state.readiness.check()
    checks = {name: outcome.detail for name, outcome in outcomes.items()}
    failing = [name for name, outcome in outcomes.items() if not outcome.ok]
    if failing:
        reasons = "; ".join(f"the {_LABELS.get(n, n)} {outcomes[n].detail}" for n in failing)
        return errors.problem(503, f"not ready: {reasons}", kind="unavailable",
                              headers={"Retry-After": str(READY_RETRY_AFTER)}, checks=checks)
    return JSONResponse({"status": "ready", "checks": checks})


@router.get("/api/v1/health")
def health(state: Annotated[ServerState, Depends(server_state)]) -> dict[str, Any]:
    """The process answers and so does the database (kept for existing probes; prefer
    /api/v1/live and /api/v1/ready)."""
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

"""Administration: users, tokens (never a secret: the store keeps only their hashes, and the
page shows ids, names, scopes and dates), grants, and the audit log a page at a time.

The page needs the permission ``admin`` on the server, like ``GET /api/v1/users`` and
``GET /api/v1/audit``: anyone else is refused by the policy table as on any route. It reads
through the identity service (``security.service``); the audit log is paged by its row id
(newest first, ``before`` the last id shown), which ``audit.query`` does not offer.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import HTMLResponse

from shipyard.security import service as identity
from shipyard.security.models import TokenInfo
from shipyard.server.console.rendering import render
from shipyard.server.state import ServerState, server_state
from shipyard.store import Store
from shipyard.store.schema import audit_log

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
State = Annotated[ServerState, Depends(server_state)]
PAGE = "/console/projects/{project}/admin"
AUDIT_PAGE = 50
MAX_TOKENS = 200  # the newest shown; console sign-ins add one each


@router.get(PAGE)
def admin_page(
    request: Request, project: str, state: State,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    actor: Annotated[str, Query(max_length=128)] = "",
    action: Annotated[str, Query(max_length=128)] = "",
    tokens: Annotated[str, Query(pattern="^(active|all)$")] = "active",
) -> HTMLResponse:
    store = state.store
    found = identity.list_tokens(store, include_inactive=tokens == "all")
    events = _audit_page(store, before=before, actor=actor or None, action=action or None)
    more = len(events) > AUDIT_PAGE
    events = events[:AUDIT_PAGE]
    return render(request, "admin.html", {
        "section": "admin",
        "users": identity.list_principals(store),
        "tokens": found[:MAX_TOKENS], "token_total": len(found), "token_filter": tokens,
        "scopes": {t.id: ", ".join(sorted(t.scopes)) for t in found[:MAX_TOKENS]},
        "token_states": {t.id: token_state(t) for t in found[:MAX_TOKENS]},
        "grants": identity.list_grants(store),
        "events": events, "before": before, "actor": actor, "action": action,
        "next_before": events[-1]["id"] if more and events else None,
    })


def _audit_page(store: Store, *, before: int | None, actor: str | None, action: str | None
                ) -> list[dict[str, Any]]:
    """Up to ``AUDIT_PAGE + 1`` rows, newest first, older than ``before`` (the extra row
    says there is a next page)."""
    stmt = select(audit_log).order_by(audit_log.c.id.desc()).limit(AUDIT_PAGE + 1)
    if before is not None:
        stmt = stmt.where(audit_log.c.id < before)
    if actor is not None:
        stmt = stmt.where(audit_log.c.actor == actor)
    if action is not None:
        escaped = action.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(audit_log.c.action.like(f"{escaped}%", escape="\\"))
    with store.read() as conn:
        return [dict(row._mapping) for row in conn.execute(stmt)]


def token_state(token: TokenInfo) -> str:
    if token.revoked_at is not None:
        return "revoked"
    return "active" if token.active() else "expired"

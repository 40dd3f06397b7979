"""The append-only audit log: one row per mutating request and per denial.

``record`` is called inside the caller's write transaction, so the row commits or rolls back
with the change it describes. Nothing in Shipyard updates or deletes audit rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection, insert, select

from shipyard.context import RequestContext
from shipyard.store import Store
from shipyard.store.schema import audit_log
from shipyard.store.types import utcnow


class AuditEvent(BaseModel):
    id: int
    time: datetime
    actor: str | None = None
    token_id: str | None = None
    action: str
    resource: str
    project: str | None = None
    outcome: str
    request_id: str | None = None
    client: str | None = None
    detail: dict[str, Any] | None = None


def record(
    conn: Connection,
    ctx: RequestContext,
    action: str,
    resource: str,
    *,
    outcome: str = "ok",
    detail: dict[str, Any] | None = None,
) -> None:
    conn.execute(
        insert(audit_log).values(
            time=utcnow(),
            actor=ctx.actor,
            token_id=ctx.token_id,
            action=action,
            resource=resource[:512],
            project=ctx.project,
            outcome=outcome,
            request_id=ctx.request_id,
            client=ctx.client,
            detail=detail,
        )
    )


def query(
    store: Store,
    *,
    project: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    outcome: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    stmt = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if project is not None:
        stmt = stmt.where(audit_log.c.project == project)
    if actor is not None:
        stmt = stmt.where(audit_log.c.actor == actor)
    if action is not None:
        stmt = stmt.where(audit_log.c.action.like(f"{action}%"))
    if outcome is not None:
        stmt = stmt.where(audit_log.c.outcome == outcome)
    if since is not None:
        stmt = stmt.where(audit_log.c.time >= since)
    with store.read() as conn:
        return [dict(row._mapping) for row in conn.execute(stmt)]

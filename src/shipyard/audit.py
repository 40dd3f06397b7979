"""The append-only audit log: one row per mutating request and per denial.

``record`` is called inside the caller's write transaction, so the row commits or rolls back
with the change it describes. Nothing in Shipyard updates or deletes audit rows.

Rows are chained: each stores the sha256 of the previous row's hash and its own fields, so
whoever deletes or edits a row in the database (without rewriting every later row) breaks
the chain, and :func:`verify` names the first row that no longer fits. The last hash it
reports (``head``), kept somewhere else, also reveals rows cut off the end. Writers take
the chain's head in their own transaction: SQLite's write lock serialises them, and on
PostgreSQL a transaction-scoped advisory lock does.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from shipyard.context import RequestContext
from shipyard.security.models import AuditVerification
from shipyard.store import Store
from shipyard.store.dialect import advisory_lock
from shipyard.store.schema import audit_log
from shipyard.store.types import utcnow

_CHAIN_LOCK = 0x5A1B7A2E  # PostgreSQL advisory lock serialising writers of the chain
_BATCH = 5000


def chain_hash(previous: str | None, row: dict[str, Any]) -> str:
    """The hash a row with these fields stores after a row whose hash is ``previous``."""
    time = row["time"]
    if isinstance(time, datetime):
        time = time.astimezone(UTC).isoformat(timespec="microseconds")
    fields = [
        previous or "", time, row.get("actor"), row.get("token_id"), row["action"],
        row["resource"], row.get("project"), row["outcome"], row.get("request_id"),
        row.get("client"), row.get("detail"),
    ]  # fmt: skip
    data = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(data.encode()).hexdigest()


def record(
    conn: Connection,
    ctx: RequestContext,
    action: str,
    resource: str,
    *,
    outcome: str = "ok",
    detail: dict[str, Any] | None = None,
) -> None:
    advisory_lock(conn, _CHAIN_LOCK)
    previous = conn.execute(
        select(audit_log.c.hash).order_by(audit_log.c.id.desc()).limit(1)
    ).scalar()
    values: dict[str, Any] = {
        "time": utcnow(),
        "actor": ctx.actor,
        "token_id": ctx.token_id,
        "action": action,
        "resource": resource[:512],
        "project": ctx.project,
        "outcome": outcome,
        "request_id": ctx.request_id,
        "client": ctx.client,
        # As the database will give it back (JSON), so the hash is over what is stored.
        "detail": json.loads(json.dumps(detail, default=str)) if detail is not None else None,
    }
    values["hash"] = chain_hash(previous, values)
    conn.execute(insert(audit_log).values(**values))


def verify(store: Store) -> AuditVerification:
    """Walk the whole log in order and recompute the chain."""
    previous: str | None = None
    rows = unchained = 0
    last_id = 0
    chained = False
    while True:
        with store.read() as conn:
            batch = conn.execute(
                select(audit_log).where(audit_log.c.id > last_id)
                .order_by(audit_log.c.id).limit(_BATCH)
            ).all()  # fmt: skip
        if not batch:
            break
        for row in batch:
            entry = dict(row._mapping)
            rows += 1
            last_id = entry["id"]
            stored = entry["hash"]
            if stored is None:
                if chained:
                    return AuditVerification(False, rows, unchained, previous, entry["id"],
                                             "its hash was removed")
                unchained += 1
                continue
            chained = True
            if chain_hash(previous, entry) != stored:
                reason = ("it was edited, or a row before it was deleted or edited"
                          if previous is not None or rows > 1 else "it was edited")
                return AuditVerification(False, rows, unchained, previous, entry["id"], reason)
            previous = stored
    return AuditVerification(True, rows, unchained, previous)


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

"""Shared helpers for the security tests: a request context and an audit-log reader."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from shipyard.context import RequestContext
from shipyard.store import Store
from shipyard.store.schema import audit_log

CTX = RequestContext(project="p1", actor="root", request_id="req-1", client="127.0.0.1")


def audit_rows(store: Store, action: str | None = None) -> list[dict[str, Any]]:
    """Every audit row (oldest first), optionally only those whose action is ``action``."""
    stmt = select(audit_log).order_by(audit_log.c.id)
    if action is not None:
        stmt = stmt.where(audit_log.c.action == action)
    with store.read() as conn:
        return [dict(row._mapping) for row in conn.execute(stmt)]


def bootstrap_in_child(uri: str, home: str, start: Any, results: Any) -> None:
    """Run ``bootstrap_admin`` in a fresh process once ``start`` is set (spawn target)."""
    from pathlib import Path

    from shipyard.security.service import bootstrap_admin
    from shipyard.store import open_store

    store = open_store(uri, migrate=False, cached=False)
    try:
        start.wait(30)
        results.put(bootstrap_admin(store, Path(home)))
    except Exception as exc:  # reported to the parent, which fails the test with it
        results.put(f"error: {type(exc).__name__}: {exc}")
    finally:
        store.dispose()

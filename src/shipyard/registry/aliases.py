"""Aliases (``production``, ``staging``...) and their history.

Every move is one transaction that updates the alias and appends a history row (who, when,
why, from which version to which, and the promotion decision if one made it), so the
history is always the exact sequence of the alias's values. ``rollback`` walks that history
back one effective move at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from shipyard import audit
from shipyard.context import RequestContext
from shipyard.errors import FailedPrecondition
from shipyard.events import builtin as events
from shipyard.registry import _rows
from shipyard.registry._rows import DeploymentLookup
from shipyard.registry.models import AliasChange, ModelVersion
from shipyard.registry.refs import check_alias, check_version
from shipyard.store import Store
from shipyard.store.schema import alias_history as history
from shipyard.store.schema import model_aliases
from shipyard.store.types import utcnow
from shipyard.validation import check_name, check_text

MAX_REASON = 2000

# Called inside the transaction of every effective alias move with (conn, ctx, model row,
# alias, the version row it now points at or None): serving moves the deployments that
# follow the alias (it registers itself; the registry cannot import serving).
AliasFollower = Callable[[Connection, RequestContext, Row[Any], str, Row[Any] | None], None]
_followers: list[AliasFollower] = []


def add_follower(follower: AliasFollower) -> None:
    """Call ``follower`` in the transaction of every alias move from now on (once)."""
    if follower not in _followers:
        _followers.append(follower)


def set_alias(
    store: Store, ctx: RequestContext, name: str, alias: str, version: int, reason: str = "",
    *, deployments: DeploymentLookup | None = None,
) -> ModelVersion:
    """Point ``alias`` at ``version`` (a retired version is refused). ``deployments``: the
    serving capability's lookup, so the version comes back ``deployed`` where it is."""
    check_alias(alias)
    check_version(version)
    check_text(reason, "reason", limit=MAX_REASON)

    def work(conn: Connection) -> ModelVersion:
        model = _rows.model_row(conn, ctx.project, name, lock=True)
        move_alias(conn, ctx, model, alias, version, reason=reason)
        return _rows.version_result(conn, model, _rows.version_row(conn, model, version),
                                    deployments)

    return store.retry_write(work)


def delete_alias(
    store: Store, ctx: RequestContext, name: str, alias: str, reason: str = ""
) -> None:
    check_name(alias, "alias")
    check_text(reason, "reason", limit=MAX_REASON)

    def work(conn: Connection) -> None:
        model = _rows.model_row(conn, ctx.project, name, lock=True)
        _rows.aliased_row(conn, model, alias)  # NotFound naming the aliases that exist
        move_alias(conn, ctx, model, alias, None, reason=reason)

    store.retry_write(work)


def alias_history(
    store: Store, project: str, name: str, alias: str | None = None
) -> list[AliasChange]:
    """Every change to the model's aliases (or to one alias), oldest first."""
    if alias is not None:
        check_name(alias, "alias")
    with store.read() as conn:
        model = _rows.model_row(conn, project, name)
        stmt = select(history).where(history.c.model_id == model.id).order_by(history.c.id)
        if alias is not None:
            stmt = stmt.where(history.c.alias == alias)
        return [
            AliasChange.model_validate(dict(row._mapping), from_attributes=False)
            for row in conn.execute(stmt)
        ]


def rollback(
    store: Store, ctx: RequestContext, name: str, alias: str, reason: str = "",
    *, deployments: DeploymentLookup | None = None,
) -> ModelVersion:
    """Undo the alias's latest move that is not already undone: after moves 1 -> 2 -> 3,
    rollbacks go to 2, then to 1. A deleted alias is restored."""
    check_name(alias, "alias")
    check_text(reason, "reason", limit=MAX_REASON)

    def work(conn: Connection) -> ModelVersion:
        model = _rows.model_row(conn, ctx.project, name, lock=True)
        entry = _last_effective_move(conn, model.id, alias)
        if entry is None and not _ever_set(conn, model.id, alias):
            _rows.aliased_row(conn, model, alias)  # NotFound naming the aliases it has
        if entry is None or entry.from_version is None:
            raise FailedPrecondition(
                f"alias {alias!r} of {name!r} has no earlier version to roll back to",
                field="alias",
            )
        target = int(entry.from_version)
        decision = {"action": "rollback", "undoes": int(entry.id)}
        move_alias(conn, ctx, model, alias, target, reason=reason or "rollback", decision=decision)
        return _rows.version_result(conn, model, _rows.version_row(conn, model, target),
                                    deployments)

    return store.retry_write(work)


def move_alias(
    conn: Connection,
    ctx: RequestContext,
    model: Row[Any],
    alias: str,
    version: int | None,
    *,
    reason: str,
    decision: dict[str, Any] | None = None,
) -> int | None:
    """Set (or with ``None`` delete) an alias inside the caller's transaction and append
    its history row; return the version it pointed at before. A no-op move records
    nothing. The followers (``add_follower``) see every effective move."""
    row: Row[Any] | None = None
    if version is not None:
        row = _rows.version_row(conn, model, version)
        if row.status == "retired":
            raise FailedPrecondition(
                f"{model.name}:{version} is retired: set its status back to registered "
                "before pointing an alias at it",
                field="version",
            )
    previous = _rows.alias_version(conn, model, alias)
    if previous == version:
        return previous
    now = utcnow()
    where = (model_aliases.c.model_id == model.id) & (model_aliases.c.alias == alias)
    if version is None:
        conn.execute(delete(model_aliases).where(where))
    elif previous is None:
        conn.execute(
            insert(model_aliases).values(
                model_id=model.id, alias=alias, version=version, updated_at=now
            )
        )
    else:
        conn.execute(update(model_aliases).where(where).values(version=version, updated_at=now))
    conn.execute(
        insert(history).values(
            model_id=model.id,
            alias=alias,
            from_version=previous,
            to_version=version,
            actor=ctx.actor,
            reason=reason,
            decision=decision,
            created_at=now,
        )
    )
    events.announce(conn, ctx, events.ALIAS_MOVED, model=model.name, alias=alias,
                    version=version, previous_version=previous, reason=reason)
    audit.record(
        conn,
        ctx,
        "model.alias.delete" if version is None else "model.alias.set",
        f"models/{model.name}/aliases/{alias}",
        detail={"from": previous, "to": version, "reason": reason},
    )
    for follower in _followers:
        follower(conn, ctx, model, alias, row)
    return previous


def _ever_set(conn: Connection, model_id: str, alias: str) -> bool:
    found = conn.execute(
        select(history.c.id).where(history.c.model_id == model_id, history.c.alias == alias)
        .limit(1)
    ).first()
    return found is not None


def _last_effective_move(conn: Connection, model_id: str, alias: str) -> Row[Any] | None:
    rows = conn.execute(
        select(history)
        .where(history.c.model_id == model_id, history.c.alias == alias)
        .order_by(history.c.id.desc())
    ).all()
    undone: set[int] = set()
    for row in rows:
        decision = row.decision or {}
        if decision.get("action") == "rollback":
            undone.add(int(decision.get("undoes", -1)))
            continue
        if row.id in undone or row.from_version == row.to_version:
            continue
        return row
    return None

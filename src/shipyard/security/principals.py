"""Principals: the users and service accounts that hold tokens and project roles.

Names are unique server-wide. A principal is never deleted (audit rows and lineage name it);
it is disabled instead, which stops every token it holds on the next request. The last
enabled admin cannot be disabled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, insert, select, update

from shipyard import audit
from shipyard.context import RequestContext
from shipyard.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from shipyard.ids import new_id
from shipyard.security.authcache import AUTH_CACHE, database_key
from shipyard.security.models import PrincipalInfo
from shipyard.security.passwords import (
    hash_password,
)
from shipyard.security.tokens import (
    Scope,
)
from shipyard.store import Store
from shipyard.store.schema import principals
from shipyard.store.types import utcnow
from shipyard.validation import check_name

__all__ = [
    "Principal",
    "PrincipalInfo",
    "PrincipalKind",
    "create_principal",
    "disable_principal",
    "enable_principal",
    "list_principals",
]

PrincipalKind = Literal["user", "service"]
_KINDS: tuple[str, ...] = ("user", "service")


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: who it is and what its token's scopes let through."""

    id: str
    name: str
    kind: str
    is_admin: bool
    token_id: str | None = None
    scopes: frozenset[Scope] = frozenset()
    # Set for a token bound to one project (a pipeline step's): no role anywhere else.
    project: str | None = None


def create_principal(
    store: Store,
    ctx: RequestContext,
    name: str,
    kind: PrincipalKind = "user",
    *,
    password: str | None = None,
    is_admin: bool = False,
) -> PrincipalInfo:
    """Create a user or service account. A password (12+ characters) is for console logins
    of users only; service accounts authenticate with tokens."""
    check_name(name, "name")
    if kind not in _KINDS:
        raise InvalidArgument(
            f"kind {str(kind)[:40]!r} is not valid: choose user or service", field="kind"
        )
    if password is not None and kind == "service":
        raise InvalidArgument(
            "service accounts cannot have a password: create an API token for them instead",
            field="password",
        )
    # Hash before the transaction: argon2 takes tens of milliseconds, too long to hold the
    # write lock for.
    password_hash = hash_password(password) if password is not None else None

    def work(conn: Connection) -> PrincipalInfo:
        if principal_row(conn, name) is not None:
            raise AlreadyExists(f"principal {name!r} already exists", field="name")
        info = PrincipalInfo(
            id=new_id(),
            name=name,
            kind=kind,
            is_admin=is_admin,
            disabled=False,
            has_password=password_hash is not None,
            created_at=utcnow(),
        )
        conn.execute(
            insert(principals).values(
                id=info.id,
                name=name,
                kind=kind,
                password_hash=password_hash,
                is_admin=is_admin,
                disabled=False,
                created_at=info.created_at,
            )
        )
        audit.record(
            conn,
            ctx,
            "principals.create",
            f"principals/{name}",
            detail={"kind": kind, "is_admin": is_admin},
        )
        return info

    return store.retry_write(work)


def list_principals(store: Store) -> list[PrincipalInfo]:
    """Every principal, by name."""
    with store.read() as conn:
        rows = conn.execute(select(principals).order_by(principals.c.name)).all()
    return [_principal_info(row._mapping) for row in rows]


def disable_principal(store: Store, ctx: RequestContext, name: str) -> PrincipalInfo:
    """Disable a principal: its tokens stop working on the next request. The last enabled
    admin cannot be disabled (that would lock everyone out of server administration)."""
    return _set_disabled(store, ctx, name, disabled=True)


def enable_principal(store: Store, ctx: RequestContext, name: str) -> PrincipalInfo:
    """Re-enable a disabled principal; its unexpired, unrevoked tokens work again."""
    return _set_disabled(store, ctx, name, disabled=False)


def _set_disabled(store: Store, ctx: RequestContext, name: str, *, disabled: bool) -> PrincipalInfo:
    check_name(name, "name")

    def work(conn: Connection) -> PrincipalInfo:
        row = principal_row(conn, name)
        if row is None:
            raise NotFound(f"principal {name!r} not found", field="name")
        if disabled and row["is_admin"] and not row["disabled"] and admin_count(conn) <= 1:
            raise FailedPrecondition(
                f"{name!r} is the last enabled admin: make another principal admin first"
            )
        conn.execute(
            update(principals).where(principals.c.id == row["id"]).values(disabled=disabled)
        )
        action = "principals.disable" if disabled else "principals.enable"
        audit.record(conn, ctx, action, f"principals/{name}")
        return _principal_info({**row, "disabled": disabled})

    info = store.retry_write(work)
    # After the commit, so the next request re-reads the principal (see authcache).
    AUTH_CACHE.forget_principal(database_key(store), info.id)
    return info


def principal_row(conn: Connection, name: str) -> dict[str, Any] | None:
    row = conn.execute(select(principals).where(principals.c.name == name)).first()
    return dict(row._mapping) if row is not None else None


def require_principal(conn: Connection, name: str) -> dict[str, Any]:
    row = principal_row(conn, name)
    if row is None:
        raise NotFound(f"principal {name!r} not found", field="principal")
    return row


def admin_count(conn: Connection, *, enabled_only: bool = True) -> int:
    stmt = select(principals.c.id).where(principals.c.is_admin.is_(True))
    if enabled_only:
        stmt = stmt.where(principals.c.disabled.is_(False))
    return len(conn.execute(stmt).all())


def _principal_info(row: Any) -> PrincipalInfo:
    return PrincipalInfo(
        id=row["id"],
        name=row["name"],
        kind=row["kind"],
        is_admin=bool(row["is_admin"]),
        disabled=bool(row["disabled"]),
        has_password=row["password_hash"] is not None,
        created_at=row["created_at"],
    )

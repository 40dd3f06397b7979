"""Authorization: per-project grants, and the check every request must pass.

A request may do what its role in the project holds *and* its token's scopes let through.
An admin holds every permission everywhere, still limited by its token's scopes.
"""

from __future__ import annotations

from sqlalchemy import Connection, delete, insert, select, update

from shipyard import audit
from shipyard.context import RequestContext
from shipyard.errors import (
    NotFound,
    PermissionDenied,
)
from shipyard.security.authcache import AUTH_CACHE, database_key
from shipyard.security.models import GrantInfo
from shipyard.security.principals import Principal, require_principal
from shipyard.security.roles import ROLE_PERMISSIONS, Permission, Role, parse_role
from shipyard.security.tokens import (
    SCOPE_PERMISSIONS,
    effective_permissions,
)
from shipyard.store import Store
from shipyard.store.schema import grants, principals
from shipyard.store.types import utcnow
from shipyard.validation import check_name

__all__ = [
    "GrantInfo",
    "authorize",
    "grant",
    "list_grants",
    "require",
    "revoke_grant",
    "role_in",
]


def grant(
    store: Store, ctx: RequestContext, principal_name: str, project: str, role: Role | str
) -> GrantInfo:
    """Give ``principal_name`` ``role`` in ``project``, replacing any role it had there."""
    check_name(principal_name, "principal")
    check_name(project, "project")
    chosen = parse_role(role, project=True)

    def work(conn: Connection) -> GrantInfo:
        owner = require_principal(conn, principal_name)
        previous = conn.execute(
            select(grants.c.role)
            .where(grants.c.principal_id == owner["id"])
            .where(grants.c.project == project)
        ).scalar()
        now = utcnow()
        if previous is None:
            conn.execute(
                insert(grants).values(
                    principal_id=owner["id"], project=project, role=chosen.value, created_at=now
                )
            )
        else:
            conn.execute(
                update(grants)
                .where(grants.c.principal_id == owner["id"])
                .where(grants.c.project == project)
                .values(role=chosen.value, created_at=now)
            )
        audit.record(
            conn,
            ctx,
            "grants.set",
            f"projects/{project}/grants/{principal_name}",
            detail={"role": chosen.value, "previous": previous},
        )
        return GrantInfo(principal=principal_name, project=project, role=chosen, created_at=now)

    try:
        return store.retry_write(work)
    finally:
        _forget_roles(store, project)


def revoke_grant(store: Store, ctx: RequestContext, principal_name: str, project: str) -> None:
    """Take away ``principal_name``'s role in ``project``; ``NotFound`` if it had none."""
    check_name(principal_name, "principal")
    check_name(project, "project")

    def work(conn: Connection) -> None:
        owner = require_principal(conn, principal_name)
        result = conn.execute(
            delete(grants)
            .where(grants.c.principal_id == owner["id"])
            .where(grants.c.project == project)
        )
        if result.rowcount == 0:
            raise NotFound(f"{principal_name!r} has no role in project {project!r}")
        audit.record(conn, ctx, "grants.delete", f"projects/{project}/grants/{principal_name}")

    try:
        store.retry_write(work)
    finally:
        _forget_roles(store, project)


def _forget_roles(store: Store, project: str) -> None:
    # After the transaction (committed or not: forgetting is always safe), so the next
    # request re-reads the role (see authcache). Grants change rarely: dropping the whole
    # project's roles is simpler than looking up whose changed.
    AUTH_CACHE.forget_project(database_key(store), project)


def list_grants(
    store: Store, *, project: str | None = None, principal_name: str | None = None
) -> list[GrantInfo]:
    """Grants in one project and/or of one principal, by project then principal name."""
    stmt = (
        select(principals.c.name, grants.c.project, grants.c.role, grants.c.created_at)
        .join(principals, principals.c.id == grants.c.principal_id)
        .order_by(grants.c.project, principals.c.name)
    )
    if project is not None:
        check_name(project, "project")
        stmt = stmt.where(grants.c.project == project)
    if principal_name is not None:
        check_name(principal_name, "principal")
        stmt = stmt.where(principals.c.name == principal_name)
    with store.read() as conn:
        rows = conn.execute(stmt).all()
    return [
        GrantInfo(principal=r.name, project=r.project, role=Role(r.role), created_at=r.created_at)
        for r in rows
    ]


def role_in(store: Store, principal: Principal, project: str) -> Role | None:
    """``principal``'s role in ``project``: ``admin`` for an admin, else its grant or None.

    A token bound to a project (``principal.project``) has no role in any other."""
    if principal.project is not None and principal.project != project:
        return None
    if principal.is_admin:
        return Role.ADMIN
    db = database_key(store)
    hit, cached = AUTH_CACHE.role(db, principal.id, project)
    if hit:
        return cached
    generation = AUTH_CACHE.generation(db)
    with store.read() as conn:
        value = conn.execute(
            select(grants.c.role)
            .where(grants.c.principal_id == principal.id)
            .where(grants.c.project == project)
        ).scalar()
    role: Role | None = None
    if value is not None:
        try:
            role = Role(value)
        except ValueError:  # a role name from a newer version grants nothing here
            role = None
    AUTH_CACHE.put_role(db, principal.id, project, role, generation)
    return role


def server_role(principal: Principal) -> Role | None:
    """``principal``'s role for server-wide routes: ``admin`` for an admin's unbound token."""
    return Role.ADMIN if principal.is_admin and principal.project is None else None


def _needed_role(permission: Permission) -> Role:
    for role, held in ROLE_PERMISSIONS.items():
        if permission in held:
            return role
    raise AssertionError(f"no role holds {permission}")  # pragma: no cover


def authorize(
    principal: Principal, role: Role | None, permission: Permission, *, project: str | None
) -> None:
    """Allow the request or raise ``PermissionDenied`` naming what is missing.

    A request may do what its token's scopes let through *and* its role holds
    (:func:`~shipyard.security.tokens.effective_permissions`). ``project`` is named in the
    message (None for server-wide permissions).
    """
    held = ROLE_PERMISSIONS[role] if role is not None else frozenset()
    if permission in effective_permissions(principal.scopes, held):
        return
    needed = _needed_role(permission)
    where = f"in project {project!r}" if project is not None else "on this server"
    if permission in held:
        granted = sorted(s.value for s in principal.scopes) or ["none"]
        allowing = sorted(s.value for s, perms in SCOPE_PERMISSIONS.items() if permission in perms)
        raise PermissionDenied(
            f"token scopes ({', '.join(granted)}) do not allow {permission.value!r} {where}: "
            f"use a token with scope {' or '.join(allowing)}",
            permission=permission.value,
            project=project,
        )
    having = f"has role {role.value!r}" if role is not None else "has no role there"
    raise PermissionDenied(
        f"{principal.name!r} may not {permission.value!r} {where}: it needs role "
        f"{needed.value!r} or higher and {having}",
        permission=permission.value,
        project=project,
        required_role=needed.value,
    )


def require(
    store: Store,
    ctx: RequestContext,
    principal: Principal,
    permission: Permission,
    *,
    project: str | None,
    resource: str,
) -> Role | None:
    """:func:`role_in` then :func:`authorize`; a denial is written to the audit log (in its
    own transaction, as no change follows) before ``PermissionDenied`` propagates."""
    role = (
        role_in(store, principal, project)
        if project is not None
        else server_role(principal)
    )
    try:
        authorize(principal, role, permission, project=project)
    except PermissionDenied as exc:
        reason = exc.message[:500]

        def work(conn: Connection) -> None:
            audit.record(
                conn,
                ctx,
                f"authz.{permission.value}",
                resource,
                outcome="denied",
                detail={"reason": reason},
            )

        store.retry_write(work)
        raise
    return role

"""Grants, roles per project and the authorization check."""

from __future__ import annotations

import pytest

from shipyard.errors import InvalidArgument, NotFound, PermissionDenied
from shipyard.security import service
from shipyard.security.roles import Permission, Role
from shipyard.security.service import Principal
from shipyard.security.tokens import Scope
from shipyard.store import Store

from ._support import CTX, audit_rows

ALL = frozenset(Scope)


def _principal(store: Store, name: str, *, scopes: frozenset[Scope] = ALL) -> Principal:
    info = next(p for p in service.list_principals(store) if p.name == name)
    return Principal(info.id, info.name, info.kind, info.is_admin, "0123456789ab", scopes)


def test_grant_list_replace_and_revoke(store: Store) -> None:
    service.create_principal(store, CTX, "alice")
    service.create_principal(store, CTX, "bob")
    service.grant(store, CTX, "alice", "p1", "viewer")
    service.grant(store, CTX, "alice", "p1", Role.EDITOR)  # replaces
    service.grant(store, CTX, "bob", "p2", "manager")
    listed = [(g.principal, g.project, g.role) for g in service.list_grants(store)]
    assert listed == [("alice", "p1", Role.EDITOR), ("bob", "p2", Role.MANAGER)]
    assert [g.principal for g in service.list_grants(store, project="p2")] == ["bob"]
    assert [g.project for g in service.list_grants(store, principal_name="alice")] == ["p1"]
    assert service.role_in(store, _principal(store, "alice"), "p1") is Role.EDITOR
    assert service.role_in(store, _principal(store, "alice"), "p2") is None
    service.revoke_grant(store, CTX, "alice", "p1")
    assert service.role_in(store, _principal(store, "alice"), "p1") is None
    with pytest.raises(NotFound):
        service.revoke_grant(store, CTX, "alice", "p1")
    with pytest.raises(NotFound):
        service.grant(store, CTX, "nobody", "p1", "viewer")
    with pytest.raises(InvalidArgument, match="viewer, user, editor, manager"):
        service.grant(store, CTX, "bob", "p1", "admin")
    sets = audit_rows(store, "grants.set")
    assert [r["detail"] for r in sets][:2] == [
        {"role": "viewer", "previous": None},
        {"role": "editor", "previous": "viewer"},
    ]


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (None, set()),
        (Role.VIEWER, {"read"}),
        (Role.USER, {"read", "run", "predict"}),
        (Role.EDITOR, {"read", "run", "predict", "write"}),
        (Role.MANAGER, {"read", "run", "predict", "write", "delete", "grant"}),
    ],
)
def test_role_matrix_through_grants(store: Store, role: Role | None, allowed: set[str]) -> None:
    service.create_principal(store, CTX, "alice")
    if role is not None:
        service.grant(store, CTX, "alice", "p1", role)
    alice = _principal(store, "alice")
    held = service.role_in(store, alice, "p1")
    assert held is role
    for permission in Permission:
        if permission.value in allowed:
            service.authorize(alice, held, permission, project="p1")
        else:
            with pytest.raises(PermissionDenied):
                service.authorize(alice, held, permission, project="p1")


def test_admin_holds_everything_everywhere(store: Store) -> None:
    service.create_principal(store, CTX, "root", is_admin=True)
    root = _principal(store, "root")
    assert service.role_in(store, root, "any-project") is Role.ADMIN
    for permission in Permission:
        service.authorize(root, Role.ADMIN, permission, project="any-project")


def test_denial_names_permission_project_and_needed_role(store: Store) -> None:
    service.create_principal(store, CTX, "alice")
    service.grant(store, CTX, "alice", "p1", "viewer")
    alice = _principal(store, "alice")
    with pytest.raises(PermissionDenied) as caught:
        service.authorize(alice, Role.VIEWER, Permission.DELETE, project="p1")
    message = caught.value.message
    assert "'delete'" in message and "'p1'" in message and "'manager'" in message
    assert "'viewer'" in message
    assert caught.value.details["required_role"] == "manager"
    with pytest.raises(PermissionDenied, match="has no role there"):
        service.authorize(alice, None, Permission.READ, project="p2")
    with pytest.raises(PermissionDenied, match="on this server"):
        service.authorize(alice, None, Permission.ADMIN, project=None)


def test_require_records_denials_and_allows_the_rest(store: Store) -> None:
    service.create_principal(store, CTX, "alice")
    service.grant(store, CTX, "alice", "p1", "user")
    alice = _principal(store, "alice")
    assert (
        service.require(store, CTX, alice, Permission.PREDICT, project="p1", resource="endpoints/e")
        is Role.USER
    )
    with pytest.raises(PermissionDenied):
        service.require(store, CTX, alice, Permission.WRITE, project="p1", resource="models/m")
    with pytest.raises(PermissionDenied):
        service.require(store, CTX, alice, Permission.ADMIN, project=None, resource="principals")
    denied = [r for r in audit_rows(store) if r["outcome"] == "denied"]
    assert [(r["action"], r["resource"]) for r in denied] == [
        ("authz.write", "models/m"),
        ("authz.admin", "principals"),
    ]
    assert "'editor'" in denied[0]["detail"]["reason"]

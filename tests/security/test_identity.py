"""Principals and API tokens over a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from shipyard import audit
from shipyard.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from shipyard.security import authn, service
from shipyard.security import tokens as tokens_module
from shipyard.security.authcache import AUTH_CACHE
from shipyard.security.roles import Permission, Role
from shipyard.security.tokens import Scope, new_token
from shipyard.store import Store, open_store
from shipyard.store.schema import metadata, principals, tokens
from shipyard.store.types import utcnow

from ._support import CTX, audit_rows


def test_create_list_and_refuse_duplicate_principals(store: Store) -> None:
    alice = service.create_principal(store, CTX, "alice", password="a long passphrase")
    bot = service.create_principal(store, CTX, "ci-bot", "service")
    assert alice.has_password and not alice.is_admin and alice.kind == "user"
    assert bot.kind == "service" and not bot.has_password
    assert [p.name for p in service.list_principals(store)] == ["alice", "ci-bot"]
    with pytest.raises(AlreadyExists):
        service.create_principal(store, CTX, "alice")
    with pytest.raises(InvalidArgument, match="user or service"):
        service.create_principal(store, CTX, "carol", "robot")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="token"):
        service.create_principal(store, CTX, "svc", "service", password="a long passphrase")
    with pytest.raises(InvalidArgument, match="not a valid name"):
        service.create_principal(store, CTX, "../etc")
    with pytest.raises(InvalidArgument, match="at least 12"):
        service.create_principal(store, CTX, "dave", password="short")
    assert [r["resource"] for r in audit_rows(store, "principals.create")] == [
        "principals/alice",
        "principals/ci-bot",
    ]
    stored = {r.name: r.password_hash for r in _rows(store, principals)}
    assert stored["alice"].startswith("$argon2id$")


def test_token_is_shown_once_and_stored_only_as_a_hash(store: Store) -> None:
    service.create_principal(store, CTX, "alice")
    created = service.create_token(store, CTX, "alice", name="laptop", scopes=["read"])
    assert created.plaintext.startswith("sy_") and created.plaintext not in repr(created)
    assert created.scopes == {Scope.READ} and created.expires_at is None
    (row,) = _rows(store, tokens)
    assert row.id == created.id
    assert row.hash == hashlib.sha256(created.plaintext.encode()).hexdigest()
    secret = created.plaintext.rsplit("_", 1)[1]
    # Nowhere in the database: not in the tokens table, not in the audit log.
    dump = repr([_rows(store, table) for table in metadata.sorted_tables])
    assert created.plaintext not in dump and secret not in dump
    (listed,) = service.list_tokens(store, principal_name="alice")
    assert listed.id == created.id and listed.active()
    assert not hasattr(listed, "plaintext") and not hasattr(listed, "hash")
    assert service.get_token(store, created.id).name == "laptop"


def test_authenticate_returns_the_principal_and_its_scopes(store: Store) -> None:
    service.create_principal(store, CTX, "alice")
    created = service.create_token(store, CTX, "alice", name="ci", scopes=["read", "predict"])
    who = service.authenticate(store, f"Bearer {created.plaintext}")
    assert (who.name, who.kind, who.is_admin) == ("alice", "user", False)
    assert who.token_id == created.id
    assert who.scopes == {Scope.READ, Scope.PREDICT}


def test_revocation_takes_effect_on_the_very_next_request(store: Store, store_uri: str) -> None:
    service.create_principal(store, CTX, "alice")
    created = service.create_token(store, CTX, "alice", name="ci")
    other_server = open_store(store_uri, cached=False)  # a second server on the same store
    try:
        assert service.authenticate(other_server, created.plaintext).name == "alice"
        revoked = service.revoke_token(store, CTX, created.id)
        assert revoked.revoked_at is not None and not revoked.active()
        for server in (store, other_server):
            with pytest.raises(Unauthenticated, match="revoked"):
                service.authenticate(server, created.plaintext)
    finally:
        other_server.dispose()
    again = service.revoke_token(store, CTX, created.id)  # idempotent
    assert again.revoked_at == revoked.revoked_at
    assert len(audit_rows(store, "tokens.revoke")) == 1
    with pytest.raises(NotFound):
        service.revoke_token(store, CTX, "0123456789ab")
    with pytest.raises(InvalidArgument, match="12 hex"):
        service.revoke_token(store, CTX, created.plaintext)


def test_expired_tokens_are_refused(store: Store) -> None:
    service.create_principal(store, CTX, "alice")
    created = service.create_token(
        store, CTX, "alice", name="short", expires_in=timedelta(minutes=5)
    )
    assert created.expires_at is not None
    assert service.authenticate(store, created.plaintext).name == "alice"
    with store.write() as conn:
        conn.execute(
            update(tokens)
            .where(tokens.c.id == created.id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    # Written behind the service's back, as another process would: that counts once the
    # cached lookup is older than its TTL (test_authcache checks the bound), so drop it.
    AUTH_CACHE.clear()
    with pytest.raises(Unauthenticated, match="expired"):
        service.authenticate(store, created.plaintext)
    assert service.list_tokens(store, include_inactive=False) == []
    with pytest.raises(InvalidArgument, match="positive"):
        service.create_token(store, CTX, "alice", name="x", expires_in=timedelta(0))


def test_unknown_wrong_secret_and_malformed_tokens_say_so_without_leaking(store: Store) -> None:
    service.create_principal(store, CTX, "alice")
    created = service.create_token(store, CTX, "alice", name="ci")
    service.revoke_token(store, CTX, created.id)
    with pytest.raises(Unauthenticated, match="malformed"):
        service.authenticate(store, "not-a-token")
    with pytest.raises(Unauthenticated, match="unknown API token"):
        service.authenticate(store, new_token().plaintext)
    # The right lookup id with a wrong secret learns nothing, not even that it is revoked.
    forged = created.plaintext[: -len("x")] + ("y" if not created.plaintext.endswith("y") else "z")
    with pytest.raises(Unauthenticated, match="unknown API token"):
        service.authenticate(store, forged)


def test_no_timing_oracle_on_token_existence(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    service.create_principal(store, CTX, "alice")
    created = service.create_token(store, CTX, "alice", name="ci")
    compared: list[str] = []
    real = tokens_module.verify_token

    def spy(plaintext: str, stored_hash: str, *, pepper: bytes | None = None) -> bool:
        compared.append(stored_hash)
        return real(plaintext, stored_hash, pepper=pepper)

    monkeypatch.setattr(authn, "verify_token", spy)
    service.authenticate(store, created.plaintext)
    with pytest.raises(Unauthenticated):
        service.authenticate(store, new_token().plaintext)
    # One hash and one constant-time comparison on both paths, of same-length digests.
    assert len(compared) == 2 and len(compared[0]) == len(compared[1]) == 64


def test_disabled_principal_tokens_stop_at_once_and_last_admin_is_kept(store: Store) -> None:
    service.create_principal(store, CTX, "root", is_admin=True)
    service.create_principal(store, CTX, "alice")
    created = service.create_token(store, CTX, "alice", name="ci")
    service.disable_principal(store, CTX, "alice")
    with pytest.raises(Unauthenticated, match="disabled"):
        service.authenticate(store, created.plaintext)
    with pytest.raises(FailedPrecondition, match="disabled"):
        service.create_token(store, CTX, "alice", name="again")
    service.enable_principal(store, CTX, "alice")
    assert service.authenticate(store, created.plaintext).name == "alice"
    with pytest.raises(FailedPrecondition, match="last enabled admin"):
        service.disable_principal(store, CTX, "root")
    with pytest.raises(NotFound):
        service.disable_principal(store, CTX, "nobody")


def test_scopes_default_by_principal_and_limit_permissions(store: Store) -> None:
    service.create_principal(store, CTX, "root", is_admin=True)
    service.create_principal(store, CTX, "alice")
    assert service.create_token(store, CTX, "root", name="t").scopes == {Scope.ADMIN}
    assert service.create_token(store, CTX, "alice", name="t").scopes == {Scope.WRITE}
    with pytest.raises(InvalidArgument, match="admin principals"):
        service.create_token(store, CTX, "alice", name="t", scopes=["admin"])
    service.grant(store, CTX, "alice", "p1", "editor")
    reader = service.authenticate(
        store, service.create_token(store, CTX, "alice", name="r", scopes=["read"]).plaintext
    )
    role = service.role_in(store, reader, "p1")
    assert role is Role.EDITOR
    service.authorize(reader, role, Permission.READ, project="p1")
    with pytest.raises(PermissionDenied, match="scope") as caught:
        service.authorize(reader, role, Permission.WRITE, project="p1")
    assert "'write'" in caught.value.message and "p1" in caught.value.message
    admin_reader = service.authenticate(
        store, service.create_token(store, CTX, "root", name="r", scopes=["read"]).plaintext
    )
    with pytest.raises(PermissionDenied):
        service.authorize(admin_reader, Role.ADMIN, Permission.DELETE, project="p1")


def test_a_failing_change_leaves_no_audit_row_claiming_success(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = audit.record

    def record_then_fail(*args: Any, **kwargs: Any) -> None:
        real(*args, **kwargs)  # the row is written inside the transaction...
        raise RuntimeError("disk on fire")  # ...which then fails

    monkeypatch.setattr(audit, "record", record_then_fail)
    with pytest.raises(RuntimeError):
        service.create_principal(store, CTX, "alice")
    monkeypatch.setattr(audit, "record", real)
    assert service.list_principals(store) == []
    assert audit_rows(store) == []
    service.create_principal(store, CTX, "alice")
    (row,) = audit_rows(store)
    assert (row["actor"], row["action"], row["outcome"], row["request_id"]) == (
        "root",
        "principals.create",
        "ok",
        "req-1",
    )


def _rows(store: Store, table: Any) -> list[Any]:
    with store.read() as conn:
        return list(conn.execute(select(table)))

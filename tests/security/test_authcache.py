"""The token and role cache keeps revocation immediate here and bounded elsewhere."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from sqlalchemy import update

from shipyard.errors import Unauthenticated
from shipyard.security import service
from shipyard.security.authcache import AUTH_CACHE, AuthCache, CachedToken, database_key
from shipyard.security.roles import Role
from shipyard.store import Store, open_store
from shipyard.store.schema import grants, tokens
from shipyard.store.types import utcnow
from tests.security._support import CTX


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeClock]:
    fake = FakeClock()
    monkeypatch.setattr(AUTH_CACHE, "_clock", fake)
    AUTH_CACHE.clear()
    yield fake
    AUTH_CACHE.clear()


def _user(store: Store, name: str = "alice") -> str:
    service.create_principal(store, CTX, name)
    return service.create_token(store, CTX, name, name="t").plaintext


def test_a_cached_token_still_needs_its_secret(store: Store, clock: FakeClock) -> None:
    token = _user(store)
    assert service.authenticate(store, token).name == "alice"
    assert AUTH_CACHE.token(database_key(store), token[3:15]) is not None
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    with pytest.raises(Unauthenticated, match="unknown API token"):
        service.authenticate(store, forged)


def test_revoking_counts_on_the_next_call(store: Store, clock: FakeClock) -> None:
    token = _user(store)
    service.authenticate(store, token)
    service.revoke_token(store, CTX, token[3:15])
    with pytest.raises(Unauthenticated, match="revoked"):
        service.authenticate(store, token)


def test_revoking_through_another_store_on_the_same_database(store: Store, store_uri: str,
                                                             clock: FakeClock) -> None:
    token = _user(store)
    service.authenticate(store, token)
    other = open_store(store_uri, cached=False)
    try:
        service.revoke_token(other, CTX, token[3:15])
    finally:
        other.dispose()
    with pytest.raises(Unauthenticated, match="revoked"):
        service.authenticate(store, token)


def test_disabling_counts_on_the_next_call(store: Store, clock: FakeClock) -> None:
    token = _user(store)
    service.authenticate(store, token)
    service.disable_principal(store, CTX, "alice")
    with pytest.raises(Unauthenticated, match="disabled"):
        service.authenticate(store, token)
    service.enable_principal(store, CTX, "alice")
    assert service.authenticate(store, token).name == "alice"


def test_grants_count_on_the_next_call(store: Store, clock: FakeClock) -> None:
    token = _user(store)
    principal = service.authenticate(store, token)
    assert service.role_in(store, principal, "p1") is None
    service.grant(store, CTX, "alice", "p1", "editor")
    assert service.role_in(store, principal, "p1") is Role.EDITOR
    service.grant(store, CTX, "alice", "p1", "viewer")
    assert service.role_in(store, principal, "p1") is Role.VIEWER
    service.revoke_grant(store, CTX, "alice", "p1")
    assert service.role_in(store, principal, "p1") is None


def test_expiry_is_checked_on_every_hit(store: Store, clock: FakeClock) -> None:
    token = _user(store)
    service.authenticate(store, token)
    db, lookup = database_key(store), token[3:15]
    entry = AUTH_CACHE.token(db, lookup)
    assert entry is not None
    # The cached row expired a moment ago (the cache itself is still fresh).
    AUTH_CACHE.put_token(db, lookup, dataclasses.replace(entry, expires_at=utcnow()),
                         AUTH_CACHE.generation(db))
    with pytest.raises(Unauthenticated, match="expired"):
        service.authenticate(store, token)


def test_other_processes_are_stale_for_at_most_the_ttl(store: Store,
                                                       clock: FakeClock) -> None:
    # Another process revoking or removing a grant writes the database and cannot reach
    # this cache: both count here once the entry is older than the TTL.
    token = _user(store)
    service.grant(store, CTX, "alice", "p1", "editor")
    principal = service.authenticate(store, token)
    assert service.role_in(store, principal, "p1") is Role.EDITOR
    with store.write() as conn:
        conn.execute(update(tokens).where(tokens.c.id == token[3:15])
                     .values(revoked_at=tokens.c.created_at))
        conn.execute(update(grants).values(role="viewer"))
    clock.now += AUTH_CACHE.ttl * 0.5
    assert service.authenticate(store, token).name == "alice"  # within the bound
    clock.now += AUTH_CACHE.ttl * 0.6
    with pytest.raises(Unauthenticated, match="revoked"):
        service.authenticate(store, token)
    assert service.role_in(store, principal, "p1") is Role.VIEWER
    assert AUTH_CACHE.ttl <= 1.0


def test_a_read_racing_an_invalidation_is_not_stored() -> None:
    cache = AuthCache(clock=FakeClock())
    entry = CachedToken(hash="h", expires_at=None, principal_id="p", name="n", kind="user",
                        is_admin=False, scopes=frozenset())
    generation = cache.generation("db")
    cache.forget_token("db", "abc")  # the revocation commits while the read is in flight
    cache.put_token("db", "abc", entry, generation)
    assert cache.token("db", "abc") is None
    cache.put_token("db", "abc", entry, cache.generation("db"))
    assert cache.token("db", "abc") == entry


def test_the_cache_is_bounded() -> None:
    cache = AuthCache(max_entries=3, clock=FakeClock())
    for i in range(10):
        cache.put_role("db", f"p{i}", "proj", Role.VIEWER, cache.generation("db"))
    assert [cache.role("db", f"p{i}", "proj")[0] for i in range(10)] == [False] * 7 + [True] * 3

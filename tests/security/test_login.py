"""Password logins: short-lived tokens, one message for every bad credential, throttling."""

from __future__ import annotations

from datetime import timedelta

import pytest
from argon2 import PasswordHasher, Type
from sqlalchemy import select, update

from shipyard.errors import Unauthenticated
from shipyard.security import authn, passwords, service
from shipyard.security.ratelimit import RateLimited, RateLimiter
from shipyard.store import Store
from shipyard.store.schema import principals
from shipyard.store.types import utcnow

from ._support import CTX, audit_rows

PASSWORD = "a long passphrase"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_login_issues_a_short_lived_token(store: Store) -> None:
    service.create_principal(store, CTX, "alice", password=PASSWORD)
    limiter = RateLimiter(capacity=5, period=60.0)
    issued = service.login(store, "alice", PASSWORD, "10.0.0.7", limiter=limiter)
    assert issued.expires_at is not None
    lifetime = issued.expires_at - utcnow()
    assert timedelta(hours=7) < lifetime <= service.LOGIN_TOKEN_LIFETIME
    assert service.authenticate(store, issued.plaintext).name == "alice"
    (row,) = audit_rows(store, "auth.login")
    assert (row["actor"], row["outcome"], row["client"]) == ("alice", "ok", "10.0.0.7")


def test_bad_credentials_get_one_message_and_are_recorded(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    service.create_principal(store, CTX, "alice", password=PASSWORD)
    service.create_principal(store, CTX, "bot", "service")
    dummies: list[str] = []
    real_dummy = passwords.verify_password_dummy

    def spy(password: str) -> bool:
        dummies.append(password)
        return real_dummy(password)

    monkeypatch.setattr(authn, "verify_password_dummy", spy)
    limiter = RateLimiter(capacity=100, period=60.0)
    messages = set()
    for name, password in [("alice", "wrong password!"), ("nobody", PASSWORD), ("bot", PASSWORD)]:
        with pytest.raises(Unauthenticated) as caught:
            service.login(store, name, password, "10.0.0.7", limiter=limiter)
        messages.add(caught.value.message)
    assert messages == {"invalid user name or password"}
    # Unknown users and password-less accounts still pay for one argon2 verification.
    assert dummies == [PASSWORD, PASSWORD]
    denied = audit_rows(store, "auth.login")
    assert [(r["actor"], r["outcome"]) for r in denied] == [
        ("alice", "denied"),
        ("nobody", "denied"),
        ("bot", "denied"),
    ]


def test_login_is_rate_limited_per_client_and_name(store: Store) -> None:
    service.create_principal(store, CTX, "alice", password=PASSWORD)
    clock = Clock()
    limiter = RateLimiter(capacity=3, period=60.0, clock=clock)
    for _ in range(3):
        with pytest.raises(Unauthenticated):
            service.login(store, "alice", "guess guess guess", "10.0.0.7", limiter=limiter)
    # Past the limit even the right password is not checked.
    with pytest.raises(RateLimited) as caught:
        service.login(store, "alice", PASSWORD, "10.0.0.7", limiter=limiter)
    assert caught.value.retry_after == 20.0
    # Another client, or another name from this client, has its own budget.
    service.login(store, "alice", PASSWORD, "10.0.0.8", limiter=limiter)
    with pytest.raises(Unauthenticated):
        service.login(store, "bob", PASSWORD, "10.0.0.7", limiter=limiter)
    clock.now += 20.0
    service.login(store, "alice", PASSWORD, "10.0.0.7", limiter=limiter)
    # A success resets the budget.
    for _ in range(3):
        with pytest.raises(Unauthenticated):
            service.login(store, "alice", "guess guess guess", "10.0.0.7", limiter=limiter)


def test_disabled_user_cannot_log_in(store: Store) -> None:
    service.create_principal(store, CTX, "root", is_admin=True)
    service.create_principal(store, CTX, "alice", password=PASSWORD)
    service.disable_principal(store, CTX, "alice")
    with pytest.raises(Unauthenticated, match="disabled"):
        service.login(store, "alice", PASSWORD, "10.0.0.7", limiter=RateLimiter())


def test_login_upgrades_an_outdated_hash(store: Store) -> None:
    service.create_principal(store, CTX, "alice", password=PASSWORD)
    weak = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1, type=Type.I).hash(PASSWORD)
    with store.write() as conn:
        conn.execute(
            update(principals).where(principals.c.name == "alice").values(password_hash=weak)
        )
    service.login(store, "alice", PASSWORD, "10.0.0.7", limiter=RateLimiter())
    with store.read() as conn:
        stored = conn.execute(
            select(principals.c.password_hash).where(principals.c.name == "alice")
        ).scalar_one()
    assert stored.startswith("$argon2id$") and stored != weak

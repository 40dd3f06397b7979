"""Token format, hashing, parsing, expiry and scopes (no store)."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from shipyard.errors import InvalidArgument, Unauthenticated
from shipyard.security.roles import ROLE_PERMISSIONS, Permission, Role
from shipyard.security.tokens import (
    TOKEN_PREFIX,
    Scope,
    effective_permissions,
    ensure_active,
    hash_token,
    new_token,
    parse_scopes,
    parse_token,
    verify_token,
)


def test_token_is_prefixed_and_carries_256_random_bits() -> None:
    issued = new_token()
    assert issued.plaintext.startswith(TOKEN_PREFIX)
    lookup, secret = issued.plaintext[len(TOKEN_PREFIX) :].split("_", 1)
    assert lookup == issued.lookup and len(lookup) == 12
    assert len(base64.urlsafe_b64decode(secret + "=")) * 8 >= 256
    many = {new_token().plaintext for _ in range(500)}
    assert len(many) == 500
    assert len({t.split("_")[1] for t in many}) == 500  # lookup ids do not repeat either


def test_only_the_hash_is_meant_for_storage() -> None:
    issued = new_token()
    assert issued.hash == hashlib.sha256(issued.plaintext.encode()).hexdigest()
    assert issued.plaintext not in repr(issued)
    assert issued.hash not in repr(issued)
    peppered = hash_token(issued.plaintext, pepper=b"server-secret")
    assert peppered != issued.hash
    assert verify_token(issued.plaintext, peppered, pepper=b"server-secret")
    assert not verify_token(issued.plaintext, peppered)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sy_",
        "sy_0123456789ab_short",
        "gh_0123456789ab_" + "a" * 43,
        "sy_0123456789AB_" + "a" * 43,  # the lookup id is lower-case hex
        "sy_0123456789ab_" + "a" * 42 + "!",
        "sy_0123456789ab_" + "a" * 44,
        "sy_0123456789ab_" + "é" * 43,
        "x" * 10_000,
        None,
        42,
    ],
)
def test_malformed_tokens_are_refused_without_echoing_them(text: object) -> None:
    with pytest.raises(Unauthenticated) as caught:
        parse_token(text)
    assert "malformed" in caught.value.message
    if isinstance(text, str) and len(text) > 8:  # long enough not to occur by chance
        assert text not in caught.value.message


def test_bearer_prefix_and_whitespace_are_accepted() -> None:
    issued = new_token()
    for presented in (
        issued.plaintext,
        f"Bearer {issued.plaintext}",
        f"  bearer {issued.plaintext} ",
    ):
        parsed = parse_token(presented)
        assert parsed.lookup == issued.lookup
        assert parsed.plaintext == issued.plaintext


def test_verify_token_rejects_wrong_secret_and_non_ascii() -> None:
    issued = new_token()
    assert verify_token(issued.plaintext, issued.hash)
    other = "B" if issued.plaintext.endswith("A") else "A"
    assert not verify_token(issued.plaintext[:-1] + other, issued.hash)
    assert not verify_token("sy_é", issued.hash)
    assert not verify_token(issued.plaintext, "not-a-hash")


def test_revoked_token_stays_revoked_even_if_the_revocation_time_is_ahead() -> None:
    now = datetime.now(UTC)
    with pytest.raises(Unauthenticated, match="revoked"):
        ensure_active(expires_at=None, revoked_at=now + timedelta(minutes=5), now=now)
    with pytest.raises(Unauthenticated, match="expired"):
        ensure_active(expires_at=now, revoked_at=None, now=now)
    ensure_active(expires_at=now + timedelta(seconds=1), revoked_at=None, now=now)
    ensure_active(expires_at=None, revoked_at=None)


def test_scopes_parse_case_insensitively_and_list_choices_on_error() -> None:
    assert parse_scopes([" READ", "predict"]) == {Scope.READ, Scope.PREDICT}
    with pytest.raises(InvalidArgument, match="read, predict, write, admin") as caught:
        parse_scopes(["root"])
    assert caught.value.field == "scopes"
    with pytest.raises(InvalidArgument, match="at least one"):
        parse_scopes([])


def test_scopes_limit_what_a_role_allows() -> None:
    manager = ROLE_PERMISSIONS[Role.MANAGER]
    assert effective_permissions([Scope.READ], manager) == {Permission.READ}
    assert effective_permissions([Scope.PREDICT], manager) == {Permission.PREDICT}
    assert Permission.ADMIN not in effective_permissions(
        [Scope.WRITE], ROLE_PERMISSIONS[Role.ADMIN]
    )
    assert effective_permissions([Scope.ADMIN], ROLE_PERMISSIONS[Role.VIEWER]) == {Permission.READ}

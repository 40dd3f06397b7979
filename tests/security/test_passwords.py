"""Password policy and argon2id hashing."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, Type

from shipyard.errors import InvalidArgument, TooLarge
from shipyard.security.passwords import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    check_password_strength,
    hash_password,
    needs_rehash,
    verify_password,
    verify_password_dummy,
)

GOOD = "correct horse battery"


def test_hashes_are_argon2id_salted_and_verify() -> None:
    first, second = hash_password(GOOD), hash_password(GOOD)
    assert first.startswith("$argon2id$")
    assert first != second  # a fresh salt each time
    assert GOOD not in first
    assert verify_password(GOOD, first)
    assert not verify_password(GOOD + "!", first)
    assert not verify_password(GOOD, "not a hash")


def test_password_policy_needs_twelve_characters_and_never_echoes() -> None:
    assert MIN_PASSWORD_LENGTH == 12
    short = "x" * (MIN_PASSWORD_LENGTH - 1)
    with pytest.raises(InvalidArgument, match="at least 12") as caught:
        hash_password(short)
    assert caught.value.field == "password"
    assert short not in caught.value.message
    assert check_password_strength("y" * MIN_PASSWORD_LENGTH) == "y" * MIN_PASSWORD_LENGTH
    with pytest.raises(TooLarge):
        hash_password("z" * (MAX_PASSWORD_LENGTH + 1))
    with pytest.raises(InvalidArgument):
        check_password_strength(b"bytes are not a password")


def test_weaker_or_other_variant_hashes_ask_for_a_rehash() -> None:
    assert not needs_rehash(hash_password(GOOD))
    weak = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1, type=Type.I).hash(GOOD)
    assert needs_rehash(weak)
    assert verify_password(GOOD, weak)  # still accepted, so the login can upgrade it
    assert needs_rehash("garbage")


def test_dummy_verification_never_succeeds() -> None:
    assert verify_password_dummy(GOOD) is False
    assert verify_password("x" * (MAX_PASSWORD_LENGTH + 1), hash_password(GOOD)) is False

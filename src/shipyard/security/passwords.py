"""Passwords, where a deployment uses them: argon2id through argon2-cffi.

Tokens are the primary credential; passwords exist for console logins. Hashes use
argon2-cffi's :class:`~argon2.PasswordHasher` defaults (argon2id, RFC 9106 low-memory
profile), so upgrading the library upgrades the parameters, and :func:`needs_rehash` tells
the caller to store a fresh hash after a successful login.
"""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from shipyard.errors import InvalidArgument, TooLarge

__all__ = [
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "check_password_strength",
    "hash_password",
    "needs_rehash",
    "verify_password",
    "verify_password_dummy",
]

MIN_PASSWORD_LENGTH = 12
# Long enough for any passphrase; bounded so a login request cannot make us hash megabytes.
MAX_PASSWORD_LENGTH = 1024

_hasher = PasswordHasher()  # stateless; constructing it does no I/O


def check_password_strength(password: object) -> str:
    """Return ``password`` if it is a string of 12 to 1024 characters.

    Raises ``InvalidArgument(field="password")`` (``TooLarge`` when too long); the message
    never contains the password.
    """
    if not isinstance(password, str):
        raise InvalidArgument("password must be a string", field="password")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidArgument(
            f"password is too short: use at least {MIN_PASSWORD_LENGTH} characters",
            field="password",
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise TooLarge(
            f"password is too long: use at most {MAX_PASSWORD_LENGTH} characters",
            field="password",
        )
    return password


def hash_password(password: str) -> str:
    """An argon2id hash (PHC string with salt and parameters) of a strong-enough password."""
    return _hasher.hash(check_password_strength(password))


def verify_password(password: str, stored_hash: str) -> bool:
    """True if ``password`` matches ``stored_hash``; False for a mismatch or a corrupt hash."""
    if not isinstance(password, str) or len(password) > MAX_PASSWORD_LENGTH:
        return False
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """True if ``stored_hash`` was made with other parameters or another argon2 variant."""
    try:
        return _hasher.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


@cache
def _dummy_hash() -> str:
    return _hasher.hash("shipyard-dummy-password-for-timing")


def verify_password_dummy(password: str) -> bool:
    """Spend the time of a real verification and return False.

    Call it when the user does not exist, so a login's timing does not reveal which user
    names are taken.
    """
    verify_password(password, _dummy_hash())
    return False

"""API tokens: random, prefixed, shown once, stored only as a hash, scoped.

A token looks like ``sy_<lookup>_<secret>``: ``sy_`` makes it recognisable to secret
scanners and to people; ``lookup`` is 12 hex characters (48 random bits) that the store
indexes to find the row without comparing secrets; ``secret`` is 43 URL-safe characters
holding 256 bits from :mod:`secrets`. Only :func:`hash_token` of the whole token is stored;
the plaintext exists once, in the :class:`IssuedToken` returned by :func:`new_token`.

Why SHA-256 and not a password hash: a slow KDF (argon2, bcrypt) exists to make guessing a
*low-entropy* secret expensive. A 256-bit random secret cannot be guessed whatever the hash
costs, so a single SHA-256 is as safe and keeps authentication well under the 0.1 ms budget
(issue 11). An optional server ``pepper`` switches to HMAC-SHA256, so a stolen database alone
cannot even confirm a leaked token.

Expiry, revocation and the row itself belong to the store; :func:`ensure_active` is the one
check the server applies to a row it found.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from shipyard.errors import InvalidArgument, Unauthenticated
from shipyard.security.roles import Permission

__all__ = [
    "SCOPE_PERMISSIONS",
    "TOKEN_PREFIX",
    "IssuedToken",
    "ParsedToken",
    "Scope",
    "effective_permissions",
    "ensure_active",
    "hash_token",
    "new_token",
    "parse_scopes",
    "parse_token",
    "verify_token",
]

TOKEN_PREFIX = "sy_"
_LOOKUP_BYTES = 6  # 12 hex characters; public, only needs to be unique enough to index
_SECRET_BYTES = 32  # 256 bits
_SECRET_CHARS = 43  # len(urlsafe_b64encode(32 bytes)) without '=' padding
_TOKEN = re.compile(r"sy_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
_MALFORMED = "malformed API token: expected sy_<12 hex characters>_<43 characters>"


class Scope(StrEnum):
    """What a token may be used for, whatever its owner's role allows."""

    READ = "read"  # read only
    PREDICT = "predict"  # call prediction routes only (a service account for an endpoint)
    WRITE = "write"  # everything a project role allows
    ADMIN = "admin"  # everything, including server administration (for an admin's token)


SCOPE_PERMISSIONS: dict[Scope, frozenset[Permission]] = {
    Scope.READ: frozenset({Permission.READ}),
    Scope.PREDICT: frozenset({Permission.PREDICT}),
    Scope.WRITE: frozenset(Permission) - {Permission.ADMIN},
    Scope.ADMIN: frozenset(Permission),
}
"""The permissions each scope lets through; a token's effective permissions are the union
over its scopes intersected with its owner's role (:func:`effective_permissions`)."""


@dataclass(frozen=True)
class IssuedToken:
    """A freshly made token. Show ``plaintext`` once; store ``lookup`` and ``hash`` only."""

    plaintext: str = field(repr=False)
    lookup: str
    hash: str = field(repr=False)


@dataclass(frozen=True)
class ParsedToken:
    """A presented token of the right shape; not yet verified against any stored hash."""

    lookup: str
    plaintext: str = field(repr=False)


def hash_token(plaintext: str, *, pepper: bytes | None = None) -> str:
    """The value to store for ``plaintext``: 64 hex characters (SHA-256, or HMAC with pepper)."""
    data = plaintext.encode("ascii")
    if pepper:
        return hmac.new(pepper, data, hashlib.sha256).hexdigest()
    return hashlib.sha256(data).hexdigest()


def new_token(*, pepper: bytes | None = None) -> IssuedToken:
    """Make a new random token (256-bit secret from :mod:`secrets`) and its stored hash."""
    lookup = secrets.token_hex(_LOOKUP_BYTES)
    secret = secrets.token_urlsafe(_SECRET_BYTES)
    plaintext = f"{TOKEN_PREFIX}{lookup}_{secret}"
    return IssuedToken(
        plaintext=plaintext, lookup=lookup, hash=hash_token(plaintext, pepper=pepper)
    )


def parse_token(text: object) -> ParsedToken:
    """Check the shape of a presented token and split out its lookup id.

    Accepts an optional ``Bearer `` prefix and surrounding whitespace. Raises
    ``Unauthenticated`` on anything else; the message never echoes the input, so a token
    pasted into the wrong field does not end up in logs or error bodies.
    """
    if not isinstance(text, str) or len(text) > 200:
        raise Unauthenticated(_MALFORMED)
    candidate = text.strip()
    if candidate[:7].lower() == "bearer ":
        candidate = candidate[7:].strip()
    match = _TOKEN.fullmatch(candidate)
    if match is None:
        raise Unauthenticated(_MALFORMED)
    return ParsedToken(lookup=match.group(1), plaintext=candidate)


def verify_token(plaintext: str, stored_hash: str, *, pepper: bytes | None = None) -> bool:
    """True if ``plaintext`` hashes to ``stored_hash``; compared in constant time."""
    try:
        computed = hash_token(plaintext, pepper=pepper)
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(computed.encode("ascii"), stored_hash.encode("utf-8"))


def ensure_active(
    *,
    expires_at: datetime | None,
    revoked_at: datetime | None,
    now: datetime | None = None,
) -> None:
    """Raise ``Unauthenticated`` if a token row is revoked or expired (times are UTC-aware)."""
    # Any revocation time counts, even one "in the future": servers sharing a database may
    # disagree about the clock, and a revoked token must stop working everywhere at once.
    if revoked_at is not None:
        raise Unauthenticated("API token has been revoked: create a new one")
    current = now or datetime.now(UTC)
    if expires_at is not None and expires_at <= current:
        raise Unauthenticated("API token has expired: create a new one")


def parse_scopes(values: Iterable[object], *, field: str = "scopes") -> frozenset[Scope]:
    """Parse scope names; raises ``InvalidArgument`` listing the valid choices. Never empty."""
    scopes: set[Scope] = set()
    for value in values:
        name = value.strip().lower() if isinstance(value, str) else ""
        try:
            scopes.add(Scope(name))
        except ValueError:
            shown = repr(value[:40]) if isinstance(value, str) else type(value).__name__
            raise InvalidArgument(
                f"{field}: {shown} is not a valid scope: choose from "
                + ", ".join(s.value for s in Scope),
                field=field,
            ) from None
    if not scopes:
        raise InvalidArgument(f"{field} must name at least one scope", field=field)
    return frozenset(scopes)


def effective_permissions(
    scopes: Iterable[Scope], role_permissions: Iterable[Permission]
) -> frozenset[Permission]:
    """What a request with this token may do: what its scopes let through AND its role holds."""
    allowed: set[Permission] = set()
    for scope in scopes:
        allowed |= SCOPE_PERMISSIONS[scope]
    return frozenset(allowed) & frozenset(role_permissions)

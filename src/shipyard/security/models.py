"""Identity and audit records as they cross the API: the same types in local and remote
mode, importable without the store (the HTTP client builds them from JSON)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from shipyard.security.roles import Role
from shipyard.security.tokens import Scope

__all__ = [
    "AuditEvent",
    "AuditVerification",
    "CreatedToken",
    "GrantInfo",
    "PrincipalInfo",
    "TokenInfo",
]


@dataclass(frozen=True)
class PrincipalInfo:
    """A principal as listed to administrators (never its password hash)."""

    id: str
    name: str
    kind: str
    is_admin: bool
    disabled: bool
    has_password: bool
    created_at: datetime


@dataclass(frozen=True)
class TokenInfo:
    """A stored token as listed: never its plaintext or hash."""

    id: str
    name: str
    principal: str
    scopes: frozenset[Scope]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    def active(self, now: datetime | None = None) -> bool:
        """True if the token is neither revoked nor expired at ``now`` (default: now)."""
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > (now or datetime.now(UTC))


@dataclass(frozen=True)
class CreatedToken:
    """A token just issued. ``plaintext`` is shown once and never stored or logged."""

    id: str
    name: str
    principal: str
    scopes: frozenset[Scope]
    expires_at: datetime | None
    plaintext: str = field(repr=False)


@dataclass(frozen=True)
class GrantInfo:
    """One principal's role in one project."""

    principal: str
    project: str
    role: Role
    created_at: datetime


class AuditEvent(BaseModel):
    id: int
    time: datetime
    actor: str | None = None
    token_id: str | None = None
    action: str
    resource: str
    project: str | None = None
    outcome: str
    request_id: str | None = None
    client: str | None = None
    detail: dict[str, Any] | None = None


@dataclass(frozen=True)
class AuditVerification:
    """What the audit log's check found. ``ok`` when every chained row fits; ``head`` is the
    last row's hash (keep it elsewhere to detect rows cut off the end later)."""

    ok: bool
    rows: int
    unchained: int  # rows written before the chain existed (migration 0002), all first
    head: str | None
    broken_at: int | None = None  # the id of the first row that does not fit
    reason: str | None = None

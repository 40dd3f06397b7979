"""What the SDK needs from identity and the audit log (local: ``shipyard.sdk.local.identity``
calls the identity service on the store, with no application-level auth: the operating
system or the database's own credentials are the boundary, DESIGN.md 6; remote:
``shipyard.client.identity`` asks the server, which checks the caller's token)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from shipyard.security.models import (
    AuditEvent,
    AuditVerification,
    CreatedToken,
    GrantInfo,
    PrincipalInfo,
    TokenInfo,
)


class IdentityPort(Protocol):
    def create_user(self, name: str, kind: str = "user", *, password: str | None = None,
                    admin: bool = False) -> PrincipalInfo: ...

    def list_users(self) -> list[PrincipalInfo]: ...

    def disable_user(self, name: str) -> PrincipalInfo: ...

    def enable_user(self, name: str) -> PrincipalInfo: ...

    def create_token(self, name: str, *, principal: str | None = None,
                     scopes: Sequence[str] | None = None,
                     expires_in_days: int | None = None) -> CreatedToken: ...

    def list_tokens(self, *, principal: str | None = None) -> list[TokenInfo]: ...

    def revoke_token(self, token_id: str) -> TokenInfo: ...

    def grant(self, principal: str, role: str, project: str) -> GrantInfo: ...

    def revoke_grant(self, principal: str, project: str) -> None: ...

    def list_grants(self, project: str) -> list[GrantInfo]: ...

    def audit_events(self, *, actor: str | None = None, action: str | None = None,
                     outcome: str | None = None, limit: int = 100) -> list[AuditEvent]: ...

    def verify_audit(self) -> AuditVerification: ...

"""Identity and the audit log in local mode (the local ``IdentityPort``).

No application-level auth here: whoever can open the store is its owner (the operating
system or the database's own credentials are the boundary, DESIGN.md 6).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING

from shipyard import audit
from shipyard.errors import InvalidArgument
from shipyard.security import service
from shipyard.security.models import (
    AuditEvent,
    AuditVerification,
    CreatedToken,
    GrantInfo,
    PrincipalInfo,
    TokenInfo,
)

if TYPE_CHECKING:
    from shipyard.sdk.local import Scope


class LocalIdentity:
    def __init__(self, scope: Scope) -> None:
        self._s = scope
        self._store = scope.store

    def create_user(self, name: str, kind: str = "user", *, password: str | None = None,
                    admin: bool = False) -> PrincipalInfo:
        if kind not in ("user", "service"):
            raise InvalidArgument(f"kind {str(kind)[:40]!r} is not valid: choose user or "
                                  "service", field="kind")
        return service.create_principal(self._store, self._s.ctx(""), name,
                                        "service" if kind == "service" else "user",
                                        password=password, is_admin=admin)

    def list_users(self) -> list[PrincipalInfo]:
        return service.list_principals(self._store)

    def disable_user(self, name: str) -> PrincipalInfo:
        return service.disable_principal(self._store, self._s.ctx(""), name)

    def enable_user(self, name: str) -> PrincipalInfo:
        return service.enable_principal(self._store, self._s.ctx(""), name)

    def create_token(self, name: str, *, principal: str | None = None,
                     scopes: Iterable[str] | None = None,
                     expires_in_days: int | None = None) -> CreatedToken:
        if principal is None:
            raise InvalidArgument("local mode has no signed-in principal: name the token's "
                                  "owner with principal=...", field="principal")
        expires = timedelta(days=expires_in_days) if expires_in_days is not None else None
        return service.create_token(self._store, self._s.ctx(""), principal, name=name,
                                    scopes=list(scopes) if scopes is not None else None,
                                    expires_in=expires)

    def list_tokens(self, *, principal: str | None = None) -> list[TokenInfo]:
        return service.list_tokens(self._store, principal_name=principal)

    def revoke_token(self, token_id: str) -> TokenInfo:
        return service.revoke_token(self._store, self._s.ctx(""), token_id)

    def grant(self, principal: str, role: str, project: str) -> GrantInfo:
        return service.grant(self._store, self._s.ctx(project), principal, project, role)

    def revoke_grant(self, principal: str, project: str) -> None:
        service.revoke_grant(self._store, self._s.ctx(project), principal, project)

    def list_grants(self, project: str) -> list[GrantInfo]:
        return service.list_grants(self._store, project=project)

    def audit_events(self, *, actor: str | None = None, action: str | None = None,
                     outcome: str | None = None, limit: int = 100) -> list[AuditEvent]:
        rows = audit.query(self._store, project=self._s.project, actor=actor, action=action,
                           outcome=outcome, limit=limit)
        return [AuditEvent.model_validate(row) for row in rows]

    def verify_audit(self) -> AuditVerification:
        return audit.verify(self._store)

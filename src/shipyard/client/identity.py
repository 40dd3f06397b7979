"""Users, tokens, grants and the audit log over the REST API (the remote ``IdentityPort``).

Answers come back as the same dataclasses the identity service returns locally, and errors
as the same ``ShipyardError`` kinds (via :func:`~shipyard.client.problems.raise_for_problem`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from shipyard.client.http import TIMEOUT, HttpClient
from shipyard.client.problems import raise_for_problem
from shipyard.errors import Unavailable
from shipyard.security.models import (
    AuditEvent,
    AuditVerification,
    CreatedToken,
    GrantInfo,
    PrincipalInfo,
    TokenInfo,
)
from shipyard.security.roles import Role
from shipyard.security.tls import tls_context
from shipyard.security.tokens import Scope
from shipyard.validation import check_name

__all__ = ["HttpIdentity", "login"]


class HttpIdentity:
    def __init__(self, client: HttpClient) -> None:
        self._c = client

    def create_user(self, name: str, kind: str = "user", *, password: str | None = None,
                    admin: bool = False) -> PrincipalInfo:
        body = {"name": check_name(name, "name"), "kind": kind, "password": password,
                "admin": admin}
        return _user(self._c.json("POST", "/api/v1/users", json=body))

    def list_users(self) -> list[PrincipalInfo]:
        return [_user(item) for item in self._c.json("GET", "/api/v1/users")]

    def disable_user(self, name: str) -> PrincipalInfo:
        return _user(self._c.json("POST", f"/api/v1/users/{_name(name, 'name')}/disable"))

    def enable_user(self, name: str) -> PrincipalInfo:
        return _user(self._c.json("POST", f"/api/v1/users/{_name(name, 'name')}/enable"))

    def create_token(self, name: str, *, principal: str | None = None,
                     scopes: Iterable[str] | None = None,
                     expires_in_days: int | None = None) -> CreatedToken:
        body = {"name": check_name(name, "name"),
                "principal": check_name(principal, "principal") if principal else None,
                "scopes": list(scopes) if scopes is not None else None,
                "expires_in_days": expires_in_days}
        return _created(self._c.json("POST", "/api/v1/tokens", json=body))

    def list_tokens(self, *, principal: str | None = None) -> list[TokenInfo]:
        params = {"principal": check_name(principal, "principal")} if principal else None
        return [_token(item) for item in self._c.json("GET", "/api/v1/tokens", params=params)]

    def revoke_token(self, token_id: str) -> TokenInfo:
        # Quoted whole: a hostile id cannot turn into another path; the server checks its form.
        return _token(self._c.json("DELETE", f"/api/v1/tokens/{quote(str(token_id), safe='')}"))

    def grant(self, principal: str, role: str, project: str) -> GrantInfo:
        path = f"{_project(project)}/grants/{_name(principal, 'principal')}"
        return _grant(self._c.json("PUT", path, json={"role": str(role)}))

    def revoke_grant(self, principal: str, project: str) -> None:
        self._c.request("DELETE", f"{_project(project)}/grants/{_name(principal, 'principal')}")

    def list_grants(self, project: str) -> list[GrantInfo]:
        return [_grant(item) for item in self._c.json("GET", f"{_project(project)}/grants")]

    def audit_events(self, *, actor: str | None = None, action: str | None = None,
                     outcome: str | None = None, limit: int = 100) -> list[AuditEvent]:
        params = {k: v for k, v in {"actor": actor, "action": action, "outcome": outcome,
                                    "limit": limit}.items() if v is not None}
        rows = self._c.json("GET", self._c.project_path("/audit"), params=params)
        return [AuditEvent.model_validate(row) for row in rows]

    def verify_audit(self) -> AuditVerification:
        return AuditVerification(**self._c.json("GET", "/api/v1/audit/verify"))


def login(uri: str, name: str, password: str, *,
          transport: httpx.BaseTransport | None = None) -> CreatedToken:
    """Exchange a user name and password at the server ``uri`` for a short-lived token."""
    try:
        with httpx.Client(base_url=uri.rstrip("/"), timeout=TIMEOUT,
                          headers={"User-Agent": "shipyard-sdk"},
                          transport=transport, verify=tls_context()) as http:
            response = http.post("/api/v1/login", json={"name": name, "password": password})
    except httpx.TransportError as exc:
        raise Unavailable(f"cannot reach the Shipyard server at {uri}: "
                          f"{exc.__class__.__name__}", retry_after=1) from None
    raise_for_problem(response)
    return _created(response.json())


# -- plumbing --------------------------------------------------------------------------------------
def _created(data: dict[str, Any]) -> CreatedToken:
    return CreatedToken(id=data["id"], name=data["name"], principal=data["principal"],
                        scopes=_scopes(data["scopes"]), expires_at=_time(data["expires_at"]),
                        plaintext=data["token"])


def _name(value: str, field: str) -> str:
    return check_name(value, field)


def _project(project: str) -> str:
    return f"/api/v1/projects/{check_name(project, 'project')}"


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _when(data: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(data["created_at"])


def _scopes(values: Iterable[str]) -> frozenset[Scope]:
    # A scope this client does not know (a newer server) is left out rather than failing.
    known = {s.value for s in Scope}
    return frozenset(Scope(v) for v in values if v in known)


def _user(data: dict[str, Any]) -> PrincipalInfo:
    return PrincipalInfo(id=data["id"], name=data["name"], kind=data["kind"],
                         is_admin=bool(data["admin"]), disabled=bool(data["disabled"]),
                         has_password=bool(data["has_password"]), created_at=_when(data))


def _token(data: dict[str, Any]) -> TokenInfo:
    return TokenInfo(id=data["id"], name=data["name"], principal=data["principal"],
                     scopes=_scopes(data["scopes"]), created_at=_when(data),
                     expires_at=_time(data["expires_at"]), revoked_at=_time(data["revoked_at"]))


def _grant(data: dict[str, Any]) -> GrantInfo:
    return GrantInfo(principal=data["principal"], project=data["project"],
                     role=Role(data["role"]), created_at=_when(data))

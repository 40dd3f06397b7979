"""Users, tokens and grants over the REST API (the remote half of ``shipyard.sdk.identity``).

Answers come back as the same dataclasses the identity service returns locally, and errors
as the same ``ShipyardError`` kinds (via :func:`~shipyard.client.problems.raise_for_problem`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from shipyard.client.http import HttpBackend
from shipyard.client.problems import raise_for_problem
from shipyard.errors import Unavailable
from shipyard.security.authn import CreatedToken, TokenInfo
from shipyard.security.authz import GrantInfo
from shipyard.security.principals import PrincipalInfo
from shipyard.security.roles import Role
from shipyard.security.tokens import Scope
from shipyard.validation import check_name

__all__ = [
    "create_token",
    "create_user",
    "disable_user",
    "enable_user",
    "grant",
    "list_grants",
    "list_tokens",
    "list_users",
    "login",
    "revoke_grant",
    "revoke_token",
]


def create_user(backend: HttpBackend, name: str, kind: str = "user", *,
                password: str | None = None, admin: bool = False) -> PrincipalInfo:
    body = {"name": check_name(name, "name"), "kind": kind, "password": password,
            "admin": admin}
    return _user(_json(backend, "POST", "/api/v1/users", json=body))


def list_users(backend: HttpBackend) -> list[PrincipalInfo]:
    return [_user(item) for item in _json(backend, "GET", "/api/v1/users")]


def disable_user(backend: HttpBackend, name: str) -> PrincipalInfo:
    return _user(_json(backend, "POST", f"/api/v1/users/{_name(name, 'name')}/disable"))


def enable_user(backend: HttpBackend, name: str) -> PrincipalInfo:
    return _user(_json(backend, "POST", f"/api/v1/users/{_name(name, 'name')}/enable"))


def create_token(backend: HttpBackend, name: str, *, principal: str | None = None,
                 scopes: Iterable[str] | None = None,
                 expires_in_days: int | None = None) -> CreatedToken:
    body = {"name": check_name(name, "name"),
            "principal": check_name(principal, "principal") if principal else None,
            "scopes": list(scopes) if scopes is not None else None,
            "expires_in_days": expires_in_days}
    data = _json(backend, "POST", "/api/v1/tokens", json=body)
    return CreatedToken(id=data["id"], name=data["name"], principal=data["principal"],
                        scopes=_scopes(data["scopes"]), expires_at=_time(data["expires_at"]),
                        plaintext=data["token"])


def list_tokens(backend: HttpBackend, *, principal: str | None = None) -> list[TokenInfo]:
    params = {"principal": check_name(principal, "principal")} if principal else None
    return [_token(item) for item in _json(backend, "GET", "/api/v1/tokens", params=params)]


def revoke_token(backend: HttpBackend, token_id: str) -> TokenInfo:
    # Quoted whole: a hostile id cannot turn into another path; the server checks its form.
    return _token(_json(backend, "DELETE", f"/api/v1/tokens/{quote(str(token_id), safe='')}"))


def grant(backend: HttpBackend, principal: str, role: str, project: str) -> GrantInfo:
    path = f"{_project(project)}/grants/{_name(principal, 'principal')}"
    return _grant(_json(backend, "PUT", path, json={"role": str(role)}))


def revoke_grant(backend: HttpBackend, principal: str, project: str) -> None:
    backend.request("DELETE", f"{_project(project)}/grants/{_name(principal, 'principal')}")


def list_grants(backend: HttpBackend, project: str) -> list[GrantInfo]:
    return [_grant(item) for item in _json(backend, "GET", f"{_project(project)}/grants")]


def login(uri: str, name: str, password: str, *,
          transport: httpx.BaseTransport | None = None) -> CreatedToken:
    """Exchange a user name and password at the server ``uri`` for a short-lived token."""
    try:
        with httpx.Client(base_url=uri.rstrip("/"), timeout=httpx.Timeout(30.0, connect=5.0),
                          headers={"User-Agent": "shipyard-sdk"},
                          transport=transport) as http:
            response = http.post("/api/v1/login", json={"name": name, "password": password})
    except httpx.TransportError as exc:
        raise Unavailable(f"cannot reach the Shipyard server at {uri}: "
                          f"{exc.__class__.__name__}", retry_after=1) from None
    raise_for_problem(response)
    data = response.json()
    return CreatedToken(id=data["id"], name=data["name"], principal=data["principal"],
                        scopes=_scopes(data["scopes"]), expires_at=_time(data["expires_at"]),
                        plaintext=data["token"])


# -- plumbing --------------------------------------------------------------------------------------
def _json(backend: HttpBackend, method: str, path: str, **kwargs: Any) -> Any:
    response = backend.request(method, path, **kwargs)
    return response.json() if response.content else None


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

"""One dependency enforces the policy table on every route (deny by default).

Order of checks: the route has a policy entry (else 403 and a server log line: a bug, not a
user error); browser-supplied headers allow the request (Host, Origin, Content-Type); the
caller is authenticated (bearer token or the console's session cookie); the caller's role in
the route's project, narrowed by the token's scopes, holds the permission. Every denial after
authentication is written to the audit log.
"""

from __future__ import annotations

import logging

from fastapi import Request

from shipyard import audit
from shipyard.context import RequestContext
from shipyard.errors import PermissionDenied, ShipyardError, Unauthenticated
from shipyard.security import headers
from shipyard.security import service as identity
from shipyard.security.roles import ROLE_PERMISSIONS, Role
from shipyard.security.tokens import effective_permissions
from shipyard.server.policy import POLICY, Rule
from shipyard.server.state import server_state
from shipyard.validation import check_name

log = logging.getLogger(__name__)

SESSION_COOKIE = "shipyard_session"


def rule_for(request: Request) -> Rule | None:
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    if path is None:
        return None
    method = "GET" if request.method == "HEAD" else request.method
    return POLICY.get((method, path))


def presented_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
        return value.strip()
    return request.cookies.get(SESSION_COOKIE)


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


async def enforce(request: Request) -> None:
    """The app-wide dependency: sets ``request.state.ctx`` or raises."""
    state = server_state(request)
    rule = rule_for(request)
    if rule is None:
        log.error("route without a policy entry refused: %s %s", request.method,
                  request.url.path)
        raise PermissionDenied("this route has no access policy and is refused")
    _check_browser_headers(request, rule)
    project = request.path_params.get("project")
    if project is not None:
        check_name(project, "project")
    if rule.scope == "public":
        request.state.ctx = RequestContext(project=project or "default", actor="anonymous",
                                           client=_client(request))
        return
    token = presented_token(request)
    if not token:
        raise Unauthenticated(
            "authentication required: send 'Authorization: Bearer <token>' "
            "(the server wrote an admin token to $SHIPYARD_HOME/credentials)"
        )
    principal = identity.authenticate(state.store, token)
    ctx = RequestContext(project=project or "default", actor=principal.name,
                         token_id=principal.token_id, client=_client(request))
    request.state.ctx = ctx
    request.state.principal = principal
    if rule.scope == "authenticated" or rule.permission is None:
        return
    role: Role | None = Role.ADMIN if principal.is_admin else None
    if role is None and rule.scope == "project" and project is not None:
        role = identity.role_in(state.store, principal, project)
    held = ROLE_PERMISSIONS[role] if role is not None else frozenset()
    allowed = effective_permissions(principal.scopes, held)
    if rule.permission not in allowed:
        where = f"project {project!r}" if rule.scope == "project" else "this server"
        if rule.permission in held:
            reason = (f"the token's scopes ({', '.join(sorted(principal.scopes))}) "
                      "do not allow it")
        else:
            reason = f"{principal.name!r} has role {role.value if role else 'none'} there"
        denial = PermissionDenied(
            f"permission {rule.permission.value!r} on {where} is required; {reason}",
            permission=rule.permission.value,
        )
        _audit_denial(request, ctx, denial)
        raise denial


def _check_browser_headers(request: Request, rule: Rule) -> None:
    state = server_state(request)
    if not headers.host_allowed(request.headers.get("host"), state.settings.extra.get(
            "allowed_hosts", "").split(",") if state.settings.extra.get("allowed_hosts")
            else ()):
        raise PermissionDenied("the Host header names a host this server does not serve")
    if not headers.mutation_allowed(
        request.method,
        origin=request.headers.get("origin"),
        host_header=request.headers.get("host"),
        scheme=request.url.scheme,
        sec_fetch_site=request.headers.get("sec-fetch-site"),
    ):
        raise PermissionDenied("cross-origin requests may not change anything")
    content_type = request.headers.get("content-type")
    has_body = request.headers.get("content-length", "0") != "0" or (
        "transfer-encoding" in request.headers)
    if rule.upload and content_type and content_type.split(";")[0].strip().lower() == (
            "application/octet-stream"):
        return
    if not headers.content_type_allowed(request.method, content_type, has_body=has_body):
        raise ShipyardUnsupportedMedia()


class ShipyardUnsupportedMedia(ShipyardError):
    kind = "unsupported_media_type"

    def __init__(self) -> None:
        super().__init__("requests that change state must send application/json",
                         field="content-type")


def _audit_denial(request: Request, ctx: RequestContext, denial: ShipyardError) -> None:
    state = server_state(request)
    try:
        with state.store.write() as conn:
            audit.record(conn, ctx, f"{request.method} {request.scope['route'].path}",
                         request.url.path, outcome="denied", detail={"reason": denial.message})
    except ShipyardError:
        log.exception("could not record a denial in the audit log")

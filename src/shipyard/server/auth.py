"""One dependency enforces the policy table on every route (deny by default).

Order of checks: the route has a policy entry (else 403 and a server log line: a bug, not a
user error); browser-supplied headers allow the request (Host, Origin, Content-Type); the
caller is authenticated (bearer token or the console's session cookie); the caller's role in
the route's project, narrowed by the token's scopes, holds the permission. Every denial of a
presented credential or of a permission is written to the audit log (a request that presents
no credential at all is not: anonymous probes would otherwise fill it). On upload routes
``server.limits`` runs the same checks (``authorize``) before the body is read, since FastAPI
spools a multipart body before any dependency runs.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from fastapi import Request

from shipyard import audit
from shipyard.context import RequestContext
from shipyard.errors import PermissionDenied, ShipyardError, Unauthenticated
from shipyard.ids import new_id
from shipyard.security import headers
from shipyard.security import service as identity
from shipyard.security.roles import ROLE_PERMISSIONS, Role
from shipyard.security.tokens import effective_permissions
from shipyard.server.policy import POLICY, Rule
from shipyard.server.state import server_state
from shipyard.validation import check_name

log = logging.getLogger(__name__)

SESSION_COOKIE = "shipyard_session"


_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "kind": {"type": "string"},
        "field": {"type": "string"},
    },
}

PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {
        "description": "The request was refused: bad input (400, with ``field``), no or a bad "
                       "credential (401), a missing permission or a foreign Host or Origin "
                       "(403), not found (404), a conflict (409, 412), too large (413), not "
                       "JSON (415), an unsafe model (422) or throttled (429).",
        "content": {"application/problem+json": {"schema": _PROBLEM_SCHEMA}},
    },
    "5XX": {
        "description": "The database is busy (503, with Retry-After) or an internal error.",
        "content": {"application/problem+json": {"schema": _PROBLEM_SCHEMA}},
    },
}
"""Declared on every router: each refusal this dependency (or ``server.errors``) answers is
RFC 9457 problem+json, and the schema must say so for clients and schemathesis alike.
Declaring ``4XX`` also stops FastAPI from advertising its default 422 body, which this
server never sends (validation errors are 400 problem+json)."""


def route_path(request: Request) -> str | None:
    """The matched route's path template (``/api/v1/projects/{project}/runs``), or None."""
    # FastAPI records the route as mounted (include prefixes applied) separately from the
    # route object it was declared as; the mounted one is what the policy table names.
    fastapi_scope = request.scope.get("fastapi")
    if isinstance(fastapi_scope, dict):
        mounted = getattr(fastapi_scope.get("effective_route_context"), "path", None)
        if isinstance(mounted, str) and mounted:
            return mounted
    path = getattr(request.scope.get("route"), "path", None)
    return path if isinstance(path, str) else None


def rule_for(request: Request) -> Rule | None:
    path = route_path(request)
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


def enforce(request: Request) -> None:
    """The app-wide dependency: sets ``request.state.ctx`` (and ``.principal``) or raises.

    A plain ``def`` on purpose: it reads the store (and may write an audit row), which must
    not stall the event loop, so FastAPI runs it in the thread pool.
    """
    rule = rule_for(request)
    if rule is None:
        log.error("route without a policy entry refused: %s %s", request.method,
                  request.url.path)
        raise PermissionDenied("this route has no access policy and is refused")
    authorize(request, rule, route_path(request))


def authorize(request: Request, rule: Rule, route: str | None) -> None:
    """Check ``request`` against its route's ``rule`` (``route``: the path template).

    Everything ``enforce`` checks once the rule is known, for callers that know the rule
    before routing: ``server.limits`` checks an upload this way before reading its body, with
    the route's path parameters in ``request.path_params``. Denials are audited the same way.
    """
    state = server_state(request)
    _check_browser_headers(request, rule)
    project = request.path_params.get("project")
    if project is not None:
        check_name(project, "project")
    client = _client(request)
    # The access log's id for this request, so its line and the audit rows it writes match.
    request_id = getattr(request.state, "request_id", None) or new_id()
    if rule.scope == "public":
        request.state.ctx = RequestContext(project=project or "default", actor="anonymous",
                                           client=client, request_id=request_id)
        return
    try:
        token = presented_token(request)
        principal = identity.authenticate(state.store, token) if token else None
    except Unauthenticated as exc:
        # A credential was presented and failed: that is a denial worth a row (an
        # anonymous request without any credential is not, or probes would fill the log).
        audit_denial(request, RequestContext(project=project or "", actor="anonymous",
                                             client=client, request_id=request_id),
                     exc, route=route)
        raise
    if principal is None:
        raise Unauthenticated(
            "authentication required: send 'Authorization: Bearer <token>' "
            "(the server wrote an admin token to $SHIPYARD_HOME/credentials)"
        )
    ctx = RequestContext(project=project or "default", actor=principal.name,
                         token_id=principal.token_id, client=client, request_id=request_id)
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
        audit_denial(request, ctx, denial, route=route)
        raise denial


def _check_browser_headers(request: Request, rule: Rule) -> None:
    extra = server_state(request).settings.extra
    if not headers.host_allowed(request.headers.get("host"), _listed(extra, "allowed_hosts")):
        raise PermissionDenied("the Host header names a host this server does not serve",
                               field="host")
    if not headers.mutation_allowed(
        request.method,
        origin=request.headers.get("origin"),
        host_header=request.headers.get("host"),
        scheme=request.url.scheme,
        sec_fetch_site=request.headers.get("sec-fetch-site"),
        trusted_origins=_listed(extra, "trusted_origins"),
    ):
        raise PermissionDenied("cross-origin requests may not change anything",
                               field="origin")
    content_type = request.headers.get("content-type")
    has_body = request.headers.get("content-length", "0") != "0" or (
        "transfer-encoding" in request.headers)
    media = (content_type or "").split(";")[0].strip().lower()
    # An upload's raw body may come untyped (curl -T): a foreign page cannot send it, as a
    # PUT or a POST without a simple type needs a CORS preflight, and Origin is checked above.
    if rule.upload and media in ("application/octet-stream", ""):
        return
    if not headers.content_type_allowed(request.method, content_type, has_body=has_body):
        raise UnsupportedMediaType(
            "an upload is sent as application/octet-stream (or without a Content-Type) or as "
            "multipart/form-data" if rule.upload else None)


def _listed(extra: Mapping[str, str], key: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in extra.get(key, "").split(",") if v.strip())


class UnsupportedMediaType(ShipyardError):
    kind = "unsupported_media_type"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or "requests that change state must send application/json",
                         field="content-type")


def audit_denial(request: Request, ctx: RequestContext, denial: ShipyardError, *,
                 resource: str | None = None, route: str | None = None) -> None:
    """Record a refused request in the audit log (its own transaction: nothing changed).

    ``route`` is the path template the action is named by (default: the matched route's).
    Failing to record is logged, never turned into a different answer for the caller.
    """
    state = server_state(request)
    # Server-wide routes have no project: record none rather than the default one.
    ctx = dataclasses.replace(ctx, project=request.path_params.get("project") or "")
    action = f"{request.method} {route or route_path(request) or request.url.path}"[:128]
    try:
        with state.store.write() as conn:
            audit.record(conn, ctx, action, resource or request.url.path, outcome="denied",
                         detail={"reason": denial.message[:500], "kind": denial.kind})
    except ShipyardError:
        log.exception("could not record a denial in the audit log")

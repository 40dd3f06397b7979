"""Authorization on the data plane: the policy table's rule and ``server.auth.authorize``
itself, run on the event loop when the auth cache answers without the database (the same
checks, the same result), else in the thread pool; and a cache of allowed decisions.

KServe, OIP and MLflow paths name no project: the endpoint's project is resolved from the
served endpoints first and the role is checked there, as if the path had named it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import Request

from shipyard.context import RequestContext
from shipyard.errors import NotFound, ShipyardError
from shipyard.ids import new_id
from shipyard.security.authcache import AUTH_CACHE, CachedToken, database_key
from shipyard.security.roles import ROLE_PERMISSIONS, Permission, Role
from shipyard.security.tokens import effective_permissions, parse_token
from shipyard.server.api.dataplane.paths import Protocol
from shipyard.server.auth import SESSION_COOKIE, authorize, presented_token
from shipyard.server.policy import POLICY, Rule
from shipyard.server.state import ServerState
from shipyard.serving.replicas import Supervisor
from shipyard.store.types import utcnow

# The check made on the endpoint's project once a project-less path has named it.
PREDICT_ON_PROJECT = Rule(Permission.PREDICT)
READ_ON_PROJECT = Rule(Permission.READ)


async def authorize_request(request: Request, state: ServerState, supervisor: Supervisor,
                     protocol: Protocol, params: dict[str, str]) -> None:
    rule = POLICY[("POST", protocol.template)]
    if "project" in params:
        await check(request, state, rule, protocol.template, params["project"])
        return
    # No project in the path: authenticate, find the endpoint's project, then check the
    # permission there, as if the path had named it.
    await check(request, state, rule, protocol.template, None)
    project = supervisor.project_of(params["name"])
    if project is None:
        raise NotFound(f"no endpoint named {params['name'][:128]!r} serves predictions here",
                       field="name")
    params["project"] = project
    await check(request, state, PREDICT_ON_PROJECT, protocol.template, project)


@dataclass(frozen=True)
class _Decision:
    actor: str
    token_id: str | None
    expires_at: datetime | None
    generation: int
    stored_at: float


# Allowed requests by everything ``authorize`` looked at: the presented credential, the
# project, the permission and the browser headers. A hit is the same decision ``authorize``
# made less than AUTH_CACHE.ttl ago, with no invalidation since (a revoked token, a disabled
# principal or a changed grant bumps the database's generation, which every hit compares),
# and the token's expiry checked again. So a revocation here counts from the next request,
# and one made by another process within the cache's TTL, exactly as for AUTH_CACHE.
_DECISIONS: dict[tuple[Any, ...], _Decision] = {}
_MAX_DECISIONS = 10_000


def _decision_key(request: Request, rule: Rule, project: str | None) -> tuple[Any, ...]:
    headers = request.headers
    return (headers.get("authorization"), request.cookies.get(SESSION_COOKIE)
            if "cookie" in headers else None, project, rule.permission, rule.scope,
            headers.get("host"), headers.get("origin"), headers.get("content-type"),
            headers.get("sec-fetch-site"), "transfer-encoding" in headers,
            headers.get("content-length", "0") != "0")


async def check(request: Request, state: ServerState, rule: Rule, route: str,
                 project: str | None) -> None:
    """``authorize``: from the decision cache, inline when the auth cache answers it
    without the database (same checks, same result), else in the thread pool."""
    db = database_key(state.store)
    key = _decision_key(request, rule, project)
    now = time.monotonic()
    found = _DECISIONS.get(key)
    if found is not None and found.generation == AUTH_CACHE.generation(db) and \
            now - found.stored_at < AUTH_CACHE.ttl and (
            found.expires_at is None or found.expires_at > utcnow()):
        request.state.ctx = RequestContext(
            project=project or "default", actor=found.actor, token_id=found.token_id,
            client=request.client.host if request.client else None,
            request_id=getattr(request.state, "request_id", None) or new_id())
        return
    generation = AUTH_CACHE.generation(db)
    if _cached_allow(request, state, rule, project):
        authorize(request, rule, route)
    else:
        await asyncio.to_thread(authorize, request, rule, route)
    ctx = getattr(request.state, "ctx", None)
    token = _cached_token(request, state)
    if ctx is None or token is None or AUTH_CACHE.ttl <= 0:
        return
    if len(_DECISIONS) >= _MAX_DECISIONS:
        _DECISIONS.pop(next(iter(_DECISIONS)))
    _DECISIONS[key] = _Decision(ctx.actor, ctx.token_id, token.expires_at, generation, now)


def _cached_token(request: Request, state: ServerState) -> CachedToken | None:
    try:
        token = presented_token(request)
        if not token:
            return None
        parsed = parse_token(token)
    except ShipyardError:
        return None
    return AUTH_CACHE.token(database_key(state.store), parsed.lookup)


def _cached_allow(request: Request, state: ServerState, rule: Rule, project: str | None
                  ) -> bool:
    """True when the auth cache holds this token (and its role in ``project``) and they
    allow ``rule``: ``authorize`` will then neither read the database nor write a denial."""
    try:
        token = presented_token(request)
        if not token:
            return False
        parsed = parse_token(token)
    except ShipyardError:
        return False
    db = database_key(state.store)
    cached = AUTH_CACHE.token(db, parsed.lookup)
    if cached is None:
        return False
    if rule.scope == "authenticated" or rule.permission is None:
        return True
    if cached.project is not None and cached.project != project:
        return False
    role: Role | None
    if cached.is_admin:
        role = Role.ADMIN
    else:
        if project is None:
            return False
        hit, role = AUTH_CACHE.role(db, cached.principal_id, project)
        if not hit:
            return False
    held = ROLE_PERMISSIONS[role] if role is not None else frozenset()
    return rule.permission in effective_permissions(cached.scopes, held)


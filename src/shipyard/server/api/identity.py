"""Users, tokens, grants and logins (routes are listed in server/policy.py).

The policy table admits the token routes for any authenticated caller; ownership is checked
here: a caller manages its own tokens, an admin (with an admin-scoped token) anyone's. A new
token never carries more than the token that asked for it, so a read-only token cannot mint
a writing one.

The console's one-time login link (the Jupyter model): :func:`issue_login_link` makes a
random code the server prints at start; ``GET /login/{code}`` spends it once, within
:data:`LOGIN_LINK_LIFETIME`, and answers with a session cookie holding a fresh short-lived
token.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from shipyard.context import RequestContext
from shipyard.errors import NotFound, PermissionDenied, ShipyardError, Unauthenticated
from shipyard.security import service as identity
from shipyard.security.passwords import MIN_PASSWORD_LENGTH
from shipyard.security.principals import Principal, PrincipalKind
from shipyard.security.ratelimit import RateLimiter
from shipyard.security.roles import ROLE_PERMISSIONS, Permission, Role
from shipyard.security.tokens import SCOPE_PERMISSIONS, effective_permissions, parse_scopes
from shipyard.server.api import params
from shipyard.server.auth import PROBLEM_RESPONSES, SESSION_COOKIE, audit_denial
from shipyard.server.state import ServerState, request_context, server_state

router = APIRouter(tags=["identity"], responses=PROBLEM_RESPONSES)

State = Annotated[ServerState, Depends(server_state)]
Ctx = Annotated[RequestContext, Depends(request_context)]
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
NameParam = params.Name
TokenIdParam = Annotated[str, Path(min_length=12, max_length=12, pattern="^[0-9a-f]{12}$")]

LOGIN_LINK_LIFETIME = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(hours=8)
MAX_TOKEN_DAYS = 3650


# -- per-app state -----------------------------------------------------------------------------
class IdentityState:
    """What the identity routes keep in memory for one app: pending login codes (by hash,
    so a lookup reveals nothing through timing) and the login throttle."""

    def __init__(self) -> None:
        self.login_limiter = RateLimiter(capacity=5, period=60.0)
        self._codes: dict[str, tuple[str, float]] = {}  # sha256(code) -> (principal, deadline)
        self._lock = threading.Lock()

    def issue(self, principal: str, lifetime: timedelta) -> str:
        code = secrets.token_urlsafe(32)
        deadline = time.monotonic() + lifetime.total_seconds()
        with self._lock:
            now = time.monotonic()
            # Expired codes are dropped here, so memory stays bounded by what is still valid.
            self._codes = {k: v for k, v in self._codes.items() if v[1] > now}
            self._codes[_digest(code)] = (principal, deadline)
        return code

    def spend(self, code: str) -> str | None:
        """The principal a valid code logs in as; the code is gone afterwards either way."""
        with self._lock:
            entry = self._codes.pop(_digest(code), None)
        if entry is None or entry[1] <= time.monotonic():
            return None
        return entry[0]


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8", "surrogatepass")).hexdigest()


_STATE_LOCK = threading.Lock()


def identity_state(state: ServerState) -> IdentityState:
    # Kept on the ServerState object itself so each app (and each test server) has its own
    # codes and throttle, and both vanish with the app.
    with _STATE_LOCK:
        found = state.__dict__.get("_identity")
        if not isinstance(found, IdentityState):
            found = IdentityState()
            state.__dict__["_identity"] = found
        return found


def issue_login_link(state: ServerState, *, principal: str = identity.ADMIN_NAME,
                     base_url: str = "") -> str:
    """A one-time console login link (``{base_url}/login/<code>``) for ``principal``.

    The code is 256 random bits, valid once and for :data:`LOGIN_LINK_LIFETIME`, and kept
    only in this process's memory (a restart invalidates it).
    """
    code = identity_state(state).issue(principal, LOGIN_LINK_LIFETIME)
    return f"{base_url.rstrip('/')}/login/{code}"


# -- request and response bodies -----------------------------------------------------------------
class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginIn(Strict):
    name: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)


class CreateUserIn(Strict):
    name: str = Field(pattern=NAME_PATTERN, max_length=128)
    kind: str = Field(default="user", pattern="^(user|service)$", max_length=7)
    password: str | None = Field(default=None, min_length=MIN_PASSWORD_LENGTH, max_length=1024)
    admin: bool = False


class CreateTokenIn(Strict):
    name: str = Field(pattern=NAME_PATTERN, max_length=128)
    principal: str | None = Field(default=None, pattern=NAME_PATTERN, max_length=128)
    scopes: list[Annotated[str, Field(max_length=16)]] | None = Field(
        default=None, min_length=1, max_length=4)
    expires_in_days: int | None = Field(default=None, ge=1, le=MAX_TOKEN_DAYS)


class GrantIn(Strict):
    role: str = Field(pattern="^(viewer|user|editor|manager)$", max_length=16)


class UserOut(BaseModel):
    id: str
    name: str
    kind: str
    admin: bool
    disabled: bool
    has_password: bool
    created_at: datetime


class TokenOut(BaseModel):
    id: str
    name: str
    principal: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    active: bool


class CreatedTokenOut(BaseModel):
    id: str
    name: str
    principal: str
    scopes: list[str]
    expires_at: datetime | None
    token: str = Field(description="The plaintext token: shown this once, never again.")


class GrantOut(BaseModel):
    principal: str
    project: str
    role: str
    created_at: datetime


def _user(info: identity.PrincipalInfo) -> UserOut:
    return UserOut(id=info.id, name=info.name, kind=info.kind, admin=info.is_admin,
                   disabled=info.disabled, has_password=info.has_password,
                   created_at=info.created_at)


def _token(info: identity.TokenInfo) -> TokenOut:
    return TokenOut(id=info.id, name=info.name, principal=info.principal,
                    scopes=sorted(info.scopes), created_at=info.created_at,
                    expires_at=info.expires_at, revoked_at=info.revoked_at,
                    active=info.active())


def _created(token: identity.CreatedToken) -> CreatedTokenOut:
    return CreatedTokenOut(id=token.id, name=token.name, principal=token.principal,
                           scopes=sorted(token.scopes), expires_at=token.expires_at,
                           token=token.plaintext)


def _grant(info: identity.GrantInfo) -> GrantOut:
    return GrantOut(principal=info.principal, project=info.project, role=info.role.value,
                    created_at=info.created_at)


# -- logins ----------------------------------------------------------------------------------------
@router.post("/api/v1/login", response_model=CreatedTokenOut)
def login(body: LoginIn, state: State, ctx: Ctx) -> CreatedTokenOut:
    """Exchange a user name and password for a short-lived token (rate limited: 429)."""
    created = identity.login(state.store, body.name, body.password, ctx.client or "unknown",
                             limiter=identity_state(state).login_limiter,
                             expires_in=SESSION_LIFETIME)
    return _created(created)


@router.get("/login/{code}", include_in_schema=False)
def login_link(code: Annotated[str, Path(max_length=128)], request: Request, state: State,
               ctx: Ctx) -> Response:
    principal = identity_state(state).spend(code)
    if principal is None:
        raise Unauthenticated("this login link is invalid, used or expired: restart the "
                              "server for a new one, or log in with a token")
    created = identity.create_token(
        state.store, RequestContext(project="", actor=principal, client=ctx.client,
                                    request_id=ctx.request_id),
        principal, name="console", expires_in=SESSION_LIFETIME)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(SESSION_COOKIE, created.plaintext,
                        max_age=int(SESSION_LIFETIME.total_seconds()), path="/",
                        httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return response


# -- users -----------------------------------------------------------------------------------------
@router.get("/api/v1/users", response_model=list[UserOut])
def list_users(state: State) -> list[UserOut]:
    return [_user(p) for p in identity.list_principals(state.store)]


@router.post("/api/v1/users", response_model=UserOut, status_code=201)
def create_user(body: CreateUserIn, state: State, ctx: Ctx) -> UserOut:
    kind: PrincipalKind = "service" if body.kind == "service" else "user"
    return _user(identity.create_principal(state.store, _server_ctx(ctx), body.name, kind,
                                           password=body.password, is_admin=body.admin))


@router.post("/api/v1/users/{name}/disable", response_model=UserOut)
def disable_user(name: NameParam, state: State, ctx: Ctx) -> UserOut:
    return _user(identity.disable_principal(state.store, _server_ctx(ctx), name))


@router.post("/api/v1/users/{name}/enable", response_model=UserOut)
def enable_user(name: NameParam, state: State, ctx: Ctx) -> UserOut:
    return _user(identity.enable_principal(state.store, _server_ctx(ctx), name))


# -- tokens ----------------------------------------------------------------------------------------
@router.get("/api/v1/tokens", response_model=list[TokenOut])
def list_tokens(
    request: Request, state: State,
    principal: Annotated[str | None, Query(pattern=NAME_PATTERN, max_length=128)] = None,
    include_inactive: bool = True,
) -> list[TokenOut]:
    """Your tokens; an admin sees everyone's, or one principal's with ``principal``."""
    caller = _principal(request)
    if principal is None and not _acts_as_admin(caller):
        principal = caller.name
    if principal is not None and principal != caller.name:
        _require_admin(request, caller, f"principals/{principal}/tokens")
    infos = identity.list_tokens(state.store, principal_name=principal,
                                 include_inactive=include_inactive)
    return [_token(t) for t in infos]


@router.post("/api/v1/tokens", response_model=CreatedTokenOut, status_code=201)
def create_token(body: CreateTokenIn, request: Request, state: State,
                 ctx: Ctx) -> CreatedTokenOut:
    """A new token for yourself (or, as admin, for anyone); never wider than the caller's."""
    caller = _principal(request)
    owner = body.principal or caller.name
    if owner != caller.name:
        _require_admin(request, caller, f"principals/{owner}/tokens")
    scopes = body.scopes
    if scopes is None and owner == caller.name:
        # Default to what the presenting token carries, so a narrowed token mints only
        # narrowed tokens.
        scopes = sorted(caller.scopes)
    if scopes is not None:
        wanted = parse_scopes(scopes)
        allowed = effective_permissions(caller.scopes, frozenset(Permission))
        needed = frozenset().union(*(SCOPE_PERMISSIONS[s] for s in wanted))
        if not needed <= allowed:
            denial = PermissionDenied(
                "a token cannot create a token with wider scopes than its own: asked for "
                f"{', '.join(sorted(wanted))}, holding {', '.join(sorted(caller.scopes))}",
                field="scopes")
            _audit(request, ctx, f"principals/{owner}/tokens", denial)
            raise denial
    expires = timedelta(days=body.expires_in_days) if body.expires_in_days else None
    created = identity.create_token(state.store, _server_ctx(ctx), owner, name=body.name,
                                    scopes=scopes, expires_in=expires)
    return _created(created)


@router.delete("/api/v1/tokens/{token_id}", response_model=TokenOut)
def revoke_token(token_id: TokenIdParam, request: Request, state: State,
                 ctx: Ctx) -> TokenOut:
    """Revoke one of your tokens (any token as admin); it fails from the next request on."""
    caller = _principal(request)
    info = identity.get_token(state.store, token_id)
    if info.principal != caller.name and not _acts_as_admin(caller):
        # Someone else's token is reported as missing: its id says nothing to a non-owner.
        _audit(request, ctx, f"principals/{info.principal}/tokens/{token_id}",
               PermissionDenied("not the token's owner"))
        raise NotFound(f"token {token_id!r} not found", field="token_id")
    return _token(identity.revoke_token(state.store, _server_ctx(ctx), token_id))


# -- grants ----------------------------------------------------------------------------------------
@router.get("/api/v1/projects/{project}/grants", response_model=list[GrantOut],
            dependencies=[Depends(params.project_parameter)])
def list_grants(state: State, ctx: Ctx) -> list[GrantOut]:
    return [_grant(g) for g in identity.list_grants(state.store, project=ctx.project)]


@router.put("/api/v1/projects/{project}/grants/{principal}", response_model=GrantOut,
            dependencies=[Depends(params.project_parameter)])
def set_grant(principal: NameParam, body: GrantIn, state: State, ctx: Ctx) -> GrantOut:
    return _grant(identity.grant(state.store, ctx, principal, ctx.project, body.role))


@router.delete("/api/v1/projects/{project}/grants/{principal}", status_code=204,
               dependencies=[Depends(params.project_parameter)])
def delete_grant(principal: NameParam, state: State, ctx: Ctx) -> None:
    identity.revoke_grant(state.store, ctx, principal, ctx.project)


# -- helpers ---------------------------------------------------------------------------------------
def _principal(request: Request) -> Principal:
    found = getattr(request.state, "principal", None)
    if not isinstance(found, Principal):  # the policy dependency always sets it here
        raise Unauthenticated("authentication required")
    return found


def _acts_as_admin(caller: Principal) -> bool:
    # An admin acts as one only through a token whose scopes let admin through.
    return caller.is_admin and Permission.ADMIN in effective_permissions(
        caller.scopes, ROLE_PERMISSIONS[Role.ADMIN])


def _require_admin(request: Request, caller: Principal, resource: str) -> None:
    if _acts_as_admin(caller):
        return
    denial = PermissionDenied(
        f"permission 'admin' on this server is required to manage another principal's "
        f"tokens; {caller.name!r} may manage only its own",
        permission=Permission.ADMIN.value)
    _audit(request, request.state.ctx, resource, denial)
    raise denial


def _audit(request: Request, ctx: RequestContext, resource: str,
           denial: ShipyardError) -> None:
    audit_denial(request, ctx, denial, resource=resource)


def _server_ctx(ctx: RequestContext) -> RequestContext:
    # Server-wide changes (users, tokens) belong to no project; the policy dependency filled
    # in the default one only because every context needs some.
    return RequestContext(project="", actor=ctx.actor, token_id=ctx.token_id,
                          request_id=ctx.request_id, client=ctx.client)


__all__ = ["LOGIN_LINK_LIFETIME", "SESSION_LIFETIME", "issue_login_link", "router"]

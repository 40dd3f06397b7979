"""Signing in and out of the console, and the CSRF token every form carries.

Two ways in, both ending in the same session cookie (``server.auth.SESSION_COOKIE``:
HttpOnly, SameSite=Strict, a short-lived token of the principal): the one-time link
``shipyard server`` prints (``GET /login/{code}``, in ``server.api.identity``) and the
user name and password form here. Signing out revokes the session's token.

CSRF: a form of a signed-in page carries an HMAC of the session's token, which a foreign
page can neither read nor compute; the login form (before any session) carries a random
value that must equal a cookie of its own (double submit). Forms post
``multipart/form-data``, the one form encoding the server's content-type check admits;
the Origin check and the SameSite cookie stand in front of the token as well.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from shipyard.errors import InvalidArgument, Unauthenticated
from shipyard.security import service as identity
from shipyard.security.principals import Principal
from shipyard.security.roles import ROLE_PERMISSIONS, Permission, Role
from shipyard.security.tokens import effective_permissions
from shipyard.server.api.identity import SESSION_LIFETIME, identity_state
from shipyard.server.auth import SESSION_COOKIE, presented_token
from shipyard.server.console.rendering import render
from shipyard.server.state import ServerState, request_context, server_state

__all__ = ["LOGIN_PATH", "check_csrf", "csrf_token", "may", "read_form", "router"]

router = APIRouter(include_in_schema=False)
State = Annotated[ServerState, Depends(server_state)]

LOGIN_PATH = "/console/login"
LOGIN_COOKIE = "shipyard_login"
CSRF_FIELD = "csrf_token"
MAX_FORM_FIELDS = 16


def csrf_token(request: Request) -> str:
    """The token this request's forms carry: bound to the session's token, or empty
    when there is no session (the login form brings its own)."""
    try:
        token = presented_token(request)
    except Unauthenticated:
        return ""
    if not token:
        return ""
    return hmac.new(token.encode("utf-8", "surrogatepass"), b"shipyard-console-csrf",
                    hashlib.sha256).hexdigest()


def check_csrf(request: Request, form: FormData) -> None:
    """Refuse a form whose CSRF token is not this session's (400 naming ``csrf_token``)."""
    sent = form.get(CSRF_FIELD)
    expected = csrf_token(request)
    if not isinstance(sent, str) or not expected or not hmac.compare_digest(
            sent.encode(), expected.encode()):
        raise InvalidArgument("the form's CSRF token is missing or wrong: reload the page "
                              "and send the form again", field=CSRF_FIELD)


async def read_form(request: Request) -> FormData:
    """The posted form's text fields (no files; a bounded number of fields)."""
    return await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)


def may(request: Request, permission: Permission) -> bool:
    """Whether the signed-in caller holds ``permission`` in the page's project, as the
    policy dependency would judge it: pages show the buttons it would refuse disabled."""
    principal = getattr(request.state, "principal", None)
    if not isinstance(principal, Principal):
        return False
    project = request.path_params.get("project")
    role: Role | None = Role.ADMIN if principal.is_admin else None
    if role is None and project is not None:
        role = identity.role_in(server_state(request).store, principal, project)
    held = ROLE_PERMISSIONS[role] if role is not None else frozenset()
    return permission in effective_permissions(principal.scopes, held)


def safe_next(value: object) -> str:
    """A path on this server to go to after signing in (never another site)."""
    if (isinstance(value, str) and value.startswith("/") and not value.startswith("//")
            and "\\" not in value and len(value) <= 2000 and value.isprintable()):
        return value
    return "/"


@router.get("/")
def home(request: Request, state: State) -> RedirectResponse:
    """Where the one-time login link lands: the default project's overview."""
    return RedirectResponse(f"/console/projects/{state.settings.project}", status_code=303)


@router.get(LOGIN_PATH)
def login_form(request: Request,
               next: Annotated[str, Query(max_length=2000)] = "/") -> Response:
    nonce = secrets.token_urlsafe(32)
    response = render(request, "login.html", {"next": safe_next(next), "error": None,
                                              "csrf": nonce, "principal": None})
    _set_login_cookie(response, request, nonce)
    return response


@router.post(LOGIN_PATH)
async def login(request: Request, state: State) -> Response:
    form = await read_form(request)
    sent, kept = form.get(CSRF_FIELD), request.cookies.get(LOGIN_COOKIE)
    if not (isinstance(sent, str) and kept and hmac.compare_digest(sent.encode(),
                                                                     kept.encode())):
        raise InvalidArgument("the login form's CSRF token is missing or wrong: reload the "
                              "sign-in page and try again", field=CSRF_FIELD)
    name, password = form.get("name"), form.get("password")
    target = safe_next(form.get("next"))
    if not isinstance(name, str) or not isinstance(password, str) or not name or not password:
        raise InvalidArgument("enter a user name and a password", field="name")
    ctx = request_context(request)
    try:
        created = await run_in_threadpool(
            identity.login, state.store, name[:128], password[:1024], ctx.client or "unknown",
            limiter=identity_state(state).login_limiter, expires_in=SESSION_LIFETIME)
    except Unauthenticated as exc:
        nonce = secrets.token_urlsafe(32)
        response = render(request, "login.html",
                          {"next": target, "error": exc.message, "csrf": nonce,
                           "principal": None}, status_code=401)
        _set_login_cookie(response, request, nonce)
        return response
    redirect = RedirectResponse(target, status_code=303)
    set_session_cookie(redirect, request, created.plaintext)
    redirect.delete_cookie(LOGIN_COOKIE, path=LOGIN_PATH)
    return redirect


@router.post("/console/logout")
async def logout(request: Request, state: State) -> Response:
    form = await read_form(request)
    check_csrf(request, form)
    principal = getattr(request.state, "principal", None)
    if isinstance(principal, Principal) and principal.token_id is not None:
        ctx = request_context(request)
        await run_in_threadpool(identity.revoke_token, state.store, ctx, principal.token_id)
    response = RedirectResponse(LOGIN_PATH, status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def set_session_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(SESSION_COOKIE, token, max_age=int(SESSION_LIFETIME.total_seconds()),
                        path="/", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")


def _set_login_cookie(response: Response, request: Request, nonce: str) -> None:
    response.set_cookie(LOGIN_COOKIE, nonce, max_age=3600, path=LOGIN_PATH, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")

"""Request body limits and the body timeout, enforced while the body streams in.

How much of a body the server reads depends on who is asking, decided from the headers before
a byte of the body is read (Content-Length can lie, so the count is kept as it streams too):

* without a valid credential: ``anonymous_limit`` (64 KiB; a login needs a few hundred bytes),
  whatever the route;
* with one: ``json_limit``;
* on an upload route, the policy check runs first (``server.auth.authorize``): a caller it
  refuses gets its 403 (or 400, 415, ...) at once, a caller it allows gets ``upload_limit``.
  FastAPI reads and spools a multipart body before any dependency runs, so this check cannot
  wait for the route.

A body over the limit is answered with 413 problem+json by this middleware itself, at once:
a declared Content-Length over the limit before a byte of the body is read, a chunked or lying
body as soon as the running count passes the limit. A client that sends nothing for
``body_timeout`` seconds in the middle of its body, or that has no valid credential and has
not sent its whole (small) body within that time, is answered 408. Either way the connection
is closed, the application sees the client as disconnected, and anything it still tries to
send is dropped. (Raising from ``receive`` instead would reach handlers wrapped in other
middleware's task groups and come out as a 400 or a 500.)

A server's settings may override the timeout: ``settings.extra["body_timeout"]`` (seconds),
which ``shipyard server --body-timeout`` sets.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard.errors import ShipyardError
from shipyard.security import service as identity
from shipyard.security.headers import API_SECURITY_HEADERS
from shipyard.server.auth import authorize, presented_token
from shipyard.server.errors import from_error
from shipyard.server.policy import POLICY, Rule
from shipyard.server.state import ServerState
from shipyard.store.availability import database_unavailable

log = logging.getLogger(__name__)

ANONYMOUS_LIMIT = 64 * 1024
BODY_TIMEOUT = 30.0

_DISCONNECT: Message = {"type": "http.disconnect"}
_TITLES = {400: "Bad Request", 408: "Request Timeout", 413: "Content Too Large"}


@dataclass(frozen=True)
class _Upload:
    """An upload route of the policy table, matched by path before routing."""

    method: str
    pattern: re.Pattern[str]
    route: str  # the path template, as the policy table and the audit log name it
    rule: Rule


def _upload_routes() -> list[_Upload]:
    out = []
    for (method, route), rule in POLICY.items():
        if rule.upload:
            pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(route))
            out.append(_Upload(method, re.compile(f"^{pattern}$"), route, rule))
    return out


@dataclass(frozen=True)
class _Grant:
    limit: int
    authenticated: bool


class BodyLimit:
    """Refuse request bodies over the limit for who is asking, and bodies that stall.

    ``anonymous_limit`` (capped at ``json_limit``) for callers without a valid credential,
    ``json_limit`` for callers with one, ``upload_limit`` on the upload routes the policy
    allows the caller. ``body_timeout``: see the module docstring.
    """

    def __init__(self, app: ASGIApp, *, json_limit: int, upload_limit: int,
                 anonymous_limit: int = ANONYMOUS_LIMIT,
                 body_timeout: float = BODY_TIMEOUT) -> None:
        self.app = app
        self.json_limit = json_limit
        self.upload_limit = upload_limit
        self.anonymous_limit = min(anonymous_limit, json_limit)
        self.body_timeout = body_timeout
        self.uploads = _upload_routes()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared: int | None = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = _content_length(value)
                if declared is None:
                    await _refuse(send, "Content-Length is not a non-negative number", 400)
                    return
            elif name == b"transfer-encoding":
                chunked = True
        has_body = chunked or bool(declared)
        grant = _Grant(self.anonymous_limit, False)
        if has_body:
            decided = await self._grant(scope)
            if isinstance(decided, ShipyardError):
                await _answer(scope, receive, send, decided)
                return
            grant = decided
        limit = grant.limit
        if declared is not None and declared > limit:
            await _refuse(send, f"the request body is {declared} bytes; "
                          + _limit_phrase(grant))
            return
        timeout = _body_timeout(scope, self.body_timeout)
        # Without a credential the whole (small) body must arrive within the timeout, so a
        # client cannot hold the connection by sending a byte now and then.
        deadline = None if grant.authenticated else anyio.current_time() + timeout
        received = 0
        refused = False
        finished = not has_body  # then there is nothing to wait for
        started = False

        async def limited_receive() -> Message:
            nonlocal received, refused, finished
            if refused:
                return _DISCONNECT
            if finished:
                return await receive()  # the app waits for a disconnect, not for the body
            wait = timeout if deadline is None else deadline - anyio.current_time()
            message: Message | None = None
            if wait > 0:
                with anyio.move_on_after(wait):
                    message = await receive()
            if message is None:
                refused = True
                if not started:
                    await _refuse(send, _late_phrase(grant, timeout), 408)
                return _DISCONNECT
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    if not started:
                        await _refuse(send, "the request body exceeds the limit: "
                                      + _limit_phrase(grant))
                    return _DISCONNECT
                finished = not message.get("more_body", False)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 408 or 413 already answered; the app's late reply goes nowhere
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not refused:
                raise
            # The app tripped over the disconnect made up above; the client has its answer.
            log.debug("request body refused on %s %s", scope["method"], scope["path"])

    async def _grant(self, scope: Scope) -> _Grant | ShipyardError:
        """The limit for this caller, or the error to answer an upload the policy refuses."""
        small = _Grant(self.anonymous_limit, False)
        state = _state(scope)
        if state is None:
            return small
        try:
            token = presented_token(Request(scope))
            if not token:
                return small
            await run_in_threadpool(identity.authenticate, state.store, token)
        except ShipyardError:
            # A bad credential: the policy dependency answers (and records) it, after a body
            # small enough to be harmless.
            return small
        except Exception as exc:
            # This runs before the app's error handlers: a database that is away must be
            # the 503 it is there too, not a bare 500.
            unavailable = database_unavailable(exc)
            if unavailable is None:
                raise
            return unavailable
        upload = self._upload_for(scope)
        if upload is None:
            return _Grant(self.json_limit, True)
        route, params = upload
        # The same checks the policy dependency makes, on a request carrying the path
        # parameters routing would find (and a state of its own, which it sets).
        request = Request({**scope, "path_params": params, "state": {}})
        try:
            await run_in_threadpool(authorize, request, route.rule, route.route)
        except ShipyardError as exc:
            return exc
        except Exception as exc:
            unavailable = database_unavailable(exc)
            if unavailable is None:
                raise
            return unavailable
        return _Grant(self.upload_limit, True)

    def _upload_for(self, scope: Scope) -> tuple[_Upload, dict[str, str]] | None:
        for upload in self.uploads:
            if upload.method == scope["method"]:
                match = upload.pattern.match(scope["path"])
                if match:
                    return upload, match.groupdict()
        return None


def _state(scope: Scope) -> ServerState | None:
    state = getattr(getattr(scope.get("app"), "state", None), "shipyard", None)
    return state if isinstance(state, ServerState) else None


def _body_timeout(scope: Scope, default: float) -> float:
    state = _state(scope)
    configured = state.settings.extra.get("body_timeout") if state is not None else None
    return default if configured is None else float(configured)


def _limit_phrase(grant: _Grant) -> str:
    if grant.authenticated:
        return f"the limit for this route is {grant.limit} bytes"
    return (f"the limit without a valid credential is {grant.limit} bytes: send "
            "'Authorization: Bearer <token>'")


def _late_phrase(grant: _Grant, timeout: float) -> str:
    if grant.authenticated:
        return (f"no part of the request body arrived for {timeout:g} s; the server stopped "
                "waiting for it")
    return (f"the request body did not arrive within {timeout:g} s (the limit without a "
            "valid credential)")


def _content_length(value: bytes) -> int | None:
    text = value.decode("latin-1").strip()
    if not text.isdigit() or len(text) > 18:  # '+5', '-5', '1e9', ' ' and absurd lengths
        return None
    return int(text)


def _closing_headers(body: bytes) -> list[tuple[bytes, bytes]]:
    # The body is not read: closing the connection is the only way not to read it later.
    return [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *((k.lower().encode(), v.encode()) for k, v in API_SECURITY_HEADERS.items()),
    ]


async def _refuse(send: Send, detail: str, status: int = 413) -> None:
    kind = "too_large" if status == 413 else "invalid_argument"
    problem: dict[str, Any] = {
        "type": f"https://shipyard.dev/problems/{kind}", "title": _TITLES[status],
        "status": status, "detail": detail, "kind": kind, "field": "body",
    }
    body = json.dumps(problem).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": _closing_headers(body)})
    await send({"type": "http.response.body", "body": body})


async def _answer(scope: Scope, receive: Receive, send: Send, error: ShipyardError) -> None:
    response = from_error(error)
    for name, value in _closing_headers(bytes(response.body)):
        if name not in (b"content-type", b"content-length"):
            response.headers[name.decode()] = value.decode()
    await response(scope, receive, send)

"""Request size limits, enforced while the body streams in (Content-Length can lie).

A body over the limit is answered with 413 problem+json by this middleware itself, at once:
a declared Content-Length over the limit before a byte of the body is read, a chunked or
lying body as soon as the running count passes the limit. The application then sees the
client as disconnected, and anything it still tries to send is dropped. (Raising from
``receive`` instead would reach handlers wrapped in other middleware's task groups and come
out as a 400 or a 500.)
"""

from __future__ import annotations

import json
import logging
import re

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard.errors import ShipyardError
from shipyard.security import service as identity
from shipyard.server.auth import presented_token
from shipyard.server.policy import upload_patterns

log = logging.getLogger(__name__)

_DISCONNECT: Message = {"type": "http.disconnect"}


class BodyLimit:
    """Refuse request bodies over ``json_limit`` bytes (``upload_limit`` on upload routes).

    Upload routes are recognised by path so the check runs before routing: a body over the
    limit is never buffered, whatever route it claims to be for.
    """

    def __init__(self, app: ASGIApp, *, json_limit: int, upload_limit: int) -> None:
        self.app = app
        self.json_limit = json_limit
        self.upload_limit = upload_limit
        self.uploads = [(m, re.compile(p)) for m, p in upload_patterns()]

    def is_upload(self, method: str, path: str) -> bool:
        return any(m == method and p.match(path) for m, p in self.uploads)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.json_limit
        # FastAPI reads (and spools) multipart bodies before any dependency runs, so the
        # large upload limit is granted here only to a caller with a valid credential; the
        # policy dependency still decides what that caller may do.
        if self.is_upload(scope["method"], scope["path"]) and await _authenticated(scope):
            limit = self.upload_limit
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = _content_length(value)
                if declared is None:
                    await _refuse(send, "Content-Length is not a non-negative number", 400)
                    return
                if declared > limit:
                    await _refuse(send, f"the request body is {declared} bytes; the limit "
                                  f"for this route is {limit}")
                    return
        received = 0
        refused = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            if refused:
                return _DISCONNECT
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    if not started:
                        await _refuse(send, f"the request body exceeds the limit of {limit} "
                                      "bytes for this route")
                    return _DISCONNECT
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 already answered; the app's late reply goes nowhere
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not refused:
                raise
            # The app tripped over the disconnect made up above; the client has its 413.
            log.debug("request body over the limit on %s %s", scope["method"], scope["path"])


async def _authenticated(scope: Scope) -> bool:
    app = scope.get("app")
    state = getattr(getattr(app, "state", None), "shipyard", None)
    if state is None:
        return False
    try:
        token = presented_token(Request(scope))
        if not token:
            return False
        await run_in_threadpool(identity.authenticate, state.store, token)
    except ShipyardError:
        return False
    return True


def _content_length(value: bytes) -> int | None:
    text = value.decode("latin-1").strip()
    if not text.isdigit() or len(text) > 18:  # '+5', '-5', '1e9', ' ' and absurd lengths
        return None
    return int(text)


async def _refuse(send: Send, detail: str, status: int = 413) -> None:
    body = json.dumps({
        "type": "https://shipyard.dev/problems/too_large",
        "title": "Content Too Large" if status == 413 else "Bad Request",
        "status": status, "detail": detail,
        "kind": "too_large" if status == 413 else "invalid_argument", "field": "body",
    }).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]})
    await send({"type": "http.response.body", "body": body})

"""Request size limits, enforced while the body streams in (Content-Length can lie)."""

from __future__ import annotations

import json
import re

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard.server.policy import upload_patterns


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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        method: str = scope["method"]
        is_upload = any(m == method and p.match(path) for m, p in self.uploads)
        limit = self.upload_limit if is_upload else self.json_limit
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _too_large(send, "Content-Length is not a number", 400)
                    return
                if declared > limit:
                    await _too_large(send, f"the request body is {declared} bytes; "
                                     f"the limit for this route is {limit}")
                    return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited_receive, send)


class BodyTooLarge(HTTPException):
    """An HTTPException so that FastAPI's body parsing passes it through as a 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body exceeds the limit of {limit} bytes")


async def _too_large(send: Send, detail: str, status: int = 413) -> None:
    body = json.dumps({
        "type": "https://shipyard.dev/problems/too_large",
        "title": "Content Too Large" if status == 413 else "Bad Request",
        "status": status, "detail": detail, "kind": "too_large", "field": "body",
    }).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]})
    await send({"type": "http.response.body", "body": body})

"""A server started the way ``shipyard server`` starts it, and raw HTTP for slow clients.

``served`` runs ``server.run.serve`` itself, with ``uvicorn.run`` replaced by a recorder, and
then serves the app it built with exactly the options it chose: the tests see the network
options (proxy headers, concurrency, body timeout) the command line really sets.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
import uvicorn

from shipyard.config import Settings
from shipyard.security.credentials import read_credentials
from shipyard.server.run import serve
from tests.server.live import LiveServer, free_port, running


@dataclass
class Served(LiveServer):
    # What ``serve`` passed to ``uvicorn.run`` besides the app.
    options: dict[str, Any] = field(default_factory=dict)


@contextmanager
def served(settings: Settings, monkeypatch: pytest.MonkeyPatch, **serve_options: Any
           ) -> Iterator[Served]:
    recorded: dict[str, Any] = {}

    def record(app: Any, **options: Any) -> None:
        recorded.update(options, app=app)

    with monkeypatch.context() as patch:
        patch.setattr(uvicorn, "run", record)
        serve(settings, host="127.0.0.1", port=free_port(), announce=False, **serve_options)
    app = recorded.pop("app")
    token = read_credentials(settings.home)
    assert token is not None
    with running(uvicorn.Config(app, **recorded)):
        yield Served(url=f"http://127.0.0.1:{recorded['port']}", token=token,
                     settings=settings, app=app, options=dict(recorded))


# -- raw HTTP ------------------------------------------------------------------------------------
def connect(live: LiveServer, timeout: float = 10.0) -> socket.socket:
    parts = urlsplit(live.url)
    assert parts.hostname is not None and parts.port is not None
    return socket.create_connection((parts.hostname, parts.port), timeout=timeout)


def head(method: str, path: str, *, length: int | None = None, token: str | None = None,
         content_type: str = "application/json", chunked: bool = False,
         extra: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Type: {content_type}"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    if length is not None:
        lines.append(f"Content-Length: {length}")
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    lines += [f"{k}: {v}" for k, v in (extra or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def problem(self) -> dict[str, Any]:
        assert self.headers["content-type"].startswith("application/problem+json"), self
        data: dict[str, Any] = json.loads(self.body)
        assert data["status"] == self.status
        return data


def read_answer(sock: socket.socket) -> Answer:
    """One response (head and Content-Length body) from ``sock``; fails on a timeout."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a response: {data[:200]!r}")
        data += chunk
    raw_head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = raw_head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return Answer(int(status_line.split(" ", 2)[1]), headers, body[:length])


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes ``sock`` within ``seconds`` (what it sent is discarded)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            if not sock.recv(65536):
                return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False
    return False

"""How much of a request body the server reads, for whom, and for how long (items 5 and 6).

* The large upload limit is granted only to a caller the policy allows on the upload route:
  anyone else is refused (401, 403) or held to a small limit before a byte of the body is read.
  (A multipart body is spooled by FastAPI before any dependency runs.)
* A request without a valid credential may send at most 64 KiB (a login needs a few hundred
  bytes), refused while the headers are read when Content-Length says more.
* A client that stops sending mid-body is answered 408 and disconnected after the body
  timeout (1 s here, 30 s by default); one without a credential must send its whole body
  within it.
* ``shipyard server`` bounds concurrent connections (uvicorn's ``limit_concurrency``).
"""

from __future__ import annotations

import dataclasses
import select
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from shipyard.cli.main import app as cli_app
from shipyard.config import Settings
from shipyard.server import limits, run
from shipyard.store import Store, open_store
from tests.security._served import (
    Answer,
    closed_within,
    connect,
    head,
    read_answer,
    served,
)
from tests.security._support import audit_rows
from tests.server.conftest import client, make_user, unique
from tests.server.live import LiveServer, live_server

TIMEOUT = 1.0
MiB = 1024 * 1024
PROJECT = "limits"
REGISTER = f"/api/v1/projects/{PROJECT}/models/m/versions"
MULTIPART = "multipart/form-data; boundary=xyzzy"
# The start of a multipart body: a model part whose bytes then keep coming.
PART = (b'--xyzzy\r\nContent-Disposition: form-data; name="model"; filename="m.tar"\r\n'
        b"Content-Type: application/x-tar\r\n\r\n")


def _settings(home: object, **extra: str) -> Settings:
    settings = Settings.resolve(home=str(home), uri=f"sqlite:///{home}/db.sqlite",
                                artifacts=f"{home}/blobs", environ={})
    return dataclasses.replace(settings, extra=extra)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    home = tmp_path_factory.mktemp("limits")
    with live_server(_settings(home, body_timeout=str(TIMEOUT)), worker=False) as live:
        yield live


@pytest.fixture(scope="module")
def store(server: LiveServer) -> Iterator[Store]:
    s = open_store(server.settings.uri, cached=False)
    try:
        yield s
    finally:
        s.dispose()


@pytest.fixture(scope="module")
def tokens(server: LiveServer) -> dict[str, str]:
    with client(server, server.token) as admin:
        out = {"admin": server.token, "none": make_user(admin, unique("none"))}
        for role in ("viewer", "user", "editor"):
            out[role] = make_user(admin, unique(role), project=PROJECT, role=role)
        out["editor-read"] = make_user(admin, unique("edr"), project=PROJECT, role="editor",
                                       scopes=["read"])
        run_ = admin.post(f"/api/v1/projects/{PROJECT}/runs", json={"experiment": "e"})
        assert run_.status_code == 200, run_.text
        out["run"] = run_.json()["id"]
    return out


def artifact_url(tokens: dict[str, str], name: str = "a.bin") -> str:
    return f"/api/v1/projects/{PROJECT}/runs/{tokens['run']}/artifacts/{name}"


def ask(live: LiveServer, request_head: bytes, body: bytes = b"") -> tuple[Answer, float]:
    """Send a request head (and ``body``), then read the answer; and how long it took."""
    started = time.monotonic()
    with connect(live, timeout=TIMEOUT + 5) as sock:
        sock.sendall(request_head + body)
        answer = read_answer(sock)
    return answer, time.monotonic() - started


# -- item 5: the upload limit only for callers the policy allows -----------------------------------
@pytest.mark.parametrize("who", ["viewer", "user", "none", "editor-read"])
@pytest.mark.parametrize("route", ["register", "artifact"])
def test_a_caller_without_permission_is_refused_before_the_upload_is_read(
        server: LiveServer, tokens: dict[str, str], store: Store, who: str, route: str) -> None:
    # Declares 100 MiB and sends none of it: the 403 must not wait for (or spool) the body.
    if route == "register":
        method, path, media = "POST", REGISTER, MULTIPART
        action = "POST /api/v1/projects/{project}/models/{name}/versions"
    else:
        method, path, media = "PUT", artifact_url(tokens), "application/octet-stream"
        action = "PUT /api/v1/projects/{project}/runs/{run_id}/artifacts/{name}"
    before = len(audit_rows(store, action))
    answer, elapsed = ask(server, head(method, path, length=100 * MiB, token=tokens[who],
                                       content_type=media))
    assert answer.status == 403, answer
    assert answer.problem()["kind"] == "permission_denied"
    assert elapsed < 2, elapsed
    # Recorded like any other denial, once.
    rows = audit_rows(store, action)[before:]
    assert [(r["outcome"], r["project"], r["resource"]) for r in rows] == [
        ("denied", PROJECT, path)]


def test_an_editor_gets_the_upload_limit(server: LiveServer, tokens: dict[str, str]) -> None:
    # 100 MiB is over the 16 MiB JSON limit: an editor may send it, so the server reads on
    # until the client stops, and the body timeout then ends it.
    answer, elapsed = ask(server, head("POST", REGISTER, length=100 * MiB,
                                       token=tokens["editor"], content_type=MULTIPART),
                          PART + b"\0" * MiB)
    assert answer.status == 408, answer
    assert answer.problem()["field"] == "body"
    assert TIMEOUT <= elapsed < TIMEOUT + 2, elapsed


def test_an_editor_uploads_more_than_the_small_limits(server: LiveServer,
                                                      tokens: dict[str, str]) -> None:
    with client(server, tokens["editor"]) as http:
        response = http.put(artifact_url(tokens, "one-mib.bin"), content=b"x" * MiB,
                            headers={"Content-Type": "application/octet-stream"})
    assert response.status_code == 200, response.text
    assert response.json()["size"] == MiB


def test_an_anonymous_upload_is_held_to_the_small_limit(server: LiveServer,
                                                        tokens: dict[str, str]) -> None:
    for token in (None, "sy_0123456789ab_" + "A" * 43):
        answer, elapsed = ask(server, head("PUT", artifact_url(tokens), length=MiB,
                                           token=token, content_type="application/octet-stream"))
        assert answer.status == 413, answer
        assert elapsed < 2


# -- item 6: a small limit before authentication, a body timeout ---------------------------------
@pytest.mark.parametrize("path", ["/api/v1/login", f"/api/v1/projects/{PROJECT}/experiments",
                                  REGISTER])
def test_an_anonymous_mebibyte_is_refused_before_it_is_read(server: LiveServer, path: str) -> None:
    answer, elapsed = ask(server, head("POST", path, length=MiB))
    assert answer.status == 413, answer
    problem = answer.problem()
    assert (problem["kind"], problem["field"]) == ("too_large", "body")
    assert str(limits.ANONYMOUS_LIMIT) in problem["detail"]
    assert answer.headers["connection"] == "close"
    assert elapsed < 2, elapsed


def test_an_anonymous_chunked_body_is_cut_off_at_64_kib(server: LiveServer) -> None:
    with connect(server) as sock:
        sock.sendall(head("POST", "/api/v1/login", chunked=True))
        chunk = b"x" * 4096
        for _ in range(20):  # 80 KiB, and no terminating chunk
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        answer = read_answer(sock)
    assert answer.status == 413, answer


def test_a_small_anonymous_body_is_still_read(server: LiveServer) -> None:
    with client(server, None) as http:
        response = http.post("/api/v1/login", json={"name": unique("who"),
                                                    "password": "p" * 20})
    assert response.status_code == 401, response.text


def test_an_anonymous_client_that_stalls_after_1_mib_is_cut_off(server: LiveServer) -> None:
    # The reported attack: declare 15 MiB, send 1 MiB, stop. The server answers (413, at the
    # head) and closes the connection well within the body timeout, holding nothing.
    started = time.monotonic()
    with connect(server) as sock:
        sock.sendall(head("POST", "/api/v1/login", length=15 * MiB))
        sent = 0
        try:
            while sent < MiB:
                sock.sendall(b"x" * 65536)
                sent += 65536
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert closed_within(sock, TIMEOUT + 2)
    assert time.monotonic() - started < TIMEOUT + 2


def test_a_stalled_anonymous_body_is_answered_408(server: LiveServer) -> None:
    answer, elapsed = ask(server, head("POST", "/api/v1/login", length=32 * 1024), b"{" * 1024)
    assert answer.status == 408, answer
    assert answer.headers["connection"] == "close"
    assert answer.problem()["field"] == "body"
    assert TIMEOUT <= elapsed < TIMEOUT + 2, elapsed


def test_an_anonymous_body_must_arrive_whole_within_the_timeout(server: LiveServer) -> None:
    # Never idle for a whole timeout, but still not done after it: a drip is cut off too.
    started = time.monotonic()
    with connect(server) as sock:
        sock.sendall(head("POST", "/api/v1/login", length=32 * 1024))
        while time.monotonic() - started < TIMEOUT + 3:
            try:
                sock.sendall(b" " * 100)
            except (BrokenPipeError, ConnectionResetError):
                break
            if select.select([sock], [], [], TIMEOUT / 4)[0]:
                break
        answer = read_answer(sock)
    elapsed = time.monotonic() - started
    assert answer.status == 408, answer
    assert TIMEOUT <= elapsed < TIMEOUT + 1.5, elapsed


def test_a_stalled_authenticated_body_is_answered_408(server: LiveServer) -> None:
    answer, elapsed = ask(server, head("POST", f"/api/v1/projects/{PROJECT}/experiments",
                                       length=15 * MiB, token=server.token), b" " * MiB)
    assert answer.status == 408, answer
    assert answer.problem()["kind"] == "invalid_argument"
    assert TIMEOUT <= elapsed < TIMEOUT + 2, elapsed


def test_a_slow_but_steady_authenticated_body_is_read(server: LiveServer) -> None:
    # The timeout is between two pieces of the body, not for the whole of it.
    body = b'{"name": "steady"}' + b" " * 300
    pieces = [body[i:i + 80] for i in range(0, len(body), 80)]
    started = time.monotonic()
    with connect(server) as sock:
        sock.sendall(head("POST", f"/api/v1/projects/{PROJECT}/experiments",
                          length=len(body), token=server.token))
        for piece in pieces:
            time.sleep(TIMEOUT * 0.4)
            sock.sendall(piece)
        answer = read_answer(sock)
    assert time.monotonic() - started > TIMEOUT
    assert answer.status in (200, 201), answer


# -- the server command's options ------------------------------------------------------------------
def test_serve_bounds_concurrency_and_sets_the_body_timeout(
        tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    assert limits.BODY_TIMEOUT == 30.0
    with served(_settings(tmp_path), monkeypatch) as defaults:
        assert defaults.options["limit_concurrency"] == run.LIMIT_CONCURRENCY == 256
    with served(_settings(tmp_path), monkeypatch, limit_concurrency=3,
                body_timeout=TIMEOUT) as live:
        assert live.options["limit_concurrency"] == 3
        idle = [connect(live) for _ in range(3)]
        try:
            with httpx.Client(base_url=live.url) as http:
                assert http.get("/api/v1/health").status_code == 503
        finally:
            for sock in idle:
                sock.close()
        _eventually_healthy(live)
        # And the timeout given reaches the body reader.
        answer, elapsed = ask(live, head("POST", "/api/v1/login", length=1024), b"{")
        assert answer.status == 408 and elapsed < TIMEOUT + 2


def _eventually_healthy(live: LiveServer) -> None:
    deadline = time.monotonic() + 5
    with httpx.Client(base_url=live.url) as http:
        while (status := http.get("/api/v1/health").status_code) != 200:
            assert time.monotonic() < deadline, status
            time.sleep(0.05)


def test_the_command_line_passes_the_options(tmp_path: object,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(run, "serve", lambda settings, **options: calls.append(options))
    base = ["--home", str(tmp_path), "server"]
    result = CliRunner().invoke(cli_app, [*base, "--body-timeout", "5",
                                          "--limit-concurrency", "64"])
    assert result.exit_code == 0, result.output
    assert calls[-1]["body_timeout"] == 5.0 and calls[-1]["limit_concurrency"] == 64
    # The command's defaults are the server's.
    assert CliRunner().invoke(cli_app, base).exit_code == 0
    assert calls[-1]["body_timeout"] == limits.BODY_TIMEOUT
    assert calls[-1]["limit_concurrency"] == run.LIMIT_CONCURRENCY


def test_the_socket_helper_sees_a_closed_connection() -> None:
    # closed_within must not mistake a silent peer for a closed one.
    left, right = socket.socketpair()
    with left, right:
        assert not closed_within(left, 0.1)
        right.close()
        assert closed_within(left, 1)

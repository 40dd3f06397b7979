"""Bad input over real HTTP: always a 4xx problem+json naming the field, never a 500.

Also the browser-facing checks (content type, Origin, Host) and the body limits, including a
Content-Length that lies and chunked bodies: a body over the limit is refused before the
server buffers it.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from shipyard.config import Settings
from tests.server.conftest import assert_problem, client
from tests.server.live import LiveServer, live_server

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def exp_url(project: str) -> str:
    return f"/api/v1/projects/{project}/experiments"


@pytest.mark.parametrize(("content", "field"), [
    (b'{"name": ', "body"),
    (b"{'name': 'x'}", "body"),
    (b'{"name": "x",}', "body"),
    (b"\xff\xfe{}", "body"),
    (b"[]", "body"),
    (b'"just a string"', "body"),
    (b"null", "body"),
    (b'{"name": 5}', "name"),
    (b'{"name": ["x"]}', "name"),
    (b'{"name": "x", "bogus": 1}', "bogus"),
    (b"{}", "name"),
    (b'{"name": "' + b"x" * 5000 + b'"}', "name"),
])
def test_malformed_bodies_name_the_field(admin: httpx.Client, exp_url: str, content: bytes,
                                         field: str) -> None:
    response = admin.post(exp_url, content=content, headers=JSON)
    assert_problem(response, 400, field)
    # The offending input is not echoed back (it may be large or hostile).
    assert "xxxxxxxxxx" not in response.text


def test_nested_fields_are_named(admin: httpx.Client, project: str) -> None:
    run = admin.post(f"/api/v1/projects/{project}/runs", json={"experiment": "e"}).json()
    url = f"/api/v1/projects/{project}/runs/{run['id']}/log-batch"
    bad = {"metrics": [{"key": "loss", "value": 1.0}, {"key": "loss", "value": "high"}]}
    assert_problem(admin.post(url, json=bad), 400, "metrics[1].value")
    extra = {"metrics": [{"key": "loss", "value": 1.0, "colour": "red"}]}
    assert_problem(admin.post(url, json=extra), 400, "metrics[0].colour")
    assert_problem(admin.post(url, content=b'{"metrics": [{"key": "l", "value": NaN}]}',
                              headers=JSON), 400)


def test_bad_query_and_path_values(admin: httpx.Client, project: str) -> None:
    assert_problem(admin.get(f"/api/v1/projects/{project}/lineage/artifacts",
                             params={"limit": "lots"}), 400, "limit")
    assert_problem(admin.get(f"/api/v1/projects/{project}/lineage/artifacts",
                             params={"limit": "0"}), 400, "limit")
    assert_problem(admin.get("/api/v1/projects/bad%20name/experiments"), 400, "project")
    assert_problem(admin.get(f"/api/v1/projects/{project}/runs/not-an-id"), 400)


@pytest.mark.parametrize("content_type", [
    "text/plain", "application/x-www-form-urlencoded", "text/html", "application/xml",
    "application/octet-stream", "",
])
def test_wrong_content_type_on_a_post_is_415(admin: httpx.Client, exp_url: str,
                                             content_type: str) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = admin.post(exp_url, content=b'{"name": "x"}', headers=headers)
    if not content_type:
        # httpx adds no type for raw content; the server must not guess JSON.
        assert "content-type" not in response.request.headers
    assert_problem(response, 415, "content-type")


def test_json_variants_are_accepted(admin: httpx.Client, exp_url: str) -> None:
    for content_type in ("application/json; charset=utf-8", "application/problem+json"):
        response = admin.post(exp_url, content=b'{"name": "ok"}',
                              headers={"Content-Type": content_type})
        assert response.status_code == 200, response.text


@pytest.mark.parametrize("origin", [
    "https://evil.example", "null", "http://127.0.0.1.evil.example", "http://localhost:1",
    "file://", "http://127.0.0.1",
])
def test_cross_origin_post_is_403(admin: httpx.Client, exp_url: str, origin: str) -> None:
    response = admin.post(exp_url, json={"name": "x"}, headers={"Origin": origin})
    assert_problem(response, 403, "origin")


def test_same_origin_post_is_allowed(admin: httpx.Client, exp_url: str, live: LiveServer
                                     ) -> None:
    response = admin.post(exp_url, json={"name": "x"}, headers={"Origin": live.url})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("host", [
    "evil.example", "evil.example:8080", "127.0.0.1.nip.io", "localhost.evil.example",
    "user@127.0.0.1", "127.0.0.1/x", "", "[::ffff:7f00:1]x",
])
def test_foreign_host_is_403(live: LiveServer, host: str) -> None:
    # DNS rebinding: a foreign page whose name now resolves to 127.0.0.1 still sends its own
    # name in Host. Checked on a public route too, so nothing answers such a page.
    for path in ("/api/v1/health", "/api/v1/whoami", "/api/v1/projects/default/experiments"):
        status, body = _raw(live.url, f"GET {path} HTTP/1.1\r\nHost: {host}\r\n"
                            f"Authorization: Bearer {live.token}\r\nConnection: close\r\n\r\n")
        assert status == 403, (host, path, status)
        assert b"Traceback" not in body


def test_loopback_hosts_are_accepted(live: LiveServer) -> None:
    port = urlsplit(live.url).port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost", f"[::1]:{port}"):
        status, _ = _raw(live.url, f"GET /api/v1/health HTTP/1.1\r\nHost: {host}\r\n"
                         "Connection: close\r\n\r\n")
        assert status == 200, host


def test_errors_do_not_echo_request_headers(admin: httpx.Client, exp_url: str) -> None:
    marker = "canary-7f3a9"
    response = admin.post(exp_url, content=b"nope", headers={
        "Content-Type": f"text/plain; x={marker}", "X-Evil": marker, "Origin": f"http://{marker}"})
    # The foreign Origin is refused before the content type is looked at.
    assert_problem(response, 403, "origin")
    assert marker not in response.text


# -- body limits -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    home = tmp_path_factory.mktemp("small")
    settings = Settings.resolve(home=home, uri=f"sqlite:///{home / 'db.sqlite'}",
                                artifacts=str(home / "blobs"), environ={})
    with live_server(settings, worker=False, json_limit=1024, upload_limit=4096) as server:
        yield server


def test_oversized_json_is_413(small: LiveServer) -> None:
    with client(small, small.token) as http:
        body = b'{"name": "' + b"x" * 4000 + b'"}'
        assert_problem(http.post("/api/v1/projects/default/experiments", content=body,
                                 headers=JSON), 413, "body")


def test_413_comes_before_the_body(small: LiveServer) -> None:
    # Declares a gigabyte and sends none of it: the answer must not wait for the body.
    started = time.monotonic()
    status, body = _raw(small.url, "POST /api/v1/projects/default/experiments HTTP/1.1\r\n"
                        f"Host: 127.0.0.1\r\nAuthorization: Bearer {small.token}\r\n"
                        "Content-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n")
    assert status == 413, body[:200]
    assert time.monotonic() - started < 5


def test_bad_content_length_is_400(small: LiveServer) -> None:
    status, _ = _raw(small.url, "POST /api/v1/projects/default/experiments HTTP/1.1\r\n"
                     "Host: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     "Content-Length: -5\r\nConnection: close\r\n\r\n")
    assert status == 400


def test_chunked_body_over_the_limit_is_cut_off(small: LiveServer) -> None:
    # No Content-Length at all: the limit is counted as chunks arrive, and the server answers
    # before the client has finished sending.
    parts = urlsplit(small.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall((
            "POST /api/v1/projects/default/experiments HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {small.token}\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n").encode())
        chunk = b"x" * 512
        for _ in range(8):
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        # Deliberately no terminating chunk.
        data = _read_head(sock)
    assert data.split(b" ", 2)[1] == b"413", data[:200]


def test_lying_content_length_does_not_smuggle_a_larger_body(small: LiveServer) -> None:
    # Declares 20 bytes and sends 8 KB: only the declared bytes are the body (the rest is
    # not read as part of it), so the limit cannot be dodged this way.
    body = b'{"name": "ok-lying"}' + b"x" * 8192
    status, _ = _raw(small.url, "POST /api/v1/projects/default/experiments HTTP/1.1\r\n"
                     f"Host: 127.0.0.1\r\nAuthorization: Bearer {small.token}\r\n"
                     "Content-Type: application/json\r\nContent-Length: 20\r\n"
                     "Connection: close\r\n\r\n", body)
    assert status == 200  # the declared 20 bytes are the whole body: a valid request
    with client(small, small.token) as http:
        listed = http.get("/api/v1/projects/default/experiments")
    assert "ok-lying" in {e["name"] for e in listed.json()}, listed.text


def test_upload_over_the_upload_limit_is_413(small: LiveServer) -> None:
    with client(small, small.token) as http:
        run = http.post("/api/v1/projects/default/runs", json={"experiment": "e"}).json()
        url = f"/api/v1/projects/default/runs/{run['id']}/artifacts/big.bin"
        ok = http.put(url, content=b"x" * 2048,
                      headers={"Content-Type": "application/octet-stream"})
        assert ok.status_code == 200, ok.text

        def stream() -> Iterator[bytes]:
            for _ in range(16):
                yield b"x" * 1024

        too_big = http.put(url, content=stream(),
                           headers={"Content-Type": "application/octet-stream"})
        assert_problem(too_big, 413)
    # Without a valid credential the upload limit does not apply: such a body is refused
    # before it is spooled, not after.
    for token in (None, "sy_0123456789ab_" + "A" * 43):
        with client(small, token) as anon:
            refused = anon.put(url, content=b"x" * 2048,
                               headers={"Content-Type": "application/octet-stream"})
            assert_problem(refused, 413)
            small_enough = anon.put(url, content=b"x" * 100,
                                    headers={"Content-Type": "application/octet-stream"})
            assert_problem(small_enough, 401)


# -- helpers -------------------------------------------------------------------------------------
def _raw(url: str, head: str, body: bytes = b"") -> tuple[int, bytes]:
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(head.encode("latin-1") + body)
        data = _read_head(sock)
    return int(data.split(b" ", 2)[1]), data


def _read_head(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        if not chunk:
            break
        data += chunk
    return data


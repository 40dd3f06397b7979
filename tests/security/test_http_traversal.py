"""Path traversal replays over real HTTP, on every route that takes a name or an id.

MLflow's artifact handlers were fixed and bypassed again and again with the same few classes
of input: ``../`` sequences, URL and double URL encoding, backslashes, ``#`` fragments and
``?`` queries that a second parser reads differently, absolute paths and ``//proc/self/root``.
Each advisory below names the class of input it was exploited with; every input is tried in
every name and id position of every route in the policy table (so new routes are covered
without touching this file), as an encoded segment and as raw bytes on the wire. The server
must answer 400 or 404 problem+json (405 where the decoded path names another route), never
serve a file from outside the artifact root and never write one there.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import pytest

from shipyard.ids import new_id
from shipyard.server.policy import POLICY
from tests.server.conftest import client, live, live_uri  # noqa: F401 - fixtures
from tests.server.live import LiveServer

CANARY = "canary-7d1c0e-outside-the-root"

# (advisory, input). The inputs aim at /etc/passwd and at a canary file planted next to the
# artifact root, so a successful read shows up in the response either way.
REPLAYS: list[tuple[str, str]] = [
    ("CVE-2023-1177", "../../../../../../etc/passwd"),
    ("CVE-2023-1177", "../canary.txt"),
    ("CVE-2023-1177", "/etc/passwd"),
    ("CVE-2023-2780", "%2e%2e%2f%2e%2e%2fcanary.txt"),
    ("CVE-2023-2780", "%252e%252e%252f%252e%252e%252fetc%252fpasswd"),
    ("CVE-2023-2780", "..%2f..%2f..%2fetc%2fpasswd"),
    ("CVE-2023-6909", "a#/../../../../etc/passwd"),
    ("CVE-2023-6909", "x#/../canary.txt"),
    ("CVE-2024-1560", "..\\..\\..\\canary.txt"),
    ("CVE-2024-1560", "C:\\Windows\\win.ini"),
    ("CVE-2024-1560", "a?/../../../etc/passwd"),
    ("CVE-2024-1483", "//proc/self/root/etc/passwd"),
    ("CVE-2024-1483", "/proc/self/cwd/canary.txt"),
    ("control-characters", "a\x00../../etc/passwd"),
    ("control-characters", "a\n../canary.txt"),
    ("dot", "."),
    ("dot", ".."),
    ("dot", "..."),
]
IDS = [f"{adv}-{i}" for i, (adv, _) in enumerate(REPLAYS)]

_PARAM = re.compile(r"\{([^}:]+)\}")
SAFE = {"project": "trav", "name": "m1", "version": "1", "alias": "prod",
        "principal": "nobody-zz", "token_id": "0123456789ab", "code": "nocode"}


def _targets() -> Iterator[tuple[str, str, str]]:
    """(method, path template, parameter) for every name or id position in the policy."""
    for (method, path), _rule in sorted(POLICY.items()):
        for param in _PARAM.findall(path):
            yield method, path, param


def _fill(path: str, param: str, segment: str) -> str:
    def sub(match: re.Match[str]) -> str:
        key = match.group(1)
        if key == param:
            return segment
        return SAFE.get(key) or new_id()

    return _PARAM.sub(sub, path)


@pytest.fixture(scope="module")
def planted(live: LiveServer) -> Iterator[Path]:  # noqa: F811 - the imported fixture
    root = Path(live.settings.artifacts)
    canary = root.parent / "canary.txt"
    canary.write_text(CANARY)
    try:
        yield canary
    finally:
        canary.unlink(missing_ok=True)


def _snapshot(top: Path, root: Path) -> set[str]:
    """Every file under ``top`` except inside the artifact root and the database's own."""
    found: set[str] = set()
    for dirpath, _dirs, files in os.walk(top):
        if Path(dirpath).is_relative_to(root):
            continue
        found.update(os.path.join(dirpath, f) for f in files
                     if not f.startswith("shipyard.db") and not f.startswith(".credentials"))
    return found


def _check(response: httpx.Response, where: str,
           statuses: tuple[int, ...] = (400, 404, 405)) -> None:
    assert response.status_code in statuses, (where, response.status_code,
                                                      response.text[:200])
    assert response.headers["content-type"].startswith("application/problem+json"), where
    assert "root:" not in response.text and CANARY not in response.text, where


def _send(http: httpx.Client, method: str, url: str) -> httpx.Response:
    if method == "PUT" and "/artifacts/" in url:
        return http.request(method, url, content=b"PWNED",
                            headers={"Content-Type": "application/octet-stream"})
    if method in ("POST", "PUT"):
        return http.request(method, url, json={})
    return http.request(method, url)


@pytest.mark.parametrize(("advisory", "payload"), REPLAYS, ids=IDS)
def test_encoded_names_and_ids_never_leave_the_root(live: LiveServer,  # noqa: F811
                                                    planted: Path, advisory: str,
                                                    payload: str) -> None:
    root = Path(live.settings.artifacts)
    before = _snapshot(root.parent, root)
    segment = quote(payload, safe="")
    if set(payload) == {"."}:
        # httpx would resolve a bare '.' or '..' segment itself; encoded, it reaches the server.
        segment = payload.replace(".", "%2E")
    with client(live, live.token) as admin:
        for method, path, param in _targets():
            if param == "code":
                continue  # the login link is covered below (it is not a name or an id)
            url = _fill(path, param, segment)
            _check(_send(admin, method, url), f"{advisory} {method} {path} {param}")
        # Query parameters that name things take the same inputs.
        for url, params in (("/api/v1/tokens", {"principal": payload}),
                            ("/api/v1/projects/trav/pipelines/runs/" + new_id() + "/log",
                             {"task": payload})):
            response = admin.get(url, params=params)
            _check(response, f"{advisory} GET {url} {params}")
        # An unknown login code is simply not a valid credential.
        _check(admin.get(f"/login/{segment}"), f"{advisory} login link", (400, 401, 404))
    assert _snapshot(root.parent, root) == before
    assert planted.read_text() == CANARY


@pytest.mark.parametrize(("advisory", "payload"),
                         [r for r in REPLAYS if "\x00" not in r[1] and "\n" not in r[1]],
                         ids=[i for i, r in zip(IDS, REPLAYS, strict=True)
                              if "\x00" not in r[1] and "\n" not in r[1]])
def test_raw_names_and_ids_never_leave_the_root(live: LiveServer,  # noqa: F811
                                                planted: Path, advisory: str,
                                                payload: str) -> None:
    # Raw bytes on the wire: nothing normalises or encodes the input on the client side.
    root = Path(live.settings.artifacts)
    before = _snapshot(root.parent, root)
    segment = payload.replace(" ", "%20").replace("\\", "%5C")
    for method, path, param in _targets():
        if param in ("code", "project"):
            continue
        target = _fill(path, param, segment)
        status, body = _raw(live, method, target)
        assert status in (400, 404, 405), (advisory, method, target, status)
        assert b"root:" not in body and CANARY.encode() not in body
    assert _snapshot(root.parent, root) == before


def test_control_characters_on_the_wire_are_refused(live: LiveServer) -> None:  # noqa: F811
    for raw in ("/api/v1/projects/trav/models/a\x00b", "/api/v1/projects/trav/models/a\x7fb",
                "/api/v1/projects/trav/models/a\tb"):
        status, body = _raw(live, "GET", raw)
        assert status in (400, 404), (raw, status)
        assert b"Traceback" not in body


def test_a_stored_artifact_is_served_only_by_its_own_name(live: LiveServer,  # noqa: F811
                                                          planted: Path) -> None:
    with client(live, live.token) as admin:
        run = admin.post("/api/v1/projects/trav/runs", json={"experiment": "e"}).json()
        base = f"/api/v1/projects/trav/runs/{run['id']}/artifacts"
        put = admin.put(f"{base}/model.txt", content=b"hello",
                        headers={"Content-Type": "application/octet-stream"})
        assert put.status_code == 200, put.text
        assert admin.get(f"{base}/model.txt").content == b"hello"
        for name in ("model.txt/../../canary.txt", "./model.txt", "model.txt%00",
                     "MODEL.TXT/..", "model.txt/."):
            response = admin.get(f"{base}/{quote(name, safe='')}")
            _check(response, name)


def _raw(server: LiveServer, method: str, target: str) -> tuple[int, bytes]:
    parts = urlsplit(server.url)
    head = (f"{method} {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Authorization: Bearer {server.token}\r\nContent-Length: 0\r\n"
            "Connection: close\r\n\r\n")
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(head.encode("latin-1"))
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return int(data.split(b" ", 2)[1]), data

"""Path traversal replays over real HTTP, on every route that takes a name or an id.

MLflow's artifact handlers were fixed and bypassed again and again with the same few classes
of input: ``../`` sequences, URL and double URL encoding, backslashes, ``#`` fragments and
``?`` queries that a second parser reads differently, absolute paths and ``//proc/self/root``.
Each advisory below names the class of input it was exploited with; every input is tried in
every name and id position of every route in the policy table (so new routes are covered
without touching this file), as an encoded segment and as raw bytes on the wire. The server
must answer 400 or 404 problem+json (405 where the decoded path names another route), never
serve a file from outside the artifact root and never write one there.

Every replay runs against a server whose artifact root is a local directory (on SQLite and
on PostgreSQL) and one whose root is an S3 prefix (moto's server), where "outside the root"
is the rest of the bucket. A symlink planted inside a local root must not be read through.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import pytest

from shipyard.artifacts.paths import blob_key
from shipyard.config import Settings
from shipyard.ids import new_id
from shipyard.server.policy import POLICY
from tests.artifacts.conftest import BUCKET, s3_endpoint, s3_filesystem
from tests.conftest import _pg_database, require_postgres
from tests.server.conftest import client
from tests.server.live import LiveServer, live_server

__all__ = ["s3_endpoint"]  # a fixture this module uses

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


# (database, artifact store): both databases on a local root, and S3 once (the artifact
# store is what differs there; the database adds nothing to a path check).
SERVERS = [("sqlite", "local"), ("postgres", "local"), ("sqlite", "s3")]


@dataclass
class Planted:
    """A canary next to the artifact root, and what lies outside the root to compare."""

    server: LiveServer
    kind: str
    home: Path
    prefix: str  # s3: the bucket prefix holding the root and the canary

    @property
    def root(self) -> str:
        return self.server.settings.artifacts

    def plant(self) -> None:
        (self.home / "canary.txt").write_text(CANARY)
        if self.kind == "s3":
            s3_filesystem().pipe_file(f"{self.prefix}/canary.txt", CANARY.encode())

    def intact(self) -> bool:
        local = (self.home / "canary.txt").read_text() == CANARY
        if self.kind == "s3":
            return local and s3_filesystem().cat_file(f"{self.prefix}/canary.txt") == (
                CANARY.encode())
        return local

    def snapshot(self) -> set[str]:
        """Every file outside the root: on disk under the home, and in the S3 bucket."""
        found: set[str] = set()
        local_root = Path(self.root) if self.kind == "local" else None
        for dirpath, _dirs, files in os.walk(self.home):
            if local_root is not None and Path(dirpath).is_relative_to(local_root):
                continue
            found.update(os.path.join(dirpath, f) for f in files
                         if not f.startswith("shipyard.db") and not f.startswith(".credentials"))
        if self.kind == "s3":
            inside = self.root.removeprefix("s3://").rstrip("/") + "/"
            found.update(key for key in s3_filesystem().find(BUCKET)
                         if not key.startswith(inside))
        return found


@pytest.fixture(scope="module", params=SERVERS, ids=["-".join(p) for p in SERVERS])
def planted(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Planted]:
    database, kind = request.param
    home = tmp_path_factory.mktemp("home")
    prefix = ""
    if kind == "s3":
        request.getfixturevalue("s3_endpoint")
        prefix = f"{BUCKET}/trav-{uuid.uuid4().hex[:10]}"
        artifacts = f"s3://{prefix}/root"
    else:
        artifacts = str(home / "blobs")
    if database == "postgres":
        require_postgres()
        databases: Iterator[str] = _pg_database()
        uri = next(databases)
    else:
        databases = iter(())
        uri = f"sqlite:///{home / 'shipyard.db'}"
    settings = Settings.resolve(home=home, uri=uri, artifacts=artifacts, environ={})
    try:
        with live_server(settings, worker=False) as server:
            world = Planted(server=server, kind=kind, home=home, prefix=prefix)
            world.plant()
            yield world
    finally:
        for _ in databases:  # drops the PostgreSQL database
            pass


@pytest.fixture(scope="module")
def live(planted: Planted) -> LiveServer:
    return planted.server


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
def test_encoded_names_and_ids_never_leave_the_root(live: LiveServer, planted: Planted,
                                                    advisory: str, payload: str) -> None:
    before = planted.snapshot()
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
    assert planted.snapshot() == before
    assert planted.intact()


@pytest.mark.parametrize(("advisory", "payload"),
                         [r for r in REPLAYS if "\x00" not in r[1] and "\n" not in r[1]],
                         ids=[i for i, r in zip(IDS, REPLAYS, strict=True)
                              if "\x00" not in r[1] and "\n" not in r[1]])
def test_raw_names_and_ids_never_leave_the_root(live: LiveServer, planted: Planted,
                                                advisory: str, payload: str) -> None:
    # Raw bytes on the wire: nothing normalises or encodes the input on the client side.
    before = planted.snapshot()
    segment = payload.replace(" ", "%20").replace("\\", "%5C")
    for method, path, param in _targets():
        if param in ("code", "project"):
            continue
        target = _fill(path, param, segment)
        status, body = _raw(live, method, target)
        assert status in (400, 404, 405), (advisory, method, target, status)
        assert b"root:" not in body and CANARY.encode() not in body
    assert planted.snapshot() == before
    assert planted.intact()


def test_control_characters_on_the_wire_are_refused(live: LiveServer) -> None:
    for raw in ("/api/v1/projects/trav/models/a\x00b", "/api/v1/projects/trav/models/a\x7fb",
                "/api/v1/projects/trav/models/a\tb"):
        status, body = _raw(live, "GET", raw)
        assert status in (400, 404), (raw, status)
        assert b"Traceback" not in body


def test_a_stored_artifact_is_served_only_by_its_own_name(live: LiveServer,
                                                          planted: Planted) -> None:
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


def test_a_symlink_planted_inside_the_root_is_not_followed(live: LiveServer,
                                                           planted: Planted) -> None:
    # The symlink bypass of MLflow's traversal fixes: a link inside the root (left by a
    # step, a restored backup or an operator) pointing outside. The stored blob is replaced
    # by a link to the canary; the server must refuse to read through it.
    if planted.kind != "local":
        _object_swapped_behind_the_store(live, planted)
        return
    content = b"the real artifact bytes"
    digest = hashlib.sha256(content).hexdigest()
    with client(live, live.token) as admin:
        run = admin.post("/api/v1/projects/trav/runs", json={"experiment": "links"}).json()
        base = f"/api/v1/projects/trav/runs/{run['id']}/artifacts"
        put = admin.put(f"{base}/linked.txt", content=content,
                        headers={"Content-Type": "application/octet-stream"})
        assert put.status_code == 200, put.text
        blob = Path(planted.root).joinpath(*blob_key(digest).split("/"))
        assert blob.read_bytes() == content
        blob.unlink()
        blob.symlink_to(planted.home / "canary.txt")
        try:
            try:
                response = admin.get(f"{base}/linked.txt")
                body = response.content
            except httpx.RemoteProtocolError:
                body = b""  # the stream was cut short: nothing was served
            assert CANARY.encode() not in body
            assert response.status_code != 200 or body != CANARY.encode()
            # A directory link (the blob's parent) is refused the same way.
            blob.unlink()
            parent = blob.parent
            moved = parent.with_name(parent.name + "-real")
            parent.rename(moved)
            outside = planted.home / "outside-dir"
            outside.mkdir(exist_ok=True)
            (outside / digest).write_text(CANARY)
            parent.symlink_to(outside, target_is_directory=True)
            try:
                body = admin.get(f"{base}/linked.txt").content
            except httpx.RemoteProtocolError:
                body = b""
            assert CANARY.encode() not in body
        finally:
            if blob.parent.is_symlink():
                blob.parent.unlink()
        assert planted.intact()


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


def _object_swapped_behind_the_store(live: LiveServer, planted: Planted) -> None:
    # Object stores have no links; their equivalent is a blob replaced behind the store's
    # back (say, by someone with bucket access). The digest check must refuse to serve it.
    content = b"the real artifact bytes, on s3"
    digest = hashlib.sha256(content).hexdigest()
    with client(live, live.token) as admin:
        run = admin.post("/api/v1/projects/trav/runs", json={"experiment": "swap"}).json()
        base = f"/api/v1/projects/trav/runs/{run['id']}/artifacts"
        put = admin.put(f"{base}/swapped.txt", content=content,
                        headers={"Content-Type": "application/octet-stream"})
        assert put.status_code == 200, put.text
        key = f"{planted.root.removeprefix('s3://')}/{blob_key(digest)}"
        fs = s3_filesystem()
        assert fs.cat_file(key) == content
        fs.pipe_file(key, CANARY.encode().ljust(len(content), b"!"))
        try:
            body = admin.get(f"{base}/swapped.txt").content
        except httpx.RemoteProtocolError:
            body = b""  # the stream was cut short: nothing wrong was served whole
        assert CANARY.encode() not in body

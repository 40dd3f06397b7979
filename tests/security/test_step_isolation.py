"""Steps of runs submitted through the server hold no server credentials (security review,
item 1: a ``user`` became admin through a pipeline step and erased the audit log).

A malicious component tries what the review did: read the admin token from the server's
home, find the database in its environment, ask the server who it is, reach another
project and an admin route with the token it was given. Each test starts a real server
(with its embedded worker) on 127.0.0.1, submits as a ``user`` of one project, and reads
back what the step could see.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard import dsl
from shipyard.config import Settings
from shipyard.errors import FailedPrecondition
from shipyard.pipelines._isolation import resolve_user
from shipyard.pipelines.compiler import dump_spec, to_spec
from shipyard.security import service
from shipyard.store import open_store
from tests.server.live import LiveServer, free_port, live_server

from ._support import CTX

PROJECT = "isolated"


@dsl.component
def snoop(home: str, database: str, other_project: str) -> str:
    # Only modules the launcher has loaded already (a step user may not read the
    # interpreter's own library folder): os, json, socket.
    import json
    import os
    import socket

    report: dict = {"env": sorted(os.environ)}
    # Sockets the step inherited (the launcher's channels would let it forge other steps'
    # results); 0, 1 and 2 are its log and /dev/null.
    fds = os.listdir("/proc/self/fd")
    report["inherited_sockets"] = sum(
        1 for fd in fds if os.path.exists(f"/proc/self/fd/{fd}")
        and os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"))
    try:
        with open("/proc/self/environ", "rb") as f:
            raw = f.read().decode(errors="replace")
    except PermissionError:  # a step user's process is not dumpable: nothing to read
        raw = ""
    report["proc_environ_names_home"] = home in raw
    report["proc_environ_names_database"] = database in raw
    for name, path in [("credentials", home + "/credentials"), ("database", database)]:
        try:
            with open(path, "rb") as f:
                report[name] = f"read {len(f.read())} bytes"
        except OSError as exc:
            report[name] = type(exc).__name__

    url = os.environ.get("SHIPYARD_URI", "")
    report["uri"] = url
    token = os.environ.get("SHIPYARD_TOKEN", "")

    def get(path: str) -> tuple:
        hostport = url.split("://", 1)[1]
        host, port = hostport.rsplit(":", 1)
        # Not create_connection: getaddrinfo loads the idna codec, which a step user may
        # not read from the interpreter's library folder.
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect((host, int(port)))
            s.sendall((f"GET {path} HTTP/1.1\r\nHost: {hostport}\r\n"
                       f"Authorization: Bearer {token}\r\nConnection: close\r\n\r\n").encode())
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        return int(head.split()[1]), body.decode(errors="replace")

    if url.startswith("http"):
        status, body = get("/api/v1/whoami")
        report["whoami"] = json.loads(body) if status == 200 else status
        report["own_project"] = get("/api/v1/projects/isolated/pipelines/runs")[0]
        report["other_project"] = get(f"/api/v1/projects/{other_project}/pipelines/runs")[0]
        report["server_audit"] = get("/api/v1/audit")[0]
        report["users"] = get("/api/v1/users")[0]
    return json.dumps(report)


@dsl.pipeline(name="snoop")
def snoop_pipeline(home: str, database: str, other_project: str) -> None:
    snoop(home=home, database=database, other_project=other_project)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[LiveServer, str]]:
    yield from _server(tmp_path, step_user=None)


def _server(tmp_path: Path, *, step_user: str | None) -> Iterator[tuple[LiveServer, str]]:
    home = tmp_path / "home"
    port = free_port()
    settings = Settings.resolve(home=home, uri=f"sqlite:///{home / 'shipyard.db'}",
                                environ={})
    settings = replace(settings, server_url=f"http://127.0.0.1:{port}", step_user=step_user)
    with live_server(settings, port=port) as live:
        store = open_store(settings.uri, cached=False)
        service.create_principal(store, CTX, "mallory")
        service.grant(store, CTX, "mallory", PROJECT, "user")
        service.create_principal(store, CTX, "bystander")
        service.grant(store, CTX, "bystander", "other", "editor")
        token = service.create_token(store, CTX, "mallory", name="laptop").plaintext
        yield live, token


def _submit_and_wait(live: LiveServer, token: str) -> dict[str, Any]:
    spec, _ = to_spec(snoop_pipeline)
    home = str(live.settings.home)
    database = str(live.settings.home / "shipyard.db")
    with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {token}"}) as c:
        answer = c.post(f"/api/v1/projects/{PROJECT}/pipelines/runs", json={
            "spec": dump_spec(spec),
            "arguments": {"home": home, "database": database, "other_project": "other"},
        })
        assert answer.status_code == 200, answer.text
        run = _wait(c, f"/api/v1/projects/{PROJECT}/pipelines/runs/{answer.json()['id']}")
    assert run["state"] == "SUCCEEDED", run
    assert run["principal"] == "mallory"
    report: dict[str, Any] = json.loads(run["tasks"]["snoop"]["outputs"]["Output"])
    report["run"] = run
    return report


def test_a_step_sees_no_server_credentials_and_only_its_submitters_role(
    server: tuple[LiveServer, str],
) -> None:
    live, token = server
    report = _submit_and_wait(live, token)

    # A clean environment: nothing naming the server's home, database or admin token.
    assert "SHIPYARD_ARTIFACTS" not in report["env"]
    assert not report["proc_environ_names_home"]
    assert not report["proc_environ_names_database"]
    assert report["uri"] == live.settings.server_url
    assert report["inherited_sockets"] == 0

    # The token it holds is the submitter's, bound to the run's project, never admin.
    whoami = report["whoami"]
    assert whoami["name"] == "mallory"
    assert whoami["admin"] is False
    assert whoami["project"] == PROJECT
    assert whoami["token_id"] != live.token.split("_")[1]
    assert report["own_project"] == 200
    assert report["other_project"] == 403
    assert report["server_audit"] == 403
    assert report["users"] == 403

    # The token dies with the run.
    step_token_id = whoami["token_id"]
    store = open_store(live.settings.uri, cached=False)
    tokens = service.list_tokens(store, principal_name="mallory")
    (info,) = [t for t in tokens if t.id == step_token_id]
    assert info.revoked_at is not None


@dsl.component
def fail_once(marker: str, home: str) -> str:
    import os

    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("first attempt fails")
    with open("/proc/self/environ", "rb") as f:
        raw = f.read().decode(errors="replace")
    return os.environ.get("SHIPYARD_URI", "") + (" home-visible" if home in raw else "")


@dsl.pipeline(name="fail-once")
def fail_once_pipeline(marker: str, home: str) -> None:
    fail_once(marker=marker, home=home)


def test_a_server_side_retry_is_queued_and_isolated_too(
    server: tuple[LiveServer, str], tmp_path: Path
) -> None:
    live, token = server
    spec, _ = to_spec(fail_once_pipeline)
    arguments = {"marker": str(tmp_path / "marker"), "home": str(live.settings.home)}
    with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {token}"}) as c:
        runs = f"/api/v1/projects/{PROJECT}/pipelines/runs"
        body = {"spec": dump_spec(spec), "arguments": arguments}
        run_id = c.post(runs, json=body).json()["id"]
        assert _wait(c, f"{runs}/{run_id}")["state"] == "FAILED"
        answer = c.post(f"{runs}/{run_id}/retry")
        # Queued for the worker, not run inside the request with the server's environment.
        assert answer.status_code == 200, answer.text
        assert answer.json()["state"] == "QUEUED"
        run = _wait(c, f"{runs}/{run_id}")
    assert run["state"] == "SUCCEEDED", run
    assert run["tasks"]["fail-once"]["outputs"]["Output"] == live.settings.server_url


def _wait(client: httpx.Client, path: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        run: dict[str, Any] = client.get(path).json()
        if run["state"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return run
        assert time.monotonic() < deadline, run
        time.sleep(0.1)


def test_a_step_user_cannot_read_the_home_or_the_database(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        # Only root can switch users: the worker says so instead of running steps as itself.
        with pytest.raises(FailedPrecondition, match="only a worker running as root"):
            resolve_user("nobody")
        return
    for live, token in _server(tmp_path, step_user="nobody"):
        report = _submit_and_wait(live, token)
        assert report["credentials"] == "PermissionError"
        assert report["database"] == "PermissionError"
        assert report["whoami"]["name"] == "mallory"
        assert report["whoami"]["admin"] is False
        # What the test itself (root, the worker's user) can do, the step could not.
        assert live.token in (live.settings.home / "credentials").read_text()
        with sqlite3.connect(live.settings.home / "shipyard.db") as db:
            (admins,) = db.execute("select count(*) from principals where is_admin").fetchone()
        assert admins == 1


def test_an_unknown_or_root_step_user_is_refused_clearly() -> None:
    with pytest.raises(FailedPrecondition, match="does not exist"):
        resolve_user("no-such-user-here")
    with pytest.raises(FailedPrecondition, match="must not be root"):
        resolve_user("root")

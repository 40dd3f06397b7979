"""Secure by default over HTTP: loopback bind, a 0600 admin token, no default credentials."""

from __future__ import annotations

import inspect
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard.config import DEFAULT_HOST, Settings
from shipyard.server import run
from shipyard.server.app import bootstrap
from tests.server.conftest import assert_problem
from tests.server.live import live_server

# Well-known defaults of other tools (MLflow's basic-auth app shipped admin/password1234).
DEFAULT_LOGINS = [
    ("admin", "password1234"), ("admin", "password"), ("admin", "admin"),
    ("admin", "shipyard"), ("root", "root"), ("shipyard", "shipyard"), ("user", "password"),
    ("mlflow", "mlflow"), ("admin", ""),
]


def _settings(tmp_path: Path, uri: str) -> Settings:
    home = tmp_path / "home"
    return Settings.resolve(home=home, uri=uri, artifacts=str(home / "blobs"), environ={})


def test_server_binds_loopback_by_default(tmp_path: Path, store_uri: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    assert DEFAULT_HOST == "127.0.0.1"
    assert inspect.signature(run.serve).parameters["host"].default == "127.0.0.1"
    seen: dict[str, Any] = {}

    def fake_run(app: Any, **kwargs: Any) -> None:
        seen.update(kwargs)

    monkeypatch.setattr("uvicorn.run", fake_run)
    run.serve(_settings(tmp_path, store_uri), port=0, announce=False)
    assert seen["host"] == "127.0.0.1"


def test_first_start_writes_a_private_admin_token(tmp_path: Path, store_uri: str) -> None:
    settings = _settings(tmp_path, store_uri)
    token = bootstrap(settings)
    assert token is not None and token.startswith("sy_")
    path = settings.credentials_path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(settings.home.stat().st_mode) == 0o700
    assert token in path.read_text()
    # A second start creates nothing and hands out nothing.
    assert bootstrap(settings) is None


def test_a_fresh_server_has_no_default_credentials(tmp_path: Path, store_uri: str) -> None:
    settings = _settings(tmp_path, store_uri)
    with live_server(settings, worker=False) as server:
        with httpx.Client(base_url=server.url) as anon:
            for name, password in DEFAULT_LOGINS:
                response = anon.post("/api/v1/login", json={"name": name, "password": password})
                # A well-formed login fails as any wrong password does; an empty one is
                # refused as bad input.
                assert_problem(response, 401 if password else 400, None if password else "password")
            for header in ("Basic YWRtaW46cGFzc3dvcmQxMjM0", "Basic YWRtaW46YWRtaW4="):
                response = anon.get("/api/v1/users", headers={"Authorization": header})
                assert response.status_code == 401
            assert anon.get("/api/v1/users").status_code == 401
        with httpx.Client(base_url=server.url,
                          headers={"Authorization": f"Bearer {server.token}"}) as admin:
            users = admin.get("/api/v1/users").json()
            # The first admin exists only to hold the written token: it has no password.
            assert [(u["name"], u["has_password"]) for u in users] == [("admin", False)]
            tokens = admin.get("/api/v1/tokens").json()
            assert len(tokens) == 1 and tokens[0]["id"] == server.token[3:15]

"""A real server per backend (SQLite and PostgreSQL), shared by the tests of one module.

Starting uvicorn and migrating a database costs a second or two, so each module gets one
server per backend (``live``); tests that need a pristine server start their own with
``tests.server.live.live_server``. Projects and principal names are unique per test.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from shipyard.config import Settings
from shipyard.store import Store, open_store
from tests.conftest import PG_URI, _pg_database
from tests.server.live import LiveServer, live_server


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def live_uri(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'shipyard.db'}"
        return
    if not PG_URI:
        pytest.skip("SHIPYARD_TEST_POSTGRES is not set")
    yield from _pg_database()


@pytest.fixture(scope="module")
def live(live_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    home = tmp_path_factory.mktemp("home")
    settings = Settings.resolve(home=home, uri=live_uri, artifacts=str(home / "blobs"),
                                environ={})
    # No embedded worker: these tests are about the HTTP surface, and 2 cores are shared.
    with live_server(settings, worker=False) as server:
        yield server


@pytest.fixture(scope="module")
def live_store(live: LiveServer) -> Iterator[Store]:
    """A second connection to the live server's database, to check what it recorded."""
    store = open_store(live.settings.uri, cached=False)
    try:
        yield store
    finally:
        store.dispose()


@pytest.fixture
def admin(live: LiveServer) -> Iterator[httpx.Client]:
    with client(live, live.token) as http:
        yield http


@pytest.fixture
def anon(live: LiveServer) -> Iterator[httpx.Client]:
    with client(live, None) as http:
        yield http


@pytest.fixture
def project() -> str:
    return f"p-{uuid.uuid4().hex[:10]}"


def client(live: LiveServer, token: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=live.url, headers=headers, timeout=30.0,
                        follow_redirects=False)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def make_user(admin: httpx.Client, name: str, *, project: str | None = None,
              role: str | None = None, scopes: list[str] | None = None,
              password: str | None = None) -> str:
    """Create a user (optionally with a role in ``project``); returns a token of theirs."""
    body: dict[str, Any] = {"name": name}
    if password is not None:
        body["password"] = password
    response = admin.post("/api/v1/users", json=body)
    assert response.status_code == 201, response.text
    if project is not None and role is not None:
        response = admin.put(f"/api/v1/projects/{project}/grants/{name}", json={"role": role})
        assert response.status_code == 200, response.text
    response = admin.post("/api/v1/tokens", json={"name": "t", "principal": name,
                                                   "scopes": scopes})
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


def assert_problem(response: httpx.Response, status: int, field: str | None = None) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert body["title"] and body["detail"]
    assert "Traceback" not in response.text
    if field is not None:
        assert body.get("field") == field, body


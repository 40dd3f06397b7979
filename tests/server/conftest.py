"""A real server per backend (SQLite and PostgreSQL), shared by the tests of one module.

Starting uvicorn and migrating a database costs a second or two, so each module gets one
server per backend (``live``); tests that need a pristine server start their own with
``tests.server.live.live_server``. Projects and principal names are unique per test.

The deserialization tripwire is armed for every module here (and in ``tests/security``,
which imports these fixtures), from before its servers start until after they stop: the
server process never unpickles (DESIGN.md 6). The servers run in this process, so the
tripwire also covers the tests' own client code; none of these suites loads a model, so
any trip is a failure, reported on the test during which it happened.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from shipyard.config import Settings
from shipyard.security.tls import tls_context
from shipyard.security.tripwire import Tripwire, deserialization_tripwire
from shipyard.store import Store, open_store
from tests.conftest import _pg_database, require_postgres
from tests.server.live import LiveServer, live_server

# Modules that trip the wire on purpose, to test it.
TRIPWIRE_EXEMPT = {"tests.security.test_tripwire"}


@pytest.fixture(scope="module", autouse=True)
def server_tripwire(request: pytest.FixtureRequest) -> Iterator[Tripwire | None]:
    """Armed before the module's servers start (autouse fixtures of a scope come first)."""
    if request.module.__name__ in TRIPWIRE_EXEMPT:
        yield None
        return
    with deserialization_tripwire() as wire:
        yield wire
    wire.assert_untripped()


@pytest.fixture(autouse=True)
def no_unpickling(server_tripwire: Tripwire | None) -> Iterator[None]:
    """Fail the test during which anything unpickled (even if the caller swallowed it)."""
    before = len(server_tripwire.trips) if server_tripwire is not None else 0
    yield
    if server_tripwire is not None and len(server_tripwire.trips) > before:
        tripped = server_tripwire.trips[before:]
        del server_tripwire.trips[before:]  # reported here, not again at module teardown
        pytest.fail("unpickling while the server ran: " + "; ".join(tripped))


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def live_uri(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'shipyard.db'}"
        return
    require_postgres()
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
    # One shared TLS context: httpx would load certifi's bundle for each client (~100 ms
    # under load), which the per-request clients of the policy tests paid a thousand times.
    return httpx.Client(base_url=live.url, headers=headers, timeout=30.0,
                        follow_redirects=False, verify=tls_context())


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


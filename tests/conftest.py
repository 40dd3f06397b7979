"""Shared fixtures: a real metadata store on SQLite and, when configured, PostgreSQL.

``SHIPYARD_TEST_POSTGRES`` holds a ``postgresql+psycopg://`` URI of a server the tests may
create databases on (``.ci/run`` starts one); without it the PostgreSQL variants are
reported as skipped with the reason, and ``.ci/run`` fails if they were skipped there.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from shipyard.store import Store, open_store

PG_URI = os.environ.get("SHIPYARD_TEST_POSTGRES")


def require_postgres() -> str:
    """The PostgreSQL test URI; without one, skip, or fail where CI requires PostgreSQL."""
    if not PG_URI:
        if os.environ.get("SHIPYARD_REQUIRE_POSTGRES"):
            pytest.fail("SHIPYARD_REQUIRE_POSTGRES is set but SHIPYARD_TEST_POSTGRES is not")
        pytest.skip("SHIPYARD_TEST_POSTGRES is not set")
    return PG_URI


def _pg_database() -> Iterator[str]:
    assert PG_URI is not None
    name = f"sy_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URI, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base = PG_URI.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty metadata store URI on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shipyard.db'}"
        return
    require_postgres()
    yield from _pg_database()


@pytest.fixture
def store(store_uri: str) -> Iterator[Store]:
    s = open_store(store_uri, cached=False)
    try:
        yield s
    finally:
        s.dispose()


@pytest.fixture
def pg_store() -> Iterator[Store]:
    """A fresh store on PostgreSQL only, for behaviour SQLite does not have (serialization
    failures); it fails rather than skips where CI requires PostgreSQL."""
    require_postgres()
    for uri in _pg_database():
        s = open_store(uri, cached=False)
        try:
            yield s
        finally:
            s.dispose()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated SHIPYARD_HOME; no SHIPYARD_* variable leaks in from the environment."""
    for key in list(os.environ):
        if key.startswith("SHIPYARD_") and key != "SHIPYARD_TEST_POSTGRES":
            monkeypatch.delenv(key)
    path = tmp_path / "home"
    monkeypatch.setenv("SHIPYARD_HOME", str(path))
    return path

"""Shared fixtures: a real metadata store on SQLite and, when configured, PostgreSQL.

``SHIPYARD_TEST_POSTGRES`` holds a ``postgresql+psycopg://`` URI of a server the tests may
create databases on (``.ci/run`` starts one); without it the PostgreSQL variants are
reported as skipped with the reason.

``SHIPYARD_REQUIRE_POSTGRES=1`` (``.ci/run`` sets it) says every test must run: a missing
PostgreSQL URI fails, and so does any skipped test whose reason is not in ``ALLOWED_SKIPS``,
so a test cannot silently stop running in CI.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from shipyard.store import Store, open_store

# Read once at import: the ``home`` fixture removes SHIPYARD_* variables while a test runs.
PG_URI = os.environ.get("SHIPYARD_TEST_POSTGRES")
REQUIRE_ALL = bool(os.environ.get("SHIPYARD_REQUIRE_POSTGRES"))

# Skips CI accepts, as the start of the skip reason mapped to why it is acceptable there.
# None today: every test is expected to run in CI.
ALLOWED_SKIPS: dict[str, str] = {}


def unexpected_skip(report: pytest.TestReport | pytest.CollectReport) -> str | None:
    """The reason of a skip CI does not accept, or None (not a skip, or accepted)."""
    if not (REQUIRE_ALL and report.skipped) or hasattr(report, "wasxfail"):
        return None
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    reason = reason.removeprefix("Skipped: ")
    if any(reason.startswith(allowed) for allowed in ALLOWED_SKIPS):
        return None
    return reason


def _fail_unexpected_skip(report: pytest.TestReport | pytest.CollectReport) -> None:
    reason = unexpected_skip(report)
    if reason is not None:
        report.outcome = "failed"
        report.longrepr = (
            f"skipped ({reason}), but SHIPYARD_REQUIRE_POSTGRES is set and no skip is "
            "expected here: make the test run, or add its reason to ALLOWED_SKIPS in "
            "tests/conftest.py with why CI may skip it"
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    _fail_unexpected_skip(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    report = yield  # a module skipped as a whole (allow_module_level, importorskip)
    _fail_unexpected_skip(report)
    return report


def require_postgres() -> str:
    """The PostgreSQL test URI; without one, skip, or fail where CI requires PostgreSQL."""
    if not PG_URI:
        if REQUIRE_ALL:
            pytest.fail("SHIPYARD_REQUIRE_POSTGRES is set but SHIPYARD_TEST_POSTGRES is not")
        pytest.skip("SHIPYARD_TEST_POSTGRES is not set")
    return PG_URI


def _forget_stores(uri: str) -> None:
    """Close the stores this process cached for a database about to be dropped (the SDK's
    sessions open them with ``open_store(uri)``): their connections would otherwise stay
    open, one socket each, for the rest of the test process."""
    from shipyard.store import engine

    with engine._opened_lock:
        gone = [engine._opened.pop(key) for key in list(engine._opened)
                if key == uri or key.startswith(uri + "?")]
    for store in gone:
        store.dispose()


def _pg_database() -> Iterator[str]:
    assert PG_URI is not None
    name = f"sy_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URI, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base = PG_URI.rsplit("/", 1)[0]
    uri = f"{base}/{name}"
    try:
        yield uri
    finally:
        _forget_stores(uri)
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


# Real Ray heads: one per test process, shared by the tests that need one (tests/ray/heads.py).
from tests.ray.heads import ray_cluster_head, ray_head  # noqa: E402, F401 - fixtures

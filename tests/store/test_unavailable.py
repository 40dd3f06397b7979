"""A PostgreSQL that is away (restarting, unreachable) is ``Unavailable`` to every caller of
the store, not only to the server: local mode, workers and the background logger retry it
(issue 23, item 2)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from shipyard.context import RequestContext
from shipyard.errors import Unavailable
from shipyard.store import Store, open_store
from shipyard.tracking import service
from tests.conftest import _pg_database, require_postgres
from tests.server.proxy import Proxy


@pytest.fixture
def proxied() -> Iterator[tuple[Store, Proxy]]:
    require_postgres()
    for uri in _pg_database():
        open_store(uri, cached=False).dispose()  # migrated directly, then reached by proxy
        parts = urlsplit(uri)
        proxy = Proxy((parts.hostname or "127.0.0.1", parts.port or 5432))
        store = open_store(uri.replace(f"@{parts.hostname}:{parts.port}",
                                       f"@127.0.0.1:{proxy.port}"), cached=False)
        try:
            yield store, proxy
        finally:
            proxy.cut()
            store.dispose()


def test_every_store_path_says_unavailable_while_postgres_is_away(
    proxied: tuple[Store, Proxy]
) -> None:
    store, proxy = proxied
    ctx = RequestContext(project="p1", actor="alice")
    run = service.create_run(store, ctx, "e")
    proxy.cut()
    calls = {
        "read": lambda: store.read().__enter__().execute(select(1)),
        "retry_write": lambda: service.create_run(store, ctx, "e"),
        "driver_write": lambda: service.log_batch(store, ctx, run.id, metrics=[("m", 1.0, 0)]),
    }
    for name, call in calls.items():
        with pytest.raises(Unavailable) as info:
            call()
        assert info.value.retry_after is not None and info.value.retry_after > 0, name
    proxy.resume()
    service.log_batch(store, ctx, run.id, metrics=[("m", 2.0, 1)])  # back, nothing lost
    assert service.get_run(store, "p1", run.id).metrics == {"m": 2.0}


def test_hot_writes_survive_a_postgres_restart_without_a_failed_call() -> None:
    """``driver_write`` keeps its PostgreSQL connections (no ping per call); when the server
    drops them (a restart, here every backend terminated), the next call reruns on a new
    connection instead of failing, and each write lands once."""
    from sqlalchemy import create_engine, text

    from shipyard.events import bus
    from tests.conftest import PG_URI

    require_postgres()
    for uri in _pg_database():
        store = open_store(uri, cached=False)
        ctx = RequestContext(project="p1", actor="alice")
        run = service.create_run(store, ctx, "e")
        bus.create_subscription(store, ctx, "s", "t")
        for step in range(3):  # several kept connections, used and idle
            service.log_batch(store, ctx, run.id, metrics=[("m", float(step), step)])
            bus.publish(store, ctx, "t", step)
        assert PG_URI is not None
        admin = create_engine(PG_URI, isolation_level="AUTOCOMMIT")
        database = uri.rsplit("/", 1)[1]
        with admin.connect() as conn:
            ended = conn.execute(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = :db AND pid <> pg_backend_pid()"), {"db": database}).scalar()
        admin.dispose()
        assert ended and ended >= 1
        try:
            service.log_batch(store, ctx, run.id, metrics=[("m", 3.0, 3)])
            bus.publish(store, ctx, "t", 3)
            got = bus.pull(store, "p1", "s", max_messages=10)
            assert [m.data for m in got] == [0, 1, 2, 3]
            assert bus.ack(store, "p1", "s", [m.lease_token for m in got]) == 4
            history = service.metric_history(store, "p1", run.id, "m")
            assert [(p.step, p.value) for p in history] == [(s, float(s)) for s in range(4)]
        finally:
            store.dispose()

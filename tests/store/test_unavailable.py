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

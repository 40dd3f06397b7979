"""The metadata store on SQLite and PostgreSQL: migrations, URIs, retries, time, projects."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, insert, select, text

from shipyard.context import RequestContext
from shipyard.errors import InvalidArgument, NotFound, Unavailable
from shipyard.store import Store, open_store
from shipyard.store.migrate import current_revision, head_revision, upgrade
from shipyard.store.schema import experiments, metadata
from shipyard.tracking import search, service


def test_migrations_are_applied_and_at_head(store: Store) -> None:
    assert head_revision() is not None
    assert current_revision(store) == head_revision()
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == [], "the migrations and shipyard.store.schema disagree"
    upgrade(store)  # a second upgrade (another process starting) changes nothing
    assert current_revision(store) == head_revision()


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "mysql://user@host/db",
        "postgresql://user@host/db",
        "postgresql+asyncpg://user@host/db",
        "sqlite:/relative.db",
        "sqlite://relative.db",
        "http//forgot-the-colon",
        "../../etc/passwd",
    ],
)
def test_open_store_rejects_bad_uris_naming_the_field(uri: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        open_store(uri, cached=False)
    assert caught.value.field == "uri"
    assert "sqlite:///" in str(caught.value) or "postgresql+psycopg://" in str(caught.value)


def test_open_store_rejects_a_bad_busy_timeout(tmp_path: Any) -> None:
    with pytest.raises(InvalidArgument) as caught:
        open_store(f"sqlite:///{tmp_path / 'x.db'}", cached=False, busy_timeout_ms=-1)
    assert caught.value.field == "busy_timeout_ms"


def test_serialization_failures_are_retried(pg_store: Store) -> None:
    # SQLite serialises writers with BEGIN IMMEDIATE, so only PostgreSQL can abort one.
    store = pg_store
    with store.write() as conn:
        conn.execute(text("CREATE TABLE skew (id INT PRIMARY KEY, v INT NOT NULL)"))
        conn.execute(text("INSERT INTO skew VALUES (1, 0), (2, 0)"))
    # Write skew: each transaction reads both rows, then writes one. Under SERIALIZABLE,
    # PostgreSQL must abort one of them (40001) once both have read.
    both_read = threading.Barrier(2, timeout=10)
    attempts = {1: 0, 2: 0}
    errors: list[BaseException] = []

    def work(row: int) -> None:
        def txn(conn: Connection) -> None:
            attempts[row] += 1
            conn.execute(text("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"))
            total = conn.execute(text("SELECT SUM(v) FROM skew")).scalar_one()
            if attempts[row] == 1:
                both_read.wait()
            conn.execute(text("UPDATE skew SET v = :v WHERE id = :id"),
                         {"v": total + 1, "id": row})

        try:
            store.retry_write(txn)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(row,)) for row in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert sorted(attempts.values()) == [1, 2], "exactly one transaction was retried"
    with store.read() as conn:
        values = sorted(conn.execute(text("SELECT v FROM skew")).scalars())
    assert values == [1, 2]  # the retry saw the winner's write: serial order


def test_retry_gives_up_with_unavailable(pg_store: Store) -> None:
    store = pg_store
    from psycopg.errors import SerializationFailure
    from sqlalchemy.exc import OperationalError

    calls = 0

    def always_aborted(conn: Connection) -> None:
        nonlocal calls
        calls += 1
        raise OperationalError("COMMIT", None, SerializationFailure("could not serialize"))

    with pytest.raises(Unavailable):
        store.retry_write(always_aborted, attempts=3)
    assert calls == 3


def test_timestamps_round_trip_as_utc_aware(store: Store) -> None:
    plus_five = datetime(2024, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=5)))
    naive = datetime(2024, 5, 1, 12, 0)
    with store.write() as conn:
        for i, moment in enumerate([plus_five, naive]):
            conn.execute(insert(experiments).values(id=f"{i:032x}", project="t",
                                                    name=f"e{i}", created_at=moment))
    with store.read() as conn:
        rows = dict(conn.execute(select(experiments.c.name, experiments.c.created_at)).all())
    assert rows["e0"] == plus_five and rows["e0"].tzinfo == UTC
    assert rows["e0"].hour == 7  # the same instant, shown in UTC
    assert rows["e1"] == naive.replace(tzinfo=UTC)  # naive input is taken as UTC
    run = service.create_run(store, RequestContext(project="t", actor="a"), "exp")
    done = service.set_terminated(store, RequestContext(project="t", actor="a"), run.id)
    assert done.start_time.tzinfo == UTC and done.end_time is not None
    assert done.end_time.tzinfo == UTC
    assert abs(done.start_time - datetime.now(UTC)) < timedelta(minutes=5)
    assert service.get_run(store, "t", run.id).start_time == done.start_time


def test_projects_isolate_resources(store: Store) -> None:
    alice, bob = RequestContext(project="alice", actor="a"), RequestContext(project="bob",
                                                                          actor="b")
    a_run = service.create_run(store, alice, "shared-name", params={"x": 1})
    b_run = service.create_run(store, bob, "shared-name", params={"x": 2})
    a_exp = service.list_experiments(store, "alice")
    b_exp = service.list_experiments(store, "bob")
    assert [e.name for e in a_exp] == [e.name for e in b_exp] == ["shared-name"]
    assert a_exp[0].id != b_exp[0].id
    assert [r.id for r in search.search_runs(store, "alice").runs] == [a_run.id]
    assert [r.id for r in search.search_runs(store, "bob").runs] == [b_run.id]
    with pytest.raises(NotFound) as caught:
        service.get_run(store, "bob", a_run.id)
    assert caught.value.field == "run_id"
    with pytest.raises(NotFound):  # nor can another project write into it
        service.log_batch(store, bob, a_run.id, metrics=[("m", 1.0)])
    with pytest.raises(NotFound):
        service.set_terminated(store, bob, a_run.id)
    assert service.get_run(store, "alice", a_run.id).status == "RUNNING"
    assert service.get_run(store, "alice", a_run.id).metrics == {}

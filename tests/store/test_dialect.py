"""``store.dialect``: upsert, insert-or-ignore, claim and lock, the same on both databases."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Column, Connection, Integer, MetaData, String, Table, func, select

from shipyard.store import Store
from shipyard.store.dialect import advisory_lock, claim_next, insert_ignore, upsert

_meta = MetaData()
jobs = Table(
    "dialect_test_jobs",
    _meta,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("state", String(16), nullable=False),
    Column("claimed_by", String(64), nullable=True),
    Column("priority", Integer, nullable=False),
)
points = Table(
    "dialect_test_points",
    _meta,
    Column("key", String(16), primary_key=True),
    Column("step", Integer, nullable=False),
    Column("value", Integer, nullable=False),
)


@pytest.fixture
def tables(store: Store) -> Iterator[Store]:
    _meta.create_all(store.engine)
    yield store


def _queue(store: Store, count: int) -> None:
    with store.write() as conn:
        conn.execute(jobs.insert(), [
            {"id": i, "state": "QUEUED", "priority": count - i} for i in range(count)
        ])  # fmt: skip


def _claim(store: Store, worker: str) -> int | None:
    with store.write() as conn:
        row = claim_next(conn, jobs, jobs.c.state == "QUEUED", [jobs.c.priority],
                         {"state": "RUNNING", "claimed_by": worker})
    return None if row is None else int(row.id)


def test_upsert_inserts_updates_and_honours_its_condition(tables: Store) -> None:
    store = tables

    def put(key: str, step: int, value: int) -> None:
        with store.write() as conn:
            upsert(conn, points, [{"key": key, "step": step, "value": value}],
                   keys=["key"], update_columns=["step", "value"],
                   where=lambda new: new.step >= points.c.step)

    put("a", 1, 10)
    put("a", 3, 30)
    put("a", 2, 20)  # older than the stored step: ignored
    put("b", 1, 5)
    with store.read() as conn:
        rows = dict(conn.execute(select(points.c.key, points.c.value)).all())
    assert rows == {"a": 30, "b": 5}


def test_insert_ignore_says_whether_it_inserted(tables: Store) -> None:
    with tables.write() as conn:
        assert insert_ignore(conn, points, {"key": "k", "step": 1, "value": 1}, keys=["key"])
        assert not insert_ignore(conn, points, {"key": "k", "step": 2, "value": 2},
                                 keys=["key"])
    with tables.read() as conn:
        assert conn.execute(select(points.c.step)).scalar_one() == 1


def test_claim_next_takes_rows_in_order_once(tables: Store) -> None:
    store = tables
    _queue(store, 3)
    # priority = 3 - id, so the order is 2, 1, 0.
    assert [_claim(store, "w"), _claim(store, "w"), _claim(store, "w")] == [2, 1, 0]
    assert _claim(store, "w") is None
    with store.read() as conn:
        claimed = conn.execute(select(jobs.c.state, jobs.c.claimed_by)).all()
    assert {tuple(r) for r in claimed} == {("RUNNING", "w")}


def test_claim_next_returns_the_row_as_updated(tables: Store) -> None:
    _queue(tables, 1)
    with tables.write() as conn:
        row = claim_next(conn, jobs, jobs.c.state == "QUEUED", [jobs.c.id],
                         {"state": "RUNNING", "claimed_by": "me"})
    assert row is not None and (row.id, row.state, row.claimed_by) == (0, "RUNNING", "me")


def test_concurrent_claimers_never_share_a_row(tables: Store) -> None:
    store = tables
    count = 40
    _queue(store, count)
    start = threading.Barrier(4, timeout=30)
    taken: dict[str, list[int]] = {}
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        mine: list[int] = []
        try:
            start.wait()
            while (job := _claim(store, name)) is not None:
                mine.append(job)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        taken[name] = mine

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    every = [job for mine in taken.values() for job in mine]
    assert sorted(every) == list(range(count)), "a row was claimed twice or not at all"
    with store.read() as conn:
        by_worker: dict[str, int] = dict(conn.execute(
            select(jobs.c.claimed_by, func.count()).group_by(jobs.c.claimed_by)).all())
    assert by_worker == {name: len(mine) for name, mine in taken.items() if mine}


def test_a_claim_in_progress_is_skipped_not_waited_for(pg_store: Store) -> None:
    # PostgreSQL only: SQLite has one writer at a time, so there is nothing to skip.
    store = pg_store
    _meta.create_all(store.engine)
    _queue(store, 2)
    claimed = threading.Event()
    release = threading.Event()
    first: list[int | None] = []

    def slow_claimer() -> None:
        with store.write() as conn:
            row = claim_next(conn, jobs, jobs.c.state == "QUEUED", [jobs.c.priority],
                             {"state": "RUNNING", "claimed_by": "slow"})
            first.append(None if row is None else int(row.id))
            claimed.set()
            release.wait(timeout=30)  # the claim stays uncommitted until released

    holder = threading.Thread(target=slow_claimer)
    holder.start()
    try:
        assert claimed.wait(timeout=30)
        second: list[int | None] = []
        other = threading.Thread(target=lambda: second.append(_claim(store, "fast")))
        other.start()
        other.join(timeout=10)
        assert not other.is_alive(), "the second claimer waited for the first one's lock"
        assert first == [1] and second == [0], "the second claimer took the next row"
    finally:
        release.set()
        holder.join(timeout=30)


def test_advisory_lock_serialises_writers(tables: Store) -> None:
    store = tables
    with store.write() as conn:
        conn.execute(points.insert().values(key="n", step=0, value=0))
    start = threading.Barrier(3, timeout=30)

    def bump() -> None:
        start.wait()
        for _ in range(10):
            def work(conn: Connection) -> None:
                advisory_lock(conn, 0x7E57)
                value = conn.execute(select(points.c.value)).scalar_one()
                conn.execute(points.update().values(value=value + 1))

            store.retry_write(work)

    threads = [threading.Thread(target=bump) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    with store.read() as conn:
        assert conn.execute(select(points.c.value)).scalar_one() == 30

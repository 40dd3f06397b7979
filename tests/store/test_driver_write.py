"""``Store.driver_write``: one committed transaction per call on connections the store keeps
(SQLite), which belong to the process that opened them and are closed by ``dispose()``."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.context import RequestContext
from shipyard.errors import Unavailable
from shipyard.store import Store, open_store
from shipyard.tracking import service

CTX = RequestContext(project="p1", actor="alice")


def _connection(cursor: Any) -> Any:
    return cursor.connection


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = open_store(f"sqlite:///{tmp_path / 'shipyard.db'}", cached=False,
                       busy_timeout_ms=200)
    try:
        yield store
    finally:
        store.dispose()


def test_each_call_is_committed_when_it_returns(sqlite_store: Store, tmp_path: Path) -> None:
    run = service.create_run(sqlite_store, CTX, "exp")
    reader = sqlite3.connect(tmp_path / "shipyard.db")
    try:
        for step in range(3):
            service.log_batch(sqlite_store, CTX, run.id, metrics=[("loss", 1.0, step)])
            # Another connection sees the point at once: no transaction is left open.
            count = reader.execute("SELECT count(*) FROM run_metrics").fetchone()[0]
            assert count == step + 1
    finally:
        reader.close()


def test_calls_reuse_a_connection_and_dispose_closes_it(sqlite_store: Store) -> None:
    first = sqlite_store.driver_write(_connection)
    assert sqlite_store.driver_write(_connection) is first
    sqlite_store.dispose()
    with pytest.raises(sqlite3.ProgrammingError):  # closed
        first.execute("SELECT 1")
    again = sqlite_store.driver_write(_connection)  # the store opens another
    assert again is not first
    assert again.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert again.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert again.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL


def test_a_failed_call_rolls_back_and_the_next_one_works(sqlite_store: Store) -> None:
    run = service.create_run(sqlite_store, CTX, "exp")

    def half_then_fail(cursor: Any) -> None:
        cursor.execute("UPDATE runs SET name = 'changed'")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        sqlite_store.driver_write(half_then_fail)
    assert service.get_run(sqlite_store, "p1", run.id).name != "changed"
    service.log_batch(sqlite_store, CTX, run.id, metrics=[("loss", 1.0, 0)])
    assert service.get_run(sqlite_store, "p1", run.id).metrics == {"loss": 1.0}


@pytest.mark.parametrize("fails", [False, True], ids=["committed", "rolled-back"])
def test_a_call_that_stops_reading_midway_leaves_no_snapshot_open(
    sqlite_store: Store, tmp_path: Path, fails: bool
) -> None:
    # The store keeps a cursor with each idle connection: a SELECT the work left half-read
    # must not hold the old snapshot open afterwards (the WAL could never be reset, and the
    # connection's next write would start from a stale view).
    run = service.create_run(sqlite_store, CTX, "exp")
    service.log_batch(sqlite_store, CTX, run.id, metrics=[("loss", 1.0, s) for s in range(5)])

    def read_one(cursor: Any) -> None:
        cursor.execute("SELECT value FROM run_metrics")
        assert cursor.fetchone() is not None
        if fails:
            raise RuntimeError("boom")

    if fails:
        with pytest.raises(RuntimeError):
            sqlite_store.driver_write(read_one)
    else:
        sqlite_store.driver_write(read_one)
    other = sqlite3.connect(tmp_path / "shipyard.db", isolation_level=None)
    try:
        other.execute("INSERT INTO run_tags (run_id, key, value) VALUES (?, 'k', 'v')",
                      (run.id,))
        busy, _, _ = other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0  # no reader holds a snapshot
    finally:
        other.close()
    service.log_batch(sqlite_store, CTX, run.id, metrics=[("loss", 2.0, 9)])
    assert service.get_run(sqlite_store, "p1", run.id).metrics == {"loss": 2.0}


def test_a_held_write_lock_is_unavailable_then_the_connection_recovers(
    sqlite_store: Store, tmp_path: Path
) -> None:
    run = service.create_run(sqlite_store, CTX, "exp")
    service.log_batch(sqlite_store, CTX, run.id, metrics=[("loss", 1.0, 0)])
    other = sqlite3.connect(tmp_path / "shipyard.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(Unavailable):
            service.log_batch(sqlite_store, CTX, run.id, metrics=[("loss", 2.0, 1)])
        other.execute("ROLLBACK")
    finally:
        other.close()
    service.log_batch(sqlite_store, CTX, run.id, metrics=[("loss", 3.0, 2)])
    assert service.get_run(sqlite_store, "p1", run.id).metrics == {"loss": 3.0}


def test_threads_writing_at_once_each_commit_everything(sqlite_store: Store) -> None:
    threads, calls = 8, 50
    runs = [service.create_run(sqlite_store, CTX, "exp").id for _ in range(threads)]
    sqlite_store.dispose()  # so the engine's pool holds no connection of its own
    errors: list[BaseException] = []
    start = threading.Barrier(threads, timeout=30)

    def log(run_id: str) -> None:
        try:
            start.wait()
            for step in range(calls):
                service.log_batch(sqlite_store, CTX, run_id, metrics=[("loss", 1.0, step)])
        except BaseException as exc:  # reported below
            errors.append(exc)

    workers = [threading.Thread(target=log, args=(r,)) for r in runs]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    for run_id in runs:
        assert len(service.metric_history(sqlite_store, "p1", run_id, "loss")) == calls


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_opens_its_own_connection(sqlite_store: Store) -> None:
    run = service.create_run(sqlite_store, CTX, "exp")
    service.log_batch(sqlite_store, CTX, run.id, metrics=[("loss", 1.0, 0)])
    parents = sqlite_store.driver_write(_connection)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, never return into pytest
        code = 1
        try:
            childs = sqlite_store.driver_write(_connection)
            service.log_batch(sqlite_store, CTX, run.id, metrics=[("loss", 2.0, 1)])
            sqlite_store.dispose()  # must not close what it inherited either
            os.write(write, b"own" if childs is not parents else b"reused")
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    try:
        answer = os.read(read, 16)
    finally:
        os.close(read)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert answer == b"own"
    # The parent's connection is still open and still its own.
    assert sqlite_store.driver_write(_connection) is parents
    service.log_batch(sqlite_store, CTX, run.id, metrics=[("loss", 3.0, 2)])
    history = service.metric_history(sqlite_store, "p1", run.id, "loss")
    assert [p.value for p in history] == [1.0, 2.0, 3.0]


def test_postgres_still_writes_through_the_pool(pg_store: Store) -> None:
    run = service.create_run(pg_store, CTX, "exp")
    service.log_batch(pg_store, CTX, run.id, metrics=[("loss", 1.0, 0)],
                      params={"lr": "0.1"}, tags={"team": "a"})
    done = service.get_run(pg_store, "p1", run.id)
    assert done.metrics == {"loss": 1.0} and done.params == {"lr": "0.1"}


def test_a_relative_database_path_stays_the_same_file_after_a_chdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///relative.db", cached=False)
    try:
        run = service.create_run(store, CTX, "exp")
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        monkeypatch.chdir(elsewhere)
        store.dispose()  # the next call opens a new connection, from the new directory
        service.log_batch(store, CTX, run.id, metrics=[("loss", 1.0, 0)])
        assert service.get_run(store, "p1", run.id).metrics == {"loss": 1.0}
        assert not (elsewhere / "relative.db").exists()
    finally:
        store.dispose()

"""Processes starting at once on an empty database, and a database held busy by a writer."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from shipyard.context import RequestContext
from shipyard.errors import Unavailable
from shipyard.store import open_store
from shipyard.store.migrate import head_revision
from shipyard.tracking import service
from tests.crash.conftest import start_worker, worker_log

MIGRATORS = 3


def test_processes_migrating_an_empty_database_at_once_apply_it_once(
    store_uri: str, tmp_path: Path
) -> None:
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    logs = [tmp_path / f"migrate-{i}.log" for i in range(MIGRATORS)]
    procs = [start_worker(log, "migrate", store_uri, str(barrier), str(MIGRATORS))
             for log in logs]
    for proc, log in zip(procs, logs, strict=True):
        assert proc.wait(timeout=60) == 0, worker_log(log)
        assert "Traceback" not in worker_log(log)
    engine = create_engine(store_uri)
    try:
        with engine.connect() as conn:
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    finally:
        engine.dispose()
    assert [v for (v,) in versions] == [head_revision()]


def test_a_database_busy_past_the_timeout_raises_unavailable(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'shipyard.db'}"
    store = open_store(uri, cached=False, busy_timeout_ms=200)
    ctx = RequestContext(project="busy", actor="test")
    run = service.create_run(store, ctx, "busy")
    holder = sqlite3.connect(tmp_path / "shipyard.db", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock and keeps it
        started = time.monotonic()
        with pytest.raises(Unavailable) as caught:
            service.log_batch(store, ctx, run.id, metrics=[("rmse", 0.5)])
        assert 0.15 <= time.monotonic() - started < 5
        assert "locked" not in str(caught.value)
        assert caught.value.retry_after > 0
        with pytest.raises(Unavailable):  # the SQLAlchemy write path says the same
            service.set_terminated(store, ctx, run.id)
        assert service.get_run(store, "busy", run.id).status == "RUNNING"  # reads go on
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    service.log_batch(store, ctx, run.id, metrics=[("rmse", 0.5)])  # and once it is free
    assert service.get_run(store, "busy", run.id).metrics == {"rmse": 0.5}
    store.dispose()

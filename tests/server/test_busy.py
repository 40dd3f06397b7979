"""A busy SQLite database answers 503 with Retry-After (safe to retry), never a 500."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx

from shipyard.config import Settings
from tests.server.conftest import assert_problem
from tests.server.live import live_server


def test_a_held_write_lock_is_503_with_retry_after(tmp_path: Path) -> None:
    db = tmp_path / "shipyard.db"
    settings = Settings.resolve(home=tmp_path / "home", uri=f"sqlite:///{db}",
                                artifacts=str(tmp_path / "blobs"), environ={})
    with live_server(settings, worker=False) as server:
        headers = {"Authorization": f"Bearer {server.token}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=120) as http:
            assert http.post("/api/v1/projects/p/experiments", json={"name": "a"}
                             ).status_code == 200
            holder = sqlite3.connect(db, isolation_level=None)
            try:
                holder.execute("BEGIN IMMEDIATE")
                # Reads go on (WAL): authentication and listings are not blocked.
                assert http.get("/api/v1/projects/p/experiments").status_code == 200
                busy = http.post("/api/v1/projects/p/experiments", json={"name": "b"})
                assert_problem(busy, 503)
                assert int(busy.headers["retry-after"]) >= 1
            finally:
                holder.execute("ROLLBACK")
                holder.close()
            # And once the lock is gone, the same request goes through.
            assert http.post("/api/v1/projects/p/experiments", json={"name": "b"}
                             ).status_code == 200

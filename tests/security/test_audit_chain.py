"""The audit log is chained by hash: a row deleted or edited in the database is detected
(security review, item 1: a step deleted its author's audit rows), on SQLite and PostgreSQL,
through the service, the SDK and ``shipyard audit verify``."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import replace
from pathlib import Path

from sqlalchemy import delete, update
from typer.testing import CliRunner

from shipyard import audit
from shipyard.cli.main import app
from shipyard.security import service
from shipyard.security.roles import Role
from shipyard.store import Store
from shipyard.store.schema import audit_log

from ._support import CTX, audit_rows


def _write(store: Store, n: int, *, actor: str = "alice") -> None:
    ctx = replace(CTX, actor=actor)
    for i in range(n):
        with store.write() as conn:
            audit.record(conn, ctx, "test.write", f"things/{i}", detail={"i": i, "x": 0.5})


def test_an_intact_log_verifies_and_reports_its_head(store: Store) -> None:
    _write(store, 5)
    rows = audit_rows(store)
    result = audit.verify(store)
    assert result.ok and result.rows == 5 and result.unchained == 0
    assert result.head == rows[-1]["hash"]
    # The first row's hash is over no predecessor and its own fields (independently built).
    first = rows[0]
    fields = ["", first["time"].isoformat(timespec="microseconds").replace("+00:00", "+00:00"),
              "alice", None, "test.write", "things/0", "p1", "ok", "req-1", "127.0.0.1",
              {"i": 0, "x": 0.5}]
    expected = hashlib.sha256(
        json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert first["hash"] == expected


def test_a_deleted_row_is_detected_at_the_row_after_it(store: Store) -> None:
    _write(store, 5)
    ids = [r["id"] for r in audit_rows(store)]
    with store.write() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.id == ids[2]))
    result = audit.verify(store)
    assert not result.ok
    assert result.broken_at == ids[3]


def test_an_edited_row_is_detected_at_that_row(store: Store) -> None:
    _write(store, 4)
    ids = [r["id"] for r in audit_rows(store)]
    with store.write() as conn:
        conn.execute(update(audit_log).where(audit_log.c.id == ids[1]).values(actor="mallory"))
    result = audit.verify(store)
    assert not result.ok and result.broken_at == ids[1]
    assert result.reason is not None and "edited" in result.reason


def test_a_removed_hash_after_the_chain_started_is_detected(store: Store) -> None:
    _write(store, 3)
    ids = [r["id"] for r in audit_rows(store)]
    with store.write() as conn:
        conn.execute(update(audit_log).where(audit_log.c.id == ids[2]).values(hash=None))
    result = audit.verify(store)
    assert not result.ok and result.broken_at == ids[2]


def test_rows_from_before_the_chain_are_counted_not_failed(store: Store) -> None:
    _write(store, 2)
    with store.write() as conn:  # as a database migrated from 0001 has them
        conn.execute(update(audit_log).values(hash=None))
    _write(store, 2)
    result = audit.verify(store)
    assert result.ok and result.rows == 4 and result.unchained == 2


def test_concurrent_writers_keep_one_chain(store: Store) -> None:
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            barrier.wait()
            _write(store, 10, actor=name)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    result = audit.verify(store)
    assert result.ok and result.rows == 40


def test_shipyard_audit_verify_exits_1_naming_the_broken_row(store: Store, store_uri: str,
                                                             tmp_path: Path) -> None:
    _write(store, 3)
    runner = CliRunner()
    args = ["--home", str(tmp_path / "home"), "--uri", store_uri, "audit", "verify"]
    intact = runner.invoke(app, args)
    assert intact.exit_code == 0, intact.output
    assert "intact: 3 rows" in intact.output
    ids = [r["id"] for r in audit_rows(store)]
    with store.write() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.id == ids[0]))
    broken = runner.invoke(app, args)
    assert broken.exit_code == 1
    assert f"broken at row {ids[1]}" in broken.output


def test_a_run_token_is_bound_to_its_project_even_for_an_admin(store: Store) -> None:
    service.create_principal(store, CTX, "boss", is_admin=True)
    created = service.issue_run_token(store, CTX, "boss", "p1", name="pipeline-run-x")
    principal = service.authenticate(store, created.plaintext)
    assert principal.project == "p1"
    assert service.role_in(store, principal, "p1") == Role.ADMIN
    assert service.role_in(store, principal, "p2") is None
    assert service.server_role(principal) is None
    assert created.expires_at is not None

"""The first admin: created once, handed over through a 0600 file, safe under concurrency."""

from __future__ import annotations

import logging
import multiprocessing
import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import func, select

from shipyard.errors import FailedPrecondition
from shipyard.security import bootstrap, service
from shipyard.security.credentials import read_credentials, write_credentials
from shipyard.store import Store
from shipyard.store.schema import principals, tokens

from ._support import CTX, audit_rows, bootstrap_in_child


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _count(store: Store, table: object) -> int:
    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def test_first_start_creates_admin_and_a_0600_credentials_file(
    store: Store, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    token = service.bootstrap_admin(store, home)
    assert token is not None and token.startswith("sy_")
    path = home / "credentials"
    assert _mode(path) == 0o600 and _mode(home) == 0o700
    assert os.listdir(home) == ["credentials"]  # no temporary file left behind
    assert read_credentials(home) == token
    admin = service.authenticate(store, token)
    assert (admin.name, admin.is_admin) == ("admin", True)
    assert service.role_in(store, admin, "any") is not None
    assert [r["action"] for r in audit_rows(store)] == ["principals.create", "tokens.create"]
    # Later starts leave everything as it is.
    assert service.bootstrap_admin(store, home) is None
    assert read_credentials(home) == token
    assert _count(store, principals) == 1 and _count(store, tokens) == 1


def test_every_install_gets_its_own_random_token(tmp_path: Path) -> None:
    from shipyard.store import open_store

    seen = set()
    for i in range(2):
        store = open_store(f"sqlite:///{tmp_path / f'{i}.db'}", cached=False)
        try:
            seen.add(service.bootstrap_admin(store, tmp_path / f"home{i}"))
        finally:
            store.dispose()
    assert len(seen) == 2 and None not in seen


def test_no_admin_is_committed_when_the_file_cannot_be_written(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(home: Path, token: str) -> Path:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(bootstrap, "write_credentials", full_disk)
    with pytest.raises(OSError, match="No space"):
        service.bootstrap_admin(store, tmp_path / "home")
    assert _count(store, principals) == 0 and audit_rows(store) == []
    monkeypatch.undo()
    assert service.bootstrap_admin(store, tmp_path / "home") is not None


def test_existing_admin_without_credentials_file_warns(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    service.create_principal(store, CTX, "root", is_admin=True)
    with caplog.at_level(logging.WARNING, logger="shipyard.security.bootstrap"):
        assert service.bootstrap_admin(store, tmp_path / "home") is None
    assert "holds no token" in caplog.text
    assert not (tmp_path / "home" / "credentials").exists()


def test_a_non_admin_named_admin_blocks_bootstrap(store: Store, tmp_path: Path) -> None:
    service.create_principal(store, CTX, "admin")
    with pytest.raises(FailedPrecondition, match="rename"):
        service.bootstrap_admin(store, tmp_path / "home")
    assert service.list_principals(store)[0].is_admin is False


def test_two_servers_starting_at_once_create_one_admin(
    store: Store, store_uri: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Event()
    results = spawn.Queue()
    workers = [
        spawn.Process(target=bootstrap_in_child, args=(store_uri, str(home), start, results))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    start.set()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    results.close()
    results.join_thread()
    tokens_made = [o for o in outcomes if o is not None]
    assert not any(o.startswith("error") for o in tokens_made), outcomes
    assert len(tokens_made) == 1, outcomes
    assert _count(store, principals) == 1 and _count(store, tokens) == 1
    assert read_credentials(home) == tokens_made[0]
    assert _mode(home / "credentials") == 0o600
    assert service.authenticate(store, tokens_made[0]).is_admin


def test_read_credentials_tolerates_missing_odd_and_loose_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "home"
    assert read_credentials(home) is None
    path = write_credentials(home, "sy_token")
    assert read_credentials(home) == "sy_token"
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="shipyard.security.credentials"):
        assert read_credentials(home) == "sy_token"
    assert "chmod 600" in caplog.text
    path.write_text("# only a comment\n\n")
    assert read_credentials(home) is None
    path.write_bytes(b"\xff\xfe")
    assert read_credentials(home) is None
    # Rewriting replaces the file atomically and restores 0600.
    write_credentials(home, "sy_other")
    assert _mode(path) == 0o600 and read_credentials(home) == "sy_other"

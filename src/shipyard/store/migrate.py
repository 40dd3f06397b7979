"""Alembic migrations, applied automatically and safely when several processes start at once.

The upgrade runs inside one write transaction holding a lock (SQLite: ``BEGIN IMMEDIATE``;
PostgreSQL: a transaction-scoped advisory lock), so a second process waits, then finds the
schema at head and does nothing. DDL is transactional on both databases, so a crash mid-way
leaves the previous revision intact.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from shipyard.store.dialect import advisory_lock
from shipyard.store.engine import Store

_MIGRATIONS = Path(__file__).parent / "migrations"
_LOCK_KEY = 0x5A1B7A2D  # arbitrary constant shared by every Shipyard process


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


@cache
def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(store: Store) -> str | None:
    with store.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(store: Store, revision: str = "head") -> None:
    """Bring the store to ``revision`` (default: the newest); a no-op when it is there.

    Earlier revisions are for tests that build a database as an older release left it.
    """
    target = head_revision() if revision == "head" else revision
    if current_revision(store) == target:
        return
    cfg = alembic_config()
    with store.write() as conn:
        advisory_lock(conn, _LOCK_KEY)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)

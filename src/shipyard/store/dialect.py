"""The statements whose SQL differs between SQLite and PostgreSQL, one function each.

Services call these instead of branching on the dialect, so a new capability (serving,
monitoring, events) gets the same behaviour on both databases by construction:

* :func:`upsert` - insert rows, updating the named columns of rows whose key exists;
* :func:`insert_ignore` - insert a row unless its key exists, saying which happened;
* :func:`claim_next` - take the first row matching a condition and mark it taken, so that
  two concurrent claimers never take the same row (a work queue);
* :func:`advisory_lock` - serialise writers of something that is not one row;
* :func:`placeholder` - the driver's parameter marker, for hand-written hot-path SQL.

Every function runs inside the caller's transaction (``Store.write()`` or
``Store.retry_write``): on SQLite that transaction already holds the database's write lock
(``BEGIN IMMEDIATE``), which is what makes :func:`claim_next` and :func:`advisory_lock`
correct there; on PostgreSQL they take row and advisory locks that last until it ends.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, Table, and_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.base import ReadOnlyColumnCollection

__all__ = ["advisory_lock", "claim_next", "insert_ignore", "placeholder", "upsert"]

Excluded = ReadOnlyColumnCollection[str, Any]
"""The proposed row of an upsert (SQL's ``excluded``), for conditions on it."""


def _is_sqlite(conn: Connection) -> bool:
    return conn.dialect.name == "sqlite"


def upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    keys: Sequence[str],
    update_columns: Sequence[str],
    where: Callable[[Excluded], ColumnElement[bool]] | None = None,
) -> None:
    """Insert ``rows``; where a row with the same ``keys`` exists, set its ``update_columns``
    to the new values instead (only where ``where(excluded)`` holds, when given).

    ``keys`` must be the columns of a primary key or unique constraint.
    """
    if not rows:
        return
    stmt = (sqlite_insert if _is_sqlite(conn) else pg_insert)(table)
    excluded = stmt.excluded
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={column: excluded[column] for column in update_columns},
        where=where(excluded) if where is not None else None,
    )
    conn.execute(stmt, [dict(row) for row in rows])


def insert_ignore(
    conn: Connection, table: Table, values: Mapping[str, Any], *, keys: Sequence[str]
) -> bool:
    """Insert one row unless a row with the same ``keys`` exists; True if it was inserted.

    Unlike a SELECT then INSERT, two transactions racing on PostgreSQL both succeed (one
    inserts, the other is told it did not), instead of one failing with a conflict.
    """
    stmt = (sqlite_insert if _is_sqlite(conn) else pg_insert)(table)
    # RETURNING rather than rowcount: drivers report rowcount for this statement unevenly.
    inserted = conn.execute(
        stmt.values(**dict(values))
        .on_conflict_do_nothing(index_elements=list(keys))
        .returning(*table.primary_key.columns)
    ).first()
    return inserted is not None


def claim_next(
    conn: Connection,
    table: Table,
    where: ColumnElement[bool],
    order_by: Sequence[ColumnElement[Any]],
    set_values: Mapping[str, Any],
) -> Row[Any] | None:
    """Take the first row (by ``order_by``) for which ``where`` holds, set ``set_values``
    on it and return it as updated; None when no row qualifies.

    ``set_values`` must make ``where`` false (``state='QUEUED'`` -> ``state='RUNNING'``), so a
    claimed row is never claimed again. Two transactions claiming at once never take the
    same row: on PostgreSQL the candidate is read with ``FOR UPDATE SKIP LOCKED``, so a
    concurrent claimer skips a row being claimed and takes the next one instead of waiting
    for it; on SQLite the caller's ``BEGIN IMMEDIATE`` transaction already excludes every
    other writer. The UPDATE repeats ``where`` either way, so a transaction that is not a
    ``Store`` write transaction still cannot claim a row twice (it finds nothing instead).
    """
    key = list(table.primary_key.columns)
    candidate = select(*key).where(where).order_by(*order_by).limit(1)
    if not _is_sqlite(conn):
        candidate = candidate.with_for_update(skip_locked=True)
    found = conn.execute(candidate).first()
    if found is None:
        return None
    same_row = and_(*(column == found[i] for i, column in enumerate(key)))
    claimed = conn.execute(
        update(table).where(same_row, where).values(**dict(set_values)).returning(*table.c)
    ).first()
    return claimed


def advisory_lock(conn: Connection, key: int) -> None:
    """Hold the lock ``key`` until the transaction ends (a PostgreSQL transaction-scoped
    advisory lock); on SQLite, where a write transaction already excludes every other
    writer, nothing more is needed.

    For writes that must be serial but touch no one row both writers would lock: the first
    admin, the audit chain's head, a migration.
    """
    if not _is_sqlite(conn):
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def placeholder(conn: Connection) -> str:
    """The driver's positional parameter marker (``?`` or ``%s``), for hand-written SQL on
    hot paths run with ``exec_driver_sql`` or a raw cursor."""
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"

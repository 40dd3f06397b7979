"""Engines, transactions and error translation for SQLite and PostgreSQL.

Writes go through ``Store.write()``: on SQLite that is ``BEGIN IMMEDIATE`` (the write lock is
taken up front, so two writers never deadlock halfway through a transaction); on
PostgreSQL it is a plain transaction, and ``Store.retry_write`` reruns a whole transaction
on serialization failures and deadlocks. A lock that cannot be had within the busy timeout
becomes ``Unavailable`` (HTTP 503 with Retry-After), never "database is locked".
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.pool import NullPool

from shipyard.errors import Conflict, InvalidArgument, MissingDependency, Unavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 10_000
# Checkpoints (copying the WAL back into the database) are where SQLite fsyncs in WAL mode
# with synchronous=NORMAL, and they run inside whichever commit crosses the threshold. At the
# default 1,000 pages a training loop logging every step pays a checkpoint every few dozen
# commits, which was most of the logging time (bench/tracking.py); 10,000 pages (~40 MB of
# WAL) makes them ten times rarer, and repeated pages are copied once per checkpoint.
SQLITE_WAL_AUTOCHECKPOINT_PAGES = 10_000
_RETRYABLE_PG = {"40001", "40P01"}  # serialization_failure, deadlock_detected
_WRITE = "shipyard_write"


class Store:
    """A metadata store: one engine plus the transaction discipline above."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with translate_errors(), self.engine.connect() as conn:
            with conn.begin():
                yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One transaction for one logical change; commits on success, rolls back on error."""
        with translate_errors(), self.engine.connect() as conn:
            conn.info[_WRITE] = True
            try:
                with conn.begin():
                    yield conn
            finally:
                conn.info.pop(_WRITE, None)

    def retry_write(self, work: Callable[[Connection], T], attempts: int = 5) -> T:
        """Run ``work`` in a write transaction, rerunning it on PostgreSQL serialization
        failures and deadlocks (SQLite's immediate lock makes those impossible there)."""
        for attempt in range(attempts):
            try:
                with self.write() as conn:
                    return work(conn)
            except _Retryable:
                if attempt == attempts - 1:
                    break
                time.sleep(0.01 * 2**attempt)
        raise Unavailable("the database kept aborting this change; retry shortly", retry_after=1)

    @property
    def placeholder(self) -> str:
        """The driver's positional parameter marker, for ``driver_write`` statements."""
        return "?" if self.engine.dialect.paramstyle == "qmark" else "%s"

    def driver_write(self, work: Callable[[Any], T], attempts: int = 5) -> T:
        """``retry_write`` on the driver's own cursor, for hot paths (metric logging).

        Same discipline (``BEGIN IMMEDIATE`` on SQLite, one transaction, reruns on
        PostgreSQL serialization failures, errors translated), minus SQLAlchemy's
        per-statement machinery, which costs more than the SQL itself in a one-point
        transaction. Statements use ``self.placeholder``. Written as one plain loop, not
        nested context managers, because this runs once per logging call.
        """
        dbapi_error = self.engine.dialect.loaded_dbapi.Error
        for attempt in range(attempts):
            try:
                with translate_errors():
                    raw = self.engine.raw_connection()
                    try:
                        cursor = raw.cursor()
                        try:
                            if self.is_sqlite:
                                cursor.execute("BEGIN IMMEDIATE")
                            result = work(cursor)
                            raw.commit()
                            return result
                        except BaseException:
                            raw.rollback()
                            raise
                        finally:
                            cursor.close()
                    except dbapi_error as exc:
                        # SQLAlchemy's wrapper classes, so ``translate_errors`` maps driver
                        # errors exactly as it maps errors from ``write()``.
                        raise DBAPIError.instance(None, None, exc, dbapi_error,
                                                  dialect=self.engine.dialect) from exc
                    finally:
                        raw.close()
            except _Retryable:
                if attempt == attempts - 1:
                    break
                time.sleep(0.01 * 2**attempt)
        raise Unavailable("the database kept aborting this change; retry shortly", retry_after=1)

    def dispose(self) -> None:
        self.engine.dispose()


class _Retryable(Unavailable):
    pass


@contextmanager
def translate_errors() -> Iterator[None]:
    """Driver errors become ShipyardErrors at the boundary (STYLE.md: Dagster's storage)."""
    try:
        yield
    except IntegrityError as exc:
        raise Conflict(f"the change conflicts with stored data: {_short(exc)}") from exc
    except OperationalError as exc:
        code = getattr(exc.orig, "sqlstate", None)
        text = str(exc.orig).lower()
        if code in _RETRYABLE_PG:
            raise _Retryable("transaction aborted by a concurrent change", retry_after=0.1) from exc
        if "database is locked" in text or "database is busy" in text:
            raise Unavailable("the database is busy; retry shortly", retry_after=1) from exc
        if "disk" in text and "full" in text:
            raise Unavailable("the database disk is full; free space and retry") from exc
        raise
    except DBAPIError as exc:
        code = getattr(exc.orig, "sqlstate", None)
        if code in _RETRYABLE_PG:
            raise _Retryable("transaction aborted by a concurrent change", retry_after=0.1) from exc
        raise


def _short(exc: Exception) -> str:
    return str(getattr(exc, "orig", exc)).splitlines()[0][:200]


def _sqlite_engine(uri: str, busy_timeout_ms: int) -> Engine:
    path = uri.split("sqlite:///", 1)[1] if uri.startswith("sqlite:///") else ""
    if path and path != ":memory:":
        parent = Path(path).parent
        parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    engine = create_engine(uri, connect_args={"timeout": busy_timeout_ms / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # We issue BEGIN ourselves (below); the driver's implicit transactions would defeat
        # BEGIN IMMEDIATE.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit survives a process crash (SIGKILL); only an OS crash
        # or power loss can lose the last commits, and never corrupts the database.
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.execute(f"PRAGMA wal_autocheckpoint={SQLITE_WAL_AUTOCHECKPOINT_PAGES}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get(_WRITE) else "BEGIN")

    if path:
        try:
            Path(path).touch(mode=0o600, exist_ok=True)
        except OSError:
            pass
    return engine


def _postgres_engine(uri: str) -> Engine:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise MissingDependency("psycopg", "postgres") from None
    return create_engine(uri, pool_pre_ping=True, pool_size=5, max_overflow=10)


_opened: dict[str, Store] = {}
_opened_lock = threading.Lock()


def open_store(
    uri: str,
    *,
    migrate: bool = True,
    cached: bool = True,
    busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS,
) -> Store:
    """Open (and by default migrate) the store at ``uri``; one Store per URI per process.

    ``busy_timeout_ms`` is how long a SQLite writer waits for another writer's lock before
    the call fails with ``Unavailable`` (a shorter one suits tests and latency-bound callers).
    """
    if not isinstance(uri, str) or not uri:
        raise InvalidArgument("uri is empty: use sqlite:///PATH or postgresql+psycopg://...",
                              field="uri")
    if isinstance(busy_timeout_ms, bool) or not isinstance(busy_timeout_ms, int) or \
            busy_timeout_ms < 0:
        raise InvalidArgument("busy_timeout_ms must be a non-negative integer",
                              field="busy_timeout_ms")
    with _opened_lock:
        if cached and uri in _opened:
            return _opened[uri]
        if uri.startswith("sqlite"):
            if not uri.startswith("sqlite:///"):
                raise InvalidArgument(
                    "use sqlite:///PATH (three slashes, then the file path) for SQLite",
                    field="uri",
                )
            engine = _sqlite_engine(uri, busy_timeout_ms)
        elif uri.startswith("postgresql"):
            if not uri.startswith("postgresql+psycopg://"):
                raise InvalidArgument(
                    "use a postgresql+psycopg://USER:PASSWORD@HOST/DB URI for PostgreSQL "
                    "(pip install 'shipyard[postgres]' for the driver)",
                    field="uri",
                )
            engine = _postgres_engine(uri)
        else:
            raise InvalidArgument(
                f"unsupported metadata store URI {uri.split(':', 1)[0]!r}: use sqlite:///PATH, "
                "postgresql+psycopg://... or http(s)://host:port",
                field="uri",
            )
        store = Store(engine)
        if migrate:
            from shipyard.store.migrate import upgrade

            upgrade(store)
        if cached:
            _opened[uri] = store
        return store


def single_connection_engine(uri: str) -> Engine:
    """An engine without a pool, for short-lived tools (migrations from a CLI)."""
    return create_engine(uri, poolclass=NullPool)

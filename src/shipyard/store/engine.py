"""Engines, transactions and error translation for SQLite and PostgreSQL.

Writes go through ``Store.write()``: on SQLite that is ``BEGIN IMMEDIATE`` (the write lock is
taken up front, so two writers never deadlock halfway through a transaction); on
PostgreSQL it is a plain transaction, and ``Store.retry_write`` reruns a whole transaction
on serialization failures and deadlocks. A lock that cannot be had within the busy timeout
becomes ``Unavailable`` (HTTP 503 with Retry-After), never "database is locked".

``Store.driver_write()`` is the same discipline on the driver's own cursor, for the metric
hot path. On SQLite it runs on connections the store opens itself, configured exactly as the
engine's (same pragmas), kept idle between calls with a cursor each instead of checked out
of SQLAlchemy's pool every time; they belong to the process that opened them (a forked
child opens its own and never touches its parent's) and ``Store.dispose()`` closes them.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.elements import ClauseElement

from shipyard.errors import Conflict, InvalidArgument, MissingDependency, Unavailable
from shipyard.store.availability import database_unavailable
from shipyard.store.driver import DriverStatement

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
    """A metadata store: one engine plus the transaction discipline above.

    ``connect``, when given, opens a new DB-API connection configured like the engine's:
    ``driver_write`` then keeps its own connections instead of using the pool (SQLite).
    """

    def __init__(self, engine: Engine, connect: Callable[[], Any] | None = None) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._sqlite = self.dialect == "sqlite"
        self._placeholder = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self._dbapi_error: type[Exception] = engine.dialect.loaded_dbapi.Error
        self._connect = connect
        # driver_write's idle (connection, cursor) pairs, last used on top (list.pop and
        # list.append are atomic, so threads share it without a lock), and the process they
        # belong to, as a count of forks (os.getpid() would be a system call per write).
        self._idle: list[tuple[Any, Any]] = []
        self._prepared: dict[ClauseElement, DriverStatement] = {}
        _watch_forks()
        self._forks = _forks

    @property
    def is_sqlite(self) -> bool:
        return self._sqlite

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
        return self._placeholder

    def prepared(self, statement: ClauseElement) -> DriverStatement:
        """``statement`` compiled once for this store's dialect, to run on ``driver_write``'s
        cursor (statements are keyed by identity: build them once, at import)."""
        found = self._prepared.get(statement)
        if found is None:
            found = self._prepared[statement] = DriverStatement(statement, self.engine.dialect)
        return found

    def driver_write(self, work: Callable[[Any], T], attempts: int = 5) -> T:
        """``retry_write`` on the driver's own cursor, for hot paths (metric logging).

        Same discipline (``BEGIN IMMEDIATE`` on SQLite, one transaction committed before
        this returns, reruns on PostgreSQL serialization failures, errors translated), minus
        SQLAlchemy's per-statement and per-checkout machinery, which costs more than the SQL
        itself in a one-point transaction. Statements use ``self.placeholder``. Written as
        plain loops, without context managers, because this runs once per logging call.
        """
        if self._connect is not None:
            # SQLite on our own connections: BEGIN IMMEDIATE rules out the aborts that a
            # rerun is for, so there is no retry loop.
            return self._sqlite_transaction(self._connect, work)
        run = self._pool_transaction if self._sqlite else self._postgres_transaction
        for attempt in range(attempts):
            try:
                return run(work)
            except _Retryable:
                if attempt == attempts - 1:
                    break
                time.sleep(0.01 * 2**attempt)
        raise Unavailable("the database kept aborting this change; retry shortly", retry_after=1)

    def _sqlite_transaction(self, connect: Callable[[], Any], work: Callable[[Any], T]) -> T:
        if self._forks != _forks:
            self._forget_inherited()
        try:
            raw, cursor = self._idle.pop()
        except IndexError:
            raw = cursor = None
        reusable = True
        try:
            if raw is None:
                raw = connect()
                cursor = raw.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            result = work(cursor)
            # Through the cursor, not raw.commit(): the driver prepares a new COMMIT
            # statement on every commit() call, while this one comes from its cache.
            cursor.execute("COMMIT")
            return result
        except BaseException as exc:
            if raw is not None:
                reusable = _roll_back(raw)
                if reusable:
                    # A statement the failed work left half-read would keep the old
                    # snapshot open; closing its cursor ends it.
                    cursor.close()
                    cursor = raw.cursor()
            if isinstance(exc, self._dbapi_error):
                raise self._translated(exc) from exc
            raise
        finally:
            if raw is not None:
                if reusable and len(self._idle) < _MAX_IDLE:
                    self._idle.append((raw, cursor))
                else:  # broken, or more threads wrote at once than stay idle
                    _close_quietly(raw)

    def _postgres_transaction(self, work: Callable[[Any], T]) -> T:
        """PostgreSQL on connections this store keeps (taken from the pool once, then held
        like SQLite's): the pool pings a connection on every checkout, a round trip that was
        a sixth of an event's publish-pull-ack cycle. Instead, a kept connection found dead
        (the server restarted) is dropped and the work rerun once on a new one, unless the
        failure came at the commit, whose outcome is unknown."""
        if self._forks != _forks:
            self._forget_inherited()
        try:
            raw: Any = self._idle.pop()[0]
            kept = True
        except IndexError:
            raw, kept = None, False
        committing = False
        try:
            if raw is None:
                raw = self.engine.raw_connection()  # pinged once, then kept out of the pool
                raw.detach()
            cursor = raw.cursor()
            try:
                result = work(cursor)
                committing = True
                raw.commit()
            finally:
                cursor.close()
        except BaseException as exc:
            dead = kept and isinstance(exc, self._dbapi_error) and \
                self.engine.dialect.is_disconnect(cast(Any, exc), raw.dbapi_connection, None)
            broken = raw is None or dead or not _roll_back(raw)
            if raw is not None and broken:
                _close_quietly(raw)
            if dead and not committing:
                return self._postgres_transaction(work)  # nothing ran: again, on a new one
            if not broken and len(self._idle) < _MAX_IDLE:
                self._idle.append((raw, None))
            if isinstance(exc, DBAPIError):  # from the pool: already wrapped by SQLAlchemy
                translated = _translate(exc)
                if translated is None:
                    raise
                raise translated from exc
            if isinstance(exc, self._dbapi_error):
                raise self._translated(exc) from exc
            raise
        if len(self._idle) < _MAX_IDLE:
            self._idle.append((raw, None))
        else:
            _close_quietly(raw)
        return result

    def _pool_transaction(self, work: Callable[[Any], T]) -> T:
        # In-memory SQLite: a connection from the pool per call.
        raw: Any = None
        try:
            raw = self.engine.raw_connection()
            cursor = raw.cursor()
            try:
                if self._sqlite:
                    cursor.execute("BEGIN IMMEDIATE")
                result = work(cursor)
                raw.commit()
                return result
            except BaseException:
                _roll_back(raw)
                raise
            finally:
                cursor.close()
        except DBAPIError as exc:  # from the pool: already wrapped by SQLAlchemy
            translated = _translate(exc)
            if translated is None:
                raise
            raise translated from exc
        except self._dbapi_error as exc:
            raise self._translated(exc) from exc
        finally:
            if raw is not None:
                raw.close()  # back to the pool

    def _translated(self, exc: Exception) -> Exception:
        """A driver error as ``write()`` would raise it: wrapped in SQLAlchemy's classes
        first, so that it maps exactly as there."""
        wrapped = DBAPIError.instance(None, None, exc, self._dbapi_error,
                                      dialect=self.engine.dialect)
        translated = _translate(wrapped) if isinstance(wrapped, DBAPIError) else None
        return translated or wrapped

    def _forget_inherited(self) -> None:
        # In a forked child: the idle connections are the parent's, open on the same files.
        # Using or even closing one here could disturb the parent's transactions, so they
        # are set aside, still referenced (garbage collection would close them too).
        idle, self._idle = self._idle, []
        self._forks = _forks
        _inherited.extend(idle)

    def dispose(self) -> None:
        """Close the idle connections (``driver_write``'s and the pool's). The store stays
        usable: later calls open connections again."""
        if self._forks != _forks:
            self._forget_inherited()
        idle, self._idle = self._idle, []
        for raw, _cursor in idle:
            _close_quietly(raw)
        self.engine.dispose()


# driver_write keeps at most this many idle connections, like the engine's pool (size 5).
_MAX_IDLE = 5
# Connections a forked child inherited from its parent: never used, never closed.
_inherited: list[tuple[Any, Any]] = []
# How many times this process is a forked child of the one that imported this module,
# counted by a fork hook registered when the first Store is made (not on import).
_forks = 0
_fork_hook = False


def _watch_forks() -> None:
    global _fork_hook
    if not _fork_hook and hasattr(os, "register_at_fork"):
        _fork_hook = True
        os.register_at_fork(after_in_child=_count_fork)


def _count_fork() -> None:
    global _forks
    _forks += 1


def _roll_back(raw: Any) -> bool:
    """Roll back ``raw``'s transaction; False when that failed (do not reuse it then)."""
    try:
        raw.rollback()
    except Exception:
        return False
    return True


def _close_quietly(raw: Any) -> None:
    try:
        raw.close()
    except Exception:
        log.debug("closing a store connection failed", exc_info=True)


class _Retryable(Unavailable):
    pass


@contextmanager
def translate_errors() -> Iterator[None]:
    """Driver errors become ShipyardErrors at the boundary (STYLE.md: Dagster's storage)."""
    try:
        yield
    except DBAPIError as exc:
        translated = _translate(exc)
        if translated is None:
            raise
        raise translated from exc
    except PoolTimeout as exc:
        raise database_unavailable(exc) or Unavailable("the database is busy") from exc


def _translate(exc: DBAPIError) -> Exception | None:
    """The ShipyardError a driver error becomes, or None for one that stays as it is."""
    if isinstance(exc, IntegrityError):
        return Conflict(f"the change conflicts with stored data: {_short(exc)}")
    if getattr(exc.orig, "sqlstate", None) in _RETRYABLE_PG:
        return _Retryable("transaction aborted by a concurrent change", retry_after=0.1)
    # PostgreSQL restarting or unreachable: Unavailable, as the server answers it (503), so
    # local mode, workers and the background logger retry it too.
    unavailable = database_unavailable(exc)
    if unavailable is not None:
        return unavailable
    if isinstance(exc, OperationalError):
        text = str(exc.orig).lower()
        if "database is locked" in text or "database is busy" in text:
            return Unavailable("the database is busy; retry shortly", retry_after=1)
        if "disk" in text and "full" in text:
            return Unavailable("the database disk is full; free space and retry")
    return None


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
        configure_sqlite(dbapi_conn, busy_timeout_ms)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get(_WRITE) else "BEGIN")

    if path:
        try:
            Path(path).touch(mode=0o600, exist_ok=True)
        except OSError:
            pass
    return engine


def configure_sqlite(dbapi_conn: Any, busy_timeout_ms: int) -> None:
    """The settings of every SQLite connection: the engine's and ``driver_write``'s."""
    # We issue BEGIN ourselves; the driver's implicit transactions would defeat
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


def _sqlite_connector(engine: Engine, busy_timeout_ms: int) -> Callable[[], Any] | None:
    """New connections for ``driver_write``, opened with the engine's own arguments (the
    absolute path SQLAlchemy resolved when the store was opened) and ``configure_sqlite``;
    None for an in-memory database, where each connection would be a different database."""
    cargs, cparams = engine.dialect.create_connect_args(engine.url)
    filename = str(cargs[0]) if cargs else ":memory:"
    if ":memory:" in filename or "mode=memory" in filename:
        return None
    cparams = {**cparams, "timeout": busy_timeout_ms / 1000, "check_same_thread": False}

    def connect() -> Any:
        conn = engine.dialect.loaded_dbapi.connect(*cargs, **cparams)
        try:
            configure_sqlite(conn, busy_timeout_ms)
        except BaseException:
            conn.close()
            raise
        return conn

    return connect


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
            connect = _sqlite_connector(engine, busy_timeout_ms)
        elif uri.startswith("postgresql"):
            if not uri.startswith("postgresql+psycopg://"):
                raise InvalidArgument(
                    "use a postgresql+psycopg://USER:PASSWORD@HOST/DB URI for PostgreSQL "
                    "(pip install 'shipyard[postgres]' for the driver)",
                    field="uri",
                )
            engine = _postgres_engine(uri)
            connect = None
        else:
            raise InvalidArgument(
                f"unsupported metadata store URI {uri.split(':', 1)[0]!r}: use sqlite:///PATH, "
                "postgresql+psycopg://... or http(s)://host:port",
                field="uri",
            )
        store = Store(engine, connect)
        if migrate:
            from shipyard.store.migrate import upgrade

            upgrade(store)
        if cached:
            _opened[uri] = store
        return store


def single_connection_engine(uri: str) -> Engine:
    """An engine without a pool, for short-lived tools (migrations from a CLI)."""
    return create_engine(uri, poolclass=NullPool)

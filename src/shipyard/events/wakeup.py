"""Waking consumers when a subscription may have work, instead of polling every second.

A transaction that publishes (or acknowledges a message with an ordering key, or gives one
back) notes its topic on its connection (``note``). Once that transaction has committed,
this process's waiters on the topic wake at once: the note is moved aside by SQLAlchemy's
``commit`` event and fired when the connection goes back to the pool (after the commit;
a rolled-back transaction fires nothing). Other processes learn of it:

- on PostgreSQL through ``NOTIFY shipyard_events, '<topic id>'``, sent inside the
  transaction (PostgreSQL delivers it on commit, never for a rollback), which one listening
  connection per process (a daemon thread, started by the first waiter) turns into the same
  in-process wake-up;
- on SQLite, which has no notifications, by a short poll of ``PRAGMA data_version`` (it
  changes when another connection commits; reading it costs microseconds and no I/O), every
  ``SQLITE_TICK`` seconds while a waiter waits.

``Signal`` is a counter per topic under one condition variable: a waiter notes the count,
checks the database, and sleeps until the count moves, so a wake-up between the check and
the sleep is never lost.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import weakref
from typing import Any

from sqlalchemy import Connection, Engine, event, text

log = logging.getLogger(__name__)

CHANNEL = "shipyard_events"
SQLITE_TICK = 0.005  # seconds between two looks at data_version (other processes' commits)
POSTGRES_FALLBACK = 1.0  # a waiter's look at the database while the listener is away
_PENDING = "shipyard_wake"  # conn.info: topics noted by the open transaction
_COMMITTED = "shipyard_wake_committed"  # ... and by committed ones, fired at check-in


class Signal:
    """A wake-up counter per topic id."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._counts: dict[str, int] = {}

    def count(self, topic_id: str) -> int:
        with self._cond:
            return self._counts.get(topic_id, 0)

    def bump(self, topic_ids: Any) -> None:
        with self._cond:
            for topic_id in topic_ids:
                self._counts[topic_id] = self._counts.get(topic_id, 0) + 1
            self._cond.notify_all()

    def wait(self, topic_id: str, seen: int, timeout: float) -> bool:
        """Sleep until ``topic_id``'s count differs from ``seen`` (True) or ``timeout``
        passes (False)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._counts.get(topic_id, 0) != seen,
                                       timeout=max(0.0, timeout))


_signals: weakref.WeakKeyDictionary[Engine, Signal] = weakref.WeakKeyDictionary()
_listeners: dict[int, _Listener] = {}
_lock = threading.Lock()


def signal_for(engine: Engine) -> Signal:
    """The engine's signal, with the commit hooks that fire it installed."""
    found = _signals.get(engine)
    if found is not None:
        return found
    with _lock:
        found = _signals.get(engine)
        if found is None:
            found = _signals[engine] = Signal()
            _install(engine, found)
        return found


def note(conn: Connection, topic_id: str) -> None:
    """Wake ``topic_id``'s waiters once the transaction of ``conn`` commits."""
    signal_for(conn.engine)
    pending = conn.info.get(_PENDING)
    if pending is None:
        pending = conn.info[_PENDING] = set()
    if topic_id not in pending:
        pending.add(topic_id)
        if conn.dialect.name == "postgresql":  # for the other processes, on commit
            conn.execute(_NOTIFY, {"channel": CHANNEL, "topic": topic_id})


_NOTIFY = text("SELECT pg_notify(:channel, :topic)")


def _install(engine: Engine, signal: Signal) -> None:
    def on_commit(conn: Connection) -> None:
        pending = conn.info.pop(_PENDING, None)
        if pending:
            conn.info.setdefault(_COMMITTED, set()).update(pending)

    def on_rollback(conn: Connection) -> None:
        conn.info.pop(_PENDING, None)

    def on_checkin(_dbapi_conn: Any, record: Any) -> None:
        committed = record.info.pop(_COMMITTED, None) if record is not None else None
        if committed:
            signal.bump(committed)

    event.listen(engine, "engine_disposed", _stop_listening)
    event.listen(engine, "commit", on_commit)
    event.listen(engine, "rollback", on_rollback)
    event.listen(engine, "checkin", on_checkin)


class SqliteProbe:
    """Tells whether another connection committed since the last look (``data_version``),
    on a connection of its own held for the wait."""

    def __init__(self, engine: Engine) -> None:
        # A connection of its own, outside the engine's pool: many waiters must not hold
        # the pool's connections while they wait.
        path = engine.url.database
        if path and path != ":memory:" and "mode=memory" not in path:
            self._raw: Any = sqlite3.connect(path, timeout=10, check_same_thread=False)
        else:  # in memory: one database per connection, so the engine's own
            self._raw = engine.raw_connection()
        self._version = self._read()

    def _read(self) -> int:
        cursor = self._raw.cursor()
        try:
            cursor.execute("PRAGMA data_version")
            row = cursor.fetchone()
            return int(row[0]) if row else 0
        finally:
            cursor.close()

    def changed(self) -> bool:
        version = self._read()
        moved, self._version = version != self._version, version
        return moved

    def close(self) -> None:
        self._raw.close()


class _Listener:
    """One LISTEN connection per PostgreSQL engine and process, on a daemon thread: each
    notification bumps the engine's signal. A lost connection is retried every second
    (waiters look at the database every ``POSTGRES_FALLBACK`` seconds meanwhile); the
    thread ends when its engine is disposed or gone (the next waiter starts another)."""

    def __init__(self, engine: Engine, signal: Signal) -> None:
        self.url = engine.url.set(drivername="postgresql")
        self.engine = weakref.ref(engine)
        self.signal = signal
        self.ready = threading.Event()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name="shipyard-events-listen")
        self.thread.start()

    def _run(self) -> None:
        import psycopg

        dsn = self.url.render_as_string(hide_password=False)
        failures = 0
        while not self.stopped.is_set() and self.engine() is not None:
            try:
                with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.ready.set()
                    failures = 0
                    while not self.stopped.is_set() and self.engine() is not None:
                        for notice in conn.notifies(timeout=0.5):
                            self.signal.bump((notice.payload,))
            except Exception as exc:  # the server restarted or went away: listen again
                self.ready.clear()
                if self.stopped.is_set() or self.engine() is None:
                    break
                failures += 1
                (log.warning if failures == 1 else log.debug)(
                    "events: listening for wake-ups failed (%s); retrying", exc)
                self.stopped.wait(1.0)
        self.ready.clear()


def listen(engine: Engine) -> _Listener | None:
    """Start (once per engine and process) the PostgreSQL listener; None on SQLite."""
    if engine.dialect.name != "postgresql":
        return None
    signal = signal_for(engine)
    key = id(engine)
    with _lock:
        found = _listeners.get(key)
        if found is None or not found.thread.is_alive() or found.engine() is not engine:
            found = _listeners[key] = _Listener(engine, signal)
    return found


def _stop_listening(engine: Engine) -> None:
    with _lock:
        found = _listeners.pop(id(engine), None)
    if found is not None:
        found.stopped.set()

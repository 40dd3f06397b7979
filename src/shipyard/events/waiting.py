"""Waiting for a subscription's next message: what a pull loop calls when ``pull`` came back
empty, instead of sleeping (the wake-up signals are in ``wakeup``)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import bindparam, case, func, or_, select

from shipyard.errors import InvalidArgument
from shipyard.events import wakeup
from shipyard.events.delivery import LEASED, PENDING, earlier_open
from shipyard.events.topics import _subscription_row
from shipyard.store import Store
from shipyard.store.schema import event_deliveries
from shipyard.store.types import utcnow
from shipyard.validation import check_name

__all__ = ["wait_for_messages"]


def wait_for_messages(store: Store, project: str, subscription: str, timeout: float) -> bool:
    """Block until ``subscription`` has a message to deliver (True) or ``timeout`` seconds
    pass (False): what a pull loop calls when ``pull`` came back empty, instead of sleeping.

    A publish in this process wakes it as soon as the publish commits; on PostgreSQL a
    publish in any process does (LISTEN/NOTIFY); on SQLite another process's commit is seen
    within ``wakeup.SQLITE_TICK`` (5 ms). A message waiting for its backoff or a lease that
    runs out wakes it when due. True is a hint, not a lease: another consumer may take the
    message first, and the next ``pull`` may come back empty."""
    check_name(subscription, "subscription")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not (
            0 <= timeout <= 3600):
        raise InvalidArgument("timeout must be from 0 to 3600 seconds", field="timeout")
    end = time.monotonic() + timeout
    signal = wakeup.signal_for(store.engine)
    listener = wakeup.listen(store.engine)
    if listener is not None:  # listening before the first look, so no NOTIFY is missed
        listener.ready.wait(timeout=min(timeout, 2.0))
    with store.read() as conn:
        sub, _ = _subscription_row(conn, project, subscription)
    probe = wakeup.SqliteProbe(store.engine) if store.is_sqlite else None
    try:
        while True:
            seen = signal.count(sub.topic_id)
            due = _seconds_until_due(store, sub.id)
            if due is not None and due <= 0:
                return True
            left = end - time.monotonic()
            if left <= 0:
                return False
            nap = min(left, due if due is not None else left)
            # A wake-up for the topic answers at once (one database look fewer on the
            # way to the pull); the poll and the due time look again.
            if probe is None:
                ready = listener is not None and listener.ready.is_set()
                if signal.wait(sub.topic_id, seen,
                               min(nap, wakeup.POSTGRES_FALLBACK) if not ready else nap):
                    return True
                continue
            stop = time.monotonic() + nap
            while True:
                if signal.wait(sub.topic_id, seen,
                               min(wakeup.SQLITE_TICK, stop - time.monotonic())):
                    return True
                if probe.changed() or time.monotonic() >= stop:
                    break
    finally:
        if probe is not None:
            probe.close()


def _seconds_until_due(store: Store, subscription_id: str) -> float | None:
    """Seconds until the subscription's next message can be delivered (0 or less: now);
    None when it has none pending or leased. Holds back the same messages ``pull`` does
    (a later message of an ordering key whose earlier one is not done)."""
    with store.read() as conn:
        found = conn.execute(_NEXT_DUE, {"sub": subscription_id}).scalar()
    if found is None:
        return None
    return float((found - utcnow()).total_seconds())


def _next_due_query() -> Any:
    d, e = event_deliveries.alias("d"), event_deliveries.alias("e")
    earlier = earlier_open(d, e)
    pending = select(func.min(d.c.available_at)).where(
        d.c.subscription_id == bindparam("sub"), d.c.state == PENDING,
        or_(d.c.ordering_key.is_(None), ~earlier)).scalar_subquery()
    leased = select(func.min(d.c.lease_until)).where(
        d.c.subscription_id == bindparam("sub"), d.c.state == LEASED).scalar_subquery()
    return select(case((pending.is_(None), leased), (leased.is_(None), pending),
                       (pending < leased, pending), else_=leased))


_NEXT_DUE = _next_due_query()

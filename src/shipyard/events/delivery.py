"""Delivering the bus's messages: pull (lease), ack, nack, extend a lease, seek, read the
dead letters, and purge what outlived its topic's retention.

Delivery is at least once. ``pull`` leases up to ``max_messages`` of a subscription's
deliveries in one write transaction (on PostgreSQL with ``FOR UPDATE SKIP LOCKED``, so
pullers never wait on each other; on SQLite the write transaction excludes other writers);
a lease lasts the subscription's ack deadline and is named by a token. ``ack`` ends a
delivery; ``nack`` (or a lease that runs out) makes it available again after an exponential
backoff (``min_backoff * 2**(attempt-1)``, at most ``max_backoff``: 10 s to 600 s by default,
as Pub/Sub), and after ``max_attempts`` deliveries it is dead-lettered with its history.

Ordering keys: a subscription never hands out a message while an earlier message with the
same key is still pending or leased (earlier means published first: ``seq`` order). Keyless
messages have no such constraint, and one stuck key never blocks the others.

Acknowledging is data and is not audited one by one; seeking is.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    delete,
    exists,
    literal_column,
    or_,
    select,
    text,
    update,
)

from shipyard import audit
from shipyard.context import RequestContext
from shipyard.errors import FailedPrecondition, InvalidArgument, NotFound
from shipyard.events import wakeup
from shipyard.events.models import DeadLetter, Message
from shipyard.events.topics import _subscription_row
from shipyard.ids import new_id
from shipyard.store import Store
from shipyard.store.schema import (
    event_deliveries,
    event_messages,
    event_subscriptions,
    event_topics,
)
from shipyard.store.types import utcnow
from shipyard.validation import check_name

__all__ = [
    "ACKED", "DEAD", "LEASED", "MAX_PULL", "PENDING", "ack", "backoff", "dead_letters",
    "extend_lease", "nack", "nack_in", "pull", "purge_expired", "seek",
]

alerts = logging.getLogger("shipyard.events.alerts")

MAX_PULL = 1000
MAX_HISTORY = 50  # attempts kept per delivery (the newest)
PENDING, LEASED, ACKED, DEAD = "pending", "leased", "acked", "dead"


def pull(store: Store, project: str, subscription: str, *, max_messages: int = 10,
         now: datetime | None = None) -> list[Message]:
    """Lease up to ``max_messages`` deliverable messages, oldest first (an empty list when
    there are none). ``now`` is for tests on a virtual clock."""
    check_name(subscription, "subscription")
    if isinstance(max_messages, bool) or not isinstance(max_messages, int) or not (
            1 <= max_messages <= MAX_PULL):
        raise InvalidArgument(f"max_messages must be from 1 to {MAX_PULL}",
                              field="max_messages")

    fast = store.driver_write(lambda cursor: _pull_fast(store, cursor, project, subscription,
                                                        max_messages, now or utcnow()))
    if fast is not None:
        return fast

    def work(conn: Connection) -> list[Message]:
        at = now or utcnow()
        sub, topic = _subscription_row(conn, project, subscription)
        query = _READY if conn.dialect.name == "sqlite" else _READY_LOCKED
        leased: dict[int, int] = {}  # seq -> this delivery's attempt number
        deadline = at + timedelta(seconds=sub.ack_deadline_seconds)
        batch = new_id()  # one lease for the batch; each message's token adds its seq
        for row in conn.execute(query, {"sub": sub.id, "at": at, "n": max_messages}).all():
            if row.state == LEASED:  # its lease ran out: that delivery failed
                history = _noted(list(row.history or []), row.attempts, at, "lease expired")
                if row.attempts >= sub.max_attempts:
                    _dead_letter(conn, sub, topic, row.seq, row.attempts, history, at)
                    continue
                _set(conn, sub.id, row.seq, history=history)
            leased[row.seq] = row.attempts + 1
        if not leased:
            return []
        seqs = list(leased)
        conn.execute(_LEASE, {"sub": sub.id, "seqs": seqs, "batch": batch,
                              "until": deadline, "at": at})
        messages = conn.execute(_MESSAGES, {"seqs": seqs}).all()
        return [Message(id=m.id, topic=topic, subscription=subscription, data=m.data,
                        attributes=m.attributes or {}, ordering_key=m.ordering_key,
                        published_at=m.published_at, attempt=leased[m.seq],
                        lease_token=f"{batch}.{m.seq}", lease_until=deadline)
                for m in messages]

    return store.retry_write(work)


def _pull_fast(store: Store, cursor: Any, project: str, subscription: str, max_messages: int,
               at: datetime) -> list[Message] | None:
    """``pull`` on the driver's cursor (``Store.prepared``: the same statements, without
    SQLAlchemy's per-execution cost). None when a lease it would take has run out: that
    delivery's failure must be recorded (history, perhaps a dead letter), which ``pull``'s
    full path does in a transaction of its own."""
    found = store.prepared(_SUBSCRIPTION_FAST).execute(
        cursor, {"project": project, "name": subscription}).fetchone()
    if found is None:
        raise NotFound(f"no subscription {subscription!r} in project {project!r}",
                       field="subscription")
    sub_id, topic, ack_deadline = found
    query = store.prepared(_READY if store.is_sqlite else _READY_LOCKED)
    leased: dict[int, int] = {}
    for seq, state, attempts, _ in query.rows(query.execute(
            cursor, {"sub": sub_id, "at": at, "n": max_messages})):
        if state == LEASED:
            return None
        leased[seq] = attempts + 1
    if not leased:
        return []
    seqs = list(leased)
    deadline = at + timedelta(seconds=ack_deadline)
    batch = new_id()
    store.prepared(_LEASE).execute(cursor, {"sub": sub_id, "seqs": seqs, "batch": batch,
                                            "until": deadline, "at": at})
    messages = store.prepared(_MESSAGES_FAST)
    return [Message(id=id_, topic=topic, subscription=subscription, data=data,
                    attributes=attributes or {}, ordering_key=key, published_at=published_at,
                    attempt=leased[seq], lease_token=f"{batch}.{seq}", lease_until=deadline)
            for seq, id_, data, attributes, key, published_at in messages.rows(
                messages.execute(cursor, {"seqs": seqs}))]


# ``wakeup.note``'s NOTIFY, for the paths on the driver's cursor (they bump this process's
# signal themselves once committed).
NOTIFY = text("SELECT pg_notify(:channel, :topic)")
_SUBSCRIPTION_FAST = (
    select(event_subscriptions.c.id, event_topics.c.name,
           event_subscriptions.c.ack_deadline_seconds)
    .join(event_topics, event_topics.c.id == event_subscriptions.c.topic_id)
    .where(event_subscriptions.c.project == bindparam("project"),
           event_subscriptions.c.name == bindparam("name")))
_SUBSCRIPTION_IDS = (
    select(event_subscriptions.c.id, event_subscriptions.c.topic_id)
    .where(event_subscriptions.c.project == bindparam("project"),
           event_subscriptions.c.name == bindparam("name")))


def is_open(deliveries: Any) -> Any:
    """``state IN ('pending', 'leased')`` with the states written out, as the partial index
    ix_event_deliveries_open says it (SQLite uses a partial index only for a query whose
    WHERE holds its condition as written, not as bound parameters)."""
    return deliveries.c.state.in_([literal_column(f"'{PENDING}'"),
                                   literal_column(f"'{LEASED}'")])


def earlier_open(d: Any, e: Any) -> Any:
    """An open delivery of ``d``'s ordering key before it (which holds ``d`` back)."""
    return exists().where(
        e.c.subscription_id == d.c.subscription_id, is_open(e),
        e.c.ordering_key == d.c.ordering_key, e.c.seq < d.c.seq)


# pull's statements, built once (building them cost more than running them).
def _ready_query() -> Any:
    d, e = event_deliveries.alias("d"), event_deliveries.alias("e")
    at = bindparam("at", type_=event_deliveries.c.available_at.type)
    earlier = earlier_open(d, e)
    ready = and_(
        d.c.subscription_id == bindparam("sub"), is_open(d),
        or_(and_(d.c.state == PENDING, d.c.available_at <= at),
            and_(d.c.state == LEASED, d.c.lease_until <= at)),
        or_(d.c.ordering_key.is_(None), ~earlier))
    query = select(d.c.seq, d.c.state, d.c.attempts, d.c.history).where(ready).order_by(
        d.c.seq).limit(bindparam("n"))
    # SQLite: the write transaction already excludes other pullers.
    return query, query.with_for_update(of=d, skip_locked=True)


_READY, _READY_LOCKED = _ready_query()
_LEASE = update(event_deliveries).where(
    event_deliveries.c.subscription_id == bindparam("sub"),
    event_deliveries.c.seq.in_(bindparam("seqs", expanding=True)),
).values(state=LEASED, attempts=event_deliveries.c.attempts + 1,
         lease_token=bindparam("batch"),
         lease_until=bindparam("until", type_=event_deliveries.c.lease_until.type),
         updated_at=bindparam("at", type_=event_deliveries.c.updated_at.type))
_MESSAGES = select(event_messages).where(
    event_messages.c.seq.in_(bindparam("seqs", expanding=True))).order_by(event_messages.c.seq)
_MESSAGES_FAST = select(
    event_messages.c.seq, event_messages.c.id, event_messages.c.data,
    event_messages.c.attributes, event_messages.c.ordering_key, event_messages.c.published_at,
).where(event_messages.c.seq.in_(bindparam("seqs", expanding=True))).order_by(
    event_messages.c.seq)


def ack(store: Store, project: str, subscription: str, lease_tokens: Sequence[str],
        *, now: datetime | None = None) -> int:
    """Acknowledge leased messages by their tokens; how many were still leased under them
    (a token whose message was delivered again since is no longer valid)."""
    check_name(subscription, "subscription")
    if len(lease_tokens) > MAX_PULL:
        raise InvalidArgument(f"at most {MAX_PULL} lease tokens at once", field="lease_tokens")
    batches: dict[str, list[int]] = {}
    for token in lease_tokens:
        batch, seq = _parse_token(token)
        batches.setdefault(batch, []).append(seq)
    if not batches:
        return 0

    at = now or utcnow()

    # On the driver's cursor (``Store.prepared``): an ack is the hot path's third
    # transaction, and SQLAlchemy's per-execution cost was most of its time.
    def work(cursor: Any) -> tuple[int, str | None]:
        found = store.prepared(_SUBSCRIPTION_IDS).execute(
            cursor, {"project": project, "name": subscription}).fetchone()
        if found is None:
            raise NotFound(f"no subscription {subscription!r} in project {project!r}",
                           field="subscription")
        sub_id, topic_id = found
        statement = store.prepared(_ACK)
        keys: list[str | None] = []
        for batch, seqs in batches.items():  # one lease per pull: usually one statement
            keys += [row[0] for row in statement.rows(statement.execute(
                cursor, {"sub": sub_id, "batch": batch, "seqs": seqs, "at": at}))]
        if not any(key is not None for key in keys):
            return len(keys), None
        # The next message of a key may go now: wake the topic's waiters (other processes
        # through NOTIFY on PostgreSQL, committed with this transaction).
        if not store.is_sqlite:
            store.prepared(NOTIFY).execute(
                cursor, {"channel": wakeup.CHANNEL, "topic": topic_id})
        return len(keys), topic_id

    count, woken = store.driver_write(work)
    if woken is not None:  # committed: this process's waiters
        wakeup.signal_for(store.engine).bump((woken,))
    return count


_ACK = update(event_deliveries).where(
    event_deliveries.c.subscription_id == bindparam("sub"),
    event_deliveries.c.lease_token == bindparam("batch"),
    event_deliveries.c.seq.in_(bindparam("seqs", expanding=True)),
    event_deliveries.c.state == LEASED,
).values(state=ACKED, lease_token=None, lease_until=None,
         updated_at=bindparam("at", type_=event_deliveries.c.updated_at.type),
         ).returning(event_deliveries.c.ordering_key)


def nack(store: Store, project: str, subscription: str, lease_token: str, *,
         error: str | None = None, now: datetime | None = None) -> str:
    """Give a leased message back: delivered again after the backoff, or dead-lettered when
    it has had ``max_attempts`` deliveries (and an alert raised: ``_dead_letter``). Answers
    the new state (pending or dead)."""
    check_name(subscription, "subscription")
    _parse_token(lease_token)

    def work(conn: Connection) -> str:
        return nack_in(conn, project, subscription, lease_token, error=error, now=now)

    return store.retry_write(work)


def nack_in(conn: Connection, project: str, subscription: str, lease_token: str, *,
            error: str | None = None, now: datetime | None = None, final: bool = False) -> str:
    """``nack`` inside the caller's transaction (a trigger records its firing with it);
    ``final``: dead-letter it now, whatever attempts are left (retrying cannot help)."""
    _parse_token(lease_token)
    reason = "nack" if not error else f"nack: {str(error)[:2000]}"
    at = now or utcnow()
    sub, topic = _subscription_row(conn, project, subscription)
    row = _leased(conn, sub.id, lease_token)
    history = _noted(list(row.history or []), row.attempts, at, reason)
    if final or row.attempts >= sub.max_attempts:
        _dead_letter(conn, sub, topic, row.seq, row.attempts, history, at)
        return DEAD
    wait = backoff(row.attempts, sub.min_backoff_seconds, sub.max_backoff_seconds)
    _set(conn, sub.id, row.seq, state=PENDING, lease_token=None, lease_until=None,
         available_at=at + timedelta(seconds=wait), history=history, updated_at=at)
    wakeup.note(conn, sub.topic_id)  # waiters learn when it is due again
    return PENDING


def _dead_letter(conn: Connection, sub: Any, topic: str, seq: int, attempts: int,
                 history: list[dict[str, Any]], at: datetime) -> None:
    """Dead-letter a delivery and raise the alert, in the transaction that does it: an
    audit row (``events.message.dead_letter``, outcome error), the built-in event
    ``message-dead-lettered`` (not for messages of that topic itself: an alert about an
    alert would never end) and a warning on the ``shipyard.events.alerts`` logger."""
    from shipyard.events.builtin import MESSAGE_DEAD_LETTERED
    from shipyard.events.publishing import has_subscriptions, publish_in

    _set(conn, sub.id, seq, state=DEAD, lease_token=None, lease_until=None,
         history=history, updated_at=at)
    wakeup.note(conn, sub.topic_id)  # the next message of its ordering key may go now
    message_id = conn.execute(select(event_messages.c.id).where(
        event_messages.c.seq == seq)).scalar_one()
    last = str(history[-1]["outcome"]) if history else ""
    ctx = RequestContext(project=sub.project, actor="shipyard", client="events")
    detail = {"subscription": sub.name, "topic": topic, "message_id": message_id,
              "attempts": attempts, "error": last[:1000]}
    audit.record(conn, ctx, "events.message.dead_letter", f"subscriptions/{sub.name}",
                 outcome="error", detail=detail)
    if topic != MESSAGE_DEAD_LETTERED and has_subscriptions(conn, sub.project,
                                                            MESSAGE_DEAD_LETTERED):
        publish_in(conn, ctx, MESSAGE_DEAD_LETTERED, {"event": MESSAGE_DEAD_LETTERED,
                                                      **detail}, ordering_key=sub.name)
    alerts.warning("dead letter: message %s of topic %s in subscription %s (project %s) "
                   "after %d attempts: %s", message_id, topic, sub.name, sub.project,
                   attempts, last[:500])


def extend_lease(store: Store, project: str, subscription: str, lease_token: str,
                 seconds: int, *, now: datetime | None = None) -> datetime:
    """Keep a lease for ``seconds`` more from now (a heartbeat); the new deadline."""
    check_name(subscription, "subscription")
    if isinstance(seconds, bool) or not isinstance(seconds, int) or not 1 <= seconds <= 3600:
        raise InvalidArgument("seconds must be from 1 to 3600", field="seconds")
    _parse_token(lease_token)

    def work(conn: Connection) -> datetime:
        at = now or utcnow()
        sub, _ = _subscription_row(conn, project, subscription)
        row = _leased(conn, sub.id, lease_token)
        if row.lease_until <= at:
            raise FailedPrecondition("the lease has run out: the message will be delivered "
                                     "again", field="lease_token")
        until = at + timedelta(seconds=seconds)
        _set(conn, sub.id, row.seq, lease_until=until, updated_at=at)
        return until

    return store.retry_write(work)


def backoff(attempt: int, low: int, high: int) -> float:
    """Seconds to wait after failed delivery number ``attempt`` (1-based)."""
    return float(min(high, low * math.pow(2, max(0, attempt - 1))))


def seek(store: Store, ctx: RequestContext, subscription: str, to: datetime) -> int:
    """Replay from ``to``: messages published at or after it (and still retained) are
    delivered again, from a clean attempt count; earlier ones count as acknowledged.
    Answers how many will be delivered."""
    check_name(subscription, "subscription")
    if not isinstance(to, datetime) or to.tzinfo is None:
        raise InvalidArgument("seek needs a timezone-aware time", field="time")

    def work(conn: Connection) -> int:
        at = utcnow()
        sub, _ = _subscription_row(conn, ctx.project, subscription)
        later = select(event_messages.c.seq).where(
            event_messages.c.topic_id == sub.topic_id, event_messages.c.published_at >= to)
        replay = conn.execute(update(event_deliveries).where(
            event_deliveries.c.subscription_id == sub.id,
            event_deliveries.c.seq.in_(later.scalar_subquery()),
        ).values(state=PENDING, attempts=0, available_at=at, lease_token=None,
                 lease_until=None, updated_at=at))
        conn.execute(update(event_deliveries).where(
            event_deliveries.c.subscription_id == sub.id,
            event_deliveries.c.seq.not_in(later.scalar_subquery()),
        ).values(state=ACKED, lease_token=None, lease_until=None, updated_at=at))
        count = int(replay.rowcount or 0)
        audit.record(conn, ctx, "events.subscription.seek", f"subscriptions/{subscription}",
                     detail={"time": to.isoformat(), "replayed": count})
        return count

    return store.retry_write(work)


def dead_letters(store: Store, project: str, subscription: str, *, limit: int = 100
                 ) -> list[DeadLetter]:
    check_name(subscription, "subscription")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PULL:
        raise InvalidArgument(f"limit must be from 1 to {MAX_PULL}", field="limit")
    with store.read() as conn:
        sub, _ = _subscription_row(conn, project, subscription)
        rows = conn.execute(
            select(event_deliveries.c.attempts, event_deliveries.c.history, event_messages)
            .join(event_messages, event_messages.c.seq == event_deliveries.c.seq)
            .where(event_deliveries.c.subscription_id == sub.id,
                   event_deliveries.c.state == DEAD)
            .order_by(event_deliveries.c.seq).limit(limit)).all()
    return [DeadLetter(id=r.id, subscription=subscription, data=r.data,
                       attributes=r.attributes or {}, ordering_key=r.ordering_key,
                       published_at=r.published_at, attempts=r.attempts,
                       history=list(r.history or []))
            for r in rows]


def purge_expired(store: Store, *, now: datetime | None = None) -> int:
    """Drop messages older than their topic's retention, with every copy of them (a job for
    the worker); how many messages went."""

    def work(conn: Connection) -> int:
        at = now or utcnow()
        dropped = 0
        for topic in conn.execute(select(event_topics.c.id, event_topics.c.retention_seconds)):
            old = select(event_messages.c.seq).where(
                event_messages.c.topic_id == topic.id,
                event_messages.c.published_at < at - timedelta(seconds=topic.retention_seconds))
            conn.execute(delete(event_deliveries).where(
                event_deliveries.c.seq.in_(old.scalar_subquery())))
            done = conn.execute(delete(event_messages).where(
                event_messages.c.seq.in_(old.scalar_subquery())))
            dropped += int(done.rowcount or 0)
        return dropped

    return store.retry_write(work)


def _parse_token(token: object) -> tuple[str, int]:
    """A lease token is ``<the pull's lease id>.<the message's seq>``."""
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        raise InvalidArgument("a lease token is the lease_token of a pulled message",
                              field="lease_token")
    batch, seq = token.split(".")
    return batch, int(seq)


_TOKEN = re.compile(r"[0-9a-f]{32}\.[0-9]{1,18}")


def _leased(conn: Connection, subscription_id: str, token: str) -> Any:
    batch, seq = _parse_token(token)
    row = conn.execute(select(event_deliveries).where(
        event_deliveries.c.subscription_id == subscription_id,
        event_deliveries.c.seq == seq, event_deliveries.c.lease_token == batch,
        event_deliveries.c.state == LEASED)).first()
    if row is None:
        raise FailedPrecondition("no message is leased under this token (acknowledged "
                                 "already, or delivered again since)", field="lease_token")
    return row


def _set(conn: Connection, subscription_id: str, seq: int, **values: Any) -> None:
    conn.execute(update(event_deliveries).where(
        event_deliveries.c.subscription_id == subscription_id,
        event_deliveries.c.seq == seq).values(**values))


def _noted(history: list[dict[str, Any]], attempt: int, at: datetime, outcome: str
           ) -> list[dict[str, Any]]:
    return [*history, {"attempt": attempt, "at": at.isoformat(), "outcome": outcome}][
        -MAX_HISTORY:]

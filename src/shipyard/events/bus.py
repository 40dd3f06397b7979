"""The message bus: plain functions over ``(store, ctx, ...)``, like every service.

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

``publish_in(conn, ...)`` writes a message inside the caller's transaction (the outbox): the
event is committed with the change it announces, or not at all.

Publishing and acknowledging are data, like metric points: they are not audited one by one.
Creating or deleting topics and subscriptions, and seeking, are.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)

from shipyard import audit
from shipyard.context import RequestContext
from shipyard.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from shipyard.events import wakeup
from shipyard.events.models import (
    DeadLetter,
    Message,
    Subscription,
    Topic,
    check_data,
)
from shipyard.ids import new_id
from shipyard.store import Store
from shipyard.store.projects import ensure_project
from shipyard.store.schema import (
    event_deliveries,
    event_messages,
    event_subscriptions,
    event_topics,
)
from shipyard.store.types import utcnow
from shipyard.validation import check_name

__all__ = [
    "ack", "create_subscription", "create_topic", "dead_letters", "delete_subscription",
    "extend_lease", "get_subscription", "get_topic", "has_subscriptions", "list_subscriptions",
    "list_topics",
    "nack", "publish", "publish_in", "pull", "purge_expired", "seek", "subscribe_in",
    "wait_for_messages",
]

MAX_ATTRIBUTES = 32
MAX_ATTRIBUTE_VALUE = 1024
MAX_PULL = 1000
MAX_HISTORY = 50  # attempts kept per delivery (the newest)
DEFAULT_RETENTION = 7 * 86400
PENDING, LEASED, ACKED, DEAD = "pending", "leased", "acked", "dead"
LIMITS = {  # field: (low, high, default)
    "max_attempts": (1, 100, 5),
    "ack_deadline_seconds": (1, 3600, 60),
    "min_backoff_seconds": (0, 600, 10),
    "max_backoff_seconds": (0, 3600, 600),
    "retention_seconds": (60, 31 * 86400, DEFAULT_RETENTION),
}


# -- topics and subscriptions ----------------------------------------------------------------


def create_topic(store: Store, ctx: RequestContext, name: str, *,
                 retention_seconds: int = DEFAULT_RETENTION) -> Topic:
    check_name(name, "topic")
    retention = _bounded("retention_seconds", retention_seconds)

    def work(conn: Connection) -> Topic:
        ensure_project(conn, ctx.project)
        if _topic_row(conn, ctx.project, name, missing_ok=True) is not None:
            raise AlreadyExists(f"topic {name!r} already exists", field="topic")
        row = _insert_topic(conn, ctx, name, retention)
        audit.record(conn, ctx, "events.topic.create", f"topics/{name}")
        return _topic(row)

    return store.retry_write(work)


def get_topic(store: Store, project: str, name: str) -> Topic:
    check_name(name, "topic")
    with store.read() as conn:
        return _topic(_topic_row(conn, project, name))


def list_topics(store: Store, project: str) -> list[Topic]:
    with store.read() as conn:
        rows = conn.execute(select(event_topics).where(event_topics.c.project == project)
                            .order_by(event_topics.c.name)).all()
    return [_topic(r) for r in rows]


def create_subscription(store: Store, ctx: RequestContext, name: str, topic: str, *,
                        max_attempts: int = 5, ack_deadline_seconds: int = 60,
                        min_backoff_seconds: int = 10, max_backoff_seconds: int = 600
                        ) -> Subscription:
    """A subscription to ``topic`` (created if missing): it receives a copy of every message
    published from now on."""
    check_name(name, "name")
    check_name(topic, "topic")
    values = {k: _bounded(k, v) for k, v in (
        ("max_attempts", max_attempts), ("ack_deadline_seconds", ack_deadline_seconds),
        ("min_backoff_seconds", min_backoff_seconds),
        ("max_backoff_seconds", max_backoff_seconds))}
    if values["min_backoff_seconds"] > values["max_backoff_seconds"]:
        raise InvalidArgument("min_backoff_seconds must not exceed max_backoff_seconds",
                              field="min_backoff_seconds")

    def work(conn: Connection) -> Subscription:
        return subscribe_in(conn, ctx, name, topic, values)

    return store.retry_write(work)


def subscribe_in(conn: Connection, ctx: RequestContext, name: str, topic: str,
                 values: Mapping[str, int]) -> Subscription:
    """``create_subscription`` inside the caller's transaction (a trigger creates its
    subscription with itself); ``values`` already checked."""
    ensure_project(conn, ctx.project)
    topic_row = _topic_row(conn, ctx.project, topic, missing_ok=True) or _insert_topic(
        conn, ctx, topic, DEFAULT_RETENTION)
    taken = conn.execute(select(event_subscriptions.c.id).where(
        event_subscriptions.c.project == ctx.project,
        event_subscriptions.c.name == name)).first()
    if taken is not None:
        raise AlreadyExists(f"subscription {name!r} already exists", field="name")
    row = conn.execute(insert(event_subscriptions).values(
        id=new_id(), project=ctx.project, name=name, topic_id=topic_row.id,
        created_at=utcnow(), created_by=ctx.actor, **values,
    ).returning(*event_subscriptions.c)).one()
    audit.record(conn, ctx, "events.subscription.create", f"subscriptions/{name}",
                 detail={"topic": topic, **values})
    return _subscription(row, topic)


def get_subscription(store: Store, project: str, name: str) -> Subscription:
    check_name(name, "subscription")
    with store.read() as conn:
        row, topic = _subscription_row(conn, project, name)
    return _subscription(row, topic)


def list_subscriptions(store: Store, project: str, topic: str | None = None
                       ) -> list[Subscription]:
    query = (select(event_subscriptions, event_topics.c.name.label("topic_name"))
             .join(event_topics, event_topics.c.id == event_subscriptions.c.topic_id)
             .where(event_subscriptions.c.project == project)
             .order_by(event_subscriptions.c.name))
    if topic is not None:
        query = query.where(event_topics.c.name == check_name(topic, "topic"))
    with store.read() as conn:
        rows = conn.execute(query).all()
    return [_subscription(r, r.topic_name) for r in rows]


def delete_subscription(store: Store, ctx: RequestContext, name: str) -> None:
    """Delete a subscription and its undelivered copies (other subscriptions keep theirs)."""
    check_name(name, "subscription")

    def work(conn: Connection) -> None:
        row, _ = _subscription_row(conn, ctx.project, name)
        conn.execute(delete(event_deliveries).where(event_deliveries.c.subscription_id == row.id))
        conn.execute(delete(event_subscriptions).where(event_subscriptions.c.id == row.id))
        audit.record(conn, ctx, "events.subscription.delete", f"subscriptions/{name}")

    store.retry_write(work)


# -- publishing ------------------------------------------------------------------------------


def publish(store: Store, ctx: RequestContext, topic: str, data: Any, *,
            ordering_key: str | None = None, attributes: Mapping[str, str] | None = None
            ) -> str:
    """Publish ``data`` (any JSON value) to ``topic`` (created if missing); the message id."""
    checked = _check_message(topic, data, ordering_key, attributes)

    def work(conn: Connection) -> str:
        return _publish(conn, ctx, topic, *checked)

    return store.retry_write(work)


def publish_in(conn: Connection, ctx: RequestContext, topic: str, data: Any, *,
               ordering_key: str | None = None,
               attributes: Mapping[str, str] | None = None) -> str:
    """Publish inside the caller's write transaction: the message commits with the caller's
    change or rolls back with it (the outbox)."""
    return _publish(conn, ctx, topic, *_check_message(topic, data, ordering_key, attributes))


def has_subscriptions(conn: Connection, project: str, topic: str) -> bool:
    """Whether ``topic`` has a subscription (inside the caller's transaction)."""
    return conn.execute(_HAS_SUBSCRIPTIONS, {"project": project, "name": topic}).first() \
        is not None


_HAS_SUBSCRIPTIONS = (
    select(literal(1))
    .select_from(event_subscriptions.join(
        event_topics, event_topics.c.id == event_subscriptions.c.topic_id))
    .where(event_topics.c.project == bindparam("project"),
           event_topics.c.name == bindparam("name"))
    .limit(1))


def _publish(conn: Connection, ctx: RequestContext, topic: str, data: Any,
             ordering_key: str | None, attributes: dict[str, str]) -> str:
    # Three statements built once (building SQLAlchemy statements costs more than running
    # them here): the topic's id, the message, and one delivery per subscription.
    found = conn.execute(_TOPIC_ID, {"project": ctx.project, "name": topic}).first()
    topic_id = found[0] if found is not None else _insert_topic(
        conn, ctx, topic, DEFAULT_RETENTION).id
    now = utcnow()
    message_id = new_id()
    seq = conn.execute(_INSERT_MESSAGE, {
        "id": message_id, "topic_id": topic_id, "data": data, "attributes": attributes,
        "ordering_key": ordering_key, "published_at": now, "published_by": ctx.actor,
    }).scalar_one()
    fanned = conn.execute(_FAN_OUT, {"seq": seq, "ordering_key": ordering_key, "now": now,
                                     "topic_id": topic_id})
    if fanned.rowcount:  # someone subscribes: wake its waiters once this commits
        wakeup.note(conn, topic_id)
    return message_id


_TOPIC_ID = select(event_topics.c.id).where(event_topics.c.project == bindparam("project"),
                                            event_topics.c.name == bindparam("name"))
_INSERT_MESSAGE = insert(event_messages).returning(event_messages.c.seq)
_FAN_OUT = insert(event_deliveries).from_select(
    ["subscription_id", "seq", "ordering_key", "state", "attempts", "available_at",
     "history", "updated_at"],
    select(event_subscriptions.c.id,
           bindparam("seq", type_=event_messages.c.seq.type),
           bindparam("ordering_key", type_=event_deliveries.c.ordering_key.type),
           literal(PENDING), literal(0),
           bindparam("now", type_=event_deliveries.c.available_at.type),
           literal([], type_=event_deliveries.c.history.type),
           bindparam("now", type_=event_deliveries.c.updated_at.type))
    .where(event_subscriptions.c.topic_id == bindparam("topic_id")))


# -- delivering ------------------------------------------------------------------------------


def pull(store: Store, project: str, subscription: str, *, max_messages: int = 10,
         now: datetime | None = None) -> list[Message]:
    """Lease up to ``max_messages`` deliverable messages, oldest first (an empty list when
    there are none). ``now`` is for tests on a virtual clock."""
    check_name(subscription, "subscription")
    if isinstance(max_messages, bool) or not isinstance(max_messages, int) or not (
            1 <= max_messages <= MAX_PULL):
        raise InvalidArgument(f"max_messages must be from 1 to {MAX_PULL}",
                              field="max_messages")

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
                    _set(conn, sub.id, row.seq, state=DEAD, lease_token=None,
                         lease_until=None, history=history, updated_at=at)
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


# pull's statements, built once (building them cost more than running them).
def _ready_query() -> Any:
    d, e = event_deliveries.alias("d"), event_deliveries.alias("e")
    at = bindparam("at", type_=event_deliveries.c.available_at.type)
    earlier = exists().where(
        e.c.subscription_id == d.c.subscription_id, e.c.ordering_key == d.c.ordering_key,
        e.c.seq < d.c.seq, e.c.state.in_((PENDING, LEASED)))
    ready = and_(
        d.c.subscription_id == bindparam("sub"),
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

    def work(conn: Connection) -> int:
        sub, _ = _subscription_row(conn, project, subscription)
        at = now or utcnow()
        keys: list[str | None] = []
        for batch, seqs in batches.items():  # one lease per pull: usually one statement
            keys += conn.execute(_ACK, {"sub": sub.id, "batch": batch, "seqs": seqs,
                                        "at": at}).scalars().all()
        if any(key is not None for key in keys):  # the next message of a key may go now
            wakeup.note(conn, sub.topic_id)
        return len(keys)

    return store.retry_write(work)


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
    it has had ``max_attempts`` deliveries. Answers the new state (pending or dead)."""
    check_name(subscription, "subscription")
    _parse_token(lease_token)
    reason = "nack" if not error else f"nack: {str(error)[:2000]}"

    def work(conn: Connection) -> str:
        at = now or utcnow()
        sub, _ = _subscription_row(conn, project, subscription)
        row = _leased(conn, sub.id, lease_token)
        history = _noted(list(row.history or []), row.attempts, at, reason)
        if row.attempts >= sub.max_attempts:
            _set(conn, sub.id, row.seq, state=DEAD, lease_token=None, lease_until=None,
                 history=history, updated_at=at)
            return DEAD
        wait = backoff(row.attempts, sub.min_backoff_seconds, sub.max_backoff_seconds)
        _set(conn, sub.id, row.seq, state=PENDING, lease_token=None, lease_until=None,
             available_at=at + timedelta(seconds=wait), history=history, updated_at=at)
        wakeup.note(conn, sub.topic_id)  # waiters learn when it is due again
        return PENDING

    return store.retry_write(work)


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


# -- helpers ---------------------------------------------------------------------------------


def _check_message(topic: str, data: Any, ordering_key: str | None,
                   attributes: Mapping[str, str] | None
                   ) -> tuple[Any, str | None, dict[str, str]]:
    check_name(topic, "topic")
    data = check_data(data)
    if ordering_key is not None and (not isinstance(ordering_key, str) or not ordering_key
                                     or len(ordering_key) > 128
                                     or not ordering_key.isprintable()):
        raise InvalidArgument("ordering_key must be 1-128 printable characters",
                              field="ordering_key")
    clean: dict[str, str] = {}
    if attributes is not None:
        if not isinstance(attributes, Mapping) or len(attributes) > MAX_ATTRIBUTES:
            raise InvalidArgument(f"attributes must map at most {MAX_ATTRIBUTES} names to "
                                  "strings", field="attributes")
        for key, value in attributes.items():
            check_name(key, f"attributes.{key}")
            if not isinstance(value, str) or len(value) > MAX_ATTRIBUTE_VALUE:
                raise InvalidArgument(f"attributes.{key} must be a string of at most "
                                      f"{MAX_ATTRIBUTE_VALUE} characters",
                                      field=f"attributes.{key}")
            clean[key] = value
    return data, ordering_key, clean


def _bounded(field: str, value: Any) -> int:
    low, high, _ = LIMITS[field]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidArgument(f"{field} must be a whole number from {low} to {high}, got "
                              f"{value!r}", field=field)
    return value


def _insert_topic(conn: Connection, ctx: RequestContext, name: str, retention: int
                  ) -> Row[Any]:
    ensure_project(conn, ctx.project)
    return conn.execute(insert(event_topics).values(
        id=new_id(), project=ctx.project, name=name, retention_seconds=retention,
        created_at=utcnow(), created_by=ctx.actor).returning(*event_topics.c)).one()


def _topic_row(conn: Connection, project: str, name: str, *, missing_ok: bool = False
               ) -> Any:
    row = conn.execute(select(event_topics).where(event_topics.c.project == project,
                                                  event_topics.c.name == name)).first()
    if row is None and not missing_ok:
        raise NotFound(f"no topic {name!r} in project {project!r}", field="topic")
    return row


def _subscription_row(conn: Connection, project: str, name: str) -> tuple[Any, str]:
    row = conn.execute(_SUBSCRIPTION, {"project": project, "name": name}).first()
    if row is None:
        raise NotFound(f"no subscription {name!r} in project {project!r}",
                       field="subscription")
    return row, str(row.topic_name)


_SUBSCRIPTION = (
    select(event_subscriptions, event_topics.c.name.label("topic_name"))
    .join(event_topics, event_topics.c.id == event_subscriptions.c.topic_id)
    .where(event_subscriptions.c.project == bindparam("project"),
           event_subscriptions.c.name == bindparam("name")))


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


def _topic(row: Any) -> Topic:
    return Topic(id=row.id, project=row.project, name=row.name,
                 retention_seconds=row.retention_seconds, created_at=row.created_at)


def _subscription(row: Any, topic: str) -> Subscription:
    return Subscription(id=row.id, project=row.project, name=row.name, topic=topic,
                        max_attempts=row.max_attempts,
                        ack_deadline_seconds=row.ack_deadline_seconds,
                        min_backoff_seconds=row.min_backoff_seconds,
                        max_backoff_seconds=row.max_backoff_seconds,
                        created_at=row.created_at)


# -- waiting ---------------------------------------------------------------------------------


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
    earlier = exists().where(
        e.c.subscription_id == d.c.subscription_id, e.c.ordering_key == d.c.ordering_key,
        e.c.seq < d.c.seq, e.c.state.in_((PENDING, LEASED)))
    pending = select(func.min(d.c.available_at)).where(
        d.c.subscription_id == bindparam("sub"), d.c.state == PENDING,
        or_(d.c.ordering_key.is_(None), ~earlier)).scalar_subquery()
    leased = select(func.min(d.c.lease_until)).where(
        d.c.subscription_id == bindparam("sub"), d.c.state == LEASED).scalar_subquery()
    return select(case((pending.is_(None), leased), (leased.is_(None), pending),
                       (pending < leased, pending), else_=leased))


_NEXT_DUE = _next_due_query()

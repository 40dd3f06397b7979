"""Topics and subscriptions of the message bus: creating, reading, listing and deleting them,
with the bounds their settings must keep and the row lookups the rest of the bus shares.

A subscription receives a copy of every message published to its topic after it was created
(``publishing``); its settings (attempts, ack deadline, backoff) govern how ``delivery``
hands those copies out. Creating and deleting are audited, as every change of configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Row, bindparam, delete, insert, select

from shipyard import audit
from shipyard.context import RequestContext
from shipyard.errors import AlreadyExists, InvalidArgument, NotFound
from shipyard.events.models import Subscription, Topic
from shipyard.ids import new_id
from shipyard.store import Store
from shipyard.store.projects import ensure_project
from shipyard.store.schema import event_deliveries, event_subscriptions, event_topics
from shipyard.store.types import utcnow
from shipyard.validation import check_name

__all__ = [
    "DEFAULT_RETENTION", "LIMITS", "create_subscription", "create_topic",
    "delete_subscription", "get_subscription", "get_topic", "list_subscriptions",
    "list_topics", "subscribe_in",
]

DEFAULT_RETENTION = 7 * 86400
LIMITS = {  # field: (low, high, default)
    "max_attempts": (1, 100, 5),
    "ack_deadline_seconds": (1, 3600, 60),
    "min_backoff_seconds": (0, 600, 10),
    "max_backoff_seconds": (0, 3600, 600),
    "retention_seconds": (60, 31 * 86400, DEFAULT_RETENTION),
}


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



# -- shared with publishing, delivery and waiting (and triggers, push: through bus) ----------


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


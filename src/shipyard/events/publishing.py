"""Publishing to the message bus: a message is written once, with one delivery per
subscription of its topic (created if missing), in one transaction.

``publish_in(conn, ...)`` writes inside the caller's transaction (the outbox): the event is
committed with the change it announces, or not at all. Publishing is data, like metric points:
it is not audited message by message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, bindparam, insert, literal, select

from shipyard.context import RequestContext
from shipyard.errors import InvalidArgument
from shipyard.events import wakeup
from shipyard.events.delivery import NOTIFY, PENDING
from shipyard.events.models import check_data
from shipyard.events.topics import DEFAULT_RETENTION, _insert_topic
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
    "MAX_ATTRIBUTES", "MAX_ATTRIBUTE_VALUE", "has_subscriptions", "publish", "publish_in",
]

MAX_ATTRIBUTES = 32
MAX_ATTRIBUTE_VALUE = 1024


def publish(store: Store, ctx: RequestContext, topic: str, data: Any, *,
            ordering_key: str | None = None, attributes: Mapping[str, str] | None = None
            ) -> str:
    """Publish ``data`` (any JSON value) to ``topic`` (created if missing); the message id."""
    checked = _check_message(topic, data, ordering_key, attributes)
    published = store.driver_write(lambda cursor: _publish_fast(store, cursor, ctx, topic,
                                                                *checked))
    if published is not None:
        message_id, woken = published
        if woken is not None:  # committed: this process's waiters
            wakeup.signal_for(store.engine).bump((woken,))
        return message_id

    def work(conn: Connection) -> str:  # the topic is new: created with the message
        return _publish(conn, ctx, topic, *checked)

    return store.retry_write(work)


def _publish_fast(store: Store, cursor: Any, ctx: RequestContext, topic: str, data: Any,
                  ordering_key: str | None, attributes: dict[str, str]
                  ) -> tuple[str, str | None] | None:
    """``_publish`` on the driver's cursor (``Store.prepared``), for a topic that exists
    (None otherwise: ``publish`` then creates it with the message, audited, through
    ``_publish``). The message id, and the topic id when someone subscribes to it."""
    found = store.prepared(_TOPIC_ID).execute(
        cursor, {"project": ctx.project, "name": topic}).fetchone()
    if found is None:
        return None
    topic_id = found[0]
    now = utcnow()
    message_id = new_id()
    insert_message = store.prepared(_INSERT_MESSAGE_FAST)
    ((seq,),) = insert_message.rows(insert_message.execute(cursor, {
        "id": message_id, "topic_id": topic_id, "data": data, "attributes": attributes,
        "ordering_key": ordering_key, "published_at": now, "published_by": ctx.actor}))
    store.prepared(_FAN_OUT).execute(cursor, {"seq": seq, "ordering_key": ordering_key,
                                              "now": now, "topic_id": topic_id})
    if not cursor.rowcount:
        return message_id, None
    if not store.is_sqlite:  # other processes' waiters, on commit
        store.prepared(NOTIFY).execute(cursor, {"channel": wakeup.CHANNEL, "topic": topic_id})
    return message_id, topic_id


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
_INSERT_MESSAGE_FAST = insert(event_messages).values(
    {c.name: bindparam(c.name, type_=c.type) for c in event_messages.c if c.name != "seq"}
).returning(event_messages.c.seq)
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

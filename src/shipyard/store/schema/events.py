"""The events capability's tables: topics, subscriptions, messages and each subscription's
copy of each message (its delivery).

A message is written once; publishing also writes one delivery row per subscription of the
topic, in the same transaction (so a subscription sees exactly the messages published after
it was created, as in Pub/Sub). A delivery carries its own state, attempt count, lease and
history, so subscriptions never share progress. ``seq`` orders messages in the order their
inserts were made, which ordering keys and ``seek`` rely on.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
)

from shipyard.store.schema.base import ID, NAME, metadata
from shipyard.store.types import UTCDateTime

event_topics = Table(
    "event_topics",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("project", String(NAME), nullable=False),
    Column("name", String(NAME), nullable=False),
    Column("retention_seconds", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(NAME), nullable=True),
    UniqueConstraint("project", "name"),
)

event_subscriptions = Table(
    "event_subscriptions",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("project", String(NAME), nullable=False),
    Column("name", String(NAME), nullable=False),
    Column("topic_id", String(ID), ForeignKey("event_topics.id"), nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("ack_deadline_seconds", Integer, nullable=False),
    Column("min_backoff_seconds", Integer, nullable=False),
    Column("max_backoff_seconds", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(NAME), nullable=True),
    UniqueConstraint("project", "name"),
    Index("ix_event_subscriptions_topic_id", "topic_id"),
)

event_messages = Table(
    "event_messages",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("id", String(ID), nullable=False, unique=True),
    Column("topic_id", String(ID), ForeignKey("event_topics.id"), nullable=False),
    Column("data", JSON, nullable=False),
    Column("attributes", JSON, nullable=False),
    Column("ordering_key", String(NAME), nullable=True),
    Column("published_at", UTCDateTime(), nullable=False),
    Column("published_by", String(NAME), nullable=True),
    Index("ix_event_messages_topic_id_published_at", "topic_id", "published_at"),
)

event_deliveries = Table(
    "event_deliveries",
    metadata,
    Column("subscription_id", String(ID), ForeignKey("event_subscriptions.id"),
           primary_key=True),
    Column("seq", BigInteger().with_variant(Integer, "sqlite"),
           ForeignKey("event_messages.seq"), primary_key=True),
    Column("ordering_key", String(NAME), nullable=True),
    # pending (waiting for available_at), leased (until lease_until), acked or dead.
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("available_at", UTCDateTime(), nullable=False),
    # The id of the pull that leased it (a message's token is this id and its seq).
    Column("lease_token", String(ID), nullable=True),
    Column("lease_until", UTCDateTime(), nullable=True),
    Column("history", JSON, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index("ix_event_deliveries_subscription_id_state_available_at",
          "subscription_id", "state", "available_at"),
)

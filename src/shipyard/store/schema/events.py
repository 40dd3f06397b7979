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
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
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
    # The open deliveries (pending or leased) in order (migration 0015): acked and dead ones
    # stay until retention (for seek), so without it a pull walked every delivery the
    # subscription ever had. Queries name OPEN_DELIVERIES as written here to use it.
    Index("ix_event_deliveries_open", "subscription_id", "seq",
          sqlite_where=text("state IN ('pending', 'leased')"),
          postgresql_where=text("state IN ('pending', 'leased')")),
)


# -- schedules and triggers (migration 0009) --------------------------------------------------
# A schedule fires its action on a cron in a time zone. ``next_tick_at`` is the next tick not
# yet handled (UTC); a worker claims a due schedule (SKIP LOCKED on PostgreSQL), writes one
# row per tick it fires and moves ``next_tick_at`` on, in one transaction. The unique key
# (schedule_id, tick_at) makes a second row for one tick impossible, whatever the workers do.

event_schedules = Table(
    "event_schedules",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("project", String(NAME), nullable=False),
    Column("name", String(NAME), nullable=False),
    Column("cron", String(128), nullable=False),
    Column("timezone", String(64), nullable=False),
    # skip | run_once | catch_up (at most catch_up_max missed ticks)
    Column("misfire", String(16), nullable=False),
    Column("catch_up_max", Integer, nullable=False),
    Column("max_concurrent", Integer, nullable=False),
    Column("action", JSON, nullable=False),
    Column("paused", Boolean, nullable=False),
    Column("next_tick_at", UTCDateTime(), nullable=False),
    Column("last_tick_at", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(NAME), nullable=True),
    # The token that created it (the server's requests): its pipeline runs run isolated.
    Column("created_token", String(ID), nullable=True),
    UniqueConstraint("project", "name"),
    Index("ix_event_schedules_paused_next_tick_at", "paused", "next_tick_at"),
)

event_schedule_ticks = Table(
    "event_schedule_ticks",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("schedule_id", String(ID), ForeignKey("event_schedules.id"), nullable=False),
    Column("tick_at", UTCDateTime(), nullable=False),
    # claimed (a worker is to run it) | acting (its action is running) | done | failed |
    # skipped (the concurrency cap). A tick claimed but never started (its worker died) is
    # claimed again by another worker after a lease; only claimed -> acting starts it.
    Column("state", String(16), nullable=False),
    Column("worker", String(NAME), nullable=True),
    Column("claimed_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime(), nullable=True),
    Column("result", JSON, nullable=True),
    Column("error", Text, nullable=True),
    # The run a run_pipeline action queued: in flight (the concurrency cap) until it ends.
    Column("pipeline_run_id", String(ID), nullable=True),
    UniqueConstraint("schedule_id", "tick_at"),
    # Finding ticks left claimed or acting by a dead worker (migration 0014).
    Index("ix_event_schedule_ticks_state_claimed_at", "state", "claimed_at"),
)

# A trigger reads its own subscription to ``topic``; each message it acts on gets one firing
# row, unique by (trigger_id, idempotency_key = the message id), so a message delivered
# again never acts twice once its firing is done.

event_triggers = Table(
    "event_triggers",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("project", String(NAME), nullable=False),
    Column("name", String(NAME), nullable=False),
    Column("topic", String(NAME), nullable=False),
    Column("subscription_id", String(ID), ForeignKey("event_subscriptions.id"),
           nullable=False),
    Column("filter", JSON, nullable=False),
    Column("action", JSON, nullable=False),
    Column("cooldown_seconds", Integer, nullable=False),
    Column("paused", Boolean, nullable=False),
    Column("last_fired_at", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(NAME), nullable=True),
    Column("created_token", String(ID), nullable=True),
    UniqueConstraint("project", "name"),
)

event_trigger_firings = Table(
    "event_trigger_firings",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("trigger_id", String(ID), ForeignKey("event_triggers.id"), nullable=False),
    Column("idempotency_key", String(ID), nullable=False),
    # acting | done | failed (delivered again after the backoff) | skipped (cooldown)
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime(), nullable=True),
    Column("result", JSON, nullable=True),
    Column("error", Text, nullable=True),
    UniqueConstraint("trigger_id", "idempotency_key"),
)

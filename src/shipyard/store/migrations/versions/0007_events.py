"""events: topics, subscriptions, messages and deliveries

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03

Written by hand, as 0002-0006: four new tables, which SQLite and PostgreSQL both create as
they are; nothing existing changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shipyard.store.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # INTEGER PRIMARY KEY on SQLite
WHEN = shipyard.store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "event_topics",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("project", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("retention_seconds", sa.Integer(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_topics")),
        sa.UniqueConstraint("project", "name", name=op.f("uq_event_topics_project_name")),
    )
    op.create_table(
        "event_messages",
        sa.Column("seq", SEQ, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("topic_id", sa.String(length=32), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("ordering_key", sa.String(length=128), nullable=True),
        sa.Column("published_at", WHEN, nullable=False),
        sa.Column("published_by", sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(["topic_id"], ["event_topics.id"],
                                name=op.f("fk_event_messages_topic_id_event_topics")),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_event_messages")),
        sa.UniqueConstraint("id", name=op.f("uq_event_messages_id")),
    )
    op.create_index("ix_event_messages_topic_id_published_at", "event_messages",
                    ["topic_id", "published_at"], unique=False)
    op.create_table(
        "event_subscriptions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("project", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("topic_id", sa.String(length=32), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("ack_deadline_seconds", sa.Integer(), nullable=False),
        sa.Column("min_backoff_seconds", sa.Integer(), nullable=False),
        sa.Column("max_backoff_seconds", sa.Integer(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(["topic_id"], ["event_topics.id"],
                                name=op.f("fk_event_subscriptions_topic_id_event_topics")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_subscriptions")),
        sa.UniqueConstraint("project", "name",
                            name=op.f("uq_event_subscriptions_project_name")),
    )
    op.create_index("ix_event_subscriptions_topic_id", "event_subscriptions", ["topic_id"],
                    unique=False)
    op.create_table(
        "event_deliveries",
        sa.Column("subscription_id", sa.String(length=32), nullable=False),
        sa.Column("seq", SEQ, nullable=False),
        sa.Column("ordering_key", sa.String(length=128), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("available_at", WHEN, nullable=False),
        sa.Column("lease_token", sa.String(length=32), nullable=True),
        sa.Column("lease_until", WHEN, nullable=True),
        sa.Column("history", sa.JSON(), nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(["seq"], ["event_messages.seq"],
                                name=op.f("fk_event_deliveries_seq_event_messages")),
        sa.ForeignKeyConstraint(
            ["subscription_id"], ["event_subscriptions.id"],
            name=op.f("fk_event_deliveries_subscription_id_event_subscriptions")),
        sa.PrimaryKeyConstraint("subscription_id", "seq", name=op.f("pk_event_deliveries")),
    )
    op.create_index("ix_event_deliveries_subscription_id_state_available_at",
                    "event_deliveries", ["subscription_id", "state", "available_at"],
                    unique=False)


def downgrade() -> None:
    op.drop_index("ix_event_deliveries_subscription_id_state_available_at",
                  table_name="event_deliveries")
    op.drop_table("event_deliveries")
    op.drop_index("ix_event_subscriptions_topic_id", table_name="event_subscriptions")
    op.drop_table("event_subscriptions")
    op.drop_index("ix_event_messages_topic_id_published_at", table_name="event_messages")
    op.drop_table("event_messages")
    op.drop_table("event_topics")

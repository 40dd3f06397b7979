"""schedules and triggers

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03

Written by hand, as 0002-0008: four new tables (schedules and their ticks, triggers and
their firings), which SQLite and PostgreSQL both create as they are; nothing existing
changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shipyard.store.types

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

WHEN = shipyard.store.types.UTCDateTime(timezone=True)
ID = sa.String(length=32)
NAME = sa.String(length=128)


def upgrade() -> None:
    op.create_table(
        "event_schedules",
        sa.Column("id", ID, nullable=False),
        sa.Column("project", NAME, nullable=False),
        sa.Column("name", NAME, nullable=False),
        sa.Column("cron", sa.String(length=128), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("misfire", sa.String(length=16), nullable=False),
        sa.Column("catch_up_max", sa.Integer(), nullable=False),
        sa.Column("max_concurrent", sa.Integer(), nullable=False),
        sa.Column("action", sa.JSON(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("next_tick_at", WHEN, nullable=False),
        sa.Column("last_tick_at", WHEN, nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("created_by", NAME, nullable=True),
        sa.Column("created_token", ID, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_schedules")),
        sa.UniqueConstraint("project", "name", name=op.f("uq_event_schedules_project_name")),
    )
    op.create_index("ix_event_schedules_paused_next_tick_at", "event_schedules",
                    ["paused", "next_tick_at"], unique=False)
    op.create_table(
        "event_schedule_ticks",
        sa.Column("id", ID, nullable=False),
        sa.Column("schedule_id", ID, nullable=False),
        sa.Column("tick_at", WHEN, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("worker", NAME, nullable=True),
        sa.Column("claimed_at", WHEN, nullable=False),
        sa.Column("finished_at", WHEN, nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("pipeline_run_id", ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["schedule_id"], ["event_schedules.id"],
            name=op.f("fk_event_schedule_ticks_schedule_id_event_schedules")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_schedule_ticks")),
        sa.UniqueConstraint("schedule_id", "tick_at",
                            name=op.f("uq_event_schedule_ticks_schedule_id_tick_at")),
    )
    op.create_table(
        "event_triggers",
        sa.Column("id", ID, nullable=False),
        sa.Column("project", NAME, nullable=False),
        sa.Column("name", NAME, nullable=False),
        sa.Column("topic", NAME, nullable=False),
        sa.Column("subscription_id", ID, nullable=False),
        sa.Column("filter", sa.JSON(), nullable=False),
        sa.Column("action", sa.JSON(), nullable=False),
        sa.Column("cooldown_seconds", sa.Integer(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("last_fired_at", WHEN, nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("created_by", NAME, nullable=True),
        sa.Column("created_token", ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["subscription_id"], ["event_subscriptions.id"],
            name=op.f("fk_event_triggers_subscription_id_event_subscriptions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_triggers")),
        sa.UniqueConstraint("project", "name", name=op.f("uq_event_triggers_project_name")),
    )
    op.create_table(
        "event_trigger_firings",
        sa.Column("id", ID, nullable=False),
        sa.Column("trigger_id", ID, nullable=False),
        sa.Column("idempotency_key", ID, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("started_at", WHEN, nullable=False),
        sa.Column("finished_at", WHEN, nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["trigger_id"], ["event_triggers.id"],
            name=op.f("fk_event_trigger_firings_trigger_id_event_triggers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_trigger_firings")),
        sa.UniqueConstraint(
            "trigger_id", "idempotency_key",
            name=op.f("uq_event_trigger_firings_trigger_id_idempotency_key")),
    )


def downgrade() -> None:
    op.drop_table("event_trigger_firings")
    op.drop_table("event_triggers")
    op.drop_table("event_schedule_ticks")
    op.drop_index("ix_event_schedules_paused_next_tick_at", table_name="event_schedules")
    op.drop_table("event_schedules")

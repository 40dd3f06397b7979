"""event sources: push endpoints of subscriptions, data watches and the files they saw

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03

Written by hand, as 0002-0010: three new tables, which SQLite and PostgreSQL both create as
they are; nothing existing changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shipyard.store.types

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

WHEN = shipyard.store.types.UTCDateTime(timezone=True)
ID = sa.String(length=32)
NAME = sa.String(length=128)


def upgrade() -> None:
    op.create_table(
        "event_push_endpoints",
        sa.Column("subscription_id", ID, nullable=False),
        sa.Column("endpoint", sa.String(length=2048), nullable=False),
        sa.Column("timeout_seconds", sa.Integer(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("created_by", NAME, nullable=True),
        sa.ForeignKeyConstraint(
            ["subscription_id"], ["event_subscriptions.id"],
            name=op.f("fk_event_push_endpoints_subscription_id_event_subscriptions"),
            ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("subscription_id", name=op.f("pk_event_push_endpoints")),
    )
    op.create_table(
        "event_watches",
        sa.Column("id", ID, nullable=False),
        sa.Column("project", NAME, nullable=False),
        sa.Column("name", NAME, nullable=False),
        sa.Column("uri", sa.String(length=1024), nullable=False),
        sa.Column("interval_seconds", sa.Integer(), nullable=False),
        sa.Column("next_scan_at", WHEN, nullable=False),
        sa.Column("last_scan_at", WHEN, nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("created_by", NAME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_watches")),
        sa.UniqueConstraint("project", "name", name=op.f("uq_event_watches_project_name")),
    )
    op.create_table(
        "event_watch_files",
        sa.Column("watch_id", ID, nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("seen_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(["watch_id"], ["event_watches.id"],
                                name=op.f("fk_event_watch_files_watch_id_event_watches"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("watch_id", "path", name=op.f("pk_event_watch_files")),
    )


def downgrade() -> None:
    op.drop_table("event_watch_files")
    op.drop_table("event_watches")
    op.drop_table("event_push_endpoints")

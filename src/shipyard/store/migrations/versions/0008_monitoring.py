"""monitoring: monitors, their runs and alerts

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03

Written by hand, as 0002-0007: three new tables, which SQLite and PostgreSQL both create as
they are; nothing existing changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shipyard.store.types

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

WHEN = shipyard.store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "monitors",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("project", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("endpoint", sa.String(length=128), nullable=False),
        sa.Column("baseline_uri", sa.String(length=1024), nullable=True),
        sa.Column("baseline_profile", sa.LargeBinary(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("interval_seconds", sa.Integer(), nullable=False),
        sa.Column("next_run_at", WHEN, nullable=False),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("lease_until", WHEN, nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=True),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitors")),
        sa.UniqueConstraint("project", "name", name=op.f("uq_monitors_project_name")),
    )
    op.create_index("ix_monitors_state_next_run_at", "monitors", ["state", "next_run_at"],
                    unique=False)
    op.create_table(
        "monitor_runs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("monitor_id", sa.String(length=32), nullable=False),
        sa.Column("project", sa.String(length=128), nullable=False),
        sa.Column("window_start", WHEN, nullable=False),
        sa.Column("window_end", WHEN, nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("breached", sa.Boolean(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("error", sa.String(length=2000), nullable=True),
        sa.Column("started_at", WHEN, nullable=False),
        sa.Column("finished_at", WHEN, nullable=False),
        sa.Column("worker", sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(["monitor_id"], ["monitors.id"],
                                name=op.f("fk_monitor_runs_monitor_id_monitors")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_runs")),
        sa.UniqueConstraint("monitor_id", "window_end", "trigger",
                            name=op.f("uq_monitor_runs_monitor_id_window_end_trigger")),
    )
    op.create_table(
        "monitor_alerts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("project", sa.String(length=128), nullable=False),
        sa.Column("monitor_id", sa.String(length=32), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("message", sa.String(length=2000), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=True),
        sa.Column("model_version", sa.Integer(), nullable=True),
        sa.Column("baseline_uri", sa.String(length=1024), nullable=True),
        sa.Column("deliveries", sa.JSON(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("resolved_at", WHEN, nullable=True),
        sa.ForeignKeyConstraint(["monitor_id"], ["monitors.id"],
                                name=op.f("fk_monitor_alerts_monitor_id_monitors")),
        sa.ForeignKeyConstraint(["run_id"], ["monitor_runs.id"],
                                name=op.f("fk_monitor_alerts_run_id_monitor_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_alerts")),
        sa.UniqueConstraint("run_id", "kind", name=op.f("uq_monitor_alerts_run_id_kind")),
    )
    op.create_index("ix_monitor_alerts_monitor_id_state", "monitor_alerts",
                    ["monitor_id", "state"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_monitor_alerts_monitor_id_state", table_name="monitor_alerts")
    op.drop_table("monitor_alerts")
    op.drop_table("monitor_runs")
    op.drop_index("ix_monitors_state_next_run_at", table_name="monitors")
    op.drop_table("monitors")

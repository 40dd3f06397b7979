"""schedule ticks: an index to find the ticks a dead worker left claimed or acting

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03

Written by hand, as 0002-0013: one new index on event_schedule_ticks (state, claimed_at),
which SQLite and PostgreSQL both create as it is; nothing existing changes.
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_event_schedule_ticks_state_claimed_at", "event_schedule_ticks",
                    ["state", "claimed_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_event_schedule_ticks_state_claimed_at",
                  table_name="event_schedule_ticks")

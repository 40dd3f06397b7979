"""event deliveries: a partial index over the open ones (pending or leased), in order

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03

Written by hand, as 0002-0014. Acked and dead deliveries stay until their topic's retention
(seek replays them), so a pull that found the next deliverable message through the primary
key walked every delivery the subscription ever had: the bus slowed down as it was used.
The partial index holds just the open ones; SQLite (3.8+) and PostgreSQL both create it as
written, and nothing existing changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

OPEN = "state IN ('pending', 'leased')"


def upgrade() -> None:
    op.create_index("ix_event_deliveries_open", "event_deliveries", ["subscription_id", "seq"],
                    unique=False, sqlite_where=sa.text(OPEN), postgresql_where=sa.text(OPEN))


def downgrade() -> None:
    op.drop_index("ix_event_deliveries_open", table_name="event_deliveries")

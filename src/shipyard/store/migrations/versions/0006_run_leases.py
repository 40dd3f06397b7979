"""run leases: until when a tracking run's client vouches for it

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03

Written by hand, as 0002-0005: one nullable ``add_column`` that SQLite and PostgreSQL both
apply in place (runs of older releases, and of clients that never heartbeat, read NULL and
are never ended for silence).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shipyard.store.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column(
        "lease_until", shipyard.store.types.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("lease_until")

"""worker leases: until when a pipeline run's claimant vouches for it, and its recoveries

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03

Written by hand, as 0002: plain ``add_column``s that SQLite and PostgreSQL both apply in
place (``recoveries`` has a server default, so existing rows read 0).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shipyard.store.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("pipeline_runs", sa.Column(
        "lease_until", shipyard.store.types.UTCDateTime(timezone=True), nullable=True))
    op.add_column("pipeline_runs", sa.Column(
        "recoveries", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("pipeline_runs") as batch:
        batch.drop_column("recoveries")
        batch.drop_column("lease_until")

"""serving rollouts: deployments that follow their alias, and shadow deployments

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03

Written by hand, as 0002-0009: two ``add_column``s with server defaults (existing rows read
false), which SQLite and PostgreSQL both apply in place.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("endpoint_deployments", sa.Column(
        "follow_alias", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("endpoint_deployments", sa.Column(
        "shadow", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("endpoint_deployments") as batch:
        batch.drop_column("shadow")
        batch.drop_column("follow_alias")

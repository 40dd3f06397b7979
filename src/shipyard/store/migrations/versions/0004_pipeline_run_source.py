"""pipeline run source: where the code that started a pipeline run came from

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03

Written by hand, as 0002 and 0003: one nullable ``add_column`` that SQLite and PostgreSQL
both apply in place (rows of older releases read NULL: no source recorded).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("pipeline_runs", sa.Column("source", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pipeline_runs") as batch:
        batch.drop_column("source")

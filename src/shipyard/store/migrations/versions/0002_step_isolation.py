"""step isolation: project-bound tokens, the submitting principal of a run, the audit chain

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03

Written by hand: 0001 is frozen, and every later revision is a plain ``add_column`` that
SQLite and PostgreSQL both apply in place.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tokens", sa.Column("project", sa.String(length=128), nullable=True))
    op.add_column("pipeline_runs", sa.Column("principal", sa.String(length=128), nullable=True))
    op.add_column("audit_log", sa.Column("hash", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("hash")
    with op.batch_alter_table("pipeline_runs") as batch:
        batch.drop_column("principal")
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("project")

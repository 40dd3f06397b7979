"""serving runtime: where a deployment's replicas run (``local`` processes or ``ray`` Serve)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03

Written by hand, as 0002-0012: one ``add_column`` with a server default (existing rows read
``local``, where they ran before), which SQLite and PostgreSQL both apply in place.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("endpoint_deployments", sa.Column(
        "runtime", sa.String(length=16), nullable=False, server_default="local"))


def downgrade() -> None:
    with op.batch_alter_table("endpoint_deployments") as batch:
        batch.drop_column("runtime")

"""serving: endpoints and the model versions deployed to them

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

Written by hand, as 0002-0004: two new tables, which SQLite and PostgreSQL both create
as they are; nothing existing changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shipyard.store.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "endpoints",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("project", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("created_at", shipyard.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", shipyard.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_endpoints")),
        sa.UniqueConstraint("project", "name", name=op.f("uq_endpoints_project_name")),
    )
    op.create_table(
        "endpoint_deployments",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("endpoint_id", sa.String(length=32), nullable=False),
        sa.Column("model_id", sa.String(length=32), nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.String(length=32), nullable=False),
        sa.Column("alias", sa.String(length=128), nullable=True),
        sa.Column("traffic", sa.Integer(), nullable=False),
        sa.Column("min_replicas", sa.Integer(), nullable=False),
        sa.Column("max_replicas", sa.Integer(), nullable=False),
        sa.Column("created_at", shipyard.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(["endpoint_id"], ["endpoints.id"],
                                name=op.f("fk_endpoint_deployments_endpoint_id_endpoints")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_endpoint_deployments")),
        sa.UniqueConstraint("endpoint_id", "model_name", "version",
                            name=op.f("uq_endpoint_deployments_endpoint_id_model_name_version")),
    )
    with op.batch_alter_table("endpoint_deployments") as batch:
        batch.create_index("ix_endpoint_deployments_model_id", ["model_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("endpoint_deployments") as batch:
        batch.drop_index("ix_endpoint_deployments_model_id")
    op.drop_table("endpoint_deployments")
    op.drop_table("endpoints")

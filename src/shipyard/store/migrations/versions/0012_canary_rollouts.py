"""canary rollouts: a candidate deployment judged by the workers, promoted or rolled back

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03

Written by hand, as 0002-0011: one new table, which SQLite and PostgreSQL both create as it
is; nothing existing changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shipyard.store.types

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

WHEN = shipyard.store.types.UTCDateTime(timezone=True)
ID = sa.String(length=32)
NAME = sa.String(length=128)


def upgrade() -> None:
    op.create_table(
        "canary_rollouts",
        sa.Column("id", ID, nullable=False),
        sa.Column("project", NAME, nullable=False),
        sa.Column("endpoint", NAME, nullable=False),
        sa.Column("endpoint_id", ID, nullable=False),
        sa.Column("candidate", sa.String(length=300), nullable=False),
        sa.Column("champions", sa.JSON(), nullable=False),
        sa.Column("previous_traffic", sa.JSON(), nullable=False),
        sa.Column("percent", sa.Integer(), nullable=False),
        sa.Column("after_requests", sa.Integer(), nullable=False),
        sa.Column("criteria", sa.JSON(), nullable=False),
        sa.Column("promote_alias", NAME, nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("decision", sa.JSON(), nullable=True),
        sa.Column("started_at", WHEN, nullable=False),
        sa.Column("decided_at", WHEN, nullable=True),
        sa.Column("next_check_at", WHEN, nullable=False),
        sa.Column("lease_owner", NAME, nullable=True),
        sa.Column("lease_until", WHEN, nullable=True),
        sa.Column("created_by", NAME, nullable=True),
        sa.ForeignKeyConstraint(
            ["endpoint_id"], ["endpoints.id"],
            name=op.f("fk_canary_rollouts_endpoint_id_endpoints"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canary_rollouts")),
    )
    op.create_index("ix_canary_rollouts_project_endpoint", "canary_rollouts",
                    ["project", "endpoint"], unique=False)
    op.create_index("ix_canary_rollouts_state_next_check_at", "canary_rollouts",
                    ["state", "next_check_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_canary_rollouts_state_next_check_at", table_name="canary_rollouts")
    op.drop_index("ix_canary_rollouts_project_endpoint", table_name="canary_rollouts")
    op.drop_table("canary_rollouts")

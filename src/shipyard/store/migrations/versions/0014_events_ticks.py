"""placeholder for the events changes of session 8

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03

Written by hand, as 0002-0012.
"""

from __future__ import annotations

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

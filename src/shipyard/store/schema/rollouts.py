"""Durable canary rollouts: a candidate deployment given a share of an endpoint's traffic
and judged by the workers against the champions once it has served enough logged requests.

One row per rollout. ``previous_traffic`` is the split before the canary (what a rollback
restores); ``criteria`` the thresholds it is judged by; ``decision`` the figures and reasons
of the verdict. ``lease_owner``/``lease_until`` make one worker judge a rollout at a time;
``next_check_at`` spaces the checks of a rollout still waiting for requests.
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, String, Table

from shipyard.store.schema.base import ID, NAME, metadata
from shipyard.store.types import UTCDateTime

DEPLOYED_ID = 300  # "model:version"

canary_rollouts = Table(
    "canary_rollouts",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("project", String(NAME), nullable=False),
    Column("endpoint", String(NAME), nullable=False),
    # Deleting the endpoint deletes its rollouts.
    Column("endpoint_id", String(ID), ForeignKey("endpoints.id", ondelete="CASCADE"),
           nullable=False),
    Column("candidate", String(DEPLOYED_ID), nullable=False),
    Column("champions", JSON, nullable=False),  # list of deployed model ids
    Column("previous_traffic", JSON, nullable=False),  # deployed model id -> percentage
    Column("percent", Integer, nullable=False),
    Column("after_requests", Integer, nullable=False),
    Column("criteria", JSON, nullable=False),
    Column("promote_alias", String(NAME), nullable=True),
    Column("state", String(16), nullable=False),  # running, promoted, rolled_back
    Column("decision", JSON, nullable=True),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("decided_at", UTCDateTime(), nullable=True),
    Column("next_check_at", UTCDateTime(), nullable=False),
    Column("lease_owner", String(NAME), nullable=True),
    Column("lease_until", UTCDateTime(), nullable=True),
    Column("created_by", String(NAME), nullable=True),
    Index("ix_canary_rollouts_state_next_check_at", "state", "next_check_at"),
    Index("ix_canary_rollouts_project_endpoint", "project", "endpoint"),
)

"""The pipelines capability's tables: runs (also the work queue), their tasks, the step cache."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from shipyard.store.schema.base import ID, NAME, metadata
from shipyard.store.types import UTCDateTime

pipeline_runs = Table(
    "pipeline_runs",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("project", String(NAME), nullable=False),
    Column("pipeline_name", String(NAME), nullable=False),
    Column("state", String(16), nullable=False),
    Column("spec", JSON, nullable=False),
    Column("arguments", JSON, nullable=False),
    Column("options", JSON, nullable=False),
    Column("context_id", String(ID), nullable=True),
    Column("error", Text, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("started_at", UTCDateTime(), nullable=True),
    Column("finished_at", UTCDateTime(), nullable=True),
    Column("claimed_by", String(NAME), nullable=True),
    Column("heartbeat_at", UTCDateTime(), nullable=True),
    # Until when the claimant vouches for the run (each heartbeat moves it on); past it,
    # any worker recovers the run (``pipelines.queue``). NULL on rows of older releases.
    Column("lease_until", UTCDateTime(), nullable=True),
    # How many times the run was re-queued after its claimant died (bounds a run that
    # kills every worker that takes it).
    Column("recoveries", Integer, nullable=False, server_default="0"),
    Column("retry_of", String(ID), nullable=True),
    # The server principal that submitted the run (None: submitted in local mode). Its
    # steps run isolated, holding a token bound to the run's project (DESIGN.md 6).
    Column("principal", String(NAME), nullable=True),
    # Where the code that started the run came from (``tracking.source`` tags: git commit,
    # branch, remote, dirty tree, entry point, Python, packages); NULL when none was given.
    Column("source", JSON, nullable=True),
    Index("ix_pipeline_runs_project_created", "project", "created_at"),
    Index("ix_pipeline_runs_state", "state"),
)

pipeline_tasks = Table(
    "pipeline_tasks",
    metadata,
    Column("run_id", String(ID), ForeignKey("pipeline_runs.id"), primary_key=True),
    Column("name", String(256), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("cached", Boolean, nullable=False),
    Column("cache_key", String(64), nullable=True),
    Column("execution_id", String(ID), nullable=True),
    Column("outputs", JSON, nullable=False),
    Column("error", Text, nullable=True),
    Column("log_digest", String(64), nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("started_at", UTCDateTime(), nullable=True),
    Column("finished_at", UTCDateTime(), nullable=True),
)

cache_entries = Table(
    "pipeline_cache",
    metadata,
    Column("project", String(NAME), primary_key=True),
    Column("cache_key", String(64), primary_key=True),
    Column("execution_id", String(ID), nullable=True),
    Column("outputs", JSON, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

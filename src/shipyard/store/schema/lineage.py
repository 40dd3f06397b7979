"""The lineage capability's tables: the ML Metadata model (artifacts, executions, contexts
and the events, associations and attributions linking them)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
)

from shipyard.store.schema.base import ID, NAME, metadata
from shipyard.store.types import UTCDateTime

lineage_artifacts = Table(
    "lineage_artifacts",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("project", String(NAME), nullable=False),
    Column("type", String(64), nullable=False),
    Column("name", String(256), nullable=False),
    Column("uri", String(512), nullable=False),
    Column("digest", String(64), nullable=True),
    Column("size", BigInteger, nullable=True),
    Column("properties", JSON, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_lineage_artifacts_project_type", "project", "type"),
    Index("ix_lineage_artifacts_digest", "digest"),
)

executions = Table(
    "lineage_executions",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("project", String(NAME), nullable=False),
    Column("type", String(64), nullable=False),
    Column("name", String(256), nullable=False),
    Column("state", String(16), nullable=False),
    Column("properties", JSON, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index("ix_lineage_executions_project_type", "project", "type"),
)

contexts = Table(
    "lineage_contexts",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("project", String(NAME), nullable=False),
    Column("type", String(64), nullable=False),
    Column("name", String(256), nullable=False),
    Column("properties", JSON, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("project", "type", "name"),
)

events = Table(
    "lineage_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("execution_id", String(ID), ForeignKey("lineage_executions.id"), nullable=False),
    Column("artifact_id", String(ID), ForeignKey("lineage_artifacts.id"), nullable=False),
    Column("kind", String(8), nullable=False),  # "input" | "output"
    Column("name", String(256), nullable=False),  # the step's argument name
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_lineage_events_artifact", "artifact_id"),
    Index("ix_lineage_events_execution", "execution_id"),
)

associations = Table(  # context -> execution
    "lineage_associations",
    metadata,
    Column("context_id", String(ID), ForeignKey("lineage_contexts.id"), primary_key=True),
    Column("execution_id", String(ID), ForeignKey("lineage_executions.id"), primary_key=True),
    Index("ix_lineage_associations_execution", "execution_id"),
)

attributions = Table(  # context -> artifact
    "lineage_attributions",
    metadata,
    Column("context_id", String(ID), ForeignKey("lineage_contexts.id"), primary_key=True),
    Column("artifact_id", String(ID), ForeignKey("lineage_artifacts.id"), primary_key=True),
    Index("ix_lineage_attributions_artifact", "artifact_id"),
)

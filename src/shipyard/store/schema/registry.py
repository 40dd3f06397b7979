"""The model registry's tables: models, versions, aliases and the aliases' history."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from shipyard.store.schema.base import ID, NAME, metadata
from shipyard.store.types import UTCDateTime

models = Table(
    "models",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("project", String(NAME), nullable=False),
    Column("name", String(NAME), nullable=False),
    Column("description", Text, nullable=False),
    Column("labels", JSON, nullable=False),
    Column("next_version", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("project", "name"),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("model_id", String(ID), ForeignKey("models.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("semver", String(64), nullable=True),
    Column("description", Text, nullable=False),
    Column("labels", JSON, nullable=False),
    Column("metadata", JSON, nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("flavor", String(32), nullable=False),
    Column("tree_digest", String(64), nullable=False),
    Column("signature", JSON, nullable=True),
    Column("artifact_id", String(ID), nullable=True),
    Column("run_id", String(ID), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(NAME), nullable=True),
    UniqueConstraint("model_id", "version"),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column("model_id", String(ID), ForeignKey("models.id"), primary_key=True),
    Column("alias", String(NAME), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

alias_history = Table(
    "model_alias_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", String(ID), ForeignKey("models.id"), nullable=False),
    Column("alias", String(NAME), nullable=False),
    Column("from_version", Integer, nullable=True),
    Column("to_version", Integer, nullable=True),
    Column("actor", String(NAME), nullable=True),
    Column("reason", Text, nullable=False),
    Column("decision", JSON, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_model_alias_history_model_alias", "model_id", "alias"),
)

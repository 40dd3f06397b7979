"""Every table, on one ``MetaData``. Migrations in ``migrations/versions`` must match it
(a test compares them with Alembic's autogenerate).

Conventions: ids are 32-hex strings from ``shipyard.ids``; every resource row carries its
``project``; user-facing names are unique per project; JSON columns hold small documents
(properties, labels) and never bulk data.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from shipyard.store.types import UTCDateTime

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

ID = 32  # length of a server-made id
NAME = 128

projects = Table(
    "projects",
    metadata,
    Column("name", String(NAME), primary_key=True),
    Column("created_at", UTCDateTime(), nullable=False),
)

# ---- lineage: the ML Metadata model -------------------------------------------------------

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

# ---- experiment tracking ------------------------------------------------------------------

experiments = Table(
    "experiments",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("project", String(NAME), nullable=False),
    Column("name", String(NAME), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("context_id", String(ID), nullable=True),
    UniqueConstraint("project", "name"),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("project", String(NAME), nullable=False),
    Column("experiment_id", String(ID), ForeignKey("experiments.id"), nullable=False),
    Column("name", String(NAME), nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_time", UTCDateTime(), nullable=False),
    Column("end_time", UTCDateTime(), nullable=True),
    Column("execution_id", String(ID), nullable=True),
    Column("created_by", String(NAME), nullable=True),
    Index("ix_runs_project_experiment_start", "project", "experiment_id", "start_time"),
)

run_params = Table(
    "run_params",
    metadata,
    Column("run_id", String(ID), ForeignKey("runs.id"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

run_tags = Table(
    "run_tags",
    metadata,
    Column("run_id", String(ID), ForeignKey("runs.id"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

# Every logged point: the series by step and timestamp. No uniqueness: the same value may be
# logged twice at one step, as in MLflow; a rowid key keeps inserts append-only and fast.
run_metrics = Table(
    "run_metrics",
    metadata,
    Column(
        "id",
        Integer().with_variant(BigInteger, "postgresql"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("run_id", String(ID), ForeignKey("runs.id"), nullable=False),
    Column("key", String(250), nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),  # ms since the epoch
    Column("value", Float, nullable=False),
    # (run, step, key), not (run, key, step): a training loop logs many keys per step, and
    # this order puts all of a step's points on one index page, where key-first order
    # dirtied one page per key in every commit (four times the WAL bytes; bench/tracking.py).
    # A key's history is then an index-only scan of its run's entries, already in step order.
    Index("ix_run_metrics_run_step_key", "run_id", "step", "key"),
)

# The latest point per key, kept in the same transaction, so search never scans series.
run_latest_metrics = Table(
    "run_latest_metrics",
    metadata,
    Column("run_id", String(ID), ForeignKey("runs.id"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("value", Float, nullable=False),
    Index("ix_run_latest_metrics_key_value", "key", "value"),
)

run_artifacts = Table(
    "run_artifacts",
    metadata,
    Column("run_id", String(ID), ForeignKey("runs.id"), primary_key=True),
    Column("name", String(256), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),  # "file" | "tree"
    Column("artifact_id", String(ID), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
)

# ---- pipelines ----------------------------------------------------------------------------

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
    Column("retry_of", String(ID), nullable=True),
    # The server principal that submitted the run (None: submitted in local mode). Its
    # steps run isolated, holding a token bound to the run's project (DESIGN.md 6).
    Column("principal", String(NAME), nullable=True),
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

# ---- model registry -----------------------------------------------------------------------

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

# ---- security -----------------------------------------------------------------------------

principals = Table(
    "principals",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("name", String(NAME), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),  # "user" | "service"
    Column("password_hash", String(256), nullable=True),
    Column("is_admin", Boolean, nullable=False),
    Column("disabled", Boolean, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", String(32), primary_key=True),  # the public lookup part of the token
    Column("principal_id", String(ID), ForeignKey("principals.id"), nullable=False),
    Column("name", String(NAME), nullable=False),
    Column("hash", String(128), nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=True),
    Column("revoked_at", UTCDateTime(), nullable=True),
    # A token bound to one project (a pipeline step's): no role anywhere else, never admin.
    Column("project", String(NAME), nullable=True),
)

grants = Table(
    "grants",
    metadata,
    Column("principal_id", String(ID), ForeignKey("principals.id"), primary_key=True),
    Column("project", String(NAME), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

# Append-only: no code path updates or deletes rows here.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("time", UTCDateTime(), nullable=False),
    Column("actor", String(NAME), nullable=True),
    Column("token_id", String(32), nullable=True),
    Column("action", String(128), nullable=False),
    Column("resource", String(512), nullable=False),
    Column("project", String(NAME), nullable=True),
    Column("outcome", String(16), nullable=False),
    Column("request_id", String(64), nullable=True),
    Column("client", String(64), nullable=True),
    Column("detail", JSON, nullable=True),
    # sha256 over the previous row's hash and this row's fields: a deleted or edited row
    # breaks the chain (``shipyard audit verify``). None for rows written before 0002.
    Column("hash", String(64), nullable=True),
    Index("ix_audit_log_time", "time"),
    Index("ix_audit_log_project", "project"),
)

"""Experiment tracking's tables: experiments, runs, and their params, metrics, tags and
artifacts."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
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
    # Until when the run's client vouches for it (each SDK heartbeat moves it on); past it,
    # the worker ends the run KILLED. NULL: a client that does not heartbeat, never ended.
    Column("lease_until", UTCDateTime(), nullable=True),
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

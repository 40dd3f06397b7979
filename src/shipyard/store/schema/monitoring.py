"""The monitoring capability's tables: monitors (the desired configuration), their runs (one
row per window judged, written whole or not at all) and the alerts runs raise.

A monitor's baseline profile is kept with it (``baseline_profile``: the ``DataProfile``'s
compact bytes, at most 32 KB a feature); a run's result is a small JSON summary per feature
and objective, not the data. ``next_run_at`` and the lease (``lease_owner``,
``lease_until``) are how workers claim a due monitor: a run killed midway writes nothing, its
lease runs out and the window is judged again.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    UniqueConstraint,
)

from shipyard.store.schema.base import ID, NAME, metadata
from shipyard.store.types import UTCDateTime

URI = 1024

monitors = Table(
    "monitors",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("project", String(NAME), nullable=False),
    Column("name", String(NAME), nullable=False),
    Column("endpoint", String(NAME), nullable=False),
    Column("baseline_uri", String(URI), nullable=True),
    Column("baseline_profile", LargeBinary(), nullable=False),
    Column("config", JSON, nullable=False),
    Column("state", String(16), nullable=False),  # active or paused
    Column("interval_seconds", Integer, nullable=False),
    Column("next_run_at", UTCDateTime(), nullable=False),
    Column("lease_owner", String(NAME), nullable=True),
    Column("lease_until", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(NAME), nullable=True),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("project", "name"),
    Index("ix_monitors_state_next_run_at", "state", "next_run_at"),
)

monitor_runs = Table(
    "monitor_runs",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("monitor_id", String(ID), ForeignKey("monitors.id"), nullable=False),
    Column("project", String(NAME), nullable=False),
    Column("window_start", UTCDateTime(), nullable=False),
    Column("window_end", UTCDateTime(), nullable=False),
    Column("trigger", String(16), nullable=False),  # schedule or manual
    Column("state", String(16), nullable=False),  # succeeded or failed
    Column("breached", Boolean, nullable=False),
    Column("result", JSON, nullable=False),
    Column("error", String(2000), nullable=True),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime(), nullable=False),
    Column("worker", String(NAME), nullable=True),
    UniqueConstraint("monitor_id", "window_end", "trigger"),
)

monitor_alerts = Table(
    "monitor_alerts",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("project", String(NAME), nullable=False),
    Column("monitor_id", String(ID), ForeignKey("monitors.id"), nullable=False),
    Column("run_id", String(ID), ForeignKey("monitor_runs.id"), nullable=False),
    Column("kind", String(32), nullable=False),  # skew, drift, prediction_drift, latency...
    Column("severity", String(16), nullable=False),  # warning or critical
    Column("state", String(16), nullable=False),  # open or resolved
    Column("message", String(2000), nullable=False),
    Column("features", JSON, nullable=False),
    Column("model", String(NAME), nullable=True),
    Column("model_version", Integer, nullable=True),
    Column("baseline_uri", String(URI), nullable=True),
    Column("deliveries", JSON, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("resolved_at", UTCDateTime(), nullable=True),
    UniqueConstraint("run_id", "kind"),
    Index("ix_monitor_alerts_monitor_id_state", "monitor_id", "state"),
)

"""Every table, on one ``MetaData``: the aggregate of the per-capability modules beside it.

Each capability defines its tables in its own module (``lineage``, ``tracking``,
``pipelines``, ``registry``, ``serving``, ``rollouts``, ``security``, ``audit``; ``base`` holds the
``MetaData``, the naming convention and ``projects``). Importing this package imports them all, so
``metadata`` here is complete: Alembic's environment and the test that compares the
migrations with the tables use it. A new capability adds a module and one import line here.

Migrations in ``migrations/versions`` must match the tables (a test compares them with
Alembic's autogenerate); 0001 is frozen, later revisions are written by hand.

Conventions: ids are 32-hex strings from ``shipyard.ids``; every resource row carries its
``project``; user-facing names are unique per project; JSON columns hold small documents
(properties, labels) and never bulk data.
"""

from shipyard.store.schema.audit import audit_log
from shipyard.store.schema.base import ID, NAME, NAMING, metadata, projects
from shipyard.store.schema.event_sources import (
    event_push_endpoints,
    event_watch_files,
    event_watches,
)
from shipyard.store.schema.events import (
    event_deliveries,
    event_messages,
    event_schedule_ticks,
    event_schedules,
    event_subscriptions,
    event_topics,
    event_trigger_firings,
    event_triggers,
)
from shipyard.store.schema.lineage import (
    associations,
    attributions,
    contexts,
    events,
    executions,
    lineage_artifacts,
)
from shipyard.store.schema.monitoring import monitor_alerts, monitor_runs, monitors
from shipyard.store.schema.pipelines import cache_entries, pipeline_runs, pipeline_tasks
from shipyard.store.schema.registry import alias_history, model_aliases, model_versions, models
from shipyard.store.schema.rollouts import canary_rollouts
from shipyard.store.schema.security import grants, principals, tokens
from shipyard.store.schema.serving import endpoint_deployments, endpoints
from shipyard.store.schema.tracking import (
    experiments,
    run_artifacts,
    run_latest_metrics,
    run_metrics,
    run_params,
    run_tags,
    runs,
)

__all__ = [
    "ID",
    "NAME",
    "NAMING",
    "alias_history",
    "associations",
    "attributions",
    "audit_log",
    "cache_entries",
    "canary_rollouts",
    "contexts",
    "endpoint_deployments",
    "endpoints",
    "event_deliveries",
    "event_messages",
    "event_push_endpoints",
    "event_schedule_ticks",
    "event_schedules",
    "event_subscriptions",
    "event_topics",
    "event_trigger_firings",
    "event_triggers",
    "event_watch_files",
    "event_watches",
    "events",
    "executions",
    "experiments",
    "grants",
    "lineage_artifacts",
    "metadata",
    "model_aliases",
    "model_versions",
    "models",
    "monitor_alerts",
    "monitor_runs",
    "monitors",
    "pipeline_runs",
    "pipeline_tasks",
    "principals",
    "projects",
    "run_artifacts",
    "run_latest_metrics",
    "run_metrics",
    "run_params",
    "run_tags",
    "runs",
    "tokens",
]

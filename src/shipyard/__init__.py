"""Shipyard: self-hosted MLOps. ``import shipyard as sy``.

The SDK functions are loaded on first use, so ``import shipyard`` stays quick and has no
side effects; ``dir(shipyard)`` (and a notebook's tab completion) lists them.
"""

import importlib as _importlib
import typing as _typing

__version__ = "0.1.0"

# Each public name and the module of shipyard.sdk (one per capability) that defines it.
_EXPORTS = {
    "init": "session",
    # tracking
    "start_run": "tracking",
    "get_run": "tracking",
    "search_runs": "tracking",
    "compare_runs": "tracking",
    "get_metric_history": "tracking",
    "download_artifact": "tracking",
    # lineage
    "get_lineage": "lineage",
    "get_artifact": "lineage",
    "get_execution": "lineage",
    "list_artifacts": "lineage",
    "list_executions": "lineage",
    "list_contexts": "lineage",
    # audit
    "list_audit_events": "audit",
    "verify_audit_log": "audit",
    # registry
    "register_model": "registry",
    "get_model": "registry",
    "get_model_version": "registry",
    "resolve_model": "registry",
    "list_models": "registry",
    "list_model_versions": "registry",
    "set_alias": "registry",
    "delete_alias": "registry",
    "alias_history": "registry",
    "rollback_alias": "registry",
    "set_model_status": "registry",
    "promote_if_better": "registry",
    "load_model": "registry",
    "download_model": "registry",
    # pipelines
    "run_pipeline": "pipelines",
    "compile_pipeline": "pipelines",
    "get_pipeline_run": "pipelines",
    "list_pipeline_runs": "pipelines",
    "retry_pipeline_run": "pipelines",
    "cancel_pipeline_run": "pipelines",
    "get_task_log": "pipelines",
    # serving
    "create_endpoint": "serving",
    "get_endpoint": "serving",
    "list_endpoints": "serving",
    "delete_endpoint": "serving",
    # batch prediction
    "batch_predict": "batch",
    # monitoring
    "detect_drift": "monitoring",
    "create_monitor": "monitoring",
    "get_monitor": "monitoring",
    "list_monitors": "monitoring",
    "delete_monitor": "monitoring",
    "list_alerts": "monitoring",
    "monitoring_stats": "monitoring",
    # events
    "publish": "events",
    "create_schedule": "automation",
    "create_trigger": "automation",
    "delete_schedule": "automation",
    "delete_trigger": "automation",
    "enable_retraining": "automation",
    "get_schedule": "automation",
    "get_trigger": "automation",
    "list_schedules": "automation",
    "list_triggers": "automation",
    "pause_schedule": "automation",
    "pause_trigger": "automation",
    "resume_schedule": "automation",
    "resume_trigger": "automation",
    "schedule_ticks": "automation",
    "trigger_firings": "automation",
    "subscribe": "events",
    "list_topics": "events",
    "list_subscriptions": "events",
    "dead_letters": "events",
    "set_push_endpoint": "events",
    "get_push_endpoint": "events",
    "create_watch": "events",
    "list_watches": "events",
    "delete_watch": "events",
}

__all__ = [
    "__version__",
    "actions",
    "aiplatform",
    "alias_history",
    "batch_predict",
    "cancel_pipeline_run",
    "compare_runs",
    "compile_pipeline",
    "create_endpoint",
    "create_monitor",
    "create_schedule",
    "create_trigger",
    "create_watch",
    "dead_letters",
    "delete_alias",
    "delete_endpoint",
    "delete_monitor",
    "delete_schedule",
    "delete_trigger",
    "delete_watch",
    "detect_drift",
    "download_artifact",
    "download_model",
    "dsl",
    "enable_retraining",
    "get_artifact",
    "get_endpoint",
    "get_execution",
    "get_lineage",
    "get_metric_history",
    "get_model",
    "get_model_version",
    "get_monitor",
    "get_pipeline_run",
    "get_push_endpoint",
    "get_run",
    "get_schedule",
    "get_task_log",
    "get_trigger",
    "init",
    "list_alerts",
    "list_artifacts",
    "list_audit_events",
    "list_contexts",
    "list_endpoints",
    "list_executions",
    "list_model_versions",
    "list_models",
    "list_monitors",
    "list_pipeline_runs",
    "list_schedules",
    "list_subscriptions",
    "list_topics",
    "list_triggers",
    "list_watches",
    "load_model",
    "monitoring_stats",
    "pause_schedule",
    "pause_trigger",
    "promote_if_better",
    "publish",
    "register_model",
    "resolve_model",
    "resume_schedule",
    "resume_trigger",
    "retry_pipeline_run",
    "rollback_alias",
    "run_pipeline",
    "schedule_ticks",
    "search_runs",
    "set_alias",
    "set_model_status",
    "set_push_endpoint",
    "start_run",
    "subscribe",
    "trigger_firings",
    "verify_audit_log",
]

if _typing.TYPE_CHECKING:  # what __getattr__ below returns, for type checkers and IDEs
    from shipyard import actions as actions
    from shipyard import aiplatform as aiplatform
    from shipyard import dsl as dsl
    from shipyard.sdk.audit import (
        list_audit_events as list_audit_events,
    )
    from shipyard.sdk.audit import (
        verify_audit_log as verify_audit_log,
    )
    from shipyard.sdk.automation import create_schedule as create_schedule
    from shipyard.sdk.automation import create_trigger as create_trigger
    from shipyard.sdk.automation import delete_schedule as delete_schedule
    from shipyard.sdk.automation import delete_trigger as delete_trigger
    from shipyard.sdk.automation import get_schedule as get_schedule
    from shipyard.sdk.automation import get_trigger as get_trigger
    from shipyard.sdk.automation import list_schedules as list_schedules
    from shipyard.sdk.automation import list_triggers as list_triggers
    from shipyard.sdk.automation import pause_schedule as pause_schedule
    from shipyard.sdk.automation import pause_trigger as pause_trigger
    from shipyard.sdk.automation import resume_schedule as resume_schedule
    from shipyard.sdk.automation import resume_trigger as resume_trigger
    from shipyard.sdk.automation import schedule_ticks as schedule_ticks
    from shipyard.sdk.automation import trigger_firings as trigger_firings
    from shipyard.sdk.batch import batch_predict as batch_predict
    from shipyard.sdk.events import create_watch as create_watch
    from shipyard.sdk.events import dead_letters as dead_letters
    from shipyard.sdk.events import delete_watch as delete_watch
    from shipyard.sdk.events import get_push_endpoint as get_push_endpoint
    from shipyard.sdk.events import list_subscriptions as list_subscriptions
    from shipyard.sdk.events import list_topics as list_topics
    from shipyard.sdk.events import list_watches as list_watches
    from shipyard.sdk.events import publish as publish
    from shipyard.sdk.events import set_push_endpoint as set_push_endpoint
    from shipyard.sdk.events import subscribe as subscribe
    from shipyard.sdk.lineage import (
        get_artifact as get_artifact,
    )
    from shipyard.sdk.lineage import (
        get_execution as get_execution,
    )
    from shipyard.sdk.lineage import (
        get_lineage as get_lineage,
    )
    from shipyard.sdk.lineage import (
        list_artifacts as list_artifacts,
    )
    from shipyard.sdk.lineage import (
        list_contexts as list_contexts,
    )
    from shipyard.sdk.lineage import (
        list_executions as list_executions,
    )
    from shipyard.sdk.monitoring import create_monitor as create_monitor
    from shipyard.sdk.monitoring import delete_monitor as delete_monitor
    from shipyard.sdk.monitoring import (
        detect_drift as detect_drift,
    )
    from shipyard.sdk.monitoring import get_monitor as get_monitor
    from shipyard.sdk.monitoring import list_alerts as list_alerts
    from shipyard.sdk.monitoring import list_monitors as list_monitors
    from shipyard.sdk.monitoring import monitoring_stats as monitoring_stats
    from shipyard.sdk.pipelines import (
        cancel_pipeline_run as cancel_pipeline_run,
    )
    from shipyard.sdk.pipelines import (
        compile_pipeline as compile_pipeline,
    )
    from shipyard.sdk.pipelines import (
        get_pipeline_run as get_pipeline_run,
    )
    from shipyard.sdk.pipelines import (
        get_task_log as get_task_log,
    )
    from shipyard.sdk.pipelines import (
        list_pipeline_runs as list_pipeline_runs,
    )
    from shipyard.sdk.pipelines import (
        retry_pipeline_run as retry_pipeline_run,
    )
    from shipyard.sdk.pipelines import (
        run_pipeline as run_pipeline,
    )
    from shipyard.sdk.registry import (
        alias_history as alias_history,
    )
    from shipyard.sdk.registry import (
        delete_alias as delete_alias,
    )
    from shipyard.sdk.registry import (
        download_model as download_model,
    )
    from shipyard.sdk.registry import (
        get_model as get_model,
    )
    from shipyard.sdk.registry import (
        get_model_version as get_model_version,
    )
    from shipyard.sdk.registry import (
        list_model_versions as list_model_versions,
    )
    from shipyard.sdk.registry import (
        list_models as list_models,
    )
    from shipyard.sdk.registry import (
        load_model as load_model,
    )
    from shipyard.sdk.registry import (
        promote_if_better as promote_if_better,
    )
    from shipyard.sdk.registry import (
        register_model as register_model,
    )
    from shipyard.sdk.registry import (
        resolve_model as resolve_model,
    )
    from shipyard.sdk.registry import (
        rollback_alias as rollback_alias,
    )
    from shipyard.sdk.registry import (
        set_alias as set_alias,
    )
    from shipyard.sdk.registry import (
        set_model_status as set_model_status,
    )
    from shipyard.sdk.serving import (
        create_endpoint as create_endpoint,
    )
    from shipyard.sdk.serving import (
        delete_endpoint as delete_endpoint,
    )
    from shipyard.sdk.serving import (
        get_endpoint as get_endpoint,
    )
    from shipyard.sdk.serving import (
        list_endpoints as list_endpoints,
    )
    from shipyard.sdk.session import init as init
    from shipyard.sdk.tracking import (
        compare_runs as compare_runs,
    )
    from shipyard.sdk.tracking import (
        download_artifact as download_artifact,
    )
    from shipyard.sdk.tracking import (
        get_metric_history as get_metric_history,
    )
    from shipyard.sdk.tracking import (
        get_run as get_run,
    )
    from shipyard.sdk.tracking import (
        search_runs as search_runs,
    )
    from shipyard.sdk.tracking import (
        start_run as start_run,
    )


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is not None:
        return getattr(_importlib.import_module(f"shipyard.sdk.{module}"), name)
    if name in ("dsl", "aiplatform", "actions"):
        return _importlib.import_module(f"shipyard.{name}")
    raise AttributeError(f"module 'shipyard' has no attribute {name!r}")


def __dir__() -> list[str]:
    return list(__all__)

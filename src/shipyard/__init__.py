"""Shipyard: self-hosted MLOps. ``import shipyard as sy``.

The SDK functions are loaded on first use, so ``import shipyard`` stays quick and has no
side effects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_REGISTRY = {
    "register_model", "get_model", "get_model_version", "resolve_model", "list_models",
    "list_model_versions", "set_alias", "delete_alias", "alias_history", "rollback_alias",
    "set_model_status", "promote_if_better", "load_model", "download_model",
    "run_pipeline", "compile_pipeline", "get_pipeline_run", "list_pipeline_runs",
    "retry_pipeline_run", "cancel_pipeline_run", "get_task_log",
}

_FACADE = {
    "init", "start_run", "get_run", "search_runs", "compare_runs", "get_metric_history",
    "download_artifact", "get_lineage", "get_artifact", "list_artifacts", "list_executions",
    "list_contexts", "list_audit_events", "verify_audit_log",
}

__all__ = [
    "__version__",
    "alias_history",
    "cancel_pipeline_run",
    "compare_runs",
    "compile_pipeline",
    "delete_alias",
    "download_artifact",
    "download_model",
    "dsl",
    "get_artifact",
    "get_lineage",
    "get_metric_history",
    "get_model",
    "get_model_version",
    "get_pipeline_run",
    "get_run",
    "get_task_log",
    "init",
    "list_artifacts",
    "list_audit_events",
    "list_contexts",
    "list_executions",
    "list_model_versions",
    "list_models",
    "list_pipeline_runs",
    "load_model",
    "promote_if_better",
    "register_model",
    "resolve_model",
    "retry_pipeline_run",
    "rollback_alias",
    "run_pipeline",
    "search_runs",
    "set_alias",
    "set_model_status",
    "start_run",
    "verify_audit_log",
]

if TYPE_CHECKING:  # what the lazy __getattr__ below returns, for type checkers and IDEs
    from shipyard import dsl
    from shipyard.sdk.facade import (
        compare_runs,
        download_artifact,
        get_artifact,
        get_lineage,
        get_metric_history,
        get_run,
        init,
        list_artifacts,
        list_audit_events,
        list_contexts,
        list_executions,
        search_runs,
        start_run,
        verify_audit_log,
    )
    from shipyard.sdk.facade_registry import (
        alias_history,
        cancel_pipeline_run,
        compile_pipeline,
        delete_alias,
        download_model,
        get_model,
        get_model_version,
        get_pipeline_run,
        get_task_log,
        list_model_versions,
        list_models,
        list_pipeline_runs,
        load_model,
        promote_if_better,
        register_model,
        resolve_model,
        retry_pipeline_run,
        rollback_alias,
        run_pipeline,
        set_alias,
        set_model_status,
    )


def __getattr__(name: str) -> Any:
    if name in _FACADE:
        from shipyard.sdk import facade

        return getattr(facade, name)
    if name in _REGISTRY:
        from shipyard.sdk import facade_registry

        return getattr(facade_registry, name)
    if name == "dsl":
        import importlib

        return importlib.import_module("shipyard.dsl")
    raise AttributeError(f"module 'shipyard' has no attribute {name!r}")

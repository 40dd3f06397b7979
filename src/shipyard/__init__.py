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
    "list_contexts",
}

__all__ = sorted(_FACADE | _REGISTRY | {"__version__", "dsl"})

if TYPE_CHECKING:
    from shipyard import dsl as dsl
    from shipyard.sdk.facade import (
        compare_runs as compare_runs,
    )
    from shipyard.sdk.facade import (
        download_artifact as download_artifact,
    )
    from shipyard.sdk.facade import (
        get_artifact as get_artifact,
    )
    from shipyard.sdk.facade import (
        get_lineage as get_lineage,
    )
    from shipyard.sdk.facade import (
        get_metric_history as get_metric_history,
    )
    from shipyard.sdk.facade import (
        get_run as get_run,
    )
    from shipyard.sdk.facade import (
        init as init,
    )
    from shipyard.sdk.facade import (
        list_artifacts as list_artifacts,
    )
    from shipyard.sdk.facade import (
        list_contexts as list_contexts,
    )
    from shipyard.sdk.facade import (
        list_executions as list_executions,
    )
    from shipyard.sdk.facade import (
        search_runs as search_runs,
    )
    from shipyard.sdk.facade import (
        start_run as start_run,
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

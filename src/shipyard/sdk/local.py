"""Local mode: the SDK calls the services directly on the configured store."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from shipyard import audit as audit_log
from shipyard.config import Settings
from shipyard.context import RequestContext
from shipyard.lineage import queries
from shipyard.lineage.models import ArtifactNode, ContextNode, ExecutionNode, LineageGraph
from shipyard.runtime import open_runtime
from shipyard.sdk.backend import MetricTuple
from shipyard.sdk.local_pipelines import LocalPipelines
from shipyard.sdk.local_registry import LocalRegistry
from shipyard.store import Store
from shipyard.tracking import artifacts as run_artifacts
from shipyard.tracking import search, service
from shipyard.tracking.models import Experiment, MetricPoint, RunArtifact, RunData, RunPage


class LocalBackend(LocalRegistry, LocalPipelines):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.project = settings.project
        self.runtime = open_runtime(settings)
        self.store: Store = self.runtime.store
        self.artifacts = self.runtime.artifacts
        self.deployments = self.runtime.hooks.deployments()
        self._actor = RequestContext(project=self.project).actor

    def ctx(self) -> RequestContext:
        # The OS user is looked up once: it costs more than a whole metric write otherwise.
        return RequestContext(project=self.project, actor=self._actor)

    # -- tracking ----------------------------------------------------------------------------
    def create_experiment(self, name: str) -> Experiment:
        return service.get_or_create_experiment(self.store, self.ctx(), name)

    def list_experiments(self) -> list[Experiment]:
        return service.list_experiments(self.store, self.project)

    def create_run(self, experiment: str, *, name: str | None = None,
                   tags: Mapping[str, str] | None = None,
                   params: Mapping[str, Any] | None = None) -> RunData:
        return service.create_run(self.store, self.ctx(), experiment, name=name, tags=tags,
                                  params=params)

    def log_batch(self, run_id: str, *, metrics: Sequence[MetricTuple] = (),
                  params: Mapping[str, Any] | None = None,
                  tags: Mapping[str, str] | None = None) -> None:
        service.log_batch(self.store, self.ctx(), run_id, metrics=metrics, params=params,
                          tags=tags)

    def terminate_run(self, run_id: str, status: str = "FINISHED") -> RunData:
        return service.set_terminated(self.store, self.ctx(), run_id, status)

    def get_run(self, run_id: str) -> RunData:
        return service.get_run(self.store, self.project, run_id)

    def search_runs(self, *, experiments: Sequence[str] | None = None,
                    filter: str | None = None, order_by: Sequence[str] | None = None,
                    max_results: int = 1000, page_token: str | None = None) -> RunPage:
        return search.search_runs(self.store, self.project, experiments_=experiments,
                                  filter=filter, order_by=order_by, max_results=max_results,
                                  page_token=page_token)

    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        return service.metric_history(self.store, self.project, run_id, key)

    def log_artifact(self, run_id: str, path: str | os.PathLike[str],
                     name: str | None = None) -> RunArtifact:
        service.require_run(self.store, self.project, run_id)
        return run_artifacts.log_artifact_path(self.store, self.artifacts, self.ctx(), run_id,
                                               path, name=name)

    def download_artifact(self, run_id: str, name: str, dest: str | os.PathLike[str]) -> Path:
        return run_artifacts.download(self.store, self.artifacts, self.project, run_id, name,
                                      dest)

    # -- lineage -----------------------------------------------------------------------------
    def get_artifact(self, artifact_id: str) -> ArtifactNode:
        return queries.get_artifact(self.store, self.project, artifact_id)

    def lineage_graph(self, artifact_id: str, direction: str = "upstream",
                      depth: int = queries.MAX_DEPTH) -> LineageGraph:
        return queries.graph(self.store, self.project, artifact_id,
                             direction=direction,  # type: ignore[arg-type]
                             depth=depth)

    def list_artifacts(self, *, type: str | None = None, name: str | None = None,
                       context_id: str | None = None, limit: int = 100) -> list[ArtifactNode]:
        return queries.list_artifacts(self.store, self.project, type=type, name=name,
                                      context_id=context_id, limit=limit)

    def get_execution(self, execution_id: str) -> ExecutionNode:
        return queries.get_execution(self.store, self.project, execution_id)

    def list_executions(self, *, context_id: str | None = None, type: str | None = None,
                        limit: int = 100) -> list[ExecutionNode]:
        return queries.list_executions(self.store, self.project, context_id=context_id,
                                       type=type, limit=limit)

    def list_contexts(self, *, type: str | None = None, limit: int = 100) -> list[ContextNode]:
        return queries.list_contexts(self.store, self.project, type=type, limit=limit)

    def audit(self, **filters: Any) -> list[dict[str, Any]]:
        return audit_log.query(self.store, project=self.project, **filters)

    def verify_audit(self) -> dict[str, Any]:
        return dataclasses.asdict(audit_log.verify(self.store))

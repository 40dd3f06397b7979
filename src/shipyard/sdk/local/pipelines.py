"""Pipelines in local mode (the local ``PipelinesPort``): the runner executes in, and
under, the calling process."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from shipyard.pipelines import runner, runs
from shipyard.pipelines.models import PipelineRun
from shipyard.pipelines.port import Executor

if TYPE_CHECKING:
    from shipyard.sdk.local import Scope


class LocalPipelines:
    def __init__(self, scope: Scope) -> None:
        self._s = scope
        self._store = scope.store
        self._project = scope.project

    def run_pipeline(self, pipeline_or_yaml: Any, arguments: Mapping[str, Any] | None = None,
                     *, enable_caching: bool = True, parallelism: int | None = None,
                     inline: bool = False, raise_on_error: bool = True, submit: bool = False,
                     max_cache_age: float | None = None, executor: Executor = "process",
                     source: Mapping[str, str] | None = None) -> PipelineRun:
        return runner.run_pipeline(
            self._store, self._s.artifacts, self._s.ctx(), pipeline_or_yaml,
            dict(arguments) if arguments else None, settings=self._s.settings,
            backend=executor, enable_caching=enable_caching, parallelism=parallelism,
            inline=inline, raise_on_error=raise_on_error, submit=submit,
            max_cache_age=max_cache_age, source=dict(source) if source else None)

    def get_pipeline_run(self, run_id: str) -> PipelineRun:
        return runs.get_pipeline_run(self._store, self._project, run_id)

    def list_pipeline_runs(self, *, pipeline_name: str | None = None, state: str | None = None,
                           limit: int = 100) -> list[PipelineRun]:
        return runs.list_pipeline_runs(self._store, self._project,
                                       pipeline_name=pipeline_name, state=state, limit=limit)

    def retry_pipeline_run(self, run_id: str, *, raise_on_error: bool = True) -> PipelineRun:
        return runner.retry_pipeline_run(self._store, self._s.artifacts, self._s.ctx(), run_id,
                                         raise_on_error=raise_on_error,
                                         settings=self._s.settings)

    def cancel_pipeline_run(self, run_id: str, *, force: bool = False) -> PipelineRun:
        return runs.cancel_pipeline_run(self._store, self._s.ctx(), run_id, force=force)

    def get_task_log(self, run_id: str, task: str) -> str:
        return runs.get_task_log(self._store, self._s.artifacts, self._project, run_id, task)

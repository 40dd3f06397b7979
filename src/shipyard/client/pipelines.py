"""Remote mode for pipelines: the run is compiled here and queued on the server, whose
worker runs it; ``run_pipeline`` then follows it to the end unless ``submit=True``."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter

from shipyard.client.http import HttpClient, path_id
from shipyard.errors import InvalidArgument
from shipyard.pipelines.errors import PipelineRunFailed
from shipyard.pipelines.models import TERMINAL_RUN_STATES, PipelineRun, check_source
from shipyard.pipelines.port import Executor


class HttpPipelines:
    def __init__(self, client: HttpClient) -> None:
        self._c = client

    def _r(self, run_id: str, rest: str = "") -> str:
        return self._c.project_path(f"/pipelines/runs/{path_id(run_id, 'run_id')}{rest}")

    def run_pipeline(self, pipeline_or_yaml: Any, arguments: Mapping[str, Any] | None = None,
                     *, enable_caching: bool = True, parallelism: int | None = None,
                     inline: bool = False, raise_on_error: bool = True, submit: bool = False,
                     max_cache_age: float | None = None, executor: Executor = "process",
                     source: Mapping[str, str] | None = None) -> PipelineRun:
        from shipyard.pipelines.compiler import dump_spec, to_spec

        if inline:
            raise InvalidArgument("inline runs execute in this process: use local mode "
                                  "(a sqlite:// or postgresql:// URI) to debug a pipeline",
                                  field="inline")
        spec, _ = to_spec(pipeline_or_yaml)
        body = {"spec": dump_spec(spec), "arguments": dict(arguments) if arguments else None,
                "enable_caching": enable_caching, "parallelism": parallelism,
                "max_cache_age": max_cache_age, "executor": executor,
                "source": check_source(dict(source) if source else None) or None}
        run = PipelineRun.model_validate(
            self._c.json("POST", self._c.project_path("/pipelines/runs"), json=body))
        if submit:
            return run
        return self.wait_pipeline_run(run.id, raise_on_error=raise_on_error)

    def wait_pipeline_run(self, run_id: str, *, raise_on_error: bool = True,
                          timeout: float | None = None) -> PipelineRun:
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.1
        while True:
            run = self.get_pipeline_run(run_id)
            if run.state in TERMINAL_RUN_STATES:
                break
            if deadline is not None and time.monotonic() > deadline:
                return run
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)
        if run.state != "SUCCEEDED" and raise_on_error:
            raise PipelineRunFailed(run)
        return run

    def get_pipeline_run(self, run_id: str) -> PipelineRun:
        return PipelineRun.model_validate(self._c.json("GET", self._r(run_id)))

    def list_pipeline_runs(self, *, pipeline_name: str | None = None, state: str | None = None,
                           limit: int = 100) -> list[PipelineRun]:
        params = {k: v for k, v in {"pipeline_name": pipeline_name, "state": state,
                                    "limit": limit}.items() if v is not None}
        return TypeAdapter(list[PipelineRun]).validate_python(
            self._c.json("GET", self._c.project_path("/pipelines/runs"), params=params))

    def retry_pipeline_run(self, run_id: str, *, raise_on_error: bool = True) -> PipelineRun:
        # The server queues the retry for its worker; wait for it as a local retry would.
        run = PipelineRun.model_validate(self._c.json("POST", self._r(run_id, "/retry")))
        return self.wait_pipeline_run(run.id, raise_on_error=raise_on_error)

    def cancel_pipeline_run(self, run_id: str, *, force: bool = False) -> PipelineRun:
        return PipelineRun.model_validate(self._c.json("POST", self._r(run_id, "/cancel"),
                                                     json={"force": force}))

    def get_task_log(self, run_id: str, task: str) -> str:
        body = self._c.json("GET", self._r(run_id, "/log"), params={"task": task})
        return str(body["log"])


"""Running one task instance: cache lookups, starting the step, storing its outputs and
recording each transition (task row, lineage, cache entry) in one transaction."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Connection

from shipyard.artifacts.paths import blob_key
from shipyard.config import Settings
from shipyard.context import RequestContext
from shipyard.pipelines import _launch, _lineage, caching, runs
from shipyard.pipelines._state import Inst, RunOptions, safe_name
from shipyard.pipelines.models import ArtifactOutput, PipelineRun, TaskInfo
from shipyard.pipelines.spec import PipelineSpec, canonical_json, topological_order
from shipyard.store import Store
from shipyard.store.types import utcnow


class StepRunner:
    """What the scheduler (``Engine``) builds on: the run's context and per-task work."""

    def __init__(
        self,
        store: Store,
        artifacts: Any,
        ctx: RequestContext,
        spec: PipelineSpec,
        functions: dict[str, Callable[..., Any]],
        run: PipelineRun,
        settings: Settings,
        options: RunOptions,
        prior: dict[str, TaskInfo] | None = None,
    ) -> None:
        self.store = store
        self.artifacts = artifacts
        self.ctx = ctx
        self.spec = spec
        self.functions = functions
        self.run = run
        self.settings = settings
        self.options = options
        self.parallelism = max(1, options.parallelism or os.cpu_count() or 1)
        self.order = topological_order(spec)
        self.insts: dict[str, Inst] = {}
        self.final: set[str] = set()  # tasks whose instances are all known
        self.prior = {n: t for n, t in (prior or {}).items() if t.state == "SUCCEEDED"}
        self.arguments = dict(run.arguments)
        self.workdir = Path(tempfile.mkdtemp(prefix=f"shipyard-run-{run.id[:8]}-"))
        self.cancelled = False
        self._last_poll = 0.0

    # -- caching -----------------------------------------------------------------------------

    def _cacheable(self, inst: Inst) -> bool:
        component = self.spec.components[inst.task.component]
        return (
            self.options.enable_caching
            and inst.task.options.enable_caching
            and not inst.task.exit_for
            and all(d.type != "TASK_FINAL_STATUS" for d in component.inputs.values())
        )

    def _key(self, inst: Inst) -> str:
        component = self.spec.components[inst.task.component]
        return caching.cache_key(
            component.hash, inst.params, inst.artifacts_in, inst.task.options.cache_key
        )

    def _try_cache(self, inst: Inst) -> bool:
        if not self._cacheable(inst):
            return False
        key = self._key(inst)
        inst.info = inst.info.model_copy(update={"cache_key": key})
        max_age = inst.task.options.max_cache_age
        if max_age is None:
            max_age = self.options.max_cache_age
        with self.store.read() as conn:
            hit = caching.lookup(
                conn, self.ctx.project, key, max_age=max_age, blob_exists=self.artifacts.exists
            )
        if hit is None:
            return False
        outputs, source_execution = hit
        now = utcnow()

        def work(conn: Connection) -> None:
            execution_id = _lineage.start_execution(
                conn,
                self.ctx.project,
                self._context_id(),
                f"{self.spec.name}/{inst.name}",
                self._properties(inst, cached_from=source_execution),
                inst.artifacts_in,
                state="CACHED",
            )
            recorded = _lineage.record_outputs(
                conn, self.ctx.project, self._context_id(), execution_id, inst.name, outputs
            )
            inst.info = inst.info.model_copy(
                update={
                    "state": "SUCCEEDED",
                    "cached": True,
                    "outputs": recorded,
                    "execution_id": execution_id,
                    "started_at": now,
                    "finished_at": now,
                    "error": None,
                }
            )
            runs.save_task(conn, self.run.id, inst.info)

        self.store.retry_write(work)
        return True

    # -- running -----------------------------------------------------------------------------

    def _context_id(self) -> str:
        assert self.run.context_id is not None
        return self.run.context_id

    def _properties(self, inst: Inst, **extra: Any) -> dict[str, Any]:
        component = self.spec.components[inst.task.component]
        props: dict[str, Any] = {
            "run_id": self.run.id,
            "pipeline": self.spec.name,
            "task": inst.name,
            "component": component.name,
            "component_hash": component.hash,
            "parameters": inst.params,
        }
        if inst.task.options.display_name:
            props["display_name"] = inst.task.options.display_name
        props.update({k: v for k, v in extra.items() if v is not None})
        return props

    def _start(self, inst: Inst) -> None:
        component = self.spec.components[inst.task.component]
        inst.dir = self.workdir / f"{len(self.insts)}-{safe_name(inst.name)}-{inst.info.attempts}"
        (inst.dir / "inputs").mkdir(parents=True)
        (inst.dir / "outputs").mkdir()
        inputs = {
            name: self._materialise(inst.dir / "inputs", name, value)
            for name, value in inst.artifacts_in.items()
            if value is not None
        }
        outputs = {
            name: {"type": out.type, "name": name, "path": str(inst.dir / "outputs" / name)}
            for name, out in component.outputs.items()
            if out.kind == "artifact"
        }
        for desc in outputs.values():
            desc["uri"] = desc["path"]
        first = inst.info.execution_id is None
        now = utcnow()

        def work(conn: Connection) -> None:
            execution_id = inst.info.execution_id
            if first:
                execution_id = _lineage.start_execution(
                    conn,
                    self.ctx.project,
                    self._context_id(),
                    f"{self.spec.name}/{inst.name}",
                    self._properties(inst),
                    inst.artifacts_in,
                )
            inst.info = inst.info.model_copy(
                update={
                    "state": "RUNNING",
                    "execution_id": execution_id,
                    "attempts": inst.info.attempts + 1,
                    "started_at": inst.info.started_at or now,
                }
            )
            runs.save_task(conn, self.run.id, inst.info)

        self.store.retry_write(work)
        request: dict[str, Any] = {
            "task": inst.name,
            "component": component.model_dump(mode="json"),
            "params": inst.params,
            "inputs": inputs,
            "outputs": outputs,
            "env": self._env(inst),
            "log": str(inst.dir / "log.txt"),
            "result": str(inst.dir / "result.json"),
        }
        timeout = inst.task.options.timeout
        inst.deadline = time.monotonic() + timeout if timeout else None
        if self.options.inline:
            func = self.functions.get(inst.task.component)
            handle = _launch.run_inline(component, request, func)
            self._finish(inst, handle.result())
        elif self.options.backend == "ray":
            request["cpus"] = inst.task.options.cpu_limit
            inst.handle = _launch.start_ray(request)
        else:
            inst.handle = _launch.start_process(str(inst.dir / "request.json"), request)

    def _env(self, inst: Inst) -> dict[str, str]:
        env = {
            "SHIPYARD_HOME": str(self.settings.home),
            "SHIPYARD_URI": self.settings.uri,
            "SHIPYARD_ARTIFACTS": self.settings.artifacts,
            "SHIPYARD_PROJECT": self.ctx.project,
            "SHIPYARD_PIPELINE_RUN_ID": self.run.id,
            "SHIPYARD_PIPELINE_TASK": inst.name,
            "SHIPYARD_EXECUTION_ID": inst.info.execution_id or "",
        }
        if self.settings.token:
            env["SHIPYARD_TOKEN"] = self.settings.token
        env.update(inst.task.options.env)
        return env

    def _materialise(self, root: Path, name: str, value: Any) -> Any:
        if isinstance(value, list):
            return [self._materialise(root / name, str(i), v) for i, v in enumerate(value)]
        art: ArtifactOutput = value
        dest = root / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if art.layout == "file":
            self.artifacts.get_file(art.digest, dest)
        elif art.layout == "tree":
            self.artifacts.get_tree(art.digest, dest)
        return {
            "type": art.type,
            "name": name,
            "path": str(dest),
            "uri": art.uri,
            "metadata": art.metadata,
        }

    def _store_output(self, path: Path, type_: str, metadata: dict[str, Any]) -> ArtifactOutput:
        layout: Literal["file", "tree", "none"]
        if path.is_file():
            blob = self.artifacts.put_file(path)
            digest, size, layout = blob.digest, blob.size, "file"
        elif path.is_dir():
            tree = self.artifacts.put_tree(path)
            digest, size, layout = tree.digest, tree.size, "tree"
        else:
            blob = self.artifacts.put_bytes(canonical_json(metadata).encode())
            digest, size, layout = blob.digest, blob.size, "none"
        uri = f"{self.artifacts.location}/{blob_key(digest)}"
        return ArtifactOutput(
            type=type_, digest=digest, size=size, layout=layout, uri=uri, metadata=metadata
        )

    def _store_log(self, inst: Inst) -> str | None:
        assert inst.dir is not None
        path = inst.dir / "log.txt"
        if not path.exists() or path.stat().st_size == 0:
            return inst.info.log_digest
        digest: str = self.artifacts.put_file(path).digest
        return digest

    def _finish(self, inst: Inst, result: dict[str, Any]) -> None:
        inst.handle = None
        if not result.get("ok"):
            self._fail(inst, str(result.get("error") or "the step failed"))
            return
        component = self.spec.components[inst.task.component]
        assert inst.dir is not None
        try:
            outputs: dict[str, Any] = {}
            for name, out in component.outputs.items():
                if out.kind == "artifact":
                    metadata = dict(result.get("metadata", {}).get(name) or {})
                    outputs[name] = self._store_output(
                        inst.dir / "outputs" / name, out.type, metadata
                    )
                else:
                    outputs[name] = result.get("outputs", {}).get(name)
        except Exception as exc:
            self._fail(inst, f"storing the outputs failed: {exc}")
            return
        log_digest = self._store_log(inst)
        cacheable = self._cacheable(inst)

        def work(conn: Connection) -> None:
            assert inst.info.execution_id is not None
            recorded = _lineage.record_outputs(
                conn,
                self.ctx.project,
                self._context_id(),
                inst.info.execution_id,
                inst.name,
                outputs,
            )
            _lineage.set_state(conn, inst.info.execution_id, "COMPLETE", self._properties(inst))
            inst.info = inst.info.model_copy(
                update={
                    "state": "SUCCEEDED",
                    "cached": False,
                    "outputs": recorded,
                    "error": None,
                    "log_digest": log_digest,
                    "finished_at": utcnow(),
                }
            )
            runs.save_task(conn, self.run.id, inst.info)
            if cacheable and inst.info.cache_key:
                caching.record(
                    conn, self.ctx.project, inst.info.cache_key, inst.info.execution_id, recorded
                )

        self.store.retry_write(work)

    def _fail(self, inst: Inst, error: str, *, final: bool = False, state: str = "FAILED") -> None:
        inst.handle = None
        opts = inst.task.options
        log_digest = self._store_log(inst) if inst.dir is not None else inst.info.log_digest
        retry = not final and inst.info.attempts <= opts.num_retries
        if retry:
            delay = opts.backoff_duration * opts.backoff_factor ** (inst.info.attempts - 1)
            inst.not_before = time.monotonic() + min(delay, opts.backoff_max_duration)
        new_state = "PENDING" if retry else state

        def work(conn: Connection) -> None:
            if not retry and inst.info.execution_id:
                _lineage.set_state(
                    conn,
                    inst.info.execution_id,
                    "FAILED" if state == "FAILED" else "CANCELED",
                    self._properties(inst, error=error[-2000:]),
                )
            inst.info = inst.info.model_copy(
                update={
                    "state": new_state,
                    "error": error,
                    "log_digest": log_digest,
                    "finished_at": None if retry else utcnow(),
                }
            )
            runs.save_task(conn, self.run.id, inst.info)

        self.store.retry_write(work)

    def _save(self, inst: Inst, **update: Any) -> None:
        inst.info = inst.info.model_copy(update=update)
        with self.store.write() as conn:
            runs.save_task(conn, self.run.id, inst.info)

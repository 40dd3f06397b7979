"""Running task instances: cache lookups, starting steps, storing their outputs, and
recording every transition (task row, lineage, cache entry).

Transitions are queued and written together by ``flush``: one transaction for everything
the scheduler decided in one pass (a finished step and the start of its successor, or every
hit of a cached rerun), rather than one or two per task. Two rules keep that safe: a step's
start is committed before its code runs (so its execution row exists for whatever the step
records), and a step's outputs are in the artifact store before the transaction that marks
it SUCCEEDED and records its cache entry, so a killed runner never leaves a cache entry
pointing at missing blobs.

When a core is idle (fewer steps running than ``parallelism``) and no start needs them
first, the ends are written just after the starts, in a second transaction, while the
started steps run: in a chain each step then waits only for its own start to be recorded.
When every core is busy one transaction costs less CPU, and that is what counts.

Where a step runs is the launcher's business (``_launch``): the run chooses one launcher
from its options, builds each step's ``StepRequest`` and reads its ``StepResult``, and
knows nothing of processes. Moving a step's artifacts between the artifact store and its
folder is ``_step_files``'s."""

from __future__ import annotations

import functools
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from shipyard.config import Settings
from shipyard.context import RequestContext
from shipyard.dsl._importer import is_importer
from shipyard.dsl._placeholders import PIPELINE_TASK_ID_PLACEHOLDER
from shipyard.errors import InvalidArgument
from shipyard.pipelines import _containers, _forkserver, _launch, _lineage, _ray, caching, runs
from shipyard.pipelines._isolation import StepIsolation, clean_environment
from shipyard.pipelines._launch import Launcher
from shipyard.pipelines._messages import StepArtifact, StepRequest, StepResult
from shipyard.pipelines._state import Inst, MissingOutput, RunOptions, safe_name
from shipyard.pipelines._step_files import StepFiles
from shipyard.pipelines.models import ArtifactOutput, PipelineRun, TaskInfo
from shipyard.pipelines.spec import PipelineSpec, topological_order
from shipyard.store import Store
from shipyard.store.types import utcnow

log = logging.getLogger(__name__)

_ARTIFACT_ID = re.compile(r"[0-9a-f]{32}")


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
        isolation: StepIsolation | None = None,
    ) -> None:
        self.store = store
        self.isolation = isolation
        self.artifacts = artifacts
        self.files = StepFiles(artifacts, isolation)
        self.ctx = ctx
        self.spec = spec
        self.functions = functions
        self.run = run
        self.settings = settings
        self.options = options
        self.parallelism = max(1, options.parallelism or os.cpu_count() or 1)
        self.order = topological_order(spec)
        self.insts: dict[str, Inst] = {}
        self.by_task: dict[str, list[Inst]] = {}
        self.final: set[str] = set()  # tasks whose instances are all known
        self.prior = {n: t for n, t in (prior or {}).items() if t.state == "SUCCEEDED"}
        self.arguments = dict(run.arguments)
        self.workdir = Path(tempfile.mkdtemp(prefix=f"shipyard-run-{run.id[:8]}-"))
        self.cancelled = False
        self._last_poll = 0.0
        self._seq = 0
        # Rows already in pipeline_tasks (a retried run has them all), so saving one is a
        # single INSERT or UPDATE instead of a SELECT first.
        self._stored = set(prior or {})
        self._writes: list[tuple[str, Callable[[Connection], None]]] = []  # (instance, work)
        self._dirty: dict[str, Inst] = {}
        self._launches: list[tuple[Inst, StepRequest]] = []
        self._must_flush = False  # queued writes create artifacts someone may consume next
        self._launcher: Launcher | None = None  # chosen once, by ``open_launcher``
        # Both are derived by serialising the component: once per run, not per task.
        self._hashes = {k: c.hash for k, c in spec.components.items()}
        self._component_json = {k: c.model_dump(mode="json") for k, c in spec.components.items()}

    # -- recording ---------------------------------------------------------------------------

    def _touch(self, inst: Inst, work: Callable[[Connection], None] | None = None) -> None:
        """Queue ``work`` (lineage rows) and the save of ``inst``'s row for ``flush``."""
        if work is not None:
            self._writes.append((inst.name, work))
        self._dirty[inst.name] = inst

    def flush(self) -> None:
        """Write every queued transition in one transaction, then start the steps whose
        start it recorded (with an idle core: the starts, the steps, then the rest).

        The end of an inline step run here is written at once only when it produced
        artifacts (their lineage ids, which its consumers record, exist only once written);
        otherwise it waits for the next flush, with the start of whatever comes next."""
        while self._writes or self._dirty or self._launches:
            launches, self._launches = self._launches, []
            later = self._deferrable(launches)
            self._commit(later, deferred=False)
            for inst, request in launches:
                self._run_step(inst, request)
            self._commit(later, deferred=True)
            if not self._launches and not self._must_flush:
                return

    def _deferrable(self, launches: list[tuple[Inst, StepRequest]]) -> set[str]:
        """Instances whose queued writes may follow the start of ``launches`` (see the
        module docstring): none unless a core would otherwise sit idle."""
        idle = self._running_count() < self.parallelism  # the starting ones count
        if not launches or not idle or self._must_flush or self.options.inline:
            return set()
        starting = {inst.name for inst, _ in launches}
        return {name for name in self._dirty if name not in starting}

    def _running_count(self) -> int:
        return sum(1 for i in self.insts.values() if i.info.state == "RUNNING")

    def _commit(self, later: set[str], *, deferred: bool) -> None:
        """Write in one transaction the queued transitions of the instances in ``later``
        (``deferred``) or of all the others."""

        def now(name: str) -> bool:
            return (name in later) == deferred

        writes = [w for w in self._writes if now(w[0])]
        dirty = [inst for name, inst in self._dirty.items() if now(name)]
        if not writes and not dirty:
            return
        self._writes = [w for w in self._writes if not now(w[0])]
        self._dirty = {name: inst for name, inst in self._dirty.items() if not now(name)}
        if not self._dirty:
            self._must_flush = False
        self.store.retry_write(functools.partial(self._write, writes=writes, dirty=dirty))
        self._stored.update(inst.name for inst in dirty)

    def _write(
        self,
        conn: Connection,
        writes: list[tuple[str, Callable[[Connection], None]]],
        dirty: list[Inst],
    ) -> None:
        # Lineage first: it fills in the execution ids the task rows carry.
        for _, write in writes:
            write(conn)
        runs.save_tasks(conn, self.run.id, [(i.info, i.name in self._stored) for i in dirty])

    # -- caching -----------------------------------------------------------------------------

    def _cacheable(self, inst: Inst) -> bool:
        component = self.spec.components[inst.task.component]
        return (
            self.options.enable_caching
            and inst.task.options.enable_caching
            and not inst.task.exit_for
            and all(d.type != "TASK_FINAL_STATUS" for d in component.inputs.values())
            and not any(
                s.kind == "constant" and s.value == PIPELINE_TASK_ID_PLACEHOLDER
                for s in inst.task.inputs.values()
            )
        )

    def _key(self, inst: Inst) -> str:
        return caching.cache_key(
            self._hashes[inst.task.component],
            inst.params,
            inst.artifacts_in,
            inst.task.options.cache_key,
        )

    def _max_age(self, inst: Inst) -> float | None:
        max_age = inst.task.options.max_cache_age
        return self.options.max_cache_age if max_age is None else max_age

    def _lookup(self, ready: list[Inst]) -> list[Inst]:
        """Serve from the cache what it has (one query for all of ``ready``); return the
        instances that must run."""
        wanted: list[Inst] = []
        for inst in ready:
            if inst.looked_up or not self._cacheable(inst):
                continue
            inst.looked_up = True
            inst.info = inst.info.model_copy(update={"cache_key": self._key(inst)})
            wanted.append(inst)
        if not wanted:
            return ready
        with self.store.read() as conn:
            hits = caching.lookup_many(
                conn,
                self.ctx.project,
                {i.info.cache_key or "": self._max_age(i) for i in wanted},
                blob_exists=self.artifacts.exists,
            )
        served = set()
        for inst in wanted:
            hit = hits.get(inst.info.cache_key or "")
            if hit is not None:
                self._cached(inst, *hit)
                served.add(inst.name)
        return [i for i in ready if i.name not in served]

    def _cached(self, inst: Inst, outputs: dict[str, Any], source: str | None) -> None:
        now = utcnow()
        inst.info = inst.info.model_copy(
            update={
                "state": "SUCCEEDED",
                "cached": True,
                "outputs": outputs,
                "started_at": now,
                "finished_at": now,
                "error": None,
            }
        )
        props = self._properties(inst, cached_from=source)

        def work(conn: Connection) -> None:
            execution_id = _lineage.start_execution(
                conn, self.ctx.project, self._context_id(), f"{self.spec.name}/{inst.name}",
                props, inst.artifacts_in, state="CACHED",
            )  # fmt: skip
            recorded = _lineage.record_outputs(
                conn, self.ctx.project, self._context_id(), execution_id, inst.name, outputs
            )
            inst.info = inst.info.model_copy(
                update={"outputs": recorded, "execution_id": execution_id}
            )

        self._touch(inst, work)

    def _imported(self, inst: Inst) -> bool:
        """Serve a ``dsl.importer`` task naming an artifact of the project by id, without
        a step (nothing to copy); ``False`` when it names a path or URL for a step."""
        component = self.spec.components[inst.task.component]
        uri = inst.params.get("uri")
        if not (is_importer(component) and isinstance(uri, str) and _ARTIFACT_ID.fullmatch(uri)):
            return False
        try:
            art = _lineage.imported_artifact(
                self.store, self.ctx.project, uri, dict(inst.params.get("metadata") or {}),
                f"tasks.{inst.task.name}.artifact_uri",
            )  # fmt: skip
        except InvalidArgument as exc:
            self._fail(inst, exc.message, final=True)
            return True
        now = utcnow()
        outputs = {name: art for name in component.outputs}
        inst.info = inst.info.model_copy(update={
            "state": "SUCCEEDED", "outputs": outputs, "started_at": now, "finished_at": now,
            "error": None, "attempts": inst.info.attempts + 1,
        })  # fmt: skip
        props = self._properties(inst)
        self._must_flush = True

        def work(conn: Connection) -> None:
            execution_id = _lineage.start_execution(
                conn, self.ctx.project, self._context_id(), f"{self.spec.name}/{inst.name}",
                props, {}, state="COMPLETE",
            )  # fmt: skip
            recorded = _lineage.record_outputs(
                conn, self.ctx.project, self._context_id(), execution_id, inst.name, outputs
            )
            inst.info = inst.info.model_copy(
                update={"outputs": recorded, "execution_id": execution_id}
            )

        self._touch(inst, work)
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
            "component_hash": self._hashes[inst.task.component],
            "parameters": inst.params,
        }
        if inst.task.options.display_name:
            props["display_name"] = inst.task.options.display_name
        props.update({k: v for k, v in extra.items() if v is not None})
        return props

    def _start(self, inst: Inst) -> None:
        """Mark ``inst`` RUNNING (queued) and prepare its request; ``flush`` starts it."""
        component = self.spec.components[inst.task.component]
        self._seq += 1
        prefix = f"{self._seq}-{safe_name(inst.name)}-{inst.info.attempts}"
        inst.dir = self.workdir / prefix
        outputs: dict[str, StepArtifact] = {}
        for name, out in component.outputs.items():
            if out.kind == "artifact":
                path = str(inst.dir / "outputs" / name)
                outputs[name] = StepArtifact(type=out.type, name=name, path=path, uri=path)
        has_inputs = any(v is not None for v in inst.artifacts_in.values())
        if self.options.inline and not outputs and not has_inputs:
            # Nothing to put in a folder (an inline step keeps the caller's directory):
            # the log, if the step prints anything, goes beside the others.
            inst.log = self.workdir / f"{prefix}.log"
        else:
            inst.dir.mkdir()
            inst.log = inst.dir / "log.txt"
        if outputs:
            (inst.dir / "outputs").mkdir()
        inputs = {
            name: self.files.materialise(inst.dir / "inputs", name, value)
            for name, value in inst.artifacts_in.items()
            if value is not None
        }
        base = inst.info.model_copy(
            update={
                "state": "RUNNING",
                "attempts": inst.info.attempts + 1,
                "started_at": inst.info.started_at or utcnow(),
            }
        )
        inst.info = base
        if base.execution_id is None:
            props = self._properties(inst)

            def work(conn: Connection) -> None:
                execution_id = _lineage.start_execution(
                    conn, self.ctx.project, self._context_id(),
                    f"{self.spec.name}/{inst.name}", props, inst.artifacts_in,
                )  # fmt: skip
                inst.info = base.model_copy(update={"execution_id": execution_id})

            self._touch(inst, work)
        else:
            self._touch(inst)
        request = StepRequest(
            task=inst.name,
            component_key=inst.task.component,
            component=self._component_json[inst.task.component],
            params=inst.params,
            inputs=inputs,
            outputs=outputs,
            folder=str(inst.dir),
            log=str(inst.log),
            result=str(inst.dir / "result.json"),
            cpus=inst.task.options.cpu_limit,
        )
        self._launches.append((inst, request))

    def _run_step(self, inst: Inst, request: StepRequest) -> None:
        """Start a step whose RUNNING row is committed (its execution id is known now)."""
        env = self._env(inst)
        if PIPELINE_TASK_ID_PLACEHOLDER in request.params.values():
            task_id = inst.info.execution_id or ""
            params = {k: task_id if v == PIPELINE_TASK_ID_PLACEHOLDER else v
                      for k, v in request.params.items()}
            request = replace(request, params=params)
        if self.isolation is not None and inst.dir is not None:
            self.isolation.prepare(self.workdir, inst.dir)
            user = self.isolation.user
            ids = (user.uid, user.gid) if user is not None else None
            request = replace(request, env=env, isolated=True, user=ids)
        else:
            request = replace(request, env=env)
        timeout = inst.task.options.timeout
        inst.deadline = time.monotonic() + timeout if timeout else None
        launcher = self.open_launcher()
        handle = launcher.start(request)
        if launcher.blocking:
            self._finish(inst, handle.result())
        else:
            inst.handle = handle

    def open_launcher(self) -> Launcher:
        """The launcher of this run's steps, chosen from its options on the first call
        (a warm one starts then, while the run sets up)."""
        if self._launcher is None:
            self._launcher = self._choose_launcher()
        return self._launcher

    def _choose_launcher(self) -> Launcher:
        if self.options.inline:
            return _launch.InlineLauncher(self.spec.components, self.functions)
        if self.options.backend == "ray":
            return _ray.RayLauncher()
        if _forkserver.AVAILABLE:
            # A server-side run's steps fork from a launcher started with a clean
            # environment, so that their /proc/self/environ holds nothing more.
            clean = clean_environment() if self.isolation is not None else None
            return _launch.ForkLauncher(clean)
        return _launch.ColdLauncher()

    def close_launcher(self) -> None:
        """Close the launcher (``_pool`` keeps a warm one for the next run if it is fit)."""
        if self._launcher is not None:
            launcher, self._launcher = self._launcher, None
            launcher.close()

    def _env(self, inst: Inst) -> dict[str, str]:
        if self.isolation is not None and inst.dir is not None:
            own = {
                "SHIPYARD_PROJECT": self.ctx.project,
                "SHIPYARD_PIPELINE_RUN_ID": self.run.id,
                "SHIPYARD_PIPELINE_TASK": inst.name,
                "SHIPYARD_EXECUTION_ID": inst.info.execution_id or "",
                **inst.task.options.env,
                **self._container_env(inst),
            }
            return self.isolation.environment(inst.dir, own)
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
        env.update(self._container_env(inst))
        return env

    def _container_env(self, inst: Inst) -> dict[str, str]:
        """A container component's step is told the runtime the run was checked with."""
        if self.spec.components[inst.task.component].container is None:
            return {}
        runtime, _ = _containers.find_runtime()
        return {_containers.RUNTIME_ENV: runtime} if runtime else {}

    def _finish(self, inst: Inst, result: StepResult) -> None:
        inst.handle = None
        if not result.ok:
            self._fail(inst, result.error or "the step failed")
            return
        component = self.spec.components[inst.task.component]
        assert inst.dir is not None
        try:
            outputs = self.files.outputs(component, inst.dir, result)
        except MissingOutput as exc:
            self._fail(inst, str(exc))
            return
        except Exception as exc:
            self._fail(inst, f"storing the outputs failed: {exc}")
            return
        log_digest = self.files.store_log(inst)
        cacheable = self._cacheable(inst)
        self._must_flush = self._must_flush or any(
            isinstance(v, ArtifactOutput) for v in outputs.values()
        )
        base = inst.info.model_copy(
            update={
                "state": "SUCCEEDED",
                "cached": False,
                "outputs": outputs,
                "error": None,
                "log_digest": log_digest,
                "finished_at": utcnow(),
            }
        )
        inst.info = base
        props = self._properties(inst)

        def work(conn: Connection) -> None:
            execution_id = base.execution_id
            assert execution_id is not None
            recorded = _lineage.record_outputs(
                conn, self.ctx.project, self._context_id(), execution_id, inst.name, outputs
            )
            _lineage.set_state(conn, execution_id, "COMPLETE", props)
            inst.info = base.model_copy(update={"outputs": recorded})
            if cacheable and base.cache_key:
                caching.record(conn, self.ctx.project, base.cache_key, execution_id, recorded)

        self._touch(inst, work)

    def _fail(self, inst: Inst, error: str, *, final: bool = False, state: str = "FAILED") -> None:
        inst.handle = None
        opts = inst.task.options
        log_digest = self.files.store_log(inst)
        retry = not final and inst.info.attempts <= opts.num_retries
        if retry:
            delay = opts.backoff_duration * opts.backoff_factor ** (inst.info.attempts - 1)
            inst.not_before = time.monotonic() + min(delay, opts.backoff_max_duration)
        inst.info = inst.info.model_copy(
            update={
                "state": "PENDING" if retry else state,
                "error": error,
                "log_digest": log_digest,
                "finished_at": None if retry else utcnow(),
            }
        )
        execution_id = inst.info.execution_id
        if retry or not execution_id:
            self._touch(inst)
            return
        props = self._properties(inst, error=error[-2000:])
        lineage_state = "FAILED" if state == "FAILED" else "CANCELED"

        def work(conn: Connection) -> None:
            _lineage.set_state(conn, execution_id, lineage_state, props)

        self._touch(inst, work)

    def _save(self, inst: Inst, **update: Any) -> None:
        inst.info = inst.info.model_copy(update=update)
        self._touch(inst)

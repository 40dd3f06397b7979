"""The scheduler of one run: which task instances exist, which are ready, what each did.

A task inside a ``ParallelFor`` becomes one instance per item (``name[i]``, nested loops
``name[i][j]``) once the items are known. An instance waits until every value it reads and
every task it follows has finished; it is SKIPPED when one of those failed or was skipped,
or when its condition is false; otherwise it is served from the cache or started. Exit
handlers wait for the tasks they guard whatever their outcome.

The loop runs in the calling thread: it starts step processes (up to ``parallelism``),
waits on their sentinels, and records every transition in its own transaction.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Connection

from shipyard.artifacts.paths import blob_key
from shipyard.config import Settings
from shipyard.context import RequestContext
from shipyard.pipelines import _launch, _lineage, caching, runs
from shipyard.pipelines.models import ArtifactOutput, PipelineRun, TaskInfo
from shipyard.pipelines.spec import (
    ConditionSpec,
    InputDef,
    PipelineSpec,
    TaskSpec,
    ValueSource,
    canonical_json,
    topological_order,
)
from shipyard.store import Store
from shipyard.store.types import utcnow

log = logging.getLogger(__name__)

_CANCEL_POLL = 0.5
_POLL = 0.05
_DONE = frozenset({"SUCCEEDED", "FAILED", "SKIPPED", "CANCELLED"})
_BAD = frozenset({"FAILED", "SKIPPED", "CANCELLED"})
Status = Literal["ok", "wait", "skip"]


@dataclass(frozen=True)
class RunOptions:
    """How a run executes; stored with the run so a worker or a retry runs it the same way."""

    enable_caching: bool = True
    parallelism: int | None = None
    inline: bool = False
    max_cache_age: float | None = None
    backend: str = "process"

    def to_json(self) -> dict[str, Any]:
        return {
            "enable_caching": self.enable_caching,
            "parallelism": self.parallelism,
            "inline": self.inline,
            "max_cache_age": self.max_cache_age,
            "backend": self.backend,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunOptions:
        return cls(
            **{
                k: data[k]
                for k in ("enable_caching", "parallelism", "inline", "max_cache_age", "backend")
                if k in data
            }
        )


@dataclass
class _Inst:
    name: str
    task: TaskSpec
    index: tuple[int, ...]
    info: TaskInfo
    not_before: float = 0.0
    handle: _launch.Handle | None = None
    deadline: float | None = None
    dir: Path | None = None
    artifacts_in: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)


class _Unresolved(Exception):
    def __init__(self, status: Status, why: str = "") -> None:
        super().__init__(why)
        self.status = status
        self.why = why


def instance_name(task: str, index: tuple[int, ...]) -> str:
    return task + "".join(f"[{i}]" for i in index)


class Engine:
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
        self.insts: dict[str, _Inst] = {}
        self.final: set[str] = set()  # tasks whose instances are all known
        self.prior = {n: t for n, t in (prior or {}).items() if t.state == "SUCCEEDED"}
        self.arguments = dict(run.arguments)
        self.workdir = Path(tempfile.mkdtemp(prefix=f"shipyard-run-{run.id[:8]}-"))
        self.cancelled = False
        self._last_poll = 0.0

    # -- the loop ----------------------------------------------------------------------------

    def execute(self) -> None:
        try:
            while True:
                if self._cancel_requested():
                    self._cancel_all()
                    return
                self._expand()
                progressed = self._schedule()
                running = [i for i in self.insts.values() if i.info.state == "RUNNING"]
                pending = [i for i in self.insts.values() if i.info.state == "PENDING"]
                if not running and not pending and len(self.final) == len(self.spec.tasks):
                    return
                if running:
                    self._wait(running, pending)
                elif not progressed:
                    waits = [i.not_before for i in pending if i.not_before > time.monotonic()]
                    if waits:
                        time.sleep(min(waits) - time.monotonic())
                        continue
                    self._stall(pending)
                    return
        except BaseException:
            self._kill_running("the runner stopped")
            raise
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _cancel_requested(self) -> bool:
        now = time.monotonic()
        if now - self._last_poll < _CANCEL_POLL:
            return False
        self._last_poll = now
        with self.store.read() as conn:
            return runs.run_state(conn, self.run.id) == "CANCELLING"

    def _cancel_all(self) -> None:
        self.cancelled = True
        self._kill_running("cancelled")
        for inst in self.insts.values():
            if inst.info.state == "PENDING":
                self._save(inst, state="CANCELLED", finished_at=utcnow())

    def _kill_running(self, why: str) -> None:
        for inst in self.insts.values():
            if inst.info.state == "RUNNING" and inst.handle is not None:
                inst.handle.kill()
                self._fail(inst, why, final=True, state="CANCELLED")

    def _stall(self, pending: list[_Inst]) -> None:
        for inst in pending:
            self._save(inst, state="SKIPPED", error="its inputs never became available")

    def _wait(self, running: list[_Inst], pending: list[_Inst]) -> None:
        now = time.monotonic()
        limits = [_CANCEL_POLL]
        limits += [i.deadline - now for i in running if i.deadline is not None]
        limits += [i.not_before - now for i in pending if i.not_before > now]
        sentinels = [
            i.handle.sentinel for i in running if i.handle and i.handle.sentinel is not None
        ]
        timeout = max(0.0, min(limits))
        if len(sentinels) == len(running):
            wait(sentinels, timeout=timeout)
        else:  # no pidfd on this platform: poll
            time.sleep(min(timeout, _POLL))
        now = time.monotonic()
        for inst in running:
            assert inst.handle is not None
            if inst.handle.done():
                self._finish(inst, inst.handle.result())
            elif inst.deadline is not None and now >= inst.deadline:
                inst.handle.kill()
                limit = inst.task.options.timeout or 0.0
                self._fail(inst, f"timed out after {limit:g}s and was killed")

    # -- expanding loops ---------------------------------------------------------------------

    def _expand(self) -> None:
        for name in self.order:
            if name in self.final:
                continue
            task = self.spec.tasks[name]
            found = self._indices(task.loops, 0, ())
            if found is None:
                continue
            indices, skipped = found
            for index in indices:
                self._add(task, index)
            if not indices and skipped:
                inst = self._add(task, ())
                self._save(inst, state="SKIPPED", error="its loop items were not produced")
            self.final.add(name)

    def _indices(
        self, loops: list[str], depth: int, prefix: tuple[int, ...]
    ) -> tuple[list[tuple[int, ...]], bool] | None:
        if depth == len(loops):
            return [prefix], False
        status, items = self._loop_items(loops, depth, prefix)
        if status == "wait":
            return None
        if status == "skip":
            return [], True
        found: list[tuple[int, ...]] = []
        skipped = False
        for i in range(len(items)):
            sub = self._indices(loops, depth + 1, (*prefix, i))
            if sub is None:
                return None
            found.extend(sub[0])
            skipped = skipped or sub[1]
        return found, skipped

    def _loop_items(
        self, loops: list[str], depth: int, prefix: tuple[int, ...]
    ) -> tuple[Status, list[Any]]:
        loop = self.spec.loops[loops[depth]]
        try:
            items = self._resolve(loop.items, loops[:depth], prefix)
        except _Unresolved as exc:
            return exc.status, []
        if not isinstance(items, list):
            log.warning("loop %s items are not a list: %r", loop.name, items)
            return "skip", []
        return "ok", items

    def _add(self, task: TaskSpec, index: tuple[int, ...]) -> _Inst:
        name = instance_name(task.name, index)
        inst = self.insts.get(name)
        if inst is None:
            prior = self.prior.get(name)
            info = prior if prior is not None else TaskInfo(name=name, state="PENDING")
            inst = _Inst(name, task, index, info)
            self.insts[name] = inst
        return inst

    # -- resolving values --------------------------------------------------------------------

    def _instances(self, task_name: str, loops: list[str], index: tuple[int, ...]) -> list[_Inst]:
        """The instances of ``task_name`` visible from a task in ``loops`` at ``index``."""
        if task_name not in self.final:
            raise _Unresolved("wait")
        task = self.spec.tasks[task_name]
        common = 0
        while common < min(len(task.loops), len(loops)) and task.loops[common] == loops[common]:
            common += 1
        prefix = index[:common]
        return [
            i
            for i in self.insts.values()
            if i.task.name == task_name and i.index[:common] == prefix
        ]

    def _resolve(self, source: ValueSource, loops: list[str], index: tuple[int, ...]) -> Any:
        if source.kind == "constant":
            return source.value
        if source.kind == "param":
            return self.arguments.get(source.param or "")
        if source.kind == "loop_item":
            pos = loops.index(source.loop or "")
            status, items = self._loop_items(loops, pos, index[:pos])
            if status != "ok":
                raise _Unresolved(status)
            return _select(items[index[pos]], source.key)
        producers = self._instances(source.task or "", loops, index)
        if source.kind == "task":
            if not producers:
                raise _Unresolved("skip", f"task {source.task!r} did not run")
            value = self._output_of(producers[0], source.output or "")
            return _select(value, source.key)
        if any(p.info.state not in _DONE for p in producers):
            raise _Unresolved("wait")
        ordered = sorted(producers, key=lambda p: p.index)
        return [
            _select(p.info.outputs.get(source.output or ""), source.key)
            for p in ordered
            if p.info.state == "SUCCEEDED"
        ]

    def _output_of(self, producer: _Inst, output: str) -> Any:
        state = producer.info.state
        if state in _BAD:
            raise _Unresolved("skip", f"upstream task {producer.name!r} {state.lower()}")
        if state != "SUCCEEDED":
            raise _Unresolved("wait")
        if output not in producer.info.outputs:
            raise _Unresolved("skip", f"task {producer.name!r} has no output {output!r}")
        return producer.info.outputs[output]

    def _condition(self, cond: ConditionSpec, inst: _Inst) -> bool:
        left = self._resolve(cond.left, inst.task.loops, inst.index)
        right = self._resolve(cond.right, inst.task.loops, inst.index) if cond.right else None
        result = _compare(left, cond.op, right)
        return not result if cond.negate else result

    # -- scheduling --------------------------------------------------------------------------

    def _schedule(self) -> bool:
        progressed = False
        for inst in list(self.insts.values()):
            if inst.info.state != "PENDING" or inst.not_before > time.monotonic():
                continue
            if self._running_count() >= self.parallelism:
                break
            if not self._loop_capacity(inst):
                continue
            try:
                ready = self._prepare(inst)
            except _Unresolved as exc:
                if exc.status == "skip":
                    self._save(inst, state="SKIPPED", error=exc.why or None, finished_at=utcnow())
                    progressed = True
                continue
            if not ready:
                self._save(inst, state="SKIPPED", error=None, finished_at=utcnow())
                progressed = True
                continue
            if self._try_cache(inst):
                progressed = True
                continue
            self._start(inst)
            progressed = True
        return progressed

    def _running_count(self) -> int:
        return sum(1 for i in self.insts.values() if i.info.state == "RUNNING")

    def _loop_capacity(self, inst: _Inst) -> bool:
        for depth, loop_name in enumerate(inst.task.loops):
            limit = self.spec.loops[loop_name].parallelism
            if limit <= 0:
                continue
            prefix = inst.index[:depth]
            busy = sum(
                1
                for i in self.insts.values()
                if i.info.state == "RUNNING"
                and loop_name in i.task.loops
                and i.index[:depth] == prefix
            )
            if busy >= limit:
                return False
        return True

    def _prepare(self, inst: _Inst) -> bool:
        """Resolve dependencies, conditions and inputs; ``False`` when a condition fails."""
        task = inst.task
        guarded: list[_Inst] = []
        for name in task.exit_for:
            found = self._instances(name, task.loops, inst.index)
            if any(g.info.state not in _DONE for g in found):
                raise _Unresolved("wait")
            guarded.extend(found)
        for name in task.depends_on:
            for dep in self._instances(name, task.loops, inst.index):
                if dep.info.state not in _DONE:
                    raise _Unresolved("wait")
                if dep.info.state in _BAD and not task.options.ignore_upstream_failure:
                    raise _Unresolved(
                        "skip", f"upstream task {dep.name!r} {dep.info.state.lower()}"
                    )
        component = self.spec.components[task.component]
        params: dict[str, Any] = {}
        arts: dict[str, Any] = {}
        for name, definition in component.inputs.items():
            if definition.type == "TASK_FINAL_STATUS":
                params[name] = self._final_status(guarded)
                continue
            source = task.inputs.get(name)
            value = self._resolve(source, task.loops, inst.index) if source else definition.default
            if definition.kind == "artifact":
                arts[name] = _artifact_value(value)
            else:
                params[name] = value
        # Conditions last: their operands may only exist once the inputs above do.
        for cond in task.conditions:
            if not self._condition(cond, inst):
                return False
        inst.params = params
        inst.artifacts_in = arts
        return True

    def _final_status(self, guarded: list[_Inst]) -> dict[str, Any]:
        failed = [g for g in guarded if g.info.state in ("FAILED", "CANCELLED")]
        return {
            "state": "FAILED" if failed else "SUCCEEDED",
            "pipeline_job_resource_name": self.run.id,
            "pipeline_task_name": self.spec.name,
            "error_code": 1 if failed else None,
            "error_message": (failed[0].info.error or "").strip().splitlines()[-1:][0]
            if failed and failed[0].info.error
            else None,
        }

    # -- caching -----------------------------------------------------------------------------

    def _cacheable(self, inst: _Inst) -> bool:
        component = self.spec.components[inst.task.component]
        return (
            self.options.enable_caching
            and inst.task.options.enable_caching
            and not inst.task.exit_for
            and all(d.type != "TASK_FINAL_STATUS" for d in component.inputs.values())
        )

    def _key(self, inst: _Inst) -> str:
        component = self.spec.components[inst.task.component]
        return caching.cache_key(
            component.hash, inst.params, inst.artifacts_in, inst.task.options.cache_key
        )

    def _try_cache(self, inst: _Inst) -> bool:
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

    def _properties(self, inst: _Inst, **extra: Any) -> dict[str, Any]:
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

    def _start(self, inst: _Inst) -> None:
        component = self.spec.components[inst.task.component]
        inst.dir = self.workdir / f"{len(self.insts)}-{_safe(inst.name)}-{inst.info.attempts}"
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

    def _env(self, inst: _Inst) -> dict[str, str]:
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

    def _store_log(self, inst: _Inst) -> str | None:
        assert inst.dir is not None
        path = inst.dir / "log.txt"
        if not path.exists() or path.stat().st_size == 0:
            return inst.info.log_digest
        digest: str = self.artifacts.put_file(path).digest
        return digest

    def _finish(self, inst: _Inst, result: dict[str, Any]) -> None:
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

    def _fail(self, inst: _Inst, error: str, *, final: bool = False, state: str = "FAILED") -> None:
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

    def _save(self, inst: _Inst, **update: Any) -> None:
        inst.info = inst.info.model_copy(update=update)
        with self.store.write() as conn:
            runs.save_task(conn, self.run.id, inst.info)

    # -- result ------------------------------------------------------------------------------

    def outcome(self) -> tuple[str, str | None]:
        if self.cancelled:
            return "CANCELLED", "the run was cancelled"
        failed = [i for i in self.insts.values() if i.info.state == "FAILED"]
        if failed:
            first = failed[0]
            last = (first.info.error or "").strip().splitlines()[-1:] or ["failed"]
            more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
            return "FAILED", f"task {first.name!r} failed: {last[0]}{more}"
        return "SUCCEEDED", None


def _select(value: Any, key: str | int | None) -> Any:
    if key is None:
        return value
    try:
        return value[key]
    except (KeyError, IndexError, TypeError):
        raise _Unresolved("skip", f"value has no field {key!r}") from None


def _artifact_value(value: Any) -> Any:
    if value is None or isinstance(value, ArtifactOutput):
        return value
    if isinstance(value, list):
        return [_artifact_value(v) for v in value]
    if isinstance(value, dict):
        return ArtifactOutput.model_validate(value)
    raise _Unresolved("skip", f"expected an artifact, got {value!r}")


def _compare(left: Any, op: str, right: Any) -> bool:
    if op == "truthy":
        return bool(left)
    try:
        if op == "==":
            return bool(left == right)
        if op == "!=":
            return bool(left != right)
        if op == "<":
            return bool(left < right)
        if op == "<=":
            return bool(left <= right)
        if op == ">":
            return bool(left > right)
        return bool(left >= right)
    except TypeError:
        return False


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:80]


def check_arguments(spec: PipelineSpec, arguments: dict[str, Any]) -> dict[str, Any]:
    """Arguments with defaults filled in; unknown, missing or mistyped ones are refused."""
    from shipyard.dsl._types import value_fits
    from shipyard.errors import InvalidArgument

    for name in arguments:
        if name not in spec.inputs:
            raise InvalidArgument(
                f"pipeline {spec.name!r} has no parameter {name!r}; it takes {sorted(spec.inputs)}",
                field=f"arguments.{name}",
            )
    resolved: dict[str, Any] = {}
    for name, definition in spec.inputs.items():
        resolved[name] = _argument(spec.name, name, definition, arguments)
        value = resolved[name]
        if (
            value is not None
            and definition.kind == "parameter"
            and not value_fits(value, definition.type)
        ):
            raise InvalidArgument(
                f"pipeline argument {name!r} expects {definition.type}, got {value!r}",
                field=f"arguments.{name}",
            )
    return resolved


def _argument(pipeline: str, name: str, definition: InputDef, arguments: dict[str, Any]) -> Any:
    from shipyard.errors import InvalidArgument

    if name in arguments:
        return arguments[name]
    if definition.optional:
        return definition.default
    raise InvalidArgument(
        f"pipeline {pipeline!r} needs argument {name!r} ({definition.type})",
        field=f"arguments.{name}",
    )

"""The scheduler of one run: which task instances exist, which are ready, what each did.

A task inside a ``ParallelFor`` becomes one instance per item (``name[i]``, nested loops
``name[i][j]``) once the items are known. An instance waits until every value it reads and
every task it follows has finished; it is SKIPPED when one of those failed or was skipped,
or when its condition is false; otherwise it is served from the cache or started. Exit
handlers wait for the tasks they guard whatever their outcome.

The loop runs in the calling thread: it starts step processes (up to ``parallelism``),
waits on their sentinels, and writes what changed in each pass in one transaction
(``StepRunner.flush``). A pass serves every ready instance the cache can serve with one
query, then looks again, so a fully cached chain completes in a single pass.
"""

from __future__ import annotations

import functools
import logging
import shutil
import threading
import time
from datetime import UTC
from multiprocessing.connection import wait
from typing import Any

from shipyard import dsl
from shipyard.dsl._placeholders import PLACEHOLDERS
from shipyard.errors import InvalidArgument
from shipyard.pipelines import _lineage, _values, runs
from shipyard.pipelines._state import (
    BAD,
    DONE,
    Inst,
    Status,
    Unresolved,
    artifact_value,
    compare,
    instance_name,
    select,
)
from shipyard.pipelines._steps import StepRunner
from shipyard.pipelines.models import ArtifactOutput, TaskInfo
from shipyard.pipelines.spec import ConditionSpec, TaskSpec, ValueSource
from shipyard.store.types import utcnow

log = logging.getLogger(__name__)

_CANCEL_POLL = 0.5
_POLL = 0.05


def _nested(values: list[tuple[tuple[int, ...], Any]], depth: int) -> list[Any]:
    """Values keyed by their index in ``depth`` loops as lists nested ``depth`` deep."""
    if depth <= 1:
        return [value for _, value in values]
    groups: dict[int, list[tuple[tuple[int, ...], Any]]] = {}
    for key, value in values:
        groups.setdefault(key[0], []).append((key[1:], value))
    return [_nested(group, depth - 1) for group in groups.values()]


class Engine(StepRunner):
    """Drives one run from its first task to its last (see the module docstring)."""

    # -- the loop ----------------------------------------------------------------------------

    def execute(self) -> None:
        try:
            self.open_launcher()
            while True:
                if self._cancel_requested():
                    self._cancel_all()
                    return
                self._expand()
                progressed = self._schedule()
                self.flush()
                running = [i for i in self.insts.values() if i.info.state == "RUNNING"]
                pending = [i for i in self.insts.values() if i.info.state == "PENDING"]
                if not running and not pending and len(self.final) == len(self.spec.tasks):
                    self.flush()
                    return
                if running:
                    self._wait(running, pending)
                    # Ends that consumers need written first are written now; the others
                    # go with the next pass's starts (before any further wait).
                    if self._must_flush:
                        self.flush()
                elif not progressed:
                    self.flush()
                    waits = [i.not_before for i in pending if i.not_before > time.monotonic()]
                    if waits:
                        time.sleep(min(waits) - time.monotonic())
                        continue
                    self._stall(pending)
                    self.flush()
                    return
        except BaseException:
            self._launches.clear()
            self._kill_running("the runner stopped")
            self.flush()
            raise
        finally:
            self.close_launcher()
            # Removing a folder per step takes milliseconds each on a busy disk, and the run
            # is over: the caller need not wait for it (the thread is not a daemon, so the
            # interpreter still finishes the job before exiting).
            threading.Thread(
                target=shutil.rmtree,
                args=(self.workdir,),
                kwargs={"ignore_errors": True},
                name="shipyard-run-cleanup",
            ).start()

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
        self.flush()

    def _kill_running(self, why: str) -> None:
        for inst in self.insts.values():
            if inst.info.state == "RUNNING" and inst.handle is not None:
                inst.handle.kill()
                self._fail(inst, why, final=True, state="CANCELLED")

    def _stall(self, pending: list[Inst]) -> None:
        for inst in pending:
            self._save(inst, state="SKIPPED", error="its inputs never became available")

    def _wait(self, running: list[Inst], pending: list[Inst]) -> None:
        now = time.monotonic()
        limits = [_CANCEL_POLL]
        limits += [i.deadline - now for i in running if i.deadline is not None]
        limits += [i.not_before - now for i in pending if i.not_before > now]
        sentinels = [i.handle.sentinel if i.handle else None for i in running]
        timeout = max(0.0, min(limits))
        if all(s is not None for s in sentinels):
            # Forked steps share their launcher's socket: wait on each descriptor once.
            wait(list(dict.fromkeys(s for s in sentinels if s is not None)), timeout=timeout)
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
        except Unresolved as exc:
            return exc.status, []
        if not isinstance(items, list):
            log.warning("loop %s items are not a list: %r", loop.name, items)
            return "skip", []
        return "ok", items

    def _add(self, task: TaskSpec, index: tuple[int, ...]) -> Inst:
        name = instance_name(task.name, index)
        inst = self.insts.get(name)
        if inst is None:
            prior = self.prior.get(name)
            info = prior if prior is not None else TaskInfo(name=name, state="PENDING")
            inst = Inst(name, task, index, info)
            self.insts[name] = inst
            self.by_task.setdefault(task.name, []).append(inst)
        return inst

    # -- resolving values --------------------------------------------------------------------

    def _instances(self, task_name: str, loops: list[str], index: tuple[int, ...]) -> list[Inst]:
        """The instances of ``task_name`` visible from a task in ``loops`` at ``index``."""
        if task_name not in self.final:
            raise Unresolved("wait", on=task_name)
        common = self._common(task_name, loops)
        prefix = index[:common]
        return [i for i in self.by_task.get(task_name, []) if i.index[:common] == prefix]

    def _resolve(self, source: ValueSource, loops: list[str], index: tuple[int, ...]) -> Any:
        if source.kind == "constant":
            return source.value
        if source.kind == "param":
            return self.arguments.get(source.param or "")
        if source.kind == "loop_item":
            pos = loops.index(source.loop or "")
            status, items = self._loop_items(loops, pos, index[:pos])
            if status != "ok":
                raise Unresolved(status)
            return select(items[index[pos]], source.key)
        if source.kind == "oneof":
            return self._one_of(source, loops, index)
        producers = self._instances(source.task or "", loops, index)
        if source.kind == "task":
            if not producers:
                raise Unresolved("skip", f"task {source.task!r} did not run")
            value = self._output_of(producers[0], source.output or "")
            return select(value, source.key)
        for p in producers:
            if p.info.state not in DONE:
                raise Unresolved("wait", on=p)
        # Collected over nested loops is nested, a list per enclosing loop's item, as on
        # KFP: the levels are the producer's loops that do not enclose the consumer.
        depth = len(self.spec.tasks[source.task or ""].loops) - self._common(source.task, loops)
        ordered = sorted(producers, key=lambda p: p.index)
        values = [
            (p.index[len(p.index) - depth :], select(p.info.outputs.get(source.output or ""),
                                                     source.key))
            for p in ordered
            if p.info.state == "SUCCEEDED"
        ]  # fmt: skip
        return _nested(values, depth)

    def _common(self, task_name: str | None, loops: list[str]) -> int:
        """How many of ``task_name``'s loops (outermost first) also enclose ``loops``."""
        task_loops = self.spec.tasks[task_name or ""].loops
        common = 0
        while common < min(len(task_loops), len(loops)) and task_loops[common] == loops[common]:
            common += 1
        return common

    def _one_of(self, source: ValueSource, loops: list[str], index: tuple[int, ...]) -> Any:
        """``dsl.OneOf``: the value of the first option whose task ran; an option whose
        task was skipped (its branch did not hold) gives way to the next."""
        reasons: list[str] = []
        for option in source.options:
            try:
                return self._resolve(option, loops, index)
            except Unresolved as exc:
                if exc.status != "skip":
                    raise
                reasons.append(exc.why)
        raise Unresolved("skip", "no option of dsl.OneOf produced a value: " + "; ".join(reasons))

    def _output_of(self, producer: Inst, output: str) -> Any:
        state = producer.info.state
        if state in BAD:
            raise Unresolved("skip", f"upstream task {producer.name!r} {state.lower()}")
        if state != "SUCCEEDED":
            raise Unresolved("wait", on=producer)
        if output not in producer.info.outputs:
            raise Unresolved("skip", f"task {producer.name!r} has no output {output!r}")
        return producer.info.outputs[output]

    def _condition(self, cond: ConditionSpec, inst: Inst) -> bool:
        left = self._resolve(cond.left, inst.task.loops, inst.index)
        right = self._resolve(cond.right, inst.task.loops, inst.index) if cond.right else None
        result = compare(left, cond.op, right)
        return not result if cond.negate else result

    # -- scheduling --------------------------------------------------------------------------

    def _schedule(self) -> bool:
        """One pass: skip what can never run, serve from the cache what it has (again while
        that makes more instances ready), queue starts up to ``parallelism``."""
        progressed = False
        while True:
            ready, skipped = self._ready()
            to_run = self._lookup(ready)
            served = len(to_run) < len(ready)
            progressed = progressed or skipped or served
            if not (skipped or served):
                break
        # Inline steps run one at a time, so each shows RUNNING only while it runs.
        capacity = 1 if self.options.inline else self.parallelism - self._running_count()
        for inst in to_run:
            if capacity <= 0:
                break
            if not self._loop_capacity(inst):
                continue
            if self._imported(inst):
                progressed = True
                continue
            self._start(inst)
            capacity -= 1
            progressed = True
        return progressed

    def _ready(self) -> tuple[list[Inst], bool]:
        """Pending instances whose inputs are all there, and whether any was SKIPPED
        (its inputs can never exist, or its condition is false)."""
        now = time.monotonic()
        ready: list[Inst] = []
        skipped = False
        for inst in list(self.insts.values()):
            if inst.info.state != "PENDING" or inst.not_before > now:
                continue
            if inst.prepared:  # what it reads has finished: resolving again gives the same
                ready.append(inst)
                continue
            if inst.waits_on is not None and not self._settled(inst.waits_on):
                continue  # still waiting for what stopped it last time: skip the resolving
            inst.waits_on = None
            try:
                runnable = self._prepare(inst)
            except Unresolved as exc:
                inst.waits_on = exc.on
                if exc.status == "skip":
                    self._save(inst, state="SKIPPED", error=exc.why or None, finished_at=utcnow())
                    skipped = True
                elif exc.status == "fail":
                    self._fail(inst, exc.why, final=True)
                continue
            if runnable:
                inst.prepared = True
                ready.append(inst)
            else:
                self._save(inst, state="SKIPPED", error=None, finished_at=utcnow())
                skipped = True
        return ready, skipped

    def _own(self, name: str, value: Any) -> ArtifactOutput:
        try:
            return _lineage.own_artifact(self.store, self.ctx.project, value, f"inputs.{name}")
        except InvalidArgument as exc:
            raise Unresolved("fail", exc.message) from None

    def _settled(self, waits_on: Inst | str) -> bool:
        """Whether what an instance waited for (an instance, or a task's list of instances)
        has changed since, so that resolving the instance again may get further."""
        if isinstance(waits_on, str):
            return waits_on in self.final
        return waits_on.info.state in DONE

    def _loop_capacity(self, inst: Inst) -> bool:
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

    def _prepare(self, inst: Inst) -> bool:
        """Resolve dependencies, conditions and inputs; ``False`` when a condition fails."""
        task = inst.task
        guarded: list[Inst] = []
        for name in task.exit_for:
            found = self._instances(name, task.loops, inst.index)
            for g in found:
                if g.info.state not in DONE:
                    raise Unresolved("wait", on=g)
            guarded.extend(found)
        for name in task.depends_on:
            for dep in self._instances(name, task.loops, inst.index):
                if dep.info.state not in DONE:
                    raise Unresolved("wait", on=dep)
                if dep.info.state in BAD and not task.options.ignore_upstream_failure:
                    raise Unresolved("skip", f"upstream task {dep.name!r} {dep.info.state.lower()}")
        component = self.spec.components[task.component]
        params: dict[str, Any] = {}
        arts: dict[str, Any] = {}
        for name, definition in component.inputs.items():
            if definition.type == "TASK_FINAL_STATUS":
                params[name] = self._final_status(guarded)
                continue
            source = task.inputs.get(name)
            value = (self._input(source, definition.default, inst) if source
                     else definition.default)
            if source is not None and source.kind == "constant":
                value = self._placeholder(value, inst)
            if definition.kind == "artifact":
                arts[name] = artifact_value(value, functools.partial(self._own, name))
                continue
            try:
                params[name] = _values.to_input(value, definition.type,
                                                optional=definition.optional)
            except _values.ParameterTypeError as exc:
                raise Unresolved("fail", f"input parameter {name!r}: {exc}") from None
        # Conditions last: their operands may only exist once the inputs above do.
        for cond in task.conditions:
            if not self._condition(cond, inst):
                return False
        inst.params = params
        inst.artifacts_in = arts
        return True

    def _input(self, source: ValueSource, default: Any, inst: Inst) -> Any:
        """The value of one input; under ``ignore_upstream_failure`` an output its
        producer never made (it failed or was skipped) is the input's default, as on KFP
        (which only allows the setting when every such input has one)."""
        try:
            return self._resolve(source, inst.task.loops, inst.index)
        except Unresolved as exc:
            if exc.status != "skip" or not inst.task.options.ignore_upstream_failure:
                raise
            return default

    def _placeholder(self, value: Any, inst: Inst) -> Any:
        """What a Kubeflow placeholder constant stands for (``dsl._placeholders``). The
        task's execution id is known only once its start is recorded: ``_run_step`` puts
        it in, and such a task is never served from the cache (the id is new each time)."""
        if not isinstance(value, str) or value not in PLACEHOLDERS:
            return value
        created = (self.run.created_at or utcnow()).astimezone(UTC)
        return {
            dsl.PIPELINE_JOB_NAME_PLACEHOLDER: f"{self.spec.name}-{self.run.id}",
            # Kubeflow's is the Argo workflow's name: the pipeline's, then a suffix.
            dsl.PIPELINE_JOB_RESOURCE_NAME_PLACEHOLDER: f"{self.spec.name}-{self.run.id}",
            dsl.PIPELINE_JOB_ID_PLACEHOLDER: self.run.id,
            dsl.PIPELINE_TASK_NAME_PLACEHOLDER: inst.task.name,
            dsl.PIPELINE_ROOT_PLACEHOLDER: self.spec.pipeline_root or str(self.artifacts.location),
            dsl.PIPELINE_JOB_CREATE_TIME_UTC_PLACEHOLDER: created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            dsl.PIPELINE_JOB_SCHEDULE_TIME_UTC_PLACEHOLDER: created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }.get(value, value)

    def _final_status(self, guarded: list[Inst]) -> dict[str, Any]:
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

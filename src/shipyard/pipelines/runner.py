"""Running pipelines: ``run_pipeline`` (now, or queued with ``submit=True``) and
``retry_pipeline_run``.

Steps run in fresh processes, independent ones concurrently (``parallelism``, default the
number of cores); ``inline=True`` runs them one by one in the calling process so
breakpoints work. Either way each step gets the run's settings through ``SHIPYARD_*``
environment variables, plus ``SHIPYARD_PIPELINE_RUN_ID`` and ``SHIPYARD_EXECUTION_ID`` so
code inside it can link what it records to the step.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any, Literal

from sqlalchemy import Connection

from shipyard import audit
from shipyard.config import Settings
from shipyard.context import RequestContext
from shipyard.errors import FailedPrecondition, InvalidArgument
from shipyard.ids import new_id
from shipyard.pipelines import _containers, _lineage, _ray, runs
from shipyard.pipelines._engine import Engine
from shipyard.pipelines._isolation import StepIsolation
from shipyard.pipelines._state import RunOptions, check_arguments
from shipyard.pipelines.compiler import to_spec
from shipyard.pipelines.errors import PipelineRunFailed
from shipyard.pipelines.models import PipelineRun, TaskInfo, check_source
from shipyard.pipelines.spec import PipelineSpec
from shipyard.store import Store
from shipyard.store.types import utcnow


def run_pipeline(
    store: Store,
    artifacts: Any,
    ctx: RequestContext,
    pipeline_or_yaml: Any,
    arguments: dict[str, Any] | None = None,
    *,
    enable_caching: bool = True,
    parallelism: int | None = None,
    inline: bool = False,
    raise_on_error: bool = True,
    settings: Settings | None = None,
    max_cache_age: float | None = None,
    submit: bool = False,
    backend: Literal["process", "ray"] = "process",
    source: dict[str, str] | None = None,
) -> PipelineRun:
    """Run a pipeline (a ``@dsl.pipeline``, a ``PipelineSpec`` or a compiled YAML path).

    Returns the finished run; a FAILED or CANCELLED run raises ``PipelineRunFailed``
    unless ``raise_on_error=False``. ``submit=True`` only records a QUEUED run for a
    worker (``claim_and_run_next``) and returns it. ``max_cache_age`` (seconds) ignores
    older cache entries. ``backend="ray"`` runs each step as a Ray task (needs
    ``pip install 'shipyard[ray]'``; ``MissingDependency`` otherwise). ``source``: where
    the code that started the run came from (``tracking.source`` tags), kept on the run.
    """
    spec, functions = to_spec(pipeline_or_yaml)
    if not (submit and settings is not None and settings.worker_containers):
        # Queued for workers said to have a runtime (SHIPYARD_WORKER_CONTAINERS), it is
        # checked where its steps run instead, before any starts.
        require_container_runtime(spec, queued=submit)
    resolved = check_arguments(spec, arguments or {})
    _check_artifact_references(store, ctx.project, spec, resolved)
    if parallelism is not None and parallelism < 1:
        raise InvalidArgument("parallelism must be >= 1", field="parallelism")
    if backend not in ("process", "ray"):
        raise InvalidArgument("backend must be 'process' or 'ray'", field="backend")
    if backend == "ray":
        _ray.require_ray()
    options = RunOptions(
        enable_caching=enable_caching,
        parallelism=parallelism,
        inline=inline,
        max_cache_age=max_cache_age,
        backend=backend,
    )
    holder = None if submit else direct_holder()
    run = _create_run(store, ctx, spec, resolved, options, queued=submit,
                      source=check_source(source), holder=holder)
    if submit:
        return run
    # Imported here: the queue imports this module.
    from shipyard.pipelines.queue import Lease, _Heartbeat

    # This process vouches for the run as a worker does for a claimed one: if it dies,
    # any worker fails the run once the lease runs out (it cannot take it over).
    assert holder is not None
    with _Heartbeat(store, run.id, holder, Lease(), None):
        return execute_run(
            store, artifacts, ctx, spec, run, options,
            functions=functions, settings=settings, raise_on_error=raise_on_error,
        )  # fmt: skip


DIRECT = "direct:"  # ``claimed_by`` of a run a process runs itself, not through the queue


def direct_holder() -> str:
    """This process's name on the runs it runs directly: ``direct:host-pid``."""
    return f"{DIRECT}{socket.gethostname()}-{os.getpid()}"[:128]


def require_container_runtime(spec: PipelineSpec, *, queued: bool = False) -> None:
    """Refuse, before anything runs, a pipeline with container components where no
    container runtime answers: such a run could only fail midway. A ``queued`` run's
    refusal also names the setting that says the workers have one."""
    containers = sorted(k for k, c in spec.components.items() if c.container is not None)
    if not containers:
        return
    runtime, why = _containers.find_runtime()
    if runtime is None:
        raise FailedPrecondition(
            f"pipeline {spec.name!r} has container components ({', '.join(containers)}), "
            f"which run with docker or podman, and neither is available here ({why}). "
            "Install and start one on the machine that runs the steps, or use lightweight "
            "Python components (@dsl.component)"
            + ("; if the workers that run queued runs have one, set "
               "SHIPYARD_WORKER_CONTAINERS=1 where the run is submitted (the server)"
               if queued else "")
        )


def _check_artifact_references(
    store: Store, project: str, spec: PipelineSpec, arguments: dict[str, Any]
) -> None:
    """Refuse, before anything is recorded, an artifact argument or constant that is not an
    artifact of ``project`` (the engine checks again whatever reaches a step otherwise,
    such as a loop item)."""
    for name, definition in spec.inputs.items():
        value = arguments.get(name)
        if definition.kind == "artifact" and isinstance(value, dict):
            _lineage.own_artifact(store, project, value, f"arguments.{name}")
    for task_name, task in spec.tasks.items():
        component = spec.components[task.component]
        for name, source in task.inputs.items():
            wanted = component.inputs.get(name)
            if (wanted is not None and wanted.kind == "artifact"
                    and source.kind == "constant" and isinstance(source.value, dict)):
                _lineage.own_artifact(store, project, source.value,
                                      f"tasks.{task_name}.inputs.{name}")


def _create_run(
    store: Store,
    ctx: RequestContext,
    spec: PipelineSpec,
    arguments: dict[str, Any],
    options: RunOptions,
    *,
    queued: bool,
    source: dict[str, str],
    holder: str | None = None,
) -> PipelineRun:
    now = utcnow()
    run = PipelineRun(
        id=new_id(),
        project=ctx.project,
        pipeline_name=spec.name,
        state="QUEUED" if queued else "RUNNING",
        arguments=arguments,
        options=options.to_json(),
        created_at=now,
        started_at=None if queued else now,
        # Submitted through the server (a token was presented): its steps run isolated.
        principal=ctx.actor if ctx.token_id is not None else None,
        source=source,
    )

    def work(conn: Connection) -> PipelineRun:
        context_id = _lineage.run_context(conn, ctx.project, run.id, spec.name)
        created = run.model_copy(update={"context_id": context_id})
        runs.insert_run(conn, created, spec.model_dump(mode="json", by_alias=True))
        if holder is not None:  # run here: leased to this process (``run_pipeline``)
            from shipyard.pipelines.queue import Lease

            runs.update_run(conn, run.id, claimed_by=holder, heartbeat_at=now,
                            lease_until=Lease().until(now))
            created = created.model_copy(update={"claimed_by": holder})
        audit.record(
            conn, ctx, "pipelines.run.create", f"pipeline_runs/{run.id}",
            detail={"pipeline": spec.name, "queued": queued},
        )  # fmt: skip
        return created

    return store.retry_write(work)


def default_settings(store: Store, artifacts: Any, ctx: RequestContext) -> Settings:
    """The settings a step sees when the caller gave none: this store, these artifacts."""
    uri = store.engine.url.render_as_string(hide_password=False)
    return Settings.resolve(uri=uri, artifacts=str(artifacts.location), project=ctx.project)


def execute_run(
    store: Store,
    artifacts: Any,
    ctx: RequestContext,
    spec: PipelineSpec,
    run: PipelineRun,
    options: RunOptions,
    *,
    functions: dict[str, Callable[..., Any]] | None = None,
    settings: Settings | None = None,
    raise_on_error: bool = True,
    prior: dict[str, TaskInfo] | None = None,
    isolation: StepIsolation | None = None,
) -> PipelineRun:
    """Drive a recorded RUNNING run to its end and record the outcome. With ``isolation``
    its steps hold no credentials of this process (``_isolation``)."""
    settings = settings or default_settings(store, artifacts, ctx)
    state: str
    error: str | None
    try:
        # Checked again where the steps run (a queued run's worker): never fail midway.
        require_container_runtime(spec)
    except FailedPrecondition as exc:
        state, error = "FAILED", exc.message
    else:
        engine = Engine(
            store, artifacts, ctx, spec, functions or {}, run, settings, options, prior=prior,
            isolation=isolation,
        )
        try:
            engine.execute()
            state, error = engine.outcome()
        except BaseException as exc:
            _end(store, run.id, "FAILED", f"the runner stopped: {exc!r}", ctx.actor,
                 final=run.id not in runs.worker_held)
            raise
    _end(store, run.id, state, error, ctx.actor)
    with store.read() as conn:
        finished = runs.read_run(conn, ctx.project, run.id)
    if finished.state != "SUCCEEDED" and raise_on_error:
        raise PipelineRunFailed(finished)
    return finished


def _end(store: Store, run_id: str, state: str, error: str | None, actor: str, *,
         final: bool = True) -> None:
    def work(conn: Connection) -> None:
        runs.update_run(conn, run_id, state=state, error=error, finished_at=utcnow())
        if final and (state == "SUCCEEDED" or run_id not in runs.handing_back):
            runs.announce_finished(conn, run_id, actor)

    store.retry_write(work)


def retry_pipeline_run(
    store: Store,
    artifacts: Any,
    ctx: RequestContext,
    run_id: str,
    *,
    raise_on_error: bool = True,
    settings: Settings | None = None,
    inline: bool | None = None,
    submit: bool = False,
) -> PipelineRun:
    """Rerun a FAILED or CANCELLED run in place: tasks that succeeded keep their outputs,
    everything else runs again (from the recorded source). ``submit=True`` queues it for a
    worker instead (as the server does) and returns it QUEUED."""
    holder = direct_holder()

    def work(conn: Connection) -> tuple[PipelineRun, dict[str, Any]]:
        run = runs.read_run(conn, ctx.project, run_id)
        if run.state not in ("FAILED", "CANCELLED"):
            raise FailedPrecondition(
                f"pipeline run {run_id} is {run.state}; only FAILED or CANCELLED runs are retried"
            )
        if submit:
            principal = ctx.actor if ctx.token_id is not None else None
            runs.update_run(conn, run_id, state="QUEUED", error=None, finished_at=None,
                            started_at=None, claimed_by=None, principal=principal)
        else:  # run here: leased to this process, as in ``run_pipeline``
            from shipyard.pipelines.queue import Lease

            now = utcnow()
            runs.update_run(
                conn, run_id, state="RUNNING", error=None, finished_at=None, started_at=now,
                claimed_by=holder, heartbeat_at=now, lease_until=Lease().until(now),
            )
        audit.record(conn, ctx, "pipelines.run.retry", f"pipeline_runs/{run_id}",
                     detail={"queued": submit})
        return run, runs.read_spec(conn, run_id)

    run, raw_spec = store.retry_write(work)
    if submit:
        with store.read() as conn:
            return runs.read_run(conn, ctx.project, run_id)
    spec = PipelineSpec.model_validate(raw_spec)
    options = RunOptions.from_json(run.options)
    if inline is not None:
        options = RunOptions(**{**options.to_json(), "inline": inline})
    from shipyard.pipelines.queue import Lease, _Heartbeat

    with _Heartbeat(store, run_id, holder, Lease(), None):
        return execute_run(
            store, artifacts, ctx, spec, run.model_copy(update={"state": "RUNNING"}), options,
            settings=settings, raise_on_error=raise_on_error, prior=run.tasks,
        )  # fmt: skip


__all__ = ["default_settings", "execute_run", "retry_pipeline_run", "run_pipeline"]

"""``run_quickstart``: seed 002's workflow end to end on the embedded store, with a summary.

It runs the lead-scoring pipeline through the ordinary runner (so caching, lineage and the
registry behave exactly as they would for user pipelines), shows each step as it finishes,
and ends with the figures, the registry's decision, the production model's lineage and the
commands to look further.

Crash safety comes from the layers below plus two rules here: one quickstart at a time per
home (an exclusive lock the kernel drops when its holder dies), and a run left RUNNING by a
killed quickstart is marked cancelled before the next one starts, because holding the lock
proves its runner is gone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import importlib.util
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from shipyard.artifacts import ArtifactStore
from shipyard.config import Settings, ensure_home
from shipyard.context import RequestContext
from shipyard.errors import FailedPrecondition, InvalidArgument, ShipyardError
from shipyard.lineage import queries
from shipyard.pipelines import (
    PipelineRun,
    cancel_pipeline_run,
    get_pipeline_run,
    list_pipeline_runs,
    run_pipeline,
)
from shipyard.quickstart.data import (
    CANARY_REQUESTS,
    DEFAULT_ROWS,
    DEFAULT_SEED,
    MAX_ROWS,
    MAX_SEED,
    generate_leads,
)
from shipyard.quickstart.loop import LoopOutcome, close_loop, enable_loop
from shipyard.quickstart.monitoring import MONITOR, DriftFound, watch_for_drift
from shipyard.quickstart.pipeline import MODEL_NAME, PIPELINE_NAME, lead_scoring
from shipyard.quickstart.progress import ordered_tasks, report_tasks, seconds_between
from shipyard.quickstart.report import home_flag, lineage_chain, print_summary
from shipyard.quickstart.serving import ENDPOINT, ServedLeads, curl_line, serve_production
from shipyard.registry import ModelVersion, get_model_version
from shipyard.runtime import Runtime, open_runtime
from shipyard.store import Store
from shipyard.tracking.source import source_tags

# What the steps import; all are core dependencies, so a missing one means a broken install.
REQUIRED = ("numpy", "pandas", "pyarrow", "sklearn", "skops", "xgboost")
_PIP_NAMES = {"sklearn": "scikit-learn"}
_POLL = 0.2


@dataclass(frozen=True)
class StepResult:
    name: str
    state: str
    cached: bool
    seconds: float | None


@dataclass(frozen=True)
class QuickstartResult:
    """What a quickstart did; ``registered`` is False when no new version was created."""

    home: Path
    run_id: str
    state: str
    steps: list[StepResult]
    metrics: dict[str, float]
    version: int | None
    semver: str | None
    promoted: bool
    registered: bool
    reason: str
    production: ModelVersion | None
    lineage: list[str] = field(default_factory=list)
    seconds: float = 0.0
    served: ServedLeads | None = None
    drift: DriftFound | None = None
    loop: LoopOutcome | None = None

    @property
    def executed(self) -> list[str]:
        return [s.name for s in self.steps if s.state == "SUCCEEDED" and not s.cached]

    @property
    def cached(self) -> list[str]:
        return [s.name for s in self.steps if s.cached]


def check_requirements() -> None:
    """Fail with one line naming the package to install when a step's import would fail."""
    for module in REQUIRED:
        if importlib.util.find_spec(module) is None:
            pip = _PIP_NAMES.get(module, module)
            raise FailedPrecondition(
                f"{pip} is not installed and the quickstart needs it: run  pip install {pip}  "
                "(or reinstall shipyard)"
            )


def resolve_settings(home: Path | None) -> Settings:
    settings = Settings.resolve(home=home)
    if not settings.uri.startswith("sqlite"):
        raise FailedPrecondition(
            "the quickstart runs on the embedded SQLite store: unset SHIPYARD_URI "
            f"(it is {settings.uri.split('://', 1)[0]}://...) or pass --home"
        )
    ensure_home(settings.home)
    return settings


@contextlib.contextmanager
def _home_lock(home: Path) -> Iterator[None]:
    path = home / "locks" / "quickstart.lock"
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle = open(path, "a+b")  # held until the block ends
    except OSError as exc:
        raise FailedPrecondition(f"cannot write to {path.parent}: {exc.strerror}") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FailedPrecondition(
                f"another quickstart is running in {home}; wait for it or use another --home"
            ) from None
        yield


def run_quickstart(
    *,
    home: Path | None = None,
    rows: int = DEFAULT_ROWS,
    seed: int = DEFAULT_SEED,
    console: Console | None = None,
    canary_requests: int = CANARY_REQUESTS,
) -> QuickstartResult:
    """Run the lead-scoring pipeline under ``home`` and print what happened to ``console``;
    then serve the production model, let a monitor catch a drifted mix of leads, and close
    the loop (``quickstart.loop``): the alert retrains, the winner goes out as a canary and
    is promoted after ``canary_requests`` of its requests or rolled back.

    Raises ``ShipyardError`` subclasses with one-line messages for bad arguments, an
    unwritable home or a missing package; a failed step raises ``FailedPrecondition``
    naming the step and the command that shows its log.
    """
    console = console or Console()
    if isinstance(rows, bool) or not isinstance(rows, int) or not 100 <= rows <= MAX_ROWS:
        raise InvalidArgument(f"--rows must be between 100 and {MAX_ROWS}, not {rows}",
                              field="rows")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise InvalidArgument(f"--seed must be between 0 and {MAX_SEED}, not {seed}",
                              field="seed")
    if (isinstance(canary_requests, bool) or not isinstance(canary_requests, int)
            or not 1 <= canary_requests <= 10_000):
        raise InvalidArgument(f"canary_requests must be between 1 and 10000, not "
                              f"{canary_requests}", field="canary_requests")
    check_requirements()
    settings = resolve_settings(home)
    started = time.monotonic()
    with _home_lock(settings.home):
        runtime = open_runtime(settings)
        store, artifacts = runtime.store, runtime.artifacts
        ctx = RequestContext(project=settings.project)
        _cancel_orphans(store, ctx)
        console.print(
            f"[bold]Shipyard quickstart[/]: lead scoring (seed 002) on {rows:,} generated "
            f"leads, seed {seed}\nhome {settings.home}"
        )
        run = _run_with_progress(store, artifacts, ctx, settings, rows, seed, console)
        result = _summarise(store, settings, run, 0.0)
        if result.production is not None:
            served, drift, loop = _serve(runtime, settings, result.production, rows, seed,
                                         canary_requests, console)
            result = dataclasses.replace(result, served=served, drift=drift, loop=loop)
        result = dataclasses.replace(result, seconds=time.monotonic() - started)
    print_summary(console, result)
    return result


def _serve(runtime: Runtime, settings: Settings, production: ModelVersion, rows: int,
           seed: int, canary_requests: int, console: Console
           ) -> tuple[ServedLeads, DriftFound, LoopOutcome]:
    """Deploy and score through the SDK's local ports, as a user's code would; let a
    monitor on the endpoint judge a drifted mix of leads; and close the loop on its alert
    with the worker's job sources, driven in this process."""
    from shipyard.sdk.local import LocalSession

    session = LocalSession(settings)
    ctx = RequestContext(project=settings.project)
    try:
        with console.status(f"serving the production model on {ENDPOINT}..."):
            served = serve_production(session.serving, MODEL_NAME, production, seed)
        enable_loop(session.automation, runtime, ctx, rows=rows, seed=seed,
                    canary_requests=canary_requests)
        with console.status(f"sending a drifted mix of leads to {ENDPOINT}; {MONITOR} "
                            "judges them..."):
            drift = watch_for_drift(session.serving, session.monitoring,
                                    generate_leads(rows, seed), seed)
        loop = close_loop(runtime, session.serving, session.automation, session.monitoring,
                          ctx, drift, seed=seed, console=console)
    finally:
        session.close()
    return dataclasses.replace(served, curl=curl_line(settings)), drift, loop


def _cancel_orphans(store: Store, ctx: RequestContext) -> None:
    for stale in list_pipeline_runs(store, ctx.project, pipeline_name=PIPELINE_NAME,
                                    state="RUNNING"):  # fmt: skip
        cancel_pipeline_run(store, ctx, stale.id, force=True)


def _run_with_progress(
    store: Store,
    artifacts: ArtifactStore,
    ctx: RequestContext,
    settings: Settings,
    rows: int,
    seed: int,
    console: Console,
) -> PipelineRun:
    """Run the pipeline in a worker thread and report each task as it settles."""
    outcome: dict[str, Any] = {}
    known = {r.id for r in list_pipeline_runs(store, ctx.project, pipeline_name=PIPELINE_NAME)}
    code = source_tags()  # which code ran it, as the SDK records for any pipeline run

    def work() -> None:
        try:
            outcome["run"] = run_pipeline(
                store, artifacts, ctx, lead_scoring, {"rows": rows, "seed": seed},
                settings=settings, raise_on_error=False, source=code,
            )  # fmt: skip
        except BaseException as exc:  # re-raised in the calling thread
            outcome["error"] = exc

    worker = threading.Thread(target=work, name="quickstart-runner", daemon=True)
    worker.start()
    shown: set[str] = set()
    run_id: str | None = None
    try:
        with console.status("running the pipeline...") as status:
            while worker.is_alive():
                worker.join(_POLL)
                run_id = run_id or _new_run_id(store, ctx, known)
                if run_id is not None:
                    report_tasks(console, status,
                                 get_pipeline_run(store, ctx.project, run_id), shown)
    except KeyboardInterrupt:
        if run_id is not None:
            cancel_pipeline_run(store, ctx, run_id)
        worker.join()
        raise
    if "error" in outcome:
        raise outcome["error"]
    run: PipelineRun = outcome["run"]
    report_tasks(console, None, run, shown)
    if not run.succeeded:
        failed = next((t for t in ordered_tasks(run) if t.state == "FAILED"), None)
        where = f"step {failed.name} failed" if failed else f"the run ended {run.state}"
        last = (failed.error or "").strip().splitlines()[-1:] if failed else []
        logs = f"shipyard pipelines logs {run.id}{home_flag(settings.home)}"
        if failed:
            logs += f" --task {failed.name}"
        raise FailedPrecondition(f"{where}{': ' + last[0] if last else ''} (see: {logs})")
    return run


def _new_run_id(store: Store, ctx: RequestContext, known: set[str]) -> str | None:
    for candidate in list_pipeline_runs(store, ctx.project, pipeline_name=PIPELINE_NAME,
                                        limit=5):  # fmt: skip
        if candidate.id not in known:
            return candidate.id
    return None


def _summarise(
    store: Store, settings: Settings, run: PipelineRun, seconds: float
) -> QuickstartResult:
    steps = [
        StepResult(t.name, t.state, t.cached, seconds_between(t.started_at, t.finished_at))
        for t in ordered_tasks(run)
    ]
    evaluation = run.tasks["evaluate-model"].outputs
    register = run.tasks["register-model"]
    metrics = {k: float(evaluation[k]) for k in ("rmse", "mae", "r2")}
    try:
        production: ModelVersion | None = get_model_version(
            store, settings.project, MODEL_NAME, alias="production"
        )
    except ShipyardError:
        production = None
    lineage = [] if production is None else _lineage_chain(store, settings.project, production)
    return QuickstartResult(
        home=settings.home,
        run_id=run.id,
        state=run.state,
        steps=steps,
        metrics=metrics,
        version=int(register.outputs["version"]),
        semver=str(register.outputs["semver"]) or None,
        promoted=bool(register.outputs["promoted"]) and not register.cached,
        registered=not register.cached,
        reason=str(register.outputs["reason"]),
        production=production,
        lineage=lineage,
        seconds=seconds,
    )


def _lineage_chain(store: Store, project: str, version: ModelVersion) -> list[str]:
    """The production version's ancestry, oldest first: artifact, step, artifact, ..."""
    if version.artifact_id is None:
        return []
    graph = queries.graph(store, project, version.artifact_id, direction="upstream")
    return lineage_chain(graph)

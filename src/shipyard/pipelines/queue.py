"""Queued runs: ``run_pipeline(..., submit=True)`` records them; a worker calls
``claim_and_run_next`` in a loop to take the oldest one and run it.

Claiming is the store's ``claim_next`` (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the write
lock on SQLite), so two workers never both run the same run, and on PostgreSQL a worker does
not wait for another's claim: it takes the next queued run.

A claimed run is leased: while it runs, its worker heartbeats every ``Lease.heartbeat``
seconds, each beat moving the run's ``lease_until`` to ``Lease.timeout`` seconds ahead.
A run whose lease ran out (its worker was killed, or lost the database for that long) is
recovered by any worker (``recover_lost_runs``): re-queued, its finished tasks kept (the
next claimant reuses them), up to ``Lease.max_recoveries`` times; then failed, so a run
that kills every worker that takes it stops being taken. A worker told to stop hands its
run back (``handback``): its steps are killed and the run is queued again at once.

A run started without the queue (``run_pipeline`` without ``submit``) is leased the same
way to the process that runs it (``claimed_by`` ``direct:host-pid``); when that process
dies, the worker that recovers it fails it instead of queueing it, since nothing else
could finish it as its caller meant (its steps may use the caller's files and functions).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select, update

from shipyard import audit
from shipyard.config import DEFAULT_HOST, DEFAULT_PORT, Settings
from shipyard.context import RequestContext
from shipyard.errors import InvalidArgument, ShipyardError
from shipyard.pipelines import _lineage, runs
from shipyard.pipelines._isolation import StepIsolation, resolve_user
from shipyard.pipelines._state import RunOptions
from shipyard.pipelines.models import PipelineRun
from shipyard.pipelines.runner import DIRECT, execute_run
from shipyard.pipelines.spec import PipelineSpec
from shipyard.security import service as security
from shipyard.store import Store
from shipyard.store.dialect import claim_next
from shipyard.store.schema import pipeline_runs, pipeline_tasks
from shipyard.store.types import utcnow

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0
LEASE_SECONDS = 30.0
MAX_RECOVERIES = 2


@dataclass(frozen=True)
class Lease:
    """How a worker vouches for the runs it claimed.

    ``heartbeat``: seconds between beats. ``timeout``: how far ahead each beat extends the
    lease; a run is recovered once that long has passed without a beat, so it bounds how
    long a dead worker's run stays RUNNING (plus one poll of a live worker). It must be at
    least three beats, so a beat or two lost to a busy database do not cost the run.
    ``max_recoveries``: how often a run is re-queued after losing its worker before it is
    failed instead.
    """

    heartbeat: float = HEARTBEAT_SECONDS
    timeout: float = LEASE_SECONDS
    max_recoveries: int = MAX_RECOVERIES

    def __post_init__(self) -> None:
        if not 0.05 <= self.heartbeat <= 3600:
            raise InvalidArgument("the heartbeat must be between 0.05 and 3600 seconds",
                                  field="heartbeat")
        if not self.timeout >= 3 * self.heartbeat:
            raise InvalidArgument(
                f"the lease ({self.timeout:g}s) must be at least three heartbeats "
                f"({3 * self.heartbeat:g}s): lengthen the lease or beat more often",
                field="lease")
        if not 0 <= self.max_recoveries <= 100:
            raise InvalidArgument("max_recoveries must be between 0 and 100",
                                  field="max_recoveries")

    def until(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.timeout)


def _claim(store: Store, worker_name: str, project: str | None,
           lease: Lease | None = None,
           skip_backends: tuple[str, ...] = ()) -> tuple[str, str] | None:
    lease = lease or Lease()

    def work(conn: Connection) -> tuple[str, str] | None:
        queued = pipeline_runs.c.state == "QUEUED"
        if project is not None:
            queued = and_(queued, pipeline_runs.c.project == project)
        if skip_backends:  # runs whose executor this worker cannot reach now stay queued
            backend = func.coalesce(pipeline_runs.c.options["backend"].as_string(), "process")
            queued = and_(queued, backend.not_in(skip_backends))
        now = utcnow()
        row = claim_next(
            conn, pipeline_runs, queued,
            order_by=[pipeline_runs.c.created_at, pipeline_runs.c.id],
            set_values={"state": "RUNNING", "claimed_by": worker_name, "started_at": now,
                        "heartbeat_at": now, "lease_until": lease.until(now)},
        )  # fmt: skip
        return None if row is None else (str(row.id), str(row.project))

    return store.retry_write(work)


def claim_and_run_next(
    store: Store,
    artifacts: Any,
    worker_name: str,
    *,
    project: str | None = None,
    settings: Settings | None = None,
    lease: Lease | None = None,
    handback: threading.Event | None = None,
    skip_backends: tuple[str, ...] = (),
) -> PipelineRun | None:
    """Run the oldest QUEUED run (of ``project``, or any) to its end and return it;
    ``None`` when the queue is empty. A failed run is returned, not raised. Runs whose
    executor is in ``skip_backends`` (``"ray"`` while its head cannot be reached) are
    left for later or for another worker.

    While it runs, a thread heartbeats for it (``lease``). Setting ``handback`` stops it
    early: its steps are killed and it is queued again (finished tasks kept), and the run
    is returned QUEUED. So is a run this call was interrupted in (``KeyboardInterrupt``),
    before the exception goes on."""
    lease = lease or Lease()
    claimed = _claim(store, worker_name, project, lease, skip_backends)
    if claimed is None:
        return None
    run_id, run_project = claimed
    runs.worker_held.add(run_id)
    try:
        with _Heartbeat(store, run_id, worker_name, lease, handback) as beat:
            try:
                _execute_claimed(store, artifacts, worker_name, run_id, run_project, settings)
            except Exception as exc:  # the worker failed, not the run's code: try once more
                _hand_back(store, run_id, worker_name, f"its worker failed ({exc!r})",
                           max_recoveries=lease.max_recoveries)
                raise
            except BaseException:
                _hand_back(store, run_id, worker_name, "its worker was interrupted")
                raise
        if beat.handed_back:
            _hand_back(store, run_id, worker_name, "its worker was stopping")
    finally:
        runs.worker_held.discard(run_id)
        runs.handing_back.discard(run_id)
    with store.read() as conn:
        return runs.read_run(conn, run_project, run_id)


def _execute_claimed(store: Store, artifacts: Any, worker_name: str, run_id: str,
                     run_project: str, settings: Settings | None) -> None:
    with store.read() as conn:
        run = runs.read_run(conn, run_project, run_id)
        spec = PipelineSpec.model_validate(runs.read_spec(conn, run_id))
    ctx = RequestContext(project=run_project, actor=worker_name)
    options = RunOptions.from_json(run.options)
    if run.principal is None:  # queued in local mode: its submitter had the store already
        execute_run(store, artifacts, ctx, spec, run, options, settings=settings,
                    raise_on_error=False, prior=run.tasks or None)
        return
    try:
        token = security.issue_run_token(
            store, ctx, run.principal, run_project, name=f"pipeline-run-{run_id[:12]}"
        )
        isolation = _isolation_for(settings, token.plaintext)
    except ShipyardError as exc:
        _fail_unstarted(store, run_id, f"the run could not start: {exc.message}")
        return
    try:
        execute_run(store, artifacts, ctx, spec, run, options, settings=settings,
                    raise_on_error=False, prior=run.tasks or None, isolation=isolation)
    finally:
        security.revoke_token(store, ctx, token.id)


class _Heartbeat:
    """Extends a claimed run's lease every ``lease.heartbeat`` seconds from a thread (and
    recovers other workers' lost runs at each beat), and asks the run's engine to stop
    (``CANCELLING``, which it polls) once ``handback`` is set. A beat that finds the run
    no longer ours (recovered by another worker after this one lost the database for
    longer than the lease) is logged and ends the beating."""

    _TICK = 0.1  # how often the thread looks at ``handback`` between beats

    def __init__(self, store: Store, run_id: str, worker_name: str, lease: Lease,
                 handback: threading.Event | None) -> None:
        self.store = store
        self.run_id = run_id
        self.worker_name = worker_name
        self.lease = lease
        self.handback = handback
        self.handed_back = False
        self.lost = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name=f"shipyard-heartbeat-{run_id[:8]}")

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join(timeout=30)

    def _ours(self) -> Any:
        return and_(pipeline_runs.c.id == self.run_id,
                    pipeline_runs.c.claimed_by == self.worker_name)

    def _loop(self) -> None:
        import time

        next_beat = time.monotonic() + self.lease.heartbeat
        while not self._done.wait(min(self._TICK, self.lease.heartbeat)):
            try:
                if self.handback is not None and self.handback.is_set() and not self.handed_back:
                    self.handed_back = self._ask_to_stop()
                if time.monotonic() >= next_beat:
                    next_beat = time.monotonic() + self.lease.heartbeat
                    if not self._beat():
                        return
                    # A busy worker recovers the others' lost runs too, so a dead worker's
                    # run waits at most a lease and a beat even when every worker is busy.
                    recover_lost_runs(self.store, self.worker_name, self.lease)
            except ShipyardError as exc:  # the database is away: beat again next time
                log.warning("pipeline run %s: heartbeat failed: %s", self.run_id, exc.message,
                            extra={"run_id": self.run_id, "worker": self.worker_name})
            except Exception:
                log.exception("pipeline run %s: heartbeat failed", self.run_id,
                              extra={"run_id": self.run_id, "worker": self.worker_name})

    def _beat(self) -> bool:
        def work(conn: Connection) -> int:
            now = utcnow()
            done = conn.execute(
                update(pipeline_runs)
                .where(self._ours(), pipeline_runs.c.state.in_(("RUNNING", "CANCELLING")))
                .values(heartbeat_at=now, lease_until=self.lease.until(now))
            )
            return done.rowcount

        if self.store.retry_write(work) == 1:
            return True
        with self.store.read() as conn:
            row = conn.execute(select(pipeline_runs.c.state, pipeline_runs.c.claimed_by)
                               .where(pipeline_runs.c.id == self.run_id)).first()
        if row is not None and row.claimed_by != self.worker_name:
            self.lost = True
            log.warning("pipeline run %s was recovered by another worker after this one "
                        "missed its lease; its steps here may still be running",
                        self.run_id, extra={"run_id": self.run_id, "worker": self.worker_name})
        return False

    def _ask_to_stop(self) -> bool:
        def work(conn: Connection) -> bool:
            done = conn.execute(
                update(pipeline_runs)
                .where(self._ours(), pipeline_runs.c.state == "RUNNING")
                .values(state="CANCELLING")
            )
            return done.rowcount == 1

        runs.handing_back.add(self.run_id)  # before the engine can see CANCELLING
        asked = self.store.retry_write(work)
        if not asked:
            runs.handing_back.discard(self.run_id)
        if asked:
            log.info("pipeline run %s: handing it back", self.run_id,
                     extra={"run_id": self.run_id, "worker": self.worker_name})
        return asked


def _hand_back(store: Store, run_id: str, worker_name: str, why: str, *,
               max_recoveries: int | None = None) -> None:
    """Queue again a run this worker stopped (its engine ended it CANCELLED or FAILED),
    unless it finished on its own first or someone else has it now. With
    ``max_recoveries`` the hand-back counts as a recovery, and a run out of them stays
    as its engine ended it."""

    def work(conn: Connection) -> None:
        row = conn.execute(select(pipeline_runs).where(pipeline_runs.c.id == run_id)).first()
        if row is None or row.claimed_by != worker_name or row.state in ("SUCCEEDED", "QUEUED"):
            return
        recoveries = row.recoveries
        if max_recoveries is not None:
            if recoveries >= max_recoveries:
                _settle_tasks(conn, run_id, running="FAILED", why=why)
                runs.announce_finished(conn, run_id, worker_name)
                return
            recoveries += 1
        _requeue(conn, row, recoveries=recoveries, note=f"re-queued: {why} ({worker_name})")

    try:
        store.retry_write(work)
    except ShipyardError as exc:  # its lease runs out and another worker recovers it
        log.warning("pipeline run %s could not be handed back (%s); it is recovered when "
                    "its lease runs out", run_id, exc.message, extra={"run_id": run_id})


def _requeue(conn: Connection, row: Any, *, recoveries: int, note: str) -> None:
    _settle_tasks(conn, row.id, running="CANCELLED", why=note)
    runs.update_run(conn, row.id, state="QUEUED", claimed_by=None, started_at=None,
                    finished_at=None, heartbeat_at=None, lease_until=None,
                    recoveries=recoveries, error=note)


def _settle_tasks(conn: Connection, run_id: str, *, running: str, why: str) -> None:
    """End the run's unfinished tasks: RUNNING ones as ``running``, PENDING ones
    CANCELLED, each with its lineage execution, so no ended run shows a task running."""
    now = utcnow()
    rows = conn.execute(select(pipeline_tasks.c.name, pipeline_tasks.c.state,
                               pipeline_tasks.c.execution_id)
                        .where(pipeline_tasks.c.run_id == run_id,
                               pipeline_tasks.c.state.in_(("RUNNING", "PENDING")))).fetchall()
    for task in rows:
        state = running if task.state == "RUNNING" else "CANCELLED"
        conn.execute(update(pipeline_tasks)
                     .where(pipeline_tasks.c.run_id == run_id, pipeline_tasks.c.name == task.name)
                     .values(state=state, error=why, finished_at=now))
        if task.execution_id:
            _lineage.set_state(conn, task.execution_id,
                               "FAILED" if state == "FAILED" else "CANCELED", None)


def recover_lost_runs(store: Store, worker_name: str, lease: Lease | None = None, *,
                      limit: int = 20) -> list[PipelineRun]:
    """Recover up to ``limit`` runs whose claimant's lease ran out: re-queue them (their
    finished tasks kept) while they have recoveries left, fail them after; a run that was
    being cancelled ends CANCELLED. Returns the recovered runs as they are now."""
    lease = lease or Lease()
    done: list[PipelineRun] = []
    # Looked for with a read first: on SQLite a write transaction takes the database's
    # one write lock, which every worker asking at every beat would contend for.
    with store.read() as conn:
        if conn.execute(select(pipeline_runs.c.id).where(_lost(utcnow(), lease))
                        .limit(1)).first() is None:
            return done
    for _ in range(limit):
        recovered = store.retry_write(lambda conn: _recover_one(conn, worker_name, lease))
        if recovered is None:
            break
        done.append(recovered)
    return done


def _lost(now: datetime, lease: Lease) -> Any:
    """Runs a worker claimed whose lease ran out by ``now``."""
    c = pipeline_runs.c
    return and_(
        c.state.in_(("RUNNING", "CANCELLING")), c.claimed_by.is_not(None),
        or_(c.lease_until < now,
            # Claimed by a release without leases: judged by its one heartbeat, at claim.
            and_(c.lease_until.is_(None),
                 c.heartbeat_at < now - timedelta(seconds=lease.timeout))),
    )  # fmt: skip


def _recover_one(conn: Connection, worker_name: str, lease: Lease) -> PipelineRun | None:
    now = utcnow()
    c = pipeline_runs.c
    candidate = (select(pipeline_runs).where(_lost(now, lease))
                 .order_by(c.lease_until, c.id).limit(1))
    if conn.dialect.name != "sqlite":  # SQLite: the write transaction excludes the others
        candidate = candidate.with_for_update(skip_locked=True)
    row = conn.execute(candidate).first()
    if row is None:
        return None
    last = row.heartbeat_at.isoformat(timespec="seconds") if row.heartbeat_at else "never"
    gone = f"its worker {row.claimed_by} stopped heartbeating (last beat {last})"
    direct = str(row.claimed_by).startswith(DIRECT)
    if direct:
        gone = (f"the process that ran it, {row.claimed_by.removeprefix(DIRECT)}, stopped "
                f"heartbeating (last beat {last})")
    if row.state == "CANCELLING":
        _settle_tasks(conn, row.id, running="CANCELLED", why=gone)
        runs.update_run(conn, row.id, state="CANCELLED", finished_at=now,
                        error=f"cancelled; {gone}")
        outcome = "cancelled"
    elif direct:  # run by its caller, not queued: no worker may take it over
        _settle_tasks(conn, row.id, running="FAILED", why=gone)
        runs.update_run(
            conn, row.id, state="FAILED", finished_at=now,
            error=f"{gone}; 'shipyard pipelines retry {row.id}' runs it again, reusing "
                  "finished steps")
        outcome = "failed"
    elif row.recoveries < lease.max_recoveries:
        _requeue(conn, row, recoveries=row.recoveries + 1,
                 note=f"re-queued ({row.recoveries + 1} of {lease.max_recoveries}): {gone}")
        outcome = "requeued"
    else:
        _settle_tasks(conn, row.id, running="FAILED", why=gone)
        runs.update_run(
            conn, row.id, state="FAILED", finished_at=now,
            error=f"{gone}, and it was re-queued {row.recoveries} times already; "
                  f"'shipyard pipelines retry {row.id}' runs it again, reusing finished steps")
        outcome = "failed"
    ctx = RequestContext(project=row.project, actor=worker_name)
    if outcome != "requeued":
        runs.announce_finished(conn, row.id, worker_name)
    audit.record(conn, ctx, "pipelines.run.recover", f"pipeline_runs/{row.id}",
                 detail={"outcome": outcome, "claimed_by": row.claimed_by})
    log.warning("pipeline run %s %s: %s", row.id, outcome, gone,
                extra={"run_id": row.id, "worker": worker_name})
    return runs.read_run(conn, row.project, row.id)


def _isolation_for(settings: Settings | None, token: str) -> StepIsolation:
    """How this worker starts the steps of server-side runs (its settings say where the
    server is and which OS user steps run as)."""
    server_url = (settings.server_url if settings else None) or (
        f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
    )
    step_user = settings.step_user if settings else None
    user = resolve_user(step_user) if step_user else None
    return StepIsolation(server_url=server_url, token=token, user=user)


def _fail_unstarted(store: Store, run_id: str, error: str) -> None:
    def work(conn: Connection) -> None:
        runs.update_run(conn, run_id, state="FAILED", error=error, finished_at=utcnow())
        runs.announce_finished(conn, run_id, "shipyard")

    store.retry_write(work)

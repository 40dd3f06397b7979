"""Durable canary rollouts, judged by the workers (the closed loop's last step).

``start_canary`` gives a deployed candidate ``percent`` of an endpoint's requests (the
champions share the rest) and records the rollout, in one transaction. The workers' job
source (``worker.sources.CanaryRollouts``) calls ``judge_canaries``: it leases one running
rollout, counts the candidate's requests in the request log since the start (DuckDB over the
Parquet files, as monitoring reads them) and, once ``after_requests`` are in, compares it with
the champions over the same time by the rules of ``serving.verdicts`` (latency, error
rate, and predictions when asked).

It then **promotes** (the candidate takes 100, the champions are undeployed, and the
``promote_alias`` of the candidate's model moves to its version) or **rolls back** (the
candidate is undeployed and the split before the canary restored). Each decision is one
transaction with its audit rows and built-in events, taken under the rollout's row lock
and only while the rollout is still ``running`` and leased by the judging worker: a
redelivered or repeated judgement never promotes twice. A worker that dies mid-judgement
leaves its lease to run out; the next worker judges the rollout again from the log.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from sqlalchemy import Connection, and_, delete, insert, or_, select, update

from shipyard import audit
from shipyard.context import RequestContext
from shipyard.errors import FailedPrecondition, InvalidArgument, NotFound
from shipyard.events.builtin import ENDPOINT_UNDEPLOYED, announce
from shipyard.ids import check_id, new_id
from shipyard.serving import service
from shipyard.serving.models import (
    DEFAULT_AFTER_REQUESTS,
    DEFAULT_ALIAS,
    DEFAULT_ERROR_ALPHA,
    DEFAULT_ERROR_MARGIN,
    DEFAULT_LATENCY_RATIO,
    DEFAULT_PERCENT,
    ROLLOUT_SETTINGS,
    CanaryRollout,
    RolloutState,
)
from shipyard.serving.ray_runtime import check_runtime
from shipyard.serving.traffic import TOTAL, rescale
from shipyard.serving.verdicts import compare, read_figures
from shipyard.store import Store
from shipyard.store.dialect import claim_next
from shipyard.store.schema import endpoint_deployments
from shipyard.store.schema.rollouts import canary_rollouts
from shipyard.store.types import utcnow
from shipyard.validation import check_name

__all__ = ["CanaryRollout", "CanaryRollouts", "champion_runtime", "deploy_candidate",
           "endpoint_rollout", "get_rollout", "judge_canaries", "list_rollouts",
           "start_canary", "start_rollout"]

MAX_AFTER_REQUESTS = 10_000_000
LEASE_SECONDS = 120.0
CHECK_EVERY = 5.0

# -- starting ------------------------------------------------------------------------------


def start_canary(store: Store, ctx: RequestContext, endpoint: str, deployed_model_id: str, *,
                 percent: int = DEFAULT_PERCENT,
                 after_requests: int = DEFAULT_AFTER_REQUESTS,
                 max_latency_ratio: float = DEFAULT_LATENCY_RATIO,
                 prediction_tolerance: float | None = None,
                 promote_alias: str | None = DEFAULT_ALIAS,
                 error_rate_alpha: float = DEFAULT_ERROR_ALPHA,
                 max_error_rate_increase: float = DEFAULT_ERROR_MARGIN) -> CanaryRollout:
    """Give ``deployed_model_id`` (deployed to ``endpoint`` already, usually with 0)
    ``percent`` of the requests and record the rollout for the workers to judge, in one
    transaction. One rollout runs per endpoint at a time (``FailedPrecondition`` otherwise).
    ``promote_alias``: the alias moved to the candidate's version on promotion (None: none).
    ``error_rate_alpha`` and ``max_error_rate_increase``: the error-rate test's level and
    margin (see the module's docstring).
    """
    check_name(endpoint, "endpoint")
    criteria = check_criteria(deployed_model_id, percent, after_requests, max_latency_ratio,
                              prediction_tolerance, promote_alias,
                              error_rate_alpha=error_rate_alpha,
                              max_error_rate_increase=max_error_rate_increase)

    def work(conn: Connection) -> CanaryRollout:
        row = service._endpoint_row(conn, ctx.project, endpoint, lock=True)
        current = service._deployments_of(conn, [row.id]).get(row.id, [])
        candidate = next((d for d in current if d.id == deployed_model_id), None)
        if candidate is None:
            raise NotFound(f"{deployed_model_id!r} is not deployed to {endpoint!r}: deployed "
                           f"models are {[d.id for d in current]}", field="deployed_model_id")
        if candidate.shadow:
            raise FailedPrecondition(f"{deployed_model_id} is a shadow: a canary needs a "
                                     "deployment that answers", field="deployed_model_id")
        answering = [d for d in current if not d.shadow]
        champions = [d.id for d in answering if d.id != deployed_model_id]
        if not champions:
            raise FailedPrecondition(f"{deployed_model_id} is the only model on {endpoint!r}: "
                                     "a canary is judged against a champion",
                                     field="deployed_model_id")
        running = conn.execute(select(canary_rollouts.c.candidate).where(
            canary_rollouts.c.endpoint_id == row.id,
            canary_rollouts.c.state == "running")).scalar()
        if running is not None:
            raise FailedPrecondition(f"endpoint {endpoint!r} already runs a canary of "
                                     f"{running}: wait for its verdict", field="endpoint")
        before = {d.id: d.traffic_percentage for d in answering}
        rest = {d: before[d] for d in champions}
        split = {**rescale(rest, TOTAL - percent), deployed_model_id: percent}
        service._change_split(conn, ctx, row, endpoint, answering, split)
        now = utcnow()
        rollout_id = new_id()
        conn.execute(insert(canary_rollouts).values(
            id=rollout_id, project=ctx.project, endpoint=endpoint, endpoint_id=row.id,
            candidate=deployed_model_id, champions=champions, previous_traffic=before,
            percent=percent, after_requests=after_requests, criteria=criteria["criteria"],
            promote_alias=promote_alias, state="running", decision=None, started_at=now,
            decided_at=None, next_check_at=now, lease_owner=None, lease_until=None,
            created_by=ctx.actor))
        audit.record(conn, ctx, "endpoint.canary.start", f"endpoints/{endpoint}",
                     detail={"rollout": rollout_id, "candidate": deployed_model_id,
                             "champions": champions, "percent": percent,
                             "after_requests": after_requests,
                             "criteria": criteria["criteria"], "traffic": split})
        return _rollout(_row(conn, rollout_id))

    return store.retry_write(work)


def champion_runtime(endpoint: Any) -> str | None:
    """Where the champions of ``endpoint`` (a ``serving.models.Endpoint``) run: the runtime
    of the answering deployment with the largest share (the first deployed among equals);
    None when nothing answers."""
    answering = [d for d in endpoint.deployments if not d.shadow]
    if not answering:
        return None
    top = max(answering, key=lambda d: (d.traffic_percentage, -d.created_at.timestamp()))
    runtime: str = top.runtime
    return runtime


def deploy_candidate(store: Store, ctx: RequestContext, endpoint: str, model: str,
                     version: int, *, runtime: str | None = None) -> str:
    """Deploy ``model``:``version`` to ``endpoint`` with no traffic, ready for
    ``start_canary``, unless it is deployed there already; its deployed model id.
    ``runtime``: where its replicas run; None (the default) inherits the champions'
    (``champion_runtime``: a champion on Ray gets a candidate on Ray), ``"local"`` when
    nothing answers yet."""
    if runtime is not None:
        check_runtime(runtime)
    current = service.get_endpoint(store, ctx.project, endpoint)
    deployed_id = f"{model}:{version}"
    if any(d.id == deployed_id for d in current.deployments):
        return deployed_id
    chosen = runtime or champion_runtime(current) or "local"
    service.deploy(store, ctx, endpoint, model, version=version, traffic_percentage=0,
                   runtime=chosen)
    return deployed_id


def check_criteria(deployed_model_id: Any, percent: Any, after_requests: Any,
                   max_latency_ratio: Any, prediction_tolerance: Any, promote_alias: Any,
                   prefix: str = "", *, error_rate_alpha: Any = DEFAULT_ERROR_ALPHA,
                   max_error_rate_increase: Any = DEFAULT_ERROR_MARGIN) -> dict[str, Any]:
    """``InvalidArgument`` naming the first bad field (``prefix`` + its name); the criteria
    as stored otherwise."""
    if not isinstance(deployed_model_id, str) or ":" not in deployed_model_id \
            or not deployed_model_id.rpartition(":")[2].isdigit():
        raise InvalidArgument(f"deployed_model_id must be a deployed model id such as "
                              f"'model:3', got {str(deployed_model_id)[:80]!r}",
                              field=f"{prefix}deployed_model_id")
    if isinstance(percent, bool) or not isinstance(percent, int) or not 1 <= percent <= 99:
        raise InvalidArgument(f"percent must be a whole number from 1 to 99, got {percent!r}",
                              field=f"{prefix}percent")
    if isinstance(after_requests, bool) or not isinstance(after_requests, int) \
            or not 1 <= after_requests <= MAX_AFTER_REQUESTS:
        raise InvalidArgument(f"after_requests must be a whole number from 1 to "
                              f"{MAX_AFTER_REQUESTS}, got {after_requests!r}",
                              field=f"{prefix}after_requests")
    if isinstance(max_latency_ratio, bool) or not isinstance(max_latency_ratio, int | float) \
            or not 0 < max_latency_ratio <= 1000:
        raise InvalidArgument(f"max_latency_ratio must be a number above 0 (the candidate's "
                              f"p95 latency over the champions'), got {max_latency_ratio!r}",
                              field=f"{prefix}max_latency_ratio")
    if prediction_tolerance is not None and (
            isinstance(prediction_tolerance, bool)
            or not isinstance(prediction_tolerance, int | float)
            or not 0 <= prediction_tolerance < float("inf")):
        raise InvalidArgument(f"prediction_tolerance must be a number of at least 0 or "
                              f"None, got {prediction_tolerance!r}",
                              field=f"{prefix}prediction_tolerance")
    if promote_alias is not None:
        check_name(promote_alias, f"{prefix}promote_alias")
    if isinstance(error_rate_alpha, bool) or not isinstance(error_rate_alpha, int | float) \
            or not 0 < error_rate_alpha <= 0.5:
        raise InvalidArgument(f"error_rate_alpha must be a number above 0 and at most 0.5 "
                              f"(the error-rate test's level), got {error_rate_alpha!r}",
                              field=f"{prefix}error_rate_alpha")
    if isinstance(max_error_rate_increase, bool) \
            or not isinstance(max_error_rate_increase, int | float) \
            or not 0 <= max_error_rate_increase <= 1:
        raise InvalidArgument(f"max_error_rate_increase must be a number from 0 to 1 (the "
                              f"error rate the candidate may add), got "
                              f"{max_error_rate_increase!r}",
                              field=f"{prefix}max_error_rate_increase")
    return {"criteria": {"max_latency_ratio": float(max_latency_ratio),
                         "prediction_tolerance": None if prediction_tolerance is None
                         else float(prediction_tolerance),
                         "error_rate_alpha": float(error_rate_alpha),
                         "max_error_rate_increase": float(max_error_rate_increase)}}


def start_rollout(store: Store, ctx: RequestContext, endpoint: str, deployed_model_id: str,
                  settings: Mapping[str, Any]) -> CanaryRollout:
    """``start_canary`` with its settings as a mapping (the SDK's and REST's form): a key
    that is not one of ``ROLLOUT_SETTINGS`` is refused naming it."""
    if not isinstance(settings, Mapping):
        raise InvalidArgument("rollout settings must be a mapping", field="settings")
    unknown = sorted(str(key) for key in settings if key not in ROLLOUT_SETTINGS)
    if unknown:
        raise InvalidArgument(f"unknown rollout setting {unknown[0]!r}: use "
                              f"{', '.join(ROLLOUT_SETTINGS)}", field=unknown[0])
    return start_canary(store, ctx, endpoint, deployed_model_id, **dict(settings))


def endpoint_rollout(store: Store, project: str, endpoint: str, rollout_id: str
                     ) -> CanaryRollout:
    """``get_rollout`` for one endpoint: NotFound when the rollout is another endpoint's."""
    check_name(endpoint, "endpoint")
    found = get_rollout(store, project, check_id(rollout_id, "rollout_id"))
    if found.endpoint != endpoint:
        raise NotFound(f"no canary rollout {rollout_id!r} on endpoint {endpoint!r}",
                       field="rollout")
    return found


def get_rollout(store: Store, project: str, rollout_id: str) -> CanaryRollout:
    with store.read() as conn:
        row = conn.execute(select(canary_rollouts).where(
            canary_rollouts.c.id == rollout_id, canary_rollouts.c.project == project)).first()
        if row is None:
            raise NotFound(f"no canary rollout {rollout_id!r} in project {project!r}",
                           field="rollout")
        return _rollout(row)


def list_rollouts(store: Store, project: str, endpoint: str | None = None
                  ) -> list[CanaryRollout]:
    """The project's rollouts (or one endpoint's), newest first."""
    stmt = select(canary_rollouts).where(canary_rollouts.c.project == project)
    if endpoint is not None:
        check_name(endpoint, "endpoint")
        stmt = stmt.where(canary_rollouts.c.endpoint == endpoint)
    with store.read() as conn:
        return [_rollout(r) for r in conn.execute(
            stmt.order_by(canary_rollouts.c.started_at.desc(), canary_rollouts.c.id))]


# -- judging -------------------------------------------------------------------------------


def judge_canaries(store: Store, artifacts: str, worker: str, *, now: datetime | None = None,
                   lease_seconds: float = LEASE_SECONDS, check_every: float = CHECK_EVERY
                   ) -> bool:
    """Lease one running rollout due for a check and judge it; False when none is due.
    Below ``after_requests`` nothing changes (it is checked again ``check_every`` seconds
    later); otherwise it is promoted or rolled back."""
    moment = now or utcnow()
    due = and_(canary_rollouts.c.state == "running", canary_rollouts.c.next_check_at <= moment,
               or_(canary_rollouts.c.lease_until.is_(None),
                   canary_rollouts.c.lease_until < moment))
    with store.read() as conn:  # a poll that finds nothing takes no write lock
        if conn.execute(select(canary_rollouts.c.id).where(due).limit(1)).first() is None:
            return False

    def claim(conn: Connection) -> Any:
        return claim_next(
            conn, canary_rollouts, due, [canary_rollouts.c.next_check_at],
            {"lease_owner": worker, "lease_until": moment + timedelta(seconds=lease_seconds),
             "next_check_at": moment + timedelta(seconds=check_every)})

    row = store.retry_write(claim)
    if row is None:
        return False
    candidate, champion = read_figures(artifacts, row.project, row.endpoint, row.candidate,
                                       list(row.champions), row.started_at)
    if candidate.requests < row.after_requests:
        _release(store, row.id, worker)
        return True
    verdict, reasons = compare(candidate, champion, dict(row.criteria))
    if verdict is None:  # nothing to compare with yet: wait for the champions' requests
        _release(store, row.id, worker)
        return True
    decide(store, row.id, worker, verdict, {
        "reasons": reasons,
        "candidate": candidate.__dict__, "champions": champion.__dict__})
    return True


def decide(store: Store, rollout_id: str, worker: str,
           verdict: Literal["promote", "roll_back"], decision: dict[str, Any]
           ) -> CanaryRollout | None:
    """Carry out ``verdict`` in one transaction; None (and nothing changed) when the rollout
    is no longer running or no longer leased by ``worker`` (decided already, or taken over
    after this worker's lease ran out)."""

    def work(conn: Connection) -> CanaryRollout | None:
        query = select(canary_rollouts).where(canary_rollouts.c.id == rollout_id)
        if conn.dialect.name != "sqlite":
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None or row.state != "running" or row.lease_owner != worker:
            return None
        ctx = RequestContext(project=row.project, actor=row.created_by or "canary",
                             client=f"canary rollout {row.id}")
        ep = service._endpoint_row(conn, row.project, row.endpoint, lock=True)
        current = service._deployments_of(conn, [ep.id]).get(ep.id, [])
        answering = [d for d in current if not d.shadow]
        ids = {d.id for d in answering}
        note = dict(decision)
        if row.candidate not in ids:
            state: RolloutState = "rolled_back"
            note["reasons"] = [*note.get("reasons", []),
                               f"{row.candidate} is no longer deployed: nothing to promote"]
        elif verdict == "promote":
            state = "promoted"
            _promote(conn, ctx, ep, row, answering, current)
        else:
            state = "rolled_back"
            _roll_back(conn, ctx, ep, row, answering, current)
        note["verdict"] = verdict
        now = utcnow()
        conn.execute(update(canary_rollouts).where(canary_rollouts.c.id == row.id).values(
            state=state, decision=note, decided_at=now, lease_owner=None, lease_until=None))
        verb = "promote" if state == "promoted" else "rollback"
        audit.record(conn, ctx, f"endpoint.canary.{verb}", f"endpoints/{row.endpoint}",
                     detail={"rollout": row.id, "candidate": row.candidate, **note})
        return _rollout(_row(conn, row.id))

    return store.retry_write(work)


def _promote(conn: Connection, ctx: RequestContext, ep: Any, row: Any,
             answering: list[Any], current: list[Any]) -> None:
    service._change_split(conn, ctx, ep, row.endpoint, answering,
                          {d.id: (TOTAL if d.id == row.candidate else 0) for d in answering})
    for champion in answering:
        if champion.id != row.candidate:
            _remove(conn, ctx, ep, row.endpoint, champion)
    if row.promote_alias:
        from shipyard.registry import _rows, aliases

        candidate = next(d for d in current if d.id == row.candidate)
        model = _rows.model_row(conn, row.project, candidate.model, lock=True)
        aliases.move_alias(conn, ctx, model, row.promote_alias, candidate.version,
                           reason=f"canary {row.id} on {row.endpoint} promoted")


def _roll_back(conn: Connection, ctx: RequestContext, ep: Any, row: Any,
               answering: list[Any], current: list[Any]) -> None:
    rest = [d for d in answering if d.id != row.candidate]
    previous = dict(row.previous_traffic)
    split = rescale({d.id: int(previous.get(d.id, d.traffic_percentage)) for d in rest},
                    TOTAL) if rest else {}
    if rest:
        service._change_split(conn, ctx, ep, row.endpoint, rest, split)
    gone = next(d for d in current if d.id == row.candidate)
    _remove(conn, ctx, ep, row.endpoint, gone)


def _remove(conn: Connection, ctx: RequestContext, ep: Any, endpoint: str, gone: Any) -> None:
    """Undeploy ``gone`` inside the decision's transaction (its share is 0 by now)."""
    conn.execute(delete(endpoint_deployments).where(
        endpoint_deployments.c.endpoint_id == ep.id,
        endpoint_deployments.c.model_name == gone.model,
        endpoint_deployments.c.version == gone.version))
    service._touch(conn, ep.id)
    audit.record(conn, ctx, "endpoint.undeploy", f"endpoints/{endpoint}",
                 detail={"deployed_model_id": gone.id, "by": "canary"})
    announce(conn, ctx, ENDPOINT_UNDEPLOYED, endpoint=endpoint, deployment=gone.id,
             model=gone.model, version=gone.version)


def _release(store: Store, rollout_id: str, worker: str) -> None:
    def work(conn: Connection) -> None:
        conn.execute(update(canary_rollouts).where(
            canary_rollouts.c.id == rollout_id, canary_rollouts.c.lease_owner == worker)
            .values(lease_owner=None, lease_until=None))

    store.retry_write(work)


def _row(conn: Connection, rollout_id: str) -> Any:
    return conn.execute(select(canary_rollouts).where(canary_rollouts.c.id == rollout_id)
                        ).one()


def _rollout(row: Any) -> CanaryRollout:
    return CanaryRollout(
        id=row.id, project=row.project, endpoint=row.endpoint, candidate=row.candidate,
        champions=list(row.champions), previous_traffic=dict(row.previous_traffic),
        percent=row.percent, after_requests=row.after_requests, criteria=dict(row.criteria),
        promote_alias=row.promote_alias, state=row.state, decision=row.decision,
        started_at=row.started_at, decided_at=row.decided_at, created_by=row.created_by)


# -- the worker's job source ---------------------------------------------------------------


class _Settings(Protocol):  # what this source needs of shipyard.config.Settings
    @property
    def artifacts(self) -> str: ...


class _Runtime(Protocol):  # what this source needs of shipyard.runtime.Runtime
    @property
    def store(self) -> Store: ...

    @property
    def settings(self) -> _Settings: ...


@dataclass
class CanaryRollouts:
    """Running canaries, judged one per call (a ``worker.sources.JobSource``). ``clock``:
    the time (aware, UTC), for tests on a virtual clock."""

    clock: Callable[[], datetime] = utcnow
    lease_seconds: float = LEASE_SECONDS
    check_every: float = CHECK_EVERY

    @property
    def name(self) -> str:
        return "canaries"

    def claim_and_run(self, runtime: _Runtime, worker_name: str) -> bool:
        return judge_canaries(runtime.store, runtime.settings.artifacts, worker_name,
                              now=self.clock(), lease_seconds=self.lease_seconds,
                              check_every=self.check_every)

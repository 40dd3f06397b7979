"""Promotion: move an alias to a candidate version only if it beats the incumbent.

The comparison and the move happen in one write transaction that re-reads the incumbent,
so two racing promotions are ordered by the database: the second one compares against the
first one's result, and the alias history stays a single consistent chain. Every decision,
promoted or not, is appended to the alias history with its figures.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from sqlalchemy import Connection, Row, insert, select, update

from shipyard import audit
from shipyard.artifacts import ArtifactStore
from shipyard.config import Settings
from shipyard.context import RequestContext
from shipyard.errors import Conflict, InvalidArgument
from shipyard.registry import _rows
from shipyard.registry.aliases import move_alias
from shipyard.registry.models import PromotionDecision
from shipyard.registry.refs import check_alias, check_version
from shipyard.registry.semver import FIRST, Bump, parts
from shipyard.registry.semver import bump as bump_semver
from shipyard.store import Store
from shipyard.store.schema import alias_history, model_versions
from shipyard.store.types import utcnow
from shipyard.validation import check_key

Mode = Literal["min", "max"]
# Figures computed on a dataset passed to ``promote_if_better_on_data``; ``mode`` defaults
# to each metric's natural direction.
METRICS: dict[str, tuple[Mode, Callable[[Any, Any], float]]] = {}


Score = Callable[[Any, Any], float]


def _metric(name: str, mode: Mode) -> Callable[[Score], Score]:
    def register(fn: Score) -> Score:
        METRICS[name] = (mode, fn)
        return fn

    return register


@_metric("rmse", "min")
def _rmse(y: Any, p: Any) -> float:
    return float(np.sqrt(np.mean((np.asarray(y, float) - np.asarray(p, float)) ** 2)))


@_metric("mse", "min")
def _mse(y: Any, p: Any) -> float:
    return float(np.mean((np.asarray(y, float) - np.asarray(p, float)) ** 2))


@_metric("mae", "min")
def _mae(y: Any, p: Any) -> float:
    return float(np.mean(np.abs(np.asarray(y, float) - np.asarray(p, float))))


@_metric("r2", "max")
def _r2(y: Any, p: Any) -> float:
    from sklearn.metrics import r2_score

    return float(r2_score(y, p))


@_metric("accuracy", "max")
def _accuracy(y: Any, p: Any) -> float:
    return float(np.mean(np.asarray(y) == np.asarray(p)))


def promote_if_better(
    store: Store,
    artifacts: ArtifactStore,
    ctx: RequestContext,
    name: str,
    version: int,
    metric: str = "rmse",
    mode: Mode = "min",
    alias: str = "production",
    min_delta: float = 0.0,
    bump: Bump = "patch",
) -> PromotionDecision:
    """Compare the versions' registered ``metric`` and move ``alias`` if the candidate is
    better by more than ``min_delta``. With no incumbent the candidate is promoted. A
    promoted candidate gets the incumbent's semver bumped (``1.0.0`` for the first)."""
    del artifacts  # same signature as the dataset variant; registered figures need no files
    _check_args(version, metric, mode, alias, min_delta, bump)

    return _decide(
        store,
        ctx,
        name,
        version,
        metric,
        mode,
        alias,
        min_delta,
        bump,
        computed=None,
        expected_incumbent=None,
    )


def promote_if_better_on_data(
    store: Store,
    artifacts: ArtifactStore,
    ctx: RequestContext,
    name: str,
    version: int,
    X: Any,
    y: Any,
    *,
    settings: Settings,
    metric: str = "rmse",
    mode: Mode | None = None,
    alias: str = "production",
    min_delta: float = 0.0,
    bump: Bump = "patch",
) -> PromotionDecision:
    """Like ``promote_if_better``, but both models predict ``X`` and the metric is
    recomputed against ``y``. Pickled models are refused: this may run in the server."""
    if metric not in METRICS:
        raise InvalidArgument(
            f"metric {metric!r} cannot be computed: use one of {sorted(METRICS)}", field="metric"
        )
    natural, score = METRICS[metric]
    chosen: Mode = natural if mode is None else mode
    _check_args(version, metric, chosen, alias, min_delta, bump)
    from shipyard.registry.loading import load_version

    def evaluate(mv_version: int) -> float:
        loaded = load_version(store, artifacts, ctx.project, name, mv_version, settings)
        value = score(y, loaded.predict(X))
        if not math.isfinite(value):
            raise InvalidArgument(f"{metric} of {name}:{mv_version} on this data is {value}")
        return value

    # Models are evaluated outside the transaction (it may take a while); the transaction
    # then checks that the incumbent is still the one evaluated, and retries if it moved.
    candidate = evaluate(version)
    for _attempt in range(3):
        with store.read() as conn:
            model = _rows.model_row(conn, ctx.project, name)
            incumbent_version = _rows.alias_version(conn, model, alias)
        incumbent = None if incumbent_version is None else evaluate(incumbent_version)
        try:
            return _decide(
                store,
                ctx,
                name,
                version,
                metric,
                chosen,
                alias,
                min_delta,
                bump,
                computed=(candidate, incumbent),
                expected_incumbent=(incumbent_version,),
            )
        except _IncumbentMoved:
            continue
    raise Conflict(f"alias {alias!r} kept moving during the evaluation; retry the promotion")


class _IncumbentMoved(Exception):
    pass


def _decide(
    store: Store,
    ctx: RequestContext,
    name: str,
    version: int,
    metric: str,
    mode: Mode,
    alias: str,
    min_delta: float,
    bump: Bump,
    *,
    computed: tuple[float, float | None] | None,
    expected_incumbent: tuple[int | None] | None,
) -> PromotionDecision:
    def work(conn: Connection) -> PromotionDecision:
        model = _rows.model_row(conn, ctx.project, name, lock=True)
        cand_row = _rows.version_row(conn, model, version)
        incumbent_version = _rows.alias_version(conn, model, alias)
        if expected_incumbent is not None and expected_incumbent[0] != incumbent_version:
            raise _IncumbentMoved
        cand = _registered(cand_row, metric) if computed is None else computed[0]
        if cand is None:
            raise InvalidArgument(
                f"{name}:{version} has no metric {metric!r}: register it with "
                f"metrics={{'{metric}': ...}} or promote on a dataset",
                field="metric",
            )
        inc_row = None
        inc: float | None = None
        if incumbent_version is not None:
            inc_row = _rows.version_row(conn, model, incumbent_version)
            inc = _registered(inc_row, metric) if computed is None else computed[1]
        promoted, reason = _compare(version, cand, incumbent_version, inc, mode, min_delta, metric)
        semver = None
        if promoted:
            base = None if inc_row is None else inc_row.semver
            semver = _next_semver(conn, model, cand_row, base, bump)
        decision = PromotionDecision(
            promoted=promoted,
            name=name,
            alias=alias,
            metric=metric,
            mode=mode,
            min_delta=min_delta,
            candidate_version=version,
            candidate_value=cand,
            incumbent_version=incumbent_version,
            incumbent_value=inc,
            semver=semver,
            reason=reason,
            source="registered" if computed is None else "dataset",
        )
        record = {"action": "promote", **decision.model_dump(mode="json")}
        if promoted:
            conn.execute(
                update(model_versions)
                .where(model_versions.c.id == cand_row.id)
                .values(semver=semver)
            )
            move_alias(conn, ctx, model, alias, version, reason=reason, decision=record)
            audit.record(
                conn, ctx, "model.promote", f"models/{name}/aliases/{alias}", detail=record
            )
        else:
            # Rejections are history too (the audit trail of why production did not move);
            # from == to marks them as not being moves, so rollback skips them.
            conn.execute(
                insert(alias_history).values(
                    model_id=model.id,
                    alias=alias,
                    from_version=incumbent_version,
                    to_version=incumbent_version,
                    actor=ctx.actor,
                    reason=reason,
                    decision=record,
                    created_at=utcnow(),
                )
            )
            audit.record(
                conn,
                ctx,
                "model.promote",
                f"models/{name}/aliases/{alias}",
                outcome="rejected",
                detail=record,
            )
        return decision

    return store.retry_write(work)


def _compare(
    version: int,
    cand: float,
    incumbent_version: int | None,
    inc: float | None,
    mode: Mode,
    min_delta: float,
    metric: str,
) -> tuple[bool, str]:
    if incumbent_version is None:
        return True, f"no incumbent: first version promoted ({metric} {cand:.6g})"
    if incumbent_version == version:
        return False, f"version {version} already holds the alias"
    if inc is None:
        return (
            True,
            f"incumbent version {incumbent_version} has no {metric}; candidate has {cand:.6g}",
        )
    gain = inc - cand if mode == "min" else cand - inc
    if gain > min_delta:
        return True, (
            f"{metric} {cand:.6g} beats {inc:.6g} of version {incumbent_version} "
            f"by {gain:.6g} (> min_delta {min_delta:g})"
        )
    return False, (
        f"{metric} {cand:.6g} does not beat {inc:.6g} of version {incumbent_version} "
        f"by more than min_delta {min_delta:g}"
    )


def _next_semver(
    conn: Connection, model: Row[Any], cand_row: Row[Any], base: str | None, bump: Bump
) -> str:
    proposed = FIRST if base is None else bump_semver(base, bump)
    if cand_row.semver and parts(cand_row.semver) > parts(proposed):
        proposed = cand_row.semver  # keep a label the user set higher on purpose
    taken = {
        str(s)
        for (s,) in conn.execute(
            select(model_versions.c.semver).where(
                model_versions.c.model_id == model.id,
                model_versions.c.id != cand_row.id,
                model_versions.c.semver.is_not(None),
            )
        )
    }
    while proposed in taken:
        proposed = bump_semver(proposed, "patch")
    return proposed


def _registered(row: Row[Any], metric: str) -> float | None:
    value = (row.metrics or {}).get(metric)
    return None if value is None else float(value)


def _check_args(
    version: int, metric: str, mode: str, alias: str, min_delta: float, bump: str
) -> None:
    check_version(version)
    check_key(metric, "metric")
    check_alias(alias)
    if mode not in ("min", "max"):
        raise InvalidArgument(f"mode must be 'min' or 'max', not {mode!r}", field="mode")
    if bump not in ("major", "minor", "patch"):
        raise InvalidArgument(f"bump must be major, minor or patch, not {bump!r}", field="bump")
    if (
        isinstance(min_delta, bool)
        or not isinstance(min_delta, int | float)
        or not (math.isfinite(min_delta) and min_delta >= 0)
    ):
        raise InvalidArgument("min_delta must be a finite number >= 0", field="min_delta")

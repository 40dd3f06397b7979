"""A canary's verdict from the request log: what each side served since the rollout
started (``read_figures``, one DuckDB query over the log's Parquet files) and whether the
candidate is worse than its champions (``compare``):

- latency: the candidate's p95 (per answered request) must be at most ``max_latency_ratio``
  times the champions';
- errors: the candidate's error rate (requests logged with a status other than 200 over
  all its logged requests) must not be worse than the champions'. The rule is a one-sided
  two-proportion z-test with a pooled rate: with ``e`` errors in ``n`` requests on each side,
  ``p = (e_c + e_h) / (n_c + n_h)`` and
  ``z = (e_c / n_c - e_h / n_h - max_error_rate_increase) / sqrt(p (1 - p) (1 / n_c + 1 / n_h))``;
  the candidate is worse when ``z`` exceeds the normal quantile ``1 - error_rate_alpha``
  (1.645 for the default 0.05), or, when no side erred or every request did (the
  denominator is 0), when its rate exceeds the champions' by more than the margin
  (``max_error_rate_increase``, default 0: any significant increase rolls back);
- predictions (optional, ``prediction_tolerance``): the mean of the candidate's numeric
  predictions must lie within that distance of the champions'.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from statistics import NormalDist
from typing import Any, Literal

from shipyard.serving.logfiles import hours_between, log_files, log_root
from shipyard.serving.models import (
    DEFAULT_ERROR_ALPHA,
    DEFAULT_ERROR_MARGIN,
    DEFAULT_LATENCY_RATIO,
)
from shipyard.serving.requestlog import predictions_sql, sql_string

__all__ = ["Figures", "compare", "error_rate_worse", "read_figures"]


@dataclass(frozen=True)
class Figures:
    """What the log says of one side since the start: its requests, of which ``errors``
    failed; the p95 latency and mean prediction of those answered."""

    requests: int
    p95_ms: float | None
    mean_prediction: float | None
    errors: int = 0



def compare(candidate: Figures, champion: Figures, criteria: dict[str, Any]
            ) -> tuple[Literal["promote", "roll_back"] | None, list[str]]:
    """The verdict and its reasons (latency, predictions when asked, errors); None while
    the champions have no request to compare with."""
    if champion.requests == 0 or candidate.requests == 0:
        return None, ["the champions served no logged request since the start"]
    reasons: list[str] = []
    failed = False
    ratio = float(criteria.get("max_latency_ratio", DEFAULT_LATENCY_RATIO))
    if candidate.p95_ms is None:
        failed = True
        reasons.append("latency: the candidate answered no request")
    elif champion.p95_ms is None:
        reasons.append("latency: the champions answered no request to compare with")
    elif candidate.p95_ms > ratio * champion.p95_ms:
        failed = True
        reasons.append(f"latency p95 {candidate.p95_ms:.3f} ms is above {ratio:g} x the "
                       f"champions' {champion.p95_ms:.3f} ms")
    else:
        reasons.append(f"latency p95 {candidate.p95_ms:.3f} ms is within {ratio:g} x the "
                       f"champions' {champion.p95_ms:.3f} ms")
    tolerance = criteria.get("prediction_tolerance")
    if tolerance is not None:
        if candidate.mean_prediction is None or champion.mean_prediction is None:
            failed = True
            reasons.append("predictions are not numbers: their means cannot be compared")
        else:
            gap = abs(candidate.mean_prediction - champion.mean_prediction)
            within = gap <= float(tolerance)
            failed = failed or not within
            reasons.append(f"mean prediction {candidate.mean_prediction:.6g} is "
                           f"{'within' if within else 'beyond'} {float(tolerance):g} of the "
                           f"champions' {champion.mean_prediction:.6g}")
    worse, reason = error_rate_worse(
        candidate.errors, candidate.requests, champion.errors, champion.requests,
        float(criteria.get("error_rate_alpha", DEFAULT_ERROR_ALPHA)),
        float(criteria.get("max_error_rate_increase", DEFAULT_ERROR_MARGIN)))
    failed = failed or worse
    reasons.append(reason)
    return ("roll_back" if failed else "promote"), reasons


def error_rate_worse(errors: int, requests: int, champion_errors: int, champion_requests: int,
                     alpha: float, margin: float) -> tuple[bool, str]:
    """Whether the candidate's error rate is worse than the champions' by more than
    ``margin``: a one-sided two-proportion z-test (pooled rate) at level ``alpha``; and why."""
    rate, theirs = errors / requests, champion_errors / champion_requests
    pooled = (errors + champion_errors) / (requests + champion_requests)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / requests + 1 / champion_requests))
    excess = rate - theirs - margin
    critical = NormalDist().inv_cdf(1 - alpha)
    said = (f"error rate {rate:.1%} ({errors} of {requests}) against the champions' "
            f"{theirs:.1%} ({champion_errors} of {champion_requests})")
    if spread == 0:
        worse = excess > 1e-12
        return worse, f"{said}: {'more' if worse else 'no more'} than {margin:g} above theirs"
    z = excess / spread
    worse = z > critical
    return worse, (f"{said}: {'worse' if worse else 'not worse'} (one-sided two-proportion "
                   f"z = {z:.2f} {'>' if worse else '<='} {critical:.3f}, alpha {alpha:g}, "
                   f"margin {margin:g})")


def read_figures(artifacts: str, project: str, endpoint: str, candidate: str,
                 champions: Sequence[str], since: datetime) -> tuple[Figures, Figures]:
    """The candidate's and the champions' figures from the request log since ``since``
    (shadow answers left out): one DuckDB query, on the log in a local artifact store or on
    a copy of its hours since ``since`` from an object store."""
    until = datetime.now(UTC) + timedelta(hours=1)  # this hour's folder, whatever the clock
    hours = hours_between(since, until)
    with log_root(artifacts, project, endpoint, since, until) as root:
        files = log_files(root, "predictions", project, endpoint, hours)
        return _figures(files, candidate, champions, since)


def _figures(files: list[str], candidate: str, champions: Sequence[str], since: datetime
             ) -> tuple[Figures, Figures]:
    import duckdb

    empty = Figures(0, None, None)
    if not files:
        return empty, empty
    start = sql_string(since.astimezone(UTC).isoformat())
    names = [candidate, *champions]
    marks = ", ".join("?" for _ in names)
    query = f"""
        WITH rows AS (
            SELECT CASE WHEN deployed_model_id = ? THEN 'candidate' ELSE 'champion' END
                       AS side, request_id, latency_ms, status,
                   TRY_CAST(prediction AS DOUBLE) AS value
            FROM {predictions_sql(files)}
            WHERE time >= TIMESTAMPTZ {start} AND NOT coalesce(shadow, false)
              AND deployed_model_id IN ({marks})),
        requests AS (
            SELECT side, request_id, any_value(latency_ms) AS latency,
                   max(status) AS status FROM rows
            GROUP BY side, request_id),
        latency AS (
            SELECT side, count(*) AS n, count(*) FILTER (WHERE status <> 200) AS errors,
                   quantile_cont(latency, 0.95) FILTER (WHERE status = 200) AS p95
            FROM requests GROUP BY side),
        predictions AS (SELECT side, avg(value) AS mean FROM rows WHERE status = 200
                        GROUP BY side)
        SELECT latency.side, n, p95, mean, errors FROM latency
        LEFT JOIN predictions ON predictions.side = latency.side
    """
    con = duckdb.connect()
    try:
        con.execute("SET threads TO 2")
        found = con.execute(query, [candidate, *names]).fetchall()
    finally:
        con.close()
    by_side = {side: Figures(int(n), None if p95 is None else float(p95),
                             None if mean is None else float(mean), int(errors))
               for side, n, p95, mean, errors in found}
    return by_side.get("candidate", empty), by_side.get("champion", empty)

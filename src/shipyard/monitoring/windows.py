"""Reading an endpoint's request log for one window, with DuckDB (vectorised, one query per
window): the features the baseline names (numeric ones cast to numbers, categorical ones as
their text), the predictions, the latency per request and, joined on request id and
instance, the ground truth that came back through the feedback API.

Only the hour folders the window touches are read (the log is partitioned by endpoint and
hour); rows are sampled with a hash of (request id, instance), so a sample is the same every
time a window is read again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from shipyard.errors import InvalidArgument
from shipyard.serving.logfiles import hours_between, log_files, log_root, request_log_root
from shipyard.serving.requestlog import sql_string

__all__ = ["Errors", "Window", "log_root", "read_window", "request_log_root"]



@dataclass
class Errors:
    """The window's requests by how they were answered: ``server_errors`` (status 500 and
    above: the model raised, its replica was busy, gone or too slow), ``client_errors``
    (400-499: the input did not fit), and the commonest server errors' messages."""

    requests: int = 0
    server_errors: int = 0
    client_errors: int = 0
    common: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float | None:
        """The share of requests answered with a server error; None without requests."""
        return self.server_errors / self.requests if self.requests else None


@dataclass
class Window:
    """What one window of the request log holds."""

    rows: int
    features: pa.Table  # one column per baseline feature found in the log
    missing: list[str]  # baseline features no logged row carries
    predictions: pa.Table  # one column, "prediction" (numbers or text), possibly empty
    latency_ms: npt.NDArray[np.float64]  # one value per request
    model_versions: dict[int, int] = field(default_factory=dict)  # version -> rows
    deployments: dict[str, int] = field(default_factory=dict)  # deployed model id -> rows
    truth: npt.NDArray[Any] | None = None  # ground truth, where feedback came
    predicted: npt.NDArray[Any] | None = None  # the predictions of those rows
    errors: Errors = field(default_factory=Errors)  # every request, answered or failed


def _arrow(con: Any, query: str, params: Sequence[Any] | None = None) -> pa.Table:
    """A query's answer as an Arrow table (DuckDB 2 renamed ``fetch_arrow_table``)."""
    relation = con.sql(query, params=list(params) if params else None)
    fetch = getattr(relation, "to_arrow_table", None) or relation.fetch_arrow_table
    table: pa.Table = fetch()
    return table


def _list(files: Sequence[str]) -> str:
    return "[" + ", ".join(sql_string(f) for f in files) + "]"


def _time(moment: datetime) -> str:
    return f"TIMESTAMPTZ {sql_string(moment.astimezone(UTC).isoformat())}"


def _path(name: str) -> str:
    return '$."' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def read_window(root: Path, project: str, endpoint: str, start: datetime, end: datetime,
                columns: Sequence[tuple[str, str]], *, sampling_rate: float = 1.0,
                with_feedback: bool = True) -> Window:
    """The window [start, end) of ``endpoint``'s request log. ``columns`` lists
    ``(feature, kind)`` in the baseline's order (a row logged as a list is read by
    position)."""
    import duckdb

    if start >= end:
        raise InvalidArgument("a window must end after it starts", field="window")
    files = log_files(root, "predictions", project, endpoint, hours_between(start, end))
    empty_features = pa.table({name: pa.array([], pa.float64() if kind == "numeric"
                                              else pa.string()) for name, kind in columns})
    if not files:
        return Window(rows=0, features=empty_features, missing=[],
                      predictions=pa.table({"prediction": pa.array([], pa.float64())}),
                      latency_ms=np.empty(0))
    con = duckdb.connect()
    try:
        return _read(con, files, root, project, endpoint, start, end, columns, sampling_rate,
                     with_feedback)
    finally:
        con.close()


def _read(con: Any, files: list[str], root: Path, project: str, endpoint: str,
          start: datetime, end: datetime, columns: Sequence[tuple[str, str]], sampling_rate: float,
          with_feedback: bool) -> Window:
    con.execute("SET threads TO 2")
    sample = "" if sampling_rate >= 1 else \
        f" AND hash(request_id, instance) % 1000000 < {int(sampling_rate * 1_000_000)}"
    # A view takes no parameters: the file names (our own paths) and times are literals.
    # Files written before the log had ``status``, ``error`` or ``shadow`` read as answered
    # (200), without error, not a shadow's. A shadow's rows (answers no caller saw) are
    # left out; ``w`` holds the answered rows, ``logged`` every row of the callers' requests.
    con.execute(
        "CREATE TEMP VIEW logged AS SELECT * REPLACE (coalesce(status, 200) AS status) "
        f"FROM (SELECT * FROM read_parquet({_list(files)}, union_by_name=true) "
        "UNION ALL BY NAME SELECT CAST(NULL AS SMALLINT) AS status, "
        "CAST(NULL AS VARCHAR) AS error, CAST(NULL AS BOOLEAN) AS shadow WHERE false) "
        f"WHERE time >= {_time(start)} AND time < {_time(end)} AND shadow IS NOT TRUE"
        f"{sample}")
    con.execute("CREATE TEMP VIEW w AS SELECT * FROM logged WHERE status < 400")
    select: list[str] = []
    params: list[Any] = []
    for position, (name, kind) in enumerate(columns):
        value = (f"CASE WHEN json_type(features) = 'ARRAY' THEN "
                 f"json_extract_string(features, '$[{position}]') "
                 "ELSE json_extract_string(features, ?) END")
        params.append(_path(name))
        select.append(f"TRY_CAST({value} AS DOUBLE)" if kind == "numeric" else value)
        select.append(f"(json_type(features) = 'ARRAY' AND json_array_length(features) > "
                      f"{position}) OR json_exists(features, ?)")
        params.append(_path(name))
    query = ("SELECT " + ", ".join(f"{expr} AS c{i}" for i, expr in enumerate(select))
             + (", " if select else "") + "prediction, model_version FROM w")
    table = _arrow(con, query, params)
    rows = table.num_rows
    data: dict[str, pa.ChunkedArray] = {}
    missing: list[str] = []
    for i, (name, _) in enumerate(columns):
        present = table.column(f"c{2 * i + 1}")
        if rows and not bool(np.asarray(present.fill_null(False)).any()):
            missing.append(name)
            continue
        data[name] = table.column(f"c{2 * i}")
    features = pa.table(data) if data else pa.table({}).append_column(
        "_", pa.array([None] * rows, pa.null())).drop_columns(["_"])
    versions = con.execute("SELECT model_version, count(*) FROM w GROUP BY 1").fetchall()
    deployments = con.execute(
        "SELECT deployed_model_id, count(*) FROM w GROUP BY 1").fetchall()
    latency = con.execute(
        "SELECT max(latency_ms) FROM w GROUP BY request_id").fetchnumpy()
    predictions = _predictions(con)
    window = Window(rows=rows, features=features, missing=missing, predictions=predictions,
                    latency_ms=np.asarray(next(iter(latency.values())), dtype=np.float64),
                    model_versions={int(v): int(n) for v, n in versions if v is not None},
                    errors=_errors(con),
                    deployments={str(d): int(n) for d, n in deployments if d is not None})
    if with_feedback:
        _join_feedback(con, window, root, project, endpoint, start)
    return window


def _errors(con: Any) -> Errors:
    """Requests (not instances) by their answer's status, and the commonest server errors."""
    requests, server, client = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE status >= 500), "
        "count(*) FILTER (WHERE status >= 400 AND status < 500) FROM "
        "(SELECT request_id, max(status) AS status FROM logged GROUP BY request_id)"
    ).fetchone()
    common = con.execute(
        "SELECT coalesce(error, 'status ' || status) AS error, count(DISTINCT request_id) "
        "FROM logged WHERE status >= 500 GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 5").fetchall()
    return Errors(requests=int(requests), server_errors=int(server),
                  client_errors=int(client), common={str(e): int(n) for e, n in common})


def _predictions(con: Any) -> pa.Table:
    """Scalar predictions: numbers when most are numbers, text otherwise (a prediction that
    is an object or a list is not compared: outputs of that shape have no one value)."""
    kinds = dict(con.execute(
        "SELECT json_type(prediction) IN ('DOUBLE', 'BIGINT', 'UBIGINT', 'INTEGER'), count(*) "
        "FROM w WHERE json_type(prediction) NOT IN ('OBJECT', 'ARRAY', 'NULL') GROUP BY 1"
    ).fetchall())
    if kinds.get(True, 0) >= kinds.get(False, 0):
        column = _arrow(
            con, "SELECT TRY_CAST(json_extract_string(prediction, '$') AS DOUBLE) AS "
            "prediction FROM w")
    else:
        column = _arrow(
            con, "SELECT CASE WHEN json_type(prediction) IN ('OBJECT', 'ARRAY') THEN NULL "
            "ELSE json_extract_string(prediction, '$') END AS prediction FROM w")
    return column


def _join_feedback(con: Any, window: Window, root: Path, project: str, endpoint: str,
                   start: datetime) -> None:
    # Ground truth arrives after the prediction: its files are in hours from the window's
    # start on.
    base = root / "feedback" / f"project={project}" / f"endpoint={endpoint}"
    if not base.is_dir():
        return
    first = start.astimezone(UTC).strftime("%Y-%m-%dT%H")
    files = [str(f) for folder in sorted(base.iterdir())
             if folder.is_dir() and folder.name.removeprefix("hour=") >= first
             for f in sorted(folder.glob("*.parquet"))]
    if not files:
        return
    joined = con.execute(
        "WITH f AS (SELECT request_id, instance, arg_max(ground_truth, time) AS truth "
        "FROM read_parquet(?) GROUP BY 1, 2) "
        "SELECT json_extract_string(f.truth, '$') AS truth, "
        "json_extract_string(w.prediction, '$') AS predicted, "
        "json_type(f.truth) AS truth_type, json_type(w.prediction) AS predicted_type "
        "FROM w JOIN f USING (request_id, instance)", [files]).fetchnumpy()
    if len(joined["truth"]):
        window.truth = np.asarray(joined["truth"], dtype=object)
        window.predicted = np.asarray(joined["predicted"], dtype=object)

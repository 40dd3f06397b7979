"""``search_runs``: the filter language compiled to SQL, then params, metrics and tags loaded
for the whole page in three bulk queries (never one query per run).

Every list a caller can grow is bounded here, so local mode and the server refuse the same
requests with the same message: each ``order_by`` key on a metric, param or tag is one outer
join (SQLite 3.40, Debian 12's, segfaults on a few dozen), each filter clause one subquery.
"""

from __future__ import annotations

import base64
import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, func, not_, select
from sqlalchemy.sql import ColumnElement, Select

from shipyard.errors import InvalidArgument
from shipyard.store import Store
from shipyard.store.dialect import placeholder
from shipyard.store.schema import (
    experiments,
    run_artifacts,
    run_latest_metrics,
    run_params,
    run_tags,
    runs,
)
from shipyard.store.types import UTCDateTime
from shipyard.tracking.filters import Clause, parse_filter
from shipyard.tracking.models import RunArtifact, RunData, RunPage
from shipyard.validation import check_name

MAX_RESULTS = 50_000
MAX_EXPERIMENTS = 100
# Distinct sort keys; a key named again adds nothing and is dropped, up to a list this long.
MAX_ORDER_BY = 5
MAX_ORDER_BY_ENTRIES = 50
MAX_PAGE_TOKEN = 200
# Offsets stay JSON-safe integers, far below what SQLite can bind (2**63 - 1).
MAX_OFFSET = 2**53 - 1
_CHUNK = 900  # stays under SQLite's bound-parameter limit


def search_runs(
    store: Store,
    project: str,
    *,
    experiments_: Sequence[str] | None = None,
    filter: str | None = None,
    order_by: Sequence[str] | None = None,
    max_results: int = 1000,
    page_token: str | None = None,
) -> RunPage:
    """One page of the runs of ``project`` in ``experiments_`` (at most ``MAX_EXPERIMENTS``)
    that match ``filter``, sorted by ``order_by`` (at most ``MAX_ORDER_BY`` distinct keys).

    Bad or oversized input raises ``InvalidArgument`` naming the field before any query runs.
    """
    if isinstance(max_results, bool) or not isinstance(max_results, int) or not (
        1 <= max_results <= MAX_RESULTS
    ):
        raise InvalidArgument(
            f"max_results must be an integer from 1 to {MAX_RESULTS}", field="max_results"
        )
    offset = _decode_token(page_token)
    clauses = parse_filter(filter)
    keys = _order_keys(order_by or [])
    names = _experiment_names(experiments_ or [])
    stmt: Select[Any] = (
        select(runs.c.id)
        .join(experiments, experiments.c.id == runs.c.experiment_id)
        .where(runs.c.project == project)
    )
    if names:
        stmt = stmt.where(experiments.c.name.in_(names))
    for clause in clauses:
        stmt = stmt.where(_condition(clause))
    stmt = _apply_order(stmt, keys)
    stmt = stmt.limit(max_results + 1).offset(offset)
    with store.read() as conn:
        ids = list(conn.execute(stmt).scalars())
        more = len(ids) > max_results
        ids = ids[:max_results]
        found = load_runs(conn, ids, project=project)
    token = _encode_token(offset + max_results) if more else None
    return RunPage(runs=found, next_page_token=token)


def _experiment_names(names: Sequence[str]) -> list[str]:
    if len(names) > MAX_EXPERIMENTS:
        raise InvalidArgument(
            f"experiments has {len(names)} entries; the limit is {MAX_EXPERIMENTS}",
            field="experiments",
        )
    return list(dict.fromkeys(check_name(e, "experiment") for e in names))


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _decode_token(token: str | None) -> int:
    if not token:
        return 0
    offset: object = None
    # Issued tokens are ~30 characters: a long one is not ours, and is not decoded.
    if isinstance(token, str) and len(token) <= MAX_PAGE_TOKEN:
        try:
            data = json.loads(base64.urlsafe_b64decode(token.encode()))
        except (ValueError, UnicodeError):  # binascii.Error and JSONDecodeError included
            data = None
        if isinstance(data, dict):
            offset = data.get("offset")
    # Exactly an int: not a float (1e30, Infinity), a bool or a string.
    if type(offset) is not int or not 0 <= offset <= MAX_OFFSET:
        raise InvalidArgument("page_token is not a token this server issued",
                              field="page_token")
    return offset


def _compare(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    match op:
        case "=":
            return column == value  # type: ignore[no-any-return]
        case "!=":
            return column != value  # type: ignore[no-any-return]
        case "<":
            return column < value  # type: ignore[no-any-return]
        case "<=":
            return column <= value  # type: ignore[no-any-return]
        case ">":
            return column > value  # type: ignore[no-any-return]
        case ">=":
            return column >= value  # type: ignore[no-any-return]
        case "LIKE":
            return column.like(value)  # type: ignore[no-any-return]
        case "NOT LIKE":
            return not_(column.like(value))  # type: ignore[no-any-return]
        case "ILIKE":
            return func.lower(column).like(str(value).lower())  # type: ignore[no-any-return]
        case "IN":
            return column.in_(list(value))  # type: ignore[no-any-return]
        case "NOT IN":
            return not_(column.in_(list(value)))  # type: ignore[no-any-return]
    raise InvalidArgument(f"filter: unsupported operator {op}", field="filter")


def _condition(clause: Clause) -> ColumnElement[bool]:
    if clause.kind == "metrics":
        table: Any = run_latest_metrics
    elif clause.kind == "params":
        table = run_params
    elif clause.kind == "tags":
        table = run_tags
    else:
        return _attribute_condition(clause)
    sub = select(table.c.run_id).where(
        table.c.key == clause.key, _compare(table.c.value, clause.op, clause.value)
    )
    return runs.c.id.in_(sub)


def _attribute_condition(clause: Clause) -> ColumnElement[bool]:
    key, op = clause.key, clause.op
    value: Any = clause.value
    if key in ("start_time", "end_time"):
        column = runs.c[key]
        if isinstance(value, float):
            value = datetime.fromtimestamp(value / 1000, UTC)
        elif isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                raise InvalidArgument(
                    f"filter: {key} takes milliseconds or an ISO 8601 time", field="filter"
                ) from None
        if op not in ("<", "<=", ">", ">=", "=", "!="):
            raise InvalidArgument(f"filter: {key} compares with < <= > >= = !=", field="filter")
        return _compare(column, op, value)
    column = {
        "status": runs.c.status,
        "name": runs.c.name,
        "run_id": runs.c.id,
        "experiment": experiments.c.name,
        "created_by": runs.c.created_by,
    }[key]
    return _compare(column, op, value)


def _order_keys(order_by: Sequence[str]) -> list[tuple[Any, bool]]:
    """The distinct sort keys of ``order_by`` in order, each with its direction (descending?).

    A key named again is dropped: the first mention already settled every tie it can. More
    than ``MAX_ORDER_BY`` distinct keys is an ``InvalidArgument`` naming ``order_by``.
    """
    if isinstance(order_by, str):
        raise InvalidArgument(
            "order_by takes a list of keys, such as ['metrics.rmse DESC']", field="order_by"
        )
    if len(order_by) > MAX_ORDER_BY_ENTRIES:
        raise InvalidArgument(
            f"order_by has {len(order_by)} entries; the limit is {MAX_ORDER_BY_ENTRIES}",
            field="order_by",
        )
    keys: dict[tuple[str, str], tuple[Any, bool]] = {}
    for n, item in enumerate(order_by):
        if not isinstance(item, str) or not item.strip():
            raise InvalidArgument("order_by entries must be non-empty strings",
                                  field=f"order_by[{n}]")
        parts = item.strip().rsplit(" ", 1)
        descending = False
        if len(parts) == 2 and parts[1].upper() in ("ASC", "DESC"):
            descending = parts[1].upper() == "DESC"
            target = parts[0].strip()
        elif len(parts) == 2 and not item.strip().endswith("`"):
            # "metrics.rmse SIDEWAYS" is a typo, not a metric named "rmse SIDEWAYS": a key
            # with a space is written in backticks, as in filters.
            raise InvalidArgument(
                f"order_by: {item.strip()[:80]!r}: the direction must be ASC or DESC "
                "(a key with spaces goes in backticks: metrics.`my key` DESC)",
                field=f"order_by[{n}]",
            )
        else:
            target = item.strip()
        column = _order_column(target, n)
        table, key = column if isinstance(column, tuple) else (column.table, column.key)
        identity = (table.name, key)
        keys.setdefault(identity, (column, descending))
    if len(keys) > MAX_ORDER_BY:
        raise InvalidArgument(
            f"order_by has {len(keys)} distinct keys; the limit is {MAX_ORDER_BY}",
            field="order_by",
        )
    return list(keys.values())


def _apply_order(stmt: Select[Any], keys: Sequence[tuple[Any, bool]]) -> Select[Any]:
    columns: list[Any] = []
    for n, (column, descending) in enumerate(keys):
        if isinstance(column, tuple):
            table, key = column
            alias = table.alias(f"o{n}")
            stmt = stmt.outerjoin(alias, and_(alias.c.run_id == runs.c.id, alias.c.key == key))
            col = alias.c.value
        else:
            col = column
        # NULLs (runs without the key) sort last either way, as in MLflow.
        columns.append(col.is_(None))
        columns.append(col.desc() if descending else col.asc())
    columns.append(runs.c.start_time.desc())
    columns.append(runs.c.id.desc())
    return stmt.order_by(*columns)


def _order_column(target: str, n: int) -> Any:
    if "." in target:
        prefix, key = target.split(".", 1)
        key = key.strip("`")
        table = {"metrics": run_latest_metrics, "params": run_params, "tags": run_tags}.get(
            prefix.lower()
        )
        if table is not None:
            return (table, key)
        if prefix.lower() in ("attributes", "attribute"):
            target = key
    attr = {
        "start_time": runs.c.start_time,
        "end_time": runs.c.end_time,
        "name": runs.c.name,
        "status": runs.c.status,
        "run_id": runs.c.id,
        "experiment": experiments.c.name,
    }.get(target.lower())
    if attr is None:
        raise InvalidArgument(
            f"order_by: cannot order by {target!r}; use metrics.KEY, params.KEY, tags.KEY, "
            "start_time, end_time, name or status",
            field=f"order_by[{n}]",
        )
    return attr


# ``load_runs`` serves every search page and every ``get_run``: fixed driver-level SQL with
# one IN list per chunk skips SQLAlchemy's statement building, which cost more than the
# queries themselves (bench/tracking.py).
_SELECT_RUNS = (
    "SELECT r.id, r.project, e.name, r.experiment_id, r.name, r.status, r.start_time, "
    "r.end_time, r.execution_id, r.created_by FROM runs r "
    "JOIN experiments e ON e.id = r.experiment_id WHERE r.project = {p} AND r.id IN ({ids})"
)
_SELECT_VALUES = "SELECT run_id, key, value FROM {table} WHERE run_id IN ({ids})"
_to_utc = UTCDateTime().process_result_value


def load_runs(
    conn: Connection, ids: Sequence[str], *, project: str, with_artifacts: bool = False
) -> list[RunData]:
    """Runs with their params, latest metrics and tags, in the order of ``ids``."""
    if not ids:
        return []
    dialect = conn.dialect
    p = placeholder(conn)
    base: dict[str, tuple[Any, ...]] = {}
    values: dict[str, dict[str, dict[str, Any]]] = {
        "run_params": defaultdict(dict),
        "run_latest_metrics": defaultdict(dict),
        "run_tags": defaultdict(dict),
    }
    arts: dict[str, list[RunArtifact]] = defaultdict(list)
    for start in range(0, len(ids), _CHUNK):
        chunk = tuple(ids[start : start + _CHUNK])
        marks = ", ".join([p] * len(chunk))
        for record in conn.exec_driver_sql(_SELECT_RUNS.format(p=p, ids=marks),
                                           (project, *chunk)):
            base[record[0]] = tuple(record)
        for table, by_run in values.items():
            for run_id, key, value in conn.exec_driver_sql(
                _SELECT_VALUES.format(table=table, ids=marks), chunk
            ):
                by_run[run_id][key] = value
        if with_artifacts:
            for art in conn.execute(
                select(run_artifacts).where(run_artifacts.c.run_id.in_(chunk))
                .order_by(run_artifacts.c.name)
            ):
                arts[art.run_id].append(RunArtifact.model_validate(dict(art._mapping)))
    params, metrics, tags = values.values()
    out: list[RunData] = []
    for run_id in ids:
        row = base.get(run_id)
        if row is None:
            continue
        out.append(
            RunData.model_construct(
                id=run_id,
                project=row[1],
                experiment=row[2],
                experiment_id=row[3],
                name=row[4],
                status=row[5],
                start_time=_to_utc(row[6], dialect),
                end_time=_to_utc(row[7], dialect),
                execution_id=row[8],
                created_by=row[9],
                params=params.get(run_id, {}),
                metrics=metrics.get(run_id, {}),
                tags=tags.get(run_id, {}),
                artifacts=arts.get(run_id, []),
            )
        )
    return out

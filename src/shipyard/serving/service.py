"""The control plane: endpoints and the model versions deployed to them, in the store.

Plain functions over ``(store, ctx, ...)``, like the registry's. Every change is one write
transaction with its audit row; the traffic split of an endpoint with deployed models always
adds up to 100 (``traffic``). The rows are the desired state: the server starts a replica
process per deployment from them (``replicas``), at start and after every change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from shipyard import audit
from shipyard.context import RequestContext
from shipyard.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from shipyard.ids import new_id
from shipyard.registry import service as registry
from shipyard.registry.refs import check_version
from shipyard.serving.models import Deployment, Endpoint
from shipyard.serving.traffic import TOTAL, check_split, rescale
from shipyard.store import Store
from shipyard.store.projects import ensure_project
from shipyard.store.schema import endpoint_deployments, endpoints
from shipyard.store.types import utcnow
from shipyard.validation import check_name, check_text

MAX_DESCRIPTION = 10_000
MAX_LABELS = 64
MAX_REPLICAS = 64

__all__ = [
    "DeployedModel",
    "create_endpoint",
    "delete_endpoint",
    "deploy",
    "deployed_models",
    "deployed_versions",
    "get_endpoint",
    "list_endpoints",
    "set_traffic",
    "undeploy",
]


def create_endpoint(store: Store, ctx: RequestContext, name: str, *, description: str = "",
                    labels: Mapping[str, str] | None = None) -> Endpoint:
    """A new endpoint with no model deployed; ``AlreadyExists`` if the name is taken."""
    check_name(name, "name")
    check_text(description, "description", limit=MAX_DESCRIPTION)
    clean_labels = _check_labels(labels)

    def work(conn: Connection) -> Endpoint:
        ensure_project(conn, ctx.project)
        if _endpoint_row(conn, ctx.project, name, missing_ok=True) is not None:
            raise AlreadyExists(f"endpoint {name!r} already exists in project "
                                f"{ctx.project!r}", field="name")
        now = utcnow()
        conn.execute(insert(endpoints).values(
            id=new_id(), project=ctx.project, name=name, description=description,
            labels=clean_labels, created_at=now, updated_at=now, created_by=ctx.actor))
        audit.record(conn, ctx, "endpoint.create", f"endpoints/{name}")
        return _result(conn, _endpoint_row(conn, ctx.project, name))

    return store.retry_write(work)


def get_endpoint(store: Store, project: str, name: str) -> Endpoint:
    check_name(name, "name")
    with store.read() as conn:
        return _result(conn, _endpoint_row(conn, project, name))


def list_endpoints(store: Store, project: str) -> list[Endpoint]:
    """The project's endpoints by name, with their deployments (two queries in all)."""
    with store.read() as conn:
        rows = conn.execute(select(endpoints).where(endpoints.c.project == project)
                            .order_by(endpoints.c.name)).all()
        deployed = _deployments_of(conn, [row.id for row in rows])
        return [_endpoint_result(row, deployed.get(row.id, [])) for row in rows]


def delete_endpoint(store: Store, ctx: RequestContext, name: str) -> None:
    """Delete an endpoint; one still serving a model is refused (undeploy it first)."""
    check_name(name, "name")

    def work(conn: Connection) -> None:
        row = _endpoint_row(conn, ctx.project, name, lock=True)
        serving = [d.id for d in _deployments_of(conn, [row.id]).get(row.id, [])]
        if serving:
            raise FailedPrecondition(f"endpoint {name!r} still serves {serving}: undeploy "
                                     "them first", field="name")
        conn.execute(delete(endpoints).where(endpoints.c.id == row.id))
        audit.record(conn, ctx, "endpoint.delete", f"endpoints/{name}")

    store.retry_write(work)


def deploy(
    store: Store,
    ctx: RequestContext,
    endpoint: str,
    model: str,
    *,
    version: int | None = None,
    alias: str | None = None,
    traffic_percentage: int | None = None,
    min_replicas: int = 1,
    max_replicas: int = 1,
) -> Endpoint:
    """Deploy a registered version (by ``version`` or ``alias``; with neither, the latest)
    to ``endpoint`` with ``traffic_percentage`` of its requests; the models already there
    share the rest in their current proportions. The first model deployed takes all the
    traffic (100, the default then; 0 is the default afterwards)."""
    check_name(endpoint, "endpoint")
    check_name(model, "model")
    _check_replicas(min_replicas, max_replicas)
    if traffic_percentage is not None and (
            isinstance(traffic_percentage, bool) or not isinstance(traffic_percentage, int)
            or not 0 <= traffic_percentage <= TOTAL):
        raise InvalidArgument(f"traffic_percentage must be a whole number from 0 to 100, "
                              f"got {traffic_percentage!r}", field="traffic_percentage")
    # Resolved through the registry's public reads, before the write transaction.
    if version is not None:
        check_version(version)
    chosen = registry.get_model_version(store, ctx.project, model, version, alias)
    if chosen.status == "retired":
        raise FailedPrecondition(f"{model}:{chosen.version} is retired: deploy another "
                                 "version", field="version")
    model_id = registry.get_model(store, ctx.project, model).id
    deployed_id = f"{model}:{chosen.version}"

    def work(conn: Connection) -> Endpoint:
        row = _endpoint_row(conn, ctx.project, endpoint, lock=True)
        current = _deployments_of(conn, [row.id]).get(row.id, [])
        if any(d.id == deployed_id for d in current):
            raise AlreadyExists(f"{deployed_id} is already deployed to {endpoint!r}",
                                field="version")
        share = traffic_percentage
        if not current:
            if share not in (None, TOTAL):
                raise InvalidArgument(
                    f"the first model deployed to {endpoint!r} takes all its traffic: "
                    f"traffic_percentage must be 100, got {share}", field="traffic_percentage")
            share = TOTAL
        elif share is None:
            share = 0
        others = rescale({d.id: d.traffic_percentage for d in current}, TOTAL - share)
        _write_split(conn, row.id, others)
        now = utcnow()
        conn.execute(insert(endpoint_deployments).values(
            id=new_id(), endpoint_id=row.id, model_id=model_id, model_name=model,
            version=chosen.version, version_id=chosen.id, alias=alias, traffic=share,
            min_replicas=min_replicas, max_replicas=max_replicas, created_at=now,
            created_by=ctx.actor))
        _touch(conn, row.id)
        audit.record(conn, ctx, "endpoint.deploy", f"endpoints/{endpoint}",
                     detail={"deployed_model_id": deployed_id, "alias": alias,
                             "traffic": {**others, deployed_id: share}})
        return _result(conn, row)

    return store.retry_write(work)


def set_traffic(store: Store, ctx: RequestContext, endpoint: str,
                traffic: Mapping[str, int]) -> Endpoint:
    """Set the whole split: ``{deployed model id: percentage}``, adding up to 100 (models
    left out get 0). ``InvalidArgument`` naming the field otherwise."""
    check_name(endpoint, "endpoint")
    if not isinstance(traffic, Mapping):
        raise InvalidArgument("traffic must map deployed model ids to percentages",
                              field="traffic")

    def work(conn: Connection) -> Endpoint:
        row = _endpoint_row(conn, ctx.project, endpoint, lock=True)
        current = _deployments_of(conn, [row.id]).get(row.id, [])
        if not current:
            raise FailedPrecondition(f"endpoint {endpoint!r} has no deployed model: deploy "
                                     "one first", field="traffic")
        split = check_split(traffic, [d.id for d in current])
        _write_split(conn, row.id, split)
        _touch(conn, row.id)
        audit.record(conn, ctx, "endpoint.set_traffic", f"endpoints/{endpoint}",
                     detail={"from": {d.id: d.traffic_percentage for d in current},
                             "to": split})
        return _result(conn, row)

    return store.retry_write(work)


def undeploy(store: Store, ctx: RequestContext, endpoint: str, deployed_model_id: str,
             traffic: Mapping[str, int] | None = None) -> Endpoint:
    """Remove a deployed model. Its share goes to the others in their proportions, or as
    ``traffic`` says (over the models that remain, adding up to 100)."""
    check_name(endpoint, "endpoint")
    if not isinstance(deployed_model_id, str):
        raise InvalidArgument("deployed_model_id must be a string such as 'model:3'",
                              field="deployed_model_id")

    def work(conn: Connection) -> Endpoint:
        row = _endpoint_row(conn, ctx.project, endpoint, lock=True)
        current = _deployments_of(conn, [row.id]).get(row.id, [])
        gone = next((d for d in current if d.id == deployed_model_id), None)
        if gone is None:
            raise NotFound(f"{deployed_model_id!r} is not deployed to {endpoint!r}: deployed "
                           f"models are {[d.id for d in current]}", field="deployed_model_id")
        rest = [d for d in current if d.id != deployed_model_id]
        if traffic is not None:
            split = check_split(traffic, [d.id for d in rest])
        else:
            split = rescale({d.id: d.traffic_percentage for d in rest}, TOTAL)
        model, _, number = deployed_model_id.rpartition(":")
        conn.execute(delete(endpoint_deployments).where(
            endpoint_deployments.c.endpoint_id == row.id,
            endpoint_deployments.c.model_name == model,
            endpoint_deployments.c.version == int(number)))
        _write_split(conn, row.id, split)
        _touch(conn, row.id)
        audit.record(conn, ctx, "endpoint.undeploy", f"endpoints/{endpoint}",
                     detail={"deployed_model_id": deployed_model_id, "traffic": split})
        return _result(conn, row)

    return store.retry_write(work)


# -- what other parts read -------------------------------------------------------------------


def deployed_versions(conn: Connection, model_id: str) -> set[int]:
    """The versions of a model (by the registry's model id) deployed to any endpoint: the
    registry's deployment lookup (``shipyard.runtime.Hooks``)."""
    return set(conn.execute(
        select(endpoint_deployments.c.version)
        .where(endpoint_deployments.c.model_id == model_id)
    ).scalars())


@dataclass(frozen=True)
class DeployedModel:
    """One deployment as the replica supervisor sees it: ``key`` is the deployment row's
    own id (a redeploy of the same version is a new replica)."""

    key: str
    project: str
    endpoint: str
    deployment: Deployment


def deployed_models(store: Store) -> list[DeployedModel]:
    """Every deployment on every endpoint (the desired state replicas are started from)."""
    with store.read() as conn:
        rows = conn.execute(
            select(endpoint_deployments, endpoints.c.project, endpoints.c.name.label("ep"))
            .join(endpoints, endpoints.c.id == endpoint_deployments.c.endpoint_id)
            .order_by(endpoints.c.project, endpoints.c.name, endpoint_deployments.c.created_at)
        ).all()
    return [DeployedModel(row.id, row.project, row.ep, _deployment(row)) for row in rows]


# -- helpers -------------------------------------------------------------------------------


def _endpoint_row(conn: Connection, project: str, name: str, *, lock: bool = False,
                  missing_ok: bool = False) -> Any:
    stmt = select(endpoints).where(endpoints.c.project == project, endpoints.c.name == name)
    if lock:  # PostgreSQL: serialises changes to one endpoint (SQLite's write lock has)
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).first()
    if row is None and not missing_ok:
        raise NotFound(f"no endpoint named {name!r} in project {project!r}", field="name")
    return row


def _deployments_of(conn: Connection, endpoint_ids: list[str]) -> dict[str, list[Deployment]]:
    if not endpoint_ids:
        return {}
    rows = conn.execute(
        select(endpoint_deployments)
        .where(endpoint_deployments.c.endpoint_id.in_(endpoint_ids))
        .order_by(endpoint_deployments.c.created_at, endpoint_deployments.c.id)
    ).all()
    out: dict[str, list[Deployment]] = {}
    for row in rows:
        out.setdefault(row.endpoint_id, []).append(_deployment(row))
    return out


def _deployment(row: Row[Any]) -> Deployment:
    return Deployment(
        id=f"{row.model_name}:{row.version}", model=row.model_name, version=row.version,
        model_version_id=row.version_id, alias=row.alias, traffic_percentage=row.traffic,
        min_replicas=row.min_replicas, max_replicas=row.max_replicas,
        created_at=row.created_at, created_by=row.created_by)


def _result(conn: Connection, row: Any) -> Endpoint:
    fresh = conn.execute(select(endpoints).where(endpoints.c.id == row.id)).one()
    return _endpoint_result(fresh, _deployments_of(conn, [row.id]).get(row.id, []))


def _endpoint_result(row: Any, deployed: list[Deployment]) -> Endpoint:
    return Endpoint(id=row.id, project=row.project, name=row.name,
                    description=row.description, labels=dict(row.labels or {}),
                    deployments=deployed, created_at=row.created_at,
                    updated_at=row.updated_at)


def _write_split(conn: Connection, endpoint_id: str, split: Mapping[str, int]) -> None:
    for deployed_id, share in split.items():
        model, _, number = deployed_id.rpartition(":")
        conn.execute(update(endpoint_deployments).where(
            endpoint_deployments.c.endpoint_id == endpoint_id,
            endpoint_deployments.c.model_name == model,
            endpoint_deployments.c.version == int(number)).values(traffic=share))


def _touch(conn: Connection, endpoint_id: str) -> None:
    conn.execute(update(endpoints).where(endpoints.c.id == endpoint_id)
                 .values(updated_at=utcnow()))


def _check_replicas(low: int, high: int) -> None:
    for field, value in (("min_replicas", low), ("max_replicas", high)):
        if isinstance(value, bool) or not isinstance(value, int) \
                or not 1 <= value <= MAX_REPLICAS:
            raise InvalidArgument(f"{field} must be a whole number from 1 to {MAX_REPLICAS}, "
                                  f"got {value!r}", field=field)
    if high < low:
        raise InvalidArgument(f"max_replicas ({high}) is below min_replicas ({low})",
                              field="max_replicas")


def _check_labels(labels: Mapping[str, str] | None) -> dict[str, str]:
    if labels is None:
        return {}
    if not isinstance(labels, Mapping) or len(labels) > MAX_LABELS:
        raise InvalidArgument(f"labels must be a mapping of at most {MAX_LABELS} entries",
                              field="labels")
    for key, value in labels.items():
        if not isinstance(key, str) or not isinstance(value, str) or len(value) > 256:
            raise InvalidArgument("labels map names to strings of at most 256 characters",
                                  field=f"labels.{key}")
        check_name(key, f"labels.{key}")
    return dict(labels)


"""The control plane: endpoints and the model versions deployed to them, in the store.

Plain functions over ``(store, ctx, ...)``, like the registry's. Every change is one write
transaction with its audit row; the traffic split of an endpoint with deployed models always
adds up to 100 (``traffic``). The rows are the desired state: the server starts replica
processes per deployment from them (``replicas``), at start and after every change.

Each change publishes its built-in event (``events.builtin``: ``ENDPOINT_DEPLOYED``,
``ENDPOINT_UNDEPLOYED``, ``ENDPOINT_TRAFFIC_CHANGED``) in the same transaction, so a change
that is refused or rolls back announces nothing.

Rollouts: a **shadow** deployment gets a copy of the requests (its answers are logged,
never returned; it is never in the split). ``shift_traffic`` sets one deployment's share
and rescales the others (a canary's step). A deployment made by an alias with
``follow_alias`` moves when the alias moves: the registry calls ``follow_alias`` inside the
transaction that moves the alias (``registry.aliases.add_follower``), so the deployment's
version and the alias can never disagree in the store; the supervisor starts the new
version's replicas and keeps the old ones answering until they are ready.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from shipyard import audit
from shipyard.context import RequestContext
from shipyard.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from shipyard.events.builtin import (
    ENDPOINT_DEPLOYED,
    ENDPOINT_TRAFFIC_CHANGED,
    ENDPOINT_UNDEPLOYED,
    announce,
)
from shipyard.ids import new_id
from shipyard.registry import aliases
from shipyard.registry import service as registry
from shipyard.registry.refs import check_version
from shipyard.serving.models import Deployment, Endpoint
from shipyard.serving.ray_runtime import check_runtime
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
    "follow_alias",
    "get_endpoint",
    "list_endpoints",
    "set_traffic",
    "shift_traffic",
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
    shadow: bool = False,
    follow_alias: bool = False,
    runtime: str = "local",
) -> Endpoint:
    """Deploy a registered version (by ``version`` or ``alias``; with neither, the latest)
    to ``endpoint`` with ``traffic_percentage`` of its requests; the models already there
    share the rest in their current proportions. The first model deployed takes all the
    traffic (100, the default then; 0 is the default afterwards).

    ``shadow``: the version gets a copy of every request instead of a share (its answers
    are logged, not returned); an endpoint needs a model that answers first.
    ``follow_alias``: the deployment moves to the alias's new version when it moves.
    ``runtime``: ``"local"`` (replica processes of the server) or ``"ray"`` (a Ray Serve
    application on the cluster ``RAY_ADDRESS`` names; refused when none answers)."""
    check_name(endpoint, "endpoint")
    check_name(model, "model")
    _check_replicas(min_replicas, max_replicas)
    check_runtime(runtime)
    for field, flag in (("shadow", shadow), ("follow_alias", follow_alias)):
        if not isinstance(flag, bool):
            raise InvalidArgument(f"{field} must be true or false, got {flag!r}", field=field)
    if follow_alias and alias is None:
        raise InvalidArgument("follow_alias needs the alias to follow: deploy by alias=",
                              field="follow_alias")
    if follow_alias and version is not None:
        raise InvalidArgument("follow_alias follows an alias: give alias= and no version",
                              field="version")
    if shadow and traffic_percentage not in (None, 0):
        raise InvalidArgument(f"a shadow gets a copy of the traffic, not a share: "
                              f"traffic_percentage must be 0, got {traffic_percentage!r}",
                              field="traffic_percentage")
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
        answering = [d for d in current if not d.shadow]
        share = traffic_percentage
        if shadow:
            if not answering:
                raise FailedPrecondition(
                    f"endpoint {endpoint!r} has no model that answers: a shadow copies the "
                    "traffic of one, so deploy that first", field="shadow")
            share = 0
        elif not answering:
            if share not in (None, TOTAL):
                raise InvalidArgument(
                    f"the first model deployed to {endpoint!r} takes all its traffic: "
                    f"traffic_percentage must be 100, got {share}", field="traffic_percentage")
            share = TOTAL
        elif share is None:
            share = 0
        others = rescale({d.id: d.traffic_percentage for d in answering}, TOTAL - share)
        _write_split(conn, row.id, others)
        now = utcnow()
        conn.execute(insert(endpoint_deployments).values(
            id=new_id(), endpoint_id=row.id, model_id=model_id, model_name=model,
            version=chosen.version, version_id=chosen.id, alias=alias, traffic=share,
            min_replicas=min_replicas, max_replicas=max_replicas, created_at=now,
            created_by=ctx.actor, shadow=shadow, follow_alias=follow_alias,
            runtime=runtime))
        _touch(conn, row.id)
        split = others if shadow else {**others, deployed_id: share}
        audit.record(conn, ctx, "endpoint.deploy", f"endpoints/{endpoint}",
                     detail={"deployed_model_id": deployed_id, "alias": alias,
                             "shadow": shadow, "follow_alias": follow_alias,
                             "runtime": runtime, "traffic": split})
        announce(conn, ctx, ENDPOINT_DEPLOYED, endpoint=endpoint, deployment=deployed_id,
                 model=model, version=chosen.version, traffic=split)
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
        answering = _answering(current, endpoint, traffic)
        split = check_split(traffic, [d.id for d in answering])
        _change_split(conn, ctx, row, endpoint, answering, split)
        return _result(conn, row)

    return store.retry_write(work)


def shift_traffic(store: Store, ctx: RequestContext, endpoint: str, deployed_model_id: str,
                  traffic_percentage: int) -> Endpoint:
    """Give ``deployed_model_id`` ``traffic_percentage`` of the requests; the other models
    share the rest in their current proportions (one step of a canary, or its rollback)."""
    check_name(endpoint, "endpoint")
    if not isinstance(deployed_model_id, str):
        raise InvalidArgument("deployed_model_id must be a string such as 'model:3'",
                              field="deployed_model_id")
    if isinstance(traffic_percentage, bool) or not isinstance(traffic_percentage, int) \
            or not 0 <= traffic_percentage <= TOTAL:
        raise InvalidArgument(f"traffic_percentage must be a whole number from 0 to 100, "
                              f"got {traffic_percentage!r}", field="traffic_percentage")

    def work(conn: Connection) -> Endpoint:
        row = _endpoint_row(conn, ctx.project, endpoint, lock=True)
        current = _deployments_of(conn, [row.id]).get(row.id, [])
        answering = _answering(current, endpoint, {deployed_model_id: traffic_percentage},
                               field="deployed_model_id")
        if all(d.id != deployed_model_id for d in answering):
            raise NotFound(f"{deployed_model_id!r} is not deployed to {endpoint!r}: deployed "
                           f"models are {[d.id for d in current]}", field="deployed_model_id")
        rest = {d.id: d.traffic_percentage for d in answering if d.id != deployed_model_id}
        if not rest and traffic_percentage != TOTAL:
            raise InvalidArgument(f"{deployed_model_id} is the only model that answers on "
                                  f"{endpoint!r}: it keeps 100", field="traffic_percentage")
        split = {**rescale(rest, TOTAL - traffic_percentage),
                 deployed_model_id: traffic_percentage}
        _change_split(conn, ctx, row, endpoint, answering, split)
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
        rest = [d for d in current if d.id != deployed_model_id and not d.shadow]
        if not rest and len(current) > 1 and not gone.shadow:
            raise FailedPrecondition(
                f"{deployed_model_id} is the last model that answers on {endpoint!r}; its "
                f"shadows {[d.id for d in current if d.shadow]} would copy nothing: "
                "undeploy them first", field="deployed_model_id")
        if gone.shadow:
            split = {d.id: d.traffic_percentage for d in rest}
            if traffic is not None:
                split = check_split(traffic, [d.id for d in rest])
        elif traffic is not None:
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
        announce(conn, ctx, ENDPOINT_UNDEPLOYED, endpoint=endpoint,
                 deployment=deployed_model_id, model=gone.model, version=gone.version)
        return _result(conn, row)

    return store.retry_write(work)


def follow_alias(conn: Connection, ctx: RequestContext, model: Row[Any], alias: str,
                 chosen: Row[Any] | None) -> None:
    """The registry moved ``alias`` of ``model`` to the version row ``chosen`` (None:
    deleted the alias), inside its
    transaction: every deployment of that model made by that alias with ``follow_alias``
    moves to the new version, keeping its share. Where the new version is deployed already,
    the follower's share joins that deployment (which follows the alias from then on). A
    deleted alias leaves the deployments where they are."""
    if chosen is None:
        return
    version = int(chosen.version)
    followers = conn.execute(
        select(endpoint_deployments, endpoints.c.name.label("ep"))
        .join(endpoints, endpoints.c.id == endpoint_deployments.c.endpoint_id)
        .where(endpoint_deployments.c.model_id == model.id,
               endpoint_deployments.c.alias == alias,
               endpoint_deployments.c.follow_alias.is_(True),
               endpoint_deployments.c.version != version)
        .order_by(endpoints.c.name)
    ).all()
    if not followers:
        return
    for follower in followers:
        row = _endpoint_row(conn, ctx.project, follower.ep, lock=True)
        old_id, new_id_ = f"{model.name}:{follower.version}", f"{model.name}:{version}"
        there = conn.execute(select(endpoint_deployments).where(
            endpoint_deployments.c.endpoint_id == row.id,
            endpoint_deployments.c.model_name == model.name,
            endpoint_deployments.c.version == version)).first()
        if there is None:
            conn.execute(update(endpoint_deployments)
                         .where(endpoint_deployments.c.id == follower.id)
                         .values(version=version, version_id=chosen.id))
        else:
            conn.execute(update(endpoint_deployments)
                         .where(endpoint_deployments.c.id == there.id)
                         .values(traffic=there.traffic + follower.traffic, alias=alias,
                                 follow_alias=True,
                                 shadow=bool(there.shadow and follower.shadow)))
            conn.execute(delete(endpoint_deployments)
                         .where(endpoint_deployments.c.id == follower.id))
        _touch(conn, row.id)
        split = {d.id: d.traffic_percentage
                 for d in _deployments_of(conn, [row.id]).get(row.id, []) if not d.shadow}
        audit.record(conn, ctx, "endpoint.follow_alias", f"endpoints/{follower.ep}",
                     detail={"alias": alias, "from": old_id, "to": new_id_,
                             "traffic": split})
        announce(conn, ctx, ENDPOINT_UNDEPLOYED, endpoint=follower.ep, deployment=old_id,
                 model=model.name, version=follower.version)
        announce(conn, ctx, ENDPOINT_DEPLOYED, endpoint=follower.ep, deployment=new_id_,
                 model=model.name, version=version, traffic=split)


aliases.add_follower(follow_alias)


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
    own id and its version's (a redeploy of the same version, or a deployment that moved
    with its alias, gets new replicas); ``row`` is the row's id alone."""

    key: str
    project: str
    endpoint: str
    deployment: Deployment
    row: str = ""


def deployed_models(store: Store) -> list[DeployedModel]:
    """Every deployment on every endpoint (the desired state replicas are started from)."""
    with store.read() as conn:
        rows = conn.execute(
            select(endpoint_deployments, endpoints.c.project, endpoints.c.name.label("ep"))
            .join(endpoints, endpoints.c.id == endpoint_deployments.c.endpoint_id)
            .order_by(endpoints.c.project, endpoints.c.name, endpoint_deployments.c.created_at)
        ).all()
    return [DeployedModel(f"{row.id}-{row.version_id}", row.project, row.ep, _deployment(row),
                          row.id) for row in rows]


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
        created_at=row.created_at, created_by=row.created_by,
        follow_alias=bool(row.follow_alias), shadow=bool(row.shadow), runtime=row.runtime)


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


def _answering(current: list[Deployment], endpoint: str, named: Mapping[str, object],
               field: str = "traffic") -> list[Deployment]:
    """The deployments that answer (not shadows); ``FailedPrecondition`` when there are
    none, ``InvalidArgument`` when ``named`` gives a shadow a share."""
    if not current:
        raise FailedPrecondition(f"endpoint {endpoint!r} has no deployed model: deploy "
                                 "one first", field=field)
    shadows = {d.id for d in current if d.shadow}
    for key in named:
        if key in shadows:
            raise InvalidArgument(
                f"{key} is a shadow: it gets a copy of the traffic, never a share (undeploy "
                "it and deploy it without shadow to give it one)",
                field=field if field != "traffic" else f"traffic.{key}")
    return [d for d in current if not d.shadow]


def _change_split(conn: Connection, ctx: RequestContext, row: Any, endpoint: str,
                  answering: list[Deployment], split: Mapping[str, int]) -> None:
    before = {d.id: d.traffic_percentage for d in answering}
    _write_split(conn, row.id, split)
    _touch(conn, row.id)
    audit.record(conn, ctx, "endpoint.set_traffic", f"endpoints/{endpoint}",
                 detail={"from": before, "to": dict(split)})
    announce(conn, ctx, ENDPOINT_TRAFFIC_CHANGED, endpoint=endpoint, traffic=dict(split))


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


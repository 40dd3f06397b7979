"""Registering model versions and reading them back.

``register_model`` packages the model (``flavors``), stores the directory in the artifact
store, and only then records the row: a version row always points at complete files.
Version numbers come from ``models.next_version``, read and incremented in the same write
transaction as the insert, so concurrent registrations get 1, 2, 3... with no gap and no
collision.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from shipyard import audit
from shipyard.artifacts import ArtifactStore, TreeInfo
from shipyard.context import RequestContext
from shipyard.errors import AlreadyExists, FailedPrecondition, InvalidArgument
from shipyard.events import builtin as events
from shipyard.ids import check_id, new_id
from shipyard.lineage import records as lineage
from shipyard.registry import _rows, flavors
from shipyard.registry._rows import DeploymentLookup
from shipyard.registry.aliases import move_alias
from shipyard.registry.filters import parse_filter
from shipyard.registry.models import STORED_STATUSES, ModelVersion, RegisteredModel
from shipyard.registry.refs import LATEST, ModelRef, check_alias, check_version, parse_ref
from shipyard.registry.semver import check_semver
from shipyard.registry.signature import Signature
from shipyard.store import Store
from shipyard.store.dialect import insert_ignore
from shipyard.store.projects import ensure_project
from shipyard.store.schema import model_aliases, model_versions, models
from shipyard.store.types import utcnow
from shipyard.tracking import service as tracking
from shipyard.validation import check_key, check_name, check_text

MAX_DESCRIPTION = 10_000
MAX_LABEL_VALUE = 256
MAX_LABELS = 64
MODEL_ARTIFACT_TYPE = "Model"


def register_model(
    store: Store,
    artifacts: ArtifactStore,
    ctx: RequestContext,
    name: str,
    model_or_path: Any,
    *,
    input_example: Any = None,
    signature: Signature | Mapping[str, Any] | None = None,
    semver: str | None = None,
    description: str = "",
    labels: Mapping[str, str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    metrics: Mapping[str, float] | None = None,
    aliases: Sequence[str] | None = None,
    run_id: str | None = None,
    trusted_digest: str | None = None,
    execution_id: str | None = None,
    deployments: DeploymentLookup | None = None,
) -> ModelVersion:
    """Register a new version of model ``name`` (created on first use).

    ``model_or_path`` is a model object, a model file or a directory packaged by
    ``flavors.save``. ``input_example`` (a few rows) gives the signature unless
    ``signature`` is passed. ``aliases`` are moved to the new version in the same
    transaction. With ``run_id``, the model is recorded as an output of that run's execution
    in the lineage graph, and the run's ``git.*`` and ``source.*`` tags (where its code came
    from) are kept as ``metadata["source"]``; with ``execution_id`` (a pipeline step
    registering the model), an output of that execution too.
    """
    check_name(name, "name")
    clean_labels = _check_labels(labels)
    clean_metrics = _check_metrics(metrics)
    alias_list = [check_alias(a) for a in aliases or ()]
    if semver is not None:
        check_semver(semver)
    check_text(description, "description", limit=MAX_DESCRIPTION)
    with tempfile.TemporaryDirectory(prefix="shipyard-model-") as tmp:
        model_dir = Path(tmp, "model")
        model_dir.mkdir()
        package = flavors.package(
            model_or_path,
            model_dir,
            signature=signature,
            input_example=input_example,
            metadata=metadata,
            trusted_digest=trusted_digest,
        )
        manifest, tree = _store_package(artifacts, package)
    sig = None if manifest.signature is None else manifest.signature.to_dict()

    def work(conn: Connection) -> ModelVersion:
        ensure_project(conn, ctx.project)
        model = _get_or_create_model(conn, ctx.project, name, clean_labels, description)
        version = int(model.next_version)
        now = utcnow()
        conn.execute(
            update(models)
            .where(models.c.id == model.id)
            .values(
                next_version=version + 1,
                updated_at=now,
                labels={**(model.labels or {}), **clean_labels},
            )
        )
        if semver is not None:
            _check_semver_free(conn, model, semver)
        artifact_id = _record_lineage(conn, ctx, name, version, tree, manifest.flavor, run_id,
                                      execution_id)
        version_metadata = dict(manifest.metadata)
        if run_id is not None:
            # Which code made this model (seeds 003, 004): the run's git and source tags,
            # unless the registrant's own metadata already says.
            source = tracking.run_source_tags(conn, run_id)
            if source:
                version_metadata.setdefault("source", source)
        row = {
            "id": new_id(),
            "model_id": model.id,
            "version": version,
            "semver": semver,
            "description": description,
            "labels": clean_labels,
            "metadata": version_metadata,
            "metrics": clean_metrics,
            "status": "registered",
            "flavor": manifest.flavor,
            "tree_digest": tree.digest,
            "signature": sig,
            "artifact_id": artifact_id,
            "run_id": run_id,
            "created_at": now,
            "created_by": ctx.actor,
        }
        conn.execute(insert(model_versions).values(**row))
        events.announce(conn, ctx, events.VERSION_REGISTERED, model=name, version=version,
                        run_id=run_id, registered_by=ctx.actor)
        for alias in alias_list:
            move_alias(conn, ctx, model, alias, version, reason="set at registration")
        audit.record(
            conn,
            ctx,
            "model.register",
            f"models/{name}/versions/{version}",
            detail={"flavor": manifest.flavor, "tree_digest": tree.digest},
        )
        fresh = _rows.model_row(conn, ctx.project, name)
        return _rows.version_result(conn, fresh, _rows.version_row(conn, fresh, version),
                                    deployments)

    return store.retry_write(work)


def get_model(store: Store, project: str, name: str) -> RegisteredModel:
    with store.read() as conn:
        model = _rows.model_row(conn, project, name)
        held = _rows.aliases_of(conn, model.id)
        aliases = {alias: version for version, names in held.items() for alias in names}
        return _model_result(model, dict(sorted(aliases.items())))


def get_model_version(
    store: Store,
    project: str,
    name: str,
    version: int | None = None,
    alias: str | None = None,
    *,
    deployments: DeploymentLookup | None = None,
) -> ModelVersion:
    """One version by number, by alias, or (with neither) the latest one not retired."""
    if version is not None and alias is not None:
        raise InvalidArgument("pass version or alias, not both", field="alias")
    ref = ModelRef(
        check_name(name, "name"),
        version=None if version is None else check_version(version),
        # "latest" is the reserved alias of the newest version that is not retired.
        alias=None if alias in (None, LATEST) else check_name(alias, "alias"),
    )
    with store.read() as conn:
        return _resolve(conn, project, ref, deployments)


def resolve_ref(
    store: Store,
    project: str,
    ref: str | ModelRef,
    *,
    deployments: DeploymentLookup | None = None,
) -> ModelVersion:
    """The version ``name``, ``name:3``, ``name@alias`` or ``models:/name@alias`` names."""
    parsed = ref if isinstance(ref, ModelRef) else parse_ref(ref)
    with store.read() as conn:
        return _resolve(conn, project, parsed, deployments)


def list_models(
    store: Store,
    project: str,
    filter: str | None = None,
    *,
    limit: int = 1000,
    deployments: DeploymentLookup | None = None,
) -> list[RegisteredModel]:
    """Models with at least one version matching ``filter`` (see ``registry.filters``),
    by name. With no filter, every model, including those without versions.

    The project's aliases, and (with a filter) its versions, are read in one query each
    and matched here, rather than in queries per model.
    """
    clauses = parse_filter(filter)
    with store.read() as conn:
        rows = conn.execute(
            select(models).where(models.c.project == project).order_by(models.c.name)
        ).all()
        aliases = _project_aliases(conn, project)
        versions = _project_versions(conn, project) if clauses else {}
        out: list[RegisteredModel] = []
        for model in rows:
            if clauses:
                candidates = versions.get(model.id, ())
                if not candidates:
                    continue
                held = _by_version(aliases.get(model.id, {}))
                deployed = _rows.deployed_versions(conn, model.id, deployments)
                if not any(
                    _version_matches(model, row, held, deployed, clauses) for row in candidates
                ):
                    continue
            out.append(_model_result(model, aliases.get(model.id, {})))
            if len(out) >= limit:
                break
    return out


def list_versions(
    store: Store,
    project: str,
    name: str,
    filter: str | None = None,
    *,
    deployments: DeploymentLookup | None = None,
) -> list[ModelVersion]:
    """A model's versions matching ``filter``, newest first."""
    clauses = parse_filter(filter)
    with store.read() as conn:
        model = _rows.model_row(conn, project, name)
        return _matching_versions(conn, model, clauses, first_only=False,
                                  deployments=deployments)


def set_status(
    store: Store,
    ctx: RequestContext,
    name: str,
    version: int,
    status: str,
    reason: str = "",
    *,
    deployments: DeploymentLookup | None = None,
) -> ModelVersion:
    """Mark a version ``staged``, ``retired`` or back to ``registered``.

    A version an alias points at cannot be retired: move the alias first.
    """
    if status not in STORED_STATUSES:
        raise InvalidArgument(
            f"status must be one of {list(STORED_STATUSES)} (deployed is derived from endpoints)",
            field="status",
        )
    check_version(version)

    def work(conn: Connection) -> ModelVersion:
        model = _rows.model_row(conn, ctx.project, name, lock=True)
        row = _rows.version_row(conn, model, version)
        if status == "retired":
            held = _rows.aliases_of(conn, model.id).get(version)
            if held:
                raise FailedPrecondition(
                    f"{name}:{version} holds alias(es) {held}: move or delete them before "
                    "retiring it",
                    field="status",
                )
        conn.execute(
            update(model_versions).where(model_versions.c.id == row.id).values(status=status)
        )
        audit.record(
            conn,
            ctx,
            "model.set_status",
            f"models/{name}/versions/{version}",
            detail={"from": row.status, "to": status, "reason": reason},
        )
        return _rows.version_result(conn, model, _rows.version_row(conn, model, version),
                                    deployments)

    return store.retry_write(work)


# -- helpers -------------------------------------------------------------------------------


def _resolve(
    conn: Connection, project: str, ref: ModelRef, deployments: DeploymentLookup | None
) -> ModelVersion:
    model = _rows.model_row(conn, project, ref.name)
    if ref.version is not None:
        row = _rows.version_row(conn, model, ref.version)
    elif ref.alias is not None:
        row = _rows.aliased_row(conn, model, ref.alias)
    else:
        row = _rows.latest_row(conn, model)
    return _rows.version_result(conn, model, row, deployments)


def _matching_versions(
    conn: Connection,
    model: Row[Any],
    clauses: list[Any],
    *,
    first_only: bool,
    deployments: DeploymentLookup | None = None,
) -> list[ModelVersion]:
    aliases = _rows.aliases_of(conn, model.id)
    deployed = _rows.deployed_versions(conn, model.id, deployments)
    rows = conn.execute(
        select(model_versions)
        .where(model_versions.c.model_id == model.id)
        .order_by(model_versions.c.version.desc())
    )
    out: list[ModelVersion] = []
    for row in rows:
        if _version_matches(model, row, aliases, deployed, clauses):
            out.append(_rows.to_version(row, model.project, model.name, aliases, deployed))
            if first_only:
                break
    return out


def _version_matches(
    model: Row[Any],
    row: Row[Any],
    aliases: Mapping[int, list[str]],
    deployed: set[int],
    clauses: list[Any],
) -> bool:
    mv = _rows.to_version(row, model.project, model.name, aliases, deployed)
    doc = {
        "labels": mv.labels,
        "metrics": mv.metrics,
        "name": mv.name,
        "status": mv.status,
        "flavor": mv.flavor,
        "semver": mv.semver,
        "version": mv.version,
        "alias": mv.aliases,
    }
    return all(c.matches(doc) for c in clauses)


def _project_aliases(conn: Connection, project: str) -> dict[str, dict[str, int]]:
    """model id -> {alias: version} for every model of ``project``."""
    out: dict[str, dict[str, int]] = {}
    rows = conn.execute(
        select(model_aliases.c.model_id, model_aliases.c.alias, model_aliases.c.version)
        .join(models, models.c.id == model_aliases.c.model_id)
        .where(models.c.project == project)
        .order_by(model_aliases.c.alias)
    )
    for model_id, alias, version in rows:
        out.setdefault(model_id, {})[alias] = int(version)
    return out


def _project_versions(conn: Connection, project: str) -> dict[str, list[Row[Any]]]:
    """model id -> its version rows, newest first, for every model of ``project``."""
    out: dict[str, list[Row[Any]]] = {}
    rows = conn.execute(
        select(model_versions)
        .join(models, models.c.id == model_versions.c.model_id)
        .where(models.c.project == project)
        .order_by(model_versions.c.model_id, model_versions.c.version.desc())
    )
    for row in rows:
        out.setdefault(row.model_id, []).append(row)
    return out


def _by_version(aliases: Mapping[str, int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for alias, version in sorted(aliases.items()):
        out.setdefault(version, []).append(alias)
    return out


def _model_result(model: Row[Any], aliases: Mapping[str, int]) -> RegisteredModel:
    latest = int(model.next_version) - 1
    return RegisteredModel(
        id=model.id,
        project=model.project,
        name=model.name,
        description=model.description,
        labels=dict(model.labels or {}),
        aliases=dict(aliases),
        latest_version=latest or None,
        created_at=model.created_at,
        updated_at=model.updated_at,
    )


def _store_package(
    artifacts: ArtifactStore, package: flavors.Package
) -> tuple[flavors.Manifest, TreeInfo]:
    """Store the package's files (each read once, hashed as it is written), then its
    manifest, then the tree listing them all."""
    blobs = {name: artifacts.put_file(path) for name, path in sorted(package.files.items())}
    entries = {name: flavors.FileEntry(b.digest, b.size) for name, b in blobs.items()}
    manifest, data = package.manifest(entries)
    blobs[flavors.MANIFEST_NAME] = artifacts.put_bytes(data)
    return manifest, artifacts.put_tree_entries(blobs)


def _get_or_create_model(
    conn: Connection, project: str, name: str, labels: dict[str, str], description: str
) -> Row[Any]:
    now = utcnow()
    # Insert-or-ignore: two first registrations racing on PostgreSQL both succeed, one
    # creating the row; the row lock below then orders their version allocations.
    insert_ignore(
        conn,
        models,
        {
            "id": new_id(),
            "project": project,
            "name": name,
            "description": description,
            "labels": labels,
            "next_version": 1,
            "created_at": now,
            "updated_at": now,
        },
        keys=["project", "name"],
    )
    return _rows.model_row(conn, project, name, lock=True)


def _check_semver_free(conn: Connection, model: Row[Any], semver: str) -> None:
    taken = conn.execute(
        select(model_versions.c.version).where(
            model_versions.c.model_id == model.id, model_versions.c.semver == semver
        )
    ).scalar()
    if taken is not None:
        raise AlreadyExists(f"semver {semver} is already {model.name}:{taken}", field="semver")


def _record_lineage(
    conn: Connection,
    ctx: RequestContext,
    name: str,
    version: int,
    tree: TreeInfo,
    flavor: str,
    run_id: str | None,
    execution_id: str | None = None,
) -> str:
    artifact_id = lineage.create_artifact(
        conn,
        ctx.project,
        MODEL_ARTIFACT_TYPE,
        f"{name}:{version}",
        f"models:/{name}/{version}",
        digest=tree.digest,
        size=tree.size,
        properties={"model": name, "version": version, "flavor": flavor},
    )
    context_id = lineage.get_or_create_context(conn, ctx.project, "model", name)
    lineage.attribute(conn, context_id, artifact_id)
    if run_id is not None:
        run_execution = tracking.run_execution_id(conn, ctx.project, run_id)
        if run_execution:
            lineage.add_event(conn, run_execution, artifact_id, "output", "model")
    if execution_id is not None:
        check_id(execution_id, "execution_id")
        lineage.require_execution(conn, ctx.project, execution_id)
        lineage.add_event(conn, execution_id, artifact_id, "output", "registered_model")
    return artifact_id


def _check_labels(labels: Mapping[str, str] | None) -> dict[str, str]:
    if labels is None:
        return {}
    if not isinstance(labels, Mapping):
        raise InvalidArgument("labels must be a mapping of strings", field="labels")
    if len(labels) > MAX_LABELS:
        raise InvalidArgument(f"at most {MAX_LABELS} labels", field="labels")
    out = {}
    for key, value in labels.items():
        check_key(key, "labels")
        if not isinstance(value, str):
            raise InvalidArgument(f"label {key!r} must be a string", field=f"labels.{key}")
        out[key] = check_text(value, f"labels.{key}", limit=MAX_LABEL_VALUE)
    return out


def _check_metrics(metrics: Mapping[str, float] | None) -> dict[str, float]:
    if metrics is None:
        return {}
    if not isinstance(metrics, Mapping):
        raise InvalidArgument("metrics must be a mapping of names to numbers", field="metrics")
    out = {}
    for key, value in metrics.items():
        check_key(key, "metrics")
        if isinstance(value, bool) or not isinstance(value, int | float):
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise InvalidArgument(
                    f"metric {key!r} must be a number", field=f"metrics.{key}"
                ) from None
        if not math.isfinite(float(value)):
            raise InvalidArgument(f"metric {key!r} must be finite", field=f"metrics.{key}")
        out[key] = float(value)
    return out

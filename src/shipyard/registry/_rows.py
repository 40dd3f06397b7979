"""Row access shared by the registry modules: lookups that raise ``NotFound`` with the
valid choices, the model-row lock, and row -> result conversion."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Connection, Row, select

from shipyard.errors import NotFound
from shipyard.registry.models import ModelVersion, Status
from shipyard.store.schema import model_aliases, model_versions, models

DeploymentLookup = Callable[[Connection, str], set[int]]
"""The versions of a model (by model id) that endpoints serve; the registry reports them
with status ``deployed``. Installed by the serving capability on the runtime
(``shipyard.runtime.Hooks``) and passed to the registry's reads as ``deployments``."""


def model_row(conn: Connection, project: str, name: str, *, lock: bool = False) -> Row[Any]:
    stmt = select(models).where(models.c.project == project, models.c.name == name)
    if lock:
        # PostgreSQL: serialises writers on this model (SQLite's BEGIN IMMEDIATE already has).
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).first()
    if row is None:
        raise NotFound(f"no model named {name!r} in project {project!r}", field="name")
    return row


def version_row(conn: Connection, model: Row[Any], version: int) -> Row[Any]:
    row = conn.execute(
        select(model_versions).where(
            model_versions.c.model_id == model.id, model_versions.c.version == version
        )
    ).first()
    if row is None:
        latest = conn.execute(
            select(model_versions.c.version)
            .where(model_versions.c.model_id == model.id)
            .order_by(model_versions.c.version.desc())
            .limit(1)
        ).scalar()
        hint = f"it has versions 1 to {latest}" if latest else "it has no versions yet"
        raise NotFound(f"model {model.name!r} has no version {version}: {hint}", field="version")
    return row


def latest_row(conn: Connection, model: Row[Any]) -> Row[Any]:
    row = conn.execute(
        select(model_versions)
        .where(model_versions.c.model_id == model.id, model_versions.c.status != "retired")
        .order_by(model_versions.c.version.desc())
        .limit(1)
    ).first()
    if row is None:
        raise NotFound(f"model {model.name!r} has no version that is not retired")
    return row


def alias_version(conn: Connection, model: Row[Any], alias: str) -> int | None:
    found = conn.execute(
        select(model_aliases.c.version).where(
            model_aliases.c.model_id == model.id, model_aliases.c.alias == alias
        )
    ).scalar()
    return None if found is None else int(found)


def aliased_row(conn: Connection, model: Row[Any], alias: str) -> Row[Any]:
    version = alias_version(conn, model, alias)
    if version is None:
        known = aliases_of(conn, model.id)
        choices = sorted({a for names in known.values() for a in names})
        raise NotFound(
            f"model {model.name!r} has no alias {alias!r}"
            + (f"; its aliases are {choices}" if choices else "; it has no aliases"),
            field="alias",
        )
    return version_row(conn, model, version)


def aliases_of(conn: Connection, model_id: str) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    rows = conn.execute(
        select(model_aliases.c.alias, model_aliases.c.version)
        .where(model_aliases.c.model_id == model_id)
        .order_by(model_aliases.c.alias)
    )
    for alias, version in rows:
        out.setdefault(int(version), []).append(alias)
    return out


def deployed_versions(
    conn: Connection, model_id: str, deployments: DeploymentLookup | None = None
) -> set[int]:
    return set() if deployments is None else set(deployments(conn, model_id))


def to_version(
    row: Row[Any] | Mapping[str, Any],
    project: str,
    name: str,
    aliases: Mapping[int, list[str]],
    deployed: set[int],
) -> ModelVersion:
    data = dict(row._mapping) if isinstance(row, Row) else dict(row)
    version = int(data["version"])
    status: Status = data["status"]
    if version in deployed and status != "retired":
        status = "deployed"
    return ModelVersion(
        id=data["id"],
        project=project,
        name=name,
        version=version,
        semver=data["semver"],
        description=data["description"],
        labels=dict(data["labels"] or {}),
        metadata=dict(data["metadata"] or {}),
        metrics={k: float(v) for k, v in (data["metrics"] or {}).items()},
        aliases=list(aliases.get(version, [])),
        status=status,
        flavor=data["flavor"],
        tree_digest=data["tree_digest"],
        signature=data["signature"],
        artifact_id=data["artifact_id"],
        run_id=data["run_id"],
        created_at=data["created_at"],
        created_by=data["created_by"],
    )


def version_result(
    conn: Connection,
    model: Row[Any],
    row: Row[Any],
    deployments: DeploymentLookup | None = None,
) -> ModelVersion:
    return to_version(
        row,
        model.project,
        model.name,
        aliases_of(conn, model.id),
        deployed_versions(conn, model.id, deployments),
    )

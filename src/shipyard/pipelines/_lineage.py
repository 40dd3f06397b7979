"""Lineage of a run: the run is a context, each task an execution, each artifact it read or
wrote an event (with the artifact's URI and sha256). Always inside the caller's transaction.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection

from shipyard.errors import InvalidArgument, NotFound
from shipyard.lineage import queries, records
from shipyard.pipelines.models import ArtifactOutput
from shipyard.store import Store

CONTEXT_TYPE = "pipeline_run"
EXECUTION_TYPE = "pipeline_task"


def run_context(conn: Connection, project: str, run_id: str, pipeline_name: str) -> str:
    return records.get_or_create_context(
        conn, project, CONTEXT_TYPE, run_id, {"pipeline": pipeline_name}
    )


def _flat(artifacts: dict[str, Any]) -> list[tuple[str, ArtifactOutput]]:
    found: list[tuple[str, ArtifactOutput]] = []
    for name, value in artifacts.items():
        items = value if isinstance(value, list) else [value]
        found.extend((name, a) for a in items if isinstance(a, ArtifactOutput))
    return found


def start_execution(
    conn: Connection,
    project: str,
    context_id: str,
    name: str,
    properties: dict[str, Any],
    inputs: dict[str, Any],
    *,
    state: str = "RUNNING",
) -> str:
    execution_id = records.create_execution(
        conn, project, EXECUTION_TYPE, name, state=state, properties=properties
    )
    records.associate(conn, context_id, execution_id)
    for input_name, artifact in _flat(inputs):
        if artifact.artifact_id:
            records.add_event(conn, execution_id, artifact.artifact_id, "input", input_name)
    return execution_id


def record_outputs(
    conn: Connection,
    project: str,
    context_id: str,
    execution_id: str,
    task_name: str,
    outputs: dict[str, Any],
) -> dict[str, Any]:
    """Create lineage artifacts for new outputs (reusing ids of cached ones); return the
    outputs with ``artifact_id`` filled in."""
    result = dict(outputs)
    for name, artifact in _flat(outputs):
        artifact_id = artifact.artifact_id
        if artifact_id is None:
            artifact_id = records.create_artifact(
                conn,
                project,
                artifact.type,
                f"{task_name}.{name}",
                artifact.uri,
                digest=artifact.digest,
                size=artifact.size,
                properties={"layout": artifact.layout, "metadata": artifact.metadata},
            )
            result[name] = artifact.model_copy(update={"artifact_id": artifact_id})
        records.attribute(conn, context_id, artifact_id)
        records.add_event(conn, execution_id, artifact_id, "output", name)
    return result


def set_state(
    conn: Connection, execution_id: str, state: str, properties: dict[str, Any] | None
) -> None:
    records.set_execution_state(conn, execution_id, state, properties)


def own_artifact(store: Store, project: str, value: Any, field: str) -> ArtifactOutput:
    """The artifact a reference names, if it is an artifact of ``project`` with the digest
    the reference gives; ``InvalidArgument`` naming ``field`` otherwise. A reference must
    carry the ``artifact_id`` (a digest alone could name any project's bytes)."""
    try:
        art = ArtifactOutput.model_validate(value)
    except ValidationError:
        raise InvalidArgument(f"{field}: not an artifact reference", field=field) from None
    if not art.artifact_id:
        raise InvalidArgument(
            f"{field}: an artifact reference needs the artifact_id of an artifact of project "
            f"{project!r} (a digest alone is not accepted)",
            field=field,
        )
    try:
        node = queries.get_artifact(store, project, art.artifact_id)
    except (NotFound, InvalidArgument):
        raise InvalidArgument(
            f"{field}: artifact {art.artifact_id!r} is not an artifact of project {project!r}",
            field=field,
        ) from None
    if node.digest != art.digest:
        raise InvalidArgument(
            f"{field}: the digest does not match artifact {art.artifact_id}'s", field=field
        )
    return art.model_copy(update={"uri": node.uri})


def imported_artifact(
    store: Store, project: str, artifact_id: str, metadata: dict[str, Any], field: str
) -> ArtifactOutput:
    """An artifact of ``project`` as ``dsl.importer`` brings it in by id: the same
    artifact, or with ``metadata`` added a new one holding the same bytes."""
    try:
        node = queries.get_artifact(store, project, artifact_id)
    except (NotFound, InvalidArgument):
        raise InvalidArgument(
            f"{field}: artifact {artifact_id!r} is not an artifact of project {project!r}",
            field=field,
        ) from None
    if not node.digest:
        raise InvalidArgument(f"{field}: artifact {artifact_id} holds no stored bytes",
                              field=field)
    stored = dict(node.properties.get("metadata") or {})
    layout = node.properties.get("layout", "file")
    return ArtifactOutput(
        type=node.type, digest=node.digest, size=node.size or 0,
        layout=layout if layout in ("file", "tree", "none") else "file",
        uri=node.uri, metadata={**stored, **metadata},
        artifact_id=None if metadata else node.id,
    )  # fmt: skip

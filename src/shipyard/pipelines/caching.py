"""Step caching: skip a step whose code, parameters and input bytes were seen before.

The key is sha256 over the component's hash (source and interface), the parameter values
and each input artifact's sha256 (and metadata). Because inputs are keyed by content, a
changed upstream step whose output comes out byte-identical leaves its consumers cached.

An entry is written in the same transaction that marks the task SUCCEEDED, after its
outputs are stored, so a killed run never leaves an entry pointing at missing blobs; a
lookup also checks that every blob still exists.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from shipyard.pipelines.models import ArtifactOutput
from shipyard.pipelines.runs import dump_outputs, load_outputs
from shipyard.pipelines.spec import canonical_json
from shipyard.store.schema import cache_entries
from shipyard.store.types import utcnow


def _fingerprint(value: Any) -> Any:
    if isinstance(value, ArtifactOutput):
        return {"digest": value.digest, "layout": value.layout, "metadata": value.metadata}
    if isinstance(value, list):
        return [_fingerprint(v) for v in value]
    return value


def cache_key(
    component_hash: str,
    params: dict[str, Any],
    artifacts: dict[str, Any],
    salt: str = "",
) -> str:
    """64 hex characters identifying one step invocation by what determines its result."""
    body = {
        "component": component_hash,
        "params": params,
        "artifacts": {name: _fingerprint(v) for name, v in artifacts.items()},
        "salt": salt,
    }
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


def lookup(
    conn: Connection,
    project: str,
    key: str,
    *,
    max_age: float | None,
    blob_exists: Callable[[str], bool],
) -> tuple[dict[str, Any], str | None] | None:
    """The cached outputs and the execution that produced them, or ``None``."""
    row = conn.execute(
        select(cache_entries).where(
            cache_entries.c.project == project, cache_entries.c.cache_key == key
        )
    ).first()
    if row is None:
        return None
    if max_age is not None and utcnow() - row.created_at > timedelta(seconds=max_age):
        return None
    outputs = load_outputs(row.outputs)
    for value in outputs.values():
        if isinstance(value, ArtifactOutput) and not blob_exists(value.digest):
            return None
    return outputs, row.execution_id


def lookup_many(
    conn: Connection,
    project: str,
    keys: dict[str, float | None],
    *,
    blob_exists: Callable[[str], bool],
) -> dict[str, tuple[dict[str, Any], str | None]]:
    """``lookup`` for many keys (each with its maximum age) in one query per 500 keys:
    the hits, by key."""
    found: dict[str, tuple[dict[str, Any], str | None]] = {}
    wanted = list(keys)
    now = utcnow()
    for start in range(0, len(wanted), 500):
        rows = conn.execute(
            select(cache_entries).where(
                cache_entries.c.project == project,
                cache_entries.c.cache_key.in_(wanted[start : start + 500]),
            )
        )
        for row in rows:
            max_age = keys[row.cache_key]
            if max_age is not None and now - row.created_at > timedelta(seconds=max_age):
                continue
            outputs = load_outputs(row.outputs)
            if all(
                blob_exists(v.digest) for v in outputs.values() if isinstance(v, ArtifactOutput)
            ):
                found[row.cache_key] = (outputs, row.execution_id)
    return found


def record(
    conn: Connection, project: str, key: str, execution_id: str | None, outputs: dict[str, Any]
) -> None:
    """Remember ``outputs`` under ``key`` (replacing an older entry)."""
    conn.execute(
        delete(cache_entries).where(
            cache_entries.c.project == project, cache_entries.c.cache_key == key
        )
    )
    conn.execute(
        insert(cache_entries).values(
            project=project,
            cache_key=key,
            execution_id=execution_id,
            outputs=dump_outputs(outputs),
            created_at=utcnow(),
        )
    )

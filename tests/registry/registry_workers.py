"""Functions run in spawned processes by the concurrency tests (importable by name)."""

from __future__ import annotations

from pathlib import Path

from shipyard.artifacts import open_artifact_store
from shipyard.context import RequestContext
from shipyard.registry import promote_if_better, register_model
from shipyard.store import open_store


def register_many(uri: str, artifact_root: str, model_file: str, count: int) -> list[int]:
    store = open_store(uri, cached=False)
    artifacts = open_artifact_store(artifact_root, cached=False)
    ctx = RequestContext(project="p1", actor="worker")
    try:
        return [
            register_model(store, artifacts, ctx, "racer", Path(model_file)).version
            for _ in range(count)
        ]
    finally:
        store.dispose()


def promote(uri: str, artifact_root: str, version: int) -> bool:
    store = open_store(uri, cached=False)
    artifacts = open_artifact_store(artifact_root, cached=False)
    ctx = RequestContext(project="p1", actor=f"worker-{version}")
    try:
        return promote_if_better(store, artifacts, ctx, "racer", version).promoted
    finally:
        store.dispose()

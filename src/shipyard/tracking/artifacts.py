"""Run artifacts: files and directories stored content-addressed and attached to a run.

Remote clients send a directory as a tar archive; it is unpacked through the artifact
store's safe extraction (the one path check) and stored as a tree, so what a run holds is
the same whichever way it was logged.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from shipyard.artifacts import ArtifactStore, safe_extract
from shipyard.artifacts.export import tree_as_tar
from shipyard.context import RequestContext
from shipyard.errors import InvalidArgument
from shipyard.store import Store
from shipyard.tracking import service
from shipyard.tracking.destination import resolve_dest, writing
from shipyard.tracking.models import RunArtifact
from shipyard.validation import check_name


def log_artifact_path(
    store: Store, artifacts: ArtifactStore, ctx: RequestContext, run_id: str,
    path: str | os.PathLike[str], *, name: str | None = None,
) -> RunArtifact:
    """Store a local file or directory and attach it to ``run_id`` under ``name``."""
    source = Path(path)
    artifact_name = check_name(name if name is not None else source.name, "name")
    if source.is_dir():
        tree = artifacts.put_tree(source)
        size = sum(f.size for f in tree.files.values())
        return _record(store, ctx, run_id, artifact_name, tree.digest, size, "tree")
    if not source.is_file():
        raise InvalidArgument(f"{source} is not a file or directory", field="path")
    blob = artifacts.put_file(source)
    return _record(store, ctx, run_id, artifact_name, blob.digest, blob.size, "file")


def log_artifact_file(
    store: Store, artifacts: ArtifactStore, ctx: RequestContext, run_id: str,
    file_path: str, *, name: str, kind: str = "file",
) -> RunArtifact:
    """Store an uploaded file; with ``kind="tree"`` the file is a tar of a directory."""
    service.require_run(store, ctx.project, run_id)
    if kind == "file":
        blob = artifacts.put_file(file_path)
        return _record(store, ctx, run_id, name, blob.digest, blob.size, "file")
    with tempfile.TemporaryDirectory(prefix="shipyard-tree-") as scratch:
        target = Path(scratch) / "tree"
        # Not fsynced: put_tree stores every file durably in the artifact store next.
        safe_extract(file_path, target, durable=False)
        tree = artifacts.put_tree(target)
    size = sum(f.size for f in tree.files.values())
    return _record(store, ctx, run_id, name, tree.digest, size, "tree")


def _record(store: Store, ctx: RequestContext, run_id: str, name: str, digest: str, size: int,
            kind: str) -> RunArtifact:
    # The blob is complete before its row exists (DESIGN.md 5).
    with store.write() as conn:
        return service.record_artifact(conn, ctx, run_id, name=name, digest=digest, size=size,
                                       kind=kind)


def open_artifact(artifacts: ArtifactStore, art: RunArtifact) -> BinaryIO:
    """A verified reader of a file artifact, or of a tar of a tree artifact."""
    if art.kind == "file":
        return artifacts.open(art.digest)
    return tree_as_tar(artifacts, art.digest)


def download(
    store: Store, artifacts: ArtifactStore, project: str, run_id: str, name: str,
    dest: str | os.PathLike[str],
) -> Path:
    """Write a run's artifact to ``dest`` and return where it went: for a file, ``dest`` or,
    when ``dest`` is a directory, the file of the artifact's name inside it (as ``cp``);
    for a tree, ``dest`` as a new or empty directory (``shipyard.tracking.destination``)."""
    check_name(name, "name")
    art = service.get_run_artifact(store, project, run_id, name)
    target = resolve_dest(dest, name, art.kind)
    with writing(target):
        if art.kind == "file":
            artifacts.get_file(art.digest, target)
        else:
            artifacts.get_tree(art.digest, target)
    return target

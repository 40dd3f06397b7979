"""A stored tree as a tar stream, for downloads (the reverse of ``safe_extract``)."""

from __future__ import annotations

import tarfile
import tempfile
from pathlib import Path
from typing import BinaryIO

from shipyard.artifacts.store import ArtifactStore


def tree_as_tar(artifacts: ArtifactStore, digest: str) -> BinaryIO:
    """A spooled, rewound tar of the tree ``digest``; every file verified on the way."""
    spool = tempfile.TemporaryFile(prefix="shipyard-tar-")
    with tempfile.TemporaryDirectory(prefix="shipyard-tree-") as scratch:
        target = Path(scratch) / "tree"
        info = artifacts.get_tree(digest, target)
        with tarfile.open(fileobj=spool, mode="w") as tar:
            for rel in sorted(info.files):
                tar.add(target / rel, arcname=rel, recursive=False)
    spool.seek(0)
    return spool  # type: ignore[return-value]

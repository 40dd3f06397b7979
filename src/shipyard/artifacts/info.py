"""Value objects returned by the artifact store."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class BlobInfo:
    """A stored blob: its sha256 ``digest`` (64 lowercase hex) and ``size`` in bytes."""

    digest: str
    size: int


@dataclass(frozen=True)
class TreeInfo:
    """A stored directory tree.

    ``digest`` addresses the manifest blob; ``files`` maps each relative POSIX path to its
    blob, in sorted order. The same files and contents always give the same digest.
    """

    digest: str
    files: Mapping[str, BlobInfo]

    @property
    def size(self) -> int:
        """Total bytes of the files in the tree (not counting the manifest)."""
        return sum(blob.size for blob in self.files.values())

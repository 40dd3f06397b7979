"""Content-addressed artifact storage: blobs and directory trees addressed by sha256.

``open_artifact_store(location)`` gives an ``ArtifactStore`` over a local directory or an
object store; ``safe_extract`` unpacks an untrusted tar or zip archive. Every storage path
goes through ``paths.resolve_inside``.
"""

from shipyard.artifacts.archives import safe_extract
from shipyard.artifacts.info import BlobInfo, TreeInfo
from shipyard.artifacts.locations import open_artifact_store
from shipyard.artifacts.store import ArtifactStore

__all__ = ["ArtifactStore", "BlobInfo", "TreeInfo", "open_artifact_store", "safe_extract"]

"""A stored tree as a tar stream, for downloads (the reverse of ``safe_extract``)."""

from __future__ import annotations

import tarfile
import tempfile
from typing import BinaryIO

from shipyard.artifacts.store import ArtifactStore
from shipyard.artifacts.streams import CHUNK_SIZE


def tree_as_tar(artifacts: ArtifactStore, digest: str) -> BinaryIO:
    """A spooled, rewound tar of the tree ``digest``; every file verified on the way.

    Each blob is read once, straight into the archive, through the store's verifying
    reader, so a damaged blob raises ``DataCorruption`` here, before a byte is sent: the
    archive is complete before the caller streams it.
    """
    files = artifacts.read_tree_manifest(digest)
    spool = tempfile.TemporaryFile(prefix="shipyard-tar-")
    try:
        with tarfile.TarFile(fileobj=spool, mode="w", copybufsize=CHUNK_SIZE) as tar:
            for relative, blob in sorted(files.items()):
                info = tarfile.TarInfo(relative)
                info.size, info.mode = blob.size, 0o600
                # The verifying reader checks the digest (and that the blob is neither
                # shorter nor longer than recorded) on the read that completes it.
                with artifacts.open(blob.digest) as reader:
                    tar.addfile(info, reader)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool  # type: ignore[return-value]


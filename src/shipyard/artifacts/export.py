"""A stored tree as a tar stream, for downloads (the reverse of ``safe_extract``)."""

from __future__ import annotations

import tarfile
import tempfile
import time
from typing import BinaryIO

from shipyard.artifacts.info import BlobInfo
from shipyard.artifacts.store import ArtifactStore
from shipyard.artifacts.streams import CHUNK_SIZE
from shipyard.errors import DataCorruption


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
                _add_verified(artifacts, tar, relative, blob)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool  # type: ignore[return-value]


def _add_verified(
    artifacts: ArtifactStore, tar: tarfile.TarFile, relative: str, blob: BlobInfo
) -> None:
    info = tarfile.TarInfo(relative)
    info.size, info.mode, info.mtime = blob.size, 0o600, int(time.time())
    # tarfile reads exactly the recorded size; the verifying reader checks the digest on
    # the read that completes the *stored* blob. Equal sizes make the two the same read,
    # so a blob grown on disk cannot slip through unchecked.
    if artifacts.size(blob.digest) != blob.size:
        raise _wrong_size(relative, blob.digest)
    with artifacts.open(blob.digest) as reader:
        tar.addfile(info, reader)
        if reader.read(1):
            raise _wrong_size(relative, blob.digest)


def _wrong_size(relative: str, digest: str) -> DataCorruption:
    return DataCorruption(
        f"{relative!r}: blob {digest} is not the size its tree records; restore it from a "
        "backup or delete it and upload it again",
        digest=digest,
    )

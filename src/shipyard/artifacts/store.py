"""``ArtifactStore``: content-addressed, deduplicated, verified blobs and trees.

A blob is stored once under its sha256 (``blobs/sha256/ab/cd/abcd...``), written atomically
(see the backends for how), and checked against its digest whenever it is read back, so a
caller gets the bytes it stored or ``DataCorruption``, never something else. The store only
writes bytes: the caller records the metadata row *after* a put returns, so a row always
points at a complete blob. Deleting is the caller's decision too: blobs are shared between
every artifact with the same content, so only the metadata store knows when one is unused.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

from shipyard.artifacts import kernel_copy, trees
from shipyard.artifacts.backend import Backend
from shipyard.artifacts.info import BlobInfo, TreeInfo
from shipyard.artifacts.local import fsync_dir
from shipyard.artifacts.paths import blob_key, check_digest, is_digest
from shipyard.artifacts.streams import CHUNK_SIZE, Readable, copy_hashing, verifying_reader
from shipyard.errors import DataCorruption, NotFound

_BLOBS = "blobs/sha256"


class ArtifactStore:
    """Blobs and directory trees addressed by sha256, over a local or fsspec backend.

    Every method that takes a ``digest`` raises ``InvalidArgument(field="digest")`` unless
    it is 64 lowercase hex characters, and ``NotFound`` when no such blob is stored (except
    ``exists`` and ``delete``, which answer instead).
    """

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    @property
    def location(self) -> str:
        """Where the blobs live: a local path or a URL."""
        return self._backend.location

    def __repr__(self) -> str:
        return f"ArtifactStore({self.location!r})"

    @staticmethod
    def uri(digest: str) -> str:
        """The name a blob (or a tree's manifest) is shown by: ``artifacts:/sha256/<digest>``,
        as a model version is ``models:/name/3``. It says which bytes, never where the
        server keeps them (a local path or a bucket is nobody else's business)."""
        check_digest(digest)
        return f"artifacts:/sha256/{digest}"

    # -- writing ---------------------------------------------------------------------------

    def put_bytes(self, data: bytes | bytearray | memoryview) -> BlobInfo:
        """Store ``data``; return its digest and size. Storing the same bytes twice is free."""
        view = memoryview(data).cast("B")
        info = BlobInfo(hashlib.sha256(view).hexdigest(), len(view))
        key = blob_key(info.digest)
        with contextlib.suppress(NotFound):
            if self._backend.size(key) == info.size:
                return info  # deduplicated without writing a byte
        staged = self._backend.stage()
        try:
            staged.write(bytes(view) if not isinstance(data, bytes) else data)
            staged.commit(key, info.size)
        except BaseException:
            staged.discard()
            raise
        return info

    def put_file(self, path: str | os.PathLike[str]) -> BlobInfo:
        """Store the contents of the local file at ``path`` (hashed and copied in one pass;
        a large file into a local store is copied in the kernel and hashed beside it)."""
        with open(path, "rb", buffering=0) as source:
            if os.fstat(source.fileno()).st_size < kernel_copy.MIN_SIZE:
                return self.put_stream(source)
            staged = self._backend.stage()
            try:
                copied = staged.copy_local_file(source.fileno())
                if copied is None:
                    staged.discard()
                    return self.put_stream(source)
                digest, size = copied
                staged.commit(blob_key(digest), size)
            except BaseException:
                staged.discard()
                raise
            return BlobInfo(digest, size)

    def put_stream(self, readable: Readable, max_size: int | None = None) -> BlobInfo:
        """Store everything ``readable.read`` returns until EOF, hashing as it streams.

        Raises ``TooLarge`` once more than ``max_size`` bytes have been read; then, as on any
        error, nothing is stored and no temporary file is left behind.
        """
        staged = self._backend.stage()
        try:
            digest, size = copy_hashing(readable, staged.write, max_size=max_size)
            staged.commit(blob_key(digest), size)
        except BaseException:
            staged.discard()
            raise
        return BlobInfo(digest, size)

    # -- reading ---------------------------------------------------------------------------

    def open(self, digest: str) -> BinaryIO:
        """Open a blob for sequential reading, verified as it is read.

        Reading to the end raises ``DataCorruption`` if the bytes do not hash to ``digest``;
        the final chunk is withheld until the check passes. Not seekable: use ``get_file``
        when a library needs a real file.
        """
        raw, size = self._backend.open_read(blob_key(digest))
        return verifying_reader(raw, digest, size, f"{self.location}/{blob_key(digest)}")

    def get_bytes(self, digest: str) -> bytes:
        """Return a blob's bytes, verified; ``DataCorruption`` on a mismatch."""
        with self.open(digest) as reader:
            return reader.read()

    def get_file(self, digest: str, dest: str | os.PathLike[str]) -> BlobInfo:
        """Write a blob to the local path ``dest``, verified, atomically (replacing ``dest``).

        The bytes go to a 0600 temporary file beside ``dest`` that is renamed over it only
        after the digest has been checked, so ``dest`` never holds corrupt or partial data.
        """
        target = Path(dest).absolute()
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(fd, "wb") as out:
                size = self.write_to(digest, out, sync=True)
            os.replace(temp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
        fsync_dir(target.parent)
        return BlobInfo(digest, size)

    def write_to(self, digest: str, out: BinaryIO, *, sync: bool = False) -> int:
        """Copy a verified blob into ``out``; return its size. ``out`` is not rolled back.
        ``sync`` flushes and fsyncs ``out`` before returning.

        A large local blob going to an empty local file is copied in the kernel and the copy
        hashed beside it (and fsynced while it is hashed); ``DataCorruption`` if it does not
        match.
        """
        raw, stored = self._backend.open_read(blob_key(digest))
        if stored >= kernel_copy.MIN_SIZE and isinstance(raw, io.FileIO) and _is_empty(out):
            try:
                copied = self._copy_in_kernel(raw, digest, stored, out, sync=sync)
            except BaseException:
                raw.close()
                raise
            if copied is not None:
                raw.close()
                return copied
        location = f"{self.location}/{blob_key(digest)}"
        with verifying_reader(raw, digest, stored, location) as reader:
            size = 0
            while chunk := reader.read(CHUNK_SIZE):
                out.write(chunk)
                size += len(chunk)
        if sync:
            out.flush()
            os.fsync(out.fileno())
        return size

    def _copy_in_kernel(
        self, raw: io.FileIO, digest: str, size: int, out: BinaryIO, *, sync: bool
    ) -> int | None:
        out.flush()
        try:
            actual, copied = kernel_copy.copy_and_hash(raw.fileno(), out.fileno(), sync=sync)
        except kernel_copy.KernelCopyUnsupported:
            return None
        if actual != digest or copied != size:
            raise DataCorruption(
                f"blob {digest} is corrupt: read {copied} bytes hashing to {actual[:16]}..., "
                f"expected {size} bytes; restore it from a backup or delete it and upload "
                "it again",
                digest=digest,
                location=f"{self.location}/{blob_key(digest)}",
            )
        out.seek(copied)
        return copied

    def exists(self, digest: str) -> bool:
        """Whether a blob with this digest is stored (its content is not checked)."""
        return self._backend.exists(blob_key(digest))

    def size(self, digest: str) -> int:
        """The stored size of a blob in bytes."""
        return self._backend.size(blob_key(digest))

    def verify(self, digest: str) -> BlobInfo:
        """Read a blob through and check it; ``DataCorruption`` if it does not match."""
        with self.open(digest) as reader:
            size = 0
            while chunk := reader.read(CHUNK_SIZE):
                size += len(chunk)
        return BlobInfo(digest, size)

    # -- listing and deleting ----------------------------------------------------------------

    def iter_digests(self) -> Iterator[str]:
        """Yield the digest of every stored blob (blobs and tree manifests alike)."""
        for key in self._backend.iter_keys(_BLOBS):
            name = key.rpartition("/")[2]
            # Skip anything not laid out by us (stray files, editor backups).
            if is_digest(name) and blob_key(name) == key:
                yield name

    def delete(self, digest: str) -> bool:
        """Delete a blob; return whether it existed. The caller checks that it is unused."""
        return self._backend.delete(blob_key(digest))

    # -- directory trees ---------------------------------------------------------------------

    def put_tree(self, directory: str | os.PathLike[str]) -> TreeInfo:
        """Store every regular file under ``directory`` and a manifest listing them.

        The manifest maps each relative POSIX path to its digest and size, sorted and
        canonically encoded, so the same tree always gets the same digest. Empty directories
        are not recorded. Symlinks to files inside ``directory`` are stored as the file;
        symlinked directories, links leading outside and special files are refused with
        ``InvalidArgument(field="directory")``.
        """
        files = {rel: self.put_file(path) for rel, path in trees.scan_directory(Path(directory))}
        manifest = self.put_bytes(trees.encode_manifest(files))
        return TreeInfo(manifest.digest, files)

    def put_tree_entries(self, files: Mapping[str, BlobInfo]) -> TreeInfo:
        """Store the manifest of a tree whose blobs are already stored (relative path ->
        blob), for callers that store files from several places without first copying
        them into one directory. Paths are checked as ``read_tree_manifest`` checks them;
        a missing blob raises ``NotFound``, so a tree never names bytes that are not there.
        """
        encoded = trees.encode_manifest(files)
        checked = trees.decode_manifest(encoded, "(new tree)")
        for relative, blob in checked.items():
            try:
                present = self.size(blob.digest) == blob.size
            except NotFound:
                present = False
            if not present:
                raise NotFound(
                    f"{relative!r}: no blob {blob.digest} of {blob.size} bytes is stored"
                )
        manifest = self.put_bytes(encoded)
        return TreeInfo(manifest.digest, checked)

    def read_tree_manifest(self, digest: str) -> Mapping[str, BlobInfo]:
        """Return a tree's files (relative path -> blob), each path checked as safe.

        A manifest that is not one, or that names an unsafe path, raises
        ``InvalidArgument(field="manifest")``.
        """
        size = self.size(digest)
        if size > trees.MAX_MANIFEST_BYTES:
            raise trees.not_a_manifest(digest, f"it is {size} bytes long")
        return trees.decode_manifest(self.get_bytes(digest), digest)

    def get_tree(
        self, digest: str, dest_dir: str | os.PathLike[str], *, durable: bool = True
    ) -> TreeInfo:
        """Materialise a tree into ``dest_dir``, which must not exist or be empty.

        Files are written (0600, directories 0700) into a staging directory beside
        ``dest_dir``, each verified, then the staging directory is renamed into place: the
        tree appears whole or not at all. Every path in the manifest goes through
        ``resolve_inside``, so a hostile manifest cannot write outside ``dest_dir``.
        ``durable=False`` skips the fsyncs, for caches that check their files before use
        and fetch again when a crash left them short.
        """
        files = self.read_tree_manifest(digest)
        target = Path(dest_dir).absolute()
        staging = trees.prepare_staging(target)
        try:
            trees.materialise(self, files, staging, durable=durable)
            os.replace(staging, target)  # replaces an empty directory atomically on POSIX
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        if durable:
            fsync_dir(target.parent)
        return TreeInfo(digest, files)


def _is_empty(out: BinaryIO) -> bool:
    """Whether ``out`` is a real, empty file, at its start: one the kernel can copy into."""
    if not isinstance(out, io.BufferedWriter | io.BufferedRandom | io.FileIO):
        return False  # fileno() would force a spooled file to disk, say
    try:
        return os.fstat(out.fileno()).st_size == 0 and out.tell() == 0
    except (OSError, ValueError, io.UnsupportedOperation):
        return False

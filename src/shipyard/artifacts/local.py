"""The local-disk backend: a directory, 0700, with 0600 files.

Atomicity comes from rename(2): bytes go to ``<root>/tmp/<random>``, are fsynced, then
renamed onto their final key and the directory is fsynced. ``tmp/`` is inside the root so it
is on the same filesystem (rename is only atomic within one); it is a single directory rather
than the blob's own because the digest, and so the final directory, is only known once the
last byte has been hashed. A crash leaves at most an orphan in ``tmp/``, never a partial blob.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from shipyard.artifacts import kernel_copy
from shipyard.artifacts.backend import Backend, Staged
from shipyard.artifacts.paths import make_dirs, resolve_inside
from shipyard.artifacts.streams import CHUNK_SIZE, RawSource
from shipyard.errors import NotFound

_STAGING = "tmp"
# O_NOFOLLOW: resolve_inside already refused links leading out; this closes the window in
# which one could be planted between that check and the open.
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
# Read-write: a large copy is hashed by reading back what was written (see kernel_copy).
_CREATE_FLAGS = (
    os.O_RDWR
    | os.O_CREAT
    | os.O_EXCL
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
)


def create_private_file(path: Path) -> int:
    """Create ``path`` exclusively with mode 0600 and return its descriptor."""
    return os.open(path, _CREATE_FLAGS, 0o600)


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _LocalStaged(Staged):
    def __init__(self, root: Path) -> None:
        self._root = root
        staging = make_dirs(root, _STAGING)
        self._path = resolve_inside(staging, f"put-{secrets.token_hex(16)}", field="key")
        self._file = os.fdopen(create_private_file(self._path), "wb", buffering=CHUNK_SIZE)
        self._done = False

    def write(self, chunk: bytes) -> None:
        self._file.write(chunk)

    def copy_local_file(self, source: int) -> tuple[str, int] | None:
        try:
            # Synced here, beside the hashing; the fsync in commit then finds nothing to do.
            return kernel_copy.copy_and_hash(source, self._file.fileno(), sync=True)
        except kernel_copy.KernelCopyUnsupported:
            return None

    def commit(self, key: str, size: int) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        final = resolve_inside(self._root, key, field="key")
        parent = make_dirs(self._root, key.rpartition("/")[0])
        try:
            existing = final.stat().st_size
        except FileNotFoundError:
            existing = -1
        if existing == size:
            self.discard()  # deduplicated: the same digest is already stored
            return
        # os.replace also repairs a truncated blob left by a faulty disk or a manual edit.
        os.replace(self._path, final)
        self._done = True
        fsync_dir(parent)

    def discard(self) -> None:
        if self._done:
            return
        self._done = True
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()


class LocalBackend(Backend):
    """Objects as files under ``root``; the root is created 0700 if it does not exist."""

    def __init__(self, root: Path) -> None:
        root = root.expanduser().absolute()
        if not root.is_dir():
            root.mkdir(mode=0o700, parents=True)
        self.root = root
        self.location = str(root)

    def _path(self, key: str) -> Path:
        return resolve_inside(self.root, key, field="key")

    def stage(self) -> Staged:
        return _LocalStaged(self.root)

    def open_read(self, key: str) -> tuple[RawSource, int]:
        path = self._path(key)
        try:
            fd = os.open(path, _READ_FLAGS)
        except FileNotFoundError:
            raise NotFound(f"no object {key} in {self.location}") from None
        file = os.fdopen(fd, "rb", buffering=0)
        return file, os.fstat(fd).st_size

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            raise NotFound(f"no object {key} in {self.location}") from None

    def delete(self, key: str) -> bool:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            return False
        return True

    def iter_keys(self, prefix: str) -> Iterator[str]:
        base = self._path(prefix)
        # followlinks=False: the store never creates links, so any found are not ours.
        for dirpath, _dirs, files in os.walk(base, followlinks=False):
            relative_dir = Path(dirpath).relative_to(self.root).as_posix()
            for name in sorted(files):
                yield f"{relative_dir}/{name}"

"""The object-store backend over fsspec (S3 through s3fs, GCS through gcsfs).

Atomicity: S3 and GCS publish an object only when its upload completes (a single PUT, the
CompleteMultipartUpload call, or the final request of a resumable upload), so a reader sees
the whole object or none. We therefore upload each blob once, straight to its final key,
from a complete local copy: the bytes are spooled (in memory up to 8 MiB, then to a 0600
temporary file) while they are hashed, because the key is the digest. We deliberately do
not stream into ``fs.open(key, "wb")``: fsspec files commit on ``close``, which also runs
when the ``with`` block exits on an error, and would publish a truncated object.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Iterator
from typing import Any, BinaryIO

from shipyard.artifacts.backend import Backend, Staged
from shipyard.artifacts.paths import resolve_inside
from shipyard.artifacts.streams import CHUNK_SIZE, RawSource
from shipyard.errors import NotFound

SPOOL_IN_MEMORY = 8 * CHUNK_SIZE
_READ_BLOCK = 8 * CHUNK_SIZE


class _SpoolStaged(Staged):
    def __init__(self, backend: FsspecBackend) -> None:
        self._backend = backend
        self._memory = io.BytesIO()
        self._spilled: tuple[str, BinaryIO] | None = None  # (path, file) on disk

    def write(self, chunk: bytes) -> None:
        if self._spilled is None:
            if self._memory.tell() + len(chunk) <= SPOOL_IN_MEMORY:
                self._memory.write(chunk)
                return
            fd, path = tempfile.mkstemp(prefix="shipyard-put-")  # mode 0600
            self._spilled = (path, os.fdopen(fd, "wb", buffering=CHUNK_SIZE))
            self._spilled[1].write(self._memory.getbuffer())
            self._memory = io.BytesIO()
        spilled = self._spilled
        spilled[1].write(chunk)

    def commit(self, key: str, size: int) -> None:
        fs, path = self._backend.fs, self._backend.path(key)
        try:
            if self._backend.stored_size(path) == size:
                return  # deduplicated: the same digest is already stored
            if self._spilled is None:
                fs.pipe_file(path, self._memory.getvalue())
            else:
                self._spilled[1].close()
                fs.put_file(self._spilled[0], path)
        finally:
            self.discard()

    def discard(self) -> None:
        self._memory = io.BytesIO()
        if self._spilled is not None:
            path, file = self._spilled
            self._spilled = None
            file.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


class FsspecBackend(Backend):
    """Objects under ``root`` (``"bucket/prefix"``, no protocol) of an fsspec filesystem."""

    def __init__(self, fs: Any, root: str, location: str) -> None:
        self.fs = fs
        self.root = root.rstrip("/")
        self.location = location

    def path(self, key: str) -> str:
        return resolve_inside(self.root, key, field="key")

    def stored_size(self, path: str) -> int | None:
        try:
            info = self.fs.info(path)
        except FileNotFoundError:
            return None
        return int(info["size"]) if info.get("type") == "file" else None

    def stage(self) -> Staged:
        return _SpoolStaged(self)

    def open_read(self, key: str) -> tuple[RawSource, int]:
        try:
            file = self.fs.open(self.path(key), "rb", block_size=_READ_BLOCK)
        except FileNotFoundError:
            raise NotFound(f"no object {key} in {self.location}") from None
        return file, int(file.size)

    def exists(self, key: str) -> bool:
        return self.stored_size(self.path(key)) is not None

    def size(self, key: str) -> int:
        size = self.stored_size(self.path(key))
        if size is None:
            raise NotFound(f"no object {key} in {self.location}")
        return size

    def delete(self, key: str) -> bool:
        path = self.path(key)
        if self.stored_size(path) is None:
            return False
        # rm_file, not rm: rm expands glob patterns.
        self.fs.rm_file(path)
        return True

    def iter_keys(self, prefix: str) -> Iterator[str]:
        base = self.path(prefix)
        start = f"{self.root}/"
        for found in sorted(self.fs.find(base)):
            if found.startswith(start):
                yield found[len(start) :]

"""Streaming helpers: hash while copying, and verify while reading.

Both work in 1 MiB chunks so a blob is hashed and copied in a single pass and never held in
memory whole.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from typing import TYPE_CHECKING, BinaryIO, Protocol

from shipyard.errors import DataCorruption, TooLarge

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

CHUNK_SIZE = 1024 * 1024


class Readable(Protocol):
    """Anything with ``read(size) -> bytes``: files, sockets' makefile, request bodies."""

    def read(self, size: int, /) -> bytes: ...


class RawSource(Protocol):
    """An open stored blob: an unbuffered local file or an fsspec file."""

    def readinto(self, buffer: WriteableBuffer, /) -> int | None: ...
    def read(self, size: int = -1, /) -> bytes: ...
    def close(self) -> None: ...


def copy_hashing(
    source: Readable, write: Callable[[bytes], object], *, max_size: int | None = None
) -> tuple[str, int]:
    """Copy ``source`` to ``write`` until EOF; return ``(sha256 hex, size)``.

    Raises ``TooLarge`` as soon as more than ``max_size`` bytes arrive; it reads at most one
    byte past the limit, so an endless stream cannot exhaust the disk.
    """
    hasher = hashlib.sha256()
    size = 0
    while True:
        want = CHUNK_SIZE if max_size is None else min(CHUNK_SIZE, max_size - size + 1)
        chunk = source.read(want)
        if not chunk:
            return hasher.hexdigest(), size
        size += len(chunk)
        if max_size is not None and size > max_size:
            raise TooLarge(
                f"the data is larger than the limit of {max_size} bytes", field="data"
            )
        hasher.update(chunk)
        write(chunk)


class _VerifyingRaw(io.RawIOBase):
    """Raw reader that hashes what passes through and checks it before the last byte."""

    def __init__(self, inner: RawSource, digest: str, size: int, name: str) -> None:
        self._inner = inner
        self._digest = digest
        self._size = size
        self._name = name
        self._hasher = hashlib.sha256()
        self._read = 0
        self._checked = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        if self._checked:
            return 0
        view = memoryview(buffer)
        count = self._inner.readinto(view) or 0
        self._hasher.update(view[:count])
        self._read += count
        # Check on the chunk that completes the blob, before handing it out, so a caller
        # that stops at the expected size still never sees unverified bytes as valid.
        if count == 0 or self._read >= self._size:
            self._check()
        return count

    def _check(self) -> None:
        self._checked = True
        if self._read == self._size and self._inner.read(1):
            self._read += 1  # longer than recorded: corrupt too
        actual = self._hasher.hexdigest()
        if self._read != self._size or actual != self._digest:
            raise DataCorruption(
                f"blob {self._digest} is corrupt: read {self._read} bytes hashing to "
                f"{actual[:16]}..., expected {self._size} bytes; restore it from a backup "
                "or delete it and upload it again",
                digest=self._digest,
                location=self._name,
            )

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            super().close()


def verifying_reader(inner: RawSource, digest: str, size: int, name: str) -> BinaryIO:
    """Wrap ``inner`` so reading it to the end raises ``DataCorruption`` on a mismatch.

    ``size`` is the stored length; the returned reader is sequential (not seekable), and the
    chunk that completes the blob is only returned once the whole blob has been verified.
    """
    raw = _VerifyingRaw(inner, digest, size, name)
    return io.BufferedReader(raw, buffer_size=CHUNK_SIZE)

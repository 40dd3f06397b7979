"""The port between ``ArtifactStore`` and where the bytes live.

A backend knows nothing of digests: it stores opaque relative keys (built by the store from
digests, see ``paths.blob_key``) and turns each into a location only through
``paths.resolve_inside``. Two implementations: ``LocalBackend`` (a directory) and
``FsspecBackend`` (object stores such as S3 and GCS).
"""

from __future__ import annotations

import abc
from collections.abc import Iterator

from shipyard.artifacts.streams import RawSource


class Staged(abc.ABC):
    """Bytes being written, invisible to readers until ``commit`` publishes them."""

    @abc.abstractmethod
    def write(self, chunk: bytes) -> None:
        """Append ``chunk``."""

    def copy_local_file(self, source: int) -> tuple[str, int] | None:
        """Copy the whole local file open as ``source`` in, before any ``write``; return the
        sha256 and size of what was staged, or ``None`` where the backend has no faster way
        than ``write`` (the caller then streams the file)."""
        return None

    @abc.abstractmethod
    def commit(self, key: str, size: int) -> None:
        """Publish everything written under ``key`` atomically: readers see all or nothing.

        If an object of ``size`` bytes already exists under ``key`` it is kept (the key is
        a digest, so the content is the same) and the staged copy is dropped.
        """

    @abc.abstractmethod
    def discard(self) -> None:
        """Drop the staged bytes, leaving nothing behind. Safe to call more than once."""


class Backend(abc.ABC):
    """Storage of opaque relative keys under one root."""

    location: str
    """Where the root is, for messages (a path or a URL)."""

    @abc.abstractmethod
    def stage(self) -> Staged:
        """Start writing a new object whose key is only known at the end (its digest)."""

    @abc.abstractmethod
    def open_read(self, key: str) -> tuple[RawSource, int]:
        """Open ``key`` for reading; return the raw file and its size. ``NotFound`` if absent."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""

    @abc.abstractmethod
    def size(self, key: str) -> int:
        """The size of ``key`` in bytes; ``NotFound`` if absent."""

    @abc.abstractmethod
    def delete(self, key: str) -> bool:
        """Delete ``key``; return whether it existed."""

    @abc.abstractmethod
    def iter_keys(self, prefix: str) -> Iterator[str]:
        """Yield the keys of every object under ``prefix`` (relative to the root)."""

"""Copying a large local file in the kernel while hashing the copy on another core.

``copy_file_range(2)`` moves the bytes without them passing through Python, chunk by chunk;
a second thread hashes each chunk of the *destination* as soon as it is written, and the
calling thread fsyncs while the hash finishes. The digest is therefore always the digest of
the bytes stored, even if the source changes during the copy, and the whole costs about as
much as a durable copy (sha256 alone is slower than the copy on most machines, and it now
runs beside it instead of after it). Both system calls and ``hashlib`` release the GIL.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading

# Below this, one thread reading, hashing and writing is cheaper than starting another.
MIN_SIZE = 4 * 1024 * 1024
_CHUNK = 8 * 1024 * 1024
_DONE = -1


class KernelCopyUnsupported(Exception):
    """The kernel cannot copy between these two files; copy them in user space instead."""


def available() -> bool:
    return hasattr(os, "copy_file_range") and hasattr(os, "preadv")


def copy_and_hash(src: int, dst: int, *, sync: bool) -> tuple[str, int]:
    """Copy everything in ``src`` to the empty file ``dst`` (both descriptors, from offset
    0); return the sha256 hex digest and size of what ``dst`` now holds. ``sync`` fsyncs
    ``dst`` before returning.

    Raises ``KernelCopyUnsupported`` when the first chunk cannot be copied in the kernel
    (another filesystem type, an old kernel), before anything was written.
    """
    if not available():
        raise KernelCopyUnsupported("this platform has no copy_file_range")
    import fcntl  # POSIX only, like copy_file_range itself

    if fcntl.fcntl(dst, fcntl.F_GETFL) & os.O_ACCMODE != os.O_RDWR:
        raise KernelCopyUnsupported("the destination is not open for reading back")
    written: queue.SimpleQueue[int] = queue.SimpleQueue()
    hasher = hashlib.sha256()
    failure: list[BaseException] = []

    def hash_destination() -> None:
        try:
            _hash_as_written(dst, written, hasher)
        except BaseException as exc:  # re-raised in the caller's thread
            failure.append(exc)

    worker = threading.Thread(target=hash_destination, name="shipyard-hash", daemon=True)
    worker.start()
    size = 0
    try:
        while True:
            try:
                count = os.copy_file_range(src, dst, _CHUNK, size, size)
            except OSError as exc:
                if size == 0:
                    raise KernelCopyUnsupported(str(exc)) from exc
                raise
            if count == 0:
                if size == 0 and os.fstat(src).st_size > 0:
                    # Some filesystems answer 0 instead of an error when they cannot copy.
                    raise KernelCopyUnsupported("copy_file_range copied nothing")
                break
            size += count
            written.put(size)
        if sync:
            os.fsync(dst)  # while the other thread hashes the last chunks
    finally:
        written.put(_DONE)
        worker.join()
    if failure:
        raise failure[0]
    return hasher.hexdigest(), size


def _hash_as_written(dst: int, written: queue.SimpleQueue[int], hasher: hashlib._Hash) -> None:
    """Hash ``dst`` up to each end offset put on ``written``, until ``_DONE``."""
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    offset = 0
    while (end := written.get()) != _DONE:
        while offset < end:
            count = os.preadv(dst, [view[: min(_CHUNK, end - offset)]], offset)
            if count <= 0:
                raise OSError(f"the copy shrank while it was hashed, at byte {offset}")
            hasher.update(view[:count])
            offset += count

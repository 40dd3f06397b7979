"""Scratch space left behind by killed processes: ``shipyard-run-*`` (a pipeline run's
step folders) and ``shipyard-upload-*`` (an upload being received) in the temporary
directory. A process that exits cleans its own; one that is killed (SIGKILL, OOM, a
power cut) cannot, so the server and the worker remove such leftovers when they start.

A leftover is removed only when no live process owns it, that is when both hold:

* no process on this machine has its working directory, or an open file, inside it (a
  running step works inside its folder; an upload holds its file open), read from
  ``/proc``; where there is no ``/proc``, nothing is removed;
* nothing in it changed for ``grace`` seconds (the moment between two steps of a live
  run, when no process is inside its folder yet, is far shorter).

Only this user's entries are considered: the temporary directory is shared, and another
user's are not ours to judge (nor, with its sticky bit, to remove).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

__all__ = ["GRACE_SECONDS", "PREFIXES", "clean_leftover_scratch"]

log = logging.getLogger(__name__)

PREFIXES = ("shipyard-run-", "shipyard-upload-")
GRACE_SECONDS = 600.0
_PROC = Path("/proc")
_MAX_ENTRIES = 100_000  # a folder bigger than this is assumed to be in use


def clean_leftover_scratch(tmpdir: str | os.PathLike[str] | None = None, *,
                           grace: float = GRACE_SECONDS) -> list[Path]:
    """Remove the leftovers in ``tmpdir`` (default: the temporary directory) that no live
    process owns (see the module docstring); return what was removed."""
    root = Path(tmpdir if tmpdir is not None else tempfile.gettempdir())
    if not _PROC.joinpath("self", "cwd").exists():
        return []  # no way to tell who owns what: remove nothing
    uid = os.getuid()
    try:
        candidates = [p for p in root.iterdir()
                      if p.name.startswith(PREFIXES) and _owned_by(p, uid)]
    except OSError:
        return []
    now = time.time()
    candidates = [p for p in candidates if now - _newest_change(p) >= grace]
    if not candidates:
        return []
    in_use = _paths_in_use()
    removed = []
    for path in candidates:
        real = path.resolve()
        if any(_inside(used, real) for used in in_use):
            continue
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError as exc:
            log.warning("could not remove the leftover %s: %s", path, exc)
            continue
        removed.append(path)
    if removed:
        log.info("removed %d leftover scratch folders and files of killed processes from %s",
                 len(removed), root, extra={"removed": [p.name for p in removed]})
    return removed


def _owned_by(path: Path, uid: int) -> bool:
    try:
        return path.lstat().st_uid == uid
    except OSError:
        return False


def _newest_change(path: Path) -> float:
    """The latest modification time of ``path`` or anything in it (now, when unsure)."""
    try:
        newest = path.lstat().st_mtime
        if not path.is_dir() or path.is_symlink():
            return newest
        seen = 0
        for folder, dirs, files in os.walk(path):
            for name in (*dirs, *files):
                seen += 1
                if seen > _MAX_ENTRIES:
                    return time.time()
                try:
                    newest = max(newest, os.lstat(os.path.join(folder, name)).st_mtime)
                except OSError:
                    continue
        return newest
    except OSError:
        return time.time()


def _paths_in_use() -> set[str]:
    """Working directories and open files of every process this one can inspect."""
    used: set[str] = set()
    for proc in _PROC.iterdir():
        if not proc.name.isdigit():
            continue
        try:
            used.add(os.readlink(proc / "cwd"))
        except OSError:
            pass
        try:
            fds = list((proc / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                used.add(os.readlink(fd))
            except OSError:
                continue
    return used


def _inside(used: str, path: Path) -> bool:
    # An open file that was deleted reads "<path> (deleted)"; it still counts.
    target = str(path)
    used = used.removesuffix(" (deleted)")
    return used == target or used.startswith(target + os.sep)

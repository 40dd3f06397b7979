"""Extracting tar and zip archives without trusting them.

``tarfile.extractall`` and ``zipfile.extractall`` have a long record of path traversal
(CVE-2007-4559 for tar; "zip slip" for zip) and follow links the archive itself created.
Here nothing is delegated to them: each member's name goes through ``paths.resolve_inside``,
the same chokepoint as every other storage path, and only regular files and directories are
written, by us, with our own modes (files 0600, directories 0700; the archive's modes,
owners and times are ignored). Links, devices and FIFOs are refused, as are encrypted zip
members. The bytes actually written are counted against ``max_bytes`` (declared sizes are
only used to fail early: a zip bomb can lie in its headers). Everything is extracted into a
staging directory beside ``dest_dir`` that is renamed into place only once the whole archive
has been read, so ``dest_dir`` appears complete or not at all.

The work an archive can cause is bounded too, since archives come from remote callers: at
most ``max_members`` entries (10,000), counted from the archive's table of contents (a zip's
central directory, a tar's headers read first) before a single file is created, and at most
``time_budget`` seconds (60) of extraction. Creating a file costs far more than its header:
100,000 empty files fit in a 620 KB tar.gz.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import time
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from shipyard.artifacts.local import create_private_file, fsync_dir
from shipyard.artifacts.paths import make_dirs, resolve_inside
from shipyard.artifacts.streams import CHUNK_SIZE
from shipyard.artifacts.trees import prepare_staging
from shipyard.errors import InvalidArgument, TooLarge

MAX_EXTRACT_BYTES = 1024**3
MAX_EXTRACT_MEMBERS = 10_000
EXTRACT_TIME_BUDGET = 60.0

_clock = time.monotonic

_FIELD = "archive"


def safe_extract(
    archive_path: str | os.PathLike[str],
    dest_dir: str | os.PathLike[str],
    *,
    max_bytes: int = MAX_EXTRACT_BYTES,
    max_members: int = MAX_EXTRACT_MEMBERS,
    durable: bool = True,
    time_budget: float | None = EXTRACT_TIME_BUDGET,
) -> dict[str, int]:
    """Extract a tar (plain, gzip, bzip2, xz) or zip archive into ``dest_dir``, atomically.

    ``dest_dir`` must not exist or be an empty directory. Returns the extracted files
    (relative POSIX path -> size). Raises ``InvalidArgument(field="archive")`` for an unsafe
    or unreadable archive and ``TooLarge(field="archive")`` once its contents exceed
    ``max_bytes`` in total or ``max_members`` entries (the entries are counted before any
    file is written), or extracting it takes more than ``time_budget`` seconds (``None``: no
    budget); then ``dest_dir`` is left untouched. ``durable=False`` skips the fsyncs (one
    per file), for scratch directories whose contents are stored (durably) elsewhere next,
    and for caches that are checked before use.
    """
    deadline = None if time_budget is None else _clock() + time_budget
    source = Path(archive_path)
    target = Path(dest_dir).absolute()
    if _looks_like_zip(source):
        extract = _extract_zip
    elif _is_tarfile(source):
        extract = _extract_tar
    else:
        raise InvalidArgument(
            f"{source.name!r} is not a tar or zip archive", field=_FIELD
        )
    staging = prepare_staging(target)
    try:
        writer = _Writer(staging, max_bytes, max_members, durable=durable,
                         deadline=deadline, budget=time_budget)
        extract(source, writer)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if durable:
        fsync_dir(target.parent)
    return dict(sorted(writer.files.items()))


def _looks_like_zip(path: Path) -> bool:
    # By the leading signature, not zipfile.is_zipfile: that looks for a central directory
    # near the end, which a tar whose last member is a zip file also has.
    try:
        with path.open("rb") as file:
            head = file.read(4)
    except OSError as exc:
        raise InvalidArgument(f"cannot read the archive: {exc.strerror}", field=_FIELD) from None
    return head in (b"PK\x03\x04", b"PK\x05\x06")


def _is_tarfile(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


class _Writer:
    """Writes members under the staging directory, enforcing names, kinds and limits."""

    def __init__(self, root: Path, max_bytes: int, max_members: int, *, durable: bool,
                 deadline: float | None = None, budget: float | None = None) -> None:
        self.root = root
        self._durable = durable
        self.files: dict[str, int] = {}
        self._max_bytes = max_bytes
        self._max_members = max_members
        self._deadline = deadline
        self._budget = budget
        self._total = 0
        self._members = 0

    def plan(self, members: int, declared_bytes: int) -> None:
        """Refuse an archive whose table of contents (so far) is already over the limits."""
        self.tick()
        if members > self._max_members:
            raise self._too_many()
        if declared_bytes > self._max_bytes:
            raise self._too_large()

    def tick(self) -> None:
        """Refuse to go on once the time budget is spent."""
        if self._deadline is not None and _clock() > self._deadline:
            raise TooLarge(
                f"extracting the archive took more than {self._budget:g} s: send fewer or "
                "smaller files", field=_FIELD)

    def _count_member(self) -> None:
        self.tick()
        self._members += 1
        if self._members > self._max_members:
            raise self._too_many()

    def _too_many(self) -> TooLarge:
        return TooLarge(
            f"the archive has more than {self._max_members} entries: pack small files "
            "together, or store the archive itself as one file", field=_FIELD)

    def directory(self, name: str) -> None:
        self._count_member()
        relative = _member_name(name)
        if relative is not None:
            self._make_dirs(relative)

    def file(self, name: str, declared_size: int, source: IO[bytes]) -> None:
        self._count_member()
        relative = _member_name(name)
        if relative is None:
            raise InvalidArgument(f"archive member {name[:80]!r} has no file name", field=_FIELD)
        if self._total + declared_size > self._max_bytes:
            raise self._too_large()
        parent = relative.rpartition("/")[0]
        if parent:
            self._make_dirs(parent)
        path = resolve_inside(self.root, relative, field=_FIELD)
        try:
            fd = create_private_file(path)
        except FileExistsError:
            raise InvalidArgument(
                f"archive member {relative!r} appears more than once", field=_FIELD
            ) from None
        except IsADirectoryError:
            raise InvalidArgument(
                f"archive member {relative!r} is both a file and a directory", field=_FIELD
            ) from None
        size = 0
        with os.fdopen(fd, "wb") as out:
            while chunk := source.read(CHUNK_SIZE):
                self.tick()
                size += len(chunk)
                self._total += len(chunk)
                if self._total > self._max_bytes:
                    raise self._too_large()
                out.write(chunk)
            if self._durable:
                out.flush()
                os.fsync(out.fileno())
        self.files[relative] = size

    def _make_dirs(self, relative: str) -> None:
        resolve_inside(self.root, relative, field=_FIELD)
        try:
            make_dirs(self.root, relative)
        except InvalidArgument as exc:
            raise InvalidArgument(f"archive member {relative!r}: {exc}", field=_FIELD) from None

    def _too_large(self) -> TooLarge:
        return TooLarge(
            f"the archive expands to more than {self._max_bytes} bytes", field=_FIELD
        )


def _member_name(name: str) -> str | None:
    """The member's relative path, or ``None`` for the archive's own root (``./``).

    ``tar -C dir -cf x.tar .`` names every member ``./...``, and directories may end in
    ``/``; only those spellings are normalised here, everything else is left for
    ``resolve_inside`` to judge as given (so ``./../x`` still arrives as ``../x``).
    """
    relative = name
    while relative.startswith("./"):
        relative = relative[2:]
    if relative.endswith("/"):
        relative = relative[:-1]
    if relative in ("", "."):
        return None
    return relative


def _refuse(name: str, what: str) -> InvalidArgument:
    return InvalidArgument(
        f"archive member {name[:80]!r} is {what}; only regular files and directories are "
        "extracted",
        field=_FIELD,
    )


def _extract_tar(path: Path, writer: _Writer) -> None:
    with _open_tar(path) as archive:
        for member in _tar_members(archive, writer):
            if member.isdir():
                writer.directory(member.name)
            elif member.isreg():
                source = archive.extractfile(member)
                if source is None:  # pragma: no cover - isreg members always have data
                    raise _refuse(member.name, "unreadable")
                with source:
                    writer.file(member.name, member.size, source)
            elif member.issym() or member.islnk():
                raise _refuse(member.name, f"a link to {member.linkname[:80]!r}")
            else:
                raise _refuse(member.name, "a device, FIFO or other special file")


def _tar_members(archive: tarfile.TarFile, writer: _Writer) -> list[tarfile.TarInfo]:
    """Every member's header, read before anything is written so that ``writer.plan`` can
    refuse an archive over the limits without creating a file. (A compressed tar is
    decompressed twice; both passes are bounded by ``max_bytes`` and the time budget.)"""
    members = []
    declared = 0
    for member in archive:
        members.append(member)
        if member.isreg():
            declared += member.size
        writer.plan(len(members), declared)
    return members


@contextmanager
def _open_tar(path: Path) -> Iterator[tarfile.TarFile]:
    try:
        archive = tarfile.open(path, "r:*")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise InvalidArgument(f"cannot read the tar archive: {exc}", field=_FIELD) from None
    try:
        yield archive
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise InvalidArgument(f"the tar archive is damaged: {exc}", field=_FIELD) from None
    finally:
        archive.close()


def _extract_zip(path: Path, writer: _Writer) -> None:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidArgument(f"cannot read the zip archive: {exc}", field=_FIELD) from None
    with archive:
        infos = archive.infolist()
        writer.plan(len(infos), sum(i.file_size for i in infos if not i.is_dir()))
        for info in infos:
            mode = info.external_attr >> 16
            kind = stat.S_IFMT(mode)
            if info.flag_bits & 0x1:
                raise _refuse(info.filename, "encrypted")
            if info.is_dir() or kind == stat.S_IFDIR:
                writer.directory(info.filename)
            elif kind in (0, stat.S_IFREG):  # 0: made on a system without Unix modes
                try:
                    with archive.open(info) as source:
                        writer.file(info.filename, info.file_size, source)
                except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
                    raise InvalidArgument(
                        f"the zip archive is damaged: {exc}", field=_FIELD
                    ) from None
            elif kind == stat.S_IFLNK:
                raise _refuse(info.filename, "a symlink")
            else:
                raise _refuse(info.filename, "a device, FIFO or other special file")

"""Directory trees: scanning a local directory, the manifest format, and materialising.

A tree is stored as its files' blobs plus one manifest blob, canonical JSON::

    {"files":{"a/b.txt":{"digest":"<64 hex>","size":3}},"format":"shipyard.tree/1"}

Keys sorted, no whitespace, ASCII only (``\\uXXXX`` escapes), so the same files and contents
always encode to the same bytes and so to the same digest. Decoding insists on exactly that
encoding: a manifest has one spelling, which leaves no room for duplicate keys, floats or
other ambiguities for a parser to resolve differently from ours.

Every path in a manifest goes through ``paths.resolve_inside`` twice: when the manifest is
decoded (so a hostile manifest is refused before a byte is written) and again against the
real staging directory while materialising (so a link planted there is not followed).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.artifacts.info import BlobInfo
from shipyard.artifacts.local import create_private_file
from shipyard.artifacts.paths import is_digest, make_dirs, resolve_inside
from shipyard.errors import DataCorruption, InvalidArgument

if TYPE_CHECKING:
    from shipyard.artifacts.store import ArtifactStore

FORMAT = "shipyard.tree/1"
# About 400,000 files; decoding holds the manifest in memory, so it must stay bounded.
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
# Manifest paths are checked without a real root; resolve_inside needs one to join under.
_CHECK_ROOT = "tree"


def not_a_manifest(digest: str, reason: str) -> InvalidArgument:
    """The error for a blob that cannot be read as a tree manifest."""
    return InvalidArgument(
        f"blob {digest} is not a tree manifest: {reason}", field="manifest", digest=digest
    )


# -- scanning ---------------------------------------------------------------------------------


def scan_directory(directory: Path) -> Iterator[tuple[str, Path]]:
    """Yield ``(relative POSIX path, file to read)`` for every regular file, sorted.

    A symlink to a regular file inside ``directory`` yields the file it points to. Symlinked
    directories, links leading outside ``directory``, dangling links and special files
    (FIFOs, sockets, devices) raise ``InvalidArgument(field="directory")``: a FIFO would
    block the reader forever and a link outside would copy files the caller did not mean to
    publish. Every relative path is checked by ``resolve_inside``, so a tree that could not
    be read back (a name with ``?``, ``:`` or a backslash, say) is refused up front.
    """
    root = Path(os.path.realpath(directory))
    if not root.is_dir():
        raise InvalidArgument(f"{str(directory)!r} is not a directory", field="directory")
    yield from _scan(root, root, "")


def _scan(root: Path, current: Path, prefix: str) -> Iterator[tuple[str, Path]]:
    try:
        entries = sorted(os.scandir(current), key=lambda entry: entry.name)
    except OSError as exc:
        raise InvalidArgument(
            f"cannot list {str(current)!r}: {exc.strerror}", field="directory"
        ) from None
    for entry in entries:
        relative = f"{prefix}{entry.name}"
        if entry.is_symlink():
            target = _follow_link(root, Path(entry.path), relative)
            resolve_inside(root, relative, field="directory")
            yield relative, target
            continue
        resolve_inside(root, relative, field="directory")
        mode = entry.stat(follow_symlinks=False).st_mode
        if stat.S_ISDIR(mode):
            yield from _scan(root, Path(entry.path), f"{relative}/")
        elif stat.S_ISREG(mode):
            yield relative, Path(entry.path)
        else:
            raise InvalidArgument(
                f"{relative!r} is not a regular file or directory (a FIFO, socket or device)",
                field="directory",
            )


def _follow_link(root: Path, link: Path, relative: str) -> Path:
    target = os.path.realpath(link)
    if os.path.commonpath([root, target]) != str(root):
        raise InvalidArgument(
            f"{relative!r} is a symlink leading outside the directory", field="directory"
        )
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        raise InvalidArgument(f"{relative!r} is a dangling symlink", field="directory") from None
    if not stat.S_ISREG(mode):
        # Following directory links could loop and would store one directory twice.
        raise InvalidArgument(
            f"{relative!r} is a symlink to a directory or special file; only links to "
            "regular files are stored",
            field="directory",
        )
    return Path(target)


def digest_directory(directory: Path) -> tuple[str, dict[str, BlobInfo]]:
    """The tree digest ``directory`` would be stored under, and its files, without storing
    anything: what a client checks a downloaded or cached tree against."""
    files: dict[str, BlobInfo] = {}
    for relative, path in scan_directory(directory):
        with path.open("rb") as file:
            digest = hashlib.file_digest(file, "sha256").hexdigest()
            files[relative] = BlobInfo(digest, os.fstat(file.fileno()).st_size)
    return hashlib.sha256(encode_manifest(files)).hexdigest(), files


# -- the manifest -----------------------------------------------------------------------------


def encode_manifest(files: Mapping[str, BlobInfo]) -> bytes:
    """The canonical manifest bytes for ``files`` (relative path -> blob)."""
    document = {
        "files": {
            path: {"digest": blob.digest, "size": blob.size} for path, blob in files.items()
        },
        "format": FORMAT,
    }
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def decode_manifest(data: bytes, digest: str) -> Mapping[str, BlobInfo]:
    """Parse and check a manifest; ``InvalidArgument(field="manifest")`` unless it is one.

    Checked: the canonical encoding, the format tag, each entry's digest and size, each
    path through ``resolve_inside``, and that no path is both a file and a directory.
    """
    if len(data) > MAX_MANIFEST_BYTES:
        raise not_a_manifest(digest, f"it is {len(data)} bytes long")
    try:
        document: Any = json.loads(data.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise not_a_manifest(digest, "it is not ASCII JSON") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise not_a_manifest(digest, f"it has no format tag {FORMAT!r}")
    entries = document.get("files")
    if set(document) != {"files", "format"} or not isinstance(entries, dict):
        raise not_a_manifest(digest, "it must hold exactly 'files' and 'format'")
    files: dict[str, BlobInfo] = {}
    for path, entry in entries.items():
        resolve_inside(_CHECK_ROOT, path, field="manifest")
        files[path] = _decode_entry(path, entry, digest)
    if encode_manifest(files) != data:
        raise not_a_manifest(digest, "it is not in canonical form")
    _check_no_file_is_a_directory(files, digest)
    return files


def _decode_entry(path: str, entry: object, digest: str) -> BlobInfo:
    if not isinstance(entry, dict) or set(entry) != {"digest", "size"}:
        raise not_a_manifest(digest, f"the entry for {path!r} needs exactly digest and size")
    blob_digest, size = entry["digest"], entry["size"]
    if not isinstance(blob_digest, str) or not is_digest(blob_digest):
        raise not_a_manifest(digest, f"the entry for {path!r} has an invalid digest")
    if type(size) is not int or size < 0:
        raise not_a_manifest(digest, f"the entry for {path!r} has an invalid size")
    return BlobInfo(blob_digest, size)


def _check_no_file_is_a_directory(files: Mapping[str, BlobInfo], digest: str) -> None:
    directories = {path.rsplit("/", depth)[0] for path in files for depth in _depths(path)}
    clash = directories.intersection(files)
    if clash:
        raise not_a_manifest(digest, f"{min(clash)!r} is both a file and a directory")


def _depths(path: str) -> range:
    return range(1, path.count("/") + 1)


# -- materialising ----------------------------------------------------------------------------


def prepare_staging(target: Path) -> Path:
    """Check that ``target`` can receive a tree and make a 0700 staging directory beside it.

    ``target`` must not exist or be an empty directory (not a symlink); its missing parents
    are created. The staging directory is on the same filesystem, so renaming it onto
    ``target`` is atomic.
    """
    if target.is_symlink():
        raise InvalidArgument(f"{str(target)!r} is a symlink", field="dest_dir")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InvalidArgument(
            f"{str(target)!r} already exists and is not an empty directory; choose a new "
            "directory or empty this one",
            field="dest_dir",
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.staging-"))


def materialise(
    store: ArtifactStore, files: Mapping[str, BlobInfo], staging: Path, *, durable: bool = True
) -> None:
    """Write every file of a tree under ``staging`` (0600 files, 0700 directories), verified;
    fsynced unless ``durable`` is false.

    Raises ``DataCorruption`` if a blob does not match its digest or the manifest's size.
    """
    for relative, blob in files.items():
        parent = relative.rpartition("/")[0]
        if parent:
            make_dirs(staging, parent)
        path = resolve_inside(staging, relative, field="manifest")
        try:
            fd = create_private_file(path)
        except FileExistsError:
            # Two names that one filesystem folds together (case, Unicode normalisation).
            raise InvalidArgument(
                f"{relative!r} collides with another file of the tree on this filesystem",
                field="manifest",
            ) from None
        with os.fdopen(fd, "wb") as out:
            size = store.write_to(blob.digest, out, sync=durable)
        if size != blob.size:
            raise DataCorruption(
                f"{relative!r} is {size} bytes but its tree manifest says {blob.size}",
                digest=blob.digest,
            )

"""The single chokepoint for every storage path.

Every read, write, list and delete in ``shipyard.artifacts`` (blobs, staging files, tree
materialisation and archive extraction) turns a relative path into a real location through
:func:`resolve_inside`. Keeping one function means one place to audit: MLflow's path traversal
CVEs (CVE-2023-1177, CVE-2023-2780, CVE-2023-6831, CVE-2024-1558 and others) each came from
a different handler doing its own, slightly different check.

Relative paths are a strict subset of POSIX paths: ``/``-separated, non-empty segments, no
``.`` or ``..``, no backslashes, drive letters, URL syntax (``%``-escapes that decode to
anything unsafe, ``?``, ``#``, ``:``), glob characters (fsspec expands them in ``rm`` and
``get``) or control characters. On a local disk the joined path is also resolved with
``realpath`` so a symlink planted inside the root cannot lead outside it.
"""

from __future__ import annotations

import os
import posixpath
import re
import unicodedata
from pathlib import Path
from typing import overload
from urllib.parse import unquote

from shipyard.errors import InvalidArgument

MAX_PATH_CHARS = 1024
MAX_SEGMENT_BYTES = 255  # NAME_MAX on Linux and macOS

_DIGEST = re.compile(r"[0-9a-f]{64}")
# Characters with a meaning to some layer below us: Windows paths, URLs, fsspec globs and
# protocol chaining ("simplecache::s3://"). Our own ids and digests never contain them.
_FORBIDDEN = frozenset('\\:?#*[]"<>|')
_DRIVE = re.compile(r"[A-Za-z]:")


def check_digest(digest: object, field: str = "digest") -> str:
    """Return ``digest`` if it is 64 lowercase hex characters (a sha256), else raise."""
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        shown = repr(digest)[:80]
        raise InvalidArgument(
            f"{field} {shown} is not a sha256 digest: expected 64 lowercase hex characters",
            field=field,
        )
    return digest


def is_digest(value: str) -> bool:
    """Whether ``value`` is 64 lowercase hex characters."""
    return _DIGEST.fullmatch(value) is not None


def blob_key(digest: str) -> str:
    """The relative storage key of a blob: ``blobs/sha256/<2 hex>/<2 hex>/<64 hex>``."""
    check_digest(digest)
    return f"blobs/sha256/{digest[:2]}/{digest[2:4]}/{digest}"


@overload
def resolve_inside(root: Path, relative: str, *, field: str = ...) -> Path: ...
@overload
def resolve_inside(root: str, relative: str, *, field: str = ...) -> str: ...
def resolve_inside(root: Path | str, relative: str, *, field: str = "path") -> Path | str:
    """Join ``relative`` under ``root`` or raise ``InvalidArgument(field=field)``.

    ``root`` is a local directory (``Path``) or an object-store prefix (``str``, such as
    ``"bucket/prefix"``). The result is guaranteed to lie strictly inside ``root``: for a
    local root it is the real path (symlinks resolved) and lies inside the real root, so a
    symlink under the root that points elsewhere is refused rather than followed.
    """
    _check_relative(relative, field)
    if isinstance(root, Path):
        return _resolve_local(root, relative, field)
    base = root.rstrip("/")
    joined = f"{base}/{relative}" if base else relative
    # Belt and braces: the checks above already exclude every way out, and this would catch
    # a future edit that weakens them.
    if not posixpath.normpath(joined).startswith(f"{base}/" if base else ""):
        raise _escape(relative, field)
    return joined


def _resolve_local(root: Path, relative: str, field: str) -> Path:
    real_root = os.path.realpath(root)
    real = os.path.realpath(os.path.join(real_root, *relative.split("/")))
    # commonpath, not startswith: "/data/root-evil" starts with "/data/root".
    if real == real_root or os.path.commonpath([real_root, real]) != real_root:
        raise _escape(relative, field)
    return Path(real)


def _check_relative(relative: object, field: str) -> None:
    if not isinstance(relative, str):
        raise InvalidArgument(f"{field} must be a string", field=field)
    if not relative or len(relative) > MAX_PATH_CHARS:
        raise InvalidArgument(
            f"{field} must be a relative path of 1 to {MAX_PATH_CHARS} characters", field=field
        )
    # Check the path as given, after NFKC (fullwidth "\uff0e\uff0e\uff0f" is "../" to some
    # layers) and after every round of percent-decoding ("%252e%252e%252f" -> "%2e%2e%2f" -> "../"),
    # so no layer below us that decodes or normalises can turn it into something unsafe.
    seen: set[str] = set()
    pending = [relative]
    while pending:
        form = pending.pop()
        if form in seen:
            continue
        seen.add(form)
        _check_form(form, relative, field)
        try:
            decoded = unquote(form, errors="strict")
        except UnicodeDecodeError:
            raise InvalidArgument(
                f"{field} {relative[:80]!r} has a percent-escape that is not UTF-8", field=field
            ) from None
        pending.extend((unicodedata.normalize("NFKC", form), decoded))


def _check_form(form: str, original: str, field: str) -> None:
    for char in form:
        if char in _FORBIDDEN or unicodedata.category(char)[0] == "C":
            raise InvalidArgument(
                f"{field} {original[:80]!r} contains the character {char!r}, which is not "
                "allowed in a storage path",
                field=field,
            )
    if form.startswith("/"):
        raise InvalidArgument(
            f"{field} {original[:80]!r} is absolute; storage paths are relative", field=field
        )
    for segment in form.split("/"):
        if segment in ("", ".", ".."):
            raise _escape(original, field)
        if _DRIVE.match(segment) or len(segment.encode("utf-8", "surrogatepass")) > (
            MAX_SEGMENT_BYTES
        ):
            raise InvalidArgument(
                f"{field} {original[:80]!r} has an invalid segment {segment[:40]!r}", field=field
            )


def _escape(relative: str, field: str) -> InvalidArgument:
    return InvalidArgument(
        f"{field} {relative[:80]!r} is not a plain relative path inside the storage root "
        "(empty, '.' or '..' segments and links leading outside are refused)",
        field=field,
    )


def make_dirs(root: Path, relative: str) -> Path:
    """Create ``root/relative`` and its missing parents with mode 0700; return its path.

    ``os.makedirs`` applies its mode only to the leaf since Python 3.7, so each level is
    created here; each level is checked through :func:`resolve_inside`.
    """
    parts = relative.split("/")
    current = root
    for depth in range(1, len(parts) + 1):
        current = resolve_inside(root, "/".join(parts[:depth]))
        try:
            current.mkdir(mode=0o700)
        except FileExistsError:
            if not current.is_dir():
                raise InvalidArgument(
                    f"cannot create directory {relative!r}: a file is in the way", field="path"
                ) from None
    return current

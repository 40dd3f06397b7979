"""The manifest of a model directory, and the digest check that runs before any load.

``shipyard-model.json`` records how a model was saved (flavor, framework, Python and package
versions, signature) and the sha256 and size of every other file in the directory. Loading
verifies the whole directory against it first, so a flavor only ever parses bytes that are
exactly the bytes that were saved.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any

from shipyard.errors import DataCorruption, FailedPrecondition, InvalidArgument
from shipyard.registry.signature import Signature

MANIFEST_NAME = "shipyard-model.json"
FORMAT_VERSION = 1
# As large as a JSON request body may be; real manifests are a few kilobytes.
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
# Sizes as SQL and the artifact store can hold them.
MAX_FILE_SIZE = 2**63 - 1
_SHA256 = re.compile(r"[0-9a-f]{64}")
# Recorded for every model: a prediction depends on them whatever the flavor.
CORE_PACKAGES = ("numpy", "pandas", "scipy")


@dataclass(frozen=True)
class FileEntry:
    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    """What ``shipyard-model.json`` holds. ``options`` is flavor-specific (file names...)."""

    flavor: str
    framework: str
    framework_version: str
    files: dict[str, FileEntry]
    python_version: str = field(default_factory=platform.python_version)
    packages: dict[str, str] = field(default_factory=dict)
    signature: Signature | None = None
    options: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    # File name (listed in ``files``) of a few example input rows, for docs and smoke tests.
    input_example: str | None = None
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "flavor": self.flavor,
            "framework": {"name": self.framework, "version": self.framework_version},
            "python_version": self.python_version,
            "packages": dict(sorted(self.packages.items())),
            "created_at": self.created_at,
            "signature": None if self.signature is None else self.signature.to_dict(),
            "options": self.options,
            "metadata": self.metadata,
            "input_example": self.input_example,
            "files": {
                name: {"sha256": e.sha256, "size": e.size} for name, e in sorted(self.files.items())
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Manifest:
        """Rebuild a manifest, checking every field's type: a manifest is read from a model
        directory, which may have been edited or crafted. Raises ``DataCorruption`` naming
        the field (``FailedPrecondition`` for a format newer than this Shipyard)."""
        version = data.get("format_version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise _malformed("format_version", f"has no valid format_version: {_brief(version)}")
        if version > FORMAT_VERSION:
            raise FailedPrecondition(
                f"model manifest format {_brief(version)} is newer than this Shipyard "
                f"understands ({FORMAT_VERSION}): upgrade Shipyard to load it",
                field="format_version",
            )
        framework = data.get("framework")
        if not isinstance(framework, dict):
            raise _malformed("framework", "has no framework object")
        input_example = data.get("input_example")
        if input_example is not None:
            input_example = _check_relpath(_text(data, "input_example"), "input_example")
        return cls(
            flavor=_text(data, "flavor"),
            framework=_text(framework, "name", "framework.name"),
            framework_version=_text(framework, "version", "framework.version"),
            python_version=_text(data, "python_version"),
            packages=_texts(data.get("packages", {}), "packages"),
            created_at=_text(data, "created_at") if "created_at" in data else "",
            signature=_signature(data.get("signature")),
            options=_object(data.get("options", {}), "options"),
            metadata=_object(data.get("metadata", {}), "metadata"),
            input_example=input_example,
            files=_files(data.get("files")),
            format_version=version,
        )

    def encode(self) -> bytes:
        """The bytes of ``shipyard-model.json``."""
        return (json.dumps(self.to_dict(), indent=2) + "\n").encode("utf-8")

    def write(self, model_dir: Path) -> None:
        (model_dir / MANIFEST_NAME).write_bytes(self.encode())

    @classmethod
    def from_bytes(cls, raw: bytes) -> Manifest:
        """Parse the bytes of ``shipyard-model.json``; anything else than a manifest raises
        ``DataCorruption`` (or ``FailedPrecondition``, as ``from_dict``), never another
        exception, whatever the bytes."""
        if len(raw) > MAX_MANIFEST_BYTES:
            raise DataCorruption(
                f"{MANIFEST_NAME} is {len(raw)} bytes; the limit is {MAX_MANIFEST_BYTES}"
            )
        try:
            data = json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError) as exc:
            # ValueError covers bad UTF-8, bad JSON and integers too long to convert.
            raise DataCorruption(f"{MANIFEST_NAME} is not valid JSON: {_brief(exc)}") from None
        if not isinstance(data, dict):
            raise DataCorruption(f"{MANIFEST_NAME} must hold a JSON object")
        return cls.from_dict(data)

    @classmethod
    def read(cls, model_dir: Path) -> Manifest:
        path = model_dir / MANIFEST_NAME
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise DataCorruption(
                f"{model_dir} has no {MANIFEST_NAME}: it is not a Shipyard model directory, "
                "or the manifest was deleted",
                file=MANIFEST_NAME,
            ) from None
        if size > MAX_MANIFEST_BYTES:  # refused before it is read into memory
            raise DataCorruption(
                f"{MANIFEST_NAME} is {size} bytes; the limit is {MAX_MANIFEST_BYTES}"
            )
        return cls.from_bytes(path.read_bytes())


def package_versions(names: Iterable[str]) -> dict[str, str]:
    """Installed versions of ``names`` (distribution names), skipping absent ones."""
    versions = {}
    for name in (*CORE_PACKAGES, *names):
        version = _installed_version(name)
        if version is not None:
            versions[name] = version
    return versions


# Distributions that install a package under another name (the CPU-only XGBoost wheel
# Shipyard depends on): recorded under the package's usual name.
_ALSO_SHIPPED_AS = {"xgboost": ("xgboost-cpu",)}


@functools.lru_cache(maxsize=256)
def _installed_version(name: str) -> str | None:
    # Reading a distribution's metadata costs milliseconds; what the process imported does
    # not change under it, so each name is read once.
    for candidate in (name, *_ALSO_SHIPPED_AS.get(name, ())):
        try:
            return metadata.version(candidate)
        except metadata.PackageNotFoundError:
            continue
    return None


def hash_file(path: Path) -> FileEntry:
    with path.open("rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    return FileEntry(digest, path.stat().st_size)


def hash_tree(model_dir: Path) -> dict[str, FileEntry]:
    """Digest every file under ``model_dir`` except the manifest itself."""
    return {name: hash_file(model_dir / name) for name in list_files(model_dir)}


def check_file_set(model_dir: Path, manifest: Manifest) -> None:
    """Raise ``DataCorruption`` naming the first file that is missing or extra."""
    present = set(list_files(model_dir))
    for name in sorted(present - manifest.files.keys()):
        raise DataCorruption(f"{name} is in the model directory but not in its manifest", file=name)
    for name in sorted(manifest.files.keys() - present):
        raise DataCorruption(f"{name} is listed in the manifest but missing", file=name)


def check_entries(manifest: Manifest, stored: Mapping[str, FileEntry]) -> None:
    """Compare the manifest with the digests of files known to hold verified bytes."""
    for name in sorted(manifest.files.keys() ^ stored.keys()):
        raise DataCorruption(f"{name} is not both in the manifest and in the model", file=name)
    for name, expected in sorted(manifest.files.items()):
        if stored[name] != expected:
            raise DataCorruption(
                f"{name} does not match its recorded sha256 {expected.sha256}", file=name
            )


def verify_tree(model_dir: Path, manifest: Manifest) -> None:
    """Raise ``DataCorruption`` naming the first file that is missing, extra or altered."""
    check_file_set(model_dir, manifest)
    for name, expected in sorted(manifest.files.items()):
        # Size first: a cheap stat catches truncation without reading the file.
        path = model_dir / name
        if path.stat().st_size != expected.size or hash_file(path) != expected:
            raise DataCorruption(
                f"{name} does not match its recorded sha256 {expected.sha256}: the model "
                "files were changed after saving",
                file=name,
            )


def list_files(model_dir: Path) -> list[str]:
    names = []
    for root, dirs, files in os.walk(model_dir, followlinks=False):
        for entry in (*dirs, *files):
            path = Path(root, entry)
            if path.is_symlink():
                # A link could point anywhere on the host; a model directory holds only files.
                rel = path.relative_to(model_dir).as_posix()
                raise DataCorruption(f"{rel} is a symbolic link", file=rel)
        for entry in files:
            rel = Path(root, entry).relative_to(model_dir).as_posix()
            if rel != MANIFEST_NAME:
                names.append(rel)
    return sorted(names)


def _check_relpath(name: object, field: str = "files") -> str:
    if not isinstance(name, str):
        raise DataCorruption(f"{MANIFEST_NAME} lists a path that is not text: {_brief(name)}",
                             field=field)
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts or "\\" in name or not pure.parts:
        raise DataCorruption(f"{MANIFEST_NAME} lists an unsafe path {_brief(name)}",
                             field=field, file=name[:200])
    return name


def _malformed(field: str, problem: str) -> DataCorruption:
    return DataCorruption(f"{MANIFEST_NAME} {problem}", field=field)


def _brief(value: object) -> str:
    """``repr(value)``, cut short: the manifest may be hostile, and is not echoed whole."""
    text = repr(value) if not isinstance(value, BaseException) else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _text(data: Mapping[str, Any], key: str, field: str | None = None) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise _malformed(field or key, f"{field or key} must be text, got {_brief(value)}")
    return value


def _texts(value: object, field: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise _malformed(field, f"{field} must map names to text")
    return value


def _object(value: object, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _malformed(field, f"{field} must be a JSON object, not {type(value).__name__}")
    return value


def _signature(value: object) -> Signature | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _malformed("signature", f"signature must be a JSON object, not "
                         f"{type(value).__name__}")
    try:
        return Signature.from_dict(value)
    # A hand-edited signature is a damaged file, not bad input from the caller.
    except (InvalidArgument, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise _malformed("signature", f"has a bad signature: {_brief(exc)}") from None


def _files(value: object) -> dict[str, FileEntry]:
    if not isinstance(value, dict):
        raise _malformed("files", "has no files object (file name -> sha256 and size)")
    files = {}
    for name, entry in value.items():
        _check_relpath(name)
        sha256 = entry.get("sha256") if isinstance(entry, dict) else None
        size = entry.get("size") if isinstance(entry, dict) else None
        if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
            raise DataCorruption(
                f"{MANIFEST_NAME} files: the sha256 of {_brief(name)} must be 64 lowercase hex "
                f"digits, got {_brief(sha256)}", field="files", file=name[:200])
        if type(size) is not int or not 0 <= size <= MAX_FILE_SIZE:
            raise DataCorruption(
                f"{MANIFEST_NAME} files: the size of {_brief(name)} must be an integer from 0 "
                f"to {MAX_FILE_SIZE}, got {_brief(size)}", field="files", file=name[:200])
        files[name] = FileEntry(sha256, size)
    return files

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
        version = data.get("format_version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise DataCorruption(f"{MANIFEST_NAME} has no valid format_version: {version!r}")
        if version > FORMAT_VERSION:
            raise FailedPrecondition(
                f"model manifest format {version!r} is newer than this Shipyard understands "
                f"({FORMAT_VERSION}): upgrade Shipyard to load it"
            )
        try:
            signature = data.get("signature")
            return cls(
                flavor=str(data["flavor"]),
                framework=str(data["framework"]["name"]),
                framework_version=str(data["framework"]["version"]),
                python_version=str(data["python_version"]),
                packages={str(k): str(v) for k, v in data.get("packages", {}).items()},
                created_at=str(data.get("created_at", "")),
                signature=None if signature is None else Signature.from_dict(signature),
                options=dict(data.get("options", {})),
                metadata=dict(data.get("metadata", {})),
                input_example=(
                    None if data.get("input_example") is None else str(data["input_example"])
                ),
                files={
                    _check_relpath(name): FileEntry(str(e["sha256"]), int(e["size"]))
                    for name, e in data["files"].items()
                },
                format_version=version,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DataCorruption(f"{MANIFEST_NAME} is malformed: bad or missing {exc}") from None
        except InvalidArgument as exc:
            # A hand-edited signature is a damaged file, not bad input from the caller.
            raise DataCorruption(f"{MANIFEST_NAME} has a bad signature: {exc}") from None

    def encode(self) -> bytes:
        """The bytes of ``shipyard-model.json``."""
        return (json.dumps(self.to_dict(), indent=2) + "\n").encode("utf-8")

    def write(self, model_dir: Path) -> None:
        (model_dir / MANIFEST_NAME).write_bytes(self.encode())

    @classmethod
    def from_bytes(cls, raw: bytes) -> Manifest:
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataCorruption(f"{MANIFEST_NAME} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise DataCorruption(f"{MANIFEST_NAME} must hold a JSON object")
        return cls.from_dict(data)

    @classmethod
    def read(cls, model_dir: Path) -> Manifest:
        path = model_dir / MANIFEST_NAME
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise DataCorruption(
                f"{model_dir} has no {MANIFEST_NAME}: it is not a Shipyard model directory, "
                "or the manifest was deleted",
                file=MANIFEST_NAME,
            ) from None
        return cls.from_bytes(raw)


def package_versions(names: Iterable[str]) -> dict[str, str]:
    """Installed versions of ``names`` (distribution names), skipping absent ones."""
    versions = {}
    for name in (*CORE_PACKAGES, *names):
        version = _installed_version(name)
        if version is not None:
            versions[name] = version
    return versions


@functools.lru_cache(maxsize=256)
def _installed_version(name: str) -> str | None:
    # Reading a distribution's metadata costs milliseconds; what the process imported does
    # not change under it, so each name is read once.
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
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


def _check_relpath(name: str) -> str:
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts or "\\" in name or not pure.parts:
        raise DataCorruption(f"{MANIFEST_NAME} lists an unsafe path {name!r}", file=name)
    return name
